//! The Secrets Manager adapter against moto's Secrets Manager: the document, rotation through
//! the TTL cache's refresh, and the classification of failures. Then the signer's whole
//! handler with its secret there and the local receiver as the webhook.

use crate::moto::Moto;
use alarm_relay::adapters::aws::{SecretsManagerFetcher, sdk};
use alarm_relay::adapters::{HttpTransportConfig, ReqwestTransport, SystemClock};
use alarm_relay::config::RoutingConfig;
use alarm_relay::delivery::{AttemptOutcome, Deliverer, DeliveryMode};
use alarm_relay::event::AlarmEvent;
use alarm_relay::payload::WebhookBody;
use alarm_relay::ports::{SecretFetcher, SecretSource};
use alarm_relay::receiver::{FaultPlan, Receiver, ReceiverConfig};
use alarm_relay::secret::{ApiKey, CachedSecretSource, SecretError, WebhookAuth};
use alarm_relay::signer::{self, ErrorName};
use alarm_relay::signing::WebhookSecret;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

fn client(endpoint: &str) -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(sdk::https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .build();
    Client::from_conf(config)
}

fn document(url: &str, secret: &str) -> String {
    serde_json::json!({"WEBHOOK_URL": url, "WEBHOOK_SECRET": secret}).to_string()
}

async fn create(client: &Client, name: &str, value: &str) -> String {
    client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("moto creates the secret")
        .arn
        .expect("an ARN")
}

