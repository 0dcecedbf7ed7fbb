//! `ArrivalSchedule`: the open-model clock of one user class. It releases each iteration when it
//! is due to the longest-idle user, and never waits for one: with no user free it asks for a new
//! one while the pool is below its cap (the iteration waits for that user, and its wait is start
//! lag), and drops and counts it otherwise. Users wait for their next iteration on a bridge
//! ticket, like a request.
//!
//! What wakes the clock when an iteration is due (tokio's timer rounds up to the millisecond,
//! which at 10,000/s would be most of the start lag):
//! - On Linux, the gevent hub: a timerfd (`timer`) set for the next due time, which the hub
//!   watches and answers with `tick`. The hub is the thread that runs the iteration, so that is
//!   one thread woken per iteration; a clock thread of its own was one more, about a fifth of an
//!   iteration's CPU at 1,000/s.
//! - Elsewhere, and with `LOCUST_RS_ARRIVAL_CLOCK=thread`, a thread of its own waiting on a
//!   condition variable's deadline.
//! - In tests, a manual clock that moves only with `advance`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::{Condvar, Mutex};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokio::sync::Notify;

use super::plan::{Arrivals, Plan};
#[cfg(target_os = "linux")]
use super::timer::Timer;
use crate::bridge::completion::IntoPyValue;
use crate::bridge::intake::{self, SlotRef};
use crate::bridge::{external, submit_untimed, Reply, Ticket};
use crate::errors::python::to_pyerr;
use crate::errors::{Error, ErrorKind};
use crate::hdr::{new_histogram, MAX_MICROS};

/// A whole number handed to a waiting greenlet: an iteration's due time (ns after the start),
/// or how many users to start.
struct Number(u64);

impl IntoPyValue for Number {
    fn into_py_value(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok(self.0.into_pyobject(py)?.into_any())
    }
}

/// A free user's wait for its next iteration.
trait Waiter: Send {
    /// Its greenlet is gone (killed, or the test stopped it): skip it.
    fn is_gone(&self) -> bool;
    fn hand(self: Box<Self>, due: u64);
    fn stopped(self: Box<Self>);
    /// Dropped without a word, once gone (no one would read the answer).
    fn discard(self: Box<Self>);
}

/// A greenlet parked on a ticket: the clock's thread completes it itself (no tokio task in between:
/// one thread woken per iteration fewer).
struct Parked {
    reply: Reply,
    slot: SlotRef,
}

fn stopped_error() -> Error {
    Error::new(ErrorKind::Closed, "the arrival-rate schedule stopped")
}

impl Waiter for Parked {
    fn is_gone(&self) -> bool {
        intake::is_cancelled(&self.slot)
    }

    fn hand(self: Box<Self>, due: u64) {
        self.reply.send(Number(due));
    }

    fn stopped(self: Box<Self>) {
        self.reply.send(stopped_error());
    }

    fn discard(self: Box<Self>) {
        self.reply.forget();
    }
}

/// What a worker has not reported yet (distributed runs send deltas).
#[derive(Default)]
struct Tally {
    scheduled: u64,
    iterations: u64,
    dropped: u64,
    /// Due while this process's clock stood still, after its share had gone to other workers
    /// (see `STALL`): neither run here nor due here any more, so not in `scheduled`.
    skipped: u64,
    lag: Option<Histogram<u64>>,
}

impl Tally {
    fn record_lag(&mut self, micros: u64) {
        let _ = self
            .lag
            .get_or_insert_with(new_histogram)
            .record(micros.min(MAX_MICROS));
    }
}

struct State {
    /// When the schedule started; `None` before `start` and after `reset`.
    epoch: Option<Instant>,
    /// When it stopped, if it did: the run's figures end there.
    stopped_at: Option<Instant>,
    /// Bumped by `stop` and `reset`: the thread of an older generation exits.
    generation: u64,
    running: bool,
    /// Set by `stop` until the next `start`: a user asking for an iteration is told at once.
    stopped: bool,
    /// Free users, longest idle first.
    idle: VecDeque<Box<dyn Waiter>>,
    /// Iterations due that wait for a user being started.
    backlog: VecDeque<u64>,
    users: u64,
    peak_users: u64,
    starting: u64,
    wanted: u64,
    max_users: u64,
    /// This process's part of the rate, and a rate set while running (a load shape's), if any.
    share: f64,
    target: Option<f64>,
    /// The plan in force since `plan_since` (s after the start), and Λ of the plans before it;
    /// `version` tells the clock's thread that the plan changed.
    plan: Option<Plan>,
    plan_since: f64,
    expected_before: f64,
    version: u64,
    total: Tally,
    delta: Tally,
    /// The running schedule of a manual clock (`None` with the system's, whose thread keeps it).
    manual: Option<ManualRun>,
    /// The running schedule of a clock the hub drives (`tick`).
    hub: Option<HubRun>,
    /// Set by `pause` until `resume`: nothing is released.
    paused: bool,
    /// The last hold (s after the start): from `pause` until `resume`, and until when in it the
    /// share was still this process's. What fell due in the hold is dropped until then and skipped
    /// after; what was due before it, by the rules of a stall (a process stopped, then held by its
    /// watcher as it woke, has both).
    held: Option<(f64, f64, f64)>,
    /// On a worker: how long after a stall begins its master gives its share to the others (None
    /// alone, where no one else takes them).
    covered_after: Option<f64>,
}

/// A clock more than this late (s) has stood still: the process was stopped (SIGSTOP, a
/// debugger), starved, or its clock paused. What fell due meanwhile is not released in one burst
/// on waking. It is counted as dropped while the share was still this process's, and as skipped
/// once a master has given it to the other workers. 3 s is how long Locust's master waits for a
/// worker's heartbeat before it counts the worker as missing and moves its share.
pub const STALL: f64 = 3.0;

