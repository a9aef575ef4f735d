//! A local stand-in for DevOps Agent's generic webhook endpoint.
//!
//! It checks requests as DevOps Agent does: a missing, malformed, stale (outside
//! [`TOLERANCE_IN_SECONDS`](crate::signing::TOLERANCE_IN_SECONDS) by default) or wrong
//! timestamp/signature is 401 (for an API-key receiver: a missing or wrong
//! `Authorization: Bearer` key); a body that is not JSON is 400; anything else is accepted with
//! 202. Every request, faulted or not, is appended as one JSON line to the record file (never
//! with its signature), so tests and operators can see exactly what arrived. A [`FaultPlan`]
//! scripts failures for the next requests.

pub mod faults;

use crate::adapters::SystemClock;
use crate::ports::Clock;
use crate::secret::ApiKey;
use crate::signing::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER, VerifyError, WebhookSecret};
use chrono::SecondsFormat;
pub use faults::{Fault, FaultPlan, FaultPlanError};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Largest body the receiver reads; larger ones are answered 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How the receiver behaves.
pub struct ReceiverConfig {
    pub secret: WebhookSecret,
    /// Expect `Authorization: Bearer <key>` (an API-key webhook) instead of a signature.
    pub api_key: Option<ApiKey>,
    /// The JSON-lines file every request is appended to.
    pub record_path: PathBuf,
    pub faults: FaultPlan,
    /// How far `x-amzn-event-timestamp` may stray from this machine's clock.
    pub tolerance: Duration,
}

/// One line of the record file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordLine {
    seq: u64,
    received_at: String,
    method: String,
    path: String,
    /// The status answered; absent when the connection was dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<String>,
    signature_valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incident_id: Option<String>,
    body_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Value>,
}

struct State {
    config: ReceiverConfig,
    record: Mutex<File>,
    seq: AtomicU64,
    clock: SystemClock,
}

impl State {
    fn append(&self, line: &RecordLine) {
        let mut text = serde_json::to_string(line).expect("record lines serialize");
        text.push('\n');
        let mut file = self.record.lock().expect("record lock");
        if let Err(error) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
            tracing::error!(%error, "cannot append to the receiver record");
        }
    }
}

/// The connection is closed without an answer (the `drop` fault).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault plan")]
struct Dropped;

/// A running receiver; stops when [`Receiver::stop`] is called.
pub struct Receiver {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Binds `listen` (port 0 picks a free one) and serves in the background.
    pub async fn start(listen: SocketAddr, config: ReceiverConfig) -> io::Result<Self> {
        let record = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.record_path)?;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            config,
            record: Mutex::new(record),
            seq: AtomicU64::new(0),
            clock: SystemClock,
        });
        let (shutdown, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, state, stopped));
        Ok(Self {
            addr,
            shutdown,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to put in `WEBHOOK_URL`.
    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    /// Stops accepting connections.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(state.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let fault = state.config.faults.next();
    let (parts, body) = request.into_parts();
    let mut line = RecordLine {
        seq: state.seq.fetch_add(1, Ordering::Relaxed) + 1,
        received_at: state
            .clock
            .now()
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        status: None,
        outcome: "accepted",
        fault: fault.as_ref().map(Fault::to_string),
        signature_valid: false,
        error: None,
        event_timestamp: header(&parts.headers, TIMESTAMP_HEADER).map(str::to_owned),
        incident_id: None,
        body_sha256: String::new(),
        body: None,
    };
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(answer(
                &state,
                line,
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "body too large or unreadable",
                None,
            ));
        }
    };
    line.body_sha256 = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    line.body = serde_json::from_slice(&body).ok();
    line.incident_id = line
        .body
        .as_ref()
        .and_then(|value| value.get("incidentId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let verdict = check_credentials(&state, &parts.headers, &body);
    line.signature_valid = verdict.is_ok();
    match fault {
        Some(Fault::Drop) => {
            line.outcome = "dropped";
            state.append(&line);
            return Err(Dropped);
        }
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Ok(answer(
                &state,
                line,
                status,
                "fault",
                "injected fault",
                retry_after,
            ));
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    if parts.method != Method::POST {
        return Ok(answer(
            &state,
            line,
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "POST only",
            None,
        ));
    }
    if let Err(message) = verdict {
        line.error = Some(message.clone());
        return Ok(answer(
            &state,
            line,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            &message,
            None,
        ));
    }
    if line.body.is_none() {
        line.error = Some("body is not JSON".into());
        return Ok(answer(
            &state,
            line,
            StatusCode::BAD_REQUEST,
            "bad-json",
            "body is not JSON",
            None,
        ));
    }
    Ok(answer(
        &state,
        line,
        StatusCode::ACCEPTED,
        "accepted",
        "webhook received",
        None,
    ))
}

/// The request's credentials: the Bearer key when the receiver expects one, else the signature
/// (`signatureValid` in the record means either). The error names what is wrong, never a value.
fn check_credentials(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    match &state.config.api_key {
        Some(key) => match header(headers, AUTHORIZATION.as_str()) {
            Some(value) if key.authorizes(value) => Ok(()),
            Some(_) => Err("Authorization is not Bearer and the webhook's API key".to_owned()),
            None => Err("missing Authorization: Bearer <API key>".to_owned()),
        },
        None => check_signature(state, headers, body).map_err(|error| error.to_string()),
    }
}

fn check_signature(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let timestamp = header(headers, TIMESTAMP_HEADER).ok_or(VerifyError::MissingTimestamp)?;
    let signature = header(headers, SIGNATURE_HEADER).ok_or(VerifyError::MissingSignature)?;
    signing::verify_fresh(
        &state.config.secret,
        timestamp,
        body,
        signature,
        state.clock.now(),
        state.config.tolerance,
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn answer(
    state: &State,
    mut line: RecordLine,
    status: StatusCode,
    outcome: &'static str,
    message: &str,
    retry_after: Option<String>,
) -> Response<Full<Bytes>> {
    line.status = Some(status.as_u16());
    line.outcome = outcome;
    state.append(&line);
    let body = serde_json::json!({ "message": message }).to_string();
    let mut response = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json");
    if let Some(value) = retry_after {
        response = response.header(RETRY_AFTER, value);
    }
    response
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
