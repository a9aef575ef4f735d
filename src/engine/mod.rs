//! The local engine: `statemachine/incident.asl.json` run on one machine by the [`asl`]
//! interpreter, its Tasks calling the project's handlers in-process ([`functions`]), every
//! transition persisted in the store's SQLite file ([`SqliteExecutions`]).
//!
//! Each running execution is driven by one tokio task: it performs the interpreter's next
//! [`Action`] (invoke a function, sleep until a retry or Wait is due), feeds the outcome back
//! and saves the execution before the next action. A process killed at any point restarts
//! with [`Engine::resume`], which drives every RUNNING execution on from its last saved
//! transition: an invocation that was under way is made again (Lambda's at-least-once, which
//! the handlers tolerate: the signer sends the same bytes, DevOps Agent deduplicates), and
//! [`Engine::report_failures`], which records failures whose recording the crash cut short.
//! A save only replaces an execution with fewer transitions, so a stale driver (another
//! process on the same file) stops instead of overwriting progress.
//!
//! What the EventBridge rule on `Execution Status Change` does in AWS, the engine does itself:
//! when an execution ends FAILED, TIMED_OUT or ABORTED, or runs again after a redrive, it hands
//! the same event to [`crate::recorder`], so the incident's record reads as it would in AWS.

pub mod functions;
pub mod mock;
pub mod pipeline;

use crate::adapters::local::{Inserted, SqliteExecutions};
use crate::incident::timestamp;
use crate::ports::{Clock, IncidentStore, StartError, StoreError, WorkflowStarter};
use crate::recorder::{self, STATUS_CHANGE_DETAIL_TYPE};
use asl::{Action, Execution, ExecutionInfo, StateMachine, Status};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use functions::{ENRICHER, FunctionError, Functions, RECORDER, SIGNER};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The workflow definition the engine runs: the very file SAM deploys.
pub const DEFINITION: &str = include_str!("../../statemachine/incident.asl.json");
/// The local state machine's name, in its ARN and its executions'.
pub const STATE_MACHINE_NAME: &str = "alarm-relay-incident";
/// Region and account of the local ARNs: recognisably not AWS.
const ARN_SCOPE: &str = "local:000000000000";
/// How long a failed save waits before trying again, at most.
const MAX_SAVE_BACKOFF: Duration = Duration::from_secs(5);

/// The DefinitionSubstitutions of the local engine: each function ARN names an in-process handler.
pub fn substitutions() -> BTreeMap<String, String> {
    [
        ("EnricherFunctionArn", ENRICHER),
        ("SignerFunctionArn", SIGNER),
        ("RecorderFunctionArn", RECORDER),
    ]
    .into_iter()
    .map(|(key, function)| {
        (
            key.to_owned(),
            format!("arn:aws:lambda:{ARN_SCOPE}:function:{function}"),
        )
    })
    .collect()
}

/// The local state machine's ARN.
pub fn state_machine_arn() -> String {
    format!("arn:aws:states:{ARN_SCOPE}:stateMachine:{STATE_MACHINE_NAME}")
}

/// Why the engine could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no execution {0}")]
    NotFound(String),
    #[error("execution {0} is being run by this process")]
    Busy(String),
    #[error("cannot redrive: {0}")]
    Redrive(#[from] asl::RedriveError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs executions of one state machine; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    machine: StateMachine,
    executions: SqliteExecutions,
    functions: Arc<dyn Functions>,
    store: Arc<dyn IncidentStore>,
    clock: Arc<dyn Clock>,
    /// The ARNs of the executions this process is driving.
    active: Mutex<HashSet<String>>,
    /// How many there are, for [`Engine::wait_idle`].
    running: tokio::sync::watch::Sender<usize>,
}

