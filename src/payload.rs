//! The webhook body DevOps Agent receives: the seed's payload, byte for byte.
//!
//! For every event the seed handles, [`WebhookBody::render`] returns exactly the bytes of the
//! seed's `json.dumps(payload)`: same keys in the same order, same `description` text, the
//! event's `metrics` passed through unchanged. The signature covers these bytes, and DevOps Agent
//! deduplicates repeated messages, so every retry sends the same bytes.

use crate::event::AlarmEvent;
use crate::pyjson;
use crate::routing::AlarmSettings;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The exact bytes of one webhook body (ASCII JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookBody(String);

impl WebhookBody {
    /// The body for `event`, whatever its state (the seed skips non-ALARM states before
    /// building it; rendering them shows what it would have sent).
    pub fn render(event: &AlarmEvent) -> Self {
        Self::render_enriched(event, None)
    }

    /// [`WebhookBody::render`] plus the workflow's enrichment under the new key
    /// `data.enrichment`, after `data.metadata`: every seed key keeps its exact bytes.
    pub fn render_enriched(event: &AlarmEvent, enrichment: Option<&Value>) -> Self {
        Self(pyjson::dumps(&seed_payload(event, enrichment, None)))
    }

    /// The body of a Correlate decision (`crate::correlate`): `created` is
    /// [`WebhookBody::render_enriched`]; `updated` (another alarm joined the episode) and
    /// `resolved` (every member recovered) go to the primary's `incidentId`, name the alarm,
    /// keep the seed's `data.metadata` of this event and add `data.correlation`
    /// (`schemas/webhook-updated.schema.json`, `schemas/webhook-resolved.schema.json`).
    pub fn render_decision(
        event: &AlarmEvent,
        enrichment: Option<&Value>,
        decision: &Value,
    ) -> Self {
        Self::render_for(event, enrichment, Some(decision), None)
    }

    /// The body the Deliver state sends: [`WebhookBody::render_decision`] (without a decision,
    /// `created`), with the alarm's tag `settings` (`crate::routing`): `priority` and `service`.
    /// Without tags the settings are the seed's, and so are the bytes.
    pub fn render_for(
        event: &AlarmEvent,
        enrichment: Option<&Value>,
        decision: Option<&Value>,
        settings: Option<&AlarmSettings>,
    ) -> Self {
        let action = decision
            .and_then(|decision| decision["action"].as_str())
            .unwrap_or("created");
        let Some(decision) = decision.filter(|_| action == "updated" || action == "resolved")
        else {
            return Self(pyjson::dumps(&seed_payload(event, enrichment, settings)));
        };
        let text = |key: &str| decision[key].as_str().unwrap_or("");
        let members: Vec<&str> = decision["members"]
            .as_array()
            .map(|members| members.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let primary_alarm = members.first().copied().unwrap_or(event.alarm_name());
        let reason = event.state().reason.as_deref().unwrap_or("");
        let (title, lead) = if action == "updated" {
            (
                format!(
                    "CloudWatch Alarm: {} joined {primary_alarm}",
                    event.alarm_name()
                ),
                format!(
                    "Correlated alarm: {} entered ALARM in the same episode as {primary_alarm} (group {}).",
                    event.alarm_name(),
                    text("groupKey")
                ),
            )
        } else {
            (
                format!("CloudWatch Alarm: {primary_alarm} resolved"),
                format!(
                    "Resolved: every alarm of the episode ({}) has recovered and stayed quiet; the last to recover was {}.",
                    members.join(", "),
                    event.alarm_name()
                ),
            )
        };
        let mut payload = seed_payload(event, enrichment, settings);
        payload["incidentId"] = json!(text("primaryIncidentId"));
        payload["action"] = json!(action);
        payload["title"] = json!(title);
        payload["description"] = json!(format!("{lead}\n{}", description(event, reason)));
        if let Some(data) = payload["data"].as_object_mut() {
            data.insert(
                "correlation".to_owned(),
                json!({
                    "groupKey": text("groupKey"),
                    "primaryIncidentId": text("primaryIncidentId"),
                    "incidentId": event.incident_id().as_str(),
                    "episode": decision["episode"],
                    "members": members,
                }),
            );
        }
        Self(pyjson::dumps(&payload))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Hex SHA-256 of the bytes: lets the audit trail show that every attempt sent the same body.
    pub fn sha256_hex(&self) -> String {
        let digest = Sha256::digest(self.as_bytes());
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

/// The seed's payload for `event`, with `enrichment` under `data.enrichment`, and the priority
/// and service of `settings` (the seed's HIGH and alarm name without).
fn seed_payload(
    event: &AlarmEvent,
    enrichment: Option<&Value>,
    settings: Option<&AlarmSettings>,
) -> Value {
    let state = event.state();
    let reason = state.reason.as_deref().unwrap_or("");
    let priority = settings.map_or("HIGH", |settings| settings.priority.as_str());
    let service = settings
        .and_then(|settings| settings.service.as_deref())
        .unwrap_or(event.alarm_name());
    let mut payload = json!({
        "eventType": "incident",
        "incidentId": event.incident_id().as_str(),
        "action": "created",
        "priority": priority,
        "title": format!("CloudWatch Alarm: {}", event.alarm_name()),
        "description": description(event, reason),
        "timestamp": event.state_timestamp(),
        "service": service,
        "data": {
            "metadata": {
                "alarmName": event.alarm_name(),
                "region": event.region(),
                "accountId": event.account(),
                "newState": state.value.as_str(),
                "reason": reason,
                "alarmArn": event.alarm_arn(),
                "metrics": event.metrics(),
            }
        }
    });
    if let (Some(enrichment), Some(data)) = (enrichment, payload["data"].as_object_mut()) {
        data.insert("enrichment".to_owned(), enrichment.clone());
    }
    payload
}

/// The seed's description: five fixed lines, then the first metric when there is one.
fn description(event: &AlarmEvent, reason: &str) -> String {
    let mut text = format!(
        "CloudWatch Alarm: {}\nAWS Account: {}\nRegion: {}\nState: {}\nReason: {}",
        event.alarm_name(),
        event.account(),
        event.region(),
        event.state().value,
        reason
    );
    if pyjson::truthy(event.metrics()) {
        let empty = Map::new();
        let metric = event.first_metric().unwrap_or(&empty);
        let field = |name: &str| metric.get(name).and_then(Value::as_str).unwrap_or("");
        text.push_str(&format!(
            "\nMetric: {}/{}",
            field("namespace"),
            field("name")
        ));
        if let Some(dimensions) = metric.get("dimensions").filter(|d| pyjson::truthy(d)) {
            text.push_str("\nDimensions: ");
            text.push_str(&pyjson::dumps(dimensions));
        }
    }
    text
}
