//! Per-read timeouts on an HTTP/1.1 connection. Locust's clients time out as Python's sockets do:
//! when no byte arrives for `timeout` seconds, however long the whole response takes (requests
//! documents its read timeout so, and geventhttpclient's `network_timeout` is a socket timeout).
//! A reply that trickles in, headers included, must therefore succeed, and a silent server fail.
//!
//! The connection's task owns the socket, so the request in flight sets the limit through a shared
//! `ReadLimit`; the pool clears it when the connection goes back idle, where a read waits for as
//! long as the server keeps the connection open.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The read timeout of one connection, in nanoseconds (0: none).
#[derive(Default, Debug)]
pub struct ReadLimit(AtomicU64);

impl ReadLimit {
    pub fn set(&self, limit: Option<Duration>) {
        let nanos = limit.map_or(0, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
        });
        self.0.store(nanos, Ordering::Relaxed);
    }

    fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }
}

/// `io` with a timer that starts when a read has to wait and stops when bytes arrive.
pub struct TimedIo<I> {
    io: I,
    limit: Arc<ReadLimit>,
    timer: Pin<Box<Sleep>>,
    armed: bool,
}

impl<I> TimedIo<I> {
    pub fn new(io: I, limit: Arc<ReadLimit>) -> Self {
        TimedIo {
            io,
            limit,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed: false,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for TimedIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Poll::Ready(r) = Pin::new(&mut this.io).poll_read(cx, buf) {
            this.armed = false;
            return Poll::Ready(r);
        }
        let Some(limit) = this.limit.get() else {
            this.armed = false;
            return Poll::Pending;
        };
        if !this.armed {
            // Far beyond any real timeout (1e20 s): no deadline, rather than an overflow.
            let Some(deadline) = Instant::now().checked_add(limit) else {
                return Poll::Pending;
            };
            this.timer.as_mut().reset(deadline);
            this.armed = true;
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.armed = false;
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for TimedIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn the_timer_restarts_with_every_byte_and_fires_on_silence() {
        let (client, mut server) = tokio::io::duplex(64);
        let limit = Arc::new(ReadLimit::default());
        limit.set(Some(Duration::from_secs(1)));
        let mut io = TimedIo::new(client, limit.clone());
        let trickle = tokio::spawn(async move {
            for b in b"slow" {
                tokio::time::sleep(Duration::from_millis(900)).await;
                server.write_all(&[*b]).await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(server);
        });
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        for _ in 0..4 {
            io.read_exact(&mut byte).await.unwrap();
            got.push(byte[0]);
        }
        assert_eq!(got, b"slow"); // 3.6 s in all, never 1 s without a byte
        let e = io.read(&mut byte).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        trickle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn no_limit_waits_and_a_huge_one_is_none() {
        let (client, mut server) = tokio::io::duplex(64);
        let limit = Arc::new(ReadLimit::default());
        let mut io = TimedIo::new(client, limit.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            server.write_all(b"x").await.unwrap();
        });
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await.unwrap();
        limit.set(Some(Duration::MAX));
        assert_eq!(limit.get(), Some(Duration::from_nanos(u64::MAX)));
    }
}
