//! `demo`: sample Network Flow Monitor alarms rendered, signed and delivered to the built-in
//! receiver through injected faults (a 503 with `Retry-After`, then a dropped connection),
//! with the receiver's own record as the proof. Needs no AWS and no arguments.
//!
//! Retries here follow the signer's classification with a short fixed backoff; in AWS the
//! state machine's `Retry` owns the schedule.

use super::CliError;
use crate::adapters::local::SecretFile;
use crate::adapters::{HttpTransportConfig, ReqwestTransport, SystemClock};
use crate::delivery::{AttemptOutcome, AttemptRecord, Deliverer, DeliveryError, ErrorKind};
use crate::event::AlarmEvent;
use crate::payload::WebhookBody;
use crate::receiver::{FaultPlan, Receiver, ReceiverConfig};
use crate::secret::{CachedSecretSource, DEFAULT_TTL, secret_from_json};
use crate::signing::TOLERANCE_IN_SECONDS;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const SAMPLES: [&str; 2] = [
    include_str!("../../tests/fixtures/metric-alarm.json"),
    include_str!("../../tests/fixtures/metric-math-alarm.json"),
];
const FAULTS: &str = "503:retry-after=1,drop";
const MAX_ATTEMPTS: usize = 5;
const BACKOFF: Duration = Duration::from_millis(200);

pub(super) async fn run() -> Result<(), CliError> {
    let dir = tempfile::tempdir().map_err(|error| CliError::input("temporary directory", error))?;
    let record_path = dir.path().join("received.jsonl");
    let secret_path = dir.path().join("webhook-secret.json");
    let demo_secret = format!("demo-{}", std::process::id());
    let receiver = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            secret: secret_from_json(
                &serde_json::json!({ "WEBHOOK_SECRET": demo_secret }).to_string(),
            )
            .map_err(|error| CliError::input("demo secret", error))?,
            record_path: record_path.clone(),
            faults: FaultPlan::parse(FAULTS)
                .map_err(|error| CliError::input("demo faults", error))?,
            tolerance: Duration::from_secs(TOLERANCE_IN_SECONDS),
        },
    )
    .await
    .map_err(|error| CliError::input("demo receiver", error))?;
    let document =
        serde_json::json!({ "WEBHOOK_URL": receiver.url(), "WEBHOOK_SECRET": demo_secret });
    std::fs::write(&secret_path, document.to_string())
        .map_err(|error| CliError::input(secret_path.display(), error))?;
    println!(
        "receiver  {} (checks signatures like DevOps Agent; faults: {FAULTS})",
        receiver.url()
    );

    let clock = Arc::new(SystemClock);
    let transport = ReqwestTransport::new(HttpTransportConfig {
        allow_http_loopback: true,
        ..HttpTransportConfig::default()
    })
    .map_err(|error| CliError::input("HTTP client", error))?;
    let deliverer = Deliverer::new(
        Arc::new(CachedSecretSource::new(
            SecretFile::new(&secret_path),
            clock.clone(),
            DEFAULT_TTL,
        )),
        Arc::new(transport),
        clock,
    );

    let mut expected = Vec::new();
    for sample in SAMPLES {
        let event = AlarmEvent::parse(sample.as_bytes())
            .map_err(|error| CliError::input("sample event", error))?;
        let body = WebhookBody::render(&event);
        println!("\nincident  {}", event.incident_id());
        println!(
            "body      {} bytes, sha256 {}",
            body.as_bytes().len(),
            body.sha256_hex()
        );
        deliver_with_retries(&deliverer, &body).await;
        expected.push((event.incident_id().to_string(), body.sha256_hex()));
    }
    receiver.stop().await;
    audit(&record_path, &expected)
}

async fn deliver_with_retries(deliverer: &Deliverer, body: &WebhookBody) {
    let mut number = 0;
    for _ in 0..MAX_ATTEMPTS {
        let (attempts, error) = match deliverer.deliver(body).await {
            Ok(record) => (record.attempts, None),
            Err(DeliveryError::Failed(record)) => {
                (record.attempts.clone(), Some(DeliveryError::Failed(record)))
            }
            Err(error) => (Vec::new(), Some(error)),
        };
        for attempt in &attempts {
            number += 1;
            println!("  attempt {number}: {}", describe(attempt));
        }
        match error {
            None => return,
            Some(error) if error.kind() == ErrorKind::Permanent => {
                println!("  permanent failure: {error}");
                return;
            }
            Some(error) => {
                let wait = match &error {
                    DeliveryError::Failed(record) => record
                        .last()
                        .retry_after_seconds
                        .map_or(BACKOFF, Duration::from_secs),
                    DeliveryError::Secret(_) => BACKOFF,
                };
                tokio::time::sleep(wait).await;
            }
        }
    }
}

fn describe(attempt: &AttemptRecord) -> String {
    let what = match (attempt.status_code, &attempt.error) {
        (Some(status), _) => format!("HTTP {status}"),
        (None, Some(error)) => error.clone(),
        (None, None) => "no answer".to_owned(),
    };
    let verdict = match attempt.outcome {
        AttemptOutcome::Delivered => "delivered".to_owned(),
        AttemptOutcome::Permanent => "permanent".to_owned(),
        AttemptOutcome::Transient => match attempt.retry_after_seconds {
            Some(seconds) => format!("transient, Retry-After {seconds} s"),
            None => "transient, retrying".to_owned(),
        },
    };
    format!(
        "{what} in {} ms, signed at {} ({verdict})",
        attempt.latency_ms, attempt.event_timestamp
    )
}

/// Reads the receiver's record: every incident accepted exactly once, with a valid signature
/// and the body the relay rendered.
fn audit(record_path: &std::path::Path, expected: &[(String, String)]) -> Result<(), CliError> {
    let text = std::fs::read_to_string(record_path)
        .map_err(|error| CliError::input(record_path.display(), error))?;
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let mut accepted: HashMap<String, Vec<&Value>> = HashMap::new();
    for line in &lines {
        if line["outcome"] == "accepted" {
            let id = line["incidentId"].as_str().unwrap_or_default().to_owned();
            accepted.entry(id).or_default().push(line);
        }
    }
    println!("\nreceiver record: {} request(s)", lines.len());
    let mut failures = Vec::new();
    for (id, sha) in expected {
        let copies = accepted.get(id).map_or(&[][..], Vec::as_slice);
        let intact = copies
            .iter()
            .all(|line| line["signatureValid"] == true && line["bodySha256"] == sha.as_str());
        let verdict = if copies.len() == 1 && intact {
            "delivered once"
        } else {
            "NOT delivered exactly once"
        };
        println!("  {id}: {} accepted, {verdict}", copies.len());
        if verdict != "delivered once" {
            failures.push(id.clone());
        }
    }
    if failures.is_empty() {
        println!("\ndemo ok: every incident delivered exactly once with a valid signature");
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "demo failed: not delivered exactly once: {}",
            failures.join(", ")
        )))
    }
}
