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
    /// Path and reason may quote the input: both are made one short line.
    fn invalid(path: &str, reason: impl AsRef<str>) -> Self {
        Self::Invalid {
            path: one_line(path),
            reason: one_line(reason.as_ref()),
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

    /// The id of a rejected input: `rejected-` and a hash of its bytes.
    pub fn rejected(hash: &str) -> Self {
        Self(format!("rejected-{hash}"))
    }

    /// An id as an operator typed it (audit, redrive).
    pub fn from_raw(id: impl Into<String>) -> Self {
        Self(id.into())
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
        // Name the real problem for other events before their detail fails our types.
        if let Some(found) = raw.get("detail-type").and_then(Value::as_str)
            && found != DETAIL_TYPE
        {
            return Err(EventError::WrongDetailType {
                found: quote(found),
            });
        }
        require_objects(&raw)?;
        refuse_nulls(&raw)?;
        let envelope: EventBridgeEvent<AlarmDetail> = serde_path_to_error::deserialize(&raw)
            .map_err(|error| {
                let path = error.path().to_string();
                EventError::invalid(&path, error.into_inner().to_string())
            })?;
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
                        one_line(path)
                    },
                    source,
                })
        }
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

/// serde's derive also reads a struct from an array (`"state": ["ALARM", null, "…"]`); the
/// seed would crash on those, so the envelope and every struct in it must be a JSON object.
fn require_objects(raw: &Value) -> Result<(), EventError> {
    let not_object = |path: &str| EventError::invalid(path, "must be an object");
    if !raw.is_object() {
        return Err(not_object("."));
    }
    let Some(detail) = raw.get("detail") else {
        return Ok(());
    };
    if !detail.is_object() {
        return Err(not_object("detail"));
    }
    for (key, nullable) in [("state", false), ("previousState", true)] {
        match detail.get(key) {
            None => {}
            Some(Value::Null) if nullable => {}
            Some(Value::Object(_)) => {}
            Some(_) => return Err(not_object(&format!("detail.{key}"))),
        }
    }
    Ok(())
}

