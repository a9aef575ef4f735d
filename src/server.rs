//! `serve`'s HTTP API over the local [`Pipeline`] (axum):
//!
//! - `POST /events`: an EventBridge alarm event. `202 {"incidentId", "status"}` once it is
//!   durably recorded (and its workflow started), `200` with the current status for a
//!   duplicate, `400 {"error", "incidentId"}` for input that is not a deliverable alarm event,
//!   `413 {"error", "incidentId"}` for a body over the EventBridge limit (256 KiB). Bad input is
//!   recorded as a REJECTED incident (with an excerpt) before the answer, so it is never lost.
//!   `503 {"error"}` when the store is busy (retry), `500` when it failed.
//! - `GET /incidents/{id}`: `{"incident", "events": [{"seq", "type", "at", "data"}], "history"}`,
//!   the history in the shape of Step Functions' GetExecutionHistory; `404` when unknown.
//! - `POST /incidents/{id}/redrive`: redrives the incident's failed execution; `202
//!   {"incidentId", "executionArn", "status"}` (the execution's status, `RUNNING`), `404` when
//!   unknown, `409 {"error"}` when there is nothing to redrive.
//! - `GET /healthz`: `200 {"status": "ok"}`.

use crate::engine::EngineError;
use crate::engine::pipeline::Pipeline;
use crate::event::{IncidentId, MAX_EVENT_BYTES};
use crate::intake::IntakeOutcome;
use crate::ports::StoreError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::{Value, json};

/// The API's routes over `pipeline`.
pub fn router(pipeline: Pipeline) -> Router {
    Router::new()
        .route("/events", post(post_event))
        .route("/incidents/{id}", get(get_incident))
        .route("/incidents/{id}/redrive", post(redrive))
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .with_state(pipeline)
}

/// A JSON answer.
fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn store_failure(error: &StoreError) -> Response {
    let status = match error {
        StoreError::Unavailable(_) | StoreError::VersionConflict(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        StoreError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::error!(%error, "store failure answering a request");
    answer(status, json!({ "error": error.to_string() }))
}

/// Reads at most one byte more than the EventBridge limit: enough to know it is too large.
/// A body that breaks off is an error, with what was read of it.
async fn read_capped(body: Body) -> Result<(Vec<u8>, bool), (Vec<u8>, axum::Error)> {
    let mut body = body;
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => return Err((bytes, error)),
        };
        if let Ok(data) = frame.into_data() {
            let room = MAX_EVENT_BYTES + 1 - bytes.len();
            bytes.extend_from_slice(&data[..data.len().min(room)]);
            if bytes.len() > MAX_EVENT_BYTES {
                return Ok((bytes, true));
            }
        }
    }
    Ok((bytes, false))
}

async fn post_event(State(pipeline): State<Pipeline>, body: Body) -> Response {
    let (bytes, oversized) = match read_capped(body).await {
        Ok(read) => read,
        Err((partial, error)) => {
            // What arrived is recorded (as REJECTED: a cut-off event does not parse).
            let recorded = pipeline.intake.handle(&partial).await;
            let mut answer_body = json!({ "error": format!("reading the body: {error}") });
            if let Ok(outcome) = recorded {
                answer_body["incidentId"] = json!(outcome.incident().incident_id);
            }
            return answer(StatusCode::BAD_REQUEST, answer_body);
        }
    };
    match pipeline.intake.handle(&bytes).await {
        Ok(IntakeOutcome::Recorded { incident }) => answer(
            StatusCode::ACCEPTED,
            json!({ "incidentId": incident.incident_id, "status": incident.status }),
        ),
        Ok(IntakeOutcome::Duplicate { incident } | IntakeOutcome::Conflict { incident }) => answer(
            StatusCode::OK,
            json!({ "incidentId": incident.incident_id, "status": incident.status }),
        ),
        Ok(IntakeOutcome::Rejected { incident, reason }) => answer(
            if oversized {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            },
            json!({ "error": reason, "incidentId": incident.incident_id }),
        ),
        Err(error) => store_failure(&error),
    }
}

async fn get_incident(State(pipeline): State<Pipeline>, Path(id): Path<String>) -> Response {
    let id = IncidentId::from_raw(id);
    let incident = match pipeline.store.get(&id).await {
        Ok(Some(incident)) => incident,
        Ok(None) => return not_found(&id),
        Err(error) => return store_failure(&error),
    };
    let events = match pipeline.store.events(&id).await {
        Ok(events) => events,
        Err(error) => return store_failure(&error),
    };
    let history = match &incident.execution_arn {
        Some(arn) => match pipeline.engine.executions().get(arn).await {
            Ok(execution) => execution.map(|execution| execution.history().to_vec()),
            Err(error) => return store_failure(&error),
        },
        None => None,
    };
    answer(
        StatusCode::OK,
        json!({ "incident": incident, "events": events, "history": history.unwrap_or_default() }),
    )
}

async fn redrive(State(pipeline): State<Pipeline>, Path(id): Path<String>) -> Response {
    let id = IncidentId::from_raw(id);
    let incident = match pipeline.store.get(&id).await {
        Ok(Some(incident)) => incident,
        Ok(None) => return not_found(&id),
        Err(error) => return store_failure(&error),
    };
    let Some(arn) = incident.execution_arn else {
        return answer(
            StatusCode::CONFLICT,
            json!({ "error": format!("incident {id} has no execution to redrive (status {})", incident.status) }),
        );
    };
    match pipeline.engine.redrive(&arn).await {
        Ok(status) => answer(
            StatusCode::ACCEPTED,
            json!({ "incidentId": id, "executionArn": arn, "status": status }),
        ),
        Err(EngineError::Store(error)) => store_failure(&error),
        Err(EngineError::NotFound(_)) => not_found(&id),
        Err(error) => answer(StatusCode::CONFLICT, json!({ "error": error.to_string() })),
    }
}

fn not_found(id: &IncidentId) -> Response {
    answer(
        StatusCode::NOT_FOUND,
        json!({ "error": format!("no incident {id}") }),
    )
}
