//! Writing workflow outcomes into the incident's record: the Record state (DELIVERED,
//! CORRELATED or RESOLVED), and the Step Functions `Execution Status Change` events (FAILED,
//! TIMED_OUT, ABORTED, and a redriven execution running again). The recorder Lambda, which also
//! runs the Correlate and ConfirmResolve states ([`crate::correlate`]), and the local engine
//! both call [`invoke`].
//!
//! Failures are recorded from the status-change event rather than by a Catch in the workflow:
//! a Catch would end the execution in a Fail state, and a console redrive would then re-run
//! that Fail state instead of the delivery. Status-change events arrive at least once, so each
//! outcome is appended once per (execution, redrive count, status).

use crate::config::CorrelationConfig;
use crate::correlate;
use crate::event::IncidentId;
use crate::incident::{EventType, Incident, IncidentStatus, NewEvent};
use crate::ports::{Clock, IncidentStore, StoreError};
use serde_json::{Value, json};

/// The `detail-type` of Step Functions status-change events.
pub const STATUS_CHANGE_DETAIL_TYPE: &str = "Step Functions Execution Status Change";
/// How much of an execution's `cause` is kept.
const CAUSE_LIMIT: usize = 1024;

/// Why an outcome could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecorderError {
    /// The input is neither a Record-state input nor a status-change event of this workflow.
    #[error("recorder input: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RecorderError {
    /// The Lambda error type (`Payload.Invalid`, `Store.Unavailable`, `Store.Failed`).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "Payload.Invalid",
            Self::Store(error) => error.error_type(),
        }
    }
}

