//! One execution: its durable state and how each driver call advances it.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::definition::{Kind, Resource, State, Task, Text, Transition, WaitFor};
use crate::history::{
    ErrorEventDetails, EventType, ExecutionRedrivenEventDetails, ExecutionStartedEventDetails,
    HistoryEvent, LambdaFunctionScheduledEventDetails, OutputEventDetails, PayloadDetails,
    StateEnteredEventDetails, StateExitedEventDetails, TaskErrorEventDetails,
    TaskScheduledEventDetails, TaskStartedEventDetails, TaskSucceededEventDetails,
};
use crate::io::{self, StateError, text};
use crate::path::ContextObject;
use crate::{
    Action, Env, ExecutionInfo, Failure, RedriveError, StateMachine, Status, StepError, choice,
    intrinsics, path, retry, timestamp,
};
use std::cell::OnceCell;

/// Step Functions' quota of history events per execution; an execution that would exceed it
/// fails (this also ends loops of states that never wait).
const MAX_HISTORY_EVENTS: usize = 25_000;
/// How long after its end an execution can be redriven (Step Functions: 14 days).
const REDRIVABLE_DAYS: i64 = 14;

/// The whole durable state of one execution. The driver persists it (serde) after every call
/// and resumes from it, with [`Execution::action`], after a crash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    info: ExecutionInfo,
    input: Value,
    start_time: DateTime<Utc>,
    status: Status,
    /// Absent until the execution succeeds; present (even as JSON `null`) after.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    output: Option<Value>,
    failure: Option<Failure>,
    history: Vec<HistoryEvent>,
    redrive_count: u32,
    redrive_time: Option<DateTime<Utc>>,
    /// When the definition's `TimeoutSeconds` runs out (from the start or the last redrive).
    deadline: Option<DateTime<Utc>>,
    phase: Phase,
}

/// [`Execution`]'s fields but the history, borrowed, in the same serialized form.
#[derive(Serialize)]
struct WithoutHistory<'a> {
    info: &'a ExecutionInfo,
    input: &'a Value,
    start_time: &'a DateTime<Utc>,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a Value>,
    failure: Option<&'a Failure>,
    redrive_count: u32,
    redrive_time: Option<&'a DateTime<Utc>>,
    deadline: Option<&'a DateTime<Utc>>,
    phase: &'a Phase,
}

/// One entry into a state, with its retry counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Visit {
    state: String,
    /// The state's raw input.
    input: Value,
    entered_time: DateTime<Utc>,
    entered_event_id: u64,
    /// Retries made in this entry (`$$.State.RetryCount`).
    retry_count: u32,
    /// Retries made by each retrier of the state, in `Retry` order.
    retrier_attempts: Vec<u32>,
}

/// What the execution is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Phase {
    /// A Task invocation is pending.
    Invoking {
        visit: Visit,
        resource: String,
        parameters: Value,
        timeout_seconds: Option<u64>,
    },
    /// In a Wait state until `until`; `output` is the state's output.
    Waiting {
        visit: Visit,
        until: DateTime<Utc>,
        output: Value,
    },
    /// Backing off before retrying the Task of `visit`.
    BackingOff { visit: Visit, until: DateTime<Utc> },
    /// Ended; `at` is the state a redrive restarts from (the one that failed, was in flight
    /// when the execution timed out or was stopped).
    Ended { at: Option<Visit> },
}

impl Phase {
    fn describe(&self) -> &'static str {
        match self {
            Phase::Invoking { .. } => "waiting for a task result",
            Phase::Waiting { .. } | Phase::BackingOff { .. } => "sleeping",
            Phase::Ended { .. } => "ended",
        }
    }
}

/// Where to go after a state has done what it can in this call.
enum Next {
    Enter { state: String, input: Value },
    Stop,
}

impl Execution {
    /// Records `ExecutionStarted` and runs non-task states until the first Task, Wait or end.
    pub fn start(
        machine: &StateMachine,
        info: ExecutionInfo,
        input: Value,
        env: &mut dyn Env,
    ) -> Execution {
        let start_time = env.now();
        let deadline = machine
            .model()
            .timeout_seconds
            .map(|seconds| after(start_time, seconds));
        let mut execution = Execution {
            input: input.clone(),
            start_time,
            status: Status::Running,
            output: None,
            failure: None,
            history: Vec::new(),
            redrive_count: 0,
            redrive_time: None,
            deadline,
            phase: Phase::Ended { at: None },
            info,
        };
        let started = ExecutionStartedEventDetails {
            input: text(&input),
            input_details: PayloadDetails::default(),
            role_arn: execution.info.role_arn.clone(),
        };
        execution.record_at(start_time, EventType::ExecutionStarted, |event| {
            event.execution_started_event_details = Some(started);
        });
        let first = Next::Enter {
            state: machine.model().start_at.clone(),
            input,
        };
        execution.run(machine, first, env);
        execution
    }

