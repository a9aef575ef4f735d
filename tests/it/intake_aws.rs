//! Intake and the sweeper as the Lambdas wire them — DynamoDB store and Step Functions starter —
//! against moto: one execution per incident, named deterministically, however often the event
//! arrives or the sweeper runs.

use crate::moto::Moto;
use alarm_relay::adapters::SystemClock;
use alarm_relay::adapters::aws::{DynamoDbStore, StepFunctionsStarter, sdk};
use alarm_relay::incident::{EventType, IncidentStatus};
use alarm_relay::intake::{Intake, IntakeOutcome};
use alarm_relay::outbox::Dispatcher;
use alarm_relay::ports::{IncidentStore, WorkflowStarter};
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use std::sync::Arc;
use std::time::Duration;

const DEFINITION: &str =
    r#"{"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#;

async fn clients(endpoint: &str) -> (aws_sdk_dynamodb::Client, aws_sdk_sfn::Client) {
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(sdk::https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await;
    (
        aws_sdk_dynamodb::Client::new(&shared),
        aws_sdk_sfn::Client::new(&shared),
    )
}

async fn state_machine(sfn: &aws_sdk_sfn::Client) -> String {
    sfn.create_state_machine()
        .name("incident")
        .definition(DEFINITION)
        .role_arn("arn:aws:iam::123456789012:role/incident-workflow")
        .send()
        .await
        .expect("moto creates the state machine")
        .state_machine_arn
}

#[tokio::test]
async fn duplicates_and_sweeps_start_one_execution_per_incident() {
    let moto = Moto::start();
    let (dynamodb, sfn) = clients(moto.endpoint()).await;
    DynamoDbStore::create_table(&dynamodb, "incidents")
        .await
        .unwrap();
    let machine = state_machine(&sfn).await;
    let store: Arc<dyn IncidentStore> = Arc::new(DynamoDbStore::new(dynamodb, "incidents"));
    let starter = Arc::new(StepFunctionsStarter::new(sfn.clone(), machine.clone()));
    let dispatcher = Dispatcher::new(store.clone(), starter.clone(), Arc::new(SystemClock));
    let intake = Intake::new(dispatcher.clone(), Some(Duration::from_secs(86_400)));
    let event = include_bytes!("../fixtures/metric-alarm.json");

    let first = intake.handle(event).await.unwrap();
    let IntakeOutcome::Recorded { incident } = &first else {
        panic!("{first:?}")
    };
    assert_eq!(incident.status, IncidentStatus::Started);
    let duplicate = intake.handle(event).await.unwrap();
    assert!(
        matches!(duplicate, IntakeOutcome::Duplicate { .. }),
        "{duplicate:?}"
    );

    // The sweeper (or a late retry) asking again for the same name and input is a no-op.
    let input = alarm_relay::outbox::execution_input(
        &incident.incident_id,
        &serde_json::from_slice(event).unwrap(),
    );
    let again = starter
        .start(&incident.execution_name, &input)
        .await
        .unwrap();
    assert_eq!(Some(again.as_str()), incident.execution_arn.as_deref());
    assert_eq!(dispatcher.sweep(Duration::ZERO, 10).await.unwrap().found, 0);

    let executions = sfn
        .list_executions()
        .state_machine_arn(&machine)
        .send()
        .await
        .unwrap()
        .executions;
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].name, incident.execution_name);
    let kinds: Vec<_> = store
        .events(&incident.incident_id)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect();
    assert_eq!(kinds, [EventType::Received, EventType::ExecutionStarted]);
}

#[tokio::test]
async fn a_missing_state_machine_leaves_the_incident_in_the_outbox() {
    let moto = Moto::start();
    let (dynamodb, sfn) = clients(moto.endpoint()).await;
    DynamoDbStore::create_table(&dynamodb, "incidents")
        .await
        .unwrap();
    let store: Arc<dyn IncidentStore> = Arc::new(DynamoDbStore::new(dynamodb, "incidents"));
    let missing = "arn:aws:states:us-east-1:123456789012:stateMachine:incident";
    let dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(StepFunctionsStarter::new(sfn.clone(), missing)),
        Arc::new(SystemClock),
    );
    let intake = Intake::new(dispatcher, None);
    let outcome = intake
        .handle(include_bytes!("../fixtures/metric-alarm.json"))
        .await
        .unwrap();
    assert_eq!(
        outcome.incident().status,
        IncidentStatus::Received,
        "acknowledged and kept"
    );

    let machine = state_machine(&sfn).await;
    assert_eq!(machine, missing, "moto names it as AWS would");
    let sweeper = Dispatcher::new(
        store,
        Arc::new(StepFunctionsStarter::new(sfn, machine)),
        Arc::new(SystemClock),
    );
    let report = sweeper.sweep(Duration::ZERO, 10).await.unwrap();
    assert_eq!((report.found, report.started), (1, 1));
}

#[tokio::test]
async fn audit_reads_the_dynamodb_table() {
    let moto = Moto::start();
    let (dynamodb, sfn) = clients(moto.endpoint()).await;
    DynamoDbStore::create_table(&dynamodb, "incidents")
        .await
        .unwrap();
    let machine = state_machine(&sfn).await;
    let store: Arc<dyn IncidentStore> = Arc::new(DynamoDbStore::new(dynamodb, "incidents"));
    let dispatcher = Dispatcher::new(
        store,
        Arc::new(StepFunctionsStarter::new(sfn, machine)),
        Arc::new(SystemClock),
    );
    Intake::new(dispatcher, None)
        .handle(include_bytes!("../fixtures/metric-alarm.json"))
        .await
        .unwrap();

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
        .args([
            "audit",
            "--table",
            "incidents",
            "--status",
            "STARTED",
            "--json",
        ])
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let incidents = json["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        incidents[0]["incidentId"],
        "NFM-Alarm-EKS-DB-2026-11-24T10:00:00.000+0000"
    );
}
