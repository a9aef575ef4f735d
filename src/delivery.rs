//! One delivery of a webhook body: sign afresh, POST, classify, record.
//!
//! Every attempt sends the same body bytes with its own `x-amzn-event-timestamp` and signature
//! (an HMAC webhook) or the `Authorization: Bearer` key (an API-key webhook). In
//! [`DeliveryMode::DryRun`] the request is built and signed exactly the same way and recorded
//! instead of sent.
//! The outcome is data: 2xx is delivered; 408, 425, 429, 5xx, timeouts and connection errors are
//! transient (with `Retry-After` surfaced); 3xx and every other 4xx are permanent. The retry
//! schedule belongs to the caller (the Step Functions `Retry`, or the local engine): this module
//! makes one attempt, plus exactly one more after a 401/403 with the secret read afresh, in
//! case it was rotated.
//!
//! Records never hold the secret, the API key or a signature; the response excerpt is scrubbed
//! of them in case a receiver echoes them.

use crate::destination::NamedDestinations;
use crate::payload::WebhookBody;
use crate::ports::{
    Clock, Credentials, TransportError, WebhookRequest, WebhookResponse, WebhookTransport,
};
use crate::ports::{Destinations, SecretSource};
use crate::secret::{SecretError, WebhookAuth, WebhookConfig};
use crate::signing::{self, Signature};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// A later attempt may succeed (overload, outage, network).
    Transient,
    /// The same request will fail again (authentication, validation, configuration).
    Permanent,
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    Delivered,
    Transient,
    Permanent,
    /// Built and signed, not sent ([`DeliveryMode::DryRun`]).
    #[serde(rename = "dry-run")]
    DryRun,
}

/// Whether the webhook is really called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeliveryMode {
    /// POST it (the default).
    #[default]
    Live,
    /// Do everything but the POST, and record what would have been sent.
    DryRun,
}

impl std::str::FromStr for DeliveryMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "live" => Ok(Self::Live),
            "dry-run" => Ok(Self::DryRun),
            other => Err(format!("must be live or dry-run, got {other:?}")),
        }
    }
}

/// What a dry run would have sent: enough to check it, nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunRecord {
    /// The destination's name (`default` for the relay's own secret).
    pub destination: String,
    /// `hmac` or `api-key`.
    pub auth: String,
    /// The webhook's host (the path may carry an id, and is left out).
    pub host: String,
    pub body_sha256: String,
    pub body_bytes: usize,
    /// The headers, with the signature and the key replaced by `[redacted]`.
    pub headers: BTreeMap<String, String>,
}

/// Classifies an HTTP status from the webhook.
pub fn classify_status(status: u16) -> AttemptOutcome {
    match status {
        200..=299 => AttemptOutcome::Delivered,
        408 | 425 | 429 | 500..=599 => AttemptOutcome::Transient,
        _ => AttemptOutcome::Permanent,
    }
}

/// One HTTP attempt, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    /// When the request was signed (RFC 3339, milliseconds).
    pub at: String,
    /// The `x-amzn-event-timestamp` sent (HMAC webhooks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_timestamp: Option<String>,
    /// `hmac` or `api-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// What would have been sent, for a dry run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<DryRunRecord>,
    pub outcome: AttemptOutcome,
    /// Absent when no HTTP answer came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// `Retry-After` in seconds from `at`, when the webhook sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// Why it failed, when it did (transport errors, refusals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The start of the response body, scrubbed of the secret and the signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
}

/// The result of [`Deliverer::deliver`]: the attempts made and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub outcome: AttemptOutcome,
    /// Hex SHA-256 of the body: the same on every attempt of an incident.
    pub body_sha256: String,
    pub attempts: Vec<AttemptRecord>,
}

impl DeliveryRecord {
    /// The last attempt (there is always one).
    pub fn last(&self) -> &AttemptRecord {
        self.attempts
            .last()
            .expect("a delivery makes at least one attempt")
    }
}

/// Why a delivery did not end in a 2xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The webhook answered non-2xx or could not be reached; the record says how.
    #[error("{}", summary(.0))]
    Failed(DeliveryRecord),
    /// The webhook's URL and secret could not be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl DeliveryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Failed(record) if record.outcome == AttemptOutcome::Transient => {
                ErrorKind::Transient
            }
            Self::Failed(_) => ErrorKind::Permanent,
            Self::Secret(SecretError::Unavailable(_)) => ErrorKind::Transient,
            Self::Secret(_) => ErrorKind::Permanent,
        }
    }
}

