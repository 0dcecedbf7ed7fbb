//! Time limits. Seconds from Python become `Duration`s here, and only here: `Duration::from_secs_f64` panics on
//! a value too large for it (`network_timeout=1e20`), and no panic may reach Python.

use std::future::Future;
use std::time::Duration;

/// A timeout in seconds: `None`, zero, negative, NaN and infinity mean none; a value too large for
/// a `Duration` is as good as none.
pub fn timeout(secs: Option<f64>) -> Option<Duration> {
    secs.filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Runs `fut` for at most `limit` (no limit: `None`); `Err(())` when the time ran out.
pub async fn with_timeout<T, F>(limit: Option<Duration>, fut: F) -> Result<T, ()>
where
    F: Future<Output = T>,
{
    match limit {
        Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| ()),
        None => Ok(fut.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_values_mean_no_timeout_instead_of_a_panic() {
        for secs in [
            None,
            Some(0.0),
            Some(-1.0),
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(1e20),
        ] {
            assert_eq!(timeout(secs), None, "{secs:?}");
        }
        assert_eq!(timeout(Some(1.5)), Some(Duration::from_millis(1500)));
    }
}
