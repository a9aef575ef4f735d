//! The state machine definition's invariants, and the recorder that writes its outcomes.

use alarm_relay::adapters::SqliteStore;
use alarm_relay::event::IncidentId;
use alarm_relay::incident::{EventType, IncidentStatus};
use alarm_relay::intake::Intake;
use alarm_relay::outbox::Dispatcher;
use alarm_relay::ports::IncidentStore;
use alarm_relay::recorder::{self, RecorderError};
use alarm_relay::signer::ErrorName;
use alarm_relay::testing::{FakeStarter, FixedClock};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

const DEFINITION: &str = include_str!("../../statemachine/incident.asl.json");

fn definition() -> Value {
    serde_json::from_str(DEFINITION).expect("the definition is JSON")
}

fn state<'a>(definition: &'a Value, name: &str) -> &'a Value {
    &definition["States"][name]
}

/// Error names a Lambda of this project raises, plus the Lambda service's own.
fn known_error_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = ErrorName::ALL
        .iter()
        .map(|name| name.as_str().to_owned())
        .collect();
    for name in [
        "Enrichment.Throttled",
        "Enrichment.Failed",
        "Store.Unavailable",
        "Store.Failed",
        "Lambda.TooManyRequestsException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
    ] {
        names.insert(name.to_owned());
    }
    names
}

#[test]
fn every_error_equals_names_an_error_that_exists() {
    let definition = definition();
    let known = known_error_names();
    for (name, state) in definition["States"].as_object().unwrap() {
        for field in ["Retry", "Catch"] {
            for rule in state[field].as_array().into_iter().flatten() {
                for error in rule["ErrorEquals"].as_array().unwrap() {
                    let error = error.as_str().unwrap();
                    assert!(
                        error.starts_with("States.") || known.contains(error),
                        "{name}.{field} matches {error:?}, which nothing raises"
                    );
                }
            }
        }
    }
}

