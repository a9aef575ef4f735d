//! The `alarm-relay` command line as users' scripts see it: bytes on stdout, one line on
//! stderr, exit codes 0/1/2.

use alarm_relay::event::AlarmEvent;
use alarm_relay::payload::WebhookBody;
use alarm_relay::signing::{WebhookSecret, sign};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SECRET: &str = "cli-test-secret";
const TS: &str = "2026-11-24T10:00:00.000Z";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn relay(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
        .args(args)
        .env_remove("ALARM_RELAY_SECRET_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the alarm-relay binary runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        let files = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        files.write(
            "secret.json",
            format!(
                r#"{{"WEBHOOK_URL":"https://example.invalid/hook","WEBHOOK_SECRET":"{SECRET}"}}"#
            )
            .as_bytes(),
        );
        files
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn secret(&self) -> String {
        self.dir
            .path()
            .join("secret.json")
            .to_str()
            .unwrap()
            .to_owned()
    }
}

fn assert_bad_input(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "stdout must stay empty on bad input"
    );
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "{stderr:?} should mention {needle:?}"
    );
    assert!(!stderr.contains("panicked"));
}

fn metric_body() -> Vec<u8> {
    let bytes = std::fs::read(fixture("metric-alarm.json")).unwrap();
    WebhookBody::render(&AlarmEvent::parse(&bytes).unwrap())
        .as_bytes()
        .to_vec()
}

