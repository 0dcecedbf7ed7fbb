//! When a connection's request went out and its last bytes arrived (by the kernel's stamp), on
//! the monotonic clock, and the response time made of them (`response_time`).
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

/// When a connection's request last went out and its last bytes came in, as signed nanoseconds
/// from `base()`: the moment just before the first write of the request the connection was last
/// handed, and the kernel's arrival stamp of the last bytes read (`NONE`: none yet, or bytes that
/// came unstamped).
#[derive(Debug)]
pub struct WireTimes {
    arrived: AtomicI64,
    sent: AtomicI64,
}

const NONE: i64 = i64::MIN;
/// A request was handed to the connection and none of it is written yet.
const ARMED: i64 = i64::MIN + 1;

impl Default for WireTimes {
    fn default() -> Self {
        WireTimes {
            arrived: AtomicI64::new(NONE),
            sent: AtomicI64::new(NONE),
        }
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn offset_of(at: Instant) -> i64 {
    let b = base();
    match at.checked_duration_since(b) {
        Some(after) => nanos(after),
        None => nanos(b.duration_since(at)).saturating_neg().max(ARMED + 1),
    }
}

fn instant_of(offset: i64) -> Option<Instant> {
    if offset <= ARMED {
        return None;
    }
    let magnitude = Duration::from_nanos(offset.unsigned_abs());
    if offset >= 0 {
        base().checked_add(magnitude)
    } else {
        base().checked_sub(magnitude)
    }
}

impl WireTimes {
    pub fn record(&self, at: Instant) {
        self.arrived.store(offset_of(at), Ordering::Relaxed);
    }

    /// Bytes arrived without a stamp: what arrived last is unknown.
    pub fn forget(&self) {
        self.arrived.store(NONE, Ordering::Relaxed);
    }

    /// When the last bytes read arrived, if that was at or after `since` (a request's start).
    pub fn since(&self, since: Instant) -> Option<Instant> {
        instant_of(self.arrived.load(Ordering::Relaxed)).filter(|at| *at >= since)
    }

    /// When the last bytes read arrived, if they were stamped.
    pub fn latest(&self) -> Option<Instant> {
        instant_of(self.arrived.load(Ordering::Relaxed))
    }

    /// A request is handed to the connection now: its first write will be noted.
    pub fn arm_send(&self) {
        self.sent.store(ARMED, Ordering::Relaxed);
    }

    /// The socket is about to write: the first write since `arm_send` is when the request went out.
    #[inline]
    pub fn before_write(&self) {
        if self.sent.load(Ordering::Relaxed) == ARMED {
            self.sent
                .store(offset_of(Instant::now()), Ordering::Relaxed);
        }
    }

    /// When the request last handed went out, if it was written at or after `since`.
    pub fn sent(&self, since: Instant) -> Option<Instant> {
        instant_of(self.sent.load(Ordering::Relaxed)).filter(|at| *at >= since)
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

/// A response's time, from its request's `start` to its end. `handed` is when the request was
/// handed to its connection, `wire` what the connection's socket noted (None: no stamps there, for
/// `why`).
///
/// With stamps, the end is the kernel's arrival stamp of the last bytes read, and the span from
/// `handed` to the request's first write is left out: it is the engine's own queue (hyper writes
/// from the connection's task, which a busy or starved engine thread polls later), not the
/// server's time. Connecting, the pool and earlier hops, before `handed`, are all counted. Without
/// a stamp, the end is now. Never negative: an arrival or a write before `handed` is not used.
pub fn response_time(
    wire: Option<&WireTimes>,
    start: Instant,
    handed: Instant,
    why: &str,
) -> Duration {
    let Some(wire) = wire else {
        count(false, why);
        return Instant::now().saturating_duration_since(start);
    };
    let sent = wire.sent(handed);
    let before = handed.saturating_duration_since(start);
    let from = sent.unwrap_or(handed);
    let end = match wire.since(from) {
        Some(at) => {
            count(true, "");
            at
        }
        None => {
            count(false, "a read without a stamp");
            Instant::now()
        }
    };
    match sent {
        Some(sent) => before + end.saturating_duration_since(sent),
        None => end.saturating_duration_since(start),
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
        let last = WireTimes::default();
        let rt = Duration::from_secs(1_800_000_000);
        // stamped now, then the clock was set an hour ahead before the read: the arrival lands an
        // hour before the start, and is not used
        last.record(arrival(rt, rt + Duration::from_secs(3600), Instant::now()));
        assert_eq!(last.since(start), None);
        let t = response_time(Some(&last), start, start, "");
        assert!(t < Duration::from_secs(1));
    }

    #[test]
    fn an_arrival_before_the_start_belongs_to_an_earlier_response() {
        let last = WireTimes::default();
        last.record(Instant::now());
        std::thread::sleep(Duration::from_millis(2));
        let start = Instant::now();
        assert_eq!(last.since(start), None);
        last.record(Instant::now());
        assert!(last.since(start).is_some_and(|at| at >= start));
        last.forget();
        assert_eq!(last.since(start), None);
    }

    #[test]
    fn the_engine_queue_between_handing_and_writing_is_left_out() {
        let wire = WireTimes::default();
        let start = Instant::now();
        let handed = start + Duration::from_millis(3); // connecting, say
        wire.arm_send();
        assert_eq!(wire.sent(handed), None, "armed, not yet written");
        let sent = handed + Duration::from_millis(40); // a starved engine thread
        wire.sent.store(offset_of(sent), Ordering::Relaxed);
        wire.before_write(); // a later write of the same request changes nothing
        assert_eq!(wire.sent(handed), Some(sent));
        wire.record(sent + Duration::from_millis(10));
        let t = response_time(Some(&wire), start, handed, "");
        assert_eq!(t, Duration::from_millis(13));
    }

    #[test]
    fn a_write_before_the_request_was_handed_is_not_its_start() {
        let wire = WireTimes::default();
        let start = Instant::now();
        wire.before_write(); // not armed: nothing noted
        assert_eq!(wire.sent(start), None);
        wire.arm_send();
        wire.before_write();
        let sent = wire.sent(start).expect("noted");
        std::thread::sleep(Duration::from_millis(2));
        let handed = Instant::now();
        // that write belonged to an earlier request: the time runs from the start
        assert_eq!(wire.sent(handed), None);
        wire.record(Instant::now());
        let t = response_time(Some(&wire), start, handed, "");
        assert!(t >= handed - start && sent >= start);
    }
}