impl State {
    /// Releases what is due by `now` (s after the start) from `next` on, skipping what a stall or a
    /// pause held back. `spawn: None`: the run has ended at `now`, and what was due but not yet
    /// released (a hub-driven clock whose hub was busy) is counted as a release would have counted
    /// it, but handed to no one (see `release`).
    fn pass(
        &mut self,
        arrivals: &mut Arrivals,
        next: &mut Option<f64>,
        now: f64,
        spawn: Option<&Notify>,
    ) {
        // A stall began when the first iteration it held back was due; all it held back is let go.
        let stall = next.filter(|t| now - t > STALL);
        while let Some(t) = next.filter(|t| *t <= now) {
            if let Some((_, own_until, _)) = self
                .held
                .filter(|(from, _, until)| *from < t && t <= *until)
            {
                if t <= own_until {
                    self.drop_due();
                } else {
                    self.skip();
                }
            } else if let Some(began) = stall {
                match self.covered_after {
                    Some(after) if t - began > after => self.skip(),
                    _ => self.drop_due(),
                }
            } else {
                self.release(nanos(t), spawn);
            }
            *next = arrivals.next_at();
        }
    }

    fn skip(&mut self) {
        self.total.skipped += 1;
        self.delta.skipped += 1;
    }

    fn drop_due(&mut self) {
        self.total.scheduled += 1;
        self.delta.scheduled += 1;
        self.total.dropped += 1;
        self.delta.dropped += 1;
    }

    /// Hands the iteration due at `due` (ns) to the longest-idle user, or has a user started for it,
    /// or drops it. `spawn: None`, at the stop: the same count, but no user is handed an iteration
    /// (the one that would have been is told the run stopped) and none is started.
    fn release(&mut self, due: u64, spawn: Option<&Notify>) {
        self.total.scheduled += 1;
        self.delta.scheduled += 1;
        while let Some(w) = self.idle.pop_front() {
            if w.is_gone() {
                w.discard();
            } else if spawn.is_some() {
                w.hand(due);
                return;
            } else {
                w.stopped();
                return;
            }
        }
        if self.users + self.starting < self.max_users {
            self.starting += 1;
            self.wanted += 1;
            self.backlog.push_back(due);
            if let Some(spawn) = spawn {
                spawn.notify_one();
            }
            return;
        }
        self.total.dropped += 1;
        self.delta.dropped += 1;
    }
}

/// Where a schedule reads the time: the system's monotonic clock, or one that moves only when a test
/// says so (`advance`), which makes a test of rates and splits exact whatever the machine's load.
enum Clock {
    System,
    Manual(Mutex<Instant>),
}

impl Clock {
    fn now(&self) -> Instant {
        match self {
            Clock::System => Instant::now(),
            Clock::Manual(t) => *t.lock(),
        }
    }
}

/// With a manual clock no thread runs: what the clock's thread would keep is kept here, and
/// `advance` releases what fell due.
struct ManualRun {
    arrivals: Arrivals,
    next: Option<f64>,
}

/// What the clock's thread would keep, for a clock the hub drives; `version` as in `run`.
struct HubRun {
    arrivals: Arrivals,
    next: Option<f64>,
    version: u64,
}

/// What moves a system clock on (see the module's docs).
enum Driver {
    Thread,
    #[cfg(target_os = "linux")]
    Hub(Timer),
}

impl Driver {
    /// The hub where it can, else a thread.
    fn default_for(clock: &Clock) -> Driver {
        #[cfg(target_os = "linux")]
        if matches!(clock, Clock::System)
            && std::env::var("LOCUST_RS_ARRIVAL_CLOCK").as_deref() != Ok("thread")
        {
            if let Ok(timer) = Timer::new() {
                return Driver::Hub(timer);
            }
        }
        let _ = clock;
        Driver::Thread
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    spawn: Notify,
    start_rate: f64,
    stages: Vec<(f64, f64)>,
    clock: Clock,
    driver: Driver,
}

impl Shared {
    /// The plan at `share` of the rate: the stages, or a constant `target` that replaced them.
    fn plan(&self, share: f64, target: Option<f64>) -> Result<Plan, Error> {
        let plan = match target {
            Some(r) => Plan::new(r * share, &[(f64::INFINITY, r * share)]),
            None => {
                let stages: Vec<(f64, f64)> =
                    self.stages.iter().map(|&(d, r)| (d, r * share)).collect();
                Plan::new(self.start_rate * share, &stages)
            }
        };
        plan.map_err(|m| Error::new(ErrorKind::InvalidArgument, m))
    }

    /// Puts a new share or target in force from now on, for a running clock.
    fn replan(&self, st: &mut State) -> Result<(), Error> {
        let plan = self.plan(st.share, st.target)?;
        if let (Some(epoch), Some(old)) = (st.epoch, st.plan.as_ref()) {
            let now = self.elapsed(epoch);
            st.expected_before += old.expected(now) - old.expected(st.plan_since);
            st.plan_since = now;
        }
        st.version += 1;
        if let (Some(mut run), Some(epoch)) = (st.manual.take(), st.epoch) {
            // No thread to notice: the new plan is in force from this moment of the manual clock,
            // once what the old one made due by now is let go.
            let now = self.elapsed(epoch);
            if !st.paused {
                st.pass(&mut run.arrivals, &mut run.next, now, Some(&self.spawn));
            }
            run.next = run.arrivals.replan(plan.clone(), now);
            st.manual = Some(run);
        }
        st.plan = Some(plan);
        self.wake_clock();
        Ok(())
    }

    /// Has the clock look again now: a new plan, a resume, a stop.
    fn wake_clock(&self) {
        self.wake.notify_all();
        self.set_alarm(Some(Duration::ZERO));
    }

    /// Sets a hub-driven clock's alarm (`None`: off); nothing for the other drivers.
    fn set_alarm(&self, after: Option<Duration>) {
        #[cfg(target_os = "linux")]
        if let Driver::Hub(timer) = &self.driver {
            timer.set(after);
        }
        let _ = after;
    }

