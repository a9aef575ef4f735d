//! Pass, Choice, Wait, Succeed, Fail and input/output processing.

mod support;

use asl::{Action, Status};
use chrono::Duration;
use serde_json::{Value, json};
use support::{FN, Outcome, TestEnv, drive, load, start, types};

/// Runs a definition with no tasks to its end and returns the execution.
fn run(definition: Value, input: Value) -> asl::Execution {
    let machine = load(&definition);
    let mut env = TestEnv::new();
    let mut execution = start(&machine, input, &mut env);
    drive(&machine, &mut execution, [], &mut env);
    execution
}

fn pass(state: Value) -> Value {
    json!({"StartAt": "P", "States": {"P": state}})
}

#[test]
fn pass_result_and_result_path() {
    let out = run(
        pass(json!({"Type": "Pass", "Result": {"x": 1}, "End": true})),
        json!({"a": 1}),
    );
    assert_eq!(out.output().unwrap(), &json!({"x": 1}));
    let out = run(
        pass(json!({"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r.s", "End": true})),
        json!({"a": 1}),
    );
    assert_eq!(
        out.output().unwrap(),
        &json!({"a": 1, "r": {"s": {"x": 1}}})
    );
    let out = run(
        pass(json!({"Type": "Pass", "Result": 5, "ResultPath": null, "End": true})),
        json!({"a": 1}),
    );
    assert_eq!(out.output().unwrap(), &json!({"a": 1}));
    let out = run(pass(json!({"Type": "Pass", "End": true})), json!({"a": 1}));
    assert_eq!(out.output().unwrap(), &json!({"a": 1}));
    assert_eq!(
        types(&out),
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[test]
fn input_and_output_path_null_give_empty_objects() {
    let out = run(
        pass(json!({"Type": "Pass", "InputPath": null, "End": true})),
        json!({"a": 1}),
    );
    assert_eq!(out.output().unwrap(), &json!({}));
    let out = run(
        pass(json!({"Type": "Pass", "OutputPath": null, "End": true})),
        json!({"a": 1}),
    );
    assert_eq!(out.output().unwrap(), &json!({}));
    let out = run(
        pass(json!({"Type": "Pass", "InputPath": "$.a", "OutputPath": "$.b", "End": true})),
        json!({"a": {"b": 2, "c": 3}}),
    );
    assert_eq!(out.output().unwrap(), &json!(2));
}

#[test]
fn output_path_not_found_is_runtime_error() {
    let out = run(
        pass(json!({"Type": "Pass", "OutputPath": "$.nope", "End": true})),
        json!({}),
    );
    assert_eq!(out.status(), Status::Failed);
    assert_eq!(out.failure().unwrap().error, "States.Runtime");
}

#[test]
fn parameters_with_context_object_and_intrinsics() {
    let definition = pass(json!({
        "Type": "Pass",
        "Parameters": {
            "static": "s",
            "id.$": "$.id",
            "nested": {"list": [{"v.$": "$.id"}, 1]},
            "execution.$": "$$.Execution.Id",
            "name.$": "$$.Execution.Name",
            "input.$": "$$.Execution.Input",
            "start.$": "$$.Execution.StartTime",
            "redrives.$": "$$.Execution.RedriveCount",
            "role.$": "$$.Execution.RoleArn",
            "state.$": "$$.State.Name",
            "entered.$": "$$.State.EnteredTime",
            "retries.$": "$$.State.RetryCount",
            "machine.$": "$$.StateMachine.Id",
            "machineName.$": "$$.StateMachine.Name",
            "greeting.$": "States.Format('hello {}', $.id)",
            "array.$": "States.Array($.id, 2)"
        },
        "End": true
    }));
    let out = run(definition, json!({"id": "x-1"}));
    let info = support::info();
    assert_eq!(
        out.output().unwrap(),
        &json!({
            "static": "s",
            "id": "x-1",
            "nested": {"list": [{"v": "x-1"}, 1]},
            "execution": info.execution_arn,
            "name": info.name,
            "input": {"id": "x-1"},
            "start": "2024-05-01T12:00:00.000Z",
            "redrives": 0,
            "role": info.role_arn,
            "state": "P",
            "entered": "2024-05-01T12:00:00.000Z",
            "retries": 0,
            "machine": info.state_machine_arn,
            "machineName": info.state_machine_name,
            "greeting": "hello x-1",
            "array": ["x-1", 2]
        })
    );
}

#[test]
fn parameters_path_not_found_is_runtime_error() {
    let out = run(
        pass(json!({"Type": "Pass", "Parameters": {"x.$": "$.missing"}, "End": true})),
        json!({"present": 1}),
    );
    let failure = out.failure().unwrap();
    assert_eq!(failure.error, "States.Runtime");
    assert!(
        failure.cause.contains("The JSONPath '$.missing' specified for the field 'x.$' could not be found in the input '{\"present\":1}'"),
        "{}",
        failure.cause
    );
}

#[test]
fn intrinsic_failure_is_catchable_in_a_task() {
    let definition = json!({
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task", "Resource": FN,
                "Parameters": {"n.$": "States.StringToJson($.text)"},
                "Catch": [{"ErrorEquals": ["States.IntrinsicFailure"], "ResultPath": "$.err", "Next": "Done"}],
                "End": true
            },
            "Done": {"Type": "Succeed"}
        }
    });
    let out = run(definition, json!({"text": "{not json"}));
    assert_eq!(out.status(), Status::Succeeded);
    assert_eq!(
        out.output().unwrap()["err"]["Error"],
        "States.IntrinsicFailure"
    );
}

