//! Intake: an EventBridge alarm event in, one durable incident record out, then the workflow
//! started. The intake Lambda and the local `serve` both call [`Intake::handle`].
//!
//! The record is written before anything is started, and intake answers success only once it
//! is durable: from then on the incident is delivered or ends in an audited failure. Copies of
//! one event (EventBridge delivers at least once) find the record and start nothing new; an
//! event that is not an alarm state change is recorded as REJECTED with the reason and answered
//! with success, so EventBridge does not retry a poison event. Only a store failure is an
//! error: nothing was acknowledged, and the caller (EventBridge) retries.

use crate::event::{AlarmEvent, EventError};
use crate::incident::{self, EventType, Incident, IncidentStatus, NewEvent};
use crate::outbox::Dispatcher;
use crate::ports::{Created, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

/// How much of a rejected input the record keeps.
pub const REJECTED_EXCERPT_BYTES: usize = 2048;

/// What intake did with one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum IntakeOutcome {
    /// A new incident, recorded (and started, for ALARM, unless the start failed and the
    /// sweeper will retry it).
    Recorded { incident: Incident },
    /// The same event again: nothing new recorded or started.
    Duplicate { incident: Incident },
    /// A different event under an existing incident id: audited on that incident, not merged.
    Conflict { incident: Incident },
    /// Not a deliverable alarm event: recorded as REJECTED with the reason.
    Rejected { incident: Incident, reason: String },
}

impl IntakeOutcome {
    pub fn incident(&self) -> &Incident {
        match self {
            Self::Recorded { incident }
            | Self::Duplicate { incident }
            | Self::Conflict { incident }
            | Self::Rejected { incident, .. } => incident,
        }
    }
}

/// Records alarm events and starts their workflow.
#[derive(Clone)]
pub struct Intake {
    dispatcher: Dispatcher,
    ttl: Option<Duration>,
    start_recoveries: bool,
}

impl Intake {
    /// `ttl`: how long records are kept (DynamoDB TTL); `None` keeps them forever.
    pub fn new(dispatcher: Dispatcher, ttl: Option<Duration>) -> Self {
        Self {
            dispatcher,
            ttl,
            start_recoveries: false,
        }
    }

    /// Whether OK transitions start the workflow too, so that they can close episodes (on
    /// whenever correlation is: see [`crate::episode`]). Off, they are recorded IGNORED.
    pub fn starting_recoveries(mut self, start: bool) -> Self {
        self.start_recoveries = start;
        self
    }

    /// [`Intake::handle`] for an event the Lambda runtime already parsed; answers a short
    /// summary (`incidentId`, `status`, `outcome`) for the logs.
    pub async fn handle_value(&self, event: &Value) -> Result<Value, StoreError> {
        let raw =
            serde_json::to_vec(event).map_err(|error| StoreError::Failed(error.to_string()))?;
        let outcome = self.handle(&raw).await?;
        let incident = outcome.incident();
        let kind = match &outcome {
            IntakeOutcome::Recorded { .. } => "recorded",
            IntakeOutcome::Duplicate { .. } => "duplicate",
            IntakeOutcome::Conflict { .. } => "conflict",
            IntakeOutcome::Rejected { .. } => "rejected",
        };
        Ok(
            json!({ "incidentId": incident.incident_id, "status": incident.status, "outcome": kind }),
        )
    }

    /// Records `raw` (the event's bytes as received) and, for a new ALARM incident, starts it.
    pub async fn handle(&self, raw: &[u8]) -> Result<IntakeOutcome, StoreError> {
        let now = self.dispatcher.clock().now();
        match AlarmEvent::parse(raw) {
            Ok(event) => self.record(&event, now).await,
            Err(error) => self.reject(raw, &error, now).await,
        }
    }

    async fn record(
        &self,
        event: &AlarmEvent,
        now: DateTime<Utc>,
    ) -> Result<IntakeOutcome, StoreError> {
        // Hash the canonical form, so the same event with other whitespace is a duplicate.
        let canonical = serde_json::to_vec(event.raw())
            .map_err(|error| StoreError::Failed(error.to_string()))?;
        let mut incident =
            incident::received(event, &canonical, now, self.ttl, self.start_recoveries);
        let mut events = vec![NewEvent::new(
            EventType::Received,
            now,
            json!({ "event": event.raw() }),
        )];
        if incident.status == IncidentStatus::Ignored {
            events.push(NewEvent::new(
                EventType::Ignored,
                now,
                json!({ "reason": format!("state {} starts no investigation", event.state().value) }),
            ));
        }
        incident.event_count = events.len() as u64;
        let store = self.dispatcher.store();
        match store.create(&incident, &events).await? {
            Created::New => {
                tracing::info!(incident_id = incident.incident_id.as_str(), status = %incident.status, "incident recorded");
                let incident = if incident.in_outbox() {
                    self.dispatcher.start(incident, event.raw()).await?
                } else {
                    incident
                };
                Ok(IntakeOutcome::Recorded { incident })
            }
            Created::Existing(existing) if existing.event_sha256 != incident.event_sha256 => {
                let incident = self
                    .record_conflict(*existing, event.raw(), &incident.event_sha256)
                    .await?;
                Ok(IntakeOutcome::Conflict { incident })
            }
            Created::Existing(existing) => {
                // A retry after a crash between record and start finds it still in the outbox.
                let incident = if existing.in_outbox() {
                    self.dispatcher.start(*existing, event.raw()).await?
                } else {
                    *existing
                };
                Ok(IntakeOutcome::Duplicate { incident })
            }
        }
    }

    async fn record_conflict(
        &self,
        mut current: Incident,
        raw: &Value,
        sha256: &str,
    ) -> Result<Incident, StoreError> {
        let store = self.dispatcher.store();
        loop {
            let now = self.dispatcher.clock().now();
            let next = current.advance(now);
            let event = NewEvent::new(
                EventType::Conflict,
                now,
                json!({ "eventSha256": sha256, "event": raw }),
            );
            match store.append(&next, &event).await {
                Ok(()) => {
                    tracing::warn!(
                        incident_id = next.incident_id.as_str(),
                        "a different event arrived under an existing incident id"
                    );
                    return Ok(next);
                }
                Err(StoreError::VersionConflict(id)) => {
                    current = store
                        .get(&current.incident_id)
                        .await?
                        .ok_or_else(|| StoreError::Failed(format!("incident {id} vanished")))?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn reject(
        &self,
        raw: &[u8],
        error: &EventError,
        now: DateTime<Utc>,
    ) -> Result<IntakeOutcome, StoreError> {
        let mut incident = incident::rejected(raw, now, self.ttl);
        let excerpt = &raw[..raw.len().min(REJECTED_EXCERPT_BYTES)];
        let event = NewEvent::new(
            EventType::Rejected,
            now,
            json!({
                "reason": error.to_string(),
                "bytes": raw.len(),
                "excerpt": String::from_utf8_lossy(excerpt),
            }),
        );
        incident.event_count = 1;
        incident.last_error = Some(error.to_string());
        let incident = match self.dispatcher.store().create(&incident, &[event]).await? {
            Created::New => incident,
            Created::Existing(existing) => *existing,
        };
        tracing::warn!(incident_id = incident.incident_id.as_str(), reason = %error, "input rejected");
        Ok(IntakeOutcome::Rejected {
            incident,
            reason: error.to_string(),
        })
    }
}