impl Engine {
    pub fn new(
        machine: StateMachine,
        executions: SqliteExecutions,
        functions: Arc<dyn Functions>,
        store: Arc<dyn IncidentStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                machine,
                executions,
                functions,
                store,
                clock,
                active: Mutex::new(HashSet::new()),
                running: tokio::sync::watch::channel(0).0,
            }),
        }
    }

    /// The executions table the engine keeps.
    pub fn executions(&self) -> &SqliteExecutions {
        &self.inner.executions
    }

    /// Drives every RUNNING execution found in the store that this process is not driving yet
    /// (after a restart, or one whose driver gave up); answers how many it took up.
    pub async fn resume(&self) -> Result<usize, StoreError> {
        let running = self
            .inner
            .executions
            .with_status(Status::Running, usize::MAX)
            .await?;
        let mut resumed = 0;
        for execution in running {
            let Some(claim) = self.inner.claim(&execution.info().execution_arn) else {
                continue;
            };
            tracing::info!(
                execution = execution.info().name,
                "resuming an execution in flight"
            );
            if execution.redrive_count() > 0 {
                // The process may have died between saving a redrive and recording it.
                self.inner.report(&execution).await;
            }
            self.spawn(claim, execution);
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Hands every ended failure to the recorder again: the process may have died between
    /// saving the end of an execution and recording it. The recorder appends each outcome
    /// once, so what was recorded already is left as it is. Answers how many were looked at.
    pub async fn report_failures(&self) -> Result<usize, StoreError> {
        let mut count = 0;
        for status in [Status::Failed, Status::TimedOut, Status::Aborted] {
            for execution in self
                .inner
                .executions
                .with_status(status, usize::MAX)
                .await?
            {
                self.inner.report(&execution).await;
                count += 1;
            }
        }
        Ok(count)
    }

    /// Redrives a FAILED, TIMED_OUT or ABORTED execution from the state that failed, as Step
    /// Functions' RedriveExecution does, and drives it; answers the execution's status then.
    pub async fn redrive(&self, execution_arn: &str) -> Result<Status, EngineError> {
        let busy = || EngineError::Busy(execution_arn.to_owned());
        let claim = self.inner.claim(execution_arn).ok_or_else(busy)?;
        let mut execution = self
            .inner
            .executions
            .get(execution_arn)
            .await?
            .ok_or_else(|| EngineError::NotFound(execution_arn.to_owned()))?;
        execution.redrive(&self.inner.machine, &mut self.inner.env())?;
        if !self.inner.save(&execution).await? {
            return Err(busy());
        }
        self.inner.report(&execution).await;
        let status = execution.status();
        self.spawn(claim, execution);
        Ok(status)
    }

    /// Waits until this process drives no execution (each has ended or waits on a failure).
    pub async fn wait_idle(&self) {
        let mut running = self.inner.running.subscribe();
        // The sender lives in `inner`, which `self` holds: the channel cannot close here.
        let _ = running.wait_for(|count| *count == 0).await;
    }

    /// Drives `execution` on a task of its own, for as long as `claim` is held.
    fn spawn(&self, claim: Claim, execution: Execution) {
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            inner.drive(execution).await;
            drop(claim);
        });
    }

    /// Drives the stored execution `execution_arn` if it is RUNNING and not driven already.
    fn spawn_stored(&self, execution_arn: &str) {
        let Some(claim) = self.inner.claim(execution_arn) else {
            return;
        };
        let (inner, arn) = (Arc::clone(&self.inner), execution_arn.to_owned());
        tokio::spawn(async move {
            match inner.executions.get(&arn).await {
                Ok(Some(execution)) if execution.status() == Status::Running => {
                    inner.drive(execution).await;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(execution = arn, %error, "not resumed now; the next sweep tries again");
                }
            }
            drop(claim);
        });
    }
}

/// This process's claim on driving one execution: while it lives, no other driver in the
/// process takes the execution up. (Another process is kept from overwriting its progress by
/// the store's conditional save.)
struct Claim {
    inner: Arc<Inner>,
    arn: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut active) = self.inner.active.lock() {
            active.remove(&self.arn);
        }
        self.inner.running.send_modify(|count| *count -= 1);
    }
}