#[tokio::test]
async fn fetches_the_document_and_rereads_it_after_rotation() {
    let moto = Moto::start();
    let client = client(moto.endpoint());
    let arn = create(
        &client,
        "devops-agent-webhook",
        &document("https://hook.example/x", "v1"),
    )
    .await;
    let source = CachedSecretSource::new(
        SecretsManagerFetcher::new(client.clone(), arn.clone()),
        Arc::new(SystemClock),
        Duration::from_secs(300),
    );
    assert_eq!(
        source.webhook_config().await.unwrap().auth,
        WebhookAuth::Hmac(WebhookSecret::new("v1"))
    );

    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(document("https://hook.example/x", "v2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        source.webhook_config().await.unwrap().auth,
        WebhookAuth::Hmac(WebhookSecret::new("v1")),
        "cached"
    );
    assert_eq!(
        source.refresh().await.unwrap().auth,
        WebhookAuth::Hmac(WebhookSecret::new("v2")),
        "reread"
    );
}

#[tokio::test]
async fn failures_are_classified_without_leaking_the_document() {
    let moto = Moto::start();
    let client = client(moto.endpoint());
    let missing = SecretsManagerFetcher::new(client.clone(), "no-such-secret");
    assert_eq!(
        missing.fetch().await,
        Err(SecretError::Denied("ResourceNotFoundException".into()))
    );

    create(&client, "not-json", "hunter2 is the password").await;
    let source = CachedSecretSource::new(
        SecretsManagerFetcher::new(client, "not-json"),
        Arc::new(SystemClock),
        Duration::from_secs(300),
    );
    let error = source.webhook_config().await.unwrap_err();
    assert!(matches!(error, SecretError::Malformed(_)), "{error}");
    assert!(!error.to_string().contains("hunter2"));

    drop(moto);
    let unreachable = SecretsManagerFetcher::new(client_for_closed_port(), "anything");
    assert!(matches!(
        unreachable.fetch().await,
        Err(SecretError::Unavailable(_))
    ));
}

fn client_for_closed_port() -> Client {
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    client(&format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn signer_handler_delivers_with_its_secret_in_secrets_manager() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: None,
            secret: WebhookSecret::new("agent-secret"),
            record_path: dir.path().join("received.jsonl"),
            faults: FaultPlan::parse("503").unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap();
    let client = client(moto.endpoint());
    let arn = create(&client, "hook", &document(&receiver.url(), "agent-secret")).await;
    let clock = Arc::new(SystemClock);
    let deliverer = Deliverer::new(
        Arc::new(CachedSecretSource::new(
            SecretsManagerFetcher::new(client, arn),
            clock.clone(),
            Duration::from_secs(300),
        )),
        Arc::new(
            ReqwestTransport::new(HttpTransportConfig {
                allow_http_loopback: true,
                ..HttpTransportConfig::default()
            })
            .unwrap(),
        ),
        clock,
    );
    let composite = include_str!("../fixtures/composite-alarm.json");
    let store = alarm_relay::adapters::SqliteStore::open_in_memory().unwrap();
    let store: Arc<dyn alarm_relay::ports::IncidentStore> = Arc::new(store);
    let dispatcher = alarm_relay::outbox::Dispatcher::new(
        store.clone(),
        Arc::new(alarm_relay::testing::FakeStarter::default()),
        Arc::new(SystemClock),
    );
    alarm_relay::intake::Intake::new(dispatcher, None)
        .handle(composite.as_bytes())
        .await
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(composite).unwrap();
    let input = serde_json::json!({ "event": event });

    let error = signer::handle(
        input.clone(),
        &deliverer,
        &RoutingConfig::default(),
        store.as_ref(),
        &SystemClock,
    )
    .await
    .unwrap_err();
    assert_eq!(error.name, ErrorName::WebhookTransient);
    let record = signer::handle(
        input,
        &deliverer,
        &RoutingConfig::default(),
        store.as_ref(),
        &SystemClock,
    )
    .await
    .unwrap();
    assert_eq!(record.outcome, AttemptOutcome::Delivered);
    assert_eq!(record.last().status_code, Some(202));
    receiver.stop().await;
}

#[tokio::test]
async fn an_api_key_secret_delivers_with_a_bearer_key_and_a_dry_run_sends_nothing() {
    // GIVEN an API-key webhook's secret in Secrets Manager and a receiver expecting its key
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let record_path = dir.path().join("received.jsonl");
    let receiver = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: Some(ApiKey::new("agent-api-key")),
            secret: WebhookSecret::new(String::new()),
            record_path: record_path.clone(),
            faults: FaultPlan::parse("").unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap();
    let client = client(moto.endpoint());
    let document =
        serde_json::json!({"WEBHOOK_URL": receiver.url(), "WEBHOOK_API_KEY": "agent-api-key"});
    let arn = create(&client, "api-key-hook", &document.to_string()).await;
    let clock = Arc::new(SystemClock);
    let secrets = Arc::new(CachedSecretSource::new(
        SecretsManagerFetcher::new(client, arn),
        clock.clone(),
        Duration::from_secs(300),
    ));
    assert_eq!(
        secrets.webhook_config().await.unwrap().auth,
        WebhookAuth::ApiKey(ApiKey::new("agent-api-key"))
    );
    let transport = Arc::new(
        ReqwestTransport::new(HttpTransportConfig {
            allow_http_loopback: true,
            ..HttpTransportConfig::default()
        })
        .unwrap(),
    );
    let live = Deliverer::new(secrets.clone(), transport.clone(), clock.clone());
    let dry = Deliverer::new(secrets, transport, clock).with_mode(DeliveryMode::DryRun);
    let metric = include_str!("../fixtures/metric-alarm.json");
    let body = WebhookBody::render(&AlarmEvent::parse(metric.as_bytes()).unwrap());

    // WHEN it is delivered live, THEN the receiver accepts it on the key, with no signature
    let record = live.deliver(&body).await.unwrap();
    assert_eq!(record.outcome, AttemptOutcome::Delivered);
    assert_eq!(record.last().auth.as_deref(), Some("api-key"));
    assert_eq!(record.last().event_timestamp, None);
    // WHEN it is a dry run, THEN nothing more arrives and the record says what would have
    let dry_record = dry.deliver(&body).await.unwrap();
    assert_eq!(dry_record.outcome, AttemptOutcome::DryRun);
    let would = dry_record.last().dry_run.clone().unwrap();
    assert_eq!(would.auth, "api-key");
    assert_eq!(would.body_sha256, body.sha256_hex());
    assert_eq!(would.headers["authorization"], "Bearer [redacted]");
    receiver.stop().await;
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&record_path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "accepted");
    assert_eq!(lines[0]["signatureValid"], true);
    assert!(lines[0].get("eventTimestamp").is_none());
    let records = serde_json::to_string(&(record, dry_record)).unwrap();
    assert!(!records.contains("agent-api-key"), "{records}");
}