fn summary(record: &DeliveryRecord) -> String {
    let last = record.last();
    let what = match (last.status_code, &last.error) {
        (Some(status), _) => format!("webhook answered {status}"),
        (None, Some(error)) => error.clone(),
        (None, None) => "no answer".to_owned(),
    };
    let mut text = format!(
        "{what} after {} ms ({} attempt(s), {})",
        last.latency_ms,
        record.attempts.len(),
        match last.outcome {
            AttemptOutcome::Transient => "transient",
            AttemptOutcome::Permanent => "permanent",
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::DryRun => "dry run",
        }
    );
    if let Some(seconds) = last.retry_after_seconds {
        text.push_str(&format!("; Retry-After {seconds} s"));
    }
    text
}

/// Delivers webhook bodies with injected secrets, transport and clock.
#[derive(Clone)]
pub struct Deliverer {
    destinations: Arc<dyn Destinations>,
    transport: Arc<dyn WebhookTransport>,
    clock: Arc<dyn Clock>,
    mode: DeliveryMode,
}

impl Deliverer {
    pub fn new(
        secrets: Arc<dyn SecretSource>,
        transport: Arc<dyn WebhookTransport>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            destinations: Arc::new(NamedDestinations::fixed(secrets, Default::default())),
            transport,
            clock,
            mode: DeliveryMode::Live,
        }
    }

    /// The same deliverer, its secrets (the default destination's among them) from
    /// `destinations`.
    pub fn with_destinations(mut self, destinations: Arc<dyn Destinations>) -> Self {
        self.destinations = destinations;
        self
    }

    /// The same deliverer in `mode`.
    pub fn with_mode(mut self, mode: DeliveryMode) -> Self {
        self.mode = mode;
        self
    }

    /// One delivery: an attempt, and after a 401/403 one more with the secret reread. In a dry
    /// run, one attempt that builds and signs the request and records it instead of sending.
    pub async fn deliver(&self, body: &WebhookBody) -> Result<DeliveryRecord, DeliveryError> {
        self.deliver_to(body, None).await
    }

    /// [`Deliverer::deliver`] to the destination `name` (`None`: the default). A destination
    /// whose secret cannot be read fails naming it.
    pub async fn deliver_to(
        &self,
        body: &WebhookBody,
        destination: Option<&str>,
    ) -> Result<DeliveryRecord, DeliveryError> {
        let label = destination.unwrap_or("default");
        let named = |error: SecretError| match error {
            SecretError::Unavailable(reason) => {
                SecretError::Unavailable(format!("destination {label}: {reason}"))
            }
            SecretError::Denied(reason) => {
                SecretError::Denied(format!("destination {label}: {reason}"))
            }
            SecretError::Malformed(reason) => {
                SecretError::Malformed(format!("destination {label}: {reason}"))
            }
        };
        let secrets = self.destinations.secrets(destination).map_err(named)?;
        let config = secrets.webhook_config().await.map_err(named)?;
        if self.mode == DeliveryMode::DryRun {
            return Ok(DeliveryRecord {
                outcome: AttemptOutcome::DryRun,
                body_sha256: body.sha256_hex(),
                attempts: vec![self.dry_run(&config, body, label)],
            });
        }
        let mut attempts = vec![self.attempt(&config, body).await];
        if matches!(attempts[0].status_code, Some(401 | 403)) {
            let config = secrets.refresh().await.map_err(named)?;
            attempts.push(self.attempt(&config, body).await);
        }
        let record = DeliveryRecord {
            outcome: attempts.last().expect("one attempt at least").outcome,
            body_sha256: body.sha256_hex(),
            attempts,
        };
        match record.outcome {
            AttemptOutcome::Delivered | AttemptOutcome::DryRun => Ok(record),
            AttemptOutcome::Transient | AttemptOutcome::Permanent => {
                Err(DeliveryError::Failed(record))
            }
        }
    }

    /// The request's credentials: a fresh timestamp and signature, or the API key.
    fn credentials<'a>(
        config: &'a WebhookConfig,
        timestamp: &str,
        body: &WebhookBody,
    ) -> Signed<'a> {
        match &config.auth {
            WebhookAuth::Hmac(secret) => Signed::Hmac(
                timestamp.to_owned(),
                signing::sign(secret, timestamp, body.as_bytes()),
            ),
            WebhookAuth::ApiKey(key) => Signed::Bearer(key),
        }
    }

    fn dry_run(
        &self,
        config: &WebhookConfig,
        body: &WebhookBody,
        destination: &str,
    ) -> AttemptRecord {
        let now = self.clock.now();
        let event_timestamp = signing::event_timestamp(now);
        let signed = Self::credentials(config, &event_timestamp, body);
        let mut headers =
            BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]);
        let timestamp = match &signed {
            Signed::Hmac(timestamp, _) => {
                headers.insert(signing::TIMESTAMP_HEADER.to_owned(), timestamp.clone());
                headers.insert(
                    signing::SIGNATURE_HEADER.to_owned(),
                    "[redacted]".to_owned(),
                );
                Some(timestamp.clone())
            }
            Signed::Bearer(_) => {
                headers.insert("authorization".to_owned(), "Bearer [redacted]".to_owned());
                None
            }
        };
        AttemptRecord {
            at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
            event_timestamp: timestamp,
            auth: Some(config.auth.kind().to_owned()),
            dry_run: Some(DryRunRecord {
                destination: destination.to_owned(),
                auth: config.auth.kind().to_owned(),
                host: config.url.host_str().unwrap_or_default().to_owned(),
                body_sha256: body.sha256_hex(),
                body_bytes: body.as_bytes().len(),
                headers,
            }),
            outcome: AttemptOutcome::DryRun,
            status_code: None,
            latency_ms: 0,
            retry_after_seconds: None,
            error: None,
            response_excerpt: None,
        }
    }

    async fn attempt(&self, config: &WebhookConfig, body: &WebhookBody) -> AttemptRecord {
        let now = self.clock.now();
        let event_timestamp = signing::event_timestamp(now);
        let signed = Self::credentials(config, &event_timestamp, body);
        let credentials = match &signed {
            Signed::Hmac(timestamp, signature) => Credentials::Hmac {
                timestamp,
                signature,
            },
            Signed::Bearer(key) => Credentials::Bearer { key },
        };
        let request = WebhookRequest {
            url: &config.url,
            credentials,
            body: body.as_bytes(),
        };
        let started = Instant::now();
        let answer = self.transport.post(request).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let (event_timestamp, signature) = match signed {
            Signed::Hmac(timestamp, signature) => (Some(timestamp), Some(signature)),
            Signed::Bearer(_) => (None, None),
        };
        let auth = Some(config.auth.kind().to_owned());
        match answer {
            Ok(response) => AttemptRecord {
                at,
                event_timestamp,
                auth,
                dry_run: None,
                outcome: classify_status(response.status),
                status_code: Some(response.status),
                latency_ms,
                retry_after_seconds: response
                    .retry_after
                    .as_deref()
                    .and_then(|value| retry_after_seconds(value, now)),
                error: None,
                response_excerpt: excerpt(&response, config, signature.as_ref()),
            },
            Err(error) => AttemptRecord {
                at,
                event_timestamp,
                auth,
                dry_run: None,
                outcome: match error {
                    TransportError::Refused(_) => AttemptOutcome::Permanent,
                    _ => AttemptOutcome::Transient,
                },
                status_code: None,
                latency_ms,
                retry_after_seconds: None,
                error: Some(error.to_string()),
                response_excerpt: None,
            },
        }
    }
}

