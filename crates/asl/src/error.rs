//! The typed errors of loading a definition and of driving an execution.

use std::fmt;

use crate::Status;

/// A definition that cannot be loaded: it is not valid ASL, or it uses something the local
/// engine does not run. Names the state (when the problem is inside one) and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct LoadError {
    /// The state the problem is in, if any.
    pub state: Option<String>,
    /// The field, relative to the state (or to the top level), e.g. `Retry[0].ErrorEquals`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl LoadError {
    pub(crate) fn new(
        state: Option<&str>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        LoadError {
            state: state.map(str::to_owned),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(state) = &self.state {
            write!(f, "state \"{state}\", ")?;
        }
        write!(f, "field \"{}\": {}", self.field, self.message)
    }
}

/// A call that does not fit the execution's current phase. The execution is left unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    /// `task_succeeded`/`task_failed` while no task invocation is pending.
    #[error("no task invocation is pending (the execution is {phase})")]
    NotInvoking {
        /// What the execution is doing instead.
        phase: String,
    },
    /// `wake` while the execution is not sleeping.
    #[error("the execution is not sleeping (it is {phase})")]
    NotSleeping {
        /// What the execution is doing instead.
        phase: String,
    },
    /// `wake` before the deadline.
    #[error("woken at {now}, before the sleep deadline {until}")]
    TooEarly {
        /// The deadline.
        until: chrono::DateTime<chrono::Utc>,
        /// The time `wake` was called.
        now: chrono::DateTime<chrono::Utc>,
    },
    /// `stop` on an execution that has ended.
    #[error("the execution has ended with status {status:?}")]
    NotRunning {
        /// The execution's status.
        status: Status,
    },
    /// The execution state does not match the definition passed in (a different definition
    /// than the one the execution ran with).
    #[error(
        "the execution is at state \"{state}\", which the definition does not have as expected"
    )]
    DefinitionMismatch {
        /// The state the execution is at.
        state: String,
    },
}

/// A redrive that Step Functions would refuse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RedriveError {
    /// Only FAILED, TIMED_OUT and ABORTED executions can be redriven.
    #[error(
        "an execution with status {status:?} cannot be redriven: only FAILED, TIMED_OUT or ABORTED ones can"
    )]
    NotRedrivable {
        /// The execution's status.
        status: Status,
    },
    /// The execution ended before entering any state (nothing to restart from).
    #[error("the execution failed before entering a state, so there is nothing to redrive")]
    NoFailedState,
    /// The state to restart from is not in the definition passed in.
    #[error("the state \"{state}\" to redrive from is not in the definition")]
    DefinitionMismatch {
        /// The missing state.
        state: String,
    },
    /// Step Functions redrives an execution only within 14 days of its end.
    #[error("the execution ended more than 14 days ago ({ended_at}): past the redrivable period")]
    RedrivablePeriodOver {
        /// When the execution ended.
        ended_at: chrono::DateTime<chrono::Utc>,
    },
    /// The history has no room left for a redrive (Step Functions' 25,000-event quota).
    #[error("the execution's history is full ({events} events): it cannot be redriven")]
    HistoryFull {
        /// How many events the history holds.
        events: usize,
    },
}
