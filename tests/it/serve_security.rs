//! `serve`'s API is not open by default, and no client can hold it: a non-loopback listener
//! without a token is refused at start, a token guards every route but `/healthz` (and never
//! shows in the output), and slow or many clients meet the connection limits.

use alarm_relay::config::CorrelationConfig;
use alarm_relay::engine::pipeline::{Pipeline, PipelineConfig};
use alarm_relay::event::IncidentId;
use alarm_relay::incident::IncidentStatus;
use alarm_relay::secret::ApiKey;
use alarm_relay::server::{Access, Limits, router_with, serve};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "serve-token-6f1d2c9a";
const EVENT: &str = include_str!("../fixtures/metric-alarm.json");

fn secret_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("secret.json");
    let document =
        json!({ "WEBHOOK_URL": "http://127.0.0.1:9/webhook", "WEBHOOK_SECRET": "s3cr3t-webhook" });
    std::fs::write(&path, document.to_string()).unwrap();
    path
}

fn serve_command(dir: &Path, listen: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alarm-relay"));
    command
        .args(["serve", "--listen", listen, "--allow-http-loopback", "--db"])
        .arg(dir.join("relay.db"))
        .arg("--secret-file")
        .arg(secret_file(dir))
        .args(extra)
        .env_remove("ALARM_RELAY_SECRET_FILE")
        .stdin(Stdio::null());
    command
}

/// Runs a `serve` that must refuse to start: its exit code and what it printed.
fn refused(dir: &Path, listen: &str, extra: &[&str]) -> (i32, String, String) {
    let output = serve_command(dir, listen, extra).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_non_loopback_listener_without_a_token_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = refused(dir.path(), "0.0.0.0:0", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--token-file") && stderr.contains("--insecure-no-auth"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("relay.db").exists(),
        "refused before anything is opened"
    );

    let token = dir.path().join("token");
    std::fs::write(&token, "  \n").unwrap();
    let (code, _, stderr) = refused(
        dir.path(),
        "127.0.0.1:0",
        &["--token-file", token.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("the token file is empty"), "{stderr}");
    std::fs::write(&token, TOKEN).unwrap();
    let (code, _, stderr) = refused(
        dir.path(),
        "0.0.0.0:0",
        &[
            "--token-file",
            token.to_str().unwrap(),
            "--insecure-no-auth",
        ],
    );
    assert_eq!(code, 2, "the two options exclude each other: {stderr}");
}

#[test]
fn insecure_no_auth_listens_anywhere_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_command(dir.path(), "0.0.0.0:0", &["--insecure-no-auth"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("serving on http://0.0.0.0:"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("warning: --insecure-no-auth: anyone who reaches"),
        "{stderr}"
    );
}

#[test]
fn the_token_guards_every_route_but_healthz_and_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, EVENT).unwrap();
    let mut child = serve_command(
        dir.path(),
        "127.0.0.1:0",
        &["--token-file", token.to_str().unwrap()],
    )
    .env("RUST_LOG", "debug")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap()
        .to_owned();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let statuses = runtime.block_on(async {
        let client = alarm_relay::adapters::http_client().unwrap();
        let id = "NFM-Alarm-EKS-DB-2026-11-24T10:00:00.000+0000";
        let mut statuses = Vec::new();
        for authorization in [None, Some("Bearer wrong"), Some(TOKEN), Some("bearer x")] {
            for (method, path) in [
                ("POST", "/events".to_owned()),
                ("GET", format!("/incidents/{id}")),
                ("POST", format!("/incidents/{id}/redrive")),
            ] {
                let mut request = client
                    .request(method.parse().unwrap(), format!("{url}{path}"))
                    .body(EVENT);
                if let Some(value) = authorization {
                    request = request.header("authorization", value);
                }
                let response = request.send().await.unwrap();
                if response.status() == 401 {
                    assert_eq!(response.headers()["www-authenticate"], "Bearer");
                }
                statuses.push(response.status().as_u16());
            }
        }
        let health = client.get(format!("{url}/healthz")).send().await.unwrap();
        statuses.push(health.status().as_u16());
        statuses
    });
    assert_eq!(
        statuses,
        [
            401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 200
        ]
    );

    // With the token (`Bearer <token>`, as `send --token-file` sends it).
    let sent = Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
        .args(["send", "--to", &format!("{url}/events"), "--event"])
        .arg(&event)
        .arg("--token-file")
        .arg(&token)
        .output()
        .unwrap();
    assert_eq!(
        sent.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let answer: Value = serde_json::from_slice(&sent.stdout).unwrap();
    assert_eq!(
        answer["incidentId"],
        "NFM-Alarm-EKS-DB-2026-11-24T10:00:00.000+0000"
    );
    let unsent = Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
        .args(["send", "--to", &format!("{url}/events"), "--event"])
        .arg(&event)
        .output()
        .unwrap();
    assert_eq!(unsent.status.code(), Some(1), "no token: 401");

    child.kill().unwrap();
    child.wait().unwrap();
    let mut printed = String::new();
    stdout.read_to_string(&mut printed).unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut printed)
        .unwrap();
    assert!(
        printed.contains("unauthorized request refused"),
        "refusals are logged: {printed}"
    );
    assert!(!printed.contains(TOKEN), "the token is never printed");
    let db = std::fs::read(dir.path().join("relay.db")).unwrap();
    assert!(
        !db.windows(TOKEN.len())
            .any(|window| window == TOKEN.as_bytes()),
        "nor stored"
    );
}

