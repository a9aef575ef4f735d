//! An interpreter for the subset of the Amazon States Language (JSONPath) that alarm-relay's
//! local engine runs, with AWS Step Functions' documented semantics.
//!
//! [`StateMachine::load`] substitutes, parses and validates a definition (refusing anything
//! outside the subset); [`Execution`] is the whole durable state of one execution, advanced by
//! a driver that performs each [`Action`] and persists the execution after every call.

mod choice;
mod cursor;
mod definition;
mod error;
mod execution;
mod history;
pub mod intrinsics;
mod io;
mod lambda;
mod parse;
pub mod path;
mod retry;
mod substitute;
mod timestamp;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::{LoadError, RedriveError, StepError};
pub use execution::Execution;
pub use history::{
    ErrorEventDetails, EventType, ExecutionRedrivenEventDetails, ExecutionStartedEventDetails,
    HistoryEvent, LambdaFunctionScheduledEventDetails, OutputEventDetails, PayloadDetails,
    StateEnteredEventDetails, StateExitedEventDetails, TaskErrorEventDetails,
    TaskScheduledEventDetails, TaskStartedEventDetails, TaskSucceededEventDetails,
};
pub use lambda::{LAMBDA_INVOKE, function_name, is_function_arn, lambda_invoke_result};

/// A loaded, validated definition.
#[derive(Debug, Clone)]
pub struct StateMachine {
    document: Value,
    definition: definition::Definition,
}

impl StateMachine {
    /// Replaces every `${Name}` in string values with `substitutions[Name]` (an unknown name is
    /// a [`LoadError`]), parses, and validates the definition as Step Functions does, refusing
    /// what the local engine does not run.
    pub fn load(
        definition: &str,
        substitutions: &BTreeMap<String, String>,
    ) -> Result<StateMachine, LoadError> {
        let mut document: Value = serde_json::from_str(definition)
            .map_err(|error| LoadError::new(None, "", format!("not valid JSON: {error}")))?;
        substitute::substitute(&mut document, substitutions)?;
        let parsed = parse::parse(&document)?;
        validate::validate(&parsed)?;
        Ok(StateMachine {
            document,
            definition: parsed,
        })
    }

    /// The definition document, after substitution.
    pub fn definition(&self) -> &Value {
        &self.document
    }

    pub(crate) fn model(&self) -> &definition::Definition {
        &self.definition
    }
}

/// The execution's view of the outside world: the clock and randomness.
pub trait Env {
    /// The current time.
    fn now(&mut self) -> chrono::DateTime<chrono::Utc>;
    /// Uniform in [0, 1): full jitter, `States.MathRandom`, `States.UUID`.
    fn random(&mut self) -> f64;
}

/// Identifies an execution and its state machine (the context object's `Execution` and
/// `StateMachine` fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionInfo {
    /// `$$.Execution.Id`.
    pub execution_arn: String,
    /// `$$.Execution.Name`.
    pub name: String,
    /// `$$.StateMachine.Id`; its region is the `region` of `TaskScheduled` events.
    pub state_machine_arn: String,
    /// `$$.StateMachine.Name`.
    pub state_machine_name: String,
    /// `$$.Execution.RoleArn`.
    pub role_arn: String,
}

/// What the driver must do next for an execution.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run the Task `state`: call `resource` with `parameters` (the effective input after
    /// InputPath and Parameters), then report [`Execution::task_succeeded`] or
    /// [`Execution::task_failed`] (`States.Timeout` if it ran past `timeout_seconds`).
    Invoke {
        /// The Task state's name.
        state: String,
        /// The Task's `Resource`, after substitution.
        resource: String,
        /// The effective task input.
        parameters: Value,
        /// Retries made so far in this entry of the state (`$$.State.RetryCount`).
        retry_count: u32,
        /// The Task's `TimeoutSeconds`, shortened to what remains of the execution's
        /// `TimeoutSeconds` if that ends sooner.
        timeout_seconds: Option<u64>,
    },
    /// Call [`Execution::wake`] at `until` (a Wait state, a retry backoff, or the execution's
    /// `TimeoutSeconds` deadline, whichever comes first).
    Sleep {
        /// When to wake.
        until: chrono::DateTime<chrono::Utc>,
    },
    /// Nothing: the execution has ended.
    Finished,
}

/// An execution's status, as `DescribeExecution` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Still running (or sleeping, or waiting for a task).
    Running,
    /// Ended in a Succeed state or a state with `End: true`.
    Succeeded,
    /// Ended with an error.
    Failed,
    /// Ran longer than the definition's `TimeoutSeconds`.
    TimedOut,
    /// Stopped by [`Execution::stop`].
    Aborted,
}

/// The error that ended an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The error name, e.g. `States.TaskFailed` or `Webhook.Transient`.
    pub error: String,
    /// The cause.
    pub cause: String,
}
