//! Requests and failures per wall-clock second, for the last `SLOTS` seconds only: Locust's
//! `current_rps` reads the last 12, and keeping every second of a long run would grow without
//! bound (Locust's own dicts do).

pub const SLOTS: usize = 32;

#[derive(Clone, Copy, Default)]
struct Slot {
    second: i64,
    count: u64,
}

#[derive(Clone)]
pub struct Seconds {
    slots: [Slot; SLOTS],
}

impl Default for Seconds {
    fn default() -> Self {
        Seconds {
            slots: [Slot {
                second: i64::MIN,
                count: 0,
            }; SLOTS],
        }
    }
}

impl Seconds {
    pub fn add(&mut self, second: i64, n: u64) {
        let slot = &mut self.slots[second.rem_euclid(SLOTS as i64) as usize];
        if slot.second == second {
            slot.count += n;
        } else if slot.second < second {
            // A second that wrapped around: what the slot held is older than the window.
            *slot = Slot { second, count: n };
        }
        // An older second than the slot's is outside the window already: dropped.
    }

    #[cfg(test)]
    pub fn get(&self, second: i64) -> u64 {
        let slot = &self.slots[second.rem_euclid(SLOTS as i64) as usize];
        if slot.second == second {
            slot.count
        } else {
            0
        }
    }

    /// (second, count) of every second with a count, oldest first.
    pub fn items(&self) -> Vec<(i64, u64)> {
        let mut v: Vec<(i64, u64)> = self
            .slots
            .iter()
            .filter(|s| s.count > 0 && s.second != i64::MIN)
            .map(|s| (s.second, s.count))
            .collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_slots_seconds() {
        let mut s = Seconds::default();
        for sec in 0..100 {
            s.add(sec, 2);
        }
        s.add(99, 1);
        assert_eq!(s.get(99), 3);
        assert_eq!(s.get(99 - SLOTS as i64 + 1), 2);
        assert_eq!(s.get(99 - SLOTS as i64), 0);
        assert_eq!(s.items().len(), SLOTS);
        // A late second outside the window changes nothing.
        s.add(10, 5);
        assert_eq!(s.get(10), 0);
    }
}