    /// Seconds since `epoch` on this schedule's clock.
    fn elapsed(&self, epoch: Instant) -> f64 {
        self.clock
            .now()
            .saturating_duration_since(epoch)
            .as_secs_f64()
    }
}

fn nanos(secs: f64) -> u64 {
    (secs * 1e9).round().clamp(0.0, u64::MAX as f64) as u64
}

/// One look at a running clock: puts a plan that changed since `version` in force, releases what
/// is due, and says when the next iteration is due (`None`: not until something changes, such as
/// a new plan or a resume). `version` is the plan's version that `arrivals` was made from, read
/// under the same lock as the plan: a share or target set between `start` and the first look is
/// a newer version, and so replans here (read here instead, it would be taken as the one in
/// force, and a clock started at share 0 stayed at 0).
fn look(
    shared: &Shared,
    st: &mut State,
    arrivals: &mut Arrivals,
    next: &mut Option<f64>,
    version: &mut u64,
    epoch: Instant,
) -> Option<Instant> {
    if st.version != *version {
        *version = st.version;
        if let Some(plan) = st.plan.clone() {
            // What the old plan made due by now is let go first (or skipped, after a hold).
            let now = epoch.elapsed().as_secs_f64();
            if !st.paused {
                st.pass(arrivals, next, now, Some(&shared.spawn));
            }
            *next = arrivals.replan(plan, now);
        }
    }
    loop {
        let due = next
            .and_then(|t| {
                Duration::try_from_secs_f64(t)
                    .ok()
                    .and_then(|d| epoch.checked_add(d))
            })
            .filter(|_| !st.paused)?;
        if Instant::now() < due {
            return Some(due);
        }
        let now = epoch.elapsed().as_secs_f64();
        st.pass(arrivals, next, now, Some(&shared.spawn));
    }
}

/// The clock's thread, where no hub drives it.
fn run(
    shared: Arc<Shared>,
    mut arrivals: Arrivals,
    epoch: Instant,
    generation: u64,
    mut version: u64,
) {
    let mut next = arrivals.next_at();
    let mut st = shared.state.lock();
    // Until stopped: a plan that has ended (or a rate of 0) may get a new one. Spurious wakeups,
    // new plans and stops alike come back round to the checks in `look`.
    while st.generation == generation {
        match look(
            &shared,
            &mut st,
            &mut arrivals,
            &mut next,
            &mut version,
            epoch,
        ) {
            Some(due) => {
                let _ = shared.wake.wait_until(&mut st, due);
            }
            None => shared.wake.wait(&mut st),
        }
    }
}

fn micros_between(later: Instant, earlier: Instant) -> u64 {
    later
        .saturating_duration_since(earlier)
        .as_micros()
        .min(u128::from(u64::MAX)) as u64
}

/// [(value ms, count)], lowest first.
fn times(h: Option<&Histogram<u64>>) -> Vec<(f64, u64)> {
    h.map(|h| {
        h.iter_recorded()
            .map(|v| (v.value_iterated_to() as f64 / 1000.0, v.count_at_value()))
            .collect()
    })
    .unwrap_or_default()
}

#[pyclass(module = "locust_rs._native", frozen)]
pub struct ArrivalSchedule {
    shared: Arc<Shared>,
    poisson: bool,
    seed: Option<u64>,
}

#[pymethods]
impl ArrivalSchedule {
    /// `start_rate` per second, then linear ramps to each `(duration s, rate/s)` stage; a
    /// constant rate is one endless stage. `max_users` caps the users the pool may hold.
    /// `manual_clock`: the time moves only with `advance` (tests).
    #[new]
    #[pyo3(signature = (start_rate, stages, poisson = false, max_users = 0, seed = None, manual_clock = false))]
    fn py_new(
        start_rate: f64,
        stages: Vec<(f64, f64)>,
        poisson: bool,
        max_users: u64,
        seed: Option<u64>,
        manual_clock: bool,
    ) -> PyResult<Self> {
        Plan::new(start_rate, &stages)
            .map_err(|m| to_pyerr(Error::new(ErrorKind::InvalidArgument, m)))?;
        let state = State {
            epoch: None,
            stopped_at: None,
            generation: 0,
            running: false,
            stopped: false,
            idle: VecDeque::new(),
            backlog: VecDeque::new(),
            users: 0,
            peak_users: 0,
            starting: 0,
            wanted: 0,
            max_users,
            share: 1.0,
            target: None,
            plan: None,
            plan_since: 0.0,
            expected_before: 0.0,
            version: 0,
            total: Tally::default(),
            delta: Tally::default(),
            manual: None,
            hub: None,
            paused: false,
            held: None,
            covered_after: None,
        };
        let clock = if manual_clock {
            Clock::Manual(Mutex::new(Instant::now()))
        } else {
            Clock::System
        };
        Ok(ArrivalSchedule {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                wake: Condvar::new(),
                spawn: Notify::new(),
                start_rate,
                stages,
                driver: Driver::default_for(&clock),
                clock,
            }),
            poisson,
            seed,
        })
    }

    /// This process's part of the rate (1 alone, 1/n for each of n workers), in force at once.
    #[setter]
    fn set_share(&self, share: f64) -> PyResult<()> {
        if !(share.is_finite() && (0.0..=1.0).contains(&share)) {
            return Err(to_pyerr(Error::new(
                ErrorKind::InvalidArgument,
                format!("a share of the rate must be from 0 to 1, not {share}"),
            )));
        }
        let mut st = self.shared.state.lock();
        st.share = share;
        if st.running {
            self.shared.replan(&mut st).map_err(to_pyerr)?;
        }
        Ok(())
    }

    /// A constant rate (per second, whole test) in place of the stages, from now on (a load
    /// shape's); None goes back to the stages.
    #[setter]
    fn set_target(&self, rate: Option<f64>) -> PyResult<()> {
        let mut st = self.shared.state.lock();
        let before = st.target;
        st.target = rate;
        // Checked before anything changes: a bad rate leaves the plan as it was.
        if let Err(e) = self.shared.plan(st.share, st.target) {
            st.target = before;
            return Err(to_pyerr(e));
        }
        if st.running {
            self.shared.replan(&mut st).map_err(to_pyerr)?;
        }
        Ok(())
    }

    #[getter]
    fn get_target(&self) -> Option<f64> {
        self.shared.state.lock().target
    }

    #[getter]
    fn get_share(&self) -> f64 {
        self.shared.state.lock().share
    }

    #[setter]
    fn set_max_users(&self, n: u64) {
        self.shared.state.lock().max_users = n;
    }

    #[getter]
    fn get_max_users(&self) -> u64 {
        self.shared.state.lock().max_users
    }

    /// Starts the clock: the first iteration is due now. Does nothing if it is running.
    fn start(&self) -> PyResult<()> {
        let mut st = self.shared.state.lock();
        if st.running {
            return Ok(());
        }
        let plan = self.shared.plan(st.share, st.target).map_err(to_pyerr)?;
        let epoch = self.shared.clock.now();
        st.plan = Some(plan.clone());
        st.plan_since = 0.0;
        st.expected_before = 0.0;
        st.generation += 1;
        st.epoch = Some(epoch);
        st.stopped_at = None;
        st.running = true;
        st.stopped = false;
        st.paused = false;
        st.held = None;
        let (shared, generation, version) = (self.shared.clone(), st.generation, st.version);
        let mut arrivals = Arrivals::new(plan, self.poisson, self.seed);
        if let Clock::Manual(_) = self.shared.clock {
            let next = arrivals.next_at();
            st.manual = Some(ManualRun { arrivals, next });
            drop(st);
            return self.advance(0.0); // the first iteration is due now
        }
        if !matches!(self.shared.driver, Driver::Thread) {
            // The first iteration is due now: the hub looks at its next turn.
            let next = arrivals.next_at();
            st.hub = Some(HubRun {
                arrivals,
                next,
                version,
            });
            self.shared.wake_clock();
            return Ok(());
        }
        let spawned = std::thread::Builder::new()
            .name("locust-rs-arrivals".into())
            .spawn(move || run(shared, arrivals, epoch, generation, version));
        if let Err(e) = spawned {
            st.running = false;
            return Err(to_pyerr(Error::new(
                ErrorKind::Internal,
                format!("cannot start the arrival-rate clock: {e}"),
            )));
        }
        Ok(())
    }

    /// Stops releasing iterations; users waiting for one, or asking for one before the next
    /// `start`, get an error ("stopped").
    fn stop(&self) {
        let mut st = self.shared.state.lock();
        if st.running {
            let now = self.shared.clock.now();
            st.stopped_at = Some(now);
            // A hub-driven clock releases only when the hub gets round to it, and Locust's own stop
            // keeps the hub busy for tens of ms before it tells us (its `inspect.stack()`). What
            // fell due since the last tick was due within the run: it is counted as the tick would
            // have counted it (scheduled, and dropped with the pool at its cap), but begins nowhere.
            if let (Some(epoch), Some(mut run), false) = (st.epoch, st.hub.take(), st.paused) {
                // A plan set since the last tick took over at the tick (`look`), so up to the stop
                // what fell due is the old plan's.
                let at = now.saturating_duration_since(epoch).as_secs_f64();
                st.pass(&mut run.arrivals, &mut run.next, at, None);
            }
        }
        st.manual = None;
        st.hub = None;
        self.shared.set_alarm(None);
        st.generation += 1;
        st.running = false;
        st.stopped = true;
        for w in std::mem::take(&mut st.idle) {
            w.stopped();
        }
        st.backlog.clear();
        st.wanted = 0;
        st.starting = 0;
        self.shared.wake.notify_all();
    }

    /// Stops, and forgets the figures and the start (a new test).
    fn reset(&self) {
        self.stop();
        let mut st = self.shared.state.lock();
        st.epoch = None;
        st.stopped_at = None;
        st.stopped = false;
        st.peak_users = st.users;
        st.total = Tally::default();
        st.delta = Tally::default();
    }

    #[getter]
    fn running(&self) -> bool {
        self.shared.state.lock().running
    }

    /// Holds the clock: nothing is released until `resume` (a worker cut off from its master,
    /// whose share the master gives to the others). What falls due in the next `own_for` seconds
    /// is still this process's share (the master has not moved it yet): dropped, not skipped.
    #[pyo3(signature = (own_for = 0.0))]
    fn pause(&self, own_for: f64) {
        let mut st = self.shared.state.lock();
        if !st.paused {
            st.paused = true;
            let from = st.epoch.map_or(0.0, |e| self.shared.elapsed(e));
            let own = if own_for.is_finite() {
                own_for.max(0.0)
            } else {
                0.0
            };
            st.held = Some((from, from + own, from));
        }
    }

    /// Lets the clock go on. What fell due while it was held is skipped and counted (`skipped`),
    /// not released at once; with `own` (the share stayed this process's all along) dropped.
    #[pyo3(signature = (own = false))]
    fn resume(&self, own: bool) -> PyResult<()> {
        let mut st = self.shared.state.lock();
        if !st.paused {
            return Ok(());
        }
        st.paused = false;
        if let (Some(epoch), Some((from, own_until, _))) = (st.epoch, st.held) {
            let until = self.shared.elapsed(epoch);
            st.held = Some((from, if own { until } else { own_until }, until));
        }
        self.shared.wake_clock();
        drop(st);
        if let Clock::Manual(_) = self.shared.clock {
            return self.advance(0.0);
        }
        Ok(())
    }

    #[getter]
    fn paused(&self) -> bool {
        self.shared.state.lock().paused
    }

    /// On a worker, how long (s) after its clock stands still its master gives its share to the
    /// others (see `STALL`); None alone.
    #[setter]
    fn set_covered_after(&self, seconds: Option<f64>) {
        self.shared.state.lock().covered_after = seconds.filter(|s| s.is_finite() && *s >= 0.0);
    }

    #[getter]
    fn get_covered_after(&self) -> Option<f64> {
        self.shared.state.lock().covered_after
    }

    /// The file descriptor the gevent hub watches for this clock, which it answers with `tick`;
    /// None where a thread of its own drives the clock.
    fn timer_fd(&self) -> Option<i32> {
        match &self.shared.driver {
            Driver::Thread => None,
            #[cfg(target_os = "linux")]
            Driver::Hub(timer) => Some(timer.fd()),
        }
    }

    /// The hub's turn (`timer_fd` became readable): releases what is due and sets the alarm for
    /// the next due iteration. Does nothing for a stopped clock or another driver.
    fn tick(&self) {
        #[cfg(target_os = "linux")]
        if let Driver::Hub(timer) = &self.shared.driver {
            timer.clear();
            let mut st = self.shared.state.lock();
            let (Some(epoch), Some(mut run)) = (st.epoch, st.hub.take()) else {
                return;
            };
            let due = look(
                &self.shared,
                &mut st,
                &mut run.arrivals,
                &mut run.next,
                &mut run.version,
                epoch,
            );
            timer.set(due.map(|d| d.saturating_duration_since(Instant::now())));
            st.hub = Some(run);
        }
    }

    /// Moves a manual clock `seconds` on and releases every iteration that fell due, before it
    /// returns (a schedule made with `manual_clock=True`; tests).
    fn advance(&self, seconds: f64) -> PyResult<()> {
        let Clock::Manual(clock) = &self.shared.clock else {
            return Err(to_pyerr(Error::new(
                ErrorKind::InvalidArgument,
                "advance() needs a schedule made with manual_clock=True",
            )));
        };
        let step = Duration::try_from_secs_f64(seconds).map_err(|_| {
            to_pyerr(Error::new(
                ErrorKind::InvalidArgument,
                format!("the clock moves on by 0 s or more, not {seconds}"),
            ))
        })?;
        let now = {
            let mut t = clock.lock();
            *t += step;
            *t
        };
        let mut st = self.shared.state.lock();
        let (Some(epoch), Some(mut run)) = (st.epoch, st.manual.take()) else {
            return Ok(());
        };
        let now = now.saturating_duration_since(epoch).as_secs_f64();
        if !st.paused {
            st.pass(
                &mut run.arrivals,
                &mut run.next,
                now,
                Some(&self.shared.spawn),
            );
        }
        st.manual = Some(run);
        Ok(())
    }

    /// A ticket for the calling user's next iteration: it completes with the iteration's due
    /// time (ns after the start), or with an error once the schedule stops.
    fn acquire(&self) -> PyResult<Ticket> {
        let (ticket, reply, slot) = external()?;
        let mut st = self.shared.state.lock();
        match st.backlog.pop_front() {
            Some(due) => reply.send(Number(due)),
            None if st.stopped => reply.send(stopped_error()),
            None => st.idle.push_back(Box::new(Parked { reply, slot })),
        }
        Ok(ticket)
    }

    /// A ticket that completes with how many users the pool wants started (at least 1).
    fn wanted_users(&self) -> PyResult<Ticket> {
        let shared = self.shared.clone();
        submit_untimed(async move {
            loop {
                let notified = shared.spawn.notified();
                {
                    let mut st = shared.state.lock();
                    if st.wanted > 0 {
                        return Number(std::mem::take(&mut st.wanted));
                    }
                }
                notified.await;
            }
        })
    }

    /// A user joined the pool (a user being started for it, or one of Locust's).
    fn register(&self) {
        let mut st = self.shared.state.lock();
        st.users += 1;
        st.peak_users = st.peak_users.max(st.users);
        st.starting = st.starting.saturating_sub(1);
    }

    fn unregister(&self) {
        let mut st = self.shared.state.lock();
        st.users = st.users.saturating_sub(1);
    }

    /// An iteration due at `due` (ns after the start) begins now: counted, and its start lag
    /// recorded. Returns the lag in ms.
    fn begin(&self, due: u64) -> f64 {
        let now = self.shared.clock.now();
        let mut st = self.shared.state.lock();
        let Some(epoch) = st.epoch else {
            return 0.0;
        };
        let lag = micros_between(now, epoch + Duration::from_nanos(due));
        st.total.iterations += 1;
        st.delta.iterations += 1;
        st.total.record_lag(lag);
        st.delta.record_lag(lag);
        lag as f64 / 1000.0
    }

    /// Milliseconds from when the iteration due at `due` was due until now.
    fn since(&self, due: u64) -> f64 {
        let now = self.shared.clock.now();
        let st = self.shared.state.lock();
        st.epoch.map_or(0.0, |epoch| {
            micros_between(now, epoch + Duration::from_nanos(due)) as f64 / 1000.0
        })
    }

    /// The figures so far: scheduled, iterations (begun), dropped, users (now and at the most),
    /// idle, starting, elapsed (s, until the stop), target_rate and expected (Λ of the elapsed
    /// time), both at this process's share.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let st = self.shared.state.lock();
        let elapsed = st.epoch.map_or(0.0, |e| {
            st.stopped_at
                .unwrap_or_else(|| self.shared.clock.now())
                .saturating_duration_since(e)
                .as_secs_f64()
        });
        let d = PyDict::new(py);
        d.set_item("scheduled", st.total.scheduled)?;
        d.set_item("iterations", st.total.iterations)?;
        d.set_item("dropped", st.total.dropped)?;
        d.set_item("skipped", st.total.skipped)?;
        d.set_item("paused", st.paused)?;
        d.set_item("users", st.users)?;
        d.set_item("peak_users", st.peak_users)?;
        d.set_item("idle", st.idle.iter().filter(|w| !w.is_gone()).count())?;
        d.set_item("starting", st.starting)?;
        d.set_item("running", st.running)?;
        d.set_item("elapsed", elapsed)?;
        d.set_item("share", st.share)?;
        let plan = st.plan.as_ref();
        d.set_item("target_rate", plan.map_or(0.0, |p| p.rate_at(elapsed)))?;
        d.set_item(
            "expected",
            plan.map_or(0.0, |p| {
                st.expected_before + p.expected(elapsed) - p.expected(st.plan_since)
            }),
        )?;
        d.set_item("end", plan.map_or(0.0, Plan::end))?;
        Ok(d)
    }

    /// The start lags so far as [(ms, count)], lowest first.
    fn lag_times(&self) -> Vec<(f64, u64)> {
        times(self.shared.state.lock().total.lag.as_ref())
    }

    /// What was not reported yet, then forgotten: (scheduled, iterations, dropped, lag times).
    #[allow(clippy::type_complexity)]
    fn take_delta(&self) -> (u64, u64, u64, Vec<(f64, u64)>) {
        let mut st = self.shared.state.lock();
        let d = std::mem::take(&mut st.delta);
        (d.scheduled, d.iterations, d.dropped, times(d.lag.as_ref()))
    }

    /// Adds a worker's report (what its `take_delta` gave).
    fn merge(&self, scheduled: u64, iterations: u64, dropped: u64, lag_times: Vec<(f64, u64)>) {
        let mut st = self.shared.state.lock();
        st.total.scheduled += scheduled;
        st.total.iterations += iterations;
        st.total.dropped += dropped;
        let h = st.total.lag.get_or_insert_with(new_histogram);
        for (ms, n) in lag_times {
            let _ = h.record_n(crate::hdr::ms_to_micros(ms).min(MAX_MICROS), n);
        }
    }
}

