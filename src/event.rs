//! EventBridge `CloudWatch Alarm State Change` events, parsed tolerantly and validated once.
//!
//! The envelope is `aws_lambda_events`' [`EventBridgeEvent`]; the detail uses types of our own
//! because `aws_lambda_events::cloudwatch_alarms` models the alarm-*action* payload, whose
//! required fields make metric-math and composite alarms fail. Unknown fields are ignored, and the
//! whole event is kept as raw JSON (keys in order, numbers as written) for the audit log and for
//! the byte-exact pass-through of `configuration.metrics`.
//!
//! Everything the webhook body needs is checked here, so that rendering cannot fail: a parsed
//! [`AlarmEvent`] always renders.

use crate::pyjson::{self, NumberError};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// The `detail-type` EventBridge gives alarm state changes.
pub const DETAIL_TYPE: &str = "CloudWatch Alarm State Change";
/// EventBridge's limit on one event (PutEvents entry size), and ours on any input.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// The deepest nesting of arrays and objects accepted (real alarm events stay under 10).
pub const MAX_DEPTH: usize = 64;
/// The region the seed assumes when the envelope has none.
const DEFAULT_REGION: &str = "us-east-1";
/// How much of an offending value an error message quotes.
const QUOTE_LIMIT: usize = 80;

/// Why an input is not an alarm event this product can deliver. Messages are one line and
/// quote at most a short prefix of the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Larger than EventBridge would ever deliver.
    #[error("event is {size} bytes, over the {limit}-byte EventBridge event limit")]
    TooLarge { size: usize, limit: usize },
    /// Not a single well-formed JSON value (truncated, trailing bytes, `NaN`, invalid UTF-8…).
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// Arrays and objects nested deeper than [`MAX_DEPTH`].
    #[error("JSON nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    /// A number neither an `i64` nor a finite `f64` holds.
    #[error("{path}: {source}")]
    Number {
        path: String,
        #[source]
        source: NumberError,
    },
    /// Another kind of EventBridge event.
    #[error("detail-type is {found}, expected \"{DETAIL_TYPE}\"")]
    WrongDetailType { found: String },
    /// A required field missing, or a field of the wrong type.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl EventError {
    fn invalid(path: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The state an alarm moved into, or came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateValue {
    Alarm,
    Ok,
    InsufficientData,
}

impl StateValue {
    /// The name CloudWatch uses (`ALARM`, `OK`, `INSUFFICIENT_DATA`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "ALARM",
            Self::Ok => "OK",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for StateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `detail.state` or `detail.previousState`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmState {
    pub value: StateValue,
    #[serde(default)]
    pub reason: Option<String>,
    /// CloudWatch writes it as `2026-11-24T10:00:00.000+0000`; kept exactly as written because
    /// the incident id is built from it.
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub reason_data: Option<String>,
}

/// The part of `detail` this product reads; everything else stays in [`AlarmEvent::raw`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: AlarmState,
    #[serde(default)]
    previous_state: Option<AlarmState>,
    #[serde(default)]
    configuration: Option<Map<String, Value>>,
}

/// What kind of alarm changed state, as far as the event tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmKind {
    /// One metric (`metricStat`).
    Metric,
    /// Metric math: several metrics and expressions, one with `returnData`.
    MetricMath,
    /// An `ANOMALY_DETECTION_BAND` expression.
    AnomalyDetection,
    /// A rule over other alarms (`alarmRule`, no metrics).
    Composite,
}

/// The identity of one alarm transition: `<alarmName>-<state.timestamp>`, as the seed built it.
/// EventBridge may deliver a transition several times; each copy has the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(String);