#[test]
fn render_prints_exact_body_from_file_and_stdin() {
    let from_file = relay(
        &[
            "render",
            "--event",
            fixture("metric-alarm.json").to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(from_file.status.code(), Some(0));
    assert_eq!(
        from_file.stdout,
        metric_body(),
        "exact bytes, no trailing newline"
    );
    let from_stdin = relay(
        &["render"],
        &std::fs::read(fixture("metric-alarm.json")).unwrap(),
    );
    assert_eq!(from_stdin.stdout, metric_body());
}

#[test]
fn render_accepts_non_alarm_states() {
    let event = std::fs::read_to_string(fixture("metric-alarm.json"))
        .unwrap()
        .replacen("\"value\": \"ALARM\"", "\"value\": \"OK\"", 1);
    let output = relay(&["render"], event.as_bytes());
    assert_eq!(output.status.code(), Some(0));
    assert!(
        String::from_utf8(output.stdout)
            .unwrap()
            .contains("\"newState\": \"OK\"")
    );
}

#[test]
fn render_refuses_bad_events_with_one_line() {
    assert_bad_input(&relay(&["render"], b"{\"detail-type\": "), "not valid JSON");
    assert_bad_input(&relay(&["render"], b"[] []"), "not valid JSON");
    assert_bad_input(
        &relay(&["render"], br#"{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{}}"#),
        "detail-type",
    );
    assert_bad_input(
        &relay(&["render", "--event", "/nonexistent/event.json"], b""),
        "/nonexistent/event.json",
    );
    let huge = vec![b' '; 300 * 1024];
    assert_bad_input(&relay(&["render"], &huge), "over the 262144-byte");
}

#[test]
fn sign_matches_the_library_and_reads_the_env_secret() {
    let files = Files::new();
    let body = files.write("body.json", &metric_body());
    let expected = format!(
        "{}\n",
        sign(&WebhookSecret::new(SECRET), TS, &metric_body()).expose()
    );
    let output = relay(
        &[
            "sign",
            "--secret-file",
            &files.secret(),
            "--timestamp",
            TS,
            "--body-file",
            &body,
        ],
        b"",
    );
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);

    let via_env = Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
        .args(["sign", "--timestamp", TS, "--body-file", &body])
        .env("ALARM_RELAY_SECRET_FILE", files.secret())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(via_env.stdout).unwrap(), expected);
}

#[test]
fn sign_refuses_bad_timestamps_and_secret_files() {
    let files = Files::new();
    assert_bad_input(
        &relay(
            &[
                "sign",
                "--secret-file",
                &files.secret(),
                "--timestamp",
                "2026-11-24T10:00:00Z",
            ],
            b"{}",
        ),
        "%Y-%m-%dT%H:%M:%S.000Z",
    );
    let broken = files.write(
        "broken.json",
        br#"{"WEBHOOK_SECRET": 42, "WEBHOOK_URL": "https://x"}"#,
    );
    assert_bad_input(
        &relay(
            &["sign", "--secret-file", &broken, "--timestamp", TS],
            b"{}",
        ),
        "WEBHOOK_SECRET must be a non-empty string",
    );
    assert_bad_input(
        &relay(
            &[
                "sign",
                "--secret-file",
                "/nonexistent/s.json",
                "--timestamp",
                TS,
            ],
            b"{}",
        ),
        "/nonexistent/s.json",
    );
}

#[test]
fn verify_says_valid_or_what_does_not_match() {
    let files = Files::new();
    let body = metric_body();
    let signature = sign(&WebhookSecret::new(SECRET), TS, &body);
    let secret = files.secret();
    let verify = |timestamp: &str, signature: &str, body: &[u8]| {
        relay(
            &[
                "verify",
                "--secret-file",
                &secret,
                "--timestamp",
                timestamp,
                "--signature",
                signature,
            ],
            body,
        )
    };

    let valid = verify(TS, signature.expose(), &body);
    assert_eq!(valid.status.code(), Some(0));
    assert_eq!(valid.stdout, b"valid\n");

    let mut tampered = body.clone();
    tampered.push(b' ');
    let mismatch = verify(TS, signature.expose(), &tampered);
    assert_eq!(mismatch.status.code(), Some(1));
    let line = String::from_utf8(mismatch.stdout).unwrap();
    assert_eq!(line.lines().count(), 1);
    assert!(line.contains("does not match"), "{line}");
    assert!(!line.contains(SECRET) && !line.contains(signature.expose()));

    let mut with_newline = body.clone();
    with_newline.push(b'\n');
    let newline = String::from_utf8(verify(TS, signature.expose(), &with_newline).stdout).unwrap();
    assert!(newline.contains("trailing newline"), "{newline}");

    let other_time = verify("2026-11-24T10:00:01.000Z", signature.expose(), &body);
    assert_eq!(other_time.status.code(), Some(1));

    let malformed_ts =
        String::from_utf8(verify("2026-11-24T10:00:00.123Z", signature.expose(), &body).stdout)
            .unwrap();
    assert!(malformed_ts.contains("not in the format"), "{malformed_ts}");

    let hex = String::from_utf8(verify(TS, "deadbeef", &body).stdout).unwrap();
    assert!(hex.contains("not standard base64"), "{hex}");
}

#[test]
fn receiver_answers_like_devops_agent_and_records_each_request() {
    let files = Files::new();
    let record = files.dir.path().join("received.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
        .args([
            "receiver",
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
            &files.secret(),
        ])
        .args([
            "--record",
            record.to_str().unwrap(),
            "--faults",
            "503:retry-after=3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let url = first_line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{first_line}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let statuses = runtime.block_on(async {
        let client = alarm_relay::adapters::http_client().unwrap();
        let post = |body: Vec<u8>, timestamp: Option<String>, signature: Option<String>| {
            let mut request = client.post(&url).body(body);
            if let Some(timestamp) = timestamp {
                request = request.header("x-amzn-event-timestamp", timestamp);
            }
            if let Some(signature) = signature {
                request = request.header("x-amzn-event-signature", signature);
            }
            async move {
                let response = request.send().await.unwrap();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (response.status().as_u16(), retry_after)
            }
        };
        let now = alarm_relay::signing::event_timestamp(chrono::Utc::now());
        let good = |body: &[u8]| {
            sign(&WebhookSecret::new(SECRET), &now, body)
                .expose()
                .to_owned()
        };
        let body = metric_body();
        vec![
            post(body.clone(), Some(now.clone()), Some(good(&body))).await,
            post(body.clone(), Some(now.clone()), Some(good(&body))).await,
            post(body.clone(), None, Some(good(&body))).await,
            post(body.clone(), Some(now.clone()), None).await,
            post(body.clone(), Some(now.clone()), Some(good(b"other"))).await,
            post(
                body.clone(),
                Some(TS.to_owned()),
                Some(
                    sign(&WebhookSecret::new(SECRET), TS, &body)
                        .expose()
                        .to_owned(),
                ),
            )
            .await,
            post(
                b"not json".to_vec(),
                Some(now.clone()),
                Some(good(b"not json")),
            )
            .await,
        ]
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let codes: Vec<u16> = statuses.iter().map(|(code, _)| *code).collect();
    assert_eq!(codes, [503, 202, 401, 401, 401, 401, 400]);
    assert_eq!(statuses[0].1.as_deref(), Some("3"));

    let text = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0]["fault"], "503:retry-after=3");
    assert_eq!(lines[1]["outcome"], "accepted");
    assert_eq!(lines[1]["signatureValid"], true);
    assert_eq!(
        lines[1]["incidentId"],
        "NFM-Alarm-EKS-DB-2026-11-24T10:00:00.000+0000"
    );
    assert!(
        lines[5]["error"]
            .as_str()
            .unwrap()
            .contains("away from the receiver's clock")
    );
    assert_eq!(lines[6]["outcome"], "bad-json");
    assert!(!text.contains(SECRET), "the record never holds the secret");
}

#[test]
fn receiver_refuses_bad_options() {
    let files = Files::new();
    let record = files.dir.path().join("r.jsonl");
    let record = record.to_str().unwrap();
    assert_bad_input(
        &relay(
            &[
                "receiver",
                "--listen",
                "127.0.0.1:0",
                "--secret-file",
                &files.secret(),
                "--record",
                record,
                "--faults",
                "999",
            ],
            b"",
        ),
        "--faults",
    );
    assert_bad_input(
        &relay(
            &[
                "receiver",
                "--listen",
                "nowhere",
                "--secret-file",
                &files.secret(),
                "--record",
                record,
            ],
            b"",
        ),
        "--listen",
    );
}

#[test]
fn demo_delivers_every_sample_exactly_once() {
    let output = relay(&["demo"], b"");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("HTTP 503"), "{stdout}");
    assert!(stdout.contains("connection"), "{stdout}");
    assert!(stdout.contains("demo ok"), "{stdout}");
}

/// A SQLite store with one started ALARM incident, one ignored OK incident and one rejected input.
fn audited_store(files: &Files) -> String {
    use alarm_relay::adapters::SqliteStore;
    use alarm_relay::intake::Intake;
    use alarm_relay::outbox::Dispatcher;
    use alarm_relay::testing::{FakeStarter, FixedClock};
    use std::sync::Arc;

    let path = files.dir.path().join("relay.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let clock = Arc::new(FixedClock::at("2026-11-24T10:00:05Z"));
        let intake = Intake::new(
            Dispatcher::new(store, Arc::new(FakeStarter::default()), clock.clone()),
            None,
        );
        let alarm = std::fs::read_to_string(fixture("metric-alarm.json")).unwrap();
        intake.handle(alarm.as_bytes()).await.unwrap();
        clock.advance(std::time::Duration::from_secs(1));
        let ok = std::fs::read_to_string(fixture("metric-math-alarm.json"))
            .unwrap()
            .replacen("\"value\": \"ALARM\"", "\"value\": \"OK\"", 1);
        intake.handle(ok.as_bytes()).await.unwrap();
        clock.advance(std::time::Duration::from_secs(1));
        intake.handle(b"not an event").await.unwrap();
    });
    path.to_str().unwrap().to_owned()
}