#[test]
fn task_result_selector_result_path_output_path() {
    let definition = json!({
        "StartAt": "T",
        "States": {"T": {
            "Type": "Task", "Resource": FN,
            "InputPath": "$.in",
            "ResultSelector": {"v.$": "$.value", "fixed": true, "ctx.$": "$$.State.Name"},
            "ResultPath": "$.in.result",
            "OutputPath": "$.in",
            "End": true
        }}
    });
    let machine = load(&definition);
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({"in": {"k": 1}, "other": 2}), &mut env);
    assert!(
        matches!(execution.action(), Action::Invoke { parameters, .. } if parameters == json!({"k": 1}))
    );
    drive(
        &machine,
        &mut execution,
        [Outcome::Ok(json!({"value": 42, "noise": 0}))],
        &mut env,
    );
    assert_eq!(
        execution.output().unwrap(),
        &json!({"k": 1, "result": {"v": 42, "fixed": true, "ctx": "T"}})
    );
}

#[test]
fn result_path_null_keeps_the_input() {
    let definition = json!({
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": FN, "ResultPath": null, "End": true}}
    });
    let machine = load(&definition);
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({"a": 1}), &mut env);
    drive(
        &machine,
        &mut execution,
        [Outcome::Ok(json!("ignored"))],
        &mut env,
    );
    assert_eq!(execution.output().unwrap(), &json!({"a": 1}));
}

/// A Choice with one rule: `Yes` if it matches, else `No` (Default).
fn choose(rule: Value, input: Value) -> bool {
    let mut rule = rule;
    rule["Next"] = json!("Yes");
    let definition = json!({
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [rule], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": "yes", "End": true},
            "No": {"Type": "Pass", "Result": "no", "End": true}
        }
    });
    let out = run(definition, input);
    match out.output() {
        Some(Value::String(s)) => s == "yes",
        _ => panic!("choice failed: {:?}", out.failure()),
    }
}

