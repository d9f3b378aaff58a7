//! One socket's transport: plain, or TLS in either role (the server side of an accepted
//! connection, the client side of one natsws dialed out), with adaptive reads and vectored
//! writes.
//!
//! Reads follow docs/style.md §4 and §6: read until `WouldBlock` into spare capacity of one
//! `BytesMut` whose read size adapts (4 KiB doubling to 64 KiB while reads fill it, halving
//! after two short reads), released when the connection is idle and the buffer is empty. For TLS
//! every readable event is `read_tls` until `WouldBlock`, then `process_new_packets`, then all
//! plaintext is drained, so nothing stays buffered inside rustls (sozu#460).

use std::io::{self, IoSlice, Read as _, Write as _};

use bytes::{Buf as _, BytesMut};
use mio::Interest;
use mio::net::TcpStream;

/// Smallest read size.
pub(crate) const MIN_READ_BYTES: usize = 4 * 1024;
/// Largest read size.
pub(crate) const MAX_READ_BYTES: usize = 64 * 1024;
/// Most bytes read from one connection per tick before others get a turn.
pub(crate) const READ_BUDGET_BYTES: usize = 256 * 1024;

/// The socket, possibly wrapped in TLS (`rustls::Connection`: server or client side).
#[derive(Debug)]
pub(crate) struct Transport {
    pub(crate) stream: TcpStream,
    pub(crate) tls: Option<Box<rustls::Connection>>,
    /// Adaptive read size.
    read_size: usize,
    short_reads: u8,
}

/// What one read pass produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadOutcome {
    /// Plaintext bytes appended to the buffer.
    pub(crate) n_read: usize,
    /// The peer closed (EOF or TLS close_notify).
    pub(crate) eof: bool,
    /// The read budget ran out before `WouldBlock`: run this connection again.
    pub(crate) budget_exhausted: bool,
}

/// A read failure, with the text for the debug log.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    Tls(rustls::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl Transport {
    pub(crate) fn new(stream: TcpStream, tls: Option<Box<rustls::Connection>>) -> Self {
        Self {
            stream,
            tls,
            read_size: MIN_READ_BYTES,
            short_reads: 0,
        }
    }

    /// True while a TLS handshake is still running.
    pub(crate) fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// Reads until `WouldBlock`, EOF or the budget, appending plaintext to `buf`.
    pub(crate) fn read_into(&mut self, buf: &mut BytesMut) -> Result<ReadOutcome, ReadError> {
        let mut out = ReadOutcome::default();
        if self.tls.is_some() {
            return self.read_tls_into(buf);
        }
        loop {
            if out.n_read >= READ_BUDGET_BYTES {
                out.budget_exhausted = true;
                return Ok(out);
            }
            let start = buf.len();
            let want = self.read_size;
            buf.resize(start + want, 0);
            let res = self.stream.read(&mut buf[start..]);
            match res {
                Ok(0) => {
                    buf.truncate(start);
                    out.eof = true;
                    return Ok(out);
                }
                Ok(n) => {
                    buf.truncate(start + n);
                    out.n_read += n;
                    self.adapt(n == want);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(start),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    buf.truncate(start);
                    return Ok(out);
                }
                Err(e) => {
                    buf.truncate(start);
                    return Err(ReadError::Io(e));
                }
            }
        }
    }

    fn adapt(&mut self, filled: bool) {
        if filled {
            self.short_reads = 0;
            self.read_size = (self.read_size * 2).min(MAX_READ_BYTES);
        } else {
            self.short_reads += 1;
            if self.short_reads >= 2 {
                self.short_reads = 0;
                self.read_size = (self.read_size / 2).max(MIN_READ_BYTES);
            }
        }
    }

    fn read_tls_into(&mut self, buf: &mut BytesMut) -> Result<ReadOutcome, ReadError> {
        let mut out = ReadOutcome::default();
        let Some(tls) = self.tls.as_mut() else {
            return Ok(out);
        };
        let mut raw_read = 0usize;
        loop {
            if raw_read >= READ_BUDGET_BYTES {
                out.budget_exhausted = true;
                break;
            }
            match tls.read_tls(&mut self.stream) {
                Ok(0) => {
                    out.eof = true;
                    break;
                }
                Ok(n) => {
                    raw_read += n;
                    let state = tls.process_new_packets().map_err(|e| {
                        // Queue the alert; the caller flushes it before closing.
                        ReadError::Tls(e)
                    })?;
                    if state.peer_has_closed() {
                        out.eof = true;
                    }
                    drain_plaintext(tls, buf, state.plaintext_bytes_to_read(), &mut out.n_read)?;
                    if out.eof {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        // Plaintext may remain buffered even after WouldBlock.
        drain_plaintext(tls, buf, 0, &mut out.n_read)?;
        Ok(out)
    }

    /// Writes TLS records already produced by rustls. Returns false on `WouldBlock` with data left.
    pub(crate) fn write_tls_pending(&mut self) -> io::Result<bool> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(true);
        };
        while tls.wants_write() {
            match tls.write_tls(&mut self.stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Writes `slices` (plaintext) once: to the socket, or into rustls and on to the socket.
    /// Returns the plaintext bytes accepted (0 when the socket would block).
    pub(crate) fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.tls.is_some() {
            if !self.write_tls_pending()? {
                return Ok(0);
            }
            // One vectored write: rustls fragments the slices together into full records
            // (a write per slice would seal a record per slice, the frame header alone in one).
            let accepted = match self.tls.as_mut() {
                Some(tls) => tls.writer().write_vectored(slices)?,
                None => 0,
            };
            self.write_tls_pending()?;
            return Ok(accepted);
        }
        loop {
            match self.stream.write_vectored(slices) {
                Ok(0) if slices.iter().any(|s| !s.is_empty()) => {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes a plain byte buffer (handshake refusals, HTTP replies) until it is empty or the
    /// socket would block. Returns whether it was drained.
    pub(crate) fn write_buf(&mut self, out: &mut BytesMut) -> io::Result<bool> {
        while !out.is_empty() {
            let n = self.write_vectored(&[IoSlice::new(out)])?;
            if n == 0 {
                return Ok(false);
            }
            out.advance(n.min(out.len()));
        }
        Ok(true)
    }

    /// True when bytes wait in the transport itself (TLS records not yet on the socket).
    pub(crate) fn has_pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Sends close_notify (TLS) so the peer sees a clean end.
    pub(crate) fn send_close_notify(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
        }
        let _ = self.write_tls_pending();
    }
}

/// Moves the plaintext rustls holds into `buf`. `available` is what `process_new_packets`
/// reported (0 when unknown): that much is taken in one read, not in [`MIN_READ_BYTES`] pieces
/// each zeroed first.
fn drain_plaintext(
    tls: &mut rustls::Connection,
    buf: &mut BytesMut,
    available: usize,
    n_read: &mut usize,
) -> Result<(), ReadError> {
    let mut want = available.max(MIN_READ_BYTES);
    loop {
        let start = buf.len();
        buf.resize(start + want, 0);
        want = MIN_READ_BYTES;
        match tls.reader().read(&mut buf[start..]) {
            Ok(0) => {
                buf.truncate(start);
                return Ok(());
            }
            Ok(n) => {
                buf.truncate(start + n);
                *n_read += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                buf.truncate(start);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                buf.truncate(start);
                return Ok(());
            }
            Err(e) => {
                buf.truncate(start);
                return Err(ReadError::Io(e));
            }
        }
    }
}

/// Interest for a connection: always readable; writable only while output is pending.
pub(crate) fn interest(write_pending: bool) -> Interest {
    if write_pending {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    }
}
