//! A TCP socket that reads with `recvmsg`, to get the kernel's receive stamp of what it read
//! (Linux, `SO_TIMESTAMPING` with software RX stamps). What a read returns is exactly what
//! `read` would; beside it, the arrival of the last segment it read goes to the connection's
//! `WireTimes`, as does the moment just before a request's first write. Where the kernel refuses
//! the option (another OS, a sandbox), the socket reads as plain TCP and responses are timed at
//! the read, as before.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::arrival::WireTimes;

pub struct StampedTcp {
    tcp: TcpStream,
    wire: Arc<WireTimes>,
    stamping: bool,
}

impl StampedTcp {
    /// `tcp`, with receive stamps turned on where the kernel allows them.
    pub fn new(tcp: TcpStream, wire: Arc<WireTimes>) -> Self {
        let stamping = super::arrival::stamps_wanted() && sys::enable(&tcp).is_ok();
        StampedTcp {
            tcp,
            wire,
            stamping,
        }
    }

    /// Whether reads carry the kernel's stamps.
    pub fn stamping(&self) -> bool {
        self.stamping
    }
}

impl AsyncRead for StampedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            // Nothing to read into: not an end of file, and no syscall.
            return Poll::Ready(Ok(()));
        }
        #[cfg(feature = "test-hooks")]
        {
            std::task::ready!(this.tcp.poll_read_ready(cx))?;
            hooks::after_readiness();
        }
        if !this.stamping {
            return Pin::new(&mut this.tcp).poll_read(cx, buf);
        }
        sys::poll_read_stamped(&this.tcp, &this.wire, cx, buf)
    }
}

impl AsyncWrite for StampedTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.stamping {
            self.wire.before_write();
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.stamping {
            self.wire.before_write();
        }
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// A test hook: park the thread that reads, once a socket is readable and before it reads, as a
/// starved engine thread would be (`_native._park_after_readiness`; the `test-hooks` feature).
#[cfg(feature = "test-hooks")]
pub mod hooks {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    static PARK_MS: AtomicU64 = AtomicU64::new(0);
    static PARK_TIMES: AtomicU64 = AtomicU64::new(0);

    pub fn arm(ms: u64, times: u64) {
        PARK_MS.store(ms, Ordering::Relaxed);
        PARK_TIMES.store(times, Ordering::Relaxed);
    }

    pub fn after_readiness() {
        let taken =
            PARK_TIMES.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if taken.is_ok() {
            std::thread::sleep(Duration::from_millis(PARK_MS.load(Ordering::Relaxed)));
        }
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::mem::{size_of, size_of_val, MaybeUninit};
    use std::os::fd::AsRawFd;
    use std::task::{ready, Context, Poll};
    use std::time::{Duration, Instant};

    use tokio::io::{Interest, ReadBuf};
    use tokio::net::TcpStream;

    use crate::net::arrival::{arrival, realtime_now, WireTimes};

    pub fn enable(tcp: &TcpStream) -> io::Result<()> {
        let flags: libc::c_uint =
            libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
        // SAFETY: a valid socket and a c_uint option of the size given.
        let rc = unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPING,
                (&flags as *const libc::c_uint).cast(),
                size_of::<libc::c_uint>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn poll_read_stamped(
        tcp: &TcpStream,
        last: &WireTimes,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(tcp.poll_read_ready(cx))?;
            // SAFETY: recvmsg only writes the bytes it reports, which are then marked filled.
            let unfilled = unsafe { buf.unfilled_mut() };
            let room = unfilled.len();
            let mut got = None;
            let tried = tcp.try_io(Interest::READABLE, || {
                let (n, stamp) = recv(tcp.as_raw_fd(), &mut *unfilled)?;
                got = Some((n, stamp));
                // A short read drained the socket: let the readiness go now, as tokio's own read does, or
                // the next read would be a syscall that only says EAGAIN (one more per response).
                if n > 0 && n < room {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(())
            });
            match (got, tried) {
                (Some((n, stamp)), _) => {
                    // SAFETY: the kernel wrote n bytes at the start of the unfilled part.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    if n > 0 {
                        match stamp {
                            Some(s) => last.record(arrival(s, realtime_now(), Instant::now())),
                            None => last.forget(),
                        }
                    }
                    return Poll::Ready(Ok(()));
                }
                (None, Err(e)) if e.kind() == io::ErrorKind::WouldBlock => continue,
                (None, Err(e)) => return Poll::Ready(Err(e)),
                (None, Ok(())) => return Poll::Ready(Ok(())),
            }
        }
    }

    /// One `recvmsg`: the bytes read, and the software receive stamp of the last segment read.
    fn recv(fd: i32, buf: &mut [MaybeUninit<u8>]) -> io::Result<(usize, Option<Duration>)> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // Room for SCM_TIMESTAMPING (three timespecs) and its header, aligned as cmsghdr wants.
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; all-zero is its empty value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control) as _;
        // SAFETY: msg points at live buffers of the lengths it gives.
        let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut stamp = None;
        // SAFETY: the CMSG_* walk stays within msg_controllen, as the kernel filled it.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPING
                {
                    let ts: [libc::timespec; 3] =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    let sw = ts[0];
                    if sw.tv_sec > 0 {
                        stamp = Some(Duration::new(sw.tv_sec as u64, sw.tv_nsec as u32));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok((n as usize, stamp))
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;
    use tokio::net::TcpStream;

    use crate::net::arrival::WireTimes;

    pub fn enable(_tcp: &TcpStream) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no kernel receive stamps on this OS",
        ))
    }

    pub fn poll_read_stamped(
        _tcp: &TcpStream,
        _last: &WireTimes,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "not reached",
        )))
    }
}
