//! A WebSocket echo server on `ws-codec`, for interoperability tests.
//!
//! Blocking `std::net`, one thread per connection. The HTTP upgrade is done minimally by hand
//! (with a small SHA-1 and base64 for `Sec-WebSocket-Accept`); `permessage-deflate` is accepted
//! with no context takeover in both directions, as nats-server answers. Every text or binary
//! message is sent back with the same kind; pings get pongs; a close is echoed.
//!
//! ```text
//! cargo run -p ws-codec --example echo -- [--port N] [--no-deflate] [--max-frame BYTES]
//! ```
//! It prints `listening on 127.0.0.1:PORT` once ready.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::num::NonZeroUsize;

use bytes::{Bytes, BytesMut};
use ws_codec::{
    Decoder, DecoderConfig, Deflater, Delivery, Encoder, EncoderConfig, Event, Inflater, Limits,
};

#[derive(Clone, Copy)]
struct Options {
    port: u16,
    deflate: bool,
    max_frame: Option<NonZeroUsize>,
}

fn main() -> std::io::Result<()> {
    let mut options = Options {
        port: 0,
        deflate: true,
        max_frame: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => options.port = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--no-deflate" => options.deflate = false,
            "--max-frame" => {
                options.max_frame = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .and_then(NonZeroUsize::new);
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", options.port))?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            if let Err(err) = serve(stream, options) {
                eprintln!("connection error: {err}");
            }
        });
    }
    Ok(())
}

fn serve(mut stream: TcpStream, options: Options) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(4096);
    // Read the request head.
    let head_len = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > 16 * 1024 || read_some(&mut stream, &mut buf)? == 0 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let _ = buf.split_to(head_len);
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let Some(key) = header("Sec-WebSocket-Key") else {
        stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    };
    let deflate = options.deflate
        && head.lines().any(|line| {
            line.split_once(':').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("Sec-WebSocket-Extensions")
                    && v.split([',', ';'])
                        .any(|p| p.trim().eq_ignore_ascii_case("permessage-deflate"))
            })
        });
    let mut accept_input = key.into_bytes();
    accept_input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        base64(&sha1(&accept_input))
    );
    if deflate {
        response.push_str("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n");
    }
    response.push_str("\r\n");
    stream.write_all(response.as_bytes())?;

    let limits = Limits {
        max_message_bytes: 64 << 20,
        max_compressed_message_bytes: 64 << 20,
        max_inflated_message_bytes: 64 << 20,
        ..Limits::default()
    };
    let config = DecoderConfig::server()
        .with_deflate(deflate)
        .with_delivery(Delivery::Message)
        .with_limits(limits);
    let mut decoder = Decoder::new(config);
    let mut encoder = Encoder::server(EncoderConfig {
        max_frame_payload: options.max_frame,
        deflate,
        ..EncoderConfig::default()
    });
    let (mut inflater, mut deflater) = (Inflater::new(), Deflater::new());
    let mut arena = BytesMut::new();
    let mut out: Vec<Bytes> = Vec::new();
    loop {
        loop {
            match decoder.decode(&mut buf, &mut inflater) {
                Ok(Some(Event::Message(msg))) => {
                    encoder
                        .encode_message(
                            msg.kind,
                            &[msg.payload],
                            &mut deflater,
                            &mut arena,
                            &mut out,
                        )
                        .map_err(std::io::Error::other)?;
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(err) => {
                    let close = ws_codec::Control::Close(Some(err.close_frame()));
                    encoder.encode_control(&close, &mut arena, &mut out);
                    write_all(&mut stream, &mut out)?;
                    return Ok(());
                }
            }
            while let Some(reply) = decoder.poll_reply() {
                encoder.encode_control(&reply, &mut arena, &mut out);
            }
        }
        write_all(&mut stream, &mut out)?;
        if decoder.is_closed() || read_some(&mut stream, &mut buf)? == 0 {
            return Ok(());
        }
    }
}

fn read_some(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<usize> {
    let start = buf.len();
    buf.resize(start + 64 * 1024, 0);
    let res = stream.read(&mut buf[start..]);
    buf.truncate(start + *res.as_ref().unwrap_or(&0));
    res
}

fn write_all(stream: &mut TcpStream, out: &mut Vec<Bytes>) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> =
        out.iter().map(|b| std::io::IoSlice::new(b)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let n = stream.write_vectored(slices)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut slices, n);
    }
    out.clear();
    Ok(())
}

/// SHA-1 (FIPS 180-4), only for `Sec-WebSocket-Accept`.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let temp = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = temp;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (dst, word) in out.chunks_mut(4).zip(h) {
        dst.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in data.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc6455_accept_example() {
        // RFC 6455 §1.3.
        let mut input = b"dGhlIHNhbXBsZSBub25jZQ==".to_vec();
        input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
        assert_eq!(
            super::base64(&super::sha1(&input)),
            "s3pPLMBiTxaJlPphLxLaGzrK0Lk="
        );
    }
}