#[test]
fn every_task_invokes_one_of_the_projects_lambdas() {
    let definition = definition();
    let mut functions = BTreeSet::new();
    for (name, state) in definition["States"].as_object().unwrap() {
        if state["Type"] == "Task" {
            assert_eq!(
                state["Resource"], "arn:aws:states:::lambda:invoke",
                "{name}"
            );
            functions.insert(
                state["Parameters"]["FunctionName"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    let expected: BTreeSet<String> = [
        "${EnricherFunctionArn}",
        "${RecorderFunctionArn}",
        "${SignerFunctionArn}",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(functions, expected);
}

#[test]
fn deliver_fails_in_place_so_a_redrive_retries_delivery() {
    let definition = definition();
    let deliver = state(&definition, "Deliver");
    assert!(
        deliver.get("Catch").is_none(),
        "a Catch would make redrive re-run a Fail state"
    );
    let retried: BTreeSet<&str> = deliver["Retry"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ErrorEquals"].as_array().unwrap())
        .map(|error| error.as_str().unwrap())
        .collect();
    for name in ErrorName::ALL {
        let retryable = name.kind() == alarm_relay::delivery::ErrorKind::Transient;
        assert_eq!(
            retried.contains(name.as_str()),
            retryable,
            "{name}: retried iff transient"
        );
    }
    let rule = &deliver["Retry"][0];
    assert_eq!(rule["JitterStrategy"], "FULL");
    assert!(rule["MaxDelaySeconds"].as_u64().unwrap() > 0);
    assert!(rule["BackoffRate"].as_f64().unwrap() > 1.0);
    assert_eq!(deliver["Next"], "Record");
}

#[test]
fn enrichment_failure_never_blocks_delivery() {
    let definition = definition();
    let enrich = state(&definition, "Enrich");
    let catch = &enrich["Catch"][0];
    assert_eq!(catch["ErrorEquals"], json!(["States.ALL"]));
    assert_eq!(catch["Next"], "Correlate");
    assert_eq!(enrich["Next"], "Correlate");
    assert_eq!(
        catch["ResultPath"], enrich["ResultPath"],
        "both paths leave $.enriched for Correlate and Deliver"
    );
    assert_eq!(definition["StartAt"], "Enrich");
    assert_eq!(state(&definition, "Record")["End"], true);
}

const METRIC: &str = include_str!("../fixtures/metric-alarm.json");

async fn started() -> (Arc<dyn IncidentStore>, IncidentId) {
    let store: Arc<dyn IncidentStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let clock = Arc::new(FixedClock::at("2026-11-24T10:00:01Z"));
    let dispatcher = Dispatcher::new(store.clone(), Arc::new(FakeStarter::default()), clock);
    Intake::new(dispatcher, None)
        .handle(METRIC.as_bytes())
        .await
        .unwrap();
    (
        store,
        IncidentId::new("NFM-Alarm-EKS-DB", "2026-11-24T10:00:00.000+0000"),
    )
}

fn status_change(status: &str, redrive_count: u64) -> Value {
    let input =
        json!({ "incidentId": "NFM-Alarm-EKS-DB-2026-11-24T10:00:00.000+0000", "event": {} });
    json!({
        "version": "0",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "detail": {
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:incident:NFM-abc",
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:incident",
            "status": status,
            "input": input.to_string(),
            "error": if status == "RUNNING" { Value::Null } else { json!("Webhook.Permanent") },
            "cause": if status == "RUNNING" { Value::Null } else { json!("{\"errorMessage\":\"webhook answered 403 after 12 ms\"}") },
            "redriveCount": redrive_count,
        }
    })
}

async fn kinds(store: &Arc<dyn IncidentStore>, id: &IncidentId) -> Vec<EventType> {
    store
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect()
}

#[tokio::test]
async fn failed_then_redriven_then_delivered_is_all_in_the_log() {
    let (store, id) = started().await;
    let clock = FixedClock::at("2026-11-24T10:05:00Z");
    for _ in 0..2 {
        let answer = recorder::handle(&status_change("FAILED", 0), store.as_ref(), &clock)
            .await
            .unwrap();
        assert_eq!(answer["status"], "FAILED");
    }
    let failed = store.get(&id).await.unwrap().unwrap();
    assert_eq!(failed.last_error.as_deref(), Some("Webhook.Permanent"));

    for _ in 0..2 {
        recorder::handle(&status_change("RUNNING", 1), store.as_ref(), &clock)
            .await
            .unwrap();
    }
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().status,
        IncidentStatus::Started
    );

    let record = json!({ "incidentId": id, "delivery": { "outcome": "delivered", "bodySha256": "ab", "attempts": [{ "statusCode": 200 }] } });
    for _ in 0..2 {
        let answer = recorder::handle(&record, store.as_ref(), &clock)
            .await
            .unwrap();
        assert_eq!(answer["status"], "DELIVERED");
    }
    assert_eq!(
        kinds(&store, &id).await,
        [
            EventType::Received,
            EventType::ExecutionStarted,
            EventType::Failed,
            EventType::Redriven,
            EventType::Delivered
        ],
        "each outcome once, though every message came twice"
    );
    let delivered = store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (delivered.status, delivered.last_error),
        (IncidentStatus::Delivered, None)
    );
}

#[tokio::test]
async fn timed_out_and_aborted_executions_are_failures_too() {
    for status in ["TIMED_OUT", "ABORTED"] {
        let (store, id) = started().await;
        let clock = FixedClock::at("2026-11-24T10:05:00Z");
        recorder::handle(&status_change(status, 0), store.as_ref(), &clock)
            .await
            .unwrap();
        let events = store.events(&id).await.unwrap();
        assert_eq!(events.last().unwrap().data["status"], status);
        assert_eq!(
            store.get(&id).await.unwrap().unwrap().status,
            IncidentStatus::Failed
        );
    }
}

#[tokio::test]
async fn inputs_it_cannot_place_are_refused_by_name() {
    let (store, _) = started().await;
    let clock = FixedClock::at("2026-11-24T10:05:00Z");
    let mut unknown = status_change("FAILED", 0);
    unknown["detail"]["input"] = json!(json!({ "incidentId": "nope" }).to_string());
    for input in [json!({}), json!({ "incidentId": "x" }), unknown] {
        let error = recorder::handle(&input, store.as_ref(), &clock)
            .await
            .unwrap_err();
        assert!(matches!(error, RecorderError::Invalid(_)), "{error}");
        assert_eq!(error.error_type(), "Payload.Invalid");
    }
}
