//! No secret leaks, anywhere the relay writes: `serve` delivers through every path (an HMAC
//! webhook, an API-key webhook, one answering 401 so the secret is reread and the delivery
//! fails), and every log line (at debug), every API answer (incidents, their event logs and
//! execution histories), the audit, the SQLite files and the demo's output are scanned for the
//! webhook secrets, the API key, the serve token and every signature and authorization header
//! sent: no hit.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HMAC_SECRET: &str = "hmac-secret-1a2b3c4d5e";
const REJECTED_SECRET: &str = "rejected-secret-9f8e7d6c";
const API_KEY: &str = "api-key-0011223344556677";
const TOKEN: &str = "serve-token-a1b2c3d4e5f6";
const EVENT: &str = include_str!("../fixtures/metric-alarm.json");

/// What the webhook side saw: every signature and authorization header sent.
#[derive(Default)]
struct Seen {
    credentials: Vec<String>,
}

/// A webhook host: `/hmac` and `/apikey` accept, `/reject` answers 401 as DevOps Agent does to
/// a wrong signature.
async fn webhooks() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    async fn take(State(seen): State<Arc<Mutex<Seen>>>, headers: HeaderMap) {
        let mut seen = seen.lock().unwrap();
        for name in ["x-amzn-event-signature", "authorization"] {
            if let Some(value) = headers.get(name) {
                seen.credentials.push(value.to_str().unwrap().to_owned());
            }
        }
    }
    let router = Router::new()
        .route(
            "/hmac",
            post(|state, headers| async move {
                take(state, headers).await;
                StatusCode::ACCEPTED
            }),
        )
        .route(
            "/apikey",
            post(|state, headers| async move {
                take(state, headers).await;
                StatusCode::ACCEPTED
            }),
        )
        .route(
            "/reject",
            post(|state, headers| async move {
                take(state, headers).await;
                StatusCode::UNAUTHORIZED
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, seen)
}

fn write(path: &Path, document: Value) -> String {
    std::fs::write(path, document.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The metric fixture as an alarm `alarm` of `account`.
fn event(alarm: &str, account: &str) -> String {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    event["account"] = json!(account);
    event["detail"]["alarmName"] = json!(alarm);
    event["resources"] = json!([format!(
        "arn:aws:cloudwatch:us-east-1:{account}:alarm:{alarm}"
    )]);
    event.to_string()
}

/// The texts and bytes that hold any of `secrets`, by name.
fn hits(haystacks: &[(String, Vec<u8>)], secrets: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, bytes) in haystacks {
        for secret in secrets {
            if bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes())
            {
                found.push(format!("{name} holds {}…", &secret[..6.min(secret.len())]));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_signature_key_or_token_is_written_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (webhook, seen) = webhooks().await;
    let default = write(
        &dir.path().join("default.json"),
        json!({ "WEBHOOK_URL": format!("{webhook}/hmac"), "WEBHOOK_SECRET": HMAC_SECRET }),
    );
    let apikey = write(
        &dir.path().join("apikey.json"),
        json!({ "WEBHOOK_URL": format!("{webhook}/apikey"), "WEBHOOK_API_KEY": API_KEY }),
    );
    let reject = write(
        &dir.path().join("reject.json"),
        json!({ "WEBHOOK_URL": format!("{webhook}/reject"), "WEBHOOK_SECRET": REJECTED_SECRET }),
    );
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let db = dir.path().join("relay.db");
    let (out, err) = (dir.path().join("serve.out"), dir.path().join("serve.err"));
    let mut serve = Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-http-loopback"])
        .arg("--db")
        .arg(&db)
        .args(["--secret-file", &default])
        .args(["--destination", &format!("apikey={apikey}")])
        .args(["--destination", &format!("reject={reject}")])
        .args(["--account-destination", "111111111111=apikey"])
        .args(["--account-destination", "222222222222=reject"])
        .args(["--correlation-window", "0", "--token-file"])
        .arg(&token)
        .env("RUST_LOG", "debug")
        .env_remove("ALARM_RELAY_SECRET_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(serve.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap()
        .to_owned();

    let client = alarm_relay::adapters::http_client().unwrap();
    let mut ids = Vec::new();
    for (alarm, account) in [
        ("Leak-Hmac", "123456789012"),
        ("Leak-ApiKey", "111111111111"),
        ("Leak-Rejected", "222222222222"),
    ] {
        let answer: Value = client
            .post(format!("{url}/events"))
            .bearer_auth(TOKEN)
            .body(event(alarm, account))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(answer["incidentId"].as_str().unwrap().to_owned());
    }
    // Each to its end: two delivered, the 401 failed after the secret was reread.
    let mut answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        loop {
            let answer: Value = client
                .get(format!("{url}/incidents/{id}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let status = answer["incident"]["status"].as_str().unwrap_or_default();
            if ["DELIVERED", "FAILED"].contains(&status) {
                answers.push((id.clone(), status.to_owned(), answer));
                break;
            }
            assert!(Instant::now() < deadline, "{id} stuck at {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let statuses: Vec<&str> = answers
        .iter()
        .map(|(_, status, _)| status.as_str())
        .collect();
    assert_eq!(statuses, ["DELIVERED", "DELIVERED", "FAILED"]);

    Command::new("kill")
        .arg(serve.id().to_string())
        .status()
        .unwrap();
    serve.wait().unwrap();
    let mut printed = first.clone();
    stdout.read_to_string(&mut printed).unwrap();
    std::fs::write(&out, &printed).unwrap();
    let audit = Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
        .args(["audit", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(audit.status.success());
    let mut audits = audit.stdout;
    for id in &ids {
        let one = Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
            .args(["audit", "--json", "--incident", id, "--db"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(one.status.success());
        audits.extend(one.stdout);
    }

    let credentials = seen.lock().unwrap().credentials.clone();
    assert!(
        credentials.iter().any(|value| value.starts_with("Bearer "))
            && credentials
                .iter()
                .filter(|value| !value.starts_with("Bearer "))
                .count()
                >= 3,
        "an API key and the signatures (first try, reread, default) were sent: {}",
        credentials.len()
    );
    let mut secrets: Vec<String> = [HMAC_SECRET, REJECTED_SECRET, API_KEY, TOKEN]
        .map(str::to_owned)
        .to_vec();
    secrets.extend(credentials);

    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        ("serve's stdout".into(), printed.into_bytes()),
        ("serve's log".into(), std::fs::read(&err).unwrap()),
        ("audit".into(), audits),
    ];
    for (id, _, answer) in &answers {
        haystacks.push((
            format!("GET /incidents/{id}"),
            answer.to_string().into_bytes(),
        ));
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("relay.db") {
            haystacks.push((name, std::fs::read(&path).unwrap()));
        }
    }
    let log = String::from_utf8_lossy(&haystacks[1].1).into_owned();
    assert!(
        log.contains("DEBUG") && log.lines().count() > 20,
        "the log was written at debug"
    );
    let failed = &answers[2].2;
    assert!(
        failed.to_string().contains("401"),
        "the failure says why: {failed}"
    );
    assert_eq!(hits(&haystacks, &secrets), Vec::<String>::new());
    let control = [("default.json".to_owned(), std::fs::read(&default).unwrap())];
    assert_eq!(
        hits(&control, &secrets),
        ["default.json holds hmac-s…"],
        "the scan finds a secret where there is one"
    );
}

#[test]
fn the_demo_prints_no_secret() {
    for extra in [&[][..], &["--dry-run"][..]] {
        let child = Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
            .arg("demo")
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The demo's webhook secret is `demo-<its pid>`.
        let secret = format!("demo-{}", child.id());
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "demo {extra:?}");
        let haystacks = [
            ("demo's stdout".to_owned(), output.stdout),
            ("demo's log".to_owned(), output.stderr),
        ];
        assert!(haystacks[0].1.len() > 1000);
        assert_eq!(
            hits(&haystacks, &[secret]),
            Vec::<String>::new(),
            "demo {extra:?}"
        );
    }
}