/// The seed reads these with `dict.get(key, default)`, which yields `None` for an explicit
/// `null` (and so `Region: None` in the description). EventBridge never writes them as `null`,
/// so rather than copy that artifact, such an event is refused, naming the field.
fn refuse_nulls(raw: &Value) -> Result<(), EventError> {
    let fields = [
        ("region", raw.get("region")),
        ("account", raw.get("account")),
        ("resources", raw.get("resources")),
        ("detail.state.reason", raw.pointer("/detail/state/reason")),
    ];
    match fields
        .into_iter()
        .find(|(_, value)| value.is_some_and(Value::is_null))
    {
        Some((path, _)) => Err(EventError::invalid(path, "must not be null when present")),
        None => Ok(()),
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

/// Text from the input made fit for a one-line error message: control characters escaped, cut
/// to [`QUOTE_LIMIT`] characters. (Errors from deserializing a `Value` carry no line/column.)
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for (count, ch) in text.chars().enumerate() {
        if count == QUOTE_LIMIT {
            out.push('…');
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const METRIC: &[u8] = include_bytes!("../tests/fixtures/metric-alarm.json");
    const METRIC_MATH: &[u8] = include_bytes!("../tests/fixtures/metric-math-alarm.json");
    const ANOMALY: &[u8] = include_bytes!("../tests/fixtures/anomaly-detection-alarm.json");
    const COMPOSITE: &[u8] = include_bytes!("../tests/fixtures/composite-alarm.json");
    const FIXTURES: [&[u8]; 4] = [METRIC, METRIC_MATH, ANOMALY, COMPOSITE];

    /// The metric-alarm fixture, edited, as bytes.
    fn metric_alarm_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut event: Value = serde_json::from_slice(METRIC).unwrap();
        edit(&mut event);
        serde_json::to_vec(&event).unwrap()
    }

    fn detail(event: &mut Value) -> &mut Map<String, Value> {
        event["detail"].as_object_mut().unwrap()
    }

    #[track_caller]
    fn parsed(bytes: &[u8]) -> AlarmEvent {
        AlarmEvent::parse(bytes).unwrap_or_else(|error| panic!("refused: {error}"))
    }

    #[track_caller]
    fn refused(bytes: &[u8]) -> EventError {
        match AlarmEvent::parse(bytes) {
            Ok(event) => panic!("accepted: {:?}", event.incident_id()),
            Err(error) => error,
        }
    }

    /// Asserts a refusal is `Invalid` at `path` with exactly `reason`, and says both in one line.
    #[track_caller]
    fn assert_invalid(error: EventError, path: &str, reason: &str) {
        assert_eq!(
            error,
            EventError::Invalid {
                path: path.into(),
                reason: reason.into()
            }
        );
        assert_eq!(error.to_string(), format!("{path}: {reason}"));
    }

    /// Arrays nested so that the whole document has `levels` levels of containers: the event
    /// object is level 1, its `extra` array level 2, and so on.
    fn nested_event(levels: usize) -> Value {
        let mut extra = json!([]);
        for _ in 0..levels - 2 {
            extra = json!([extra]);
        }
        let mut event: Value = serde_json::from_slice(METRIC).unwrap();
        event["extra"] = extra;
        event
    }

    struct Expected {
        kind: AlarmKind,
        incident_id: &'static str,
        alarm_name: &'static str,
        state: StateValue,
        previous: StateValue,
        region: &'static str,
        account: &'static str,
        arn: &'static str,
        metric_count: usize,
        first_metric_name: Option<&'static str>,
    }

    fn assert_fixture(bytes: &[u8], expected: Expected) {
        let event = parsed(bytes);
        assert_eq!(event.kind(), expected.kind);
        assert_eq!(event.incident_id().as_str(), expected.incident_id);
        assert_eq!(
            event.incident_id().as_str(),
            format!("{}-{}", event.alarm_name(), event.state_timestamp())
        );
        assert_eq!(event.alarm_name(), expected.alarm_name);
        assert_eq!(event.state().value, expected.state);
        assert_eq!(
            event.previous_state().map(|s| s.value),
            Some(expected.previous)
        );
        assert_eq!(event.region(), expected.region);
        assert_eq!(event.account(), expected.account);
        assert_eq!(event.alarm_arn(), expected.arn);
        assert_eq!(
            event.metrics().as_array().map(Vec::len),
            Some(expected.metric_count)
        );
        assert_eq!(
            event
                .first_metric()
                .and_then(|metric| metric.get("name")?.as_str()),
            expected.first_metric_name
        );
        let raw: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(event.raw(), &raw, "the raw event is kept as received");
    }

    #[test]
    fn metric_alarm_fixture_parses() {
        assert_fixture(
            METRIC,
            Expected {
                kind: AlarmKind::Metric,
                incident_id: "NFM-Alarm-EKS-DB-2026-11-24T10:00:00.000+0000",
                alarm_name: "NFM-Alarm-EKS-DB",
                state: StateValue::Alarm,
                previous: StateValue::Ok,
                region: "us-east-1",
                account: "123456789012",
                arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:NFM-Alarm-EKS-DB",
                metric_count: 1,
                first_metric_name: Some("Timeouts"),
            },
        );
        let event = parsed(METRIC);
        assert_eq!(
            event
                .state()
                .reason_data
                .as_deref()
                .map(|r| r.starts_with("{\"version\"")),
            Some(true)
        );
    }

    #[test]
    fn metric_math_alarm_fixture_parses() {
        assert_fixture(
            METRIC_MATH,
            Expected {
                kind: AlarmKind::MetricMath,
                incident_id: "Retransmission ratio: db tier-2026-11-24T10:05:00.123+0000",
                alarm_name: "Retransmission ratio: db tier",
                state: StateValue::Alarm,
                previous: StateValue::InsufficientData,
                region: "eu-west-1",
                account: "123456789012",
                arn: "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:Retransmission ratio: db tier",
                metric_count: 3,
                // The first query is the expression: it has no metricStat.
                first_metric_name: None,
            },
        );
    }

    #[test]
    fn anomaly_detection_alarm_fixture_parses() {
        assert_fixture(
            ANOMALY,
            Expected {
                kind: AlarmKind::AnomalyDetection,
                incident_id: "RTT anomaly-2026-11-24T11:00:00.000+0000",
                alarm_name: "RTT anomaly",
                state: StateValue::Alarm,
                previous: StateValue::Ok,
                region: "us-west-2",
                account: "123456789012",
                arn: "arn:aws:cloudwatch:us-west-2:123456789012:alarm:RTT anomaly",
                metric_count: 2,
                first_metric_name: None,
            },
        );
    }

    #[test]
    fn composite_alarm_fixture_parses_and_has_no_metrics() {
        assert_fixture(
            COMPOSITE,
            Expected {
                kind: AlarmKind::Composite,
                incident_id: "NetworkPathDegraded-2026-11-24T12:00:00.000+0000",
                alarm_name: "NetworkPathDegraded",
                state: StateValue::Alarm,
                previous: StateValue::Ok,
                region: "us-east-1",
                account: "123456789012",
                arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:NetworkPathDegraded",
                metric_count: 0,
                first_metric_name: None,
            },
        );
        assert_eq!(parsed(COMPOSITE).metrics(), &json!([]));
    }

    #[test]
    fn alarm_rule_makes_an_alarm_composite_even_with_metrics() {
        let bytes = metric_alarm_with(|event| {
            event["detail"]["configuration"]["alarmRule"] = json!("ALARM(\"a\")");
        });
        assert_eq!(parsed(&bytes).kind(), AlarmKind::Composite);
    }

    #[test]
    fn from_value_agrees_with_parse() {
        for bytes in FIXTURES {
            let value: Value = serde_json::from_slice(bytes).unwrap();
            let from_value = AlarmEvent::from_value(value).unwrap();
            let from_bytes = parsed(bytes);
            assert_eq!(from_value.incident_id(), from_bytes.incident_id());
            assert_eq!(from_value.kind(), from_bytes.kind());
            assert_eq!(from_value.metrics(), from_bytes.metrics());
        }
    }

    #[test]
    fn numbers_are_kept_as_written() {
        let event = parsed(METRIC_MATH);
        let text = serde_json::to_string(event.raw()).unwrap();
        let bytes = br#"{"detail-type":"CloudWatch Alarm State Change","source":"aws.cloudwatch",
            "detail":{"alarmName":"a","state":{"value":"ALARM","timestamp":"t"},
            "configuration":{"metrics":[{"id":"m1","period":1.50,"big":1E+2}]}}}"#;
        let numbers = parsed(bytes);
        assert_eq!(
            serde_json::to_string(numbers.metrics()).unwrap(),
            // serde_json keeps the digits as written but writes the exponent marker as `e`.
            r#"[{"id":"m1","period":1.50,"big":1e+2}]"#
        );
        assert!(text.contains("\"period\":60"), "{text}");
    }

    #[test]
    fn not_json_is_refused_with_the_parser_message() {
        let cases: [(&str, &[u8], &str); 9] = [
            ("empty", b"", "EOF while parsing a value"),
            (
                "truncated",
                &METRIC[..METRIC.len() / 2],
                "EOF while parsing",
            ),
            ("trailing bytes", b"{} {}", "trailing characters"),
            (
                "trailing garbage after a fixture",
                b"{\"a\": 1}x",
                "trailing characters",
            ),
            ("NaN", br#"{"detail-type": NaN}"#, "expected value"),
            ("Infinity", br#"{"x": Infinity}"#, "expected value"),
            (
                "invalid UTF-8",
                b"{\"alarmName\": \"\xff\xfe\"}",
                "invalid unicode code point",
            ),
            (
                "lone surrogate escape",
                br#"{"alarmName": "\ud800"}"#,
                "hex escape",
            ),
            (
                "lone trailing surrogate",
                br#"{"alarmName": "\udc00"}"#,
                "lone leading surrogate",
            ),
        ];
        for (what, bytes, needle) in cases {
            match refused(bytes) {
                EventError::NotJson(message) => {
                    assert!(message.contains(needle), "{what}: {message}");
                    assert!(!message.contains('\n'), "{what}: one line: {message}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        let error = refused(b"[");
        assert!(
            error
                .to_string()
                .starts_with("not valid JSON: EOF while parsing a list"),
            "{error}"
        );
    }

    #[test]
    fn nesting_of_exactly_max_depth_levels_is_accepted() {
        let event = nested_event(MAX_DEPTH);
        let event = parsed(&serde_json::to_vec(&event).unwrap());
        assert_eq!(event.alarm_name(), "NFM-Alarm-EKS-DB");
    }

    #[test]
    fn nesting_deeper_than_max_depth_is_refused() {
        for levels in [MAX_DEPTH + 1, MAX_DEPTH + 2, 127, 128, 129, 200, 1_000] {
            let bytes = serde_json::to_vec(&nested_event(levels)).unwrap();
            let error = refused(&bytes);
            assert_eq!(
                error,
                EventError::TooDeep { limit: MAX_DEPTH },
                "{levels} levels"
            );
            assert_eq!(error.to_string(), "JSON nests deeper than 64 levels");
        }
        // Already parsed (the Lambda path): the same refusal.
        assert_eq!(
            AlarmEvent::from_value(nested_event(MAX_DEPTH + 1)).unwrap_err(),
            EventError::TooDeep { limit: MAX_DEPTH }
        );
        // Unclosed brackets deeper than serde_json's own limit: too deep, not "truncated".
        assert_eq!(
            refused(&[b'['; 1000]),
            EventError::TooDeep { limit: MAX_DEPTH }
        );
    }

    #[test]
    fn depth_counts_objects_and_arrays_alike() {
        let mut inner = json!({});
        for level in 0..MAX_DEPTH - 1 {
            inner = if level % 2 == 0 {
                json!([inner])
            } else {
                json!({"k": inner})
            };
        }
        // `inner` has MAX_DEPTH levels; as a field of the event it has one more.
        let mut event: Value = serde_json::from_slice(METRIC).unwrap();
        event["extra"] = inner;
        assert_eq!(
            AlarmEvent::from_value(event).unwrap_err(),
            EventError::TooDeep { limit: MAX_DEPTH }
        );
    }

    #[test]
    fn integers_beyond_i64_are_refused_with_their_path() {
        let cases = [
            ("9223372036854775808", "extra"),
            ("-9223372036854775809", "extra"),
            ("18446744073709551616", "extra"),
            ("123456789012345678901234567890", "extra"),
        ];
        for (literal, path) in cases {
            let bytes = metric_alarm_with(|event| {
                event["extra"] = serde_json::from_str(literal).unwrap();
            });
            let error = refused(&bytes);
            assert_eq!(
                error,
                EventError::Number {
                    path: path.into(),
                    source: NumberError::IntegerOutOfRange(literal.into())
                }
            );
            assert_eq!(
                error.to_string(),
                format!("{path}: integer {literal} does not fit in a signed 64-bit integer")
            );
        }
        for literal in ["9223372036854775807", "-9223372036854775808"] {
            let bytes = metric_alarm_with(|event| {
                event["detail"]["configuration"]["metrics"][0]["metricStat"]["period"] =
                    serde_json::from_str(literal).unwrap();
            });
            parsed(&bytes);
        }
    }

    #[test]
    fn float_overflow_is_refused_with_its_path() {
        let bytes = metric_alarm_with(|event| {
            event["detail"]["configuration"]["metrics"][0]["metricStat"]["period"] =
                serde_json::from_str("1e400").unwrap();
        });
        let error = refused(&bytes);
        assert_eq!(
            error,
            EventError::Number {
                path: "detail.configuration.metrics[0].metricStat.period".into(),
                // serde_json normalises the exponent of the literal it keeps.
                source: NumberError::FloatOutOfRange("1e+400".into())
            }
        );
        assert_eq!(
            error.to_string(),
            "detail.configuration.metrics[0].metricStat.period: number 1e+400 overflows a 64-bit float"
        );
        for (literal, kept) in [
            ("-1e400", "-1e+400"),
            ("1.0e309", "1.0e+309"),
            ("1E-400000000000", ""),
        ] {
            let bytes = metric_alarm_with(|event| {
                event["extra"] = serde_json::from_str(literal).unwrap();
            });
            let result = AlarmEvent::parse(&bytes);
            if kept.is_empty() {
                assert!(result.is_ok(), "{literal} underflows to 0.0: {result:?}");
            } else {
                assert_eq!(
                    result.unwrap_err(),
                    EventError::Number {
                        path: "extra".into(),
                        source: NumberError::FloatOutOfRange(kept.into())
                    }
                );
            }
        }
        // A bare number is refused at the root, before anything else is looked at.
        assert_eq!(
            refused(b"1e400").to_string(),
            ".: number 1e+400 overflows a 64-bit float"
        );
        // Underflow is a finite float (0.0), as in Python.
        parsed(&metric_alarm_with(|event| {
            event["extra"] = serde_json::from_str("1e-400").unwrap();
        }));
    }

    #[test]
    fn long_number_paths_are_shortened() {
        let key = "k".repeat(200);
        let text = format!("{{\"{key}\": 1e400, \"detail-type\": \"{DETAIL_TYPE}\"}}");
        match refused(text.as_bytes()) {
            EventError::Number { path, .. } => {
                assert_eq!(path.chars().count(), QUOTE_LIMIT + 1);
                assert!(path.ends_with('…'), "{path}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_detail_types_are_refused() {
        let bytes = metric_alarm_with(|event| {
            event["detail-type"] = json!("EC2 Instance State-change Notification");
        });
        let error = refused(&bytes);
        assert_eq!(
            error,
            EventError::WrongDetailType {
                found: "\"EC2 Instance State-change Notification\"".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "detail-type is \"EC2 Instance State-change Notification\", expected \"CloudWatch Alarm State Change\""
        );
    }

    #[test]
    fn long_or_odd_detail_types_are_quoted_short_and_escaped() {
        let long = format!("{}\n\u{e9}", "x".repeat(200));
        let bytes = metric_alarm_with(|event| event["detail-type"] = json!(long));
        match refused(&bytes) {
            EventError::WrongDetailType { found } => {
                assert_eq!(found, format!("\"{}\"…", "x".repeat(QUOTE_LIMIT)));
            }
            other => panic!("{other:?}"),
        }
        let bytes = metric_alarm_with(|event| event["detail-type"] = json!("a\nb\u{e9}"));
        assert_eq!(
            refused(&bytes),
            EventError::WrongDetailType {
                found: "\"a\\nb\\u00e9\"".into()
            }
        );
    }

    #[test]
    fn detail_type_missing_or_not_a_string_is_invalid() {
        let bytes = metric_alarm_with(|event| {
            event.as_object_mut().unwrap().remove("detail-type");
        });
        assert_invalid(refused(&bytes), ".", "missing field `detail-type`");
        let bytes = metric_alarm_with(|event| event["detail-type"] = json!(["x"]));
        assert_invalid(
            refused(&bytes),
            "detail-type",
            "invalid type: sequence, expected a string",
        );
    }

    #[test]
    fn alarm_name_missing_is_refused() {
        let bytes = metric_alarm_with(|event| {
            detail(event).remove("alarmName");
        });
        assert_invalid(refused(&bytes), "detail", "missing field `alarmName`");
    }

    #[test]
    fn alarm_name_not_a_string_is_refused() {
        let cases = [
            (json!(null), "invalid type: null, expected a string"),
            (
                json!(true),
                "invalid type: boolean `true`, expected a string",
            ),
            (json!(["a"]), "invalid type: sequence, expected a string"),
            (json!({"a": 1}), "invalid type: map, expected a string"),
        ];
        for (value, reason) in cases {
            let bytes = metric_alarm_with(|event| event["detail"]["alarmName"] = value);
            assert_invalid(refused(&bytes), "detail.alarmName", reason);
        }
        let bytes = metric_alarm_with(|event| event["detail"]["alarmName"] = json!(7));
        match refused(&bytes) {
            EventError::Invalid { path, reason } => {
                assert_eq!(path, "detail.alarmName");
                assert!(reason.ends_with("expected a string"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn state_missing_is_refused() {
        let bytes = metric_alarm_with(|event| {
            detail(event).remove("state");
        });
        assert_invalid(refused(&bytes), "detail", "missing field `state`");
    }

    #[test]
    fn state_not_an_object_is_refused() {
        for value in [json!("ALARM"), json!(null), json!(7), json!(["ALARM"])] {
            let bytes = metric_alarm_with(|event| event["detail"]["state"] = value);
            assert_invalid(refused(&bytes), "detail.state", "must be an object");
        }
    }

    #[test]
    fn state_timestamp_missing_or_null_is_refused() {
        for edit in [
            (|state: &mut Value| drop(state.as_object_mut().unwrap().remove("timestamp")))
                as fn(&mut Value),
            |state| state["timestamp"] = Value::Null,
        ] {
            let bytes = metric_alarm_with(|event| edit(&mut event["detail"]["state"]));
            assert_invalid(refused(&bytes), "detail.state", "missing field `timestamp`");
        }
    }

    #[test]
    fn state_value_missing_or_unknown_is_refused() {
        let bytes = metric_alarm_with(|event| event["detail"]["state"]["value"] = json!("PENDING"));
        assert_invalid(
            refused(&bytes),
            "detail.state.value",
            "unknown variant `PENDING`, expected one of `ALARM`, `OK`, `INSUFFICIENT_DATA`",
        );
        let bytes = metric_alarm_with(|event| event["detail"]["state"]["value"] = json!("alarm"));
        assert!(
            matches!(refused(&bytes), EventError::Invalid { reason, .. } if reason.contains("`alarm`"))
        );
        let bytes = metric_alarm_with(|event| {
            event["detail"]["state"]
                .as_object_mut()
                .unwrap()
                .remove("value");
        });
        assert_invalid(refused(&bytes), "detail.state", "missing field `value`");
        let bytes =
            metric_alarm_with(|event| event["detail"]["previousState"]["value"] = json!("GONE"));
        assert_invalid(
            refused(&bytes),
            "detail.previousState.value",
            "unknown variant `GONE`, expected one of `ALARM`, `OK`, `INSUFFICIENT_DATA`",
        );
    }

    #[test]
    fn every_state_value_is_accepted() {
        for (text, value) in [
            ("ALARM", StateValue::Alarm),
            ("OK", StateValue::Ok),
            ("INSUFFICIENT_DATA", StateValue::InsufficientData),
        ] {
            let bytes = metric_alarm_with(|event| event["detail"]["state"]["value"] = json!(text));
            let event = parsed(&bytes);
            assert_eq!(event.state().value, value);
            assert_eq!(value.as_str(), text);
            assert_eq!(value.to_string(), text);
        }
    }

    #[test]
    fn bodies_over_max_event_bytes_are_refused_before_parsing() {
        let mut bytes = METRIC.to_vec();
        bytes.resize(MAX_EVENT_BYTES, b' ');
        assert_eq!(parsed(&bytes).alarm_name(), "NFM-Alarm-EKS-DB");
        bytes.push(b' ');
        let error = refused(&bytes);
        assert_eq!(
            error,
            EventError::TooLarge {
                size: MAX_EVENT_BYTES + 1,
                limit: MAX_EVENT_BYTES
            }
        );
        assert_eq!(
            error.to_string(),
            "event is 262145 bytes, over the 262144-byte EventBridge event limit"
        );
        // Size wins over everything else, even not being JSON.
        assert!(matches!(
            refused(&vec![b'x'; MAX_EVENT_BYTES + 1]),
            EventError::TooLarge { .. }
        ));
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let bytes = metric_alarm_with(|event| {
            event["newTopLevel"] = json!({"nested": [1, 2.5, null]});
            event["detail"]["newDetail"] = json!("x");
            event["detail"]["state"]["actionsSuppressedBy"] = json!("WaitPeriod");
            event["detail"]["configuration"]["newConfig"] = json!(true);
            event["detail"]["configuration"]["metrics"][0]["newMetricField"] = json!(1);
        });
        let event = parsed(&bytes);
        assert_eq!(event.incident_id(), parsed(METRIC).incident_id());
        assert_eq!(event.raw()["newTopLevel"]["nested"][1], json!(2.5));
    }

    #[test]
    fn region_account_and_arn_default_when_absent() {
        let bytes = metric_alarm_with(|event| {
            let object = event.as_object_mut().unwrap();
            for key in ["region", "account", "resources"] {
                object.remove(key);
            }
        });
        let event = parsed(&bytes);
        assert_eq!(event.region(), "us-east-1");
        assert_eq!(event.account(), "");
        assert_eq!(event.alarm_arn(), "");
    }

    #[test]
    fn explicit_nulls_in_fields_the_seed_defaults_are_refused() {
        // The seed would print `Region: None`; EventBridge never sends these nulls.
        for key in ["region", "account", "resources"] {
            let bytes = metric_alarm_with(|event| event[key] = Value::Null);
            assert_invalid(refused(&bytes), key, "must not be null when present");
        }
        let bytes = metric_alarm_with(|event| event["detail"]["state"]["reason"] = Value::Null);
        assert_invalid(
            refused(&bytes),
            "detail.state.reason",
            "must not be null when present",
        );
    }

    #[test]
    fn arn_is_empty_when_resources_are_empty_and_first_otherwise() {
        let bytes = metric_alarm_with(|event| event["resources"] = json!([]));
        assert_eq!(parsed(&bytes).alarm_arn(), "");
        let bytes =
            metric_alarm_with(|event| event["resources"] = json!(["arn:first", "arn:second"]));
        assert_eq!(parsed(&bytes).alarm_arn(), "arn:first");
        let bytes = metric_alarm_with(|event| event["resources"] = json!([1]));
        assert_invalid(
            refused(&bytes),
            "resources[0]",
            "invalid type: number, expected a string",
        );
    }

    #[test]
    fn an_empty_region_is_kept_not_defaulted() {
        let bytes = metric_alarm_with(|event| event["region"] = json!(""));
        assert_eq!(parsed(&bytes).region(), "");
    }

    #[test]
    fn null_metrics_pass_through() {
        let bytes = metric_alarm_with(|event| {
            event["detail"]["configuration"]["metrics"] = Value::Null;
        });
        let event = parsed(&bytes);
        assert_eq!(event.metrics(), &Value::Null);
        assert_eq!(event.kind(), AlarmKind::Metric);
        assert_eq!(event.first_metric(), None);
    }

    #[test]
    fn absent_or_empty_metrics_are_an_empty_array() {
        for edit in [
            (|config: &mut Value| drop(config.as_object_mut().unwrap().remove("metrics")))
                as fn(&mut Value),
            |config| config["metrics"] = json!([]),
        ] {
            let bytes = metric_alarm_with(|event| edit(&mut event["detail"]["configuration"]));
            let event = parsed(&bytes);
            assert_eq!(event.metrics(), &json!([]));
            assert_eq!(event.first_metric(), None);
        }
        for configuration in [Value::Null, json!({})] {
            let bytes = metric_alarm_with(|event| event["detail"]["configuration"] = configuration);
            assert_eq!(parsed(&bytes).metrics(), &json!([]));
        }
    }

    #[test]
    fn metrics_not_an_array_are_refused() {
        for value in [json!({"id": "m1"}), json!("m1"), json!(1), json!(true)] {
            let bytes = metric_alarm_with(|event| {
                event["detail"]["configuration"]["metrics"] = value;
            });
            assert_invalid(
                refused(&bytes),
                "detail.configuration.metrics",
                "must be an array",
            );
        }
    }

    #[test]
    fn a_first_metric_not_an_object_is_refused() {
        for value in [json!(["m1"]), json!([null]), json!([[]]), json!([1, {}])] {
            let bytes = metric_alarm_with(|event| {
                event["detail"]["configuration"]["metrics"] = value;
            });
            assert_invalid(
                refused(&bytes),
                "detail.configuration.metrics[0]",
                "must be an object",
            );
        }
        // Only the first is read, so only the first is checked.
        let bytes = metric_alarm_with(|event| {
            event["detail"]["configuration"]["metrics"] = json!([{}, "m1"]);
        });
        parsed(&bytes);
    }

    #[test]
    fn a_first_metric_of_the_wrong_shape_is_refused() {
        let path = "detail.configuration.metrics[0]";
        let cases = [
            (
                json!({"metricStat": "x"}),
                format!("{path}.metricStat"),
                "must be an object",
            ),
            (
                json!({"metricStat": {"metric": []}}),
                format!("{path}.metricStat.metric"),
                "must be an object",
            ),
            (
                json!({"metricStat": {"metric": {"namespace": 1}}}),
                format!("{path}.metricStat.metric.namespace"),
                "must be a string",
            ),
            (
                json!({"metricStat": {"metric": {"name": null}}}),
                format!("{path}.metricStat.metric.name"),
                "must be a string",
            ),
        ];
        for (first, path, reason) in cases {
            let bytes = metric_alarm_with(|event| {
                event["detail"]["configuration"]["metrics"] = json!([first]);
            });
            assert_invalid(refused(&bytes), &path, reason);
        }
        let bytes = metric_alarm_with(|event| {
            event["detail"]["configuration"]["metrics"] =
                json!([{"metricStat": {"metric": {"dimensions": "not read as a map"}}}]);
        });
        parsed(&bytes);
    }

    #[test]
    fn configuration_not_an_object_is_refused() {
        let bytes = metric_alarm_with(|event| event["detail"]["configuration"] = json!([]));
        assert_invalid(
            refused(&bytes),
            "detail.configuration",
            "invalid type: sequence, expected a map",
        );
    }

    #[test]
    fn error_messages_are_one_line() {
        let inputs: Vec<Vec<u8>> = vec![
            b"{\n\"a\":\n".to_vec(),
            metric_alarm_with(|event| event["detail-type"] = json!("a\nb")),
            metric_alarm_with(|event| event["detail"]["state"] = json!("a\nb")),
            metric_alarm_with(|event| event["extra"] = serde_json::from_str("1e999").unwrap()),
            metric_alarm_with(|event| event["detail"]["alarmName"] = json!({"a\nb": 1})),
        ];
        for bytes in inputs {
            let message = refused(&bytes).to_string();
            assert!(!message.contains('\n'), "{message:?}");
        }
    }

    /// An unknown state value is quoted short and escaped: one event cannot make a multi-line,
    /// 256 KiB error message.
    #[test]
    fn unknown_state_values_are_quoted_short_and_on_one_line() {
        let bytes = metric_alarm_with(|event| {
            event["detail"]["state"]["value"] = json!(format!("A\nB{}", "x".repeat(10_000)));
        });
        let message = refused(&bytes).to_string();
        assert!(!message.contains('\n'), "{message:?}");
        assert!(message.len() < 400, "{} bytes", message.len());
    }

    /// Keys are escaped in error paths.
    #[test]
    fn keys_in_error_paths_are_escaped() {
        let bytes =
            metric_alarm_with(|event| event["ex\ntra"] = serde_json::from_str("1e999").unwrap());
        let message = refused(&bytes).to_string();
        assert!(!message.contains('\n'), "{message:?}");
    }

    /// serde's derive reads a struct from an array; a `state` (or `detail`, or the whole
    /// envelope) written as an array is refused all the same.
    #[test]
    fn a_state_written_as_an_array_is_refused() {
        let bytes = metric_alarm_with(|event| {
            event["detail"]["state"] = json!(["ALARM", null, "2026-11-24T10:00:00.000+0000"]);
        });
        assert!(
            matches!(refused(&bytes), EventError::Invalid { ref path, .. } if path == "detail.state")
        );
        let detail = br#"{"detail-type":"CloudWatch Alarm State Change","source":"aws.cloudwatch",
            "detail":["n",["ALARM",null,"t"]]}"#;
        assert!(
            matches!(AlarmEvent::parse(detail), Err(EventError::Invalid { .. })),
            "a detail written as an array"
        );
        let envelope = br#"["0","id","CloudWatch Alarm State Change","aws.cloudwatch",null,null,
            null,null,["n",["ALARM",null,"t"]]]"#;
        assert!(
            matches!(AlarmEvent::parse(envelope), Err(EventError::Invalid { .. })),
            "an event written as an array"
        );
    }

    /// Out-of-range numbers are quoted short.
    #[test]
    fn out_of_range_numbers_are_quoted_short() {
        let literal = "9".repeat(10_000);
        let bytes =
            metric_alarm_with(|event| event["extra"] = serde_json::from_str(&literal).unwrap());
        let message = refused(&bytes).to_string();
        assert!(message.len() < 400, "{} bytes", message.len());
    }

    /// A real event of another kind is named for its detail-type, not for its detail failing
    /// the alarm types.
    #[test]
    fn a_real_event_of_another_kind_is_a_wrong_detail_type() {
        let bytes = br#"{"version":"0","detail-type":"EC2 Instance State-change Notification",
            "source":"aws.ec2","detail":{"instance-id":"i-1","state":"pending"}}"#;
        assert!(
            matches!(refused(bytes), EventError::WrongDetailType { .. }),
            "{}",
            refused(bytes)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = AlarmEvent::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_fixtures(
            fixture in 0..FIXTURES.len(),
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>(), 0..3u8), 1..12),
            cut in any::<proptest::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut bytes = FIXTURES[fixture].to_vec();
            for (at, byte, op) in edits {
                let index = at.index(bytes.len().max(1));
                match op {
                    0 if !bytes.is_empty() => bytes[index] = byte,
                    1 if !bytes.is_empty() => drop(bytes.remove(index)),
                    _ => bytes.insert(index.min(bytes.len()), byte),
                }
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            if let Ok(event) = AlarmEvent::parse(&bytes) {
                // Whatever is accepted renders and keeps the incident id's definition.
                prop_assert_eq!(
                    event.incident_id().as_str(),
                    format!("{}-{}", event.alarm_name(), event.state_timestamp())
                );
                let _ = crate::payload::WebhookBody::render(&event);
            }
        }

        #[test]
        fn parse_never_panics_on_json_mutations(
            fixture in 0..FIXTURES.len(),
            path in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
            replacement in json_value(),
        ) {
            let mut event: Value = serde_json::from_slice(FIXTURES[fixture]).unwrap();
            let mut pointer = String::new();
            let mut node = &event;
            for step in path {
                let next = match node {
                    Value::Object(map) if !map.is_empty() => {
                        let (key, next) = map.iter().nth(step.index(map.len())).unwrap();
                        (key.replace('~', "~0").replace('/', "~1"), next)
                    }
                    Value::Array(items) if !items.is_empty() => {
                        let index = step.index(items.len());
                        (index.to_string(), &items[index])
                    }
                    _ => break,
                };
                pointer.push('/');
                pointer.push_str(&next.0);
                node = next.1;
            }
            *event.pointer_mut(&pointer).unwrap() = replacement;
            let bytes = serde_json::to_vec(&event).unwrap();
            let from_bytes = AlarmEvent::parse(&bytes).map(|e| e.incident_id().clone());
            let from_value = AlarmEvent::from_value(event).map(|e| e.incident_id().clone());
            prop_assert_eq!(from_bytes, from_value);
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?"
                .prop_map(|text| serde_json::from_str::<Value>(&text).unwrap()),
            ".{0,20}".prop_map(Value::String),
            prop_oneof![
                Just("ALARM"),
                Just("OK"),
                Just("INSUFFICIENT_DATA"),
                Just("CloudWatch Alarm State Change")
            ]
            .prop_map(|text| json!(text)),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[a-zA-Z]{1,10}", inner), 0..4)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }
}
