//! The wakeup the gevent hub watches: a handle that becomes readable when completions are waiting.
//!
//! gevent can watch a file descriptor on Unix and only a socket on Windows, so there are three
//! backends: an eventfd on Linux (one fd, an 8-byte counter), a non-blocking pipe on every Unix
//! (and on Linux when `LOCUST_RS_WAKEUP=pipe`, so the test suite runs on it too), and a connected
//! pair of loopback sockets on Windows. The bridge writes at most once per drain cycle, so the
//! cost of a backend is one syscall either way.

use std::io;

pub struct Notify(Backend);

enum Backend {
    #[cfg(target_os = "linux")]
    EventFd(std::os::fd::OwnedFd),
    #[cfg(unix)]
    Pipe {
        read: std::io::PipeReader,
        write: std::io::PipeWriter,
    },
    #[cfg(windows)]
    Socket {
        read: std::net::TcpStream,
        write: std::net::TcpStream,
    },
}

/// Names the step that failed, as the runtime reports it.
fn internal(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Notify {
    /// The platform's backend, or the pipe where `LOCUST_RS_WAKEUP=pipe` asks for it.
    pub fn new() -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        if std::env::var("LOCUST_RS_WAKEUP").as_deref() != Ok("pipe") {
            return Self::eventfd();
        }
        #[cfg(unix)]
        return Self::pipe();
        #[cfg(windows)]
        return Self::socketpair();
    }

    #[cfg(target_os = "linux")]
    fn eventfd() -> io::Result<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscall; on success we own the fd from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(internal("eventfd", io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh descriptor nothing else owns.
        Ok(Self(Backend::EventFd(unsafe {
            std::os::fd::OwnedFd::from_raw_fd(fd)
        })))
    }

    #[cfg(unix)]
    fn pipe() -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        // std's pipe is close-on-exec already; both ends must not block
        let (read, write) = std::io::pipe().map_err(|e| internal("pipe", e))?;
        for fd in [read.as_raw_fd(), write.as_raw_fd()] {
            // SAFETY: fcntl on descriptors we own.
            let ok = unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
            };
            if !ok {
                return Err(internal("pipe", io::Error::last_os_error()));
            }
        }
        Ok(Self(Backend::Pipe { read, write }))
    }

    #[cfg(windows)]
    fn socketpair() -> io::Result<Self> {
        // Windows has no socketpair(): connect a loopback listener to itself, then drop it.
        let err = |e| internal("wakeup socket pair", e);
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(err)?;
        let write =
            std::net::TcpStream::connect(listener.local_addr().map_err(err)?).map_err(err)?;
        let (read, _) = listener.accept().map_err(err)?;
        for s in [&read, &write] {
            s.set_nonblocking(true).map_err(err)?;
            s.set_nodelay(true).map_err(err)?;
        }
        Ok(Self(Backend::Socket { read, write }))
    }

    /// The backend in force, for tests (`locust_rs._native.wakeup_backend()`).
    pub fn backend(&self) -> &'static str {
        match self.0 {
            #[cfg(target_os = "linux")]
            Backend::EventFd(_) => "eventfd",
            #[cfg(unix)]
            Backend::Pipe { .. } => "pipe",
            #[cfg(windows)]
            Backend::Socket { .. } => "socketpair",
        }
    }

    /// What the Python side watches: a file descriptor, or a socket handle on Windows.
    pub fn handle(&self) -> i64 {
        match &self.0 {
            #[cfg(target_os = "linux")]
            Backend::EventFd(fd) => i64::from(std::os::fd::AsRawFd::as_raw_fd(fd)),
            #[cfg(unix)]
            Backend::Pipe { read, .. } => i64::from(std::os::fd::AsRawFd::as_raw_fd(read)),
            #[cfg(windows)]
            Backend::Socket { read, .. } => {
                std::os::windows::io::AsRawSocket::as_raw_socket(read) as i64
            }
        }
    }

    /// Makes the handle readable. A full buffer (EAGAIN) leaves it readable, which is all we need.
    pub fn wake(&self) {
        use std::io::Write;
        match &self.0 {
            #[cfg(target_os = "linux")]
            Backend::EventFd(fd) => {
                let one: u64 = 1;
                // SAFETY: writes 8 bytes from a live u64 to our own eventfd.
                unsafe {
                    libc::write(
                        std::os::fd::AsRawFd::as_raw_fd(fd),
                        &one as *const u64 as *const libc::c_void,
                        8,
                    );
                }
            }
            #[cfg(unix)]
            Backend::Pipe { write, .. } => {
                let _ = (&*write).write(&[1]);
            }
            #[cfg(windows)]
            Backend::Socket { write, .. } => {
                let _ = (&*write).write(&[1]);
            }
        }
    }

    /// Makes the handle unreadable again (until the next `wake`).
    pub fn reset(&self) {
        use std::io::Read;
        let mut buf = [0u8; 64];
        match &self.0 {
            #[cfg(target_os = "linux")]
            Backend::EventFd(fd) => {
                // SAFETY: reads 8 bytes into a live buffer; EAGAIN just means nothing was pending.
                unsafe {
                    libc::read(
                        std::os::fd::AsRawFd::as_raw_fd(fd),
                        buf.as_mut_ptr() as *mut libc::c_void,
                        8,
                    );
                }
            }
            // one write per drain cycle, so one read nearly always empties it; loop for the rest
            #[cfg(unix)]
            Backend::Pipe { read, .. } => {
                while matches!((&*read).read(&mut buf), Ok(n) if n > 0) {}
            }
            #[cfg(windows)]
            Backend::Socket { read, .. } => {
                while matches!((&*read).read(&mut buf), Ok(n) if n > 0) {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(n: &Notify) -> bool {
        #[cfg(unix)]
        {
            let mut p = libc::pollfd {
                fd: n.handle() as i32,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd, zero timeout.
            unsafe { libc::poll(&mut p, 1, 0) == 1 }
        }
        #[cfg(not(unix))]
        {
            let _ = n;
            true
        }
    }

    fn check(n: Notify) {
        assert!(!readable(&n));
        n.wake();
        n.wake();
        assert!(readable(&n));
        n.reset();
        assert!(!readable(&n));
        n.reset(); // nothing pending: must not block
    }

    #[test]
    fn every_backend_wakes_and_resets() {
        #[cfg(target_os = "linux")]
        check(Notify::eventfd().unwrap());
        #[cfg(unix)]
        check(Notify::pipe().unwrap());
        #[cfg(windows)]
        check(Notify::socketpair().unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn a_full_pipe_still_wakes_without_blocking() {
        let n = Notify::pipe().unwrap();
        for _ in 0..200_000 {
            n.wake();
        }
        assert!(readable(&n));
        n.reset();
        assert!(!readable(&n));
    }
}
