//! The `serve`, `send`, `redrive` and `workflow test` commands as users run them: separate
//! processes, a real receiver on loopback, and `serve` killed with SIGKILL mid-stream.

use alarm_relay::receiver::{FaultPlan, Receiver, ReceiverConfig};
use alarm_relay::signing::WebhookSecret;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const METRIC: &str = include_str!("../fixtures/metric-alarm.json");
const SECRET: &str = "serve-secret";
const DEFINITION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/statemachine/incident.asl.json"
);

fn relay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
        .args(args)
        .env_remove("ALARM_RELAY_SECRET_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("the alarm-relay binary runs")
}

/// A running `serve`, the base URL and the first line it printed.
struct Serve {
    child: Child,
    url: String,
    banner: String,
}

impl Serve {
    fn start(db: &Path, secret: &Path) -> Self {
        let (child, url, banner) = crate::serve_process::spawn(db, secret, &[]);
        Self { child, url, banner }
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn receiver(dir: &Path, faults: &str) -> Receiver {
    Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: None,
            secret: WebhookSecret::new(SECRET),
            record_path: dir.join("received.jsonl"),
            faults: FaultPlan::parse(faults).unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap()
}

fn secret_file(dir: &Path, receiver: &Receiver, secret: &str) -> PathBuf {
    let path = dir.join("secret.json");
    let document = json!({ "WEBHOOK_URL": receiver.url(), "WEBHOOK_SECRET": secret });
    std::fs::write(&path, document.to_string()).unwrap();
    path
}

/// The metric fixture for another alarm of another monitor, so each is its own incident and
/// opens its own episode.
fn event_for(alarm: &str) -> String {
    let mut event: Value = serde_json::from_str(METRIC).unwrap();
    event["detail"]["alarmName"] = json!(alarm);
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["MonitorId"] = json!(
        format!("arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/{alarm}")
    );
    event["resources"] = json!([format!(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"
    )]);
    event.to_string()
}

async fn incident_status(client: &reqwest::Client, url: &str, id: &str) -> Option<String> {
    let response = client
        .get(format!("{url}/incidents/{id}"))
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    body["incident"]["status"].as_str().map(str::to_owned)
}

fn accepted(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("received.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line["outcome"] == "accepted")
        .collect()
}

/// POSTs `count` events (alarms `<prefix>-<n>`) to `url`, `pause` apart, until one is not
/// answered; the ids answered so far (acknowledged) are shared as they come.
fn stream(
    client: &reqwest::Client,
    url: &str,
    prefix: &str,
    count: usize,
    pause: Duration,
) -> (tokio::task::JoinHandle<()>, Arc<Mutex<Vec<String>>>) {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let (client, url, prefix, shared) = (
        client.clone(),
        url.to_owned(),
        prefix.to_owned(),
        acknowledged.clone(),
    );
    let task = tokio::spawn(async move {
        for n in 0..count {
            let Ok(response) = client
                .post(format!("{url}/events"))
                .body(event_for(&format!("{prefix}-{n}")))
                .send()
                .await
            else {
                return;
            };
            let Ok(answer) = response.json::<Value>().await else {
                return;
            };
            let id = answer["incidentId"].as_str().unwrap().to_owned();
            shared.lock().unwrap().push(id);
            tokio::time::sleep(pause).await;
        }
    });
    (task, acknowledged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_is_delivered_across_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // Slow answers keep deliveries in flight when the process dies.
    let faults = ["delay=300"; 24].join(",");
    let receiver = receiver(dir.path(), &faults).await;
    let secret = secret_file(dir.path(), &receiver, SECRET);
    let db = dir.path().join("relay.db");
    let client = alarm_relay::adapters::http_client().unwrap();

    let serve = Serve::start(&db, &secret);
    // A stream of events; the process is killed while it still flows. What was answered 202
    // must be delivered; what was not answered was never acknowledged.
    let (stream, acknowledged) = stream(
        &client,
        &serve.url,
        "NFM-Kill",
        40,
        Duration::from_millis(20),
    );
    while acknowledged.lock().unwrap().len() < 8 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    serve.kill();
    stream.await.unwrap();
    let ids = acknowledged.lock().unwrap().clone();
    assert!(ids.len() < 40, "the kill interrupted the stream");

    let serve = Serve::start(&db, &secret);
    assert!(
        !serve.banner.contains("resumed 0 execution(s), started 0"),
        "the kill left work in flight, which the restart picked up: {}",
        serve.banner
    );
    let started = Instant::now();
    for id in &ids {
        while incident_status(&client, &serve.url, id).await.as_deref() != Some("DELIVERED") {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{id} not delivered after the restart"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    drop(serve);
    receiver.stop().await;

    let accepted = accepted(dir.path());
    for id in &ids {
        let copies: Vec<_> = accepted
            .iter()
            .filter(|line| line["incidentId"] == id.as_str())
            .collect();
        assert!(!copies.is_empty(), "{id} reached the receiver");
        assert!(copies.iter().all(|line| line["signatureValid"] == true));
        assert!(
            copies
                .iter()
                .all(|line| line["bodySha256"] == copies[0]["bodySha256"]),
            "a delivery repeated after the kill sends the same bytes (DevOps Agent deduplicates)"
        );
    }
}

/// Sends SIGSTOP or SIGCONT to `child`.
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_files_taken_mid_run_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let faults = ["delay=200"; 16].join(",");
    let receiver = receiver(dir.path(), &faults).await;
    let secret = secret_file(dir.path(), &receiver, SECRET);
    let db = dir.path().join("relay.db");
    let client = alarm_relay::adapters::http_client().unwrap();

    let serve = Serve::start(&db, &secret);
    let (stream, acknowledged) = stream(&client, &serve.url, "NFM-Copy", 30, Duration::ZERO);
    while acknowledged.lock().unwrap().len() < 10 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Frozen, the process's files are what a crash at this instant would leave: every write it
    // made is in them (the page cache), nothing after. Copy the database and its WAL as they are.
    signal(&serve.child, "-STOP");
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    let mut copied = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "relay.db" || name == "relay.db-wal" {
            std::fs::copy(&path, copy.join(&name)).unwrap();
            copied.push(name);
        }
    }
    // Answers already sent were committed first; none can be sent while frozen.
    let ids = acknowledged.lock().unwrap().clone();
    signal(&serve.child, "-CONT");
    copied.sort();
    assert_eq!(copied, ["relay.db", "relay.db-wal"], "WAL mode: both files");
    serve.kill();
    stream.await.unwrap();

    let restarted = Serve::start(&copy.join("relay.db"), &secret);
    assert!(
        !restarted
            .banner
            .contains("resumed 0 execution(s), started 0"),
        "the copy held work in flight, which the restart picked up: {}",
        restarted.banner
    );
    let started = Instant::now();
    for id in &ids {
        while incident_status(&client, &restarted.url, id)
            .await
            .as_deref()
            != Some("DELIVERED")
        {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{id}, acknowledged before the copy, not delivered from it"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    drop(restarted);
    receiver.stop().await;
    let accepted = accepted(dir.path());
    for id in &ids {
        assert!(
            accepted
                .iter()
                .any(|line| line["incidentId"] == id.as_str()),
            "{id} reached the receiver"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_posts_an_event_and_redrive_delivers_a_fixed_failure() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), "").await;
    let secret = secret_file(dir.path(), &receiver, "stale-secret");
    let db = dir.path().join("relay.db");
    let event = dir.path().join("event.json");
    std::fs::write(&event, METRIC).unwrap();

    let serve = Serve::start(&db, &secret);
    let output = relay(&[
        "send",
        "--to",
        &format!("{}/events", serve.url),
        "--event",
        event.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let id = answer["incidentId"].as_str().unwrap().to_owned();
    assert_eq!(answer["status"], "STARTED");
    let client = alarm_relay::adapters::http_client().unwrap();
    let started = Instant::now();
    while incident_status(&client, &serve.url, &id).await.as_deref() != Some("FAILED") {
        assert!(started.elapsed() < Duration::from_secs(60), "not FAILED");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bad = relay(&[
        "send",
        "--to",
        &format!("{}/events", serve.url),
        "--event",
        DEFINITION,
    ]);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "a 400 answer is exit 1: {bad:?}"
    );
    let busy = relay(&[
        "redrive",
        "--db",
        db.to_str().unwrap(),
        "--secret-file",
        secret.to_str().unwrap(),
        "--all-failed",
    ]);
    assert_eq!(
        busy.status.code(),
        Some(2),
        "serve holds the file: {busy:?}"
    );
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use"));
    drop(serve);

    secret_file(dir.path(), &receiver, SECRET);
    let db_arg = db.to_str().unwrap();
    let secret_arg = secret.to_str().unwrap();
    let output = relay(&[
        "redrive",
        "--db",
        db_arg,
        "--secret-file",
        secret_arg,
        "--all-failed",
        "--allow-http-loopback",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(&format!("{id}: DELIVERED")), "{stdout}");
    assert_eq!(accepted(dir.path()).len(), 1);

    let again = relay(&[
        "redrive",
        "--db",
        db_arg,
        "--secret-file",
        secret_arg,
        "--incident",
        &id,
    ]);
    assert_eq!(again.status.code(), Some(0), "still delivered: {again:?}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("not redriven"));
    let missing = relay(&[
        "redrive",
        "--db",
        "/nonexistent.db",
        "--secret-file",
        secret_arg,
        "--all-failed",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    receiver.stop().await;
}

#[test]
fn workflow_test_runs_the_definition_with_step_functions_local_mocks() {
    let dir = tempfile::tempdir().unwrap();
    let mocks = dir.path().join("mocks.json");
    std::fs::write(
        &mocks,
        json!({
            "StateMachines": {"incident": {"TestCases": {
                "HappyPath": {"Enrich": "EnrichOk", "Correlate": "Opened", "Deliver": "DeliverOk", "Record": "RecordOk"},
                "TransientThenOk": {"Enrich": "EnrichOk", "Correlate": "Opened", "Deliver": "DeliverFlaky", "Record": "RecordOk"},
                "Permanent": {"Enrich": "EnrichOk", "Correlate": "Opened", "Deliver": "DeliverRefused"},
                "EnrichDown": {"Enrich": "EnrichFails", "Correlate": "Opened", "Deliver": "DeliverOk", "Record": "RecordOk"},
                "Flap": {"Enrich": "EnrichOk", "Correlate": "Flapping"},
                "Resolve": {"Enrich": "EnrichOk", "Correlate": "AllRecovered", "ConfirmResolve": "Resolved", "Deliver": "DeliverOk", "Record": "RecordResolved"},
                "Reentered": {"Enrich": "EnrichOk", "Correlate": "AllRecovered", "ConfirmResolve": "ResolveCancelled"}
            }}},
            "MockedResponses": {
                "Opened": {"0": {"Return": {"StatusCode": 200, "Payload": {"decision": "opened", "action": "created"}}}},
                "Flapping": {"0": {"Return": {"StatusCode": 200, "Payload": {"decision": "flapping", "action": "none"}}}},
                "AllRecovered": {"0": {"Return": {"StatusCode": 200, "Payload": {"decision": "resolve-pending", "action": "resolve-pending", "quietSeconds": 300}}}},
                "Resolved": {"0": {"Return": {"StatusCode": 200, "Payload": {"decision": "resolved", "action": "resolved"}}}},
                "ResolveCancelled": {"0": {"Return": {"StatusCode": 200, "Payload": {"decision": "resolve-cancelled", "action": "none"}}}},
                "RecordResolved": {"0": {"Return": {"StatusCode": 200, "Payload": {"status": "RESOLVED"}}}},
                "EnrichOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"metric": {"name": "Timeouts"}}}}},
                "EnrichFails": {"0": {"Throw": {"Error": "Enrichment.Failed", "Cause": "no CloudWatch"}}},
                "DeliverOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"bodySha256": "abc"}}}},
                "DeliverFlaky": {
                    "0-1": {"Throw": {"Error": "Webhook.Transient", "Cause": "503"}},
                    "2": {"Return": {"StatusCode": 200, "Payload": {"bodySha256": "abc"}}}
                },
                "DeliverRefused": {"0": {"Throw": {"Error": "Webhook.Permanent", "Cause": "401"}}},
                "RecordOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"status": "DELIVERED"}}}}
            }
        })
        .to_string(),
    )
    .unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        json!({"incidentId": "i-1", "event": {"detail": {}}}).to_string(),
    )
    .unwrap();
    let run = |case: &str| -> Value {
        let output = relay(&[
            "workflow",
            "test",
            "--definition",
            DEFINITION,
            "--mock-config",
            mocks.to_str().unwrap(),
            "--state-machine",
            "incident",
            "--case",
            case,
            "--input",
            input.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let task_failures = |report: &Value| -> Vec<String> {
        report["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["type"] == "TaskFailed")
            .map(|event| {
                event["taskFailedEventDetails"]["error"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };

    let happy = run("HappyPath");
    assert_eq!(happy["status"], "SUCCEEDED", "{happy}");
    assert_eq!(happy["output"]["recorded"], json!({"status": "DELIVERED"}));
    assert_eq!(
        happy["output"]["enriched"]["enrichment"]["metric"]["name"],
        "Timeouts"
    );

    let flaky = run("TransientThenOk");
    assert_eq!(flaky["status"], "SUCCEEDED");
    assert_eq!(
        task_failures(&flaky),
        ["Webhook.Transient", "Webhook.Transient"]
    );

    let permanent = run("Permanent");
    assert_eq!(permanent["status"], "FAILED");
    assert_eq!(permanent["error"], "Webhook.Permanent");
    assert_eq!(permanent["cause"], "401");
    assert_eq!(task_failures(&permanent), ["Webhook.Permanent"]);

    let entered = |report: &Value| -> Vec<String> {
        report["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["type"].as_str().unwrap().ends_with("StateEntered"))
            .map(|event| {
                event["stateEnteredEventDetails"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let flap = run("Flap");
    assert_eq!(flap["status"], "SUCCEEDED");
    assert_eq!(entered(&flap), ["Enrich", "Correlate", "Route", "Done"]);
    let resolve = run("Resolve");
    assert_eq!(resolve["status"], "SUCCEEDED", "{resolve}");
    assert_eq!(
        entered(&resolve),
        [
            "Enrich",
            "Correlate",
            "Route",
            "QuietPeriod",
            "ConfirmResolve",
            "IsResolved",
            "Deliver",
            "Record"
        ]
    );
    assert_eq!(resolve["output"]["recorded"], json!({"status": "RESOLVED"}));
    let reentered = run("Reentered");
    assert_eq!(
        entered(&reentered),
        [
            "Enrich",
            "Correlate",
            "Route",
            "QuietPeriod",
            "ConfirmResolve",
            "IsResolved",
            "Done"
        ]
    );

    let enrich_down = run("EnrichDown");
    assert_eq!(enrich_down["status"], "SUCCEEDED");
    assert_eq!(
        enrich_down["output"]["enriched"]["Error"],
        "Enrichment.Failed"
    );

    let unknown = relay(&[
        "workflow",
        "test",
        "--definition",
        DEFINITION,
        "--mock-config",
        mocks.to_str().unwrap(),
        "--state-machine",
        "incident",
        "--case",
        "Nope",
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("Nope"));
}
