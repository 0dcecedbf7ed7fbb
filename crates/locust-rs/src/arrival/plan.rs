//! When iterations are due: a piecewise-linear rate over time (k6's `constant-arrival-rate` is
//! one endless stage, `ramping-arrival-rate` a list of linear ramps), and the arrival times it
//! implies. The n-th arrival is where the expected count Λ(t) = ∫ rate reaches x_n: x_n = n for
//! a constant schedule, a sum of unit exponentials for a Poisson one (time rescaling, which makes
//! a Poisson process of any rate curve). Pure arithmetic; the clock is the caller's.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// One stage: from `start` (s) for `duration` (s, possibly infinite), the rate going linearly
/// from `from` to `to` (per second); `before` is Λ at its start.
#[derive(Clone, Debug)]
struct Segment {
    start: f64,
    duration: f64,
    from: f64,
    to: f64,
    before: f64,
}

impl Segment {
    fn slope(&self) -> f64 {
        if self.duration.is_finite() {
            (self.to - self.from) / self.duration
        } else {
            0.0
        }
    }

    /// Λ gained `t` seconds into the segment.
    fn gained(&self, t: f64) -> f64 {
        self.from * t + self.slope() * t * t / 2.0
    }

    fn total(&self) -> f64 {
        if self.duration.is_finite() {
            (self.from + self.to) / 2.0 * self.duration
        } else if self.from > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    }

    /// Seconds into the segment at which it has gained `dx`; `None` if it never does.
    fn time_for(&self, dx: f64) -> Option<f64> {
        if self.total() <= 0.0 {
            return None;
        }
        if dx <= 0.0 {
            return Some(0.0);
        }
        if dx > self.total() {
            return None;
        }
        let (a, b) = (self.from, self.slope());
        // The root of a t + b t²/2 = dx in the form that does not cancel when b is small.
        let disc = (a * a + 2.0 * b * dx).max(0.0);
        let denom = a + disc.sqrt();
        if denom <= 0.0 {
            return None;
        }
        Some((2.0 * dx / denom).min(self.duration))
    }
}

/// A rate curve: where iterations are due, and what the rate is at any moment.
#[derive(Clone, Debug)]
pub struct Plan {
    segments: Vec<Segment>,
}

pub const MAX_RATE: f64 = 1e7;

impl Plan {
    /// `start_rate` at time 0, then each `(duration s, target rate/s)` stage ramped linearly from
    /// the rate before it. A stage may last forever (`f64::INFINITY`), and then it is the last.
    pub fn new(start_rate: f64, stages: &[(f64, f64)]) -> Result<Plan, String> {
        check_rate(start_rate)?;
        if stages.is_empty() {
            return Err("at least one stage (duration, target rate) is needed".into());
        }
        let mut segments = Vec::with_capacity(stages.len());
        let (mut start, mut before, mut from) = (0.0, 0.0, start_rate);
        for (i, &(duration, to)) in stages.iter().enumerate() {
            check_rate(to)?;
            if duration.is_nan() || duration <= 0.0 {
                return Err(format!(
                    "stage {} lasts {duration} s; a duration must be more than 0",
                    i + 1
                ));
            }
            if duration.is_infinite() && i + 1 != stages.len() {
                return Err(format!("stage {} lasts forever but is not the last", i + 1));
            }
            let s = Segment {
                start,
                duration,
                from,
                to,
                before,
            };
            before += s.total();
            start += duration;
            from = to;
            segments.push(s);
        }
        Ok(Plan { segments })
    }

    #[cfg(test)]
    pub fn constant(rate: f64) -> Result<Plan, String> {
        Plan::new(rate, &[(f64::INFINITY, rate)])
    }

    /// When the plan ends (s); infinite for an endless last stage.
    pub fn end(&self) -> f64 {
        self.segments.last().map_or(0.0, |s| s.start + s.duration)
    }

