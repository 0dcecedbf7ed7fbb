//! Time limits. Seconds from Python become `Duration`s here, and only here: `Duration::from_secs_f64` panics on
//! a value too large for it (`network_timeout=1e20`), and no panic may reach Python.

use std::future::Future;
use std::time::Duration;

use crate::errors::{Error, ErrorKind};

/// A timeout in seconds. `None` means none, and so do infinity and a value too large for a
/// `Duration`, as they do for Python's sockets. Zero, a negative value and NaN are refused, with
/// the words gevent's and CPython's sockets raise them in: quietly waiting forever instead would
/// hide the mistake.
pub fn timeout(secs: Option<f64>) -> Result<Option<Duration>, Error> {
    match secs {
        None => Ok(None),
        Some(s) if s.is_nan() => Err(Error::new(
            ErrorKind::InvalidArgument,
            "Invalid value NaN (not a number)",
        )),
        Some(s) if s <= 0.0 => Err(Error::new(
            ErrorKind::InvalidArgument,
            "Timeout value out of range",
        )),
        Some(s) => Ok(Duration::try_from_secs_f64(s).ok()),
    }
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
    fn huge_values_mean_no_timeout_instead_of_a_panic() {
        for secs in [None, Some(f64::INFINITY), Some(1e20), Some(f64::MAX)] {
            assert_eq!(timeout(secs).unwrap(), None, "{secs:?}");
        }
        assert_eq!(
            timeout(Some(1.5)).unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(timeout(Some(1e-12)).unwrap(), Some(Duration::ZERO));
    }

    #[test]
    fn zero_negative_and_nan_are_refused() {
        for secs in [0.0, -0.0, -1.0, f64::NEG_INFINITY, f64::NAN] {
            let e = timeout(Some(secs)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument, "{secs:?}");
        }
        assert_eq!(
            timeout(Some(f64::NAN)).unwrap_err().message,
            "Invalid value NaN (not a number)"
        );
        assert_eq!(
            timeout(Some(0.0)).unwrap_err().message,
            "Timeout value out of range"
        );
    }
}
