//! Execution history events in the shape of Step Functions' `GetExecutionHistory`
//! (`{"timestamp", "type", "id", "previousEventId", "<type>EventDetails": {…}}`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::definition::Kind;

/// One history event. Exactly the details field matching `event_type` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// When the event happened (serialized as RFC 3339 with milliseconds and `Z`).
    #[serde(with = "crate::timestamp::serde_millis")]
    pub timestamp: DateTime<Utc>,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// 1-based, consecutive.
    pub id: u64,
    /// The id of the event before it (0 for the first).
    pub previous_event_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_started_event_details: Option<ExecutionStartedEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_succeeded_event_details: Option<OutputEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_failed_event_details: Option<ErrorEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_timed_out_event_details: Option<ErrorEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_aborted_event_details: Option<ErrorEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_redriven_event_details: Option<ExecutionRedrivenEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_entered_event_details: Option<StateEnteredEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_exited_event_details: Option<StateExitedEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_scheduled_event_details: Option<TaskScheduledEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_started_event_details: Option<TaskStartedEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_succeeded_event_details: Option<TaskSucceededEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_failed_event_details: Option<TaskErrorEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_timed_out_event_details: Option<TaskErrorEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_function_scheduled_event_details: Option<LambdaFunctionScheduledEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_function_succeeded_event_details: Option<OutputEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_function_failed_event_details: Option<ErrorEventDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_function_timed_out_event_details: Option<ErrorEventDetails>,
}

impl HistoryEvent {
    /// An event without details.
    pub(crate) fn new(timestamp: DateTime<Utc>, event_type: EventType, id: u64) -> Self {
        HistoryEvent {
            timestamp,
            event_type,
            id,
            previous_event_id: id.saturating_sub(1),
            execution_started_event_details: None,
            execution_succeeded_event_details: None,
            execution_failed_event_details: None,
            execution_timed_out_event_details: None,
            execution_aborted_event_details: None,
            execution_redriven_event_details: None,
            state_entered_event_details: None,
            state_exited_event_details: None,
            task_scheduled_event_details: None,
            task_started_event_details: None,
            task_succeeded_event_details: None,
            task_failed_event_details: None,
            task_timed_out_event_details: None,
            lambda_function_scheduled_event_details: None,
            lambda_function_succeeded_event_details: None,
            lambda_function_failed_event_details: None,
            lambda_function_timed_out_event_details: None,
        }
    }
}

/// The history event types the local engine records (`HistoryEventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    ExecutionStarted,
    ExecutionSucceeded,
    ExecutionFailed,
    ExecutionTimedOut,
    ExecutionAborted,
    ExecutionRedriven,
    TaskStateEntered,
    TaskStateExited,
    PassStateEntered,
    PassStateExited,
    ChoiceStateEntered,
    ChoiceStateExited,
    WaitStateEntered,
    WaitStateExited,
    SucceedStateEntered,
    SucceedStateExited,
    FailStateEntered,
    TaskScheduled,
    TaskStarted,
    TaskSucceeded,
    TaskFailed,
    TaskTimedOut,
    LambdaFunctionScheduled,
    LambdaFunctionStarted,
    LambdaFunctionSucceeded,
    LambdaFunctionFailed,
    LambdaFunctionTimedOut,
}

impl EventType {
    /// `…StateEntered` for a state of this kind.
    pub(crate) fn entered(kind: &Kind) -> Self {
        match kind {
            Kind::Task(_) => EventType::TaskStateEntered,
            Kind::Pass { .. } => EventType::PassStateEntered,
            Kind::Choice { .. } => EventType::ChoiceStateEntered,
            Kind::Wait { .. } => EventType::WaitStateEntered,
            Kind::Succeed => EventType::SucceedStateEntered,
            Kind::Fail { .. } => EventType::FailStateEntered,
        }
    }

    /// `…StateExited` for a state of this kind (a Fail state never exits).
    pub(crate) fn exited(kind: &Kind) -> Option<Self> {
        match kind {
            Kind::Task(_) => Some(EventType::TaskStateExited),
            Kind::Pass { .. } => Some(EventType::PassStateExited),
            Kind::Choice { .. } => Some(EventType::ChoiceStateExited),
            Kind::Wait { .. } => Some(EventType::WaitStateExited),
            Kind::Succeed => Some(EventType::SucceedStateExited),
            Kind::Fail { .. } => None,
        }
    }
}

/// Whether a payload was truncated (never, locally).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PayloadDetails {
    /// Always false: the local engine does not truncate.
    pub truncated: bool,
}

/// `executionStartedEventDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStartedEventDetails {
    /// The execution input, as JSON text.
    pub input: String,
    pub input_details: PayloadDetails,
    /// The execution role.
    pub role_arn: String,
}

/// `executionSucceededEventDetails`, `lambdaFunctionSucceededEventDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputEventDetails {
    /// The output, as JSON text.
    pub output: String,
    pub output_details: PayloadDetails,
}

/// The `{error, cause}` details of execution failure/time-out/abort and Lambda failure events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEventDetails {
    /// The error name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// `executionRedrivenEventDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRedrivenEventDetails {
    /// How many times the execution has been redriven, this one included.
    pub redrive_count: u32,
}

/// `stateEnteredEventDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateEnteredEventDetails {
    /// The state's name.
    pub name: String,
    /// The state's raw input, as JSON text.
    pub input: String,
    pub input_details: PayloadDetails,
}

/// `stateExitedEventDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateExitedEventDetails {
    /// The state's name.
    pub name: String,
    /// The state's output, as JSON text.
    pub output: String,
    pub output_details: PayloadDetails,
}

/// `taskScheduledEventDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskScheduledEventDetails {
    /// `lambda`.
    pub resource_type: String,
    /// `invoke`.
    pub resource: String,
    /// The state machine's region.
    pub region: String,
    /// The effective parameters, as JSON text.
    pub parameters: String,
    /// The Task's `TimeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_seconds: Option<u64>,
}

/// `taskStartedEventDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStartedEventDetails {
    /// `lambda`.
    pub resource_type: String,
    /// `invoke`.
    pub resource: String,
}

/// `taskSucceededEventDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSucceededEventDetails {
    /// `lambda`.
    pub resource_type: String,
    /// `invoke`.
    pub resource: String,
    /// The task result, as JSON text.
    pub output: String,
    pub output_details: PayloadDetails,
}

/// `taskFailedEventDetails`, `taskTimedOutEventDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskErrorEventDetails {
    /// `lambda`.
    pub resource_type: String,
    /// `invoke`.
    pub resource: String,
    /// The error name.
    pub error: String,
    /// The cause.
    pub cause: String,
}

/// `lambdaFunctionScheduledEventDetails` (a Task whose resource is a function ARN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaFunctionScheduledEventDetails {
    /// The function ARN.
    pub resource: String,
    /// The function input, as JSON text.
    pub input: String,
    pub input_details: PayloadDetails,
    /// The Task's `TimeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_seconds: Option<u64>,
}