#[test]
fn choice_comparison_operators() {
    let input = json!({"s": "b", "n": 5, "f": 5.0, "t": true, "ts": "2024-01-01T00:00:00Z",
        "s2": "b", "n2": 7, "ts2": "2024-01-01T01:00:00+01:00", "t2": true});
    let cases = [
        (json!({"Variable": "$.s", "StringEquals": "b"}), true),
        (json!({"Variable": "$.s", "StringLessThan": "c"}), true),
        (json!({"Variable": "$.s", "StringGreaterThan": "c"}), false),
        (
            json!({"Variable": "$.s", "StringLessThanEquals": "b"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThanEquals": "a"}),
            true,
        ),
        (json!({"Variable": "$.s", "StringEqualsPath": "$.s2"}), true),
        (
            json!({"Variable": "$.s", "StringLessThanPath": "$.s2"}),
            false,
        ),
        (json!({"Variable": "$.n", "NumericEquals": 5}), true),
        (json!({"Variable": "$.f", "NumericEquals": 5}), true),
        (json!({"Variable": "$.n", "NumericLessThan": 5.5}), true),
        (json!({"Variable": "$.n", "NumericGreaterThan": 5}), false),
        (json!({"Variable": "$.n", "NumericLessThanEquals": 5}), true),
        (
            json!({"Variable": "$.n", "NumericGreaterThanEquals": 6}),
            false,
        ),
        (
            json!({"Variable": "$.n", "NumericLessThanPath": "$.n2"}),
            true,
        ),
        (
            json!({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.n2"}),
            false,
        ),
        (json!({"Variable": "$.t", "BooleanEquals": true}), true),
        (
            json!({"Variable": "$.t", "BooleanEqualsPath": "$.t2"}),
            true,
        ),
        (
            json!({"Variable": "$.ts", "TimestampEquals": "2024-01-01T00:00:00Z"}),
            true,
        ),
        (
            json!({"Variable": "$.ts", "TimestampEqualsPath": "$.ts2"}),
            true,
        ),
        (
            json!({"Variable": "$.ts", "TimestampLessThan": "2024-01-01T00:00:01Z"}),
            true,
        ),
        (
            json!({"Variable": "$.ts", "TimestampGreaterThan": "2024-01-01T00:00:01Z"}),
            false,
        ),
        (
            json!({"Variable": "$.ts", "TimestampLessThanEquals": "2024-01-01T00:00:00Z"}),
            true,
        ),
        (
            json!({"Variable": "$.ts", "TimestampGreaterThanEqualsPath": "$.ts2"}),
            true,
        ),
        (json!({"Variable": "$.s", "StringMatches": "*"}), true),
        (
            json!({"Variable": "$.ts", "StringMatches": "2024-*Z"}),
            true,
        ),
        // Type mismatches are false, not errors.
        (json!({"Variable": "$.s", "NumericEquals": 5}), false),
        (json!({"Variable": "$.n", "StringEquals": "5"}), false),
        (
            json!({"Variable": "$.s", "TimestampEquals": "2024-01-01T00:00:00Z"}),
            false,
        ),
        (json!({"Variable": "$.n", "StringMatches": "*"}), false),
        (json!({"Variable": "$.n", "BooleanEquals": true}), false),
    ];
    for (rule, expected) in cases {
        assert_eq!(choose(rule.clone(), input.clone()), expected, "{rule}");
    }
}

#[test]
fn choice_type_tests_and_combinators() {
    let input = json!({"nul": null, "n": 1, "s": "x", "b": false, "ts": "2024-01-01T00:00:00Z"});
    let cases = [
        (json!({"Variable": "$.nul", "IsNull": true}), true),
        (json!({"Variable": "$.n", "IsNull": true}), false),
        (json!({"Variable": "$.missing", "IsPresent": false}), true),
        (json!({"Variable": "$.n", "IsPresent": true}), true),
        (json!({"Variable": "$.n", "IsNumeric": true}), true),
        (json!({"Variable": "$.s", "IsString": true}), true),
        (json!({"Variable": "$.b", "IsBoolean": true}), true),
        (json!({"Variable": "$.ts", "IsTimestamp": true}), true),
        (json!({"Variable": "$.s", "IsTimestamp": true}), false),
        (
            json!({"And": [{"Variable": "$.n", "NumericEquals": 1}, {"Variable": "$.s", "StringEquals": "x"}]}),
            true,
        ),
        (
            json!({"And": [{"Variable": "$.n", "NumericEquals": 1}, {"Variable": "$.s", "StringEquals": "y"}]}),
            false,
        ),
        (
            json!({"Or": [{"Variable": "$.n", "NumericEquals": 2}, {"Variable": "$.s", "StringEquals": "x"}]}),
            true,
        ),
        (
            json!({"Not": {"Variable": "$.n", "NumericEquals": 2}}),
            true,
        ),
        (
            json!({"Not": {"Or": [{"Variable": "$.b", "BooleanEquals": true}, {"Not": {"Variable": "$.missing", "IsPresent": true}}]}}),
            false,
        ),
    ];
    for (rule, expected) in cases {
        assert_eq!(choose(rule.clone(), input.clone()), expected, "{rule}");
    }
}

#[test]
fn choice_missing_variable_is_runtime_error_and_no_match_fails() {
    let definition = json!({
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.missing", "StringEquals": "x", "Next": "Y"}]},
            "Y": {"Type": "Succeed"}
        }
    });
    let out = run(definition.clone(), json!({}));
    assert_eq!(out.failure().unwrap().error, "States.Runtime");
    let out = run(definition, json!({"missing": "not x"}));
    assert_eq!(out.failure().unwrap().error, "States.NoChoiceMatched");
    assert_eq!(
        types(&out),
        ["ExecutionStarted", "ChoiceStateEntered", "ExecutionFailed"]
    );
}

fn wait(field: Value) -> Value {
    let mut state = json!({"Type": "Wait", "Next": "Done"});
    state
        .as_object_mut()
        .unwrap()
        .extend(field.as_object().unwrap().clone());
    json!({"StartAt": "W", "States": {"W": state, "Done": {"Type": "Succeed"}}})
}

#[test]
fn wait_variants_sleep_until_their_deadline() {
    let env = TestEnv::new();
    let at = env.now;
    let cases = [
        (
            json!({"Seconds": 10}),
            json!({}),
            at + Duration::seconds(10),
        ),
        (
            json!({"SecondsPath": "$.s"}),
            json!({"s": 7}),
            at + Duration::seconds(7),
        ),
        (
            json!({"Timestamp": "2024-05-01T13:00:00Z"}),
            json!({}),
            at + Duration::hours(1),
        ),
        (
            json!({"TimestampPath": "$.t"}),
            json!({"t": "2024-05-01T12:30:00Z"}),
            at + Duration::minutes(30),
        ),
    ];
    for (field, input, until) in cases {
        let machine = load(&wait(field));
        let mut env = TestEnv::new();
        let mut execution = start(&machine, input.clone(), &mut env);
        assert_eq!(execution.action(), Action::Sleep { until });
        env.now = until;
        execution.wake(&machine, &mut env).unwrap();
        assert_eq!(execution.status(), Status::Succeeded);
        assert_eq!(execution.output().unwrap(), &input);
        assert_eq!(
            types(&execution),
            [
                "ExecutionStarted",
                "WaitStateEntered",
                "WaitStateExited",
                "SucceedStateEntered",
                "SucceedStateExited",
                "ExecutionSucceeded"
            ]
        );
    }
    let out = run(wait(json!({"SecondsPath": "$.s"})), json!({"s": "ten"}));
    assert_eq!(out.failure().unwrap().error, "States.Runtime");
}

#[test]
fn fail_and_succeed_states() {
    let out = run(
        pass(json!({"Type": "Fail", "Error": "Custom.Error", "Cause": "because"})),
        json!({}),
    );
    assert_eq!(out.status(), Status::Failed);
    assert_eq!(out.failure().unwrap().error, "Custom.Error");
    assert_eq!(out.failure().unwrap().cause, "because");
    assert_eq!(
        types(&out),
        ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]
    );

    let out = run(
        pass(
            json!({"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('code {}', $.c)"}),
        ),
        json!({"e": "Dyn.Error", "c": 7}),
    );
    assert_eq!(out.failure().unwrap().error, "Dyn.Error");
    assert_eq!(out.failure().unwrap().cause, "code 7");

    let out = run(
        pass(json!({"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"})),
        json!({"a": {"b": 3}}),
    );
    assert_eq!(out.output().unwrap(), &json!(3));
}

#[test]
fn execution_timeout_times_out_sleeps_and_tasks() {
    let definition = json!({
        "TimeoutSeconds": 60,
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "Seconds": 3600, "Next": "T"},
            "T": {"Type": "Task", "Resource": FN, "TimeoutSeconds": 300, "End": true}
        }
    });
    let machine = load(&definition);
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({}), &mut env);
    let deadline = env.now + Duration::seconds(60);
    assert_eq!(execution.deadline(), Some(deadline));
    assert_eq!(execution.action(), Action::Sleep { until: deadline });
    env.now = deadline;
    execution.wake(&machine, &mut env).unwrap();
    assert_eq!(execution.status(), Status::TimedOut);
    assert_eq!(types(&execution).last().unwrap(), "ExecutionTimedOut");
    assert_eq!(execution.failure().unwrap().error, "States.Timeout");

    // Redriven, the deadline counts from the redrive; the task's timeout is shortened to it.
    env.advance(1000);
    execution.redrive(&machine, &mut env).unwrap();
    let deadline = env.now + Duration::seconds(60);
    assert_eq!(execution.action(), Action::Sleep { until: deadline });

    let definition_short = json!({
        "TimeoutSeconds": 100,
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": FN, "TimeoutSeconds": 300, "End": true}}
    });
    let machine = load(&definition_short);
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({}), &mut env);
    assert!(matches!(
        execution.action(),
        Action::Invoke {
            timeout_seconds: Some(100),
            ..
        }
    ));
    env.advance(100);
    execution
        .task_failed(&machine, "States.Timeout", "x", &mut env)
        .unwrap();
    assert_eq!(execution.status(), Status::TimedOut);
}

