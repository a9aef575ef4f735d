//! Definitions Step Functions (or the local engine) refuses, each naming the state and field.

mod support;

use serde_json::{Value, json};
use support::{FN, refuse};

/// A one-Task definition with `extra` merged into the Task.
fn with_task(extra: Value) -> Value {
    let mut task = json!({"Type": "Task", "Resource": FN, "End": true});
    for (key, value) in extra.as_object().unwrap() {
        if value.is_null() && key.starts_with('-') {
            task.as_object_mut().unwrap().remove(&key[1..]);
        } else {
            task[key] = value.clone();
        }
    }
    json!({"StartAt": "T", "States": {"T": task}})
}

fn single(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

#[track_caller]
fn refused(definition: Value, state: Option<&str>, field: &str, message: &str) {
    let error = refuse(&definition);
    assert_eq!(error.state.as_deref(), state, "{error}");
    assert_eq!(error.field, field, "{error}");
    assert!(error.message.contains(message), "{error}");
}

#[test]
fn display_names_state_and_field() {
    let error = refuse(&with_task(
        json!({"Retry": [{"ErrorEquals": ["States.ALL", "X"]}]}),
    ));
    assert_eq!(
        error.to_string(),
        "state \"T\", field \"Retry[0].ErrorEquals\": States.ALL must appear alone"
    );
    let error = refuse(&json!({"States": {"A": {"Type": "Succeed"}}}));
    assert_eq!(error.to_string(), "field \"StartAt\": is required");
}

#[test]
fn top_level_rules() {
    refused(
        json!({"StartAt": "Nope", "States": {"A": {"Type": "Succeed"}}}),
        None,
        "StartAt",
        "not a state",
    );
    refused(
        json!({"StartAt": "A", "States": {}}),
        None,
        "States",
        "at least one",
    );
    refused(
        json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}, "Extra": 1}),
        None,
        "Extra",
        "not a valid field",
    );
    refused(
        json!({"StartAt": "A", "QueryLanguage": "JSONata", "States": {"A": {"Type": "Succeed"}}}),
        None,
        "QueryLanguage",
        "not supported by the local engine",
    );
    refused(
        json!({"StartAt": "A", "TimeoutSeconds": 0, "States": {"A": {"Type": "Succeed"}}}),
        None,
        "TimeoutSeconds",
        "integer",
    );
    refused(json!([1]), None, "", "JSON object");
    let long = "x".repeat(81);
    refused(
        json!({"StartAt": long, "States": {long.clone(): {"Type": "Succeed"}}}),
        Some(&long),
        "States",
        "80",
    );
}

#[test]
fn transitions() {
    refused(
        with_task(json!({"Next": "Gone", "-End": null})),
        Some("T"),
        "Next",
        "not a state",
    );
    refused(
        with_task(json!({"Next": "T"})),
        Some("T"),
        "End",
        "both Next and End",
    );
    refused(
        with_task(json!({"-End": null})),
        Some("T"),
        "Next",
        "Next or End",
    );
    refused(
        single(json!({"Type": "Succeed", "Next": "S"})),
        Some("S"),
        "Next",
        "not a valid field",
    );
    refused(
        single(json!({"Type": "Fail", "End": true})),
        Some("S"),
        "End",
        "not a valid field",
    );
    refused(
        json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}}),
        Some("B"),
        "States",
        "not reachable",
    );
    refused(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}}),
        None,
        "States",
        "no terminal state",
    );
    refused(
        with_task(json!({"Catch": [{"ErrorEquals": ["E"], "Next": "Gone"}]})),
        Some("T"),
        "Catch[0].Next",
        "not a state",
    );
}

#[test]
fn unsupported_features_are_named() {
    refused(
        single(json!({"Type": "Parallel", "Branches": [], "End": true})),
        Some("S"),
        "Type",
        "Parallel states are not supported by the local engine",
    );
    refused(
        single(json!({"Type": "Map", "End": true})),
        Some("S"),
        "Type",
        "Map states are not supported",
    );
    refused(
        single(json!({"Type": "Nope", "End": true})),
        Some("S"),
        "Type",
        "not a state type",
    );
    refused(
        with_task(json!({"Resource": "arn:aws:states:::sqs:sendMessage"})),
        Some("T"),
        "Resource",
        "not supported by the local engine",
    );
    refused(
        with_task(json!({"Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken"})),
        Some("T"),
        "Resource",
        "not supported",
    );
    for field in [
        "Arguments",
        "Output",
        "Assign",
        "Credentials",
        "HeartbeatSeconds",
        "TimeoutSecondsPath",
    ] {
        refused(
            with_task(json!({field: 1})),
            Some("T"),
            field,
            "not supported by the local engine",
        );
    }
    refused(
        with_task(json!({"QueryLanguage": "JSONata"})),
        Some("T"),
        "QueryLanguage",
        "JSONata",
    );
}

