//! Scripted misbehaviour for the local receiver: what the next requests get instead of the
//! normal answer, so tests and demos can exercise retries, throttling and broken connections.
//!
//! A plan is a comma-separated list consumed one item per request, in order; once it is used
//! up the receiver behaves normally. Items:
//! - `STATUS` (100–599): answer that status;
//! - `STATUS:retry-after=VALUE`: the same, with a `Retry-After` header;
//! - `delay=MS`: wait that long, then handle the request normally;
//! - `drop`: read the request and close the connection without answering.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

/// One scripted misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    Delay(Duration),
    Drop,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status {
                status,
                retry_after: None,
            } => write!(f, "{status}"),
            Self::Status {
                status,
                retry_after: Some(value),
            } => {
                write!(f, "{status}:retry-after={value}")
            }
            Self::Delay(delay) => write!(f, "delay={}", delay.as_millis()),
            Self::Drop => f.write_str("drop"),
        }
    }
}

/// Why a fault plan does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault {item:?}: {reason} (expected STATUS, STATUS:retry-after=VALUE, delay=MS or drop)")]
pub struct FaultPlanError {
    pub item: String,
    pub reason: &'static str,
}

impl FromStr for Fault {
    type Err = FaultPlanError;

    fn from_str(item: &str) -> Result<Self, Self::Err> {
        let error = |reason| FaultPlanError {
            item: item.to_owned(),
            reason,
        };
        if item == "drop" {
            return Ok(Self::Drop);
        }
        if let Some(ms) = item.strip_prefix("delay=") {
            let ms = ms
                .parse::<u64>()
                .map_err(|_| error("delay is not a whole number of ms"))?;
            return Ok(Self::Delay(Duration::from_millis(ms)));
        }
        let (status, retry_after) = match item.split_once(':') {
            None => (item, None),
            Some((status, option)) => {
                let value = option
                    .strip_prefix("retry-after=")
                    .filter(|value| !value.is_empty())
                    .ok_or_else(|| error("the only status option is retry-after=VALUE"))?;
                (status, Some(value.to_owned()))
            }
        };
        let status = status
            .parse::<u16>()
            .ok()
            .filter(|status| (100..=599).contains(status))
            .ok_or_else(|| error("not a status between 100 and 599"))?;
        Ok(Self::Status {
            status,
            retry_after,
        })
    }
}

/// The faults still to apply, shared by all connections.
#[derive(Debug, Default)]
pub struct FaultPlan {
    pending: Mutex<VecDeque<Fault>>,
}

impl FaultPlan {
    /// Parses `503,429:retry-after=2,drop,delay=1500`; an empty string is no faults.
    pub fn parse(spec: &str) -> Result<Self, FaultPlanError> {
        let pending = spec
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(Fault::from_str)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            pending: Mutex::new(pending),
        })
    }

    /// The fault for the next request, if any is left.
    pub fn next(&self) -> Option<Fault> {
        self.pending.lock().expect("fault plan lock").pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_parses_every_item_kind_in_order() {
        let plan = FaultPlan::parse("503, 429:retry-after=2,drop,delay=1500").unwrap();
        assert_eq!(
            plan.next(),
            Some(Fault::Status {
                status: 503,
                retry_after: None
            })
        );
        assert_eq!(
            plan.next(),
            Some(Fault::Status {
                status: 429,
                retry_after: Some("2".into())
            })
        );
        assert_eq!(plan.next(), Some(Fault::Drop));
        assert_eq!(plan.next(), Some(Fault::Delay(Duration::from_millis(1500))));
        assert_eq!(plan.next(), None);
    }

    #[test]
    fn bad_items_are_named() {
        for (spec, item) in [
            ("700", "700"),
            ("503,oops", "oops"),
            ("delay=x", "delay=x"),
            ("429:wait=2", "429:wait=2"),
        ] {
            assert_eq!(FaultPlan::parse(spec).unwrap_err().item, item);
        }
    }

    #[test]
    fn display_round_trips() {
        for item in ["503", "429:retry-after=2", "drop", "delay=1500"] {
            assert_eq!(item.parse::<Fault>().unwrap().to_string(), item);
        }
    }
}