#[async_trait]
impl WorkflowStarter for Engine {
    /// Starts (and drives) the execution `name`. As with the Step Functions starter, an
    /// execution of that name already there is success with its ARN: names are derived from
    /// incident ids, so it is this incident's.
    async fn start(&self, name: &str, input: &Value) -> Result<String, StartError> {
        let inner = &self.inner;
        let info = ExecutionInfo {
            execution_arn: format!(
                "arn:aws:states:{ARN_SCOPE}:execution:{STATE_MACHINE_NAME}:{name}"
            ),
            name: name.to_owned(),
            state_machine_arn: state_machine_arn(),
            state_machine_name: STATE_MACHINE_NAME.to_owned(),
            role_arn: format!("arn:aws:iam::000000000000:role/{STATE_MACHINE_NAME}"),
        };
        let arn = info.execution_arn.clone();
        let canonical = serde_json::to_string(input)
            .map_err(|error| StartError::Failed(format!("execution input: {error}")))?;
        let execution = Execution::start(&inner.machine, info, input.clone(), &mut inner.env());
        match inner
            .executions
            .insert(&execution, &canonical, inner.clock.now())
            .await
        {
            Ok(Inserted::New) => {
                if let Some(claim) = inner.claim(&arn) {
                    self.spawn(claim, execution);
                }
            }
            Ok(Inserted::Existing(existing)) if existing.status() == Status::Running => {
                self.spawn_stored(&arn);
            }
            Ok(Inserted::Existing(_)) => {}
            Ok(Inserted::Conflict) => {
                tracing::warn!(
                    execution = name,
                    "an execution of this name exists with another input; keeping it"
                );
            }
            Err(StoreError::Unavailable(message)) => return Err(StartError::Unavailable(message)),
            Err(error) => return Err(StartError::Failed(error.to_string())),
        }
        Ok(arn)
    }
}

impl Inner {
    /// Claims `execution_arn` for a driver, unless one in this process has it.
    fn claim(self: &Arc<Self>, execution_arn: &str) -> Option<Claim> {
        let mut active = match self.active.lock() {
            Ok(active) => active,
            Err(_) => {
                tracing::error!(
                    execution = execution_arn,
                    "the engine's state is poisoned; not driving"
                );
                return None;
            }
        };
        if !active.insert(execution_arn.to_owned()) {
            return None;
        }
        drop(active);
        self.running.send_modify(|count| *count += 1);
        Some(Claim {
            inner: Arc::clone(self),
            arn: execution_arn.to_owned(),
        })
    }

