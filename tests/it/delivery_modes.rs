//! The two kinds of DevOps Agent webhook and the dry run, end to end through a real
//! `alarm-relay serve`: an API-key webhook gets `Authorization: Bearer` and no signature; a dry
//! run renders, signs and records what it would send, and the receiver sees nothing.

use crate::episodes::{Serve, accepted, at, event, id_of, receiver, until_accepted};
use alarm_relay::receiver::{FaultPlan, Receiver, ReceiverConfig};
use alarm_relay::secret::ApiKey;
use alarm_relay::signing::WebhookSecret;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

const API_KEY: &str = "api-key-of-the-agent-space";

/// The log entries of `kind` in a `GET /incidents/{id}` answer.
fn entries(answer: &Value, kind: &str) -> Vec<Value> {
    answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["type"] == kind)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_webhook_gets_the_bearer_key_and_no_signature() {
    // GIVEN a receiver expecting an API key, and the API-key webhook's secret document
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: Some(ApiKey::new(API_KEY)),
            secret: WebhookSecret::new(String::new()),
            record_path: dir.path().join("received.jsonl"),
            faults: FaultPlan::parse("").unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap();
    let secret = dir.path().join("secret.json");
    let document = json!({ "WEBHOOK_URL": receiver.url(), "WEBHOOK_API_KEY": API_KEY });
    std::fs::write(&secret, document.to_string()).unwrap();
    let serve = Serve::start(dir.path(), &secret, &[]);

    // WHEN an alarm fires
    let alarm = event("NFM-Api-Timeouts", "api", "Timeouts", "ALARM", &at(0));
    serve.post(&alarm).await;

    // THEN the receiver accepted it on the key alone, and nothing records the key
    let id = id_of(&alarm);
    let answer = serve.settled(&id, "DELIVERED").await;
    let lines = until_accepted(dir.path(), 1).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["signatureValid"], true, "{:#}", lines[0]);
    assert!(
        lines[0].get("eventTimestamp").is_none(),
        "no signature headers"
    );
    assert_eq!(lines[0]["incidentId"], id);
    let attempt = &entries(&answer, "DeliveryAttempted")[0]["data"]["attempt"];
    assert_eq!(attempt["auth"], "api-key");
    assert!(attempt.get("eventTimestamp").is_none());
    assert!(!answer.to_string().contains(API_KEY));
    drop(serve);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_records_what_it_would_send_and_sends_nothing() {
    // GIVEN serve in a dry run, before an HMAC receiver
    let dir = tempfile::tempdir().unwrap();
    let (receiver, secret) = receiver(dir.path()).await;
    let serve = Serve::start(dir.path(), &secret, &["--dry-run"]);

    // WHEN two alarms of one monitor fire (an investigation and its update, were it live)
    let first = event("NFM-Dry-Timeouts", "dry", "Timeouts", "ALARM", &at(0));
    let second = event(
        "NFM-Dry-Retransmissions",
        "dry",
        "Retransmissions",
        "ALARM",
        &at(5),
    );
    serve.post(&first).await;
    let primary = serve.settled(&id_of(&first), "DRY_RUN").await;
    serve.post(&second).await;
    let update = serve.settled(&id_of(&second), "DRY_RUN").await;

    // THEN each records what it would have sent, and the receiver saw nothing
    for (answer, action) in [(&primary, "created"), (&update, "updated")] {
        let attempt = &entries(answer, "DeliveryAttempted")[0]["data"]["attempt"];
        assert_eq!(attempt["outcome"], "dry-run", "{attempt:#}");
        let would = &attempt["dryRun"];
        assert_eq!(would["auth"], "hmac");
        assert_eq!(would["host"], "127.0.0.1");
        assert!(would["bodyBytes"].as_u64().unwrap() > 0);
        assert_eq!(would["headers"]["x-amzn-event-signature"], "[redacted]");
        let dry_run = entries(answer, "DryRun");
        assert_eq!(dry_run.len(), 1);
        assert_eq!(dry_run[0]["data"]["action"], action);
        assert_eq!(dry_run[0]["data"]["bodySha256"], would["bodySha256"]);
    }
    assert!(
        update["incident"]["correlation"]["primaryIncidentId"] == id_of(&first),
        "correlated as if live: {:#}",
        update["incident"]
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(accepted(dir.path()).is_empty(), "the receiver saw nothing");
    assert!(!primary.to_string().contains(crate::episodes::SECRET));
    drop(serve);
    receiver.stop().await;
}
