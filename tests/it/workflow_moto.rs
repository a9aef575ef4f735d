//! `statemachine/incident.asl.json` executed for real by moto's Step Functions interpreter,
//! every Lambda call answered by the project's own handlers (signer, recorder, enricher) in this
//! process, the signer delivering to the local receiver and the enricher reading moto's
//! CloudWatch (or an unreachable one). The definition runs unchanged (its retry timings
//! included); only the `${…}` function ARNs are substituted, as SAM does.

use crate::lambda_api::{LambdaApi, handler};
use crate::moto::Moto;
use crate::workflow_local::{LocalRun, run_local};
use alarm_relay::adapters::aws::{CloudWatchAlarmSource, sdk};
use alarm_relay::adapters::local::SecretFile;
use alarm_relay::adapters::{HttpTransportConfig, ReqwestTransport, SqliteStore, SystemClock};
use alarm_relay::config::{CorrelationConfig, RoutingConfig};
use alarm_relay::delivery::Deliverer;
use alarm_relay::enrich::network::NetworkSettings;
use alarm_relay::event::IncidentId;
use alarm_relay::incident::{EventType, IncidentStatus};
use alarm_relay::intake::Intake;
use alarm_relay::outbox::Dispatcher;
use alarm_relay::ports::IncidentStore;
use alarm_relay::receiver::{FaultPlan, Receiver, ReceiverConfig};
use alarm_relay::secret::CachedSecretSource;
use alarm_relay::signing::WebhookSecret;
use alarm_relay::testing::FakeStarter;
use alarm_relay::{enrich, recorder, signer};
use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const DEFINITION: &str = include_str!("../../statemachine/incident.asl.json");
const METRIC: &str = include_str!("../fixtures/metric-alarm.json");
const ACCOUNT_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function";

/// Where the scenario's enricher reads CloudWatch.
#[derive(Clone, Copy, PartialEq)]
enum Enricher {
    /// moto's CloudWatch, holding the fixture's alarm.
    Works,
    /// A closed port, with the SDK's own retries off: every call fails fast.
    Fails,
}

/// A CloudWatch source whose endpoint refuses connections.
fn unreachable_cloudwatch() -> CloudWatchAlarmSource {
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(sdk::https_client())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled())
        .build();
    CloudWatchAlarmSource::new(aws_sdk_cloudwatch::Client::from_conf(config))
}

struct Run {
    status: ExecutionStatus,
    error: Option<String>,
    history: Vec<HistoryEvent>,
    store: Arc<dyn IncidentStore>,
    received: Vec<Value>,
    calls: Vec<String>,
}

