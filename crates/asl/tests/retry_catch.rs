//! Retry and Catch as the Step Functions error-handling guide documents them.

mod support;

use asl::{Action, Status};
use serde_json::{Value, json};
use support::{FN, Outcome, TestEnv, drive, load, start, types};

fn task(extra: Value) -> Value {
    let mut state = json!({"Type": "Task", "Resource": FN, "Next": "Done"});
    let text = extra.to_string();
    state
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let mut states = json!({"Work": state, "Done": {"Type": "Succeed"}});
    // Catch targets, only when a catcher names them (unreachable states are refused).
    if text.contains(r#""Next":"Z""#) {
        states["Z"] =
            json!({"Type": "Pass", "Result": "caught", "ResultPath": "$.handled", "End": true});
    }
    if text.contains(r#""Next":"Y""#) {
        states["Y"] = json!({"Type": "Pass", "End": true});
    }
    json!({"StartAt": "Work", "States": states})
}

/// Sleep lengths (ms) between invocations.
fn sleeps(actions: &[Action], env_start: chrono::DateTime<chrono::Utc>) -> Vec<i64> {
    let mut now = env_start;
    let mut out = Vec::new();
    for action in actions {
        match action {
            Action::Invoke { .. } => now += chrono::Duration::seconds(1),
            Action::Sleep { until } => {
                out.push((*until - now).num_milliseconds());
                now = *until;
            }
            Action::Finished => {}
        }
    }
    out
}

#[test]
fn documented_complex_retry_scenario() {
    // The ASL specification's example (states-language.net, "Complex retry scenarios"):
    // ErrorA, ErrorB, ErrorC, ErrorB → waits 1, 2, 5; the fourth error finds the first
    // retrier's MaxAttempts (2) used up, so Catch applies.
    let machine = load(&task(json!({
        "Retry": [
            {"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2},
            {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5}
        ],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}]
    })));
    let mut env = TestEnv::new();
    let begin = env.now;
    let mut execution = start(&machine, json!({"a": 1}), &mut env);
    let actions = drive(
        &machine,
        &mut execution,
        [
            Outcome::Err("ErrorA", "a"),
            Outcome::Err("ErrorB", "b"),
            Outcome::Err("ErrorC", "c"),
            Outcome::Err("ErrorB", "b2"),
        ],
        &mut env,
    );
    assert_eq!(sleeps(&actions, begin), [1000, 2000, 5000]);
    let retry_counts: Vec<u32> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Invoke { retry_count, .. } => Some(*retry_count),
            _ => None,
        })
        .collect();
    assert_eq!(retry_counts, [0, 1, 2, 3]);
    assert_eq!(execution.status(), Status::Succeeded);
    assert_eq!(
        execution.output().unwrap(),
        &json!({"Error": "ErrorB", "Cause": "b2", "handled": "caught"})
    );
}

#[test]
fn exhausted_retrier_goes_to_catch_not_later_retriers() {
    let machine = load(&task(json!({
        "Retry": [
            {"ErrorEquals": ["E"], "MaxAttempts": 1},
            {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}
        ],
        "Catch": [{"ErrorEquals": ["E"], "ResultPath": "$.err", "Next": "Y"}]
    })));
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({"in": true}), &mut env);
    drive(
        &machine,
        &mut execution,
        [Outcome::Err("E", "1"), Outcome::Err("E", "2")],
        &mut env,
    );
    assert_eq!(execution.status(), Status::Succeeded);
    assert_eq!(
        execution.output().unwrap(),
        &json!({"in": true, "err": {"Error": "E", "Cause": "2"}})
    );
}

#[test]
fn max_attempts_zero_never_retries() {
    let machine = load(&task(json!({
        "Retry": [{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"]}]
    })));
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({}), &mut env);
    drive(
        &machine,
        &mut execution,
        [Outcome::Err("States.Timeout", "slow")],
        &mut env,
    );
    assert_eq!(execution.status(), Status::Failed);
    assert_eq!(execution.failure().unwrap().error, "States.Timeout");
    assert!(types(&execution).contains(&"LambdaFunctionTimedOut".to_owned()));
}

#[test]
fn backoff_without_cap_and_with_jitter() {
    let machine = load(&task(json!({
        "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 3, "BackoffRate": 1.5, "MaxAttempts": 3}]
    })));
    let mut env = TestEnv::new();
    let begin = env.now;
    let mut execution = start(&machine, json!({}), &mut env);
    let errors = (0..4).map(|_| Outcome::Err("E", "x"));
    let actions = drive(&machine, &mut execution, errors, &mut env);
    assert_eq!(sleeps(&actions, begin), [3000, 4500, 6750]);
    assert_eq!(execution.status(), Status::Failed);

    let machine = load(&task(json!({
        "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 10, "MaxAttempts": 3, "MaxDelaySeconds": 25, "JitterStrategy": "FULL"}]
    })));
    let mut env = TestEnv::new();
    env.randoms.extend([0.5, 0.25, 0.0]);
    let begin = env.now;
    let mut execution = start(&machine, json!({}), &mut env);
    let errors = (0..4).map(|_| Outcome::Err("E", "x"));
    let actions = drive(&machine, &mut execution, errors, &mut env);
    // 10, 20, min(40, 25) scaled by 0.5, 0.25, 0.0.
    assert_eq!(sleeps(&actions, begin), [5000, 5000, 0]);
}

#[test]
fn catchers_apply_in_order() {
    let machine = load(&task(json!({
        "Catch": [
            {"ErrorEquals": ["Other"], "Next": "Y"},
            {"ErrorEquals": ["E", "F"], "ResultPath": "$.first", "Next": "Y"},
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.last", "Next": "Y"}
        ]
    })));
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({}), &mut env);
    drive(&machine, &mut execution, [Outcome::Err("F", "f")], &mut env);
    assert_eq!(
        execution.output().unwrap(),
        &json!({"first": {"Error": "F", "Cause": "f"}})
    );
    let types = types(&execution);
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionFailed",
            "TaskStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[test]
fn catch_default_result_path_replaces_input() {
    let machine = load(&task(
        json!({"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Y"}]}),
    ));
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({"keep": false}), &mut env);
    drive(&machine, &mut execution, [Outcome::Err("E", "c")], &mut env);
    assert_eq!(
        execution.output().unwrap(),
        &json!({"Error": "E", "Cause": "c"})
    );
}