#[test]
fn field_placement_and_types() {
    refused(
        single(json!({"Type": "Pass", "ResultSelector": {}, "End": true})),
        Some("S"),
        "ResultSelector",
        "not a valid field",
    );
    refused(
        single(json!({"Type": "Pass", "Retry": [], "End": true})),
        Some("S"),
        "Retry",
        "not a valid field",
    );
    refused(
        with_task(json!({"Bogus": true})),
        Some("T"),
        "Bogus",
        "not a valid field",
    );
    refused(
        with_task(json!({"TimeoutSeconds": "10"})),
        Some("T"),
        "TimeoutSeconds",
        "integer",
    );
    refused(
        with_task(json!({"Parameters": [1]})),
        Some("T"),
        "Parameters",
        "object",
    );
    refused(
        with_task(json!({"Comment": 5})),
        Some("T"),
        "Comment",
        "string",
    );
    refused(
        with_task(
            json!({"Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"Payload": {}}}),
        ),
        Some("T"),
        "Parameters",
        "FunctionName",
    );
}

#[test]
fn paths_and_templates() {
    refused(
        with_task(json!({"InputPath": "not a path"})),
        Some("T"),
        "InputPath",
        "invalid path",
    );
    refused(
        with_task(json!({"OutputPath": 3})),
        Some("T"),
        "OutputPath",
        "path",
    );
    refused(
        with_task(json!({"ResultPath": "$.a[*]"})),
        Some("T"),
        "ResultPath",
        "invalid path",
    );
    refused(
        with_task(json!({"ResultPath": "$$.Execution"})),
        Some("T"),
        "ResultPath",
        "context",
    );
    refused(
        with_task(json!({"Parameters": {"a": {"b.$": "nope"}}})),
        Some("T"),
        "Parameters.a.b.$",
        "",
    );
    refused(
        with_task(json!({"Parameters": {"a.$": 5}})),
        Some("T"),
        "Parameters.a.$",
        "must be a string",
    );
    refused(
        with_task(json!({"Parameters": {"a.$": "States.NoSuchFunction()"}})),
        Some("T"),
        "Parameters.a.$",
        "",
    );
    refused(
        with_task(json!({"ResultSelector": {"list": [{"x.$": "bad"}]}})),
        Some("T"),
        "ResultSelector.list[0].x.$",
        "",
    );
}

#[test]
fn retry_and_catch_rules() {
    let retry = |retrier: Value| with_task(json!({"Retry": [retrier]}));
    refused(
        retry(json!({})),
        Some("T"),
        "Retry[0].ErrorEquals",
        "required",
    );
    refused(
        retry(json!({"ErrorEquals": []})),
        Some("T"),
        "Retry[0].ErrorEquals",
        "non-empty",
    );
    refused(
        retry(json!({"ErrorEquals": ["E"], "IntervalSeconds": 0})),
        Some("T"),
        "Retry[0].IntervalSeconds",
        "integer",
    );
    refused(
        retry(json!({"ErrorEquals": ["E"], "IntervalSeconds": 1.5})),
        Some("T"),
        "Retry[0].IntervalSeconds",
        "integer",
    );
    refused(
        retry(json!({"ErrorEquals": ["E"], "MaxAttempts": -1})),
        Some("T"),
        "Retry[0].MaxAttempts",
        "integer",
    );
    refused(
        retry(json!({"ErrorEquals": ["E"], "BackoffRate": 0.5})),
        Some("T"),
        "Retry[0].BackoffRate",
        "1.0",
    );
    refused(
        retry(json!({"ErrorEquals": ["E"], "MaxDelaySeconds": 0})),
        Some("T"),
        "Retry[0].MaxDelaySeconds",
        "integer",
    );
    refused(
        retry(json!({"ErrorEquals": ["E"], "JitterStrategy": "HALF"})),
        Some("T"),
        "Retry[0].JitterStrategy",
        "FULL or NONE",
    );
    refused(
        retry(json!({"ErrorEquals": ["E"], "Extra": 1})),
        Some("T"),
        "Retry[0].Extra",
        "not a valid field",
    );
    refused(
        with_task(json!({"Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["E"]}]})),
        Some("T"),
        "Retry[0].ErrorEquals",
        "last",
    );
    refused(
        json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": FN, "End": true, "Catch": [
                {"ErrorEquals": ["States.ALL"], "Next": "C"}, {"ErrorEquals": ["E"], "Next": "C"}]},
            "C": {"Type": "Succeed"}}}),
        Some("T"),
        "Catch[0].ErrorEquals",
        "last",
    );
    refused(
        with_task(json!({"Catch": [{"ErrorEquals": ["E"]}]})),
        Some("T"),
        "Catch[0].Next",
        "required",
    );
}

