//! A tiny single-threaded NATS server on `broker` and `std::net` non-blocking sockets: it shows
//! the call order of the crate docs, with nothing else around it (no TLS, no WebSocket, no
//! config file, no readiness polling).
//!
//! ```text
//! cargo run -p broker --example server -- [PORT]
//! ```
//! It prints `listening on 127.0.0.1:PORT` and serves NATS clients there: try
//! `nats -s nats://127.0.0.1:PORT sub foo` and `nats -s nats://127.0.0.1:PORT pub foo hi`, or
//! `telnet 127.0.0.1 PORT` and type `CONNECT {}`, `SUB foo 1`, `PUB foo 2`, `hi`, `PING`.
//!
//! Each loop pass is one tick: read the clock once, accept, read and feed the broker, run due
//! timers, take the broker's events, flush what it queued, and remove closed clients last.
//! A real server waits for readiness (mio, epoll) up to `poll_timeout()` instead of sleeping.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example program"
)]

use std::collections::HashMap;
use std::io::{ErrorKind, IoSlice, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use broker::{Broker, ClientId, ClientParams, CloseReason, Config, ConnectionType, Event};
use bytes::BytesMut;

/// One client's socket and the bytes read from it that the broker has not consumed yet (an
/// incomplete operation; the broker's limits bound it).
struct Conn {
    stream: TcpStream,
    input: BytesMut,
}

fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|_| ErrorKind::InvalidInput)?,
        None => 4222,
    };
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    // INFO tells clients where they are connected.
    let mut config = Config::default();
    config.client_listener.host = addr.ip().to_string();
    config.client_listener.port = addr.port();
    let mut broker = Broker::new(config, Instant::now());
    let mut conns: HashMap<ClientId, Conn> = HashMap::new();
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        // The only clock read of the tick: every call below gets this `now`.
        let now = Instant::now();
        // 1. register_client on accept (it queues INFO).
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    stream.set_nonblocking(true)?;
                    stream.set_nodelay(true)?;
                    let params = ClientParams::new(ConnectionType::Standard, peer);
                    let id = broker.register_client(now, params);
                    let input = BytesMut::new();
                    conns.insert(id, Conn { stream, input });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => eprintln!("accept: {e}"),
            }
        }
        // 2. handle_input after each read; a stalled producer is not read (step 8).
        for (&id, conn) in &mut conns {
            loop {
                if broker.is_stalled(id) {
                    break;
                }
                match conn.stream.read(&mut buf) {
                    Ok(0) => broker.close_client(id, now, CloseReason::ClientClosed),
                    Ok(n) => {
                        conn.input
                            .extend_from_slice(buf.get(..n).unwrap_or_default());
                        broker.handle_input(id, now, &mut conn.input);
                        continue;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => broker.close_client(id, now, CloseReason::ReadError),
                }
                break;
            }
        }
        // 3. handle_timeout once poll_timeout() has passed (pings, auth and write deadlines).
        if broker
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            broker.handle_timeout(now);
        }
        // 4. poll_event until None.
        let mut closed = Vec::new();
        let mut resumed = Vec::new();
        while let Some(event) = broker.poll_event() {
            match event {
                // Output is flushed below, for every client with some.
                Event::Flush(_) => {}
                Event::Closed { client, reason } => closed.push((client, reason)),
                Event::AuthFailed { detail, .. } => eprintln!("{detail}"),
                Event::Resumed { client, .. } => resumed.push(client),
                _ => {}
            }
        }
        // 8. A resumed producer gets what it left; its socket is read again next tick.
        for id in resumed {
            if let Some(conn) = conns.get_mut(&id) {
                broker.handle_input(id, now, &mut conn.input);
            }
        }
        // 5. outbound → write → advance, then handle_flushed (closed clients: in step 6).
        for (&id, conn) in &mut conns {
            if closed.iter().any(|(client, _)| *client == id) {
                continue;
            }
            if let Err(e) = flush(&mut broker, id, &mut conn.stream, now) {
                eprintln!("write: {e}");
                broker.close_client(id, now, CloseReason::WriteError);
            }
        }
        // 6. A closed client: flush if the reason allows, close the socket, remove_client.
        for (id, reason) in closed {
            if let Some(mut conn) = conns.remove(&id) {
                if reason.flushes() {
                    let _ = flush(&mut broker, id, &mut conn.stream, now);
                }
                let _ = conn.stream.shutdown(Shutdown::Both);
            }
            broker.remove_client(id, now);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Writes as much of the client's queue as the socket takes now; the rest waits for the next
/// tick (the broker's write deadline cuts a client that stops reading).
fn flush(
    broker: &mut Broker,
    id: ClientId,
    stream: &mut TcpStream,
    now: Instant,
) -> std::io::Result<()> {
    let Some(out) = broker.outbound(id) else {
        return Ok(());
    };
    if out.is_empty() {
        return Ok(());
    }
    while !out.is_empty() {
        let written = {
            let mut slices = [IoSlice::new(&[]); 16];
            let n = out.chunks_vectored(&mut slices);
            stream.write_vectored(slices.get(..n).unwrap_or_default())
        };
        match written {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => out.advance(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    broker.handle_flushed(id, now);
    Ok(())
}
