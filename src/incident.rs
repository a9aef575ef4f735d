//! The incident: one alarm transition's projection (`sk = STATE`) and its append-only event log
//! (`sk = EVENT#<seq>`), the same model in DynamoDB and SQLite.
//!
//! The projection carries a `version` for optimistic concurrency: every change appends exactly
//! one event with `seq = event_count + 1` and replaces the projection on the condition that the
//! stored version is the one read. Two writers racing for the same change cannot both win.

use crate::event::{AlarmEvent, IncidentId, StateValue};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IncidentStatus {
    /// Recorded; the workflow is not started yet (the outbox holds it).
    Received,
    /// The workflow execution is started.
    Started,
    /// The workflow added the alarm's metric configuration.
    Enriched,
    /// DevOps Agent accepted the webhook.
    Delivered,
    /// The workflow failed; a redrive can move it on.
    Failed,
    /// An OK or INSUFFICIENT_DATA transition: recorded, nothing started.
    Ignored,
    /// Input that is not a deliverable alarm event: recorded with the reason.
    Rejected,
    /// Joined an open episode: delivered as `action: updated` to the primary's investigation.
    Correlated,
    /// Opened nothing and sent nothing: the same alarm again while its episode is open (a
    /// flap), or an episode that reached its update limit.
    Suppressed,
    /// Opened nothing: the alarm fired inside a CloudWatch mute window.
    Muted,
    /// The episode this incident opened (or closed) is over: `action: resolved` was delivered.
    Resolved,
    /// Rendered, signed and recorded, not sent (`DeliveryMode` `dry-run`).
    DryRun,
    /// The alarm opted out (`alarm-relay:enabled` = `false`): recorded, never delivered.
    Skipped,
}

impl IncidentStatus {
    pub const ALL: [Self; 13] = [
        Self::Received,
        Self::Started,
        Self::Enriched,
        Self::Delivered,
        Self::Failed,
        Self::Ignored,
        Self::Rejected,
        Self::Correlated,
        Self::Suppressed,
        Self::Muted,
        Self::Resolved,
        Self::DryRun,
        Self::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "RECEIVED",
            Self::Started => "STARTED",
            Self::Enriched => "ENRICHED",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
            Self::Ignored => "IGNORED",
            Self::Rejected => "REJECTED",
            Self::Correlated => "CORRELATED",
            Self::Suppressed => "SUPPRESSED",
            Self::Muted => "MUTED",
            Self::Resolved => "RESOLVED",
            Self::DryRun => "DRY_RUN",
            Self::Skipped => "SKIPPED",
        }
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown status name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown status {0:?}: expected one of RECEIVED, STARTED, ENRICHED, DELIVERED, FAILED, IGNORED, REJECTED, CORRELATED, SUPPRESSED, MUTED, RESOLVED, DRY_RUN, SKIPPED"
)]
pub struct UnknownStatus(pub String);

impl FromStr for IncidentStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownStatus(text.to_owned()))
    }
}

/// What happened to an incident; the `type` of an event-log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// The raw alarm event, first in every log.
    Received,
    /// The raw input could not be used; the reason and a bounded copy.
    Rejected,
    /// A non-ALARM transition: nothing to start.
    Ignored,
    /// A different event arrived under this incident id; kept, never merged.
    Conflict,
    ExecutionStarted,
    Enriched,
    EnrichmentFailed,
    /// Network Flow Monitor top-contributors queries the Enrich state started (their ids, so a
    /// retry reads them instead of starting new ones).
    TopContributorsStarted,
    /// One HTTP attempt: status, latency.
    DeliveryAttempted,
    Delivered,
    Failed,
    Redriven,
    /// The Correlate state's decision (opened, joined, suppressed, muted, recovered…), once.
    Correlated,
    /// The episode this incident opened was resolved (appended to the primary).
    Resolved,
    /// A dry run ended: what would have been sent is in the `DeliveryAttempted` before it.
    DryRun,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "Received",
            Self::Rejected => "Rejected",
            Self::Ignored => "Ignored",
            Self::Conflict => "Conflict",
            Self::ExecutionStarted => "ExecutionStarted",
            Self::Enriched => "Enriched",
            Self::EnrichmentFailed => "EnrichmentFailed",
            Self::TopContributorsStarted => "TopContributorsStarted",
            Self::DeliveryAttempted => "DeliveryAttempted",
            Self::Delivered => "Delivered",
            Self::Failed => "Failed",
            Self::Redriven => "Redriven",
            Self::Correlated => "Correlated",
            Self::Resolved => "Resolved",
            Self::DryRun => "DryRun",
        }
    }
}