    /// What the driver must do now. Pure: derived from the persisted state, so it is also
    /// what to resume after a crash.
    pub fn action(&self) -> Action {
        match &self.phase {
            Phase::Invoking {
                visit,
                resource,
                parameters,
                timeout_seconds,
            } => Action::Invoke {
                state: visit.state.clone(),
                resource: resource.clone(),
                parameters: parameters.clone(),
                retry_count: visit.retry_count,
                timeout_seconds: *timeout_seconds,
            },
            Phase::Waiting { until, .. } | Phase::BackingOff { until, .. } => Action::Sleep {
                until: self.sleep_until(*until),
            },
            Phase::Ended { .. } => Action::Finished,
        }
    }

    /// The pending Invoke succeeded with `result` (for `lambda:invoke`, the whole
    /// service-integration result; see [`crate::lambda_invoke_result`]; for a function ARN,
    /// the function's output).
    pub fn task_succeeded(
        &mut self,
        machine: &StateMachine,
        result: Value,
        env: &mut dyn Env,
    ) -> Result<(), StepError> {
        let (state, task) = self.pending_task(machine)?;
        if self.timed_out(env) {
            return Ok(());
        }
        let visit = self.take_invoking()?;
        let output = text(&result);
        match &task.resource {
            Resource::LambdaInvoke => {
                self.record(env, EventType::TaskSucceeded, |event| {
                    event.task_succeeded_event_details = Some(TaskSucceededEventDetails {
                        resource_type: "lambda".to_owned(),
                        resource: "invoke".to_owned(),
                        output,
                        output_details: PayloadDetails::default(),
                    });
                });
            }
            Resource::LambdaFunction(_) => {
                self.record(env, EventType::LambdaFunctionSucceeded, |event| {
                    event.lambda_function_succeeded_event_details = Some(OutputEventDetails {
                        output,
                        output_details: PayloadDetails::default(),
                    });
                });
            }
        }
        let next = match self.task_output(state, task, &visit, result, env) {
            Ok(output) => self.exit(state, &task.transition, output, env),
            Err(error) => self.handle_error(state, task, visit, error, env),
        };
        self.run(machine, next, env);
        Ok(())
    }

    /// The pending Invoke failed with `error` and `cause` (`States.Timeout` when the driver
    /// enforced `timeout_seconds`).
    pub fn task_failed(
        &mut self,
        machine: &StateMachine,
        error: &str,
        cause: &str,
        env: &mut dyn Env,
    ) -> Result<(), StepError> {
        let (state, task) = self.pending_task(machine)?;
        if self.timed_out(env) {
            return Ok(());
        }
        let visit = self.take_invoking()?;
        let timed_out = error == retry::STATES_TIMEOUT;
        let (error_name, cause_text) = (error.to_owned(), cause.to_owned());
        match (&task.resource, timed_out) {
            (Resource::LambdaInvoke, _) => {
                let details = TaskErrorEventDetails {
                    resource_type: "lambda".to_owned(),
                    resource: "invoke".to_owned(),
                    error: error_name,
                    cause: cause_text,
                };
                if timed_out {
                    self.record(env, EventType::TaskTimedOut, |event| {
                        event.task_timed_out_event_details = Some(details);
                    });
                } else {
                    self.record(env, EventType::TaskFailed, |event| {
                        event.task_failed_event_details = Some(details);
                    });
                }
            }
            (Resource::LambdaFunction(_), _) => {
                let details = ErrorEventDetails {
                    error: Some(error_name),
                    cause: Some(cause_text),
                };
                if timed_out {
                    self.record(env, EventType::LambdaFunctionTimedOut, |event| {
                        event.lambda_function_timed_out_event_details = Some(details);
                    });
                } else {
                    self.record(env, EventType::LambdaFunctionFailed, |event| {
                        event.lambda_function_failed_event_details = Some(details);
                    });
                }
            }
        }
        let next = self.handle_error(state, task, visit, StateError::new(error, cause), env);
        self.run(machine, next, env);
        Ok(())
    }

