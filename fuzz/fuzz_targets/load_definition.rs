//! Any bytes as an ASL definition, through [`StateMachine::load`] with the local engine's
//! substitutions (what `serve` and `workflow test` do with `--definition`): a typed
//! [`asl::LoadError`] with a message, or a machine that runs. A loaded machine is driven for a
//! bounded number of actions on a virtual clock, its Tasks answered in turn with their
//! parameters, a retryable error and a terminal one, so that what validation lets through is
//! also what the interpreter can execute. Never a panic; a driver that follows
//! [`Execution::action`] never gets a `StepError`.

#![no_main]

use asl::{Action, Env, Execution, ExecutionInfo, StateMachine};
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::LazyLock;

static SUBSTITUTIONS: LazyLock<BTreeMap<String, String>> =
    LazyLock::new(alarm_relay::engine::substitutions);

/// Enough to go through retries, waits and a few loops; the interpreter itself caps a run at
/// 25,000 history events.
const MAX_ACTIONS: usize = 64;

/// Time moves only when the execution sleeps; chance is fixed.
struct VirtualEnv {
    now: DateTime<Utc>,
}

impl Env for VirtualEnv {
    fn now(&mut self) -> DateTime<Utc> {
        self.now
    }

    fn random(&mut self) -> f64 {
        0.5
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let machine = match StateMachine::load(text, &SUBSTITUTIONS) {
        Ok(machine) => machine,
        Err(error) => {
            assert!(!error.message.is_empty());
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    let mut env = VirtualEnv {
        now: DateTime::parse_from_rfc3339("2026-11-24T10:00:05Z")
            .expect("a valid start time")
            .with_timezone(&Utc),
    };
    let info = ExecutionInfo {
        execution_arn: "arn:aws:states:us-east-1:000000000000:execution:fuzz:run".into(),
        name: "run".into(),
        state_machine_arn: "arn:aws:states:us-east-1:000000000000:stateMachine:fuzz".into(),
        state_machine_name: "fuzz".into(),
        role_arn: "arn:aws:iam::000000000000:role/fuzz".into(),
    };
    let input = json!({"incidentId": "i-1", "event": {"detail": {"alarmName": "a"}}});
    let mut execution = Execution::start(&machine, info, input, &mut env);
    let mut invocations = 0_usize;
    for _ in 0..MAX_ACTIONS {
        let stepped = match execution.action() {
            Action::Finished => break,
            Action::Sleep { until } => {
                env.now = env.now.max(until);
                execution.wake(&machine, &mut env)
            }
            Action::Invoke { parameters, .. } => {
                invocations += 1;
                match invocations % 3 {
                    0 => execution.task_failed(&machine, "Webhook.Transient", "503", &mut env),
                    1 => execution.task_succeeded(
                        &machine,
                        asl::lambda_invoke_result(parameters),
                        &mut env,
                    ),
                    _ => execution.task_failed(&machine, "States.TaskFailed", "boom", &mut env),
                }
            }
        };
        stepped.expect("a driver following action() gets no StepError");
    }
    let _ = serde_json::to_string(execution.history()).expect("the history serializes");
});
