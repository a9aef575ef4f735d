//! The local engine end to end, in-process: `serve`'s HTTP API over the pipeline, a real
//! receiver on loopback with injected faults, the real definition with its own retry waits.

use alarm_relay::config::CorrelationConfig;
use alarm_relay::engine::pipeline::{Pipeline, PipelineConfig};
use alarm_relay::event::IncidentId;
use alarm_relay::incident::{EventType, IncidentStatus};
use alarm_relay::receiver::{FaultPlan, Receiver, ReceiverConfig};
use alarm_relay::signing::WebhookSecret;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

const METRIC: &str = include_str!("../fixtures/metric-alarm.json");
const MATH: &str = include_str!("../fixtures/metric-math-alarm.json");
const SECRET: &str = "engine-secret";

/// A pipeline served on loopback, in a temporary directory.
struct Local {
    dir: tempfile::TempDir,
    pipeline: Pipeline,
    url: String,
    client: reqwest::Client,
}

async fn receiver(dir: &Path, name: &str, secret: &str, faults: &str) -> Receiver {
    Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: None,
            secret: WebhookSecret::new(secret),
            record_path: dir.join(name),
            faults: FaultPlan::parse(faults).unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap()
}

fn write_secret(dir: &Path, receiver: &Receiver) {
    write_secret_value(dir, receiver, SECRET);
}

fn write_secret_value(dir: &Path, receiver: &Receiver, secret: &str) {
    let document = json!({ "WEBHOOK_URL": receiver.url(), "WEBHOOK_SECRET": secret });
    std::fs::write(dir.join("secret.json"), document.to_string()).unwrap();
}

