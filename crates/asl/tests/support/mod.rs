//! Shared test support: a deterministic [`Env`], loading helpers and a scripted driver.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

use asl::{Action, Env, Execution, ExecutionInfo, LoadError, StateMachine};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;

/// A fixed clock the test advances, and scripted random numbers (then a default).
pub struct TestEnv {
    pub now: DateTime<Utc>,
    pub randoms: VecDeque<f64>,
    pub default_random: f64,
}

impl TestEnv {
    pub fn new() -> Self {
        TestEnv {
            now: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
            randoms: VecDeque::new(),
            default_random: 0.5,
        }
    }

    pub fn advance(&mut self, seconds: i64) {
        self.now += Duration::seconds(seconds);
    }
}

impl Env for TestEnv {
    fn now(&mut self) -> DateTime<Utc> {
        self.now
    }

    fn random(&mut self) -> f64 {
        self.randoms.pop_front().unwrap_or(self.default_random)
    }
}

pub fn info() -> ExecutionInfo {
    ExecutionInfo {
        execution_arn: "arn:aws:states:eu-west-1:123456789012:execution:incident:exec-1".to_owned(),
        name: "exec-1".to_owned(),
        state_machine_arn: "arn:aws:states:eu-west-1:123456789012:stateMachine:incident".to_owned(),
        state_machine_name: "incident".to_owned(),
        role_arn: "arn:aws:iam::123456789012:role/sfn".to_owned(),
    }
}

pub const FN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:worker";

pub fn load(definition: &Value) -> StateMachine {
    StateMachine::load(&definition.to_string(), &BTreeMap::new())
        .unwrap_or_else(|error| panic!("definition should load: {error}"))
}

pub fn refuse(definition: &Value) -> LoadError {
    match StateMachine::load(&definition.to_string(), &BTreeMap::new()) {
        Ok(_) => panic!("definition should be refused: {definition}"),
        Err(error) => error,
    }
}

/// What a scripted task invocation returns.
pub enum Outcome {
    Ok(Value),
    Err(&'static str, &'static str),
}

/// Drives `execution` until it ends or an Invoke finds no outcome left: each Invoke takes the
/// next outcome, each Sleep advances the clock to its deadline and wakes. Returns the actions
/// seen.
pub fn drive(
    machine: &StateMachine,
    execution: &mut Execution,
    outcomes: impl IntoIterator<Item = Outcome>,
    env: &mut TestEnv,
) -> Vec<Action> {
    let mut outcomes = outcomes.into_iter();
    let mut seen = Vec::new();
    loop {
        let action = execution.action();
        seen.push(action.clone());
        match action {
            Action::Finished => return seen,
            Action::Sleep { until } => {
                env.now = env.now.max(until);
                execution.wake(machine, env).unwrap();
            }
            Action::Invoke { .. } => {
                let Some(outcome) = outcomes.next() else {
                    return seen;
                };
                env.advance(1);
                match outcome {
                    Outcome::Ok(result) => execution.task_succeeded(machine, result, env).unwrap(),
                    Outcome::Err(error, cause) => {
                        execution.task_failed(machine, error, cause, env).unwrap()
                    }
                }
            }
        }
    }
}

/// The history's event types, as serialized.
pub fn types(execution: &Execution) -> Vec<String> {
    execution
        .history()
        .iter()
        .map(|event| {
            serde_json::to_value(event).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Starts an execution with the test identity.
pub fn start(machine: &StateMachine, input: Value, env: &mut TestEnv) -> Execution {
    Execution::start(machine, info(), input, env)
}
