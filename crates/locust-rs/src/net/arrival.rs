//! When a connection's last bytes arrived, by the kernel's stamp, on the monotonic clock.
//!
//! Linux stamps each received segment with `CLOCK_REALTIME` (`SO_TIMESTAMPING`, software RX
//! stamps). A response's start is taken on the monotonic clock (`Instant`), so a stamp is moved
//! onto it at the read: its arrival is now less how long ago the stamp was, by the realtime clock
//! read now. A realtime clock stepped between the arrival and the read would move that point; it
//! can never put it after the read, and an arrival before the request's start is not used (the
//! time then ends at the read, as without stamps), so a response time is never negative.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// The monotonic origin stamps are kept against (the first use in the process).
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// The kernel's arrival time of the last bytes a connection read, as signed nanoseconds from
/// `base()` (`NONE`: none, or a read whose bytes came unstamped).
#[derive(Debug)]
pub struct LastArrival(AtomicI64);

const NONE: i64 = i64::MIN;

impl Default for LastArrival {
    fn default() -> Self {
        LastArrival(AtomicI64::new(NONE))
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl LastArrival {
    pub fn record(&self, at: Instant) {
        let b = base();
        let offset = match at.checked_duration_since(b) {
            Some(after) => nanos(after),
            None => nanos(b.duration_since(at)).saturating_neg().max(NONE + 1),
        };
        self.0.store(offset, Ordering::Relaxed);
    }

    /// Bytes arrived without a stamp: what arrived last is unknown.
    pub fn forget(&self) {
        self.0.store(NONE, Ordering::Relaxed);
    }

    /// When the last bytes read arrived, if that was at or after `since` (a request's start).
    pub fn since(&self, since: Instant) -> Option<Instant> {
        let offset = self.0.load(Ordering::Relaxed);
        if offset == NONE {
            return None;
        }
        let magnitude = Duration::from_nanos(offset.unsigned_abs());
        let at = if offset >= 0 {
            base().checked_add(magnitude)
        } else {
            base().checked_sub(magnitude)
        };
        at.filter(|at| *at >= since)
    }
}

/// Where a segment stamped `stamp` (realtime, since the epoch) arrived on the monotonic clock,
/// given both clocks read at once now. A stamp after `now_realtime` (the realtime clock stepped
/// back since) is now.
pub fn arrival(stamp: Duration, now_realtime: Duration, now: Instant) -> Instant {
    let ago = now_realtime.saturating_sub(stamp);
    now.checked_sub(ago).unwrap_or(now)
}

/// The realtime clock, as the kernel's stamps read it.
pub fn realtime_now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Whether sockets ask for the kernel's receive stamps: yes, unless `LOCUST_RS_RX_STAMPS` is `0`,
/// `off`, `false` or `no` (to compare with the clock at the read, or to rule the stamps out).
pub fn stamps_wanted() -> bool {
    static WANTED: OnceLock<bool> = OnceLock::new();
    *WANTED.get_or_init(|| {
        !std::env::var("LOCUST_RS_RX_STAMPS").is_ok_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "0" | "off" | "false" | "no"
            )
        })
    })
}

/// Why an HTTP/1.1 connection has no stamps.
pub fn unstamped_reason() -> &'static str {
    if stamps_wanted() {
        "the kernel refused receive stamps"
    } else {
        "turned off by LOCUST_RS_RX_STAMPS"
    }
}

/// How many responses were timed to the kernel's arrival stamp, and how many by the clock at the
/// read (HTTP/2, stamps refused, a connection without them); and why the first of those had none.
static STAMPED: AtomicU64 = AtomicU64::new(0);
static UNSTAMPED: AtomicU64 = AtomicU64::new(0);
static UNSTAMPED_WHY: OnceLock<String> = OnceLock::new();

/// Counts one response's end: to its kernel stamp, or (with `why`) by the clock at the read.
pub fn count(stamped: bool, why: &str) {
    if stamped {
        STAMPED.fetch_add(1, Ordering::Relaxed);
    } else {
        UNSTAMPED.fetch_add(1, Ordering::Relaxed);
        let _ = UNSTAMPED_WHY.set(why.to_owned());
    }
}

/// (stamped, unstamped, why the first unstamped one was) since the process started.
pub fn counts() -> (u64, u64, String) {
    (
        STAMPED.load(Ordering::Relaxed),
        UNSTAMPED.load(Ordering::Relaxed),
        UNSTAMPED_WHY.get().cloned().unwrap_or_default(),
    )
}

/// The end of a response that arrived on a connection whose last arrival is `last` (None: no
/// stamps there, for `why`): its kernel stamp if taken after `start`, else now.
pub fn end(last: Option<&LastArrival>, start: Instant, why: &str) -> Instant {
    match last.and_then(|l| l.since(start)) {
        Some(at) => {
            count(true, "");
            at
        }
        None => {
            count(
                false,
                if last.is_some() {
                    "a read without a stamp"
                } else {
                    why
                },
            );
            Instant::now()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_moves_onto_the_monotonic_clock_by_its_age() {
        let now = Instant::now();
        let rt = Duration::from_secs(1_800_000_000);
        let at = arrival(rt - Duration::from_millis(50), rt, now);
        assert_eq!(now.duration_since(at), Duration::from_millis(50));
    }

    #[test]
    fn a_realtime_clock_stepped_back_never_puts_an_arrival_after_the_read() {
        let now = Instant::now();
        let rt = Duration::from_secs(1_800_000_000);
        // stamped at rt, then the clock was set back an hour before the read
        let at = arrival(rt, rt - Duration::from_secs(3600), now);
        assert_eq!(at, now);
    }

    #[test]
    fn a_realtime_clock_stepped_forward_gives_no_negative_time() {
        let start = Instant::now();
        let last = LastArrival::default();
        let rt = Duration::from_secs(1_800_000_000);
        // stamped now, then the clock was set an hour ahead before the read: the arrival lands an
        // hour before the start, and is not used
        last.record(arrival(rt, rt + Duration::from_secs(3600), Instant::now()));
        assert_eq!(last.since(start), None);
        let e = end(Some(&last), start, "");
        assert!(e >= start);
    }

    #[test]
    fn an_arrival_before_the_start_belongs_to_an_earlier_response() {
        let last = LastArrival::default();
        last.record(Instant::now());
        std::thread::sleep(Duration::from_millis(2));
        let start = Instant::now();
        assert_eq!(last.since(start), None);
        last.record(Instant::now());
        assert!(last.since(start).is_some_and(|at| at >= start));
        last.forget();
        assert_eq!(last.since(start), None);
    }
}
