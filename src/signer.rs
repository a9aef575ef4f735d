//! The Deliver state of the workflow: the signer Lambda's handler, also called in-process by
//! the local engine.
//!
//! Input is `{"incidentId", "event", "enriched"?, "execution"?}`
//! (`schemas/deliver-input.schema.json`); output is the [`DeliveryRecord`]
//! (`schemas/delivery-record.schema.json`). Every HTTP attempt is appended to the incident's log
//! as `DeliveryAttempted` before the signer returns or raises. Failures carry one of a closed set
//! of error names ([`ErrorName`]) that the state machine's `Retry` matches on; messages never
//! hold the secret, a signature or the body.

use crate::config::RoutingConfig;
use crate::delivery::{
    AttemptOutcome, AttemptRecord, Deliverer, DeliveryError, DeliveryRecord, ErrorKind,
};
use crate::destination::DEFAULT as DEFAULT_DESTINATION;
use crate::event::{AlarmEvent, IncidentId};
use crate::incident::{EventType, IncidentStatus, NewEvent};
use crate::payload::WebhookBody;
use crate::ports::{Clock, IncidentStore, StoreError};
use crate::routing;
use crate::secret::SecretError;
use serde::Deserialize;
use serde_json::{Value, json};
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
    /// The incident store could not record the attempt: retry (DevOps Agent deduplicates the
    /// identical body if it did arrive).
    StoreUnavailable,
    /// The incident store refused the write.
    StoreFailed,
    /// An `updated` or `resolved` message waits for the episode's `created` to be delivered
    /// first (DevOps Agent must know the investigation before it is updated): retry.
    PrimaryPending,
}

