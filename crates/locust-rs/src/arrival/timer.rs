//! The alarm of an arrival-rate clock that the gevent hub drives (Linux): a timerfd the hub
//! watches like any socket. It fires at the nanosecond it was set for (an hrtimer with no slack),
//! so the hub wakes once per due iteration, and no thread of our own has to wake first and then
//! wake the hub.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

pub struct Timer(OwnedFd);

impl Timer {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; on success we own the fd from here on.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nothing else owns.
        Ok(Timer(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn fd(&self) -> i32 {
        self.0.as_raw_fd()
    }

    /// Fires once, `after` from now (at once for zero); `None` disarms it.
    pub fn set(&self, after: Option<Duration>) {
        let value = match after {
            // A zero it_value disarms a timerfd: the soonest it can fire is 1 ns from now.
            Some(d) => libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: libc::c_long::from(d.subsec_nanos().max(u32::from(d.is_zero()))),
            },
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: a live itimerspec on our own timerfd. It cannot fail for a valid fd and value.
        unsafe {
            libc::timerfd_settime(self.fd(), 0, &spec, std::ptr::null_mut());
        }
    }

    /// Makes the fd unreadable until the next expiry (EAGAIN: it had not fired).
    pub fn clear(&self) {
        let mut expirations = 0u64;
        // SAFETY: reads 8 bytes into a live u64.
        unsafe {
            libc::read(
                self.fd(),
                &mut expirations as *mut u64 as *mut libc::c_void,
                8,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(t: &Timer, timeout_ms: i32) -> bool {
        let mut p = libc::pollfd {
            fd: t.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        unsafe { libc::poll(&mut p, 1, timeout_ms) == 1 }
    }

    #[test]
    fn fires_when_set_not_before_and_not_once_disarmed() {
        let t = Timer::new().unwrap_or_else(|e| panic!("timerfd: {e}"));
        assert!(!readable(&t, 0));
        t.set(Some(Duration::ZERO));
        assert!(readable(&t, 5_000), "set at once, it fires");
        t.clear();
        assert!(!readable(&t, 0), "cleared, it waits for the next expiry");
        let set_at = std::time::Instant::now();
        t.set(Some(Duration::from_millis(30)));
        assert!(readable(&t, 5_000));
        assert!(set_at.elapsed() >= Duration::from_millis(30), "never early");
        t.clear();
        t.set(Some(Duration::from_secs(3600)));
        t.set(None);
        assert!(!readable(&t, 0));
        t.clear(); // nothing pending: must not block
    }
}
