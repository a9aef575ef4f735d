//! `serve`'s HTTP API over the local [`Pipeline`] (axum):
//!
//! - `POST /events`: an EventBridge alarm event. `202 {"incidentId", "status"}` once it is
//!   durably recorded (and its workflow started), `200` with the current status for a
//!   duplicate, `400 {"error", "incidentId"}` for input that is not a deliverable alarm event,
//!   `413 {"error", "incidentId"}` for a body over the EventBridge limit (256 KiB), `408
//!   {"error", "incidentId"}` for a body not all there within the body timeout. Bad input is
//!   recorded as a REJECTED incident (with an excerpt) before the answer, so it is never lost.
//!   `503 {"error"}` when the store is busy (retry), `500` when it failed.
//! - `GET /incidents/{id}`: `{"incident", "events": [{"seq", "type", "at", "data"}], "history"}`,
//!   the history in the shape of Step Functions' GetExecutionHistory; `404` when unknown.
//! - `POST /incidents/{id}/redrive`: redrives the incident's failed execution; `202
//!   {"incidentId", "executionArn", "status"}` (the execution's status, `RUNNING`), `404` when
//!   unknown, `409 {"error"}` when there is nothing to redrive.
//! - `GET /healthz`: `200 {"status": "ok"}`.
//!
//! With a token ([`Access::Token`], `serve --token-file`) every request but `GET /healthz`
//! needs `Authorization: Bearer <token>` (compared in constant time); without it the answer is
//! `401 {"error"}` with `WWW-Authenticate: Bearer`, and nothing is recorded. The token is never
//! logged. How connections are bounded is [`connections`].

mod connections;

pub use connections::{DRAIN, Limits, serve};

use crate::engine::EngineError;
use crate::engine::pipeline::Pipeline;
use crate::event::{IncidentId, MAX_EVENT_BYTES};
use crate::intake::IntakeOutcome;
use crate::ports::StoreError;
use crate::secret::ApiKey;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Who may call the API.
#[derive(Clone)]
pub enum Access {
    /// Whoever reaches it (`serve` on loopback without a token, or `--insecure-no-auth`).
    Open,
    /// Holders of this bearer token.
    Token(Arc<ApiKey>),
}

/// The API's routes over `pipeline`, open to all, with the default body timeout.
pub fn router(pipeline: Pipeline) -> Router {
    router_with(pipeline, Access::Open, Limits::default().body_timeout)
}

/// The API's routes over `pipeline`: `access` says who may call them (`/healthz` is open to
/// all), and a body must arrive within `body_timeout`.
pub fn router_with(pipeline: Pipeline, access: Access, body_timeout: Duration) -> Router {
    let api = Router::new()
        .route("/events", post(post_event))
        .route("/incidents/{id}", get(get_incident))
        .route("/incidents/{id}/redrive", post(redrive));
    let api = match access {
        Access::Open => api,
        Access::Token(token) => api.layer(axum::middleware::from_fn_with_state(token, authorize)),
    };
    api.route(
        "/healthz",
        get(|| async { Json(json!({ "status": "ok" })) }),
    )
    .with_state(Api {
        pipeline,
        body_timeout,
    })
}

/// What the handlers share.
#[derive(Clone)]
struct Api {
    pipeline: Pipeline,
    body_timeout: Duration,
}

/// Lets a request with the bearer token through; answers `401` to any other.
async fn authorize(State(token): State<Arc<ApiKey>>, request: Request, next: Next) -> Response {
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| token.authorizes(value));
    if authorized {
        return next.run(request).await;
    }
    tracing::warn!(method = %request.method(), path = request.uri().path(), "unauthorized request refused");
    let mut response = answer(
        StatusCode::UNAUTHORIZED,
        json!({ "error": "unauthorized: this serve takes requests with Authorization: Bearer <the --token-file token>" }),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
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
/// A body that breaks off, or is not all there within `timeout`, is an error, with what was
/// read of it and the status to answer (`408` for the timeout, `400` otherwise).
async fn read_capped(
    body: Body,
    timeout: Duration,
) -> Result<(Vec<u8>, bool), (Vec<u8>, StatusCode, String)> {
    let mut body = body;
    let mut bytes = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => {
                return Err((
                    bytes,
                    StatusCode::REQUEST_TIMEOUT,
                    format!("timed out after {} s", timeout.as_secs_f64()),
                ));
            }
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => return Err((bytes, StatusCode::BAD_REQUEST, error.to_string())),
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

async fn post_event(State(api): State<Api>, body: Body) -> Response {
    let pipeline = api.pipeline;
    let (bytes, oversized) = match read_capped(body, api.body_timeout).await {
        Ok(read) => read,
        Err((partial, status, error)) => {
            // What arrived is recorded (as REJECTED: a cut-off event does not parse).
            let recorded = pipeline.intake.handle(&partial).await;
            let mut answer_body = json!({ "error": format!("reading the body: {error}") });
            if let Ok(outcome) = recorded {
                answer_body["incidentId"] = json!(outcome.incident().incident_id);
            }
            return answer(status, answer_body);
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

async fn get_incident(State(Api { pipeline, .. }): State<Api>, Path(id): Path<String>) -> Response {
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

async fn redrive(State(Api { pipeline, .. }): State<Api>, Path(id): Path<String>) -> Response {
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