impl Local {
    async fn start(dir: tempfile::TempDir) -> Self {
        let pipeline = Pipeline::open(&PipelineConfig {
            db: dir.path().join("relay.db"),
            secret_file: dir.path().join("secret.json"),
            allow_http_loopback: true,
            correlation: CorrelationConfig::default(),
            delivery_mode: alarm_relay::delivery::DeliveryMode::Live,
            destinations: Default::default(),
            routing: Default::default(),
            network: Default::default(),
        })
        .unwrap();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = alarm_relay::server::router(pipeline.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            dir,
            pipeline,
            url,
            client: alarm_relay::adapters::http_client().unwrap(),
        }
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn status(&self, id: &str) -> IncidentStatus {
        self.pipeline
            .store
            .get(&IncidentId::from_raw(id))
            .await
            .unwrap()
            .unwrap()
            .status
    }

    /// Waits for the incident to reach `status` (the definition's real retry waits included).
    async fn wait_for(&self, id: &str, status: IncidentStatus) {
        let started = Instant::now();
        while self.status(id).await != status {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{id} still {} after 120 s",
                self.status(id).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.pipeline.engine.wait_idle().await;
    }

    async fn events(&self, id: &str) -> Vec<EventType> {
        self.pipeline
            .store
            .events(&IncidentId::from_raw(id))
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.kind)
            .collect()
    }
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn history_types(incident: &Value) -> Vec<String> {
    incident["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_recorded_delivered_once_through_faults_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), "received.jsonl", SECRET, "503,drop").await;
    write_secret(dir.path(), &receiver);
    let local = Local::start(dir).await;

    let (status, first) = local.post("/events", METRIC).await;
    assert_eq!(status, 202, "{first}");
    let id = first["incidentId"].as_str().unwrap().to_owned();
    assert_eq!(id, "NFM-Alarm-EKS-DB-2026-11-24T10:00:00.000+0000");
    let (status, other) = local.post("/events", MATH).await;
    assert_eq!(status, 202, "{other}");
    let (status, duplicate) = local.post("/events", METRIC).await;
    assert_eq!(status, 200, "a duplicate answers the current status");
    assert_eq!(duplicate["incidentId"], id.as_str());
    assert!(duplicate["status"].is_string());

    local.wait_for(&id, IncidentStatus::Delivered).await;
    let other_id = other["incidentId"].as_str().unwrap();
    local.wait_for(other_id, IncidentStatus::Delivered).await;
    receiver.stop().await;

    let received = records(&local.dir.path().join("received.jsonl"));
    for incident in [id.as_str(), other_id] {
        let accepted: Vec<_> = received
            .iter()
            .filter(|line| line["incidentId"] == incident && line["outcome"] == "accepted")
            .collect();
        assert_eq!(accepted.len(), 1, "{incident} accepted once: {received:?}");
        assert_eq!(accepted[0]["signatureValid"], true);
    }
    assert_eq!(received.len(), 4, "two faults, then one delivery each");

    let (status, incident) = local.get(&format!("/incidents/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(incident["incident"]["status"], "DELIVERED");
    let types: Vec<_> = incident["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            assert!(
                event["seq"].is_u64() && event["at"].is_string() && event.get("data").is_some()
            );
            event["type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("Received"));
    assert_eq!(types.last().map(String::as_str), Some("Delivered"));
    assert!(types.iter().any(|kind| kind == "Enriched"), "{types:?}");
    let history = history_types(&incident);
    assert_eq!(
        history.first().map(String::as_str),
        Some("ExecutionStarted")
    );
    assert_eq!(
        history.last().map(String::as_str),
        Some("ExecutionSucceeded")
    );
    for event in incident["history"].as_array().unwrap() {
        assert!(
            event["id"].is_u64() && event["previousEventId"].is_u64(),
            "{event}"
        );
        assert!(event["timestamp"].is_string(), "{event}");
    }
    let body = incident.to_string();
    assert!(
        !body.contains(SECRET),
        "the secret never appears in the audit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_and_recorded_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), "received.jsonl", SECRET, "").await;
    write_secret(dir.path(), &receiver);
    let local = Local::start(dir).await;

    let (status, answer) = local.post("/events", "{not json").await;
    assert_eq!(status, 400);
    assert!(answer["error"].is_string(), "{answer}");
    let rejected = answer["incidentId"].as_str().unwrap().to_owned();
    assert_eq!(local.status(&rejected).await, IncidentStatus::Rejected);

    let oversized = vec![b' '; alarm_relay::event::MAX_EVENT_BYTES + 10];
    let (status, answer) = local.post("/events", oversized).await;
    assert_eq!(status, 413, "{answer}");
    let id = answer["incidentId"].as_str().unwrap();
    assert_eq!(local.status(id).await, IncidentStatus::Rejected);
    assert_eq!(local.events(id).await, [EventType::Rejected]);

    let second = Pipeline::open(&PipelineConfig {
        db: local.dir.path().join("relay.db"),
        secret_file: local.dir.path().join("secret.json"),
        allow_http_loopback: true,
        correlation: CorrelationConfig::default(),
        delivery_mode: alarm_relay::delivery::DeliveryMode::Live,
        destinations: Default::default(),
        routing: Default::default(),
        network: Default::default(),
    });
    assert!(
        matches!(
            &second,
            Err(alarm_relay::engine::pipeline::PipelineError::InUse { .. })
        ),
        "one process drives a file's executions"
    );

    let (status, answer) = local.get("/incidents/nope").await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = local.get("/healthz").await;
    assert_eq!((status, answer), (200, json!({ "status": "ok" })));
    let (status, answer) = local
        .post(&format!("/incidents/{rejected}/redrive"), "")
        .await;
    assert_eq!(status, 409, "nothing to redrive: {answer}");
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_fails_at_deliver_and_a_redrive_delivers_it() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), "received.jsonl", SECRET, "").await;
    // The relay holds a stale secret: DevOps Agent answers 401, rereading it does not help.
    write_secret_value(dir.path(), &receiver, "stale-secret");
    let local = Local::start(dir).await;

    let (status, answer) = local.post("/events", METRIC).await;
    assert_eq!(status, 202);
    let id = answer["incidentId"].as_str().unwrap().to_owned();
    local.wait_for(&id, IncidentStatus::Failed).await;
    let (_, failed) = local.get(&format!("/incidents/{id}")).await;
    assert_eq!(failed["incident"]["lastError"], "Webhook.Permanent");
    let history = history_types(&failed);
    assert_eq!(history.last().map(String::as_str), Some("ExecutionFailed"));
    assert_eq!(
        history.iter().filter(|kind| *kind == "TaskFailed").count(),
        1,
        "a permanent error is not retried: {history:?}"
    );

    // The operator puts the right secret in place, then redrives.
    write_secret(local.dir.path(), &receiver);
    let (status, answer) = local.post(&format!("/incidents/{id}/redrive"), "").await;
    assert_eq!(status, 202, "{answer}");
    local.wait_for(&id, IncidentStatus::Delivered).await;
    receiver.stop().await;

    let (_, delivered) = local.get(&format!("/incidents/{id}")).await;
    let history = history_types(&delivered);
    assert!(
        history.contains(&"ExecutionRedriven".to_owned()),
        "{history:?}"
    );
    assert_eq!(
        history.last().map(String::as_str),
        Some("ExecutionSucceeded")
    );
    let log = local.events(&id).await;
    let failed_at = log
        .iter()
        .position(|kind| *kind == EventType::Failed)
        .unwrap();
    let redriven_at = log
        .iter()
        .position(|kind| *kind == EventType::Redriven)
        .unwrap();
    assert!(failed_at < redriven_at, "{log:?}");
    assert_eq!(log.last(), Some(&EventType::Delivered));
    let accepted: Vec<_> = records(&local.dir.path().join("received.jsonl"))
        .into_iter()
        .filter(|line| line["outcome"] == "accepted")
        .collect();
    assert_eq!(accepted.len(), 1, "delivered once, by the redrive");

    let (status, answer) = local.post(&format!("/incidents/{id}/redrive"), "").await;
    assert_eq!(
        status, 409,
        "a succeeded execution is not redriven: {answer}"
    );
}
