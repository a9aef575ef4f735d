//! Error-name matching and retry backoff, as Retry and Catch apply them.

use chrono::Duration;

use crate::definition::Retrier;

/// Matches any error name except the terminal ones.
pub(crate) const STATES_ALL: &str = "States.ALL";
/// Matches any error name except `States.Timeout` (and the terminal ones).
pub(crate) const STATES_TASK_FAILED: &str = "States.TaskFailed";
/// A task ran longer than its `TimeoutSeconds`.
pub(crate) const STATES_TIMEOUT: &str = "States.Timeout";
/// A runtime error: never retried or caught; the execution fails.
pub(crate) const STATES_RUNTIME: &str = "States.Runtime";
/// A terminal error that `States.ALL` does not catch.
const STATES_DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";

/// Whether an error can be handled by Retry/Catch at all. `States.Runtime` and
/// `States.DataLimitExceeded` always fail the execution.
pub(crate) fn is_handleable(error: &str) -> bool {
    error != STATES_RUNTIME && error != STATES_DATA_LIMIT_EXCEEDED
}

/// Whether an `ErrorEquals` list matches `error` (assumed handleable).
pub(crate) fn matches(error_equals: &[String], error: &str) -> bool {
    error_equals.iter().any(|pattern| {
        pattern == error
            || pattern == STATES_ALL
            || (pattern == STATES_TASK_FAILED && error != STATES_TIMEOUT)
    })
}

/// The longest delay computed without `MaxDelaySeconds` (the largest value that field allows),
/// so that a large `BackoffRate` cannot overflow.
const DELAY_CEILING_SECONDS: f64 = 31_622_400.0;

/// The wait before retry number `attempt + 1` of `retrier` (`attempt` retries already made by
/// it): `IntervalSeconds × BackoffRate^attempt`, capped by `MaxDelaySeconds`, then with FULL
/// jitter a uniform share of it (`random` in [0, 1)).
pub(crate) fn delay(retrier: &Retrier, attempt: u32, random: impl FnOnce() -> f64) -> Duration {
    let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
    let mut seconds = retrier.interval_seconds as f64 * retrier.backoff_rate.powi(exponent);
    if !seconds.is_finite() || seconds > DELAY_CEILING_SECONDS {
        seconds = DELAY_CEILING_SECONDS;
    }
    if let Some(max) = retrier.max_delay_seconds {
        seconds = seconds.min(max as f64);
    }
    if retrier.full_jitter {
        seconds *= random().clamp(0.0, 1.0);
    }
    Duration::milliseconds((seconds * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retrier(interval: u64, rate: f64, max_delay: Option<u64>, jitter: bool) -> Retrier {
        Retrier {
            error_equals: vec![STATES_ALL.to_owned()],
            interval_seconds: interval,
            max_attempts: 10,
            backoff_rate: rate,
            max_delay_seconds: max_delay,
            full_jitter: jitter,
        }
    }

    #[test]
    fn backs_off_exponentially_with_cap() {
        let r = retrier(2, 2.0, Some(10), false);
        let secs: Vec<i64> = (0..5).map(|a| delay(&r, a, || 0.0).num_seconds()).collect();
        assert_eq!(secs, [2, 4, 8, 10, 10]);
    }

    #[test]
    fn full_jitter_scales_by_random() {
        let r = retrier(2, 2.0, None, true);
        assert_eq!(delay(&r, 2, || 0.5), Duration::seconds(4));
        assert_eq!(delay(&r, 0, || 0.0), Duration::zero());
    }

    #[test]
    fn huge_backoff_does_not_overflow() {
        let r = retrier(99_999_999, 1e300, None, false);
        assert_eq!(delay(&r, u32::MAX, || 0.0), Duration::seconds(31_622_400));
    }

    #[test]
    fn matching_rules() {
        let all = [STATES_ALL.to_owned()];
        let task_failed = [STATES_TASK_FAILED.to_owned()];
        assert!(matches(&all, "Anything"));
        assert!(matches(&task_failed, "Lambda.Unknown"));
        assert!(!matches(&task_failed, STATES_TIMEOUT));
        assert!(matches(&[STATES_TIMEOUT.to_owned()], STATES_TIMEOUT));
        assert!(!matches(&["A".to_owned()], "B"));
        assert!(!is_handleable(STATES_RUNTIME));
        assert!(is_handleable(STATES_TIMEOUT));
    }
}
