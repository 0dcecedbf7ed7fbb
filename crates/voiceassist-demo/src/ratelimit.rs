//! Fixed one-minute windows per key (a limit of 0 turns the limiter off). The table of keys is
//! capped: past the cap, finished windows are dropped, and if none are, a new key goes untracked.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

const WINDOW: Duration = Duration::from_secs(60);

pub struct FixedWindow {
    limit: u32,
    max_keys: usize,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl FixedWindow {
    pub fn new(limit: u32, max_keys: usize) -> Self {
        Self {
            limit,
            max_keys: max_keys.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one hit for `key`; `Err(seconds)` when over the limit, with the seconds until the
    /// window ends (at least 1), for `Retry-After`.
    pub fn hit(&self, key: &str) -> Result<(), u64> {
        if self.limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut windows = self.windows.lock();
        if let Some((start, count)) = windows.get_mut(key) {
            if now.duration_since(*start) >= WINDOW {
                *start = now;
                *count = 0;
            }
            if *count >= self.limit {
                let left = WINDOW.saturating_sub(now.duration_since(*start));
                return Err(left.as_secs_f64().ceil().max(1.0) as u64);
            }
            *count += 1;
            return Ok(());
        }
        if windows.len() >= self.max_keys {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if windows.len() >= self.max_keys {
                return Ok(());
            }
        }
        windows.insert(key.to_owned(), (now, 1));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_per_key() {
        let l = FixedWindow::new(2, 100);
        assert!(l.hit("a").is_ok());
        assert!(l.hit("a").is_ok());
        let retry = l.hit("a").unwrap_err();
        assert!((1..=60).contains(&retry));
        assert!(l.hit("b").is_ok());
    }

    #[test]
    fn zero_turns_it_off() {
        let l = FixedWindow::new(0, 100);
        for _ in 0..1000 {
            assert!(l.hit("a").is_ok());
        }
    }
}