#[test]
fn audit_shows_one_incident_with_its_event_log() {
    let files = Files::new();
    let db = audited_store(&files);
    let id = "NFM-Alarm-EKS-DB-2026-11-24T10:00:00.000+0000";
    let output = relay(&["audit", "--db", &db, "--incident", id, "--json"], b"");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["incident"]["status"], "STARTED");
    let types: Vec<_> = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Received", "ExecutionStarted"]);
    assert_eq!(json["events"][0]["seq"], 1);

    let text =
        String::from_utf8(relay(&["audit", "--db", &db, "--incident", id], b"").stdout).unwrap();
    assert!(text.contains("status     STARTED"), "{text}");
    assert!(text.contains("ExecutionStarted"), "{text}");

    let missing = relay(&["audit", "--db", &db, "--incident", "nope"], b"");
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(missing.stdout).unwrap(),
        "no incident nope\n"
    );
}

#[test]
fn audit_lists_by_status_and_by_alarm_and_finds_rejected_inputs() {
    let files = Files::new();
    let db = audited_store(&files);
    let list = |args: &[&str]| {
        let mut all = vec!["audit", "--db", db.as_str(), "--json"];
        all.extend_from_slice(args);
        let output = relay(&all, b"");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json["incidents"].as_array().unwrap().clone()
    };
    let rejected = list(&["--status", "REJECTED"]);
    assert_eq!(rejected.len(), 1);
    assert!(
        rejected[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert_eq!(list(&["--status", "ignored"])[0]["stateValue"], "OK");
    assert_eq!(list(&["--alarm", "NFM-Alarm-EKS-DB"]).len(), 1);
    let everything = list(&[]);
    assert_eq!(everything.len(), 3);
    assert_eq!(everything[0]["status"], "REJECTED", "newest first");
    // Both alarms are of account 123456789012; a rejected input has none.
    assert_eq!(list(&["--account", "123456789012"]).len(), 2);
    assert!(list(&["--account", "111122223333"]).is_empty());
    assert_eq!(
        list(&["--alarm", "NFM-Alarm-EKS-DB", "--account", "123456789012"]).len(),
        1
    );
}

#[test]
fn audit_refuses_a_missing_database_and_an_unknown_status() {
    let files = Files::new();
    assert_bad_input(
        &relay(&["audit", "--db", "/nonexistent/relay.db"], b""),
        "no database at",
    );
    let db = audited_store(&files);
    assert_bad_input(
        &relay(&["audit", "--db", &db, "--status", "LOST"], b""),
        "unknown status",
    );
}