#[test]
fn task_failed_matches_all_but_timeout() {
    let definition = task(json!({"Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Y"}]}));
    let machine = load(&definition);
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({}), &mut env);
    drive(
        &machine,
        &mut execution,
        [Outcome::Err("Lambda.Unknown", "boom")],
        &mut env,
    );
    assert_eq!(execution.status(), Status::Succeeded);

    let mut execution = start(&machine, json!({}), &mut env);
    drive(
        &machine,
        &mut execution,
        [Outcome::Err("States.Timeout", "slow")],
        &mut env,
    );
    assert_eq!(execution.status(), Status::Failed);
    assert_eq!(execution.failure().unwrap().error, "States.Timeout");
}

#[test]
fn runtime_errors_are_never_retried_or_caught() {
    let machine = load(&task(json!({
        "InputPath": "$.missing",
        "Retry": [{"ErrorEquals": ["States.ALL"]}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Y"}]
    })));
    let mut env = TestEnv::new();
    let execution = start(&machine, json!({"present": 1}), &mut env);
    assert_eq!(execution.status(), Status::Failed);
    let failure = execution.failure().unwrap();
    assert_eq!(failure.error, "States.Runtime");
    assert!(
        failure.cause.starts_with(
            "An error occurred while executing the state 'Work' (entered at the event id #2)."
        ),
        "{}",
        failure.cause
    );
    assert_eq!(
        types(&execution),
        ["ExecutionStarted", "TaskStateEntered", "ExecutionFailed"]
    );

    // A task reporting States.Runtime itself is not caught either.
    let machine = load(&task(
        json!({"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Y"}]}),
    ));
    let mut execution = start(&machine, json!({}), &mut env);
    drive(
        &machine,
        &mut execution,
        [Outcome::Err("States.Runtime", "broken")],
        &mut env,
    );
    assert_eq!(execution.status(), Status::Failed);
}

#[test]
fn result_path_match_failure_is_catchable() {
    let machine = load(&task(json!({
        "ResultPath": "$.a.b",
        "Catch": [{"ErrorEquals": ["States.ResultPathMatchFailure"], "ResultPath": "$.err", "Next": "Y"}]
    })));
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({"a": "not an object"}), &mut env);
    drive(&machine, &mut execution, [Outcome::Ok(json!(1))], &mut env);
    assert_eq!(execution.status(), Status::Succeeded);
    assert_eq!(
        execution.output().unwrap()["err"]["Error"],
        "States.ResultPathMatchFailure"
    );

    let machine = load(&task(json!({"ResultPath": "$.a.b"})));
    let mut execution = start(&machine, json!({"a": [1]}), &mut env);
    drive(&machine, &mut execution, [Outcome::Ok(json!(1))], &mut env);
    assert_eq!(
        execution.failure().unwrap().error,
        "States.ResultPathMatchFailure"
    );
}

#[test]
fn task_timeout_is_reported_in_the_action_and_history() {
    let definition = json!({
        "StartAt": "T",
        "States": {"T": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": FN, "Payload.$": "$"},
            "TimeoutSeconds": 30, "End": true
        }}
    });
    let machine = load(&definition);
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({"x": 1}), &mut env);
    assert!(matches!(
        execution.action(),
        Action::Invoke {
            timeout_seconds: Some(30),
            ..
        }
    ));
    drive(
        &machine,
        &mut execution,
        [Outcome::Err(
            "States.Timeout",
            "Task timed out after 30 seconds",
        )],
        &mut env,
    );
    let events: Vec<Value> = execution
        .history()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(
        events[2]["taskScheduledEventDetails"]["timeoutInSeconds"],
        30
    );
    assert_eq!(events[4]["type"], "TaskTimedOut");
    assert_eq!(
        events[4]["taskTimedOutEventDetails"]["error"],
        "States.Timeout"
    );
}

#[test]
fn retry_counters_reset_when_the_state_is_re_entered() {
    let definition = json!({
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task", "Resource": FN,
                "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 1}],
                "Next": "Again"
            },
            "Again": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.done", "IsPresent": true, "Next": "End"}],
                "Default": "Work"
            },
            "End": {"Type": "Succeed"}
        }
    });
    let machine = load(&definition);
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({}), &mut env);
    let actions = drive(
        &machine,
        &mut execution,
        [
            Outcome::Err("E", "1"),
            Outcome::Ok(json!({})),
            Outcome::Err("E", "1"),
            Outcome::Ok(json!({"done": true})),
        ],
        &mut env,
    );
    assert_eq!(execution.status(), Status::Succeeded);
    let counts: Vec<u32> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Invoke { retry_count, .. } => Some(*retry_count),
            _ => None,
        })
        .collect();
    assert_eq!(counts, [0, 1, 0, 1]);
}
