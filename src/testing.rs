//! Fakes of the ports, for this crate's tests and for anyone testing code built on it.

use crate::ports::{
    Clock, Credentials, SecretFetcher, StartError, TransportError, WebhookRequest, WebhookResponse,
    WebhookTransport, WorkflowStarter,
};
use crate::secret::SecretError;
use crate::signing::{self, WebhookSecret};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A secret document pointing at a loopback receiver, with the secret `test-secret`.
pub const SECRET_DOC: &str =
    r#"{"WEBHOOK_URL":"http://127.0.0.1:9/webhook","WEBHOOK_SECRET":"test-secret"}"#;

/// A clock that moves only when told to (and optionally by a fixed step on every reading).
pub struct FixedClock {
    state: Mutex<(DateTime<Utc>, Duration)>,
}

impl FixedClock {
    /// Starts at an RFC 3339 time.
    pub fn at(rfc3339: &str) -> Self {
        let now = DateTime::parse_from_rfc3339(rfc3339)
            .expect("FixedClock::at takes RFC 3339")
            .with_timezone(&Utc);
        Self {
            state: Mutex::new((now, Duration::ZERO)),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock().expect("clock lock");
        state.0 += by;
    }

    /// Every later reading advances the clock by `step` after returning.
    pub fn set_step(&self, step: Duration) {
        self.state.lock().expect("clock lock").1 = step;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        let mut state = self.state.lock().expect("clock lock");
        let (now, step) = *state;
        state.0 = now + step;
        now
    }
}

/// Returns the given documents in order, then repeats the last; counts calls.
#[derive(Clone)]
pub struct ScriptedFetcher {
    docs: Arc<Mutex<(VecDeque<String>, usize)>>,
}

impl ScriptedFetcher {
    pub fn new(docs: impl IntoIterator<Item = String>) -> Self {
        Self {
            docs: Arc::new(Mutex::new((docs.into_iter().collect(), 0))),
        }
    }

    pub fn calls(&self) -> usize {
        self.docs.lock().expect("fetcher lock").1
    }
}

#[async_trait]
impl SecretFetcher for ScriptedFetcher {
    async fn fetch(&self) -> Result<String, SecretError> {
        let mut docs = self.docs.lock().expect("fetcher lock");
        docs.1 += 1;
        let doc = if docs.0.len() > 1 {
            docs.0.pop_front()
        } else {
            docs.0.front().cloned()
        };
        doc.ok_or_else(|| SecretError::Denied("no document scripted".into()))
    }
}

/// A request the fake transport saw.
#[derive(Debug, Clone)]
pub struct SentRequest {
    pub url: String,
    /// The HMAC headers (empty for an API-key request).
    pub timestamp: String,
    pub signature: String,
    /// The `Authorization` header of an API-key request.
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

impl SentRequest {
    /// Whether the signature verifies with this secret.
    pub fn signature_valid_with(&self, secret: &str) -> bool {
        signing::verify_ignoring_timestamp(
            &WebhookSecret::new(secret),
            &self.timestamp,
            &self.body,
            &self.signature,
        )
        .is_ok()
    }
}

/// Answers with scripted statuses or transport errors, in order; records what was sent.
pub struct FakeTransport {
    answers: Mutex<VecDeque<Result<u16, TransportError>>>,
    retry_after: Option<String>,
    echo: bool,
    sent: Mutex<Vec<SentRequest>>,
}

impl FakeTransport {
    pub fn answering(answers: impl IntoIterator<Item = Result<u16, TransportError>>) -> Self {
        Self {
            answers: Mutex::new(answers.into_iter().collect()),
            retry_after: None,
            echo: false,
            sent: Mutex::new(Vec::new()),
        }
    }

    /// Every answer carries this `Retry-After`.
    pub fn with_retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.to_owned());
        self
    }

    /// Every answer's body echoes the signature header and the secret of [`SECRET_DOC`], as a
    /// careless receiver might.
    pub fn echoing_credentials(mut self) -> Self {
        self.echo = true;
        self
    }

    pub fn sent(&self) -> Vec<SentRequest> {
        self.sent.lock().expect("transport lock").clone()
    }
}

#[async_trait]
impl WebhookTransport for FakeTransport {
    async fn post(&self, request: WebhookRequest<'_>) -> Result<WebhookResponse, TransportError> {
        let (timestamp, signature, authorization) = match request.credentials {
            Credentials::Hmac {
                timestamp,
                signature,
            } => (timestamp.to_owned(), signature.expose().to_owned(), None),
            Credentials::Bearer { key } => (
                String::new(),
                String::new(),
                Some(format!("Bearer {}", key.expose())),
            ),
        };
        self.sent.lock().expect("transport lock").push(SentRequest {
            url: request.url.to_string(),
            timestamp,
            signature: signature.clone(),
            authorization: authorization.clone(),
            body: request.body.to_vec(),
        });
        let answer = self
            .answers
            .lock()
            .expect("transport lock")
            .pop_front()
            .unwrap_or(Ok(200))?;
        let body_excerpt = if self.echo {
            format!(
                "bad signature {signature} {} for secret test-secret",
                authorization.unwrap_or_default()
            )
        } else {
            String::new()
        };
        Ok(WebhookResponse {
            status: answer,
            retry_after: self.retry_after.clone(),
            body_excerpt,
        })
    }
}

/// A workflow starter that behaves like Step Functions with deterministic names: one execution
/// per name, the same ARN for a repeated start. It can be told to fail the next starts, and it
/// refuses a repeated name with a different input (a bug Step Functions would hide).
#[derive(Default)]
pub struct FakeStarter {
    state: Mutex<FakeStarterState>,
}

#[derive(Default)]
struct FakeStarterState {
    executions: std::collections::BTreeMap<String, serde_json::Value>,
    calls: usize,
    failures_left: usize,
    failures: usize,
}

impl FakeStarter {
    /// The next `count` starts fail with [`StartError::Unavailable`].
    pub fn fail_next(&self, count: usize) {
        self.state.lock().expect("starter lock").failures_left = count;
    }

    /// Every execution started: name → input.
    pub fn executions(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        self.state.lock().expect("starter lock").executions.clone()
    }

    /// Start calls made, failed ones included.
    pub fn calls(&self) -> usize {
        self.state.lock().expect("starter lock").calls
    }

    /// Start calls that failed by injection.
    pub fn failures(&self) -> usize {
        self.state.lock().expect("starter lock").failures
    }
}

#[async_trait]
impl WorkflowStarter for FakeStarter {
    async fn start(&self, name: &str, input: &serde_json::Value) -> Result<String, StartError> {
        let mut state = self.state.lock().expect("starter lock");
        state.calls += 1;
        if state.failures_left > 0 {
            state.failures_left -= 1;
            state.failures += 1;
            return Err(StartError::Unavailable("injected failure".into()));
        }
        match state.executions.get(name) {
            Some(existing) if existing != input => {
                return Err(StartError::Failed(format!(
                    "execution {name} exists with a different input"
                )));
            }
            Some(_) => {}
            None => {
                state.executions.insert(name.to_owned(), input.clone());
            }
        }
        Ok(format!(
            "arn:aws:states:us-east-1:123456789012:execution:incident:{name}"
        ))
    }
}