#[test]
fn wait_and_fail_rules() {
    refused(
        single(json!({"Type": "Wait", "End": true})),
        Some("S"),
        "Seconds",
        "exactly one",
    );
    refused(
        single(json!({"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": true})),
        Some("S"),
        "Seconds",
        "exactly one",
    );
    refused(
        single(json!({"Type": "Wait", "Seconds": -1, "End": true})),
        Some("S"),
        "Seconds",
        "integer",
    );
    refused(
        single(json!({"Type": "Wait", "Timestamp": "tomorrow", "End": true})),
        Some("S"),
        "Timestamp",
        "timestamp",
    );
    refused(
        single(json!({"Type": "Wait", "SecondsPath": "$.a[*]", "End": true})),
        Some("S"),
        "SecondsPath",
        "invalid path",
    );
    refused(
        single(json!({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"})),
        Some("S"),
        "ErrorPath",
        "mutually exclusive",
    );
    refused(
        single(json!({"Type": "Fail", "Cause": "C", "CausePath": "$.c"})),
        Some("S"),
        "CausePath",
        "mutually exclusive",
    );
}

#[test]
fn choice_rules() {
    let choice = |rules: Value| {
        json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": rules, "Default": "D"},
            "D": {"Type": "Succeed"}}})
    };
    refused(choice(json!([])), Some("C"), "Choices", "non-empty");
    refused(
        choice(json!([{"Variable": "$.a", "Next": "D"}])),
        Some("C"),
        "Choices[0]",
        "exactly one",
    );
    refused(
        choice(json!([{"Variable": "$.a", "StringEquals": "x", "NumericEquals": 1, "Next": "D"}])),
        Some("C"),
        "Choices[0]",
        "exactly one",
    );
    refused(
        choice(json!([{"StringEquals": "x", "Next": "D"}])),
        Some("C"),
        "Choices[0].Variable",
        "required",
    );
    refused(
        choice(json!([{"Variable": "$.a", "StringEquals": "x"}])),
        Some("C"),
        "Choices[0].Next",
        "required",
    );
    refused(
        choice(json!([{"Variable": "$.a", "StringEquals": 1, "Next": "D"}])),
        Some("C"),
        "Choices[0].StringEquals",
        "string",
    );
    refused(
        choice(json!([{"Variable": "$.a", "NumericEquals": "1", "Next": "D"}])),
        Some("C"),
        "Choices[0].NumericEquals",
        "number",
    );
    refused(
        choice(json!([{"Variable": "$.a", "TimestampEquals": "yesterday", "Next": "D"}])),
        Some("C"),
        "Choices[0].TimestampEquals",
        "timestamp",
    );
    refused(
        choice(json!([{"Variable": "$.a", "BooleanLessThan": true, "Next": "D"}])),
        Some("C"),
        "Choices[0].BooleanLessThan",
        "not a Choice rule field",
    );
    refused(
        choice(json!([{"Variable": "$.a", "IsNull": "yes", "Next": "D"}])),
        Some("C"),
        "Choices[0].IsNull",
        "boolean",
    );
    refused(
        choice(json!([{"Variable": "$.a", "StringEqualsPath": "nope", "Next": "D"}])),
        Some("C"),
        "Choices[0].StringEqualsPath",
        "invalid path",
    );
    refused(
        choice(json!([{"And": [], "Next": "D"}])),
        Some("C"),
        "Choices[0].And",
        "non-empty",
    );
    refused(
        choice(
            json!([{"Variable": "$.a", "Not": {"Variable": "$.a", "IsNull": true}, "Next": "D"}]),
        ),
        Some("C"),
        "Choices[0].Variable",
        "not allowed",
    );
    refused(
        choice(json!([{"And": [{"Variable": "$.a", "IsNull": true, "Next": "D"}], "Next": "D"}])),
        Some("C"),
        "Choices[0].And[0].Next",
        "top-level",
    );
    refused(
        choice(json!([{"Variable": "$.a", "IsNull": true, "Next": "Gone"}])),
        Some("C"),
        "Choices[0].Next",
        "not a state",
    );
    refused(
        json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": true, "Next": "D"}], "End": true}, "D": {"Type": "Succeed"}}}),
        Some("C"),
        "End",
        "not a valid field",
    );
}