/// The projection (`sk = STATE`): everything an operator asks about an incident, in one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub incident_id: IncidentId,
    pub status: IncidentStatus,
    /// Empty for a rejected input.
    pub alarm_name: String,
    pub alarm_arn: String,
    pub account: String,
    pub region: String,
    /// `ALARM`, `OK`, `INSUFFICIENT_DATA`; empty for a rejected input.
    pub state_value: String,
    pub state_timestamp: String,
    /// Hex SHA-256 of the raw event as received: tells a duplicate from a conflict.
    pub event_sha256: String,
    /// The deterministic Step Functions execution name; empty when nothing is to be started.
    pub execution_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    /// Delivery attempts so far.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Bumped by every change; the condition of every write.
    pub version: u64,
    /// How many events the log holds; the next event's `seq` is this plus one.
    pub event_count: u64,
    /// RFC 3339, milliseconds, UTC (sorts as text).
    pub created_at: String,
    pub updated_at: String,
    /// Epoch seconds after which the table may expire the incident (DynamoDB TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The episode the incident belongs to, once the Correlate state decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<Correlation>,
}

/// Where an incident stands in its episode (see [`crate::episode`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Correlation {
    /// The alarms' shared key: `group:<tag>`, `monitor:<…>` or `alarm:<arn>`.
    pub group_key: String,
    /// The incident whose investigation the episode's messages go to.
    pub primary_incident_id: IncidentId,
    /// `opened`, `joined`, `flapping`, `update-limit`, `muted`, `recovered`, `ignored`…
    pub decision: String,
    /// The member alarms' names when the decision was made.
    pub members: Vec<String>,
}

impl Incident {
    /// Whether the outbox (incidents recorded but not started) holds it.
    pub fn in_outbox(&self) -> bool {
        self.status == IncidentStatus::Received
    }

    /// The projection after one more event: version and event count bumped, `updated_at` now.
    /// Change the fields the event implies, then hand it to `IncidentStore::append`.
    pub fn advance(&self, now: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        next.version += 1;
        next.event_count += 1;
        next.updated_at = timestamp(now);
        next
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentEvent {
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// RFC 3339, milliseconds, UTC.
    pub at: String,
    pub data: Value,
}

/// An event about to be appended (the store assigns `seq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: EventType,
    pub at: String,
    pub data: Value,
}

impl NewEvent {
    pub fn new(kind: EventType, at: DateTime<Utc>, data: Value) -> Self {
        Self {
            kind,
            at: timestamp(at),
            data,
        }
    }
}

/// RFC 3339 with milliseconds and `Z`: the one time format of the store (sorts as text).
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The longest execution name Step Functions accepts.
pub const EXECUTION_NAME_MAX: usize = 80;

/// The Step Functions execution name of an incident: a readable prefix of the alarm name
/// (characters outside `[A-Za-z0-9-_]` become `-`) and 32 hex digits of SHA-256 of the
/// incident id. Deterministic, so a second StartExecution for the same incident names the same
/// execution; at most 80 characters of `[A-Za-z0-9-_]`.
pub fn execution_name(incident_id: &IncidentId, alarm_name: &str) -> String {
    let hash = &sha256_hex(incident_id.as_str().as_bytes())[..32];
    let prefix: String = alarm_name
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' {
                ch
            } else {
                '-'
            }
        })
        .take(EXECUTION_NAME_MAX - hash.len() - 1)
        .collect();
    format!("{prefix}-{hash}")
}