    /// The sleep deadline of [`Action::Sleep`] has passed (a Wait state, a retry backoff or
    /// the execution timeout): go on. An error if not sleeping or called before the deadline.
    pub fn wake(&mut self, machine: &StateMachine, env: &mut dyn Env) -> Result<(), StepError> {
        let (until, state_name) = match &self.phase {
            Phase::Waiting { until, visit, .. } | Phase::BackingOff { until, visit } => {
                (self.sleep_until(*until), visit.state.clone())
            }
            other => {
                return Err(StepError::NotSleeping {
                    phase: other.describe().to_owned(),
                });
            }
        };
        let state = machine
            .model()
            .state(&state_name)
            .ok_or(StepError::DefinitionMismatch {
                state: state_name.clone(),
            })?;
        let now = env.now();
        if now < until {
            return Err(StepError::TooEarly { until, now });
        }
        if self.timed_out(env) {
            return Ok(());
        }
        let next = match (self.take_phase(), &state.kind) {
            (Phase::Waiting { output, .. }, Kind::Wait { transition, .. }) => {
                self.exit(state, transition, output, env)
            }
            (Phase::BackingOff { visit, .. }, Kind::Task(task)) => {
                self.schedule(state, task, visit, env)
            }
            (phase, _) => {
                self.phase = phase;
                return Err(StepError::DefinitionMismatch { state: state_name });
            }
        };
        self.run(machine, next, env);
        Ok(())
    }

    /// Redrives an ended execution as `RedriveExecution` does: only FAILED, TIMED_OUT or
    /// ABORTED ones, within 14 days of their end and with room left in the history; it
    /// restarts at the state that failed (or was in flight), with the input that state was
    /// entered with and fresh retry counters, keeps the history, records `ExecutionRedriven`
    /// and counts the redrive.
    pub fn redrive(
        &mut self,
        machine: &StateMachine,
        env: &mut dyn Env,
    ) -> Result<(), RedriveError> {
        if !matches!(
            self.status,
            Status::Failed | Status::TimedOut | Status::Aborted
        ) {
            return Err(RedriveError::NotRedrivable {
                status: self.status,
            });
        }
        let Phase::Ended { at: Some(visit) } = &self.phase else {
            return Err(RedriveError::NoFailedState);
        };
        if machine.model().state(&visit.state).is_none() {
            return Err(RedriveError::DefinitionMismatch {
                state: visit.state.clone(),
            });
        }
        let now = env.now();
        if let Some(ended_at) = self.history.last().map(|event| event.timestamp)
            && now - ended_at > chrono::TimeDelta::days(REDRIVABLE_DAYS)
        {
            return Err(RedriveError::RedrivablePeriodOver { ended_at });
        }
        // Room for ExecutionRedriven and the state's entry, as the quota check in `enter` needs.
        if self.history.len() + 3 > MAX_HISTORY_EVENTS {
            return Err(RedriveError::HistoryFull {
                events: self.history.len(),
            });
        }
        let next = Next::Enter {
            state: visit.state.clone(),
            input: visit.input.clone(),
        };
        self.redrive_count += 1;
        self.redrive_time = Some(now);
        self.status = Status::Running;
        self.failure = None;
        self.output = None;
        self.deadline = machine
            .model()
            .timeout_seconds
            .map(|seconds| after(now, seconds));
        let redrive_count = self.redrive_count;
        self.record_at(now, EventType::ExecutionRedriven, |event| {
            event.execution_redriven_event_details =
                Some(ExecutionRedrivenEventDetails { redrive_count });
        });
        self.run(machine, next, env);
        Ok(())
    }

    /// Stops a running execution as `StopExecution` does: ABORTED, with `ExecutionAborted`.
    /// A redrive restarts at the state that was in flight.
    pub fn stop(
        &mut self,
        error: Option<&str>,
        cause: Option<&str>,
        env: &mut dyn Env,
    ) -> Result<(), StepError> {
        if self.status != Status::Running {
            return Err(StepError::NotRunning {
                status: self.status,
            });
        }
        let at = self.take_phase().into_visit();
        self.status = Status::Aborted;
        self.failure = Some(Failure {
            error: error.unwrap_or_default().to_owned(),
            cause: cause.unwrap_or_default().to_owned(),
        });
        let details = ErrorEventDetails {
            error: error.map(str::to_owned),
            cause: cause.map(str::to_owned),
        };
        self.record(env, EventType::ExecutionAborted, |event| {
            event.execution_aborted_event_details = Some(details);
        });
        self.phase = Phase::Ended { at };
        Ok(())
    }

