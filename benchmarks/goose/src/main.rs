//! The benchmark's test for Goose: every user runs one transaction, `GET /`, with no wait, reading the whole body,
//! as `benchmarks/locustfile.py` does for the Locust variants.
//!
//! Goose's own options come from the command line (`--host`, `-u`, `-r`, `-t`, ...). The measurement window comes
//! from the same variables `benchmarks/run.py` gives the locust variants, and the window file has the same fields,
//! so the two are read by one code path: requests, failures and this process's CPU time (every thread) are read at
//! the same instant, `LOCUST_RS_BENCH_WARMUP` seconds after the start and `LOCUST_RS_BENCH_DURATION` seconds later.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use goose::prelude::*;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static FAILURES: AtomicU64 = AtomicU64::new(0);
static USERS: AtomicU64 = AtomicU64::new(0);
/// Response times in µs, measured around the request and the body read, as the locust-rs clients measure them; up
/// to an hour, 3 significant digits, as the locust-rs statistics core keeps them.
static TIMES: LazyLock<Mutex<Histogram<u64>>> = LazyLock::new(|| {
    Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"))
});
static ERRORS: LazyLock<Mutex<BTreeMap<String, u64>>> = LazyLock::new(Mutex::default);
static STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);

async fn on_start(_user: &mut GooseUser) -> TransactionResult {
    USERS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

async fn index(user: &mut GooseUser) -> TransactionResult {
    let t0 = Instant::now();
    let goose = user.get("/").await?;
    let error = match goose.response {
        Ok(response) => {
            let status = response.status();
            match response.bytes().await {
                Ok(_) if status.is_success() => None,
                Ok(_) => Some(format!("HTTP {status}")),
                Err(e) => Some(e.to_string()),
            }
        }
        Err(e) => Some(e.to_string()),
    };
    let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
    if let Ok(mut h) = TIMES.lock() {
        h.saturating_record(micros.max(1));
    }
    if let Some(e) = error {
        FAILURES.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut errors) = ERRORS.lock() {
            *errors.entry(e).or_default() += 1;
        }
    }
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn env_secs(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User and system CPU seconds of the whole process: every thread, Goose's and tokio's alike.
fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage only writes into the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// CPU seconds per thread name, summed over threads of the same name, from /proc (Linux).
fn thread_cpu() -> Value {
    let mut out = serde_json::Map::new();
    // SAFETY: sysconf only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The name is in parentheses and may hold spaces; utime and stime are the 12th and 13th
        // fields after it.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let cpu: f64 = fields.get(11..13).map_or(0.0, |f| {
            f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
        });
        let entry = out
            .entry(stat[open + 1..close].to_string())
            .or_insert(json!(0.0));
        *entry = json!(entry.as_f64().unwrap_or(0.0) + cpu / ticks);
    }
    Value::Object(out)
}

struct Snapshot {
    json: Value,
    times: Histogram<u64>,
}

fn snapshot() -> Snapshot {
    // The histogram first and the counters right after, so they describe the same requests to within one.
    let times = TIMES
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    let (user, system) = cpu_times();
    let json = json!({
        "time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        "monotonic": STARTED.elapsed().as_secs_f64(),
        "requests": REQUESTS.load(Ordering::Relaxed),
        "failures": FAILURES.load(Ordering::Relaxed),
        "cpu_user": user,
        "cpu_system": system,
        "user_count": USERS.load(Ordering::Relaxed),
        "threads": threads(),
        "thread_cpu": thread_cpu(),
    });
    Snapshot { json, times }
}

fn ms_at(h: &Histogram<u64>, q: f64) -> Value {
    if h.is_empty() {
        Value::Null
    } else {
        json!(h.value_at_quantile(q) as f64 / 1000.0)
    }
}

fn write_json(path: &str, value: &Value) {
    // run.py never sees a half-written file.
    let tmp = format!("{path}.tmp");
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

async fn measure_window(path: String, warmup: f64, duration: f64) {
    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    let start = snapshot();
    tokio::time::sleep(Duration::from_secs_f64(duration)).await;
    let end = snapshot();
    let mut window = end.times.clone();
    let _ = window.subtract(&start.times);
    let get = |s: &Snapshot, k: &str| s.json[k].as_f64().unwrap_or(0.0);
    let cpu = |s: &Snapshot| get(s, "cpu_user") + get(s, "cpu_system");
    let result = json!({
        "class": {
            "variant": "goose",
            "base_class": format!("goose {}", env!("GOOSE_VERSION")),
            "mro": [],
            "python": null,
        },
        "window_s": get(&end, "monotonic") - get(&start, "monotonic"),
        "requests": get(&end, "requests") - get(&start, "requests"),
        "failures": get(&end, "failures") - get(&start, "failures"),
        "cpu_s": cpu(&end) - cpu(&start),
        "cpu_user_s": get(&end, "cpu_user") - get(&start, "cpu_user"),
        "cpu_system_s": get(&end, "cpu_system") - get(&start, "cpu_system"),
        "thread_cpu_s": thread_delta(&start.json["thread_cpu"], &end.json["thread_cpu"]),
        "p50_ms": ms_at(&window, 0.50),
        "p99_ms": ms_at(&window, 0.99),
        "start": start.json,
        "end": end.json,
    });
    write_json(&path, &result);
}

fn thread_delta(start: &Value, end: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (name, v) in end.as_object().into_iter().flatten() {
        let before = start.get(name).and_then(Value::as_f64).unwrap_or(0.0);
        out.insert(name.clone(), json!(v.as_f64().unwrap_or(0.0) - before));
    }
    Value::Object(out)
}

fn write_final(path: &str) {
    let errors = ERRORS.lock().map(|e| e.clone()).unwrap_or_default();
    let mut top: Vec<_> = errors.into_iter().collect();
    top.sort_by_key(|e| std::cmp::Reverse(e.1));
    let times = TIMES
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    write_json(
        &format!("{}_final.json", path.trim_end_matches(".json")),
        &json!({
            "requests_total": REQUESTS.load(Ordering::Relaxed),
            "failures_total": FAILURES.load(Ordering::Relaxed),
            "p50_ms_total": ms_at(&times, 0.50),
            "p99_ms_total": ms_at(&times, 0.99),
            "failure_messages": top.iter().take(5).map(|(e, n)| format!("{n}x GET /: {e}")).collect::<Vec<_>>(),
        }),
    );
}

// One tokio worker, as locust-rs runs by default: the comparison is per core of engine.
#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), GooseError> {
    LazyLock::force(&STARTED);
    let window_file = std::env::var("LOCUST_RS_BENCH_WINDOW_FILE").unwrap_or_default();
    if !window_file.is_empty() {
        let warmup = env_secs("LOCUST_RS_BENCH_WARMUP", 3.0);
        let duration = env_secs("LOCUST_RS_BENCH_DURATION", 15.0);
        tokio::spawn(measure_window(window_file.clone(), warmup, duration));
    }
    GooseAttack::initialize()?
        .register_scenario(
            scenario!("BenchUser")
                .register_transaction(transaction!(on_start).set_on_start())
                .register_transaction(transaction!(index)),
        )
        .execute()
        .await?;
    if !window_file.is_empty() {
        write_final(&window_file);
    }
    Ok(())
}