/// A new incident's projection from a parsed event: RECEIVED (to be started) for ALARM, and for
/// OK when `start_recoveries` (an OK can close an episode), IGNORED otherwise.
pub fn received(
    event: &AlarmEvent,
    raw: &[u8],
    now: DateTime<Utc>,
    ttl: Option<Duration>,
    start_recoveries: bool,
) -> Incident {
    let at = timestamp(now);
    let starts = match event.state().value {
        StateValue::Alarm => true,
        StateValue::Ok => start_recoveries,
        StateValue::InsufficientData => false,
    };
    Incident {
        incident_id: event.incident_id().clone(),
        status: if starts {
            IncidentStatus::Received
        } else {
            IncidentStatus::Ignored
        },
        alarm_name: event.alarm_name().to_owned(),
        alarm_arn: event.alarm_arn().to_owned(),
        account: event.account().to_owned(),
        region: event.region().to_owned(),
        state_value: event.state().value.as_str().to_owned(),
        state_timestamp: event.state_timestamp().to_owned(),
        event_sha256: sha256_hex(raw),
        execution_name: if starts {
            execution_name(event.incident_id(), event.alarm_name())
        } else {
            String::new()
        },
        execution_arn: None,
        attempts: 0,
        last_error: None,
        version: 1,
        event_count: 0,
        created_at: at.clone(),
        updated_at: at,
        expires_at: expiry(now, ttl),
        correlation: None,
    }
}

/// The projection of a rejected input. Its id is derived from the input's hash, so a poison
/// event redelivered by EventBridge is recorded once.
pub fn rejected(raw: &[u8], now: DateTime<Utc>, ttl: Option<Duration>) -> Incident {
    let at = timestamp(now);
    let hash = sha256_hex(raw);
    Incident {
        incident_id: IncidentId::rejected(&hash[..32]),
        status: IncidentStatus::Rejected,
        alarm_name: String::new(),
        alarm_arn: String::new(),
        account: String::new(),
        region: String::new(),
        state_value: String::new(),
        state_timestamp: String::new(),
        event_sha256: hash,
        execution_name: String::new(),
        execution_arn: None,
        attempts: 0,
        last_error: None,
        version: 1,
        event_count: 0,
        created_at: at.clone(),
        updated_at: at,
        expires_at: expiry(now, ttl),
        correlation: None,
    }
}

fn expiry(now: DateTime<Utc>, ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|ttl| now.timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn execution_name_is_readable_bounded_and_stable() {
        let id = IncidentId::new("NFM-Alarm-EKS-DB", "2026-11-24T10:00:00.000+0000");
        let name = execution_name(&id, "NFM-Alarm-EKS-DB");
        assert!(name.starts_with("NFM-Alarm-EKS-DB-"), "{name}");
        assert_eq!(name, execution_name(&id, "NFM-Alarm-EKS-DB"));
        let other = IncidentId::new("NFM-Alarm-EKS-DB", "2026-11-24T10:05:00.000+0000");
        assert_ne!(name, execution_name(&other, "NFM-Alarm-EKS-DB"));
    }

    proptest! {
        #[test]
        fn execution_names_obey_step_functions_rules(alarm in ".{0,300}", stamp in ".{0,40}") {
            let id = IncidentId::new(&alarm, &stamp);
            let name = execution_name(&id, &alarm);
            prop_assert!(!name.is_empty() && name.len() <= EXECUTION_NAME_MAX);
            prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{}", name);
        }
    }

    #[test]
    fn statuses_parse_case_insensitively_and_name_the_choices() {
        assert_eq!(
            "failed".parse::<IncidentStatus>(),
            Ok(IncidentStatus::Failed)
        );
        let error = "LOST".parse::<IncidentStatus>().unwrap_err().to_string();
        assert!(
            error.contains("RECEIVED") && error.contains("LOST"),
            "{error}"
        );
    }
}