impl Drop for ArrivalSchedule {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    impl Waiter for oneshot::Sender<u64> {
        fn is_gone(&self) -> bool {
            self.is_closed()
        }

        fn hand(self: Box<Self>, due: u64) {
            let _ = self.send(due);
        }

        fn stopped(self: Box<Self>) {}

        fn discard(self: Box<Self>) {}
    }

    /// A schedule on the system's clock, driven by a thread of its own.
    fn schedule(rate: f64, max_users: u64) -> ArrivalSchedule {
        let mut s = hub_schedule(rate, max_users);
        if let Some(shared) = Arc::get_mut(&mut s.shared) {
            shared.driver = Driver::Thread;
        }
        assert!(s.timer_fd().is_none());
        s
    }

    /// A schedule on the system's clock, driven as the hub drives it (Linux; elsewhere a thread).
    fn hub_schedule(rate: f64, max_users: u64) -> ArrivalSchedule {
        ArrivalSchedule::py_new(
            rate,
            vec![(f64::INFINITY, rate)],
            false,
            max_users,
            None,
            false,
        )
        .unwrap_or_else(|_| unreachable!())
    }

    /// Waits up to `timeout_ms` for the hub's alarm, as the hub's poll does.
    #[cfg(target_os = "linux")]
    fn alarm(s: &ArrivalSchedule, timeout_ms: i32) -> bool {
        let mut p = libc::pollfd {
            fd: s.timer_fd().unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        unsafe { libc::poll(&mut p, 1, timeout_ms) == 1 }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_hub_driven_clock_releases_what_is_due_on_each_tick_and_never_early() {
        let s = hub_schedule(1.0, 0); // due at 0, 1 s, 2 s, ...
        let (tx, mut rx) = oneshot::channel::<u64>();
        s.shared.state.lock().idle.push_back(Box::new(tx));
        assert!(!alarm(&s, 0), "no alarm before the start");
        let started = Instant::now();
        s.start().unwrap_or_else(|_| unreachable!());
        assert!(alarm(&s, 5_000), "the first iteration is due at the start");
        s.tick();
        assert_eq!(rx.try_recv().ok(), Some(0));
        assert_eq!(s.shared.state.lock().total.scheduled, 1);
        // Nothing is released between ticks, and the next alarm waits for the next due time.
        assert!(!alarm(&s, 0));
        assert!(alarm(&s, 5_000));
        assert!(started.elapsed() >= Duration::from_secs(1), "never early");
        s.tick();
        assert_eq!(
            tally(&s),
            (2, 1, 0),
            "due with no user free and no room: dropped"
        );
        // A tick with nothing due (a spurious wakeup) releases nothing.
        s.tick();
        assert_eq!(s.shared.state.lock().total.scheduled, 2);
        s.stop();
        assert!(!alarm(&s, 0), "stopped: no alarm");
        s.tick();
        assert_eq!(s.shared.state.lock().total.scheduled, 2);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_hub_driven_clock_stopped_before_its_hub_came_round_counts_what_fell_due() {
        let s = hub_schedule(1000.0, 0);
        s.start().unwrap_or_else(|_| unreachable!());
        assert!(alarm(&s, 5_000));
        s.tick();
        // The hub is busy elsewhere: no tick for at least 50 ms, then the run ends.
        std::thread::sleep(Duration::from_millis(50));
        let (tx, mut rx) = oneshot::channel::<u64>();
        s.shared.state.lock().idle.push_back(Box::new(tx));
        s.stop();
        let (scheduled, due) = scheduled_and_due(&s);
        assert!(due > 50, "{due}");
        assert_eq!(scheduled, due, "due within the run: scheduled");
        assert_eq!(
            tally(&s).1,
            due - 1,
            "no user free for any but one: dropped"
        );
        assert!(rx.try_recv().is_err(), "nothing is handed out once stopped");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_hub_driven_clock_takes_a_new_share_at_its_next_tick() {
        let s = hub_schedule(200.0, 0);
        s.shared.state.lock().share = 0.0;
        s.start().unwrap_or_else(|_| unreachable!());
        assert!(alarm(&s, 5_000));
        s.tick();
        assert_eq!(s.shared.state.lock().total.scheduled, 0, "share 0");
        assert!(!alarm(&s, 0), "at share 0 nothing is ever due");
        s.set_share(0.5).unwrap_or_else(|_| unreachable!());
        assert!(alarm(&s, 0), "a new share wakes the hub at once");
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.shared.state.lock().total.scheduled == 0 && Instant::now() < deadline {
            alarm(&s, 100);
            s.tick();
        }
        s.stop();
        assert!(s.shared.state.lock().total.scheduled > 0);
    }

    #[test]
    fn with_no_user_free_iterations_wait_for_a_new_user_up_to_the_cap_then_drop() {
        let s = schedule(1.0, 2);
        let spawn = Notify::new();
        let mut st = s.shared.state.lock();
        st.users = 1;
        for due in 0..5 {
            st.release(due, Some(&spawn));
        }
        // One user could be started: one iteration waits for it, four are dropped.
        assert_eq!((st.backlog.len(), st.wanted, st.total.dropped), (1, 1, 4));
        assert_eq!(st.total.scheduled, 5);
    }

    #[test]
    fn a_free_user_gets_the_iteration_and_a_gone_one_is_skipped() {
        let s = schedule(1.0, 0);
        let spawn = Notify::new();
        let (gone, rx_gone) = oneshot::channel::<u64>();
        drop(rx_gone);
        let (free, mut rx) = oneshot::channel::<u64>();
        {
            let mut st = s.shared.state.lock();
            st.idle.push_back(Box::new(gone));
            st.idle.push_back(Box::new(free));
            st.release(42, Some(&spawn));
            assert_eq!(st.total.dropped, 0);
        }
        assert_eq!(rx.try_recv().ok(), Some(42));
    }

    #[test]
    fn the_clock_releases_on_time_and_stops() {
        let s = schedule(200.0, 0);
        let (tx, mut rx) = oneshot::channel::<u64>();
        s.shared.state.lock().idle.push_back(Box::new(tx));
        s.start().unwrap_or_else(|_| unreachable!());
        std::thread::sleep(Duration::from_millis(100));
        s.stop();
        let st = s.shared.state.lock();
        // Due at 0, 5, 10, ... ms: about 20 in 100 ms, the first to the one idle user.
        assert!(
            (15..=25).contains(&st.total.scheduled),
            "{}",
            st.total.scheduled
        );
        assert_eq!(st.total.dropped, st.total.scheduled - 1);
        assert_eq!(rx.try_recv().ok(), Some(0));
        assert!(!st.running);
    }

    #[test]
    fn a_share_set_just_after_the_start_is_in_force() {
        // A worker joining a running test starts its clock at share 0, and the master's share may
        // come before the clock's thread first runs (a loaded machine): it must still replan.
        let s = schedule(200.0, 0);
        s.shared.state.lock().share = 0.0;
        s.start().unwrap_or_else(|_| unreachable!());
        s.set_share(0.5).unwrap_or_else(|_| unreachable!());
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.shared.state.lock().total.scheduled == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        s.stop();
        assert!(
            s.shared.state.lock().total.scheduled > 0,
            "the clock stayed at share 0"
        );
    }

    fn manual(start_rate: f64, stages: Vec<(f64, f64)>) -> ArrivalSchedule {
        ArrivalSchedule::py_new(start_rate, stages, false, 0, None, true)
            .unwrap_or_else(|_| unreachable!())
    }

    /// Scheduled so far, and 1 + ⌊Λ⌋ of the elapsed time (the first iteration is due at 0, the
    /// n-th where Λ reaches n).
    fn scheduled_and_due(s: &ArrivalSchedule) -> (u64, u64) {
        let st = s.shared.state.lock();
        let (Some(epoch), Some(plan)) = (st.epoch, st.plan.as_ref()) else {
            return (st.total.scheduled, 0);
        };
        let elapsed = st
            .stopped_at
            .unwrap_or_else(|| s.shared.clock.now())
            .saturating_duration_since(epoch)
            .as_secs_f64();
        let expected = st.expected_before + plan.expected(elapsed) - plan.expected(st.plan_since);
        (st.total.scheduled, 1 + (expected + 1e-9).floor() as u64)
    }

    #[test]
    fn a_manual_clock_releases_exactly_what_fell_due_through_shares_targets_and_ramps() {
        let s = manual(200.0, vec![(f64::INFINITY, 200.0)]);
        s.start().unwrap_or_else(|_| unreachable!());
        assert_eq!(
            s.shared.state.lock().total.scheduled,
            1,
            "the first is due at once"
        );
        let mut seen = vec![];
        for (step, change) in [
            (0.5, None),
            (0.5, Some((Some(0.5), None))),
            (0.7, Some((None, Some(Some(1000.0))))),
            (0.3, Some((Some(0.25), None))),
            (1.0, Some((None, Some(None)))),
        ] {
            s.advance(step).unwrap_or_else(|_| unreachable!());
            seen.push(scheduled_and_due(&s));
            match change {
                Some((Some(share), _)) => s.set_share(share).unwrap_or_else(|_| unreachable!()),
                Some((None, Some(target))) => {
                    s.set_target(target).unwrap_or_else(|_| unreachable!())
                }
                _ => {}
            }
        }
        for (scheduled, due) in &seen {
            assert_eq!(scheduled, due, "{seen:?}");
        }
        s.stop();
        let stopped = s.shared.state.lock().total.scheduled;
        s.advance(1.0).unwrap_or_else(|_| unreachable!());
        assert_eq!(
            s.shared.state.lock().total.scheduled,
            stopped,
            "nothing after the stop"
        );

        // A ramp: 0 to 100/s over 2 s, then 100/s; Λ(2) = 100, Λ(3) = 200.
        let r = manual(0.0, vec![(2.0, 100.0), (f64::INFINITY, 100.0)]);
        r.start().unwrap_or_else(|_| unreachable!());
        r.advance(2.0).unwrap_or_else(|_| unreachable!());
        assert_eq!(scheduled_and_due(&r), (101, 101));
        r.advance(1.0).unwrap_or_else(|_| unreachable!());
        assert_eq!(scheduled_and_due(&r), (201, 201));
    }

    #[test]
    fn a_manual_clock_measures_start_lag_on_itself() {
        let s = manual(10.0, vec![(f64::INFINITY, 10.0)]);
        s.start().unwrap_or_else(|_| unreachable!());
        s.advance(0.25).unwrap_or_else(|_| unreachable!());
        // due at 0 and 100 ms, begun 250 ms after the start
        assert_eq!(s.begin(0), 250.0);
        assert_eq!(s.begin(100_000_000), 150.0);
        assert!(s.advance(-1.0).is_err());
        assert!(
            schedule(1.0, 0).advance(1.0).is_err(),
            "the system clock cannot be moved"
        );
    }

    fn tally(s: &ArrivalSchedule) -> (u64, u64, u64) {
        let st = s.shared.state.lock();
        (st.total.scheduled, st.total.dropped, st.total.skipped)
    }

    #[test]
    fn a_stalled_clock_lets_go_of_what_fell_due_and_counts_it() {
        // No users at all (max_users 0): every iteration released is dropped, so releases show as
        // scheduled and dropped, and a stall's as dropped or skipped.
        let alone = manual(10.0, vec![(f64::INFINITY, 10.0)]);
        alone.start().unwrap_or_else(|_| unreachable!());
        alone.advance(1.0).unwrap_or_else(|_| unreachable!());
        assert_eq!(tally(&alone), (11, 11, 0), "at 0, 0.1, ... 1.0");
        // 20 s stood still: the 200 due are not released in a burst; alone, no one else ran them.
        alone.advance(20.0).unwrap_or_else(|_| unreachable!());
        assert_eq!(tally(&alone), (211, 211, 0));
        alone.advance(1.0).unwrap_or_else(|_| unreachable!());
        assert_eq!(tally(&alone), (221, 221, 0), "then on as before");

        // On a worker the master gives the share away after 3 s: the rest is skipped, not due here.
        let worker = manual(10.0, vec![(f64::INFINITY, 10.0)]);
        worker.set_covered_after(Some(STALL));
        worker.start().unwrap_or_else(|_| unreachable!());
        worker.advance(1.0).unwrap_or_else(|_| unreachable!());
        worker.advance(20.0).unwrap_or_else(|_| unreachable!());
        // Due at 1.1 .. 21.0: those up to 4.1 were still its own (31), the other 169 were not.
        assert_eq!(tally(&worker), (11 + 31, 11 + 31, 169));

        // Up to STALL late is lateness, not a stall: released as usual.
        let late = manual(10.0, vec![(f64::INFINITY, 10.0)]);
        late.start().unwrap_or_else(|_| unreachable!());
        late.advance(2.9).unwrap_or_else(|_| unreachable!());
        assert_eq!(tally(&late), (30, 30, 0));
    }

    #[test]
    fn a_paused_clock_skips_what_fell_due_while_held() {
        let s = manual(10.0, vec![(f64::INFINITY, 10.0)]);
        s.start().unwrap_or_else(|_| unreachable!());
        s.advance(1.0).unwrap_or_else(|_| unreachable!());
        s.pause(0.0);
        s.advance(2.0).unwrap_or_else(|_| unreachable!());
        assert_eq!(tally(&s), (11, 11, 0), "nothing released while held");
        s.resume(false).unwrap_or_else(|_| unreachable!());
        assert_eq!(tally(&s), (11, 11, 20), "the 20 due while held are skipped");
        s.advance(1.0).unwrap_or_else(|_| unreachable!());
        assert_eq!(tally(&s), (21, 21, 20));
        // A hold whose share stayed this process's (its master never moved it): dropped, not skipped.
        s.pause(0.0);
        s.advance(1.0).unwrap_or_else(|_| unreachable!());
        s.resume(true).unwrap_or_else(|_| unreachable!());
        assert_eq!(tally(&s), (31, 31, 20));
    }

    #[test]
    fn a_process_held_as_it_wakes_from_a_stall_counts_the_stall_as_a_stall() {
        // Stopped for 10 s; on waking its watcher holds the clock (the master is silent), then lets
        // it go: the stall's first 3 s were still this worker's (dropped), the rest skipped.
        let s = manual(10.0, vec![(f64::INFINITY, 10.0)]);
        s.set_covered_after(Some(STALL));
        s.start().unwrap_or_else(|_| unreachable!());
        s.advance(1.0).unwrap_or_else(|_| unreachable!());
        s.pause(0.5);
        s.advance(10.0).unwrap_or_else(|_| unreachable!());
        s.resume(false).unwrap_or_else(|_| unreachable!());
        let (scheduled, dropped, skipped) = tally(&s);
        // Held from 1 s, the share still its own for 0.5 s of it: 5 dropped, 95 skipped.
        assert_eq!((scheduled - 11, dropped - 11, skipped), (5, 5, 95));

        let woke = manual(10.0, vec![(f64::INFINITY, 10.0)]);
        woke.set_covered_after(Some(STALL));
        woke.start().unwrap_or_else(|_| unreachable!());
        woke.advance(1.0).unwrap_or_else(|_| unreachable!());
        // The clock moved 10 s on with nothing released (the process was stopped) ...
        if let Clock::Manual(t) = &woke.shared.clock {
            *t.lock() += Duration::from_secs(10);
        }
        woke.pause(0.0); // ... and the watcher held it as it woke
        woke.advance(1.0).unwrap_or_else(|_| unreachable!());
        woke.resume(false).unwrap_or_else(|_| unreachable!());
        let (scheduled, dropped, skipped) = tally(&woke);
        // Due at 1.1 .. 11.0 (the stall): 1.1 .. 4.1 dropped (31), the other 69 skipped; then the
        // hold's 10 (11.1 .. 12.0) skipped.
        assert_eq!((scheduled - 11, dropped - 11, skipped), (31, 31, 69 + 10));
    }
}