    /// The target rate (per second) `t` seconds in; 0 after the end.
    pub fn rate_at(&self, t: f64) -> f64 {
        for s in &self.segments {
            if t < s.start + s.duration {
                return s.from + s.slope() * (t - s.start).max(0.0);
            }
        }
        0.0
    }

    /// Λ(t): the iterations due by `t` seconds in.
    pub fn expected(&self, t: f64) -> f64 {
        for s in &self.segments {
            if t < s.start + s.duration {
                return s.before + s.gained((t - s.start).max(0.0));
            }
        }
        self.segments.last().map_or(0.0, |s| s.before + s.total())
    }

    /// Λ⁻¹(x): when the expected count reaches `x`, from segment `from` on (the cursor of a
    /// caller whose x only grows); `None` if the plan ends first.
    fn time_of(&self, x: f64, cursor: &mut usize) -> Option<f64> {
        while let Some(s) = self.segments.get(*cursor) {
            if let Some(t) = s.time_for(x - s.before) {
                return Some(s.start + t);
            }
            *cursor += 1;
        }
        None
    }
}

fn check_rate(r: f64) -> Result<(), String> {
    if r.is_finite() && (0.0..=MAX_RATE).contains(&r) {
        Ok(())
    } else {
        Err(format!(
            "a rate must be a number from 0 to {MAX_RATE} iterations per second, not {r}"
        ))
    }
}

/// The arrival times of a plan, in order: evenly spread, or a Poisson process.
pub struct Arrivals {
    plan: Plan,
    rng: Option<SmallRng>,
    x: f64,
    /// The Λ of the arrival `next_at` returned last.
    last: f64,
    cursor: usize,
}

impl Arrivals {
    pub fn new(plan: Plan, poisson: bool, seed: Option<u64>) -> Self {
        let rng = poisson.then(|| match seed {
            Some(s) => SmallRng::seed_from_u64(s),
            None => SmallRng::from_os_rng(),
        });
        let mut a = Arrivals {
            plan,
            rng,
            x: 0.0,
            last: 0.0,
            cursor: 0,
        };
        // The first evenly spread arrival is at Λ = 0 (the start); a Poisson one after a draw.
        if a.rng.is_some() {
            a.x = a.draw();
        }
        a
    }

    /// A unit exponential: -ln(1 - u) for u uniform in [0, 1).
    fn draw(&mut self) -> f64 {
        let u: f64 = self.rng.as_mut().map_or(0.0, |r| r.random());
        -(1.0 - u).ln()
    }

    /// Seconds from the start to the next arrival; `None` once the plan has ended.
    pub fn next_at(&mut self) -> Option<f64> {
        let t = self.plan.time_of(self.x, &mut self.cursor)?;
        self.last = self.x;
        self.x += if self.rng.is_some() { self.draw() } else { 1.0 };
        Some(t)
    }

    /// Goes on under a new plan from `now` (s) on, in place of the arrival `next_at` returned
    /// last (still pending): an evenly spread schedule keeps its phase (the share of a gap left
    /// before that arrival), a Poisson one draws afresh (it has no memory).
    pub fn replan(&mut self, plan: Plan, now: f64) -> Option<f64> {
        let left = if self.rng.is_some() {
            self.draw()
        } else {
            (self.last - self.plan.expected(now)).clamp(0.0, 1.0)
        };
        self.plan = plan;
        self.cursor = 0;
        self.x = self.plan.expected(now) + left;
        self.next_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(plan: Plan, poisson: bool, until: f64) -> Vec<f64> {
        let mut a = Arrivals::new(plan, poisson, Some(7));
        let mut out = Vec::new();
        while let Some(t) = a.next_at() {
            if t >= until {
                break;
            }
            out.push(t);
        }
        out
    }

    #[test]
    fn a_constant_rate_is_evenly_spread_from_the_start() {
        let t = times(Plan::constant(4.0).unwrap(), false, 2.0);
        assert_eq!(t, vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]);
        let t = times(Plan::constant(0.5).unwrap(), false, 10.0);
        assert_eq!(t, vec![0.0, 2.0, 4.0, 6.0, 8.0]);
    }