    fn env(&self) -> SystemEnv<'_> {
        SystemEnv {
            clock: self.clock.as_ref(),
        }
    }

    /// Performs actions until the execution ends, saving it after each transition.
    async fn drive(&self, mut execution: Execution) {
        let name = execution.info().name.clone();
        loop {
            let stepped = match execution.action() {
                Action::Finished => break,
                Action::Sleep { until } => {
                    // The wall clock may step back while the monotonic sleep runs.
                    while self.clock.now() < until {
                        sleep_until(self.clock.as_ref(), until).await;
                    }
                    execution.wake(&self.machine, &mut self.env())
                }
                Action::Invoke {
                    resource,
                    parameters,
                    timeout_seconds,
                    ..
                } => match self.invoke(&resource, parameters, timeout_seconds).await {
                    Ok(result) => execution.task_succeeded(&self.machine, result, &mut self.env()),
                    Err((error, cause)) => {
                        execution.task_failed(&self.machine, &error, &cause, &mut self.env())
                    }
                },
            };
            if let Err(error) = stepped {
                tracing::error!(execution = name, %error, "the interpreter refused a step; the execution stays as last saved");
                return;
            }
            if !self.save_until_stored(&execution).await {
                tracing::warn!(
                    execution = name,
                    "the stored execution moved on without this driver; leaving it"
                );
                return;
            }
        }
        tracing::info!(execution = name, status = ?execution.status(), "execution ended");
        self.report(&execution).await;
    }

    /// Runs a Task's function: `lambda:invoke` (its result wrapped as Step Functions wraps it)
    /// or a function ARN as the resource. Errors are `(error name, cause)`.
    async fn invoke(
        &self,
        resource: &str,
        parameters: Value,
        timeout_seconds: Option<u64>,
    ) -> Result<Value, (String, String)> {
        let function = asl::function_name(&parameters, resource).unwrap_or_default();
        let (payload, wrapped) = if resource == asl::LAMBDA_INVOKE {
            let payload = match parameters {
                Value::Object(mut parameters) => parameters.remove("Payload"),
                _ => None,
            };
            (payload.unwrap_or(json!({})), true)
        } else {
            (parameters, false)
        };
        let call = self.functions.invoke(&function, payload);
        let outcome = match timeout_seconds {
            Some(seconds) => tokio::time::timeout(Duration::from_secs(seconds), call)
                .await
                .map_err(|_| {
                    (
                        "States.Timeout".to_owned(),
                        format!("Task timed out after {seconds} seconds"),
                    )
                })?,
            None => call.await,
        };
        match outcome {
            Ok(output) if wrapped => Ok(asl::lambda_invoke_result(output)),
            Ok(output) => Ok(output),
            Err(FunctionError {
                error_type,
                message,
            }) => {
                let cause = json!({ "errorMessage": message, "errorType": error_type });
                Err((error_type, cause.to_string()))
            }
        }
    }

    /// Saves `execution` unless the stored one has moved on; answers whether it saved.
    async fn save(&self, execution: &Execution) -> Result<bool, StoreError> {
        self.executions.save(execution, self.clock.now()).await
    }

    /// Saves, trying again (with a growing wait) for as long as the store fails: a lock held by
    /// another process, a full disk. An execution is never given up while its process lives.
    /// Answers false when the stored execution moved on without this copy.
    async fn save_until_stored(&self, execution: &Execution) -> bool {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.save(execution).await {
                Ok(saved) => return saved,
                Err(error) => {
                    tracing::warn!(execution = execution.info().name, %error, "execution not saved; saving again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_SAVE_BACKOFF);
                }
            }
        }
    }

    /// Hands the execution's status change to the recorder, as the EventBridge rule does in
    /// AWS: an ended failure, or a redriven execution running again.
    async fn report(&self, execution: &Execution) {
        let status = execution.status();
        let reported = matches!(status, Status::Failed | Status::TimedOut | Status::Aborted)
            || (status == Status::Running && execution.redrive_count() > 0);
        if !reported {
            return;
        }
        let event = status_change_event(execution, self.clock.now());
        let mut backoff = Duration::from_millis(50);
        loop {
            match recorder::handle(&event, self.store.as_ref(), self.clock.as_ref()).await {
                Err(recorder::RecorderError::Store(StoreError::Unavailable(message))) => {
                    tracing::warn!(message, "store busy; recording the status change again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_SAVE_BACKOFF);
                }
                Err(error) => {
                    tracing::error!(execution = execution.info().name, %error, "status change not recorded");
                    return;
                }
                Ok(_) => return,
            }
        }
    }
}

/// The `Step Functions Execution Status Change` event Step Functions would send for
/// `execution` now.
fn status_change_event(execution: &Execution, now: DateTime<Utc>) -> Value {
    let info = execution.info();
    let failure = execution.failure();
    json!({
        "version": "0",
        "detail-type": STATUS_CHANGE_DETAIL_TYPE,
        "source": "aws.states",
        "time": timestamp(now),
        "resources": [info.execution_arn],
        "detail": {
            "executionArn": info.execution_arn,
            "stateMachineArn": info.state_machine_arn,
            "name": info.name,
            "status": execution.status(),
            "input": execution.input().to_string(),
            "error": failure.map(|failure| failure.error.as_str()),
            "cause": failure.map(|failure| failure.cause.as_str()),
            "redriveCount": execution.redrive_count(),
        },
    })
}

async fn sleep_until(clock: &dyn Clock, until: DateTime<Utc>) {
    if let Ok(wait) = (until - clock.now()).to_std() {
        tokio::time::sleep(wait).await;
    }
}

/// The interpreter's view of time and chance: the engine's clock, the OS's randomness.
struct SystemEnv<'a> {
    clock: &'a dyn Clock,
}

impl asl::Env for SystemEnv<'_> {
    fn now(&mut self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn random(&mut self) -> f64 {
        rand::random()
    }
}
