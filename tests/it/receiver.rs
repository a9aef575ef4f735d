//! The real transport against the real receiver over loopback: classification of every fault,
//! the HTTPS policy, and secret rotation on 401.

use alarm_relay::adapters::local::SecretFile;
use alarm_relay::adapters::{HttpTransportConfig, ReqwestTransport, SystemClock};
use alarm_relay::delivery::{AttemptOutcome, Deliverer, DeliveryError, DeliveryRecord, ErrorKind};
use alarm_relay::event::AlarmEvent;
use alarm_relay::payload::WebhookBody;
use alarm_relay::receiver::{FaultPlan, Receiver, ReceiverConfig};
use alarm_relay::secret::CachedSecretSource;
use alarm_relay::signing::WebhookSecret;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct Setup {
    receiver: Receiver,
    deliverer: Deliverer,
    record: PathBuf,
    secret_path: PathBuf,
    _dir: tempfile::TempDir,
}

async fn setup(
    faults: &str,
    receiver_secret: &str,
    relay_secret: &str,
    transport: HttpTransportConfig,
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("received.jsonl");
    let receiver = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: None,
            secret: WebhookSecret::new(receiver_secret),
            record_path: record.clone(),
            faults: FaultPlan::parse(faults).unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap();
    let secret_path = dir.path().join("secret.json");
    write_secret(&secret_path, &receiver.url(), relay_secret);
    let clock = Arc::new(SystemClock);
    let secrets = CachedSecretSource::new(
        SecretFile::new(&secret_path),
        clock.clone(),
        Duration::from_secs(300),
    );
    let deliverer = Deliverer::new(
        Arc::new(secrets),
        Arc::new(ReqwestTransport::new(transport).unwrap()),
        clock,
    );
    Setup {
        receiver,
        deliverer,
        record,
        secret_path,
        _dir: dir,
    }
}

fn write_secret(path: &std::path::Path, url: &str, secret: &str) {
    let document = serde_json::json!({"WEBHOOK_URL": url, "WEBHOOK_SECRET": secret});
    std::fs::write(path, document.to_string()).unwrap();
}

fn loopback() -> HttpTransportConfig {
    HttpTransportConfig {
        allow_http_loopback: true,
        ..HttpTransportConfig::default()
    }
}

fn body() -> WebhookBody {
    let bytes = include_bytes!("../fixtures/anomaly-detection-alarm.json");
    WebhookBody::render(&AlarmEvent::parse(bytes).unwrap())
}

fn records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn failed(result: Result<DeliveryRecord, DeliveryError>) -> (ErrorKind, DeliveryRecord) {
    match result {
        Err(error @ DeliveryError::Failed(_)) => {
            let kind = error.kind();
            let DeliveryError::Failed(record) = error else {
                unreachable!()
            };
            (kind, record)
        }
        other => panic!("expected a failed delivery, got {other:?}"),
    }
}

#[tokio::test]
async fn faults_classify_as_transient_then_delivery_succeeds() {
    let setup = setup("503:retry-after=2,429,drop", "s", "s", loopback()).await;
    let body = body();

    let (kind, record) = failed(setup.deliverer.deliver(&body).await);
    assert_eq!(
        (kind, record.last().status_code),
        (ErrorKind::Transient, Some(503))
    );
    assert_eq!(record.last().retry_after_seconds, Some(2));

    let (kind, record) = failed(setup.deliverer.deliver(&body).await);
    assert_eq!(
        (kind, record.last().status_code),
        (ErrorKind::Transient, Some(429))
    );

    let (kind, record) = failed(setup.deliverer.deliver(&body).await);
    assert_eq!(
        (kind, record.last().status_code),
        (ErrorKind::Transient, None)
    );
    assert!(
        record
            .last()
            .error
            .as_deref()
            .unwrap()
            .contains("connection"),
        "{record:?}"
    );

    let delivered = setup.deliverer.deliver(&body).await.unwrap();
    assert_eq!(delivered.last().status_code, Some(202));
    setup.receiver.stop().await;

    let lines = records(&setup.record);
    assert_eq!(lines.len(), 4);
    assert!(
        lines.iter().all(|line| line["signatureValid"] == true),
        "every attempt is signed validly"
    );
    assert!(
        lines
            .iter()
            .all(|line| line["bodySha256"] == body.sha256_hex().as_str()),
        "same bytes every time"
    );
    assert_eq!(lines[2]["outcome"], "dropped");
    assert_eq!(lines[3]["outcome"], "accepted");
}

#[tokio::test]
async fn slow_answers_time_out_as_transient() {
    let config = HttpTransportConfig {
        timeout: Duration::from_millis(200),
        ..loopback()
    };
    let setup = setup("delay=2000", "s", "s", config).await;
    let (kind, record) = failed(setup.deliverer.deliver(&body()).await);
    assert_eq!(kind, ErrorKind::Transient);
    assert_eq!(
        record.last().error.as_deref(),
        Some("timed out after 200 ms")
    );
    setup.receiver.stop().await;
}

#[tokio::test]
async fn plain_http_needs_the_explicit_allowance() {
    let setup = setup("", "s", "s", HttpTransportConfig::default()).await;
    let (kind, record) = failed(setup.deliverer.deliver(&body()).await);
    assert_eq!(kind, ErrorKind::Permanent);
    assert!(
        record
            .last()
            .error
            .as_deref()
            .unwrap()
            .contains("--allow-http-loopback")
    );
    setup.receiver.stop().await;
    assert!(records(&setup.record).is_empty(), "nothing was sent");
}

#[tokio::test]
async fn rotated_secret_is_picked_up_after_a_401() {
    let setup = setup("", "new-secret", "old-secret", loopback()).await;
    setup.deliverer.deliver(&body()).await.unwrap_err();
    write_secret(&setup.secret_path, &setup.receiver.url(), "new-secret");
    let record = setup.deliverer.deliver(&body()).await.unwrap();
    let statuses: Vec<_> = record.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(
        statuses,
        [Some(401), Some(202)],
        "cached old secret, 401, reread, re-signed"
    );
    assert_eq!(record.outcome, AttemptOutcome::Delivered);
    setup.receiver.stop().await;
}

#[tokio::test]
async fn wrong_secret_everywhere_is_permanent_and_never_logged() {
    let setup = setup("", "right", "wrong-secret-value", loopback()).await;
    let result = setup.deliverer.deliver(&body()).await;
    let (kind, record) = failed(result);
    assert_eq!(kind, ErrorKind::Permanent);
    assert_eq!(record.attempts.len(), 2);
    let text = serde_json::to_string(&record).unwrap();
    assert!(!text.contains("wrong-secret-value"));
    setup.receiver.stop().await;
    let lines = records(&setup.record);
    assert!(lines.iter().all(|line| line["status"] == 401));
}