    #[test]
    fn a_ramp_follows_the_integral_of_its_rate() {
        // 0 -> 100/s over 10 s (500 due), then 100/s for 10 s (1,000 more), then it ends.
        let plan = Plan::new(0.0, &[(10.0, 100.0), (10.0, 100.0)]).unwrap();
        assert_eq!(plan.end(), 20.0);
        assert!((plan.expected(10.0) - 500.0).abs() < 1e-9);
        assert!((plan.rate_at(5.0) - 50.0).abs() < 1e-9);
        let t = times(plan.clone(), false, f64::INFINITY);
        assert_eq!(t.len(), 1501);
        // The n-th arrival is where Λ = n: 5 t² = n in the ramp.
        assert!((t[200] - (200.0f64 / 5.0).sqrt()).abs() < 1e-9);
        assert!((t[1000] - 15.0).abs() < 1e-9);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_stage_at_zero_rate_is_a_pause() {
        let plan = Plan::new(10.0, &[(1.0, 10.0), (5.0, 0.0), (1.0, 0.0), (1.0, 10.0)]).unwrap();
        let t = times(plan, false, f64::INFINITY);
        // 10 in the first second, 25 ramping down over 5 s, none while paused, 5 ramping up.
        assert_eq!(t.len(), 10 + 25 + 5 + 1);
        assert!(t.iter().all(|&x| !(6.001..7.0).contains(&x)));
    }

    #[test]
    fn fractional_rates_and_poisson_counts() {
        let t = times(Plan::constant(0.25).unwrap(), false, 8.0);
        assert_eq!(t, vec![0.0, 4.0]);
        let t = times(Plan::constant(1000.0).unwrap(), true, 100.0);
        // 100,000 expected; a Poisson count's standard deviation is about 316.
        assert!((t.len() as f64 - 100_000.0).abs() < 2_000.0, "{}", t.len());
        let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        // Exponential gaps: the standard deviation equals the mean.
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.03,
            "{}",
            var.sqrt() / mean
        );
    }

    #[test]
    fn a_new_plan_takes_over_from_now_and_keeps_the_phase() {
        let mut a = Arrivals::new(Plan::constant(10.0).unwrap(), false, None);
        let mut t = Vec::new();
        while let Some(x) = a.next_at() {
            if x > 1.0 {
                break;
            }
            t.push(x);
        }
        // 0.0 .. 1.0 released; 1.1 pending. From 1.05 s the rate doubles: the pending one was half a
        // gap away, so the next is half a new gap away, then every 50 ms.
        assert_eq!(t.len(), 11);
        let next = a.replan(Plan::constant(20.0).unwrap(), 1.05).unwrap();
        assert!((next - 1.075).abs() < 1e-9, "{next}");
        assert!((a.next_at().unwrap() - 1.125).abs() < 1e-9);
        // A rate of 0 has nothing due; back to a rate, arrivals start again from then.
        assert_eq!(a.replan(Plan::constant(0.0).unwrap(), 2.0), None);
        let next = a.replan(Plan::constant(4.0).unwrap(), 3.0).unwrap();
        assert!((3.0..=3.25).contains(&next), "{next}");
    }

    #[test]
    fn bad_plans_are_refused_with_a_reason() {
        assert!(Plan::constant(f64::NAN).is_err());
        assert!(Plan::constant(-1.0).is_err());
        assert!(Plan::constant(1e300).is_err());
        assert!(Plan::new(1.0, &[]).is_err());
        assert!(Plan::new(1.0, &[(0.0, 1.0)]).is_err());
        assert!(Plan::new(1.0, &[(f64::INFINITY, 1.0), (1.0, 2.0)]).is_err());
        let e = Plan::new(1.0, &[(-3.0, 1.0)]).unwrap_err();
        assert!(e.contains("stage 1 lasts -3"), "{e}");
    }
}