/// Runs one execution of the real definition for the metric fixture's incident.
async fn run(faults: &str, receiver_secret: &str, enricher: Enricher) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let record_path = dir.path().join("received.jsonl");
    let receiver = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: None,
            secret: WebhookSecret::new(receiver_secret),
            record_path: record_path.clone(),
            faults: FaultPlan::parse(faults).unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap();
    let secret_path = dir.path().join("secret.json");
    let document = json!({ "WEBHOOK_URL": receiver.url(), "WEBHOOK_SECRET": "workflow-secret" });
    std::fs::write(&secret_path, document.to_string()).unwrap();

    let store: Arc<dyn IncidentStore> =
        Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
    let dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(FakeStarter::default()),
        Arc::new(SystemClock),
    );
    Intake::new(dispatcher, None)
        .handle(METRIC.as_bytes())
        .await
        .unwrap();

    let clock = Arc::new(SystemClock);
    let deliverer = Arc::new(Deliverer::new(
        Arc::new(CachedSecretSource::new(
            SecretFile::new(&secret_path),
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
    ));
    let signer_store = store.clone();
    let recorder_store = store.clone();
    let enricher_store = store.clone();
    // moto's port is known only once it starts, after the Lambda API it calls.
    let cloudwatch = Arc::new(OnceLock::<CloudWatchAlarmSource>::new());
    let enricher_source = cloudwatch.clone();
    let api = LambdaApi::start(vec![
        (
            "signer",
            handler(move |input| {
                let (deliverer, store) = (deliverer.clone(), signer_store.clone());
                async move {
                    signer::handle(
                        input,
                        &deliverer,
                        &RoutingConfig::default(),
                        store.as_ref(),
                        &SystemClock,
                    )
                    .await
                    .map(|record| serde_json::to_value(record).unwrap())
                    .map_err(|error| (error.name.as_str().to_owned(), error.message))
                }
            }),
        ),
        (
            "recorder",
            handler(move |input| {
                let store = recorder_store.clone();
                async move {
                    recorder::invoke(
                        &input,
                        &CorrelationConfig::default(),
                        store.as_ref(),
                        &SystemClock,
                    )
                    .await
                    .map_err(|error| (error.error_type().to_owned(), error.to_string()))
                }
            }),
        ),
        (
            "enricher",
            handler(move |input: Value| {
                let (source, store) = (enricher_source.clone(), enricher_store.clone());
                async move {
                    let source = source
                        .get()
                        .expect("CloudWatch is set before the execution starts");
                    enrich::handle(
                        input,
                        source,
                        &NetworkSettings::default(),
                        store.as_ref(),
                        &SystemClock,
                    )
                    .await
                    .map_err(|error| (error.error_type().to_owned(), error.to_string()))
                }
            }),
        ),
    ])
    .await;

    let moto = Moto::start_with_env(&[("MOTO_PORT", api.port().to_string())]);
    alarm_relay::adapters::http_client()
        .unwrap()
        .post(format!("{}/moto-api/config", moto.endpoint()))
        .body(r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let source = match enricher {
        Enricher::Works => {
            let client = crate::enrich::client(moto.endpoint());
            crate::enrich::put_nfm_alarm(&client).await;
            CloudWatchAlarmSource::new(client)
        }
        Enricher::Fails => unreachable_cloudwatch(),
    };
    assert!(cloudwatch.set(source).is_ok(), "set once");
    let sfn = sfn_client(moto.endpoint());
    let definition = DEFINITION
        .replace("${EnricherFunctionArn}", &format!("{ACCOUNT_ARN}:enricher"))
        .replace("${SignerFunctionArn}", &format!("{ACCOUNT_ARN}:signer"))
        .replace("${RecorderFunctionArn}", &format!("{ACCOUNT_ARN}:recorder"));
    let machine = sfn
        .create_state_machine()
        .name("incident")
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/incident-workflow")
        .send()
        .await
        .unwrap()
        .state_machine_arn;
    let id = IncidentId::new("NFM-Alarm-EKS-DB", "2026-11-24T10:00:00.000+0000");
    let input = alarm_relay::outbox::execution_input(&id, &serde_json::from_str(METRIC).unwrap());
    let execution = sfn
        .start_execution()
        .state_machine_arn(machine)
        .name("NFM-Alarm-EKS-DB-test")
        .input(input.to_string())
        .send()
        .await
        .unwrap()
        .execution_arn;

    let started = Instant::now();
    let described = loop {
        let described = sfn
            .describe_execution()
            .execution_arn(&execution)
            .send()
            .await
            .unwrap();
        if described.status != ExecutionStatus::Running {
            break described;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "execution still running after 90 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let history = sfn
        .get_execution_history()
        .execution_arn(&execution)
        .send()
        .await
        .unwrap()
        .events;
    receiver.stop().await;
    let received = std::fs::read_to_string(&record_path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    Run {
        status: described.status,
        error: described.error,
        history,
        store,
        received,
        calls: api.calls(),
    }
}

fn sfn_client(endpoint: &str) -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(sdk::https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

fn entered_states(run: &Run) -> Vec<String> {
    run.history
        .iter()
        .filter_map(|event| {
            event
                .state_entered_event_details
                .as_ref()
                .map(|details| details.name.clone())
        })
        .collect()
}

fn task_failures(run: &Run) -> Vec<String> {
    run.history
        .iter()
        .filter(|event| event.r#type == HistoryEventType::TaskFailed)
        .filter_map(|event| {
            event
                .task_failed_event_details
                .as_ref()
                .and_then(|d| d.error.clone())
        })
        .collect()
}

/// The local engine took the same path as moto's interpreter: the same states entered, the
/// same task errors, the same end.
fn assert_agrees(run: &Run, local: &LocalRun) {
    assert_eq!(local.entered, entered_states(run), "states entered");
    assert_eq!(local.task_failures, task_failures(run), "task errors");
    assert_eq!(local.status, run.status.as_str(), "status");
    assert_eq!(local.error, run.error, "error");
}

async fn log(run: &Run) -> Vec<EventType> {
    let id = IncidentId::new("NFM-Alarm-EKS-DB", "2026-11-24T10:00:00.000+0000");
    run.store
        .events(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect()
}

async fn status(run: &Run) -> IncidentStatus {
    let id = IncidentId::new("NFM-Alarm-EKS-DB", "2026-11-24T10:00:00.000+0000");
    run.store.get(&id).await.unwrap().unwrap().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_enriches_delivers_and_records() {
    let run = run("", "workflow-secret", Enricher::Works).await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(
        entered_states(&run),
        ["Enrich", "Correlate", "Route", "Deliver", "Record"]
    );
    assert_eq!(run.calls, ["enricher", "recorder", "signer", "recorder"]);
    assert_agrees(&run, &run_local("", "workflow-secret", None).await);
    assert_eq!(run.received.len(), 1);
    assert_eq!(run.received[0]["signatureValid"], true);
    let enrichment = &run.received[0]["body"]["data"]["enrichment"];
    assert_eq!(enrichment["metric"]["name"], "Timeouts");
    assert_eq!(
        enrichment["alarm"]["threshold"].as_f64(),
        Some(50.0),
        "read from moto's DescribeAlarms: {enrichment}"
    );
    assert_eq!(status(&run).await, IncidentStatus::Delivered);
    assert_eq!(
        log(&run).await,
        [
            EventType::Received,
            EventType::ExecutionStarted,
            EventType::Enriched,
            EventType::Correlated,
            EventType::DeliveryAttempted,
            EventType::Delivered
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_then_delivered() {
    let run = run("503,503", "workflow-secret", Enricher::Works).await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_agrees(&run, &run_local("503,503", "workflow-secret", None).await);
    assert_eq!(
        task_failures(&run),
        ["Webhook.Transient", "Webhook.Transient"]
    );
    let statuses: Vec<_> = run
        .received
        .iter()
        .map(|line| line["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [503, 503, 202]);
    let bodies: std::collections::BTreeSet<_> = run
        .received
        .iter()
        .map(|line| line["bodySha256"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies.len(), 1, "every retry sends the same bytes");
    let attempts = log(&run)
        .await
        .iter()
        .filter(|kind| **kind == EventType::DeliveryAttempted)
        .count();
    assert_eq!(attempts, 3);
    assert_eq!(status(&run).await, IncidentStatus::Delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_fails_the_execution_at_deliver() {
    let run = run("", "not-the-relays-secret", Enricher::Works).await;
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_agrees(&run, &run_local("", "not-the-relays-secret", None).await);
    assert_eq!(run.error.as_deref(), Some("Webhook.Permanent"));
    assert_eq!(
        entered_states(&run),
        ["Enrich", "Correlate", "Route", "Deliver"],
        "no Catch: it fails at Deliver, for redrive"
    );
    assert_eq!(
        task_failures(&run),
        ["Webhook.Permanent"],
        "permanent errors are not retried"
    );
    assert_eq!(
        run.received.len(),
        2,
        "one attempt plus one after rereading the secret"
    );
    assert_eq!(
        run.calls.last().map(String::as_str),
        Some("signer"),
        "Record never ran (the recorder ran only for Correlate)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrichment_failure_still_delivers() {
    let run = run("", "workflow-secret", Enricher::Fails).await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    let unreachable: Arc<dyn alarm_relay::ports::AlarmSource> = Arc::new(unreachable_cloudwatch());
    assert_agrees(
        &run,
        &run_local("", "workflow-secret", Some(unreachable)).await,
    );
    assert_eq!(
        entered_states(&run),
        ["Enrich", "Correlate", "Route", "Deliver", "Record"]
    );
    assert_eq!(
        task_failures(&run),
        ["Enrichment.Throttled"; 4],
        "retried three times, then caught"
    );
    assert!(run.received[0]["body"]["data"].get("enrichment").is_none());
    assert_eq!(status(&run).await, IncidentStatus::Delivered);
    let failures = log(&run)
        .await
        .iter()
        .filter(|kind| **kind == EventType::EnrichmentFailed)
        .count();
    assert_eq!(failures, 4, "every failed attempt is in the log");
}
