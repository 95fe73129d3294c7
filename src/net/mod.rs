//! Connections: a TCP stream that may be upgraded to TLS (STARTTLS), and a
//! bounded line reader used by the IMAP, SMTP and HTTP sessions.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_net::TcpStream;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Run `fut` with a deadline; `None` on timeout.
pub async fn timeout<T>(
    d: std::time::Duration,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        async_io::Timer::after(d).await;
        None
    })
    .await
}

pub type TlsStream = futures_rustls::server::TlsStream<TcpStream>;

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
    /// IMAP COMPRESS=DEFLATE (RFC 4978) on top of another connection.
    Deflate(Box<Deflate>),
    /// Taken out for a STARTTLS upgrade.
    Closed,
}

pub mod deflate;
pub use deflate::Deflate;

impl Conn {
    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_) | Conn::Deflate(_))
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Deflate(d) => d.poll_read(cx, buf),
            Conn::Closed => Poll::Ready(Ok(0)),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Deflate(d) => d.writer().poll_write(cx, buf),
            Conn::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Deflate(d) => d.writer().poll_flush(cx),
            Conn::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_close(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Conn::Deflate(d) => d.writer().poll_close(cx),
            Conn::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

pub mod lines;
pub use lines::Line;

/// Buffered reader/writer over a [`Conn`] with bounded lines. The read buffer
/// is released when empty, so idle sessions hold only a few bytes.
pub struct Stream {
    pub conn: Conn,
    lines: lines::Lines,
    out: Vec<u8>,
    /// Whether the last line `read_line` returned ended in CRLF (not a bare LF).
    pub last_crlf: bool,
    /// Every read fails with `TimedOut` once this instant has passed: a
    /// deadline on every read in every protocol state, by construction.
    /// Sessions move it forward for each phase (`set_deadline`).
    deadline: Instant,
    /// Bytes read since this session last gave the loop to the others.
    read_since_yield: usize,
}

/// Until a session sets its own, reads must finish within this.
pub const DEFAULT_READ_DEADLINE: Duration = Duration::from_secs(60);
/// Each write (one `flush`) must finish within this: a peer that stops
/// reading cannot hold its slot.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// Slowest upload accepted for large literals and DATA, in bytes/s.
pub const MIN_UPLOAD_RATE: u64 = 16 * 1024;

/// A deadline for receiving `n` bytes: a minute plus `n` at [`MIN_UPLOAD_RATE`].
pub fn transfer_time(n: u64) -> Duration {
    Duration::from_secs(60 + n / MIN_UPLOAD_RATE)
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "read deadline passed")
}

/// A session reading this much without waiting yields to the others.
const YIELD_EVERY: usize = 64 * 1024;
/// What one command costs against that budget beyond its bytes: a pipeline
/// of tiny commands (`a NOOP` is 8 bytes) costs the thread far more than
/// its size, so a session yields after at most 64 commands.
const COMMAND_COST: usize = 1024;
/// Line reads use a small stack buffer: an idle session waits inside this
/// read, and the buffer is part of its future (memory per idle session).
const LINE_CHUNK: usize = 512;

impl Stream {
    pub fn new(conn: Conn) -> Stream {
        Stream {
            conn,
            lines: lines::Lines::new(),
            out: Vec::new(),
            last_crlf: true,
            deadline: Instant::now() + DEFAULT_READ_DEADLINE,
            read_since_yield: 0,
        }
    }

    /// Reads from now on must be done within `d`.
    pub fn set_deadline(&mut self, d: Duration) {
        self.deadline = Instant::now() + d;
    }

    /// A read of the connection that gives up at the deadline.
    ///
    /// A read of a socket with data waiting completes without ever
    /// returning to the executor, so a peer that sends fast could keep the
    /// one thread to itself: after [`YIELD_EVERY`] bytes the session yields
    /// once, behind every other ready task.
    async fn read_conn(
        conn: &mut Conn,
        deadline: Instant,
        since_yield: &mut usize,
        dst: &mut [u8],
    ) -> io::Result<usize> {
        if Instant::now() >= deadline {
            return Err(timed_out());
        }
        if *since_yield >= YIELD_EVERY {
            *since_yield = 0;
            futures_lite::future::yield_now().await;
        }
        let n = futures_lite::future::or(conn.read(dst), async {
            async_io::Timer::at(deadline).await;
            Err(timed_out())
        })
        .await?;
        *since_yield += n;
        Ok(n)
    }

    /// Call once per command (or request) handled: yields to the other
    /// sessions when this one has used its budget ([`COMMAND_COST`]).
    pub async fn command_done(&mut self) {
        self.read_since_yield += COMMAND_COST;
        if self.read_since_yield >= YIELD_EVERY {
            self.read_since_yield = 0;
            futures_lite::future::yield_now().await;
        }
    }

    /// Take the connection out (for STARTTLS), leaving `Closed`.
    pub fn take_conn(&mut self) -> Conn {
        std::mem::replace(&mut self.conn, Conn::Closed)
    }

    /// Bytes received but not yet consumed (must be empty before STARTTLS: RFC 3207 §4.2).
    pub fn buffered(&self) -> usize {
        self.lines.buffered()
    }

    /// Take the bytes received but not yet consumed (after an HTTP upgrade
    /// they belong to the new protocol).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        self.lines.take_into(self.lines.buffered(), &mut rest);
        rest
    }

    /// Cancel-safe: bytes are only appended once the read completed, so a
    /// `read_line` raced against another future (IDLE) loses nothing.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; LINE_CHUNK];
        let n = Self::read_conn(
            &mut self.conn,
            self.deadline,
            &mut self.read_since_yield,
            &mut chunk,
        )
        .await?;
        self.lines.push(&chunk[..n]);
        Ok(n)
    }

    /// Read one line of at most `max` bytes (excluding the line ending).
    pub async fn read_line(&mut self, max: usize) -> io::Result<Line> {
        loop {
            if let Some(line) = self.lines.next(max) {
                self.last_crlf = self.lines.last_crlf;
                return Ok(line);
            }
            if self.fill().await? == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Read exactly `n` bytes into `dst` (appending).
    /// Buffered bytes first, then straight from the connection into `dst`
    /// in large reads (literals, request bodies).
    pub async fn read_exact_into(&mut self, n: usize, dst: &mut Vec<u8>) -> io::Result<bool> {
        let take = self.lines.take_into(n, dst);
        let mut need = n - take;
        while need > 0 {
            let old = dst.len();
            let want = need.min(64 * 1024);
            dst.resize(old + want, 0);
            let got = Self::read_conn(
                &mut self.conn,
                self.deadline,
                &mut self.read_since_yield,
                &mut dst[old..],
            )
            .await;
            let got = match got {
                Ok(g) => g,
                Err(e) => {
                    dst.truncate(old);
                    return Err(e);
                }
            };
            dst.truncate(old + got);
            if got == 0 {
                return Ok(false);
            }
            need -= got;
        }
        Ok(true)
    }

    /// Queue bytes for sending (sent on `flush`).
    pub fn queue(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        let conn = &mut self.conn;
        let out = std::mem::take(&mut self.out);
        let write = async {
            if !out.is_empty() {
                conn.write_all(&out).await?;
            }
            conn.flush().await
        };
        match timeout(WRITE_TIMEOUT, write).await {
            Some(r) => r,
            None => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    /// Queue and flush.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.queue(data);
        self.flush().await
    }
}
