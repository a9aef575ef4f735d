//! The Deliver state of the workflow: the signer Lambda's handler, also called in-process by
//! the local engine.
//!
//! Input is `{"event": <EventBridge alarm event>, …}` (`schemas/deliver-input.schema.json`);
//! output is the [`DeliveryRecord`] (`schemas/delivery-record.schema.json`). Failures carry one
//! of a closed set of error names ([`ErrorName`]) that the state machine's `Retry` and `Catch`
//! match on; messages never hold the secret, a signature or the body.

use crate::delivery::{AttemptOutcome, Deliverer, DeliveryError, DeliveryRecord, ErrorKind};
use crate::event::AlarmEvent;
use crate::payload::WebhookBody;
use crate::secret::SecretError;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// The error names Step Functions sees (the Lambda `errorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorName {
    /// Overload, outage or network trouble at the webhook: retry with backoff.
    WebhookTransient,
    /// The webhook refused the request (401/403 after a secret reread, other 4xx, 3xx).
    WebhookPermanent,
    /// The input is not a deliverable alarm event; retrying cannot help.
    PayloadInvalid,
    /// Secrets Manager could not be reached or throttled: retry with backoff.
    SecretUnavailable,
    /// The secret is missing, unreadable or malformed, or its URL breaks the HTTPS policy.
    ConfigInvalid,
}

