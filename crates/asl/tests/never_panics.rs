//! Random definitions, inputs and driver calls never panic: every problem is a typed error.

mod support;

use std::collections::BTreeMap;

use asl::{Action, Execution, StateMachine};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{FN, TestEnv};

const NAMES: [&str; 3] = ["A", "B", "C"];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-5i64..100).prop_map(Value::from),
        (-1e3f64..1e3).prop_map(Value::from),
        prop::sample::select(vec![
            "$",
            "$.a",
            "$.b[0]",
            "$$.State.RetryCount",
            "x",
            "2024-01-01T00:00:00Z",
            "States.Format('{}', $.a)",
            "$.a.b"
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec!["a", "b", "c.$", "Payload"]),
                inner,
                0..3
            )
            .prop_map(|map| Value::Object(
                map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

fn field() -> impl Strategy<Value = (String, Value)> {
    let name = prop::sample::select(vec![
        "InputPath",
        "OutputPath",
        "ResultPath",
        "Parameters",
        "ResultSelector",
        "Result",
        "Retry",
        "Catch",
        "TimeoutSeconds",
        "Seconds",
        "SecondsPath",
        "Timestamp",
        "TimestampPath",
        "Error",
        "CausePath",
        "Default",
        "Choices",
        "Next",
        "End",
    ]);
    let value = prop_oneof![
        json_value(),
        prop::sample::select(NAMES.to_vec()).prop_map(Value::from),
        Just(json!([{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "JitterStrategy": "FULL"}])),
        Just(json!([{"ErrorEquals": ["States.ALL"], "Next": "A", "ResultPath": "$.e"}])),
        Just(
            json!([{"Variable": "$.a", "NumericGreaterThan": 1, "Next": "B"}, {"Not": {"Variable": "$.b", "IsPresent": true}, "Next": "C"}])
        ),
        Just(json!({"FunctionName": FN, "Payload.$": "$"})),
    ];
    (name, value).prop_map(|(name, value)| (name.to_owned(), value))
}

/// A valid skeleton of each state type (so most definitions load), then random fields over it.
fn state() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec![
        "Task",
        "LambdaInvoke",
        "Pass",
        "Choice",
        "Wait",
        "Succeed",
        "Fail",
    ]);
    let next = prop::sample::select(vec![
        json!({"End": true}),
        json!({"Next": "A"}),
        json!({"Next": "B"}),
        json!({"Next": "C"}),
    ]);
    (kind, next, prop::collection::vec(field(), 0..2)).prop_map(|(kind, next, fields)| {
        let mut state = match kind {
            "Task" => json!({"Type": "Task", "Resource": FN, "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 1}]}),
            "LambdaInvoke" => json!({"Type": "Task", "Resource": asl::LAMBDA_INVOKE,
                "Parameters": {"FunctionName": FN, "Payload.$": "$"}, "ResultSelector": {"p.$": "$.Payload"}}),
            "Pass" => json!({"Type": "Pass"}),
            "Wait" => json!({"Type": "Wait", "Seconds": 1}),
            "Choice" => json!({"Type": "Choice", "Default": "A",
                "Choices": [{"Variable": "$.a", "NumericGreaterThan": 1, "Next": "B"}, {"Not": {"Variable": "$.b", "IsPresent": true}, "Next": "C"}]}),
            "Succeed" => json!({"Type": "Succeed"}),
            _ => json!({"Type": "Fail", "ErrorPath": "$.a"}),
        };
        if !matches!(kind, "Choice" | "Succeed" | "Fail") {
            state.as_object_mut().unwrap().extend(next.as_object().unwrap().clone());
        }
        for (name, value) in fields {
            state[name] = value;
        }
        state
    })
}

fn definition() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(state(), 3),
        prop::sample::select(NAMES.to_vec()),
    )
        .prop_map(|(states, start)| {
            let mut states: serde_json::Map<String, Value> = NAMES
                .iter()
                .zip(states)
                .map(|(name, state)| (name.to_string(), state))
                .collect();
            // Drop states nothing leads to, so that most definitions pass the reachability check.
            let mut reached = vec![start.to_owned()];
            let mut index = 0;
            while let Some(name) = reached.get(index).cloned() {
                if let Some(state) = states.get(&name) {
                    targets(state, &mut reached);
                }
                index += 1;
            }
            states.retain(|name, _| reached.contains(name));
            json!({"StartAt": start, "States": states})
        })
}

/// Adds the state names a state's `Next`/`Default` fields (at any depth) lead to.
fn targets(value: &Value, reached: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("Next" | "Default", Value::String(name)) if !reached.contains(name) => {
                        reached.push(name.clone());
                    }
                    _ => targets(item, reached),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| targets(item, reached)),
        _ => {}
    }
}

/// What the scripted driver answers to each invocation.
fn outcome() -> impl Strategy<Value = Result<Value, String>> {
    prop_oneof![
        json_value().prop_map(Ok),
        prop::sample::select(vec![
            "E",
            "States.Timeout",
            "States.Runtime",
            "States.TaskFailed"
        ])
        .prop_map(|e| Err(e.to_owned())),
    ]
}

fn exercise(
    definition: &Value,
    input: Value,
    outcomes: Vec<Result<Value, String>>,
    randoms: Vec<f64>,
) {
    let Ok(machine) = StateMachine::load(&definition.to_string(), &BTreeMap::new()) else {
        return;
    };
    let mut env = TestEnv::new();
    env.randoms.extend(randoms);
    let mut execution = Execution::start(&machine, support::info(), input, &mut env);
    let mut outcomes = outcomes.into_iter();
    for _ in 0..40 {
        match execution.action() {
            Action::Finished => {
                let _ = execution.redrive(&machine, &mut env);
            }
            Action::Sleep { until } => {
                let _ = execution.task_succeeded(&machine, json!(1), &mut env);
                env.now = env.now.max(until);
                execution.wake(&machine, &mut env).unwrap();
            }
            Action::Invoke { .. } => {
                env.advance(1);
                let _ = execution.wake(&machine, &mut env);
                match outcomes.next() {
                    Some(Ok(result)) => execution
                        .task_succeeded(&machine, result, &mut env)
                        .unwrap(),
                    Some(Err(error)) => execution
                        .task_failed(&machine, &error, "c", &mut env)
                        .unwrap(),
                    None => return,
                }
            }
        }
        let saved = serde_json::to_string(&execution).unwrap();
        let reloaded: Execution = serde_json::from_str(&saved).unwrap();
        assert_eq!(reloaded, execution);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn random_definitions_and_inputs_never_panic(
        definition in definition(),
        input in json_value(),
        outcomes in prop::collection::vec(outcome(), 0..8),
        randoms in prop::collection::vec(0.0f64..1.0, 0..8),
    ) {
        exercise(&definition, input, outcomes, randoms);
    }

    #[test]
    fn arbitrary_text_never_panics_the_loader(text in ".{0,200}") {
        let _ = StateMachine::load(&text, &BTreeMap::new());
    }
}

#[test]
fn some_random_definitions_load() {
    // Guards the generator: the property above must exercise executions, not only refusals.
    let definition = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"c.$": "$.a"}, "End": true}}});
    exercise(&definition, json!({"a": 1}), vec![], vec![]);
    assert!(StateMachine::load(&definition.to_string(), &BTreeMap::new()).is_ok());
}
