//! The real `statemachine/incident.asl.json`: loading, histories, retries, redrive, persistence.

mod support;

use std::collections::BTreeMap;

use asl::{Action, Execution, StateMachine, Status, lambda_invoke_result};
use chrono::Duration;
use serde_json::{Value, json};
use support::{Outcome, TestEnv, drive, types};

const ENRICHER: &str = "arn:aws:lambda:eu-west-1:123456789012:function:alarm-relay-enricher";
const SIGNER: &str = "arn:aws:lambda:eu-west-1:123456789012:function:alarm-relay-signer";
const RECORDER: &str = "arn:aws:lambda:eu-west-1:123456789012:function:alarm-relay-recorder";

fn machine() -> StateMachine {
    let definition = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../statemachine/incident.asl.json"
    ))
    .unwrap();
    let substitutions = BTreeMap::from([
        ("EnricherFunctionArn".to_owned(), ENRICHER.to_owned()),
        ("SignerFunctionArn".to_owned(), SIGNER.to_owned()),
        ("RecorderFunctionArn".to_owned(), RECORDER.to_owned()),
    ]);
    StateMachine::load(&definition, &substitutions).unwrap()
}

fn input() -> Value {
    json!({"incidentId": "inc-1", "event": {"detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": "cpu"}}})
}

fn ok(payload: Value) -> Outcome {
    Outcome::Ok(lambda_invoke_result(payload))
}

fn enriched() -> Outcome {
    ok(json!({"metric": "CPUUtilization"}))
}

/// The Correlate state's decision for a new episode: deliver `created`.
fn correlated() -> Outcome {
    ok(json!({"decision": "opened", "action": "created"}))
}

fn delivered() -> Outcome {
    ok(json!({"status": 202, "attempt": 1}))
}

fn recorded() -> Outcome {
    ok(json!({"status": "DELIVERED"}))
}

const TASK: [&str; 5] = [
    "TaskStateEntered",
    "TaskScheduled",
    "TaskStarted",
    "TaskSucceeded",
    "TaskStateExited",
];

/// The Route choice after Correlate.
const CHOICE: [&str; 2] = ["ChoiceStateEntered", "ChoiceStateExited"];