impl ErrorName {
    /// Every name, for checks that the state machine matches only names that exist.
    pub const ALL: [Self; 5] = [
        Self::WebhookTransient,
        Self::WebhookPermanent,
        Self::PayloadInvalid,
        Self::SecretUnavailable,
        Self::ConfigInvalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebhookTransient => "Webhook.Transient",
            Self::WebhookPermanent => "Webhook.Permanent",
            Self::PayloadInvalid => "Payload.Invalid",
            Self::SecretUnavailable => "Secret.Unavailable",
            Self::ConfigInvalid => "Config.Invalid",
        }
    }

    pub fn kind(self) -> ErrorKind {
        match self {
            Self::WebhookTransient | Self::SecretUnavailable => ErrorKind::Transient,
            Self::WebhookPermanent | Self::PayloadInvalid | Self::ConfigInvalid => {
                ErrorKind::Permanent
            }
        }
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed Deliver: a name to match on, a one-line message, and the attempts made (if any).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SignerError {
    pub name: ErrorName,
    pub message: String,
    pub record: Option<DeliveryRecord>,
}

impl SignerError {
    fn payload(message: impl fmt::Display) -> Self {
        Self {
            name: ErrorName::PayloadInvalid,
            message: message.to_string(),
            record: None,
        }
    }
}

impl From<DeliveryError> for SignerError {
    fn from(error: DeliveryError) -> Self {
        let message = error.to_string();
        match error {
            DeliveryError::Failed(record) => {
                let last = record.last();
                let name = match (last.outcome, last.status_code) {
                    (AttemptOutcome::Transient, _) => ErrorName::WebhookTransient,
                    (_, None) => ErrorName::ConfigInvalid,
                    _ => ErrorName::WebhookPermanent,
                };
                Self {
                    name,
                    message,
                    record: Some(record),
                }
            }
            DeliveryError::Secret(SecretError::Unavailable(_)) => Self {
                name: ErrorName::SecretUnavailable,
                message,
                record: None,
            },
            DeliveryError::Secret(_) => Self {
                name: ErrorName::ConfigInvalid,
                message,
                record: None,
            },
        }
    }
}

/// The Deliver state's input; fields beyond `event` (workflow context) are ignored.
#[derive(Debug, Deserialize)]
struct DeliverInput {
    event: Value,
}

/// Renders the event's body and delivers it once (the workflow's `Retry` owns the schedule).
pub async fn handle(input: Value, deliverer: &Deliverer) -> Result<DeliveryRecord, SignerError> {
    let input: DeliverInput = serde_json::from_value(input)
        .map_err(|error| SignerError::payload(format!("Deliver input: {error}")))?;
    let bytes = serde_json::to_vec(&input.event).map_err(SignerError::payload)?;
    let event = AlarmEvent::parse(&bytes).map_err(SignerError::payload)?;
    let body = WebhookBody::render(&event);
    let incident_id = event.incident_id().as_str();
    match deliverer.deliver(&body).await {
        Ok(record) => {
            let last = record.last();
            tracing::info!(
                incident_id,
                attempts = record.attempts.len(),
                status_code = last.status_code,
                latency_ms = last.latency_ms,
                "webhook delivered"
            );
            Ok(record)
        }
        Err(error) => {
            let error = SignerError::from(error);
            tracing::warn!(incident_id, error_name = %error.name, error = %error.message, "webhook not delivered");
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::TransportError;
    use crate::secret::CachedSecretSource;
    use crate::testing::{FakeTransport, FixedClock, SECRET_DOC, ScriptedFetcher};
    use std::sync::Arc;
    use std::time::Duration;

    fn deliverer(transport: FakeTransport, doc: &str) -> Deliverer {
        let clock = Arc::new(FixedClock::at("2026-11-24T10:00:00Z"));
        let secrets = CachedSecretSource::new(
            ScriptedFetcher::new([doc.to_owned()]),
            clock.clone(),
            Duration::from_secs(300),
        );
        Deliverer::new(Arc::new(secrets), Arc::new(transport), clock)
    }

    fn input() -> Value {
        let event: Value =
            serde_json::from_str(include_str!("../tests/fixtures/metric-alarm.json")).unwrap();
        serde_json::json!({"event": event, "executionArn": "arn:aws:states:::execution:x:y"})
    }

    async fn error_for(transport: FakeTransport, doc: &str) -> SignerError {
        handle(input(), &deliverer(transport, doc))
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn delivered_input_returns_the_record() {
        let record = handle(
            input(),
            &deliverer(FakeTransport::answering([Ok(202)]), SECRET_DOC),
        )
        .await
        .unwrap();
        assert_eq!(record.outcome, AttemptOutcome::Delivered);
        assert_eq!(record.last().status_code, Some(202));
    }

    #[tokio::test]
    async fn each_failure_gets_its_error_name() {
        let cases = [
            (
                FakeTransport::answering([Ok(503)]),
                SECRET_DOC,
                ErrorName::WebhookTransient,
            ),
            (
                FakeTransport::answering([Err(TransportError::Connect("x".into()))]),
                SECRET_DOC,
                ErrorName::WebhookTransient,
            ),
            (
                FakeTransport::answering([Ok(400)]),
                SECRET_DOC,
                ErrorName::WebhookPermanent,
            ),
            (
                FakeTransport::answering([Ok(401), Ok(401)]),
                SECRET_DOC,
                ErrorName::WebhookPermanent,
            ),
            (
                FakeTransport::answering([Err(TransportError::Refused("http".into()))]),
                SECRET_DOC,
                ErrorName::ConfigInvalid,
            ),
            (
                FakeTransport::answering([Ok(200)]),
                "{}",
                ErrorName::ConfigInvalid,
            ),
        ];
        for (transport, doc, expected) in cases {
            assert_eq!(error_for(transport, doc).await.name, expected);
        }
    }

    #[tokio::test]
    async fn bad_input_is_payload_invalid_and_sends_nothing() {
        let deliverer = deliverer(FakeTransport::answering([]), SECRET_DOC);
        for input in [
            serde_json::json!({}),
            serde_json::json!({"event": {"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}}),
            serde_json::json!({"event": "not an object"}),
        ] {
            let error = handle(input, &deliverer).await.unwrap_err();
            assert_eq!(error.name, ErrorName::PayloadInvalid, "{error}");
        }
    }

    #[test]
    fn names_are_unique_and_dotted() {
        let names: std::collections::HashSet<_> =
            ErrorName::ALL.iter().map(|n| n.as_str()).collect();
        assert_eq!(names.len(), ErrorName::ALL.len());
        assert!(
            names
                .iter()
                .all(|name| name.contains('.') && !name.starts_with("States."))
        );
    }
}