    /// The execution's status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The output of a SUCCEEDED execution.
    pub fn output(&self) -> Option<&Value> {
        self.output.as_ref()
    }

    /// The error of a FAILED, TIMED_OUT or ABORTED execution.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// The history, as `GetExecutionHistory` returns it (oldest first).
    pub fn history(&self) -> &[HistoryEvent] {
        &self.history
    }

    /// The execution without its history, serialized as the execution is minus its `history`
    /// field: for a store that keeps the history apart and appends each new event instead of
    /// rewriting them all. Deserializing that object with `"history"` added gives the execution
    /// back.
    pub fn without_history(&self) -> impl Serialize + '_ {
        WithoutHistory {
            info: &self.info,
            input: &self.input,
            start_time: &self.start_time,
            status: self.status,
            output: self.output.as_ref(),
            failure: self.failure.as_ref(),
            redrive_count: self.redrive_count,
            redrive_time: self.redrive_time.as_ref(),
            deadline: self.deadline.as_ref(),
            phase: &self.phase,
        }
    }

    /// How many times the execution has been redriven.
    pub fn redrive_count(&self) -> u32 {
        self.redrive_count
    }

    /// The execution's identity.
    pub fn info(&self) -> &ExecutionInfo {
        &self.info
    }

    /// The execution's input.
    pub fn input(&self) -> &Value {
        &self.input
    }

    /// When the execution started.
    pub fn start_time(&self) -> DateTime<Utc> {
        self.start_time
    }

    /// When the definition's `TimeoutSeconds` runs out, if it has one (counted from the start
    /// or from the last redrive).
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.deadline
    }

    /// Enters states until one has to wait for the driver or the execution ends.
    fn run(&mut self, machine: &StateMachine, mut next: Next, env: &mut dyn Env) {
        while let Next::Enter { state, input } = next {
            next = self.enter(machine, &state, input, env);
        }
    }

    /// Enters the state `name` with `input` and does what it can without the driver.
    fn enter(
        &mut self,
        machine: &StateMachine,
        name: &str,
        input: Value,
        env: &mut dyn Env,
    ) -> Next {
        // Room for this state's entry and exit and the execution's final event.
        if self.history.len() + 3 > MAX_HISTORY_EVENTS {
            let cause = format!(
                "The execution reached the maximum number of history events ({MAX_HISTORY_EVENTS})."
            );
            return self.fail(None, retry::STATES_RUNTIME, &cause, env);
        }
        let Some(state) = machine.model().state(name) else {
            let cause = format!("The state '{name}' is not in the state machine definition.");
            return self.fail(None, retry::STATES_RUNTIME, &cause, env);
        };
        let entered_time = env.now();
        let details = StateEnteredEventDetails {
            name: name.to_owned(),
            input: text(&input),
            input_details: PayloadDetails::default(),
        };
        let entered_event_id =
            self.record_at(entered_time, EventType::entered(&state.kind), |event| {
                event.state_entered_event_details = Some(details);
            });
        let visit = Visit {
            state: name.to_owned(),
            input,
            entered_time,
            entered_event_id,
            retry_count: 0,
            retrier_attempts: Vec::new(),
        };
        match &state.kind {
            Kind::Task(task) => self.schedule(state, task, visit, env),
            Kind::Pass {
                result,
                parameters,
                result_path,
                transition,
            } => {
                let processed =
                    self.pass_output(state, &visit, result, parameters, result_path, env);
                match processed {
                    Ok(output) => self.exit(state, transition, output, env),
                    Err(error) => self.fail_in(visit, error, env),
                }
            }
            Kind::Choice { choices, default } => {
                let context = self.context(&visit);
                let chosen = io::filter_borrowed(
                    "InputPath",
                    state.input_path.as_deref(),
                    &visit.input,
                    &context,
                )
                .and_then(|effective| {
                    let next = choice::choose(choices, &effective, &context)?
                        .or(default.as_deref())
                        .map(str::to_owned);
                    let output = io::filter_owned(
                        "OutputPath",
                        state.output_path.as_deref(),
                        effective.into_owned(),
                        &context,
                    )?;
                    Ok((next, output))
                });
                match chosen {
                    Ok((Some(next), output)) => {
                        self.exit(state, &Transition::Next(next), output, env)
                    }
                    Ok((None, _)) => {
                        let error = StateError::new("States.NoChoiceMatched", "No Matches!");
                        self.fail_in(visit, error, env)
                    }
                    Err(error) => self.fail_in(visit, error, env),
                }
            }
            Kind::Wait { wait, .. } => match self.wait_until(state, wait, &visit) {
                Ok((until, output)) => {
                    self.phase = Phase::Waiting {
                        visit,
                        until,
                        output,
                    };
                    Next::Stop
                }
                Err(error) => self.fail_in(visit, error, env),
            },
            Kind::Succeed => {
                let context = self.context(&visit);
                let output = io::filter_borrowed(
                    "InputPath",
                    state.input_path.as_deref(),
                    &visit.input,
                    &context,
                )
                .and_then(|effective| {
                    io::filter_owned(
                        "OutputPath",
                        state.output_path.as_deref(),
                        effective.into_owned(),
                        &context,
                    )
                });
                match output {
                    Ok(output) => self.exit(state, &Transition::End, output, env),
                    Err(error) => self.fail_in(visit, error, env),
                }
            }
            Kind::Fail { error, cause } => {
                let error = self.fail_text(error.as_ref(), &visit, "ErrorPath", env);
                let cause = self.fail_text(cause.as_ref(), &visit, "CausePath", env);
                match (error, cause) {
                    (Ok(error), Ok(cause)) => {
                        let (error, cause) = (error.unwrap_or_default(), cause.unwrap_or_default());
                        self.fail(Some(visit), &error, &cause, env)
                    }
                    (Err(failure), _) | (_, Err(failure)) => self.fail_in(visit, failure, env),
                }
            }
        }
    }

    /// A Pass state's output: InputPath, Parameters or Result, ResultPath, OutputPath.
    fn pass_output(
        &self,
        state: &State,
        visit: &Visit,
        result: &Option<Value>,
        parameters: &Option<Value>,
        result_path: &Option<String>,
        env: &mut dyn Env,
    ) -> Result<Value, StateError> {
        let context = self.context(visit);
        let effective = io::filter_borrowed(
            "InputPath",
            state.input_path.as_deref(),
            &visit.input,
            &context,
        )?;
        let produced = match (result, parameters) {
            (Some(result), _) => result.clone(),
            (None, Some(template)) => {
                io::template("Parameters", template, &effective, &context, &mut || {
                    env.random()
                })?
            }
            (None, None) => effective.into_owned(),
        };
        let placed = io::place(
            "ResultPath",
            result_path.as_deref(),
            visit.input.clone(),
            produced,
        )?;
        io::filter_owned("OutputPath", state.output_path.as_deref(), placed, &context)
    }

    /// A Wait state's deadline and output.
    fn wait_until(
        &self,
        state: &State,
        wait: &WaitFor,
        visit: &Visit,
    ) -> Result<(DateTime<Utc>, Value), StateError> {
        let context = self.context(visit);
        let effective = io::filter_borrowed(
            "InputPath",
            state.input_path.as_deref(),
            &visit.input,
            &context,
        )?;
        let until = match wait {
            WaitFor::Seconds(seconds) => after(visit.entered_time, *seconds),
            WaitFor::Timestamp(time) => *time,
            WaitFor::SecondsPath(path) => {
                let value = path::select(path, &effective, &context).ok();
                let seconds = value.as_ref().and_then(Value::as_u64).ok_or_else(|| {
                    StateError::runtime(format!(
                        "The SecondsPath parameter does not reference a valid non-negative integer: '{path}'"
                    ))
                })?;
                after(visit.entered_time, seconds)
            }
            WaitFor::TimestampPath(path) => {
                let value = path::select(path, &effective, &context).ok();
                value
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(timestamp::parse)
                    .ok_or_else(|| {
                        StateError::runtime(format!(
                            "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: '{path}'"
                        ))
                    })?
            }
        };
        let output = io::filter_owned(
            "OutputPath",
            state.output_path.as_deref(),
            effective.into_owned(),
            &context,
        )?;
        Ok((until, output))
    }

    /// A Fail state's `Error`/`Cause` from its literal or its `…Path` (a string is required).
    fn fail_text(
        &self,
        text_field: Option<&Text>,
        visit: &Visit,
        field: &str,
        env: &mut dyn Env,
    ) -> Result<Option<String>, StateError> {
        let expression = match text_field {
            None => return Ok(None),
            Some(Text::Literal(literal)) => return Ok(Some(literal.clone())),
            Some(Text::Path(expression)) => expression,
        };
        let context = self.context(visit);
        let value = if intrinsics::is_intrinsic(expression) {
            intrinsics::evaluate(expression, &visit.input, &context, &mut || env.random())
                .map_err(|error| StateError::new(io::INTRINSIC_FAILURE, error.cause))?
        } else {
            path::select(expression, &visit.input, &context).map_err(|_| {
                StateError::runtime(format!(
                    "The JSONPath '{expression}' specified for the field '{field}' could not be found in the input '{}'",
                    text(&visit.input)
                ))
            })?
        };
        match value {
            Value::String(text) => Ok(Some(text)),
            other => Err(StateError::runtime(format!(
                "The value of the field '{field}' must be a string, but was '{}'",
                text(&other)
            ))),
        }
    }

    /// Evaluates a Task's input and schedules its invocation (or handles the error that
    /// prevents it).
    fn schedule(&mut self, state: &State, task: &Task, visit: Visit, env: &mut dyn Env) -> Next {
        let context = self.context(&visit);
        let parameters = io::filter_borrowed(
            "InputPath",
            state.input_path.as_deref(),
            &visit.input,
            &context,
        )
        .and_then(|effective| match &task.parameters {
            Some(template) => {
                io::template("Parameters", template, &effective, &context, &mut || {
                    env.random()
                })
            }
            None => Ok(effective.into_owned()),
        });
        let parameters = match parameters {
            Ok(parameters) => parameters,
            Err(error) => return self.handle_error(state, task, visit, error, env),
        };
        let now = env.now();
        match &task.resource {
            Resource::LambdaInvoke => {
                let scheduled = TaskScheduledEventDetails {
                    resource_type: "lambda".to_owned(),
                    resource: "invoke".to_owned(),
                    region: self.region(),
                    parameters: text(&parameters),
                    timeout_in_seconds: task.timeout_seconds,
                };
                self.record_at(now, EventType::TaskScheduled, |event| {
                    event.task_scheduled_event_details = Some(scheduled);
                });
                self.record(env, EventType::TaskStarted, |event| {
                    event.task_started_event_details = Some(TaskStartedEventDetails {
                        resource_type: "lambda".to_owned(),
                        resource: "invoke".to_owned(),
                    });
                });
            }
            Resource::LambdaFunction(arn) => {
                let scheduled = LambdaFunctionScheduledEventDetails {
                    resource: arn.clone(),
                    input: text(&parameters),
                    input_details: PayloadDetails::default(),
                    timeout_in_seconds: task.timeout_seconds,
                };
                self.record_at(now, EventType::LambdaFunctionScheduled, |event| {
                    event.lambda_function_scheduled_event_details = Some(scheduled);
                });
                self.record(env, EventType::LambdaFunctionStarted, |_| {});
            }
        }
        let remaining = self.deadline.map(|deadline| {
            let millis = u64::try_from((deadline - now).num_milliseconds()).unwrap_or(0);
            millis.div_ceil(1000).max(1)
        });
        let timeout_seconds = match (task.timeout_seconds, remaining) {
            (Some(own), Some(remaining)) => Some(own.min(remaining)),
            (own, remaining) => own.or(remaining),
        };
        self.phase = Phase::Invoking {
            visit,
            resource: task.resource.arn().to_owned(),
            parameters,
            timeout_seconds,
        };
        Next::Stop
    }

    /// A Task's output from its result: ResultSelector, ResultPath, OutputPath.
    fn task_output(
        &self,
        state: &State,
        task: &Task,
        visit: &Visit,
        result: Value,
        env: &mut dyn Env,
    ) -> Result<Value, StateError> {
        let context = self.context(visit);
        let selected = match &task.result_selector {
            Some(template) => {
                io::template("ResultSelector", template, &result, &context, &mut || {
                    env.random()
                })?
            }
            None => result,
        };
        let placed = io::place(
            "ResultPath",
            task.result_path.as_deref(),
            visit.input.clone(),
            selected,
        )?;
        io::filter_owned("OutputPath", state.output_path.as_deref(), placed, &context)
    }

    /// Applies a Task's Retry, then Catch, to `error`; unhandled (or `States.Runtime`), the
    /// execution fails. The first retrier whose `ErrorEquals` matches decides: if it has
    /// attempts left the Task is retried after its backoff, otherwise Catch applies.
    fn handle_error(
        &mut self,
        state: &State,
        task: &Task,
        mut visit: Visit,
        error: StateError,
        env: &mut dyn Env,
    ) -> Next {
        if !retry::is_handleable(&error.error) {
            return self.fail_in(visit, error, env);
        }
        if let Some(index) = task
            .retry
            .iter()
            .position(|retrier| retry::matches(&retrier.error_equals, &error.error))
        {
            let retrier = &task.retry[index];
            visit.retrier_attempts.resize(task.retry.len(), 0);
            let attempts = visit.retrier_attempts[index];
            if u64::from(attempts) < retrier.max_attempts {
                let delay = retry::delay(retrier, attempts, || env.random());
                visit.retrier_attempts[index] = attempts + 1;
                visit.retry_count += 1;
                let now = env.now();
                let until = now
                    .checked_add_signed(delay)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                self.phase = Phase::BackingOff { visit, until };
                return Next::Stop;
            }
        }
        let Some(catcher) = task
            .catch
            .iter()
            .find(|catcher| retry::matches(&catcher.error_equals, &error.error))
        else {
            return self.fail_in(visit, error, env);
        };
        let error_output = json!({ "Error": error.error, "Cause": error.cause });
        match io::place(
            "ResultPath",
            catcher.result_path.as_deref(),
            visit.input.clone(),
            error_output,
        ) {
            Ok(output) => self.exit(state, &Transition::Next(catcher.next.clone()), output, env),
            Err(failure) => self.fail_in(visit, failure, env),
        }
    }

    /// Records the state's exit and follows its transition (`End` ends the execution).
    fn exit(
        &mut self,
        state: &State,
        transition: &Transition,
        output: Value,
        env: &mut dyn Env,
    ) -> Next {
        if let Some(exited) = EventType::exited(&state.kind) {
            let details = StateExitedEventDetails {
                name: state.name.clone(),
                output: text(&output),
                output_details: PayloadDetails::default(),
            };
            self.record(env, exited, |event| {
                event.state_exited_event_details = Some(details)
            });
        }
        match transition {
            Transition::Next(next) => Next::Enter {
                state: next.clone(),
                input: output,
            },
            Transition::End => {
                let details = OutputEventDetails {
                    output: text(&output),
                    output_details: PayloadDetails::default(),
                };
                self.record(env, EventType::ExecutionSucceeded, |event| {
                    event.execution_succeeded_event_details = Some(details);
                });
                self.status = Status::Succeeded;
                self.output = Some(output);
                self.phase = Phase::Ended { at: None };
                Next::Stop
            }
        }
    }

    /// Fails the execution with an error raised in `visit`'s state; a `States.Runtime` cause
    /// names the state as Step Functions does.
    fn fail_in(&mut self, visit: Visit, error: StateError, env: &mut dyn Env) -> Next {
        let cause = if error.error == retry::STATES_RUNTIME {
            format!(
                "An error occurred while executing the state '{}' (entered at the event id #{}). {}",
                visit.state, visit.entered_event_id, error.cause
            )
        } else {
            error.cause
        };
        self.fail(Some(visit), &error.error, &cause, env)
    }

    /// Ends the execution FAILED; a redrive restarts at `at`.
    fn fail(&mut self, at: Option<Visit>, error: &str, cause: &str, env: &mut dyn Env) -> Next {
        let details = ErrorEventDetails {
            error: Some(error.to_owned()),
            cause: Some(cause.to_owned()),
        };
        self.record(env, EventType::ExecutionFailed, |event| {
            event.execution_failed_event_details = Some(details);
        });
        self.status = Status::Failed;
        self.failure = Some(Failure {
            error: error.to_owned(),
            cause: cause.to_owned(),
        });
        self.phase = Phase::Ended { at };
        Next::Stop
    }

    /// Ends the execution TIMED_OUT if its deadline has passed.
    fn timed_out(&mut self, env: &mut dyn Env) -> bool {
        let now = env.now();
        let Some(deadline) = self.deadline.filter(|deadline| now >= *deadline) else {
            return false;
        };
        let at = self.take_phase().into_visit();
        let cause = format!(
            "The execution ran past its TimeoutSeconds deadline ({}).",
            timestamp::format(deadline)
        );
        let details = ErrorEventDetails {
            error: Some(retry::STATES_TIMEOUT.to_owned()),
            cause: Some(cause.clone()),
        };
        self.record_at(now, EventType::ExecutionTimedOut, |event| {
            event.execution_timed_out_event_details = Some(details);
        });
        self.status = Status::TimedOut;
        self.failure = Some(Failure {
            error: retry::STATES_TIMEOUT.to_owned(),
            cause,
        });
        self.phase = Phase::Ended { at };
        true
    }

    /// The pending Task's state in `machine`, checked before anything changes.
    fn pending_task<'m>(
        &self,
        machine: &'m StateMachine,
    ) -> Result<(&'m State, &'m Task), StepError> {
        let Phase::Invoking { visit, .. } = &self.phase else {
            return Err(StepError::NotInvoking {
                phase: self.phase.describe().to_owned(),
            });
        };
        let mismatch = || StepError::DefinitionMismatch {
            state: visit.state.clone(),
        };
        let state = machine.model().state(&visit.state).ok_or_else(mismatch)?;
        match &state.kind {
            Kind::Task(task) => Ok((state, task)),
            _ => Err(mismatch()),
        }
    }

    /// Takes the pending invocation's state entry out of the phase.
    fn take_invoking(&mut self) -> Result<Visit, StepError> {
        match self.take_phase() {
            Phase::Invoking { visit, .. } => Ok(visit),
            other => {
                let phase = other.describe().to_owned();
                self.phase = other;
                Err(StepError::NotInvoking { phase })
            }
        }
    }

    fn take_phase(&mut self) -> Phase {
        std::mem::replace(&mut self.phase, Phase::Ended { at: None })
    }

    /// A sleep ends at its own deadline or the execution's, whichever is first.
    fn sleep_until(&self, until: DateTime<Utc>) -> DateTime<Utc> {
        self.deadline.map_or(until, |deadline| until.min(deadline))
    }

    /// The context object (`$$`) of `visit`, built only if a path asks for it.
    fn context<'a>(&'a self, visit: &'a Visit) -> Context<'a> {
        Context {
            execution: self,
            visit,
            document: OnceCell::new(),
        }
    }

    /// The context object (`$$`) for a state entry, built.
    fn context_document(&self, visit: &Visit) -> Value {
        let mut execution = json!({
            "Id": self.info.execution_arn,
            "Input": self.input,
            "Name": self.info.name,
            "RoleArn": self.info.role_arn,
            "StartTime": timestamp::format(self.start_time),
            "RedriveCount": self.redrive_count,
        });
        if let Some(redrive_time) = self.redrive_time {
            execution["RedriveTime"] = Value::from(timestamp::format(redrive_time));
        }
        json!({
            "Execution": execution,
            "State": {
                "EnteredTime": timestamp::format(visit.entered_time),
                "Name": visit.state,
                "RetryCount": visit.retry_count,
            },
            "StateMachine": {
                "Id": self.info.state_machine_arn,
                "Name": self.info.state_machine_name,
            },
        })
    }

    /// The state machine's region (from its ARN), as `TaskScheduled` reports it.
    fn region(&self) -> String {
        self.info
            .state_machine_arn
            .split(':')
            .nth(3)
            .unwrap_or_default()
            .to_owned()
    }

    /// Appends an event stamped now; returns its id.
    fn record(
        &mut self,
        env: &mut dyn Env,
        event_type: EventType,
        details: impl FnOnce(&mut HistoryEvent),
    ) -> u64 {
        let now = env.now();
        self.record_at(now, event_type, details)
    }

    /// Appends an event stamped `time`; returns its id.
    fn record_at(
        &mut self,
        time: DateTime<Utc>,
        event_type: EventType,
        details: impl FnOnce(&mut HistoryEvent),
    ) -> u64 {
        let id = self.history.len() as u64 + 1;
        let mut event = HistoryEvent::new(time, event_type, id);
        details(&mut event);
        self.history.push(event);
        id
    }
}

/// The context object of one state entry, built on first use.
struct Context<'a> {
    execution: &'a Execution,
    visit: &'a Visit,
    document: OnceCell<Value>,
}

impl ContextObject for Context<'_> {
    fn document(&self) -> &Value {
        self.document
            .get_or_init(|| self.execution.context_document(self.visit))
    }
}

impl Phase {
    /// The state entry in flight, if any.
    fn into_visit(self) -> Option<Visit> {
        match self {
            Phase::Invoking { visit, .. }
            | Phase::Waiting { visit, .. }
            | Phase::BackingOff { visit, .. } => Some(visit),
            Phase::Ended { at } => at,
        }
    }
}

/// A field that is present is `Some`, even when it is JSON `null`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// `seconds` after `time`, saturating at the latest representable time.
fn after(time: DateTime<Utc>, seconds: u64) -> DateTime<Utc> {
    i64::try_from(seconds)
        .ok()
        .and_then(Duration::try_seconds)
        .and_then(|duration| time.checked_add_signed(duration))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