#[test]
fn loads_with_substitutions() {
    let machine = machine();
    assert_eq!(
        machine.definition()["States"]["Deliver"]["Parameters"]["FunctionName"],
        SIGNER
    );
    let missing = StateMachine::load(
        &machine.definition().to_string().replace(SIGNER, "${Nope}"),
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(missing.state.as_deref(), Some("Deliver"));
    assert_eq!(missing.field, "Parameters.FunctionName");
}

#[test]
fn success_history_and_output() {
    let machine = machine();
    let mut env = TestEnv::new();
    let mut execution = Execution::start(&machine, support::info(), input(), &mut env);
    let Action::Invoke {
        state,
        resource,
        parameters,
        retry_count,
        timeout_seconds,
    } = execution.action()
    else {
        panic!("Enrich should be invoked first");
    };
    assert_eq!(state, "Enrich");
    assert_eq!(resource, asl::LAMBDA_INVOKE);
    assert_eq!(
        parameters,
        json!({"FunctionName": ENRICHER, "Payload": {"incidentId": "inc-1", "event": input()["event"]}})
    );
    assert_eq!((retry_count, timeout_seconds), (0, None));
    assert_eq!(
        asl::function_name(&parameters, &resource).as_deref(),
        Some(ENRICHER)
    );

    drive(
        &machine,
        &mut execution,
        [enriched(), correlated(), delivered(), recorded()],
        &mut env,
    );
    assert_eq!(execution.status(), Status::Succeeded);
    let mut expected = vec!["ExecutionStarted"];
    expected.extend(TASK);
    expected.extend(TASK);
    expected.extend(CHOICE);
    expected.extend(TASK);
    expected.extend(TASK);
    expected.push("ExecutionSucceeded");
    assert_eq!(types(&execution), expected);

    let output = execution.output().unwrap();
    assert_eq!(
        output["enriched"],
        json!({"enrichment": {"metric": "CPUUtilization"}})
    );
    assert_eq!(
        output["delivery"],
        json!({"record": {"status": 202, "attempt": 1}})
    );
    assert_eq!(output["recorded"], json!({"status": "DELIVERED"}));
    assert_eq!(output["incidentId"], "inc-1");

    let history: Vec<Value> = execution
        .history()
        .iter()
        .map(|event| serde_json::to_value(event).unwrap())
        .collect();
    for (index, event) in history.iter().enumerate() {
        assert_eq!(event["id"], index as u64 + 1);
        assert_eq!(event["previousEventId"], index as u64);
        let timestamp = event["timestamp"].as_str().unwrap();
        assert!(
            timestamp.ends_with('Z') && timestamp.len() == 24,
            "{timestamp}"
        );
    }
    let started = &history[0]["executionStartedEventDetails"];
    assert_eq!(started["roleArn"], support::info().role_arn);
    assert_eq!(
        serde_json::from_str::<Value>(started["input"].as_str().unwrap()).unwrap(),
        input()
    );
    assert_eq!(started["inputDetails"], json!({"truncated": false}));
    assert_eq!(history[1]["stateEnteredEventDetails"]["name"], "Enrich");
    let scheduled = &history[2]["taskScheduledEventDetails"];
    assert_eq!(scheduled["resourceType"], "lambda");
    assert_eq!(scheduled["resource"], "invoke");
    assert_eq!(scheduled["region"], "eu-west-1");
    assert!(scheduled.get("timeoutInSeconds").is_none());
    let parameters: Value =
        serde_json::from_str(scheduled["parameters"].as_str().unwrap()).unwrap();
    assert_eq!(parameters["FunctionName"], ENRICHER);
    assert_eq!(history[3]["taskStartedEventDetails"]["resource"], "invoke");
    assert!(history[4]["taskSucceededEventDetails"]["output"].is_string());
    assert_eq!(history[5]["stateExitedEventDetails"]["name"], "Enrich");
    let deliver_parameters: Value = serde_json::from_str(
        history[14]["taskScheduledEventDetails"]["parameters"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        deliver_parameters["Payload"]["execution"],
        json!({"arn": support::info().execution_arn, "retryCount": 0})
    );
    assert_eq!(
        deliver_parameters["Payload"]["correlation"],
        json!({"decision": "opened", "action": "created"})
    );
    let succeeded = &history[23]["executionSucceededEventDetails"];
    assert_eq!(
        serde_json::from_str::<Value>(succeeded["output"].as_str().unwrap()).unwrap(),
        *execution.output().unwrap()
    );
}

#[test]
fn deliver_retries_then_succeeds() {
    let machine = machine();
    let mut env = TestEnv::new();
    env.default_random = 0.5;
    let mut execution = Execution::start(&machine, support::info(), input(), &mut env);
    let actions = drive(
        &machine,
        &mut execution,
        [
            enriched(),
            correlated(),
            Outcome::Err("Webhook.Transient", "503"),
            Outcome::Err("Webhook.Transient", "503"),
            delivered(),
            recorded(),
        ],
        &mut env,
    );
    assert_eq!(execution.status(), Status::Succeeded);
    let retry_counts: Vec<u32> = actions
        .iter()
        .filter_map(|action| match action {
            Action::Invoke {
                state,
                retry_count,
                parameters,
                ..
            } if state == "Deliver" => {
                assert_eq!(
                    parameters["Payload"]["execution"]["retryCount"],
                    *retry_count
                );
                Some(*retry_count)
            }
            _ => None,
        })
        .collect();
    assert_eq!(retry_counts, [0, 1, 2]);
    let mut expected = vec!["ExecutionStarted"];
    expected.extend(TASK);
    expected.extend(TASK);
    expected.extend(CHOICE);
    expected.extend([
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskFailed",
        "TaskScheduled",
        "TaskStarted",
        "TaskFailed",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
    ]);
    expected.extend(TASK);
    expected.push("ExecutionSucceeded");
    assert_eq!(types(&execution), expected);
    let failed = serde_json::to_value(&execution.history()[16]).unwrap();
    assert_eq!(
        failed["taskFailedEventDetails"],
        json!({"resourceType": "lambda", "resource": "invoke", "error": "Webhook.Transient", "cause": "503"})
    );
}

#[test]
fn deliver_backoff_is_full_jitter_of_capped_exponential() {
    let machine = machine();
    let mut env = TestEnv::new();
    env.default_random = 0.5;
    let mut execution = Execution::start(&machine, support::info(), input(), &mut env);
    drive_one(&machine, &mut execution, enriched(), &mut env);
    drive_one(&machine, &mut execution, correlated(), &mut env);
    let mut sleeps = Vec::new();
    for _ in 0..6 {
        drive_one(
            &machine,
            &mut execution,
            Outcome::Err("Webhook.Transient", "x"),
            &mut env,
        );
        let Action::Sleep { until } = execution.action() else {
            panic!("should back off");
        };
        sleeps.push((until - env.now).num_milliseconds());
        env.now = until;
        execution.wake(&machine, &mut env).unwrap();
    }
    // IntervalSeconds 2, BackoffRate 2, MaxDelaySeconds 60: 2 4 8 16 32 60, halved by jitter 0.5.
    assert_eq!(sleeps, [1000, 2000, 4000, 8000, 16000, 30000]);
    drive_one(
        &machine,
        &mut execution,
        Outcome::Err("Webhook.Transient", "final"),
        &mut env,
    );
    assert_eq!(execution.status(), Status::Failed);
}

/// Answers the pending Invoke with `outcome`.
fn drive_one(
    machine: &StateMachine,
    execution: &mut Execution,
    outcome: Outcome,
    env: &mut TestEnv,
) {
    assert!(matches!(execution.action(), Action::Invoke { .. }));
    env.advance(1);
    match outcome {
        Outcome::Ok(result) => execution.task_succeeded(machine, result, env).unwrap(),
        Outcome::Err(error, cause) => execution.task_failed(machine, error, cause, env).unwrap(),
    }
}

fn fail_at_deliver(machine: &StateMachine, env: &mut TestEnv) -> Execution {
    let mut execution = Execution::start(machine, support::info(), input(), env);
    let mut outcomes = vec![enriched(), correlated()];
    outcomes.extend((0..7).map(|_| Outcome::Err("Webhook.Transient", "503 from receiver")));
    drive(machine, &mut execution, outcomes, env);
    execution
}

#[test]
fn permanent_failure_at_deliver() {
    let machine = machine();
    let mut env = TestEnv::new();
    let execution = fail_at_deliver(&machine, &mut env);
    assert_eq!(execution.status(), Status::Failed);
    let failure = execution.failure().unwrap();
    assert_eq!(failure.error, "Webhook.Transient");
    assert_eq!(failure.cause, "503 from receiver");
    let types = types(&execution);
    assert_eq!(types.last().unwrap(), "ExecutionFailed");
    assert_eq!(types.iter().filter(|t| *t == "TaskFailed").count(), 7);
    assert_eq!(types.iter().filter(|t| *t == "TaskStateEntered").count(), 3);
    let last = serde_json::to_value(execution.history().last().unwrap()).unwrap();
    assert_eq!(
        last["executionFailedEventDetails"],
        json!({"error": "Webhook.Transient", "cause": "503 from receiver"})
    );
    assert_eq!(execution.action(), Action::Finished);
}

#[test]
fn non_retryable_deliver_error_fails_immediately() {
    let machine = machine();
    let mut env = TestEnv::new();
    let mut execution = Execution::start(&machine, support::info(), input(), &mut env);
    drive(
        &machine,
        &mut execution,
        [
            enriched(),
            correlated(),
            Outcome::Err("Webhook.Rejected", "400"),
        ],
        &mut env,
    );
    assert_eq!(execution.status(), Status::Failed);
    assert_eq!(execution.failure().unwrap().error, "Webhook.Rejected");
}

#[test]
fn enrichment_failure_is_caught_and_delivery_goes_on() {
    let machine = machine();
    let mut env = TestEnv::new();
    let mut execution = Execution::start(&machine, support::info(), input(), &mut env);
    drive(
        &machine,
        &mut execution,
        [
            Outcome::Err("Enrichment.Throttled", "slow down"),
            Outcome::Err("Enrichment.Throttled", "slow down"),
            Outcome::Err("Enrichment.Throttled", "slow down"),
            Outcome::Err("Enrichment.Throttled", "still throttled"),
            correlated(),
        ],
        &mut env,
    );
    let Action::Invoke {
        state, parameters, ..
    } = execution.action()
    else {
        panic!("Deliver should be invoked");
    };
    assert_eq!(state, "Deliver");
    assert_eq!(
        parameters["Payload"]["enriched"],
        json!({"Error": "Enrichment.Throttled", "Cause": "still throttled"})
    );
    let mut expected = vec!["ExecutionStarted", "TaskStateEntered"];
    for _ in 0..3 {
        expected.extend(["TaskScheduled", "TaskStarted", "TaskFailed"]);
    }
    expected.extend([
        "TaskScheduled",
        "TaskStarted",
        "TaskFailed",
        "TaskStateExited",
    ]);
    expected.extend(TASK);
    expected.extend(CHOICE);
    expected.extend(["TaskStateEntered", "TaskScheduled", "TaskStarted"]);
    assert_eq!(types(&execution), expected);

    // An error no retrier names goes straight to the States.ALL catcher.
    let mut env = TestEnv::new();
    let mut execution = Execution::start(&machine, support::info(), input(), &mut env);
    drive_one(
        &machine,
        &mut execution,
        Outcome::Err("Enrichment.Broken", "bug"),
        &mut env,
    );
    assert!(matches!(execution.action(), Action::Invoke { state, .. } if state == "Correlate"));
}

#[test]
fn redrive_from_failed_deliver() {
    let machine = machine();
    let mut env = TestEnv::new();
    let mut execution = fail_at_deliver(&machine, &mut env);
    let before = execution.history().len();
    env.advance(3600);
    execution.redrive(&machine, &mut env).unwrap();
    assert_eq!(execution.status(), Status::Running);
    assert_eq!(execution.redrive_count(), 1);
    assert!(execution.failure().is_none());
    let history: Vec<Value> = execution
        .history()
        .iter()
        .map(|event| serde_json::to_value(event).unwrap())
        .collect();
    assert_eq!(history[before]["type"], "ExecutionRedriven");
    assert_eq!(
        history[before]["executionRedrivenEventDetails"],
        json!({"redriveCount": 1})
    );
    assert_eq!(history[before + 1]["type"], "TaskStateEntered");
    assert_eq!(
        history[before + 1]["stateEnteredEventDetails"]["name"],
        "Deliver"
    );
    // Re-entered with the input it had, counters reset.
    let Action::Invoke {
        state,
        retry_count,
        parameters,
        ..
    } = execution.action()
    else {
        panic!("Deliver should be invoked again");
    };
    assert_eq!((state.as_str(), retry_count), ("Deliver", 0));
    assert_eq!(
        parameters["Payload"]["enriched"],
        json!({"enrichment": {"metric": "CPUUtilization"}})
    );
    // The full retry budget is available again.
    let mut outcomes: Vec<Outcome> = (0..6)
        .map(|_| Outcome::Err("Webhook.Transient", "x"))
        .collect();
    outcomes.extend([delivered(), recorded()]);
    drive(&machine, &mut execution, outcomes, &mut env);
    assert_eq!(execution.status(), Status::Succeeded);
    assert_eq!(execution.redrive_count(), 1);

    let refused = execution.redrive(&machine, &mut env).unwrap_err();
    assert_eq!(
        refused,
        asl::RedriveError::NotRedrivable {
            status: Status::Succeeded
        }
    );
}

#[test]
fn redrive_is_refused_fourteen_days_after_the_end() {
    let machine = machine();
    let mut env = TestEnv::new();
    let mut execution = fail_at_deliver(&machine, &mut env);
    env.advance(14 * 24 * 3600 + 1);
    assert!(matches!(
        execution.redrive(&machine, &mut env),
        Err(asl::RedriveError::RedrivablePeriodOver { .. })
    ));
    assert_eq!(
        execution.status(),
        Status::Failed,
        "a refused redrive changes nothing"
    );
}

#[test]
fn redrive_of_running_execution_is_refused() {
    let machine = machine();
    let mut env = TestEnv::new();
    let mut execution = Execution::start(&machine, support::info(), input(), &mut env);
    assert!(matches!(
        execution.redrive(&machine, &mut env),
        Err(asl::RedriveError::NotRedrivable {
            status: Status::Running
        })
    ));
}

#[test]
fn persisted_execution_resumes_to_the_same_result() {
    let machine = machine();
    let script = || {
        vec![
            enriched(),
            correlated(),
            Outcome::Err("Webhook.Transient", "503"),
            delivered(),
            recorded(),
        ]
    };
    let mut env = TestEnv::new();
    let mut straight = Execution::start(&machine, support::info(), input(), &mut env);
    drive(&machine, &mut straight, script(), &mut env);

    let mut env = TestEnv::new();
    let mut execution = Execution::start(&machine, support::info(), input(), &mut env);
    let mut outcomes = script().into_iter();
    for _ in 0..3 {
        drive_one(&machine, &mut execution, outcomes.next().unwrap(), &mut env);
    }
    // Sleeping in the retry backoff: persist, "crash", reload.
    let saved = serde_json::to_string(&execution).unwrap();
    let mut reloaded: Execution = serde_json::from_str(&saved).unwrap();
    assert_eq!(reloaded, execution);
    assert_eq!(reloaded.action(), execution.action());
    drive(&machine, &mut reloaded, outcomes, &mut env);
    assert_eq!(reloaded, straight);
}

#[test]
fn the_execution_without_its_history_plus_the_history_is_the_execution() {
    let machine = machine();
    let mut env = TestEnv::new();
    let mut execution = Execution::start(&machine, support::info(), input(), &mut env);
    let script = [
        enriched(),
        correlated(),
        Outcome::Err("Webhook.Transient", "503"),
        delivered(),
        recorded(),
    ];
    for outcome in script {
        let mut head = serde_json::to_value(execution.without_history()).unwrap();
        let whole = serde_json::to_value(&execution).unwrap();
        assert_eq!(head.get("history"), None);
        head["history"] = serde_json::to_value(execution.history()).unwrap();
        assert_eq!(head, whole, "the same fields, serialized the same way");
        assert_eq!(
            serde_json::from_value::<Execution>(head).unwrap(),
            execution
        );
        drive(&machine, &mut execution, vec![outcome], &mut env);
    }
    assert_eq!(execution.status(), asl::Status::Succeeded);
    let mut head = serde_json::to_value(execution.without_history()).unwrap();
    head["history"] = serde_json::to_value(execution.history()).unwrap();
    assert_eq!(
        serde_json::from_value::<Execution>(head).unwrap(),
        execution
    );
}

#[test]
fn wake_and_results_out_of_phase_are_errors() {
    let machine = machine();
    let mut env = TestEnv::new();
    let mut execution = Execution::start(&machine, support::info(), input(), &mut env);
    let before = execution.clone();
    assert!(matches!(
        execution.wake(&machine, &mut env),
        Err(asl::StepError::NotSleeping { .. })
    ));
    drive_one(
        &machine,
        &mut execution,
        Outcome::Err("Enrichment.Throttled", "x"),
        &mut env,
    );
    let Action::Sleep { until } = execution.action() else {
        panic!("should back off");
    };
    env.now = until - Duration::milliseconds(1);
    let sleeping = execution.clone();
    assert!(matches!(
        execution.wake(&machine, &mut env),
        Err(asl::StepError::TooEarly { .. })
    ));
    assert!(matches!(
        execution.task_succeeded(&machine, json!({}), &mut env),
        Err(asl::StepError::NotInvoking { .. })
    ));
    assert_eq!(execution, sleeping);
    assert_ne!(execution, before);
}