/// An in-process serve over a fresh pipeline with `limits`, guarded by [`TOKEN`] when
/// `guarded`.
struct Served {
    _dir: tempfile::TempDir,
    pipeline: Pipeline,
    address: SocketAddr,
}

impl Served {
    async fn start(limits: Limits, guarded: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = Pipeline::open(&PipelineConfig {
            db: dir.path().join("relay.db"),
            secret_file: secret_file(dir.path()),
            allow_http_loopback: true,
            correlation: CorrelationConfig::default(),
            delivery_mode: alarm_relay::delivery::DeliveryMode::DryRun,
            destinations: Default::default(),
            routing: Default::default(),
            network: Default::default(),
        })
        .unwrap();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let access = if guarded {
            Access::Token(Arc::new(ApiKey::new(TOKEN)))
        } else {
            Access::Open
        };
        let router = router_with(pipeline.clone(), access, limits.body_timeout);
        tokio::spawn(serve(listener, router, limits, std::future::pending()));
        Self {
            _dir: dir,
            pipeline,
            address,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address).await.unwrap()
    }
}

fn tight() -> Limits {
    Limits {
        max_connections: 2,
        header_timeout: Duration::from_millis(300),
        max_header_bytes: 8 * 1024,
        body_timeout: Duration::from_millis(300),
    }
}

/// Reads until the peer closes; `None` if it did not within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut read = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut read))
        .await
        .ok()
        .map(|_| read)
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let served = Served::start(tight(), false).await;
    let mut slow = served.connect().await;
    slow.write_all(b"POST /events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut slow, Duration::from_secs(5))
            .await
            .is_some(),
        "the connection is closed"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // An idle keep-alive connection is closed too.
    let mut idle = served.connect().await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut idle, Duration::from_secs(5)).await;
    let answer = String::from_utf8(answer.expect("closed once idle")).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let limits = Limits {
        header_timeout: Duration::from_secs(2),
        ..tight()
    };
    let served = Served::start(limits, false).await;
    let mut holders = Vec::new();
    for _ in 0..limits.max_connections {
        let mut holder = served.connect().await;
        holder
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        holders.push(holder);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = alarm_relay::adapters::http_client().unwrap();
    let url = format!("http://{}/healthz", served.address);
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let status = client.get(url).send().await.unwrap().status().as_u16();
        (status, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "no slot while both are held");
    drop(holders.pop());
    let (status, waited) = waiting.await.unwrap();
    assert_eq!(status, 200);
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
}

#[tokio::test]
async fn a_body_that_trickles_is_answered_408_and_recorded() {
    let served = Served::start(tight(), false).await;
    let mut stream = served.connect().await;
    let head = format!(
        "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        EVENT.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&EVENT.as_bytes()[..40]).await.unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8(answer.unwrap_or_default()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert!(body["error"].as_str().unwrap().contains("timed out"));
    let id = IncidentId::from_raw(body["incidentId"].as_str().unwrap());
    let incident = served.pipeline.store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        incident.status,
        IncidentStatus::Rejected,
        "what arrived is kept"
    );
}

#[tokio::test]
async fn a_head_over_the_limit_is_refused() {
    let served = Served::start(tight(), true).await;
    let mut stream = served.connect().await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8(answer.unwrap_or_default()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test]
async fn only_bearer_and_the_whole_token_pass() {
    let served = Served::start(Limits::default(), true).await;
    let client = alarm_relay::adapters::http_client().unwrap();
    let post = |authorization: &'static str| {
        client
            .post(format!("http://{}/events", served.address))
            .header("authorization", authorization)
            .body(EVENT)
            .send()
    };
    for wrong in [
        "Bearer ",
        "Basic c2VydmU=",
        "Bearer serve-token-6f1d2c9",
        TOKEN,
    ] {
        assert_eq!(post(wrong).await.unwrap().status(), 401, "{wrong}");
    }
    let bearer: &'static str = Box::leak(format!("Bearer {TOKEN}").into_boxed_str());
    assert_eq!(post(bearer).await.unwrap().status(), 202);
}