/// The credentials an attempt computed: the timestamp and signature of an HMAC webhook, or
/// the key of an API-key one.
enum Signed<'a> {
    Hmac(String, Signature),
    Bearer(&'a crate::secret::ApiKey),
}

/// `Retry-After` as delta-seconds or an HTTP date, in seconds from `now` (never negative).
pub fn retry_after_seconds(value: &str, now: DateTime<Utc>) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds);
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    Some(u64::try_from((date.with_timezone(&Utc) - now).num_seconds()).unwrap_or(0))
}

fn excerpt(
    response: &WebhookResponse,
    config: &WebhookConfig,
    signature: Option<&Signature>,
) -> Option<String> {
    if response.body_excerpt.is_empty() {
        return None;
    }
    let mut text = response.body_excerpt.clone();
    if let Some(signature) = signature {
        text = text.replace(signature.expose(), "[redacted]");
    }
    let credential = match &config.auth {
        WebhookAuth::Hmac(secret) => std::str::from_utf8(secret.bytes()).ok(),
        WebhookAuth::ApiKey(key) => Some(key.expose()),
    };
    if let Some(credential) = credential.filter(|credential| !credential.is_empty()) {
        text = text.replace(credential, "[redacted]");
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AlarmEvent;
    use crate::secret::CachedSecretSource;
    use crate::testing::{FakeTransport, FixedClock, SECRET_DOC, ScriptedFetcher};
    use std::time::Duration;

    macro_rules! status_rows {
        ($($status:expr => $outcome:ident,)*) => {
            #[test]
            fn every_status_has_one_outcome() {
                $(assert_eq!(classify_status($status), AttemptOutcome::$outcome, "status {}", $status);)*
            }
        };
    }

    status_rows! {
        200 => Delivered, 202 => Delivered, 204 => Delivered,
        301 => Permanent, 302 => Permanent, 304 => Permanent,
        400 => Permanent, 401 => Permanent, 403 => Permanent, 404 => Permanent, 410 => Permanent,
        413 => Permanent, 422 => Permanent,
        408 => Transient, 425 => Transient, 429 => Transient,
        500 => Transient, 502 => Transient, 503 => Transient, 504 => Transient,
    }

    fn body() -> WebhookBody {
        let event =
            AlarmEvent::parse(include_bytes!("../tests/fixtures/metric-alarm.json")).unwrap();
        WebhookBody::render(&event)
    }

    fn deliverer(transport: Arc<FakeTransport>, docs: Vec<String>) -> (Deliverer, Arc<FixedClock>) {
        let clock = Arc::new(FixedClock::at("2026-11-24T10:00:00Z"));
        let secrets = CachedSecretSource::new(
            ScriptedFetcher::new(docs),
            clock.clone(),
            Duration::from_secs(300),
        );
        (
            Deliverer::new(Arc::new(secrets), transport, clock.clone()),
            clock,
        )
    }

    #[tokio::test]
    async fn delivered_on_2xx_with_one_attempt() {
        let transport = Arc::new(FakeTransport::answering([Ok(200)]));
        let (deliverer, _) = deliverer(transport.clone(), vec![SECRET_DOC.into()]);
        let record = deliverer.deliver(&body()).await.unwrap();
        assert_eq!(record.outcome, AttemptOutcome::Delivered);
        assert_eq!(record.attempts.len(), 1);
        assert_eq!(record.body_sha256, body().sha256_hex());
        let sent = transport.sent();
        assert_eq!(sent[0].body, body().as_bytes());
        assert!(sent[0].signature_valid_with("test-secret"));
    }

    #[tokio::test]
    async fn transient_statuses_surface_retry_after() {
        let transport = Arc::new(FakeTransport::answering([Ok(429)]).with_retry_after("7"));
        let (deliverer, _) = deliverer(transport, vec![SECRET_DOC.into()]);
        let error = deliverer.deliver(&body()).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Transient);
        let DeliveryError::Failed(record) = &error else {
            panic!("{error}")
        };
        assert_eq!(record.last().retry_after_seconds, Some(7));
        assert!(
            error.to_string().contains("webhook answered 429"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn connection_errors_are_transient_and_refusals_permanent() {
        for (failure, kind) in [
            (
                TransportError::Connect("refused".into()),
                ErrorKind::Transient,
            ),
            (TransportError::TimedOut(10_000), ErrorKind::Transient),
            (
                TransportError::Refused("plain http".into()),
                ErrorKind::Permanent,
            ),
        ] {
            let transport = Arc::new(FakeTransport::answering([Err(failure)]));
            let (deliverer, _) = deliverer(transport, vec![SECRET_DOC.into()]);
            assert_eq!(deliverer.deliver(&body()).await.unwrap_err().kind(), kind);
        }
    }

    #[tokio::test]
    async fn unauthorized_rereads_the_secret_and_resigns_once() {
        let rotated = SECRET_DOC.replace("test-secret", "rotated-secret");
        let transport = Arc::new(FakeTransport::answering([Ok(401), Ok(200)]));
        let (deliverer, clock) = deliverer(transport.clone(), vec![SECRET_DOC.into(), rotated]);
        clock.set_step(Duration::from_secs(1));
        let record = deliverer.deliver(&body()).await.unwrap();
        assert_eq!(record.attempts.len(), 2);
        let sent = transport.sent();
        assert!(sent[1].signature_valid_with("rotated-secret"));
        assert_ne!(
            sent[0].timestamp, sent[1].timestamp,
            "each attempt signs with its own timestamp"
        );
        assert_eq!(sent[0].body, sent[1].body);
    }

    #[tokio::test]
    async fn forbidden_twice_is_permanent() {
        let transport = Arc::new(FakeTransport::answering([Ok(403), Ok(403)]));
        let (deliverer, _) = deliverer(transport, vec![SECRET_DOC.into(), SECRET_DOC.into()]);
        let error = deliverer.deliver(&body()).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Permanent);
    }

    #[tokio::test]
    async fn echoed_secret_and_signature_are_scrubbed() {
        let transport = Arc::new(FakeTransport::answering([Ok(400)]).echoing_credentials());
        let (deliverer, _) = deliverer(transport, vec![SECRET_DOC.into()]);
        let error = deliverer.deliver(&body()).await.unwrap_err();
        let DeliveryError::Failed(record) = error else {
            panic!()
        };
        let text = serde_json::to_string(&record).unwrap();
        assert!(!text.contains("test-secret"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(retry_after_seconds("120", now), Some(120));
        assert_eq!(
            retry_after_seconds("Tue, 24 Nov 2026 10:00:30 GMT", now),
            Some(30)
        );
        assert_eq!(
            retry_after_seconds("Tue, 24 Nov 2026 09:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(retry_after_seconds("soon", now), None);
    }
}
