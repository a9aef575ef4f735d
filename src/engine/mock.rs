//! `workflow test`: a definition run with its Task results mocked in AWS Step Functions Local's
//! MockConfigFile format, on a virtual clock (Wait states and retry backoffs take no real
//! time; the history's timestamps show the waits as they would be).
//!
//! ```json
//! {"StateMachines": {"incident": {"TestCases": {"HappyPath": {"Deliver": "DeliverOk"}}}},
//!  "MockedResponses": {"DeliverOk": {"0": {"Return": {"StatusCode": 200, "Payload": {}}}},
//!                      "Flaky": {"0-1": {"Throw": {"Error": "Webhook.Transient", "Cause": "503"}},
//!                                "2": {"Return": {"Payload": {}}}}}}
//! ```
//! A mocked response's keys count the state's invocations in the execution, retries included,
//! from 0 (`"1-2"` is the second and third). `Return` is the Task's whole result (for
//! `lambda:invoke`, `{"Payload": …}` and the rest), as in Step Functions Local.

use super::ARN_SCOPE;
use asl::{Action, Execution, ExecutionInfo, StateMachine, Status};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Transitions after which a run is stopped (a definition that loops forever).
const MAX_ACTIONS: usize = 100_000;

/// Why a test case cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MockError {
    #[error("mock config: {0}")]
    Config(String),
    #[error("mock config: no state machine {0:?} under StateMachines")]
    NoStateMachine(String),
    #[error("mock config: state machine {machine:?} has no test case {case:?}")]
    NoTestCase { machine: String, case: String },
    #[error("state {state:?} is a Task the test case does not mock")]
    NotMocked { state: String },
    #[error(
        "mocked response {response:?} of state {state:?} has nothing for invocation {invocation}"
    )]
    Exhausted {
        state: String,
        response: String,
        invocation: u32,
    },
    #[error("the execution went on for more than {MAX_ACTIONS} actions")]
    TooLong,
    #[error("interpreter: {0}")]
    Interpreter(String),
}

/// One mocked answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Mocked {
    Return(Value),
    Throw {
        #[serde(rename = "Error")]
        error: String,
        #[serde(rename = "Cause", default)]
        cause: String,
    },
}

/// A mocked response: answers for ranges of invocations.
#[derive(Debug, Clone, PartialEq)]
struct Response {
    ranges: Vec<(u32, u32, Mocked)>,
}

impl Response {
    fn parse(name: &str, entries: BTreeMap<String, Value>) -> Result<Self, MockError> {
        let mut ranges = Vec::new();
        for (key, value) in entries {
            let (from, to) = parse_range(&key).ok_or_else(|| {
                MockError::Config(format!(
                    "MockedResponses.{name}: key {key:?} is not an invocation number or range like \"1-2\""
                ))
            })?;
            let answer = parse_answer(value).map_err(|error| {
                MockError::Config(format!(
                    "MockedResponses.{name}.{key}: {error} (expected exactly one of Return or Throw {{Error, Cause}})"
                ))
            })?;
            ranges.push((from, to, answer));
        }
        ranges.sort_by_key(|(from, ..)| *from);
        if let Some(pair) = ranges.windows(2).find(|pair| pair[1].0 <= pair[0].1) {
            return Err(MockError::Config(format!(
                "MockedResponses.{name}: invocation {} is mocked twice",
                pair[1].0
            )));
        }
        Ok(Self { ranges })
    }

    fn answer(&self, invocation: u32) -> Option<&Mocked> {
        self.ranges
            .iter()
            .find(|(from, to, _)| (*from..=*to).contains(&invocation))
            .map(|(.., answer)| answer)
    }
}

/// `Return` or `Throw`: exactly one.
fn parse_answer(value: Value) -> Result<Mocked, String> {
    let fields = value.as_object().map_or(0, serde_json::Map::len);
    if fields != 1 {
        return Err(format!("{fields} fields"));
    }
    serde_json::from_value(value).map_err(|error| error.to_string())
}

