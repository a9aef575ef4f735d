//! Starting recorded incidents: the step after intake's durable write, and the sweeper that
//! retries it.
//!
//! An ALARM incident is recorded RECEIVED (in the outbox) before anything is started. Starting
//! it calls the [`WorkflowStarter`] with the incident's deterministic execution name and an input
//! built only from what was recorded, so every caller (intake right away, intake again on an
//! EventBridge retry, the sweeper later, several sweepers at once) asks for the same execution
//! and Step Functions runs it once. The projection then moves to STARTED with one
//! `ExecutionStarted` event; a writer that loses that race rereads and finds it done.

use crate::event::IncidentId;
use crate::incident::{EventType, Incident, NewEvent};
use crate::ports::{Clock, IncidentStore, StoreError, WorkflowStarter};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The execution input: `{"incidentId": …, "event": <the raw alarm event as recorded>}`.
pub fn execution_input(incident_id: &IncidentId, raw_event: &Value) -> Value {
    json!({ "incidentId": incident_id, "event": raw_event })
}

/// Starts incidents that are in the outbox.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn IncidentStore>,
    starter: Arc<dyn WorkflowStarter>,
    clock: Arc<dyn Clock>,
}

/// What the sweeper did in one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Outbox incidents older than the grace period.
    pub found: usize,
    /// Now STARTED (by this pass or, concurrently, by another writer).
    pub started: usize,
    /// Still in the outbox: the start failed and will be tried again.
    pub still_pending: usize,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn IncidentStore>,
        starter: Arc<dyn WorkflowStarter>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            starter,
            clock,
        }
    }

    pub fn store(&self) -> &Arc<dyn IncidentStore> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Starts `incident` (in the outbox) with the recorded `raw_event`, and marks it STARTED.
    /// Returns the projection as it now stands. A failed start leaves it in the outbox and is
    /// not an error: the sweeper tries again.
    pub async fn start(
        &self,
        incident: Incident,
        raw_event: &Value,
    ) -> Result<Incident, StoreError> {
        let input = execution_input(&incident.incident_id, raw_event);
        let incident_id = incident.incident_id.to_string();
        let incident_id = incident_id.as_str();
        let execution_arn = match self.starter.start(&incident.execution_name, &input).await {
            Ok(arn) => arn,
            Err(error) => {
                tracing::warn!(incident_id, %error, "workflow not started; the incident stays in the outbox");
                return Ok(incident);
            }
        };
        let mut current = incident;
        loop {
            if current.execution_arn.is_some() {
                return Ok(current);
            }
            let now = self.clock.now();
            let mut next = current.advance(now);
            // The execution may have got further (DELIVERED, FAILED) before this write: the
            // start and its ARN are recorded all the same, the status is left where it is.
            if current.in_outbox() {
                next.status = crate::incident::IncidentStatus::Started;
            }
            next.execution_arn = Some(execution_arn.clone());
            let event = NewEvent::new(
                EventType::ExecutionStarted,
                now,
                json!({ "executionName": next.execution_name, "executionArn": execution_arn }),
            );
            match self.store.append(&next, &event).await {
                Ok(()) => {
                    tracing::info!(incident_id, execution_arn, "workflow started");
                    return Ok(next);
                }
                Err(StoreError::VersionConflict(_)) => {
                    current = self.store.get(&next.incident_id).await?.ok_or_else(|| {
                        StoreError::Failed(format!("incident {incident_id} vanished"))
                    })?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One sweeper pass: starts outbox incidents recorded more than `grace` ago (younger ones
    /// are probably being started by intake right now), at most `limit` of them.
    pub async fn sweep(&self, grace: Duration, limit: usize) -> Result<SweepReport, StoreError> {
        let cutoff = self.clock.now() - chrono::Duration::from_std(grace).unwrap_or_default();
        let pending = self
            .store
            .outbox(&crate::incident::timestamp(cutoff), limit)
            .await?;
        let mut report = SweepReport {
            found: pending.len(),
            ..SweepReport::default()
        };
        for incident in pending {
            let events = self.store.events(&incident.incident_id).await?;
            let Some(raw_event) = events
                .iter()
                .find(|event| event.kind == EventType::Received)
                .and_then(|event| event.data.get("event"))
            else {
                tracing::error!(
                    incident_id = incident.incident_id.as_str(),
                    "outbox incident has no Received event"
                );
                report.still_pending += 1;
                continue;
            };
            let now = self.start(incident, raw_event).await?;
            if now.in_outbox() {
                report.still_pending += 1;
            } else {
                report.started += 1;
            }
        }
        Ok(report)
    }
}