impl IncidentId {
    pub fn new(alarm_name: &str, state_timestamp: &str) -> Self {
        Self(format!("{alarm_name}-{state_timestamp}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated alarm state change.
#[derive(Debug, Clone)]
pub struct AlarmEvent {
    raw: Value,
    incident_id: IncidentId,
    alarm_name: String,
    state: AlarmState,
    state_timestamp: String,
    previous_state: Option<AlarmState>,
    region: String,
    account: String,
    alarm_arn: String,
    metrics: Value,
    kind: AlarmKind,
}

impl AlarmEvent {
    /// Parses and validates raw bytes as they arrive from EventBridge, a file or an HTTP body.
    pub fn parse(bytes: &[u8]) -> Result<Self, EventError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge {
                size: bytes.len(),
                limit: MAX_EVENT_BYTES,
            });
        }
        let raw: Value = serde_json::from_slice(bytes).map_err(|error| {
            if error.to_string().starts_with("recursion limit exceeded") {
                EventError::TooDeep { limit: MAX_DEPTH }
            } else {
                EventError::NotJson(error.to_string())
            }
        })?;
        Self::from_value(raw)
    }

    /// Validates an already-parsed JSON value (the Lambda runtime hands events over parsed).
    pub fn from_value(raw: Value) -> Result<Self, EventError> {
        check_tree(&raw, &mut String::new(), 0)?;
        let envelope: EventBridgeEvent<AlarmDetail> = serde_path_to_error::deserialize(&raw)
            .map_err(|error| {
                let path = shorten(&error.path().to_string());
                let reason = error.into_inner().to_string();
                EventError::invalid(&path, strip_position(&reason))
            })?;
        if envelope.detail_type != DETAIL_TYPE {
            return Err(EventError::WrongDetailType {
                found: quote(&envelope.detail_type),
            });
        }
        let detail = envelope.detail;
        let state_timestamp = detail
            .state
            .timestamp
            .clone()
            .ok_or_else(|| EventError::invalid("detail.state", "missing field `timestamp`"))?;
        let configuration = detail.configuration.unwrap_or_default();
        let metrics = configuration
            .get("metrics")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        check_first_metric(&metrics)?;
        let kind = alarm_kind(&configuration, &metrics);
        let alarm_arn = match envelope.resources {
            Some(resources) => resources.into_iter().next().unwrap_or_default(),
            None => String::new(),
        };
        Ok(Self {
            incident_id: IncidentId::new(&detail.alarm_name, &state_timestamp),
            alarm_name: detail.alarm_name,
            state: detail.state,
            state_timestamp,
            previous_state: detail.previous_state,
            region: envelope.region.unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            account: envelope.account.unwrap_or_default(),
            alarm_arn,
            metrics,
            kind,
            raw,
        })
    }

    /// The event exactly as received (keys in order, numbers as written).
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    pub fn incident_id(&self) -> &IncidentId {
        &self.incident_id
    }

    pub fn alarm_name(&self) -> &str {
        &self.alarm_name
    }

    pub fn state(&self) -> &AlarmState {
        &self.state
    }

    /// `detail.state.timestamp`, as written.
    pub fn state_timestamp(&self) -> &str {
        &self.state_timestamp
    }

    pub fn previous_state(&self) -> Option<&AlarmState> {
        self.previous_state.as_ref()
    }

    /// The envelope's region, `us-east-1` when absent (as in the seed).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The envelope's account, empty when absent.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The first of `resources` (the alarm ARN), empty when there is none.
    pub fn alarm_arn(&self) -> &str {
        &self.alarm_arn
    }

    /// `detail.configuration.metrics` as written, `[]` when absent.
    pub fn metrics(&self) -> &Value {
        &self.metrics
    }

    pub fn kind(&self) -> AlarmKind {
        self.kind
    }

    /// `metrics[0].metricStat.metric` when there is one (an object, checked at parse).
    pub fn first_metric(&self) -> Option<&Map<String, Value>> {
        first_metric(&self.metrics)
    }
}

/// Walks the tree once: nesting depth and numbers Python and Rust would read differently.
fn check_tree(value: &Value, path: &mut String, depth: usize) -> Result<(), EventError> {
    match value {
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => {
            Err(EventError::TooDeep { limit: MAX_DEPTH })
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                check_tree(item, path, depth + 1)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                check_tree(item, path, depth + 1)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Number(number) => {
            pyjson::check_number(number)
                .map(drop)
                .map_err(|source| EventError::Number {
                    path: if path.is_empty() {
                        ".".into()
                    } else {
                        shorten(path)
                    },
                    source,
                })
        }
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

/// The seed reads `metrics[0].metricStat.metric.{namespace,name,dimensions}` into the
/// description; refuse the shapes on which it would crash or print a Python `repr`.
fn check_first_metric(metrics: &Value) -> Result<(), EventError> {
    const PATH: &str = "detail.configuration.metrics";
    let first = match metrics {
        Value::Null => return Ok(()),
        Value::Array(items) => match items.first() {
            None => return Ok(()),
            Some(first) => first,
        },
        _ => return Err(EventError::invalid(PATH, "must be an array")),
    };
    let first = first
        .as_object()
        .ok_or_else(|| EventError::invalid(&format!("{PATH}[0]"), "must be an object"))?;
    let Some(stat) = first.get("metricStat") else {
        return Ok(());
    };
    let stat = stat.as_object().ok_or_else(|| {
        EventError::invalid(&format!("{PATH}[0].metricStat"), "must be an object")
    })?;
    let Some(metric) = stat.get("metric") else {
        return Ok(());
    };
    let metric = metric.as_object().ok_or_else(|| {
        EventError::invalid(&format!("{PATH}[0].metricStat.metric"), "must be an object")
    })?;
    for field in ["namespace", "name"] {
        if metric.get(field).is_some_and(|value| !value.is_string()) {
            return Err(EventError::invalid(
                &format!("{PATH}[0].metricStat.metric.{field}"),
                "must be a string",
            ));
        }
    }
    Ok(())
}

fn first_metric(metrics: &Value) -> Option<&Map<String, Value>> {
    metrics
        .as_array()?
        .first()?
        .get("metricStat")?
        .get("metric")?
        .as_object()
}

fn alarm_kind(configuration: &Map<String, Value>, metrics: &Value) -> AlarmKind {
    if configuration.contains_key("alarmRule") {
        return AlarmKind::Composite;
    }
    let expressions: Vec<&str> = metrics
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|metric| metric.get("expression")?.as_str())
        .collect();
    if expressions
        .iter()
        .any(|expression| expression.contains("ANOMALY_DETECTION_BAND"))
    {
        AlarmKind::AnomalyDetection
    } else if expressions.is_empty() {
        AlarmKind::Metric
    } else {
        AlarmKind::MetricMath
    }
}

/// serde's messages end in " at line L column C", meaningless for a value already parsed.
fn strip_position(reason: &str) -> &str {
    reason
        .find(" at line ")
        .map_or(reason, |index| &reason[..index])
}

/// A path (made of user-chosen keys) cut to [`QUOTE_LIMIT`] characters for an error message.
fn shorten(path: &str) -> String {
    match path.char_indices().nth(QUOTE_LIMIT) {
        Some((index, _)) => format!("{}…", &path[..index]),
        None => path.to_owned(),
    }
}

/// A value quoted for an error message: JSON-escaped and cut to [`QUOTE_LIMIT`] characters.
fn quote(text: &str) -> String {
    let cut: String = text.chars().take(QUOTE_LIMIT).collect();
    let mut out = String::new();
    pyjson::write_str(&mut out, &cut);
    if cut.len() < text.len() {
        out.push('…');
    }
    out
}