/// `"3"` or `"1-2"`.
fn parse_range(key: &str) -> Option<(u32, u32)> {
    let (from, to) = key.split_once('-').unwrap_or((key, key));
    let (from, to) = (from.trim().parse().ok()?, to.trim().parse().ok()?);
    (from <= to).then_some((from, to))
}

/// A parsed MockConfigFile.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// State machine → test case → state → response name.
    machines: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    responses: BTreeMap<String, Response>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigFile {
    #[serde(default)]
    state_machines: BTreeMap<String, MachineFile>,
    #[serde(default)]
    mocked_responses: BTreeMap<String, BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MachineFile {
    test_cases: BTreeMap<String, BTreeMap<String, String>>,
}

impl MockConfig {
    /// Parses and checks the file: every response a test case names exists, every key is an
    /// invocation number or range, every answer is one `Return` or one `Throw`.
    pub fn parse(text: &str) -> Result<Self, MockError> {
        let file: ConfigFile =
            serde_json::from_str(text).map_err(|error| MockError::Config(error.to_string()))?;
        let responses = file
            .mocked_responses
            .into_iter()
            .map(|(name, entries)| Response::parse(&name, entries).map(|r| (name, r)))
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let machines: BTreeMap<_, _> = file
            .state_machines
            .into_iter()
            .map(|(name, machine)| (name, machine.test_cases))
            .collect();
        for (machine, cases) in &machines {
            for (case, states) in cases {
                if let Some((state, response)) = states
                    .iter()
                    .find(|(_, response)| !responses.contains_key(*response))
                {
                    return Err(MockError::Config(format!(
                        "StateMachines.{machine}.TestCases.{case}.{state} names {response:?}, which MockedResponses does not define"
                    )));
                }
            }
        }
        Ok(Self {
            machines,
            responses,
        })
    }

    /// The mocks of one test case.
    pub fn test_case(&self, machine: &str, case: &str) -> Result<TestCase<'_>, MockError> {
        let cases = self
            .machines
            .get(machine)
            .ok_or_else(|| MockError::NoStateMachine(machine.to_owned()))?;
        let states = cases.get(case).ok_or_else(|| MockError::NoTestCase {
            machine: machine.to_owned(),
            case: case.to_owned(),
        })?;
        Ok(TestCase {
            machine: machine.to_owned(),
            case: case.to_owned(),
            states,
            responses: &self.responses,
        })
    }
}

/// One test case's mocks, by state.
#[derive(Debug, Clone)]
pub struct TestCase<'a> {
    machine: String,
    case: String,
    states: &'a BTreeMap<String, String>,
    responses: &'a BTreeMap<String, Response>,
}

impl TestCase<'_> {
    fn answer(&self, state: &str, invocation: u32) -> Result<&Mocked, MockError> {
        let name = self.states.get(state).ok_or_else(|| MockError::NotMocked {
            state: state.to_owned(),
        })?;
        self.responses
            .get(name)
            .and_then(|response| response.answer(invocation))
            .ok_or_else(|| MockError::Exhausted {
                state: state.to_owned(),
                response: name.clone(),
                invocation,
            })
    }
}

/// Runs `case` of `machine` with `input` from `start` (virtual time) to its end. Answers
/// `{"status", "output" | "error" + "cause", "history"}`.
pub fn run(
    machine: &StateMachine,
    case: &TestCase<'_>,
    input: Value,
    start: DateTime<Utc>,
) -> Result<Value, MockError> {
    let mut env = VirtualEnv { now: start };
    let info = ExecutionInfo {
        execution_arn: format!(
            "arn:aws:states:{ARN_SCOPE}:execution:{}:{}",
            case.machine, case.case
        ),
        name: case.case.clone(),
        state_machine_arn: format!("arn:aws:states:{ARN_SCOPE}:stateMachine:{}", case.machine),
        state_machine_name: case.machine.clone(),
        role_arn: format!("arn:aws:iam::000000000000:role/{}", case.machine),
    };
    let mut execution = Execution::start(machine, info, input, &mut env);
    let mut invocations: HashMap<String, u32> = HashMap::new();
    for _ in 0..MAX_ACTIONS {
        let stepped = match execution.action() {
            Action::Finished => return Ok(report(&execution)),
            Action::Sleep { until } => {
                env.now = env.now.max(until);
                execution.wake(machine, &mut env)
            }
            Action::Invoke { state, .. } => {
                let count = invocations.entry(state.clone()).or_default();
                let invocation = *count;
                *count += 1;
                match case.answer(&state, invocation)? {
                    Mocked::Return(result) => {
                        execution.task_succeeded(machine, result.clone(), &mut env)
                    }
                    Mocked::Throw { error, cause } => {
                        execution.task_failed(machine, error, cause, &mut env)
                    }
                }
            }
        };
        stepped.map_err(|error| MockError::Interpreter(error.to_string()))?;
    }
    Err(MockError::TooLong)
}