/// Everything the recorder Lambda is invoked with: the Correlate and ConfirmResolve states'
/// input (it has `step`), answered by [`correlate::handle`]; anything else by [`handle`].
pub async fn invoke(
    input: &Value,
    correlation: &CorrelationConfig,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<Value, RecorderError> {
    if input.get("step").is_some() {
        correlate::handle(input, correlation, store, clock).await
    } else {
        handle(input, store, clock).await
    }
}

/// Records what `input` reports: a status-change event (it has `detail-type`) or the Record
/// state's `{"incidentId", "delivery", "correlation"?}`. Answers `{"incidentId", "status"}`.
pub async fn handle(
    input: &Value,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<Value, RecorderError> {
    let incident = if input.get("detail-type").is_some() {
        record_status_change(input, store, clock).await?
    } else {
        record_delivered(input, store, clock).await?
    };
    Ok(json!({ "incidentId": incident.incident_id, "status": incident.status }))
}

async fn record_delivered(
    input: &Value,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<Incident, RecorderError> {
    let id = incident_id(input.get("incidentId"))?;
    let delivery = input
        .get("delivery")
        .filter(|delivery| delivery.is_object())
        .ok_or_else(|| {
            RecorderError::Invalid("`delivery` must be the signer's delivery record".into())
        })?;
    // What was delivered: `created` (the default, and what executions started before
    // correlation existed delivered), `updated` or `resolved` (see crate::correlate).
    let action = input
        .pointer("/correlation/action")
        .and_then(Value::as_str)
        .unwrap_or("created");
    let dry_run = delivery.get("outcome").and_then(Value::as_str) == Some("dry-run");
    let (status, kind) = match action {
        _ if dry_run => (IncidentStatus::DryRun, EventType::DryRun),
        "updated" => (IncidentStatus::Correlated, EventType::Delivered),
        "resolved" => (IncidentStatus::Resolved, EventType::Delivered),
        _ => (IncidentStatus::Delivered, EventType::Delivered),
    };
    let data = json!({
        "statusCode": delivery.pointer("/attempts").and_then(Value::as_array).and_then(|a| a.last()).and_then(|a| a.get("statusCode")),
        "bodySha256": delivery.get("bodySha256"),
        "action": action,
    });
    let incident = append_once(store, clock, &id, kind, data, |incident| {
        incident.status = status;
        incident.last_error = None;
    })
    .await?;
    if status == IncidentStatus::Resolved
        && let Some(primary) = input
            .pointer("/correlation/primaryIncidentId")
            .and_then(Value::as_str)
            .map(IncidentId::from_raw)
            .filter(|primary| *primary != id)
    {
        let data = json!({ "resolvedBy": id, "groupKey": input.pointer("/correlation/groupKey") });
        append_once(
            store,
            clock,
            &primary,
            EventType::Resolved,
            data,
            |incident| {
                incident.status = IncidentStatus::Resolved;
            },
        )
        .await?;
    }
    Ok(incident)
}

async fn record_status_change(
    event: &Value,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<Incident, RecorderError> {
    if event["detail-type"] != STATUS_CHANGE_DETAIL_TYPE {
        return Err(RecorderError::Invalid(format!(
            "detail-type must be {STATUS_CHANGE_DETAIL_TYPE:?}"
        )));
    }
    let detail = &event["detail"];
    let input: Value = detail["input"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| {
            RecorderError::Invalid("detail.input is not the workflow's JSON input".into())
        })?;
    let id = incident_id(input.get("incidentId"))?;
    let status = detail["status"].as_str().unwrap_or_default();
    let redrive_count = detail["redriveCount"].as_u64().unwrap_or(0);
    let execution_arn = detail["executionArn"].clone();
    match status {
        "FAILED" | "TIMED_OUT" | "ABORTED" => {
            let error = detail["error"].as_str().unwrap_or(status).to_owned();
            let cause: String = detail["cause"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(CAUSE_LIMIT)
                .collect();
            let data = json!({
                "executionArn": execution_arn, "status": status, "redriveCount": redrive_count,
                "error": error, "cause": cause,
            });
            append_once(store, clock, &id, EventType::Failed, data, |incident| {
                incident.status = IncidentStatus::Failed;
                incident.last_error = Some(error.clone());
            })
            .await
        }
        "RUNNING" if redrive_count > 0 => {
            let data = json!({ "executionArn": execution_arn, "redriveCount": redrive_count });
            append_once(store, clock, &id, EventType::Redriven, data, |incident| {
                incident.status = IncidentStatus::Started;
            })
            .await
        }
        _ => current(store, &id).await,
    }
}

/// Appends `kind` with `data` unless an event of that kind with the same data is already in the
/// log (the source delivers at least once), updating the projection with `change`; rereads and
/// tries again when another writer got there first.
async fn append_once(
    store: &dyn IncidentStore,
    clock: &dyn Clock,
    id: &IncidentId,
    kind: EventType,
    data: Value,
    change: impl Fn(&mut Incident),
) -> Result<Incident, RecorderError> {
    loop {
        let incident = current(store, id).await?;
        let events = store.events(id).await?;
        if events
            .iter()
            .any(|event| event.kind == kind && event.data == data)
        {
            return Ok(incident);
        }
        let now = clock.now();
        let mut next = incident.advance(now);
        change(&mut next);
        match store
            .append(&next, &NewEvent::new(kind, now, data.clone()))
            .await
        {
            Ok(()) => {
                tracing::info!(incident_id = id.as_str(), event = kind.as_str(), status = %next.status, "workflow outcome recorded");
                return Ok(next);
            }
            Err(StoreError::VersionConflict(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
}

async fn current(store: &dyn IncidentStore, id: &IncidentId) -> Result<Incident, RecorderError> {
    store
        .get(id)
        .await?
        .ok_or_else(|| RecorderError::Invalid(format!("no incident {id}")))
}

fn incident_id(value: Option<&Value>) -> Result<IncidentId, RecorderError> {
    value
        .and_then(Value::as_str)
        .map(IncidentId::from_raw)
        .ok_or_else(|| RecorderError::Invalid("`incidentId` must be a string".into()))
}