#[test]
fn stop_aborts_and_redrive_resumes_the_state_in_flight() {
    let definition = json!({
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": FN, "End": true}}
    });
    let machine = load(&definition);
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({"x": 1}), &mut env);
    execution.stop(Some("User.Stop"), None, &mut env).unwrap();
    assert_eq!(execution.status(), Status::Aborted);
    assert_eq!(types(&execution).last().unwrap(), "ExecutionAborted");
    assert!(execution.stop(None, None, &mut env).is_err());
    execution.redrive(&machine, &mut env).unwrap();
    assert!(
        matches!(execution.action(), Action::Invoke { parameters, .. } if parameters == json!({"x": 1}))
    );
    drive(
        &machine,
        &mut execution,
        [Outcome::Ok(json!("done"))],
        &mut env,
    );
    assert_eq!(execution.output().unwrap(), &json!("done"));
}

#[test]
fn redrive_reruns_a_fail_state_and_sets_redrive_context() {
    let definition = json!({
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Parameters": {"count.$": "$$.Execution.RedriveCount"}, "Next": "F"},
            "F": {"Type": "Fail", "Error": "Always"}
        }
    });
    let machine = load(&definition);
    let mut env = TestEnv::new();
    let mut execution = start(&machine, json!({}), &mut env);
    assert_eq!(execution.status(), Status::Failed);
    execution.redrive(&machine, &mut env).unwrap();
    assert_eq!(execution.status(), Status::Failed);
    assert_eq!(execution.redrive_count(), 1);
    assert_eq!(
        types(&execution)[4..],
        [
            "ExecutionFailed",
            "ExecutionRedriven",
            "FailStateEntered",
            "ExecutionFailed"
        ]
    );
}

#[test]
fn endless_pass_loops_end_at_the_history_quota() {
    let definition = json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "End"}], "Default": "A"},
            "End": {"Type": "Succeed"}
        }
    });
    let out = run(definition, json!({}));
    assert_eq!(out.failure().unwrap().error, "States.Runtime");
    assert!(out.history().len() <= 25_000);
}