fn report(execution: &Execution) -> Value {
    let mut report = json!({ "status": execution.status() });
    match (execution.status(), execution.failure()) {
        (Status::Succeeded, _) => {
            report["output"] = execution.output().cloned().unwrap_or(Value::Null)
        }
        (_, Some(failure)) => {
            report["error"] = json!(failure.error);
            report["cause"] = json!(failure.cause);
        }
        (_, None) => {}
    }
    report["history"] = json!(execution.history());
    report
}

/// Time that moves only when the execution waits; chance from the OS.
struct VirtualEnv {
    now: DateTime<Utc>,
}

impl asl::Env for VirtualEnv {
    fn now(&mut self) -> DateTime<Utc> {
        self.now
    }

    fn random(&mut self) -> f64 {
        rand::random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_numbers_or_inclusive_pairs() {
        assert_eq!(parse_range("0"), Some((0, 0)));
        assert_eq!(parse_range("1-2"), Some((1, 2)));
        assert_eq!(parse_range("2-1"), None);
        assert_eq!(parse_range("x"), None);
        assert_eq!(parse_range("-1"), None);
    }

    #[test]
    fn a_config_is_checked_when_parsed() {
        let missing = r#"{"StateMachines": {"m": {"TestCases": {"c": {"S": "Nope"}}}}, "MockedResponses": {}}"#;
        assert!(
            matches!(MockConfig::parse(missing), Err(MockError::Config(m)) if m.contains("Nope"))
        );
        let both = r#"{"MockedResponses": {"R": {"0": {"Return": 1, "Throw": {"Error": "E"}}}}}"#;
        assert!(
            matches!(MockConfig::parse(both), Err(MockError::Config(m)) if m.contains("exactly one"))
        );
        let overlap = r#"{"MockedResponses": {"R": {"0-2": {"Return": 1}, "2": {"Return": 2}}}}"#;
        assert!(
            matches!(MockConfig::parse(overlap), Err(MockError::Config(m)) if m.contains("twice"))
        );
        let key = r#"{"MockedResponses": {"R": {"first": {"Return": 1}}}}"#;
        assert!(matches!(MockConfig::parse(key), Err(MockError::Config(m)) if m.contains("first")));
    }

    #[test]
    fn invocations_pick_their_range() {
        let config = MockConfig::parse(
            r#"{"StateMachines": {"m": {"TestCases": {"c": {"S": "R"}}}},
                "MockedResponses": {"R": {"0": {"Throw": {"Error": "E", "Cause": "c"}}, "1-2": {"Return": {"n": 1}}}}}"#,
        )
        .unwrap();
        let case = config.test_case("m", "c").unwrap();
        assert!(matches!(case.answer("S", 0), Ok(Mocked::Throw { error, .. }) if error == "E"));
        assert_eq!(case.answer("S", 2), Ok(&Mocked::Return(json!({"n": 1}))));
        assert!(matches!(
            case.answer("S", 3),
            Err(MockError::Exhausted { invocation: 3, .. })
        ));
        assert!(matches!(
            case.answer("T", 0),
            Err(MockError::NotMocked { .. })
        ));
        assert!(matches!(
            config.test_case("m", "x"),
            Err(MockError::NoTestCase { .. })
        ));
        assert!(matches!(
            config.test_case("x", "c"),
            Err(MockError::NoStateMachine(_))
        ));
    }
}
