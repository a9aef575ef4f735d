//! The moto scenarios again on the local engine: the same definition, the same handlers, the
//! same receiver faults; `workflow_moto` checks that both interpreters take the same path.

use alarm_relay::config::CorrelationConfig;
use alarm_relay::engine::pipeline::{Pipeline, PipelineConfig};
use alarm_relay::event::IncidentId;
use alarm_relay::ports::AlarmSource;
use alarm_relay::receiver::{FaultPlan, Receiver, ReceiverConfig};
use alarm_relay::signing::WebhookSecret;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const METRIC: &str = include_str!("../fixtures/metric-alarm.json");

/// How a local execution ended.
pub(crate) struct LocalRun {
    pub status: String,
    pub error: Option<String>,
    pub entered: Vec<String>,
    pub task_failures: Vec<String>,
}

/// Runs the metric fixture's incident on the local engine to its end. `alarms` answers the
/// enricher (None: the engine's offline source).
pub(crate) async fn run_local(
    faults: &str,
    receiver_secret: &str,
    alarms: Option<Arc<dyn AlarmSource>>,
) -> LocalRun {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: None,
            secret: WebhookSecret::new(receiver_secret),
            record_path: dir.path().join("received.jsonl"),
            faults: FaultPlan::parse(faults).unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap();
    let secret_path = dir.path().join("secret.json");
    let document = json!({ "WEBHOOK_URL": receiver.url(), "WEBHOOK_SECRET": "workflow-secret" });
    std::fs::write(&secret_path, document.to_string()).unwrap();

    let config = PipelineConfig {
        db: dir.path().join("relay.db"),
        secret_file: secret_path,
        allow_http_loopback: true,
        correlation: CorrelationConfig::default(),
        delivery_mode: alarm_relay::delivery::DeliveryMode::Live,
        destinations: Default::default(),
        routing: Default::default(),
        network: Default::default(),
    };
    let pipeline = match alarms {
        Some(alarms) => Pipeline::open_with(&config, alarms),
        None => Pipeline::open(&config),
    }
    .unwrap();
    pipeline.intake.handle(METRIC.as_bytes()).await.unwrap();
    let (engine, store) = (&pipeline.engine, &pipeline.store);
    engine.wait_idle().await;
    receiver.stop().await;

    let id = IncidentId::new("NFM-Alarm-EKS-DB", "2026-11-24T10:00:00.000+0000");
    let arn = store
        .get(&id)
        .await
        .unwrap()
        .unwrap()
        .execution_arn
        .unwrap();
    let execution = engine.executions().get(&arn).await.unwrap().unwrap();
    let history: Vec<Value> = execution
        .history()
        .iter()
        .map(|event| serde_json::to_value(event).unwrap())
        .collect();
    let detail = |event: &Value, details: &str, field: &str| {
        event[details][field].as_str().map(str::to_owned)
    };
    LocalRun {
        status: serde_json::to_value(execution.status())
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned(),
        error: execution.failure().map(|failure| failure.error.clone()),
        entered: history
            .iter()
            .filter(|event| event["type"].as_str().unwrap().ends_with("StateEntered"))
            .filter_map(|event| detail(event, "stateEnteredEventDetails", "name"))
            .collect(),
        task_failures: history
            .iter()
            .filter(|event| event["type"] == "TaskFailed")
            .filter_map(|event| detail(event, "taskFailedEventDetails", "error"))
            .collect(),
    }
}