impl ErrorName {
    /// Every name, for checks that the state machine matches only names that exist.
    pub const ALL: [Self; 8] = [
        Self::WebhookTransient,
        Self::WebhookPermanent,
        Self::PayloadInvalid,
        Self::SecretUnavailable,
        Self::ConfigInvalid,
        Self::StoreUnavailable,
        Self::StoreFailed,
        Self::PrimaryPending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebhookTransient => "Webhook.Transient",
            Self::WebhookPermanent => "Webhook.Permanent",
            Self::PayloadInvalid => "Payload.Invalid",
            Self::SecretUnavailable => "Secret.Unavailable",
            Self::ConfigInvalid => "Config.Invalid",
            Self::StoreUnavailable => "Store.Unavailable",
            Self::StoreFailed => "Store.Failed",
            Self::PrimaryPending => "Episode.PrimaryPending",
        }
    }

    pub fn kind(self) -> ErrorKind {
        match self {
            Self::WebhookTransient
            | Self::SecretUnavailable
            | Self::StoreUnavailable
            | Self::PrimaryPending => ErrorKind::Transient,
            Self::WebhookPermanent
            | Self::PayloadInvalid
            | Self::ConfigInvalid
            | Self::StoreFailed => ErrorKind::Permanent,
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

/// The Deliver state's input; other fields are ignored.
#[derive(Debug, Deserialize)]
struct DeliverInput {
    event: Value,
    /// The Enrich state's result: `{"enrichment": {…}}`, or the caught `{"Error", "Cause"}`.
    #[serde(default)]
    enriched: Option<Value>,
    /// `{"arn", "retryCount"}` from the context object, for the audit trail.
    #[serde(default)]
    execution: Option<Value>,
    /// The Correlate (or ConfirmResolve) decision: which body to render (`action`).
    #[serde(default)]
    correlation: Option<Value>,
}

/// Renders the event's body (with the enrichment, when there is one) and delivers it once (the
/// workflow's `Retry` owns the schedule), appending every attempt to the incident's log.
pub async fn handle(
    input: Value,
    deliverer: &Deliverer,
    routing: &RoutingConfig,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<DeliveryRecord, SignerError> {
    let input: DeliverInput = serde_json::from_value(input)
        .map_err(|error| SignerError::payload(format!("Deliver input: {error}")))?;
    let bytes = serde_json::to_vec(&input.event).map_err(SignerError::payload)?;
    let event = AlarmEvent::parse(&bytes).map_err(SignerError::payload)?;
    let enrichment = input
        .enriched
        .as_ref()
        .and_then(|enriched| enriched.get("enrichment"));
    let tags = enrichment
        .and_then(|enrichment| enrichment.get("tags"))
        .filter(|tags| tags.is_object());
    let mut settings = routing::settings(tags, event.account(), routing);
    let incident_id = event.incident_id().as_str();
    if let Some(decision) = &input.correlation {
        in_order(store, event.incident_id(), decision).await?;
        // An episode's messages go where its investigation was opened.
        if let Some(destination) = primary_destination(store, event.incident_id(), decision).await?
        {
            settings.destination = destination;
            settings.routed_by = "primary";
        }
    }
    let body = WebhookBody::render_for(
        &event,
        enrichment,
        input.correlation.as_ref(),
        Some(&settings),
    );
    let result = deliverer
        .deliver_to(&body, settings.destination.as_deref())
        .await;
    let attempts = match &result {
        Ok(record) | Err(DeliveryError::Failed(record)) => record.attempts.as_slice(),
        Err(DeliveryError::Secret(_)) => &[],
    };
    record_attempts(
        store,
        clock,
        event.incident_id(),
        attempts,
        &json!({ "execution": input.execution, "destination": settings.destination.as_deref().unwrap_or(DEFAULT_DESTINATION), "settings": settings }),
    )
    .await?;
    match result {
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

/// Messages of one episode reach DevOps Agent in order: an `updated` or `resolved` waits for
/// the primary's `created` to be delivered, and a `resolved` also for every member's own
/// message (`memberIncidents` of the decision) to be delivered or to have failed. Retries can
/// overtake each other; [`ErrorName::PrimaryPending`] makes the workflow retry.
async fn in_order(
    store: &dyn IncidentStore,
    own: &IncidentId,
    decision: &Value,
) -> Result<(), SignerError> {
    let action = decision["action"].as_str().unwrap_or("created");
    if action != "updated" && action != "resolved" {
        return Ok(());
    }
    let pending = |what: String| SignerError {
        name: ErrorName::PrimaryPending,
        message: format!("{action} waits: {what}"),
        record: None,
    };
    let status = |id: IncidentId| async move {
        store
            .get(&id)
            .await
            .map_err(store_error)
            .map(|incident| incident.map(|incident| incident.status))
    };
    if let Some(primary) = decision["primaryIncidentId"]
        .as_str()
        .map(IncidentId::from_raw)
        .filter(|primary| primary != own)
    {
        match status(primary.clone()).await? {
            Some(IncidentStatus::Delivered | IncidentStatus::Resolved | IncidentStatus::DryRun) => {
            }
            other => {
                return Err(pending(format!(
                    "the episode's primary {primary} is {} (its created is not delivered yet)",
                    other.map_or("unknown".to_owned(), |status| status.to_string())
                )));
            }
        }
    }
    let members = decision["memberIncidents"].as_array().into_iter().flatten();
    for member in members.filter_map(Value::as_str).map(IncidentId::from_raw) {
        if member == *own {
            continue;
        }
        if let Some(IncidentStatus::Received | IncidentStatus::Started | IncidentStatus::Enriched) =
            status(member.clone()).await?
        {
            return Err(pending(format!(
                "the message of member {member} is not delivered yet"
            )));
        }
    }
    Ok(())
}

/// The destination an episode's primary was delivered to, for an `updated` or `resolved` of
/// another incident (`Some(None)`: the default); `None` when there is nothing to follow.
async fn primary_destination(
    store: &dyn IncidentStore,
    own: &IncidentId,
    decision: &Value,
) -> Result<Option<Option<String>>, SignerError> {
    let Some(primary) = decision["primaryIncidentId"]
        .as_str()
        .map(IncidentId::from_raw)
        .filter(|primary| primary != own)
    else {
        return Ok(None);
    };
    let events = store.events(&primary).await.map_err(store_error)?;
    Ok(events
        .iter()
        .rev()
        .filter(|event| event.kind == EventType::DeliveryAttempted)
        .find_map(|event| event.data["destination"].as_str())
        .map(|name| (name != DEFAULT_DESTINATION).then(|| name.to_owned())))
}

/// Appends one `DeliveryAttempted` per attempt (with `context`: the execution, the destination
/// and the alarm's settings) and counts them on the projection.
async fn record_attempts(
    store: &dyn IncidentStore,
    clock: &dyn Clock,
    id: &IncidentId,
    attempts: &[AttemptRecord],
    context: &Value,
) -> Result<(), SignerError> {
    for attempt in attempts {
        let mut data = context.clone();
        data["attempt"] = json!(attempt);
        loop {
            let incident =
                store.get(id).await.map_err(store_error)?.ok_or_else(|| {
                    SignerError::payload(format!("no incident {id} in the store"))
                })?;
            let now = clock.now();
            let mut next = incident.advance(now);
            next.attempts += 1;
            next.last_error = match attempt.outcome {
                AttemptOutcome::Delivered | AttemptOutcome::DryRun => None,
                _ => Some(match (attempt.status_code, &attempt.error) {
                    (Some(status), _) => format!("webhook answered {status}"),
                    (None, Some(error)) => error.clone(),
                    (None, None) => "no answer".to_owned(),
                }),
            };
            let event = NewEvent::new(EventType::DeliveryAttempted, now, data.clone());
            match store.append(&next, &event).await {
                Ok(()) => break,
                Err(StoreError::VersionConflict(_)) => continue,
                Err(error) => return Err(store_error(error)),
            }
        }
    }
    Ok(())
}

fn store_error(error: StoreError) -> SignerError {
    let name = match error {
        StoreError::Failed(_) => ErrorName::StoreFailed,
        _ => ErrorName::StoreUnavailable,
    };
    SignerError {
        name,
        message: error.to_string(),
        record: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::SqliteStore;
    use crate::intake::Intake;
    use crate::outbox::Dispatcher;
    use crate::ports::TransportError;
    use crate::secret::CachedSecretSource;
    use crate::testing::{FakeStarter, FakeTransport, FixedClock, SECRET_DOC, ScriptedFetcher};
    use std::sync::Arc;
    use std::time::Duration;

    const METRIC: &str = include_str!("../tests/fixtures/metric-alarm.json");

    /// A store holding the metric fixture's incident, started.
    async fn store() -> Arc<SqliteStore> {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let clock = Arc::new(FixedClock::at("2026-11-24T10:00:01Z"));
        let dispatcher = Dispatcher::new(store.clone(), Arc::new(FakeStarter::default()), clock);
        Intake::new(dispatcher, None)
            .handle(METRIC.as_bytes())
            .await
            .unwrap();
        store
    }

    async fn run(input: Value, deliverer: &Deliverer) -> Result<DeliveryRecord, SignerError> {
        let store = store().await;
        handle(
            input,
            deliverer,
            &RoutingConfig::default(),
            store.as_ref(),
            &FixedClock::at("2026-11-24T10:00:02Z"),
        )
        .await
    }

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
        let event: Value = serde_json::from_str(METRIC).unwrap();
        serde_json::json!({"event": event, "execution": {"arn": "arn:aws:states:::execution:x:y", "retryCount": 0}})
    }

    async fn error_for(transport: FakeTransport, doc: &str) -> SignerError {
        run(input(), &deliverer(transport, doc)).await.unwrap_err()
    }

    #[tokio::test]
    async fn delivered_input_returns_the_record() {
        let record = run(
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
            let error = run(input, &deliverer).await.unwrap_err();
            assert_eq!(error.name, ErrorName::PayloadInvalid, "{error}");
        }
    }

    #[tokio::test]
    async fn every_attempt_is_appended_to_the_incident_log() {
        let store = store().await;
        let deliverer = deliverer(FakeTransport::answering([Ok(401), Ok(202)]), SECRET_DOC);
        let clock = FixedClock::at("2026-11-24T10:00:02Z");
        handle(
            input(),
            &deliverer,
            &RoutingConfig::default(),
            store.as_ref(),
            &clock,
        )
        .await
        .unwrap();
        let id = IncidentId::new("NFM-Alarm-EKS-DB", "2026-11-24T10:00:00.000+0000");
        let events = store.events(&id).await.unwrap();
        let attempts: Vec<_> = events
            .iter()
            .filter(|event| event.kind == EventType::DeliveryAttempted)
            .map(|event| event.data["attempt"]["statusCode"].as_u64())
            .collect();
        assert_eq!(attempts, [Some(401), Some(202)]);
        assert_eq!(events.last().unwrap().data["execution"]["retryCount"], 0);
        let incident = store.get(&id).await.unwrap().unwrap();
        assert_eq!((incident.attempts, incident.last_error), (2, None));
        assert!(
            !serde_json::to_string(&events)
                .unwrap()
                .contains("test-secret")
        );
    }

    #[tokio::test]
    async fn enrichment_goes_under_a_new_key_and_seed_keys_keep_their_bytes() {
        let transport = Arc::new(FakeTransport::answering([Ok(202)]));
        let clock = Arc::new(FixedClock::at("2026-11-24T10:00:00Z"));
        let secrets = CachedSecretSource::new(
            ScriptedFetcher::new([SECRET_DOC.to_owned()]),
            clock.clone(),
            Duration::from_secs(300),
        );
        let deliverer = Deliverer::new(Arc::new(secrets), transport.clone(), clock);
        let mut input = input();
        input["enriched"] = serde_json::json!({"enrichment": {"alarm": {"threshold": 50.0}}});
        run(input, &deliverer).await.unwrap();
        let sent = String::from_utf8(transport.sent()[0].body.clone()).unwrap();
        let plain = WebhookBody::render(&AlarmEvent::parse(METRIC.as_bytes()).unwrap());
        let prefix = plain.as_str().strip_suffix("}}").unwrap();
        assert!(sent.starts_with(prefix), "seed keys first, byte for byte");
        assert!(
            sent.ends_with(", \"enrichment\": {\"alarm\": {\"threshold\": 50.0}}}}"),
            "{sent}"
        );
    }

    #[tokio::test]
    async fn updates_wait_for_the_primary_and_resolves_for_every_member() {
        // GIVEN the fixture's incident, STARTED (its own message not delivered yet)
        let store = store().await;
        let member = IncidentId::new("NFM-Alarm-EKS-DB", "2026-11-24T10:00:00.000+0000");
        let own = IncidentId::from_raw("NFM-Alarm-EKS-DB-2026-11-24T10:05:00.000+0000");
        let updated = json!({"action": "updated", "primaryIncidentId": member});
        let resolved = json!({"action": "resolved", "memberIncidents": [member, own]});
        // WHEN an update to it, or a resolve of its episode, is about to be sent
        for decision in [&updated, &resolved] {
            let error = in_order(store.as_ref(), &own, decision).await.unwrap_err();
            // THEN it waits (retryably)
            assert_eq!(error.name, ErrorName::PrimaryPending, "{error}");
            assert_eq!(error.name.kind(), ErrorKind::Transient);
        }
        let created = json!({"action": "created", "primaryIncidentId": member});
        assert!(in_order(store.as_ref(), &own, &created).await.is_ok());
        // AND once it is delivered, both go
        let incident = store.get(&member).await.unwrap().unwrap();
        let mut next = incident.advance(chrono::Utc::now());
        next.status = IncidentStatus::Delivered;
        let event = NewEvent::new(EventType::Delivered, chrono::Utc::now(), json!({}));
        store.append(&next, &event).await.unwrap();
        for decision in [&updated, &resolved] {
            assert!(in_order(store.as_ref(), &own, decision).await.is_ok());
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
