//! A blocking WebSocket upgrade server on `ws-handshake`: it shows where the sans-IO handshake
//! meets a socket.
//!
//! ```text
//! cargo run -p ws-handshake --example upgrade -- [PORT] [--origin https://example.com]
//! ```
//! It prints `listening on 127.0.0.1:PORT`, then, for each connection, the agreed upgrade or the
//! refusal's HTTP status. After a `101` it closes the connection (framing is `ws-codec`'s job;
//! see its `echo` example). Try it with
//! `curl -i -H 'Upgrade: websocket' -H 'Connection: Upgrade' -H 'Sec-WebSocket-Version: 13'
//! -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' http://127.0.0.1:PORT/`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example program"
)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{SystemTime, UNIX_EPOCH};

use ws_handshake::{Options, Policy, ServerHandshake};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut port = 0_u16;
    let mut origins = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--origin" => origins.push(args.next().ok_or("--origin needs a value")?),
            other => port = other.parse()?,
        }
    }
    // The policy is validated once, when the configuration is loaded.
    let policy = Policy::new(&Options {
        compression: true,
        allowed_origins: origins,
        ..Options::default()
    })?;
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        if let Err(e) = serve(&policy, stream?) {
            eprintln!("connection: {e}");
        }
    }
    Ok(())
}

/// Reads one upgrade request (several after refusals, on a kept-alive connection).
fn serve(policy: &Policy, mut stream: TcpStream) -> std::io::Result<()> {
    let mut handshake = ServerHandshake::new(false);
    let mut received = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        received.extend_from_slice(buf.get(..n).unwrap_or_default());
        loop {
            let mut out = Vec::new();
            // The clock is read here, by the caller: the crate never reads it.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs());
            match handshake.handle_input(policy, &received, now, &mut out) {
                Ok(None) => break,
                Ok(Some(upgrade)) => {
                    stream.write_all(&out)?;
                    println!(
                        "upgraded: {:?} path, compression {}, browser {}",
                        upgrade.kind, upgrade.compression, upgrade.browser
                    );
                    return Ok(());
                }
                Err(reject) => {
                    stream.write_all(&out)?;
                    println!("refused with {}: {reject}", reject.status());
                    let Some(after) = handshake.after_reject().filter(|a| a.keep_alive()) else {
                        return Ok(());
                    };
                    received.drain(..after.consumed());
                    if !handshake.next_request() {
                        return Ok(());
                    }
                }
            }
        }
    }
}
