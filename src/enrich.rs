//! The Enrich state of the workflow: what CloudWatch knows about the alarm besides the event,
//! for the investigation. The enricher Lambda's handler, also called in-process by the local
//! engine.
//!
//! Input is `{"incidentId", "event"}`; output is the enrichment, a camelCase JSON object (see
//! [`enrich`]) that the Deliver state puts into the webhook body under `data.enrichment`.
//! Enrichment is best effort and never blocks delivery: an alarm deleted since it fired or a
//! metric without recent data is recorded as `null` or `[]` with a note, not as an error.
//! Throttling and outages are `Enrichment.Throttled` (the state retries); anything else is
//! `Enrichment.Failed`, and the state's `Catch` delivers without enrichment. Either way the
//! outcome is appended to the incident's log (`Enriched` or `EnrichmentFailed`).

pub mod network;

use network::NetworkSettings;

use crate::adapters::OfflineAlarmSource;
use crate::event::{AlarmEvent, AlarmKind, IncidentId};
use crate::incident::{EventType, IncidentStatus, NewEvent, timestamp};
use crate::ports::{
    AlarmDefinition, AlarmSource, AlarmSources, Clock, Datapoint, EnrichError, IncidentStore,
    MetricQuery, StoreError,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The most datapoints an enrichment carries (newest first).
pub const MAX_DATAPOINTS: usize = 20;
/// The most alarms of a composite rule whose states are looked up (and one DescribeAlarms
/// call's limit of names).
pub const MAX_RULE_ALARMS: usize = 100;
/// Periods read beyond the alarm's evaluation periods, for context and late data.
const MARGIN_PERIODS: u32 = 2;
/// Evaluation periods assumed when the alarm could not be described.
const DEFAULT_EVALUATION_PERIODS: u32 = 3;
/// The namespace whose alarms get a `networkFlowMonitor` section.
pub const NETWORK_FLOW_MONITOR_NAMESPACE: &str = "AWS/NetworkFlowMonitor";
/// How often a version conflict is resolved by rereading before giving up (as retryable).
const MAX_STORE_ATTEMPTS: usize = 10;
/// How much of a failure message the `EnrichmentFailed` record keeps.
const REASON_LIMIT: usize = 512;

/// The time range datapoints are read over: `[start, end)`, both on period boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The window of recent datapoints at `now`: the alarm's `evaluation_periods` (or a default
/// when unknown) plus a margin, at most [`MAX_DATAPOINTS`] periods, ending at the boundary after
/// `now` so that the current, partial period is included. `None` for a zero period or a time
/// out of range.
pub fn datapoint_window(
    now: DateTime<Utc>,
    period: u32,
    evaluation_periods: Option<u32>,
) -> Option<Window> {
    if period == 0 {
        return None;
    }
    let periods = evaluation_periods
        .unwrap_or(DEFAULT_EVALUATION_PERIODS)
        .saturating_add(MARGIN_PERIODS)
        .clamp(1, MAX_DATAPOINTS as u32);
    let period = i64::from(period);
    let end = now
        .timestamp()
        .div_euclid(period)
        .checked_add(1)?
        .checked_mul(period)?;
    let start = end.checked_sub(period.checked_mul(i64::from(periods))?)?;
    Some(Window {
        start: DateTime::from_timestamp(start, 0)?,
        end: DateTime::from_timestamp(end, 0)?,
    })
}

/// One alarm a composite rule refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleReference {
    /// As written in the rule, without quotes: a name or an ARN.
    pub reference: String,
    /// The alarm's name (for an ARN, the part after `:alarm:`).
    pub name: String,
}

/// The state functions of the composite-rule grammar.
const RULE_FUNCTIONS: [&str; 3] = ["ALARM", "OK", "INSUFFICIENT_DATA"];

/// The alarms a composite alarm rule refers to, in order of first appearance, each once:
/// the arguments of `ALARM(…)`, `OK(…)` and `INSUFFICIENT_DATA(…)`, quoted (`ALARM("a b")`) or
/// not (`ALARM(name)`), names or ARNs. `TRUE`, `FALSE`, `AND`, `OR`, `NOT` and parentheses are
/// skipped; whatever else the rule holds is ignored. Never panics, on any input.
pub fn rule_alarms(rule: &str) -> Vec<RuleReference> {
    let chars: Vec<char> = rule.chars().collect();
    let mut found: Vec<RuleReference> = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let ch = chars[at];
        if ch == '"' {
            // A quoted string outside a state function: skip it whole.
            at = skip_quoted(&chars, at + 1);
            continue;
        }
        if !is_word(ch) || (at > 0 && is_word(chars[at - 1])) {
            at += 1;
            continue;
        }
        let word_end = (at..chars.len())
            .find(|&index| !is_word(chars[index]))
            .unwrap_or(chars.len());
        let word: String = chars[at..word_end].iter().collect();
        at = word_end;
        if !RULE_FUNCTIONS.contains(&word.as_str()) {
            continue;
        }
        let open = skip_space(&chars, at);
        if chars.get(open) != Some(&'(') {
            continue;
        }
        let arg_start = skip_space(&chars, open + 1);
        let (reference, next) = if chars.get(arg_start) == Some(&'"') {
            let close = (arg_start + 1..chars.len())
                .find(|&index| chars[index] == '"')
                .unwrap_or(chars.len());
            let text: String = chars[arg_start + 1..close].iter().collect();
            (text, (close + 1).min(chars.len()))
        } else {
            let close = (arg_start..chars.len())
                .find(|&index| chars[index] == ')')
                .unwrap_or(chars.len());
            let text: String = chars[arg_start..close].iter().collect();
            (text.trim().to_owned(), close)
        };
        at = next;
        if reference.is_empty() {
            continue;
        }
        let name = alarm_name_of(&reference).to_owned();
        if !found.iter().any(|known| known.name == name) {
            found.push(RuleReference { reference, name });
        }
    }
    found
}

fn is_word(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_'
}

fn skip_space(chars: &[char], mut at: usize) -> usize {
    while chars.get(at).is_some_and(|ch| ch.is_whitespace()) {
        at += 1;
    }
    at
}

/// The index after the quote closing a string whose content starts at `at`.
fn skip_quoted(chars: &[char], at: usize) -> usize {
    (at..chars.len())
        .find(|&index| chars[index] == '"')
        .map_or(chars.len(), |close| close + 1)
}

/// The alarm name in a CloudWatch alarm ARN (`arn:<partition>:cloudwatch:<region>:<account>:
/// alarm:<name>`, the name possibly holding `:`); anything else is taken to be a name already.
pub fn alarm_name_of(reference: &str) -> &str {
    let parts: Vec<&str> = reference.splitn(7, ':').collect();
    match parts.as_slice() {
        ["arn", _, "cloudwatch", _, _, "alarm", name] if !name.is_empty() => name,
        _ => reference,
    }
}

/// The AWS partition of an alarm: from its ARN when there is one, else from the region.
pub fn partition_of(alarm_arn: &str, region: &str) -> String {
    match alarm_arn.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", partition, ..] if !partition.is_empty() => (*partition).to_owned(),
        _ if region.starts_with("cn-") => "aws-cn".to_owned(),
        _ if region.starts_with("us-gov-") => "aws-us-gov".to_owned(),
        _ => "aws".to_owned(),
    }
}

/// The Network Flow Monitor monitor ARN from the `MonitorId` dimension: the value itself when
/// it is an ARN, otherwise built from the alarm's partition, region and account (`None` when
/// those are unknown or the id is empty).
pub fn monitor_arn(
    monitor_id: &str,
    partition: &str,
    region: &str,
    account: &str,
) -> Option<String> {
    let monitor_id = monitor_id.trim();
    if monitor_id.starts_with("arn:") {
        return Some(monitor_id.to_owned());
    }
    if monitor_id.is_empty() || region.is_empty() || account.is_empty() {
        return None;
    }
    Some(format!(
        "arn:{partition}:networkflowmonitor:{region}:{account}:monitor/{monitor_id}"
    ))
}

/// The metric an alarm watches, as the event describes it: the first of
/// `configuration.metrics` with a `metricStat` (for metric math and anomaly detection, the
/// first metric the expression reads).
#[derive(Debug, Clone, PartialEq)]
struct EventMetric {
    id: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    /// As written (normally an object of name → value).
    dimensions: Value,
    stat: Option<String>,
    period: Option<u32>,
    unit: Option<String>,
}

impl EventMetric {
    fn of(event: &AlarmEvent) -> Option<Self> {
        let query = event.metrics().as_array()?.iter().find(|query| {
            query
                .pointer("/metricStat/metric")
                .is_some_and(Value::is_object)
        })?;
        let stat = &query["metricStat"];
        let metric = &stat["metric"];
        let text = |value: &Value| value.as_str().map(str::to_owned);
        Some(Self {
            id: text(&query["id"]),
            namespace: text(&metric["namespace"]),
            name: text(&metric["name"]),
            dimensions: metric.get("dimensions").cloned().unwrap_or(json!({})),
            stat: text(&stat["stat"]),
            period: stat["period"].as_u64().and_then(|p| u32::try_from(p).ok()),
            unit: text(&stat["unit"]),
        })
    }

    fn dimension_pairs(&self) -> Vec<(String, String)> {
        let Some(dimensions) = self.dimensions.as_object() else {
            return Vec::new();
        };
        dimensions
            .iter()
            .map(|(name, value)| {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                (name.clone(), value)
            })
            .collect()
    }

    /// What GetMetricData is asked: the event's stat and period, else the alarm's.
    fn query(&self, alarm: Option<&crate::ports::MetricAlarmDefinition>) -> Option<MetricQuery> {
        let stat = self.stat.clone().or_else(|| {
            alarm.and_then(|alarm| {
                alarm
                    .statistic
                    .clone()
                    .or_else(|| alarm.extended_statistic.clone())
            })
        })?;
        Some(MetricQuery {
            namespace: self.namespace.clone()?,
            name: self.name.clone()?,
            dimensions: self.dimension_pairs(),
            stat,
            period: self
                .period
                .or_else(|| alarm.and_then(|alarm| alarm.period))?,
            unit: self.unit.clone(),
        })
    }

    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("namespace".into(), json!(self.namespace));
        out.insert("name".into(), json!(self.name));
        out.insert("dimensions".into(), self.dimensions.clone());
        out.insert("stat".into(), json!(self.stat));
        out.insert("period".into(), json!(self.period));
        if let Some(unit) = &self.unit {
            out.insert("unit".into(), json!(unit));
        }
        if let Some(id) = &self.id {
            out.insert("id".into(), json!(id));
        }
        Value::Object(out)
    }
}

/// A secondary call's outcome: throttling stops enrichment (to be retried whole), another
/// failure becomes a note and the part stays empty.
fn secondary<T>(
    result: Result<T, EnrichError>,
    what: &str,
    notes: &mut Vec<String>,
) -> Result<Option<T>, EnrichError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error @ EnrichError::Throttled(_)) => Err(error),
        Err(EnrichError::Failed(reason)) => {
            notes.push(format!("{what} unavailable: {reason}"));
            Ok(None)
        }
    }
}

/// What CloudWatch adds to `event`, read at `now`. A camelCase object:
///
/// - `kind`: `metric`, `metric-math`, `anomaly-detection` or `composite`;
/// - `metric`: `{namespace, name, dimensions, stat, period}` from the event (`null` for a
///   composite alarm);
/// - `alarm`: the alarm's settings from DescribeAlarms (`type` `MetricAlarm` or
///   `CompositeAlarm`; threshold, comparison operator, evaluation periods, datapoints to alarm,
///   treat missing data, unit, statistic, period, actions enabled, current state…), `null` when
///   the alarm no longer exists;
/// - `window` and `datapoints`: at most [`MAX_DATAPOINTS`] `{timestamp, value}`, newest first;
/// - `tags`: the alarm's tags (`null` when unknown);
/// - `networkFlowMonitor`: `{monitorId, monitorArn}` for `AWS/NetworkFlowMonitor` metrics;
/// - `composite`: `{alarmRule, alarms: [{name, state}]}` for composite alarms;
/// - `notes`: what is missing and why; `enrichedAt`.
///
/// The alarm's own description failing is an error; later calls failing other than by
/// throttling leave their part empty with a note.
pub async fn enrich(
    event: &AlarmEvent,
    source: &dyn AlarmSource,
    now: DateTime<Utc>,
) -> Result<Value, EnrichError> {
    let mut notes: Vec<String> = Vec::new();
    let definition = source.describe_alarm(event.alarm_name()).await?;
    if definition.is_none() {
        notes.push(format!(
            "alarm {:?} not found (deleted since it fired, or in another account or region)",
            event.alarm_name()
        ));
    }
    let metric_alarm = match &definition {
        Some(AlarmDefinition::Metric(alarm)) => Some(alarm),
        _ => None,
    };
    let composite = event.kind() == AlarmKind::Composite
        || matches!(definition, Some(AlarmDefinition::Composite(_)));
    let metric = if composite {
        None
    } else {
        EventMetric::of(event)
    };
    if !composite && metric.is_none() {
        notes.push("the event names no metric (no metricStat in configuration.metrics)".into());
    }
    if let Some(metric) = &metric
        && event.kind() != AlarmKind::Metric
    {
        notes.push(format!(
            "datapoints are of metric {}, one input of the alarm's expression",
            metric.id.as_deref().unwrap_or("?")
        ));
    }

    let query = metric
        .as_ref()
        .and_then(|metric| metric.query(metric_alarm));
    let window = query.as_ref().and_then(|query| {
        datapoint_window(
            now,
            query.period,
            metric_alarm.and_then(|alarm| alarm.evaluation_periods),
        )
    });
    if metric.is_some() && window.is_none() {
        notes.push("no datapoints read: the metric's stat or period is unknown".into());
    }
    let tags_arn = definition.as_ref().map(|definition| {
        definition
            .arn()
            .filter(|arn| !arn.is_empty())
            .unwrap_or(event.alarm_arn())
            .to_owned()
    });
    let rule = composite
        .then(|| {
            event
                .raw()
                .pointer("/detail/configuration/alarmRule")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| match &definition {
                    Some(AlarmDefinition::Composite(alarm)) => alarm.alarm_rule.clone(),
                    _ => None,
                })
        })
        .flatten();
    let mut references = rule.as_deref().map(rule_alarms).unwrap_or_default();
    if references.len() > MAX_RULE_ALARMS {
        notes.push(format!(
            "the rule refers to {} alarms; the states of the first {MAX_RULE_ALARMS} are read",
            references.len()
        ));
        references.truncate(MAX_RULE_ALARMS);
    }
    let names: Vec<String> = references.iter().map(|r| r.name.clone()).collect();

    let (datapoints, tags, states) = tokio::join!(
        async {
            match (&query, window) {
                (Some(query), Some(window)) => Some(
                    source
                        .metric_datapoints(query, window.start, window.end)
                        .await,
                ),
                _ => None,
            }
        },
        async {
            match tags_arn.as_deref() {
                Some(arn) if !arn.is_empty() => Some(source.alarm_tags(arn).await),
                _ => None,
            }
        },
        async {
            if names.is_empty() {
                None
            } else {
                Some(source.alarm_states(&names).await)
            }
        },
    );

    let datapoints = match datapoints {
        Some(result) => secondary(result, "datapoints", &mut notes)?.unwrap_or_default(),
        None => Vec::new(),
    };
    let datapoints = newest(datapoints);
    if let (Some(query), Some(window), true) = (&query, window, datapoints.is_empty()) {
        notes.push(format!(
            "no datapoints for {}/{} between {} and {}",
            query.namespace,
            query.name,
            timestamp(window.start),
            timestamp(window.end)
        ));
    }
    let tags = match tags {
        Some(result) => secondary(result, "tags", &mut notes)?.flatten(),
        None => None,
    };
    let states = match states {
        Some(result) => secondary(result, "composite alarm states", &mut notes)?,
        None => None,
    };

    let mut out = Map::new();
    out.insert("kind".into(), json!(event.kind()));
    out.insert(
        "metric".into(),
        metric.as_ref().map_or(Value::Null, EventMetric::to_json),
    );
    out.insert(
        "alarm".into(),
        match &definition {
            Some(definition) => serde_json::to_value(definition)
                .map_err(|error| EnrichError::Failed(format!("alarm definition: {error}")))?,
            None => Value::Null,
        },
    );
    out.insert(
        "window".into(),
        window.map_or(
            Value::Null,
            |window| json!({ "start": timestamp(window.start), "end": timestamp(window.end) }),
        ),
    );
    out.insert(
        "datapoints".into(),
        Value::Array(
            datapoints
                .iter()
                .map(|point| json!({ "timestamp": timestamp(point.timestamp), "value": point.value }))
                .collect(),
        ),
    );
    out.insert("tags".into(), tags.map_or(Value::Null, |tags| json!(tags)));
    if let Some(metric) = metric
        .as_ref()
        .filter(|metric| metric.namespace.as_deref() == Some(NETWORK_FLOW_MONITOR_NAMESPACE))
    {
        let monitor_id = metric.dimensions.get("MonitorId").and_then(Value::as_str);
        let arn = monitor_id.and_then(|id| {
            monitor_arn(
                id,
                &partition_of(event.alarm_arn(), event.region()),
                event.region(),
                event.account(),
            )
        });
        if arn.is_none() {
            notes.push("no monitor ARN: the metric has no usable MonitorId dimension".into());
        }
        out.insert(
            "networkFlowMonitor".into(),
            json!({ "monitorId": monitor_id, "monitorArn": arn }),
        );
    }
    if composite {
        let missing = match &states {
            Some(states) => names
                .iter()
                .filter(|name| !states.contains_key(*name))
                .count(),
            None => 0,
        };
        if missing > 0 {
            notes.push(format!("{missing} alarm(s) of the rule not found"));
        }
        if rule.is_none() {
            notes.push("no alarm rule in the event or the alarm".into());
        }
        let alarms: Vec<Value> = references
            .iter()
            .map(|reference| {
                let state = states
                    .as_ref()
                    .and_then(|states| states.get(&reference.name))
                    .map(|state| state.as_str());
                let mut entry = json!({ "name": reference.name, "state": state });
                if reference.reference != reference.name {
                    entry["reference"] = json!(reference.reference);
                }
                entry
            })
            .collect();
        out.insert(
            "composite".into(),
            json!({ "alarmRule": rule, "alarms": alarms }),
        );
    }
    out.insert("notes".into(), json!(notes));
    out.insert("enrichedAt".into(), json!(timestamp(now)));
    Ok(Value::Object(out))
}

/// Finite values only, newest first, one per timestamp, at most [`MAX_DATAPOINTS`].
fn newest(mut datapoints: Vec<Datapoint>) -> Vec<Datapoint> {
    datapoints.retain(|point| point.value.is_finite());
    datapoints.sort_by_key(|point| std::cmp::Reverse(point.timestamp));
    datapoints.dedup_by_key(|point| point.timestamp);
    datapoints.truncate(MAX_DATAPOINTS);
    datapoints
}

/// The Enrich state's input; other fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnrichInput {
    incident_id: String,
    event: Value,
}

/// The Enrich state: enriches `{"incidentId", "event"}`, appends `Enriched` (data: the
/// enrichment) to the incident's log and moves a STARTED incident to ENRICHED, and answers the
/// enrichment. On failure it appends `EnrichmentFailed` `{error, reason}` and returns the error.
/// The status moves only from STARTED: a RECEIVED incident is the starter's to move (intake
/// may still be recording the start), and a later status is never overwritten.
pub async fn handle(
    input: Value,
    source: &dyn AlarmSource,
    network: &NetworkSettings,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<Value, EnrichError> {
    handle_noted(input, source, None, network, store, clock).await
}

/// [`handle`] with the source `sources` gives the alarm's account and region (its own
/// CloudWatch, or a member account's read role). An account it may not read is enriched from
/// the event alone, with the reason in the notes.
pub async fn handle_in(
    input: Value,
    sources: &dyn AlarmSources,
    network: &NetworkSettings,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<Value, EnrichError> {
    let text = |key: &str| {
        input
            .pointer(&format!("/event/{key}"))
            .and_then(Value::as_str)
    };
    let (account, region) = (text("account").unwrap_or(""), text("region").unwrap_or(""));
    let (source, note) = match sources.for_account(account, region).await {
        Ok(source) => (source, None),
        Err(reason) => (
            Arc::new(OfflineAlarmSource) as Arc<dyn AlarmSource>,
            Some(reason),
        ),
    };
    handle_noted(input, source.as_ref(), note, network, store, clock).await
}

async fn handle_noted(
    input: Value,
    source: &dyn AlarmSource,
    note: Option<String>,
    network: &NetworkSettings,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<Value, EnrichError> {
    let input: EnrichInput = serde_json::from_value(input)
        .map_err(|error| EnrichError::Failed(format!("enrich input: {error}")))?;
    let id = IncidentId::from_raw(input.incident_id);
    let incident = network::Incident {
        store,
        clock,
        id: &id,
    };
    let result = match AlarmEvent::from_value(input.event) {
        Ok(event) => with_network(&event, source, network, incident).await,
        Err(error) => Err(EnrichError::Failed(format!("enrich input: event: {error}"))),
    };
    let result = result.map(|mut enrichment| {
        if let (Some(note), Some(notes)) = (note, enrichment["notes"].as_array_mut()) {
            notes.insert(0, json!(note));
        }
        enrichment
    });
    match result {
        Ok(enrichment) => {
            let status = record(store, clock, &id, EventType::Enriched, &enrichment, true)
                .await
                .map_err(from_store)?;
            tracing::info!(
                incident_id = id.as_str(),
                %status,
                datapoints = enrichment["datapoints"].as_array().map_or(0, Vec::len),
                notes = enrichment["notes"].as_array().map_or(0, Vec::len),
                "incident enriched"
            );
            Ok(enrichment)
        }
        Err(error) => {
            tracing::warn!(incident_id = id.as_str(), error_type = error.error_type(), %error, "enrichment failed");
            let reason: String = error.to_string().chars().take(REASON_LIMIT).collect();
            let data = json!({ "error": error.error_type(), "reason": reason });
            if let Err(store_error) =
                record(store, clock, &id, EventType::EnrichmentFailed, &data, false).await
            {
                tracing::error!(incident_id = id.as_str(), error = %store_error, "enrichment failure not recorded");
            }
            Err(error)
        }
    }
}

/// [`enrich`] and, for a Network Flow Monitor alarm, its `network` section, with its notes.
async fn with_network(
    event: &AlarmEvent,
    source: &dyn AlarmSource,
    settings: &NetworkSettings,
    incident: network::Incident<'_>,
) -> Result<Value, EnrichError> {
    let mut enrichment = enrich(event, source, incident.clock.now()).await?;
    let mut notes = Vec::new();
    let section = network::evidence(event, &enrichment, source, settings, incident, &mut notes)
        .await
        .map_err(from_store)?;
    if let Some(section) = section {
        enrichment["network"] = section;
    }
    if let Some(all) = enrichment["notes"].as_array_mut() {
        all.extend(notes.into_iter().map(Value::String));
    }
    Ok(enrichment)
}

/// Appends `kind` with `data`, moving STARTED to ENRICHED when `enriched`; rereads on a version
/// conflict. Answers the status the incident now has.
async fn record(
    store: &dyn IncidentStore,
    clock: &dyn Clock,
    id: &IncidentId,
    kind: EventType,
    data: &Value,
    enriched: bool,
) -> Result<IncidentStatus, StoreError> {
    for _ in 0..MAX_STORE_ATTEMPTS {
        let current = store
            .get(id)
            .await?
            .ok_or_else(|| StoreError::Failed(format!("no incident {id}")))?;
        let now = clock.now();
        let mut next = current.advance(now);
        if enriched && current.status == IncidentStatus::Started {
            next.status = IncidentStatus::Enriched;
        }
        match store
            .append(&next, &NewEvent::new(kind, now, data.clone()))
            .await
        {
            Ok(()) => return Ok(next.status),
            Err(StoreError::VersionConflict(_)) => continue,
            Err(error) => return Err(error),
        }
    }
    Err(StoreError::Unavailable(format!(
        "incident {id} kept changing under {MAX_STORE_ATTEMPTS} attempts"
    )))
}

/// Store failures as the Enrich state reports them: an unavailable store is worth a retry.
fn from_store(error: StoreError) -> EnrichError {
    match error {
        StoreError::Unavailable(_) | StoreError::VersionConflict(_) => {
            EnrichError::Throttled(error.to_string())
        }
        StoreError::Failed(_) => EnrichError::Failed(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::StateValue;
    use crate::ports::{CompositeAlarmDefinition, MetricAlarmDefinition};
    use async_trait::async_trait;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    const METRIC: &[u8] = include_bytes!("../tests/fixtures/metric-alarm.json");
    const METRIC_MATH: &[u8] = include_bytes!("../tests/fixtures/metric-math-alarm.json");
    const COMPOSITE: &[u8] = include_bytes!("../tests/fixtures/composite-alarm.json");
    const NOW: &str = "2026-11-24T10:00:30.500Z";

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn names(rule: &str) -> Vec<String> {
        rule_alarms(rule).into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn rule_alarms_reads_quoted_and_bare_names_of_every_state_function() {
        assert_eq!(
            names(r#"ALARM("NFM-Alarm-EKS-DB") OR ALARM("NFM-Alarm-EKS-Cache")"#),
            ["NFM-Alarm-EKS-DB", "NFM-Alarm-EKS-Cache"]
        );
        assert_eq!(
            names("ALARM(CPUUtilizationTooHigh) AND NOT (OK( Disk Ops ) OR INSUFFICIENT_DATA(x))"),
            ["CPUUtilizationTooHigh", "Disk Ops", "x"]
        );
    }

    #[test]
    fn rule_alarms_takes_the_name_out_of_an_arn_and_keeps_the_reference() {
        let found = rule_alarms(
            r#"ALARM("arn:aws:cloudwatch:us-east-1:123456789012:alarm:db: primary") AND TRUE"#,
        );
        assert_eq!(
            found,
            [RuleReference {
                reference: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:db: primary".into(),
                name: "db: primary".into(),
            }]
        );
    }

    #[test]
    fn rule_alarms_lists_each_alarm_once_in_order_of_first_appearance() {
        assert_eq!(
            names(r#"(ALARM(b) AND OK("a")) OR (ALARM("a") AND NOT ALARM(b))"#),
            ["b", "a"]
        );
    }

    #[test]
    fn rule_alarms_ignores_keywords_inside_names_and_other_words() {
        // `ALARM(` inside a quoted name is part of the name, `MY_ALARM(` is not a function.
        assert_eq!(
            names(r#"ALARM("x ALARM(y)") OR MY_ALARM(z) OR FALSE"#),
            ["x ALARM(y)"]
        );
        assert_eq!(names(r#""ALARM(q)" OR ALARM(r)"#), ["r"]);
        assert!(names("TRUE").is_empty());
        assert!(names("ALARM()").is_empty());
        assert!(names(r#"ALARM("")"#).is_empty());
    }

    #[test]
    fn rule_alarms_survives_truncated_rules() {
        assert_eq!(names(r#"ALARM("unterminated"#), ["unterminated"]);
        assert_eq!(names("ALARM(bare"), ["bare"]);
        assert!(names("ALARM").is_empty());
        assert!(names("ALARM(").is_empty());
    }

    #[test]
    fn alarm_name_of_leaves_names_and_other_arns_alone() {
        assert_eq!(alarm_name_of("plain"), "plain");
        assert_eq!(
            alarm_name_of("arn:aws:sns:us-east-1:1:alarm:topic"),
            "arn:aws:sns:us-east-1:1:alarm:topic"
        );
        assert_eq!(
            alarm_name_of("arn:aws-cn:cloudwatch:cn-north-1:1:alarm:a:b"),
            "a:b"
        );
    }

    #[test]
    fn monitor_arn_is_the_dimension_when_it_is_an_arn_and_built_otherwise() {
        let arn = "arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/my-monitor";
        assert_eq!(
            monitor_arn(arn, "aws", "eu-west-1", "1").as_deref(),
            Some(arn)
        );
        assert_eq!(
            monitor_arn("my-monitor", "aws", "us-east-1", "123456789012").as_deref(),
            Some(arn)
        );
        assert_eq!(monitor_arn("my-monitor", "aws", "us-east-1", ""), None);
        assert_eq!(monitor_arn(" ", "aws", "us-east-1", "1"), None);
    }

    #[test]
    fn partition_comes_from_the_alarm_arn_else_the_region() {
        assert_eq!(
            partition_of("arn:aws-cn:cloudwatch:cn-north-1:1:alarm:a", "x"),
            "aws-cn"
        );
        assert_eq!(partition_of("", "us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of("", "cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of("", "eu-west-1"), "aws");
    }

    #[test]
    fn window_covers_evaluation_periods_plus_margin_on_period_boundaries() {
        let window = datapoint_window(at(NOW), 300, Some(1)).unwrap();
        assert_eq!(window.end, at("2026-11-24T10:05:00Z"));
        assert_eq!(window.start, at("2026-11-24T09:50:00Z"));
        let unknown = datapoint_window(at(NOW), 60, None).unwrap();
        assert_eq!(
            unknown.end - unknown.start,
            chrono::Duration::seconds(5 * 60)
        );
    }

    #[test]
    fn window_is_bounded_to_max_datapoints_periods() {
        let window = datapoint_window(at(NOW), 60, Some(1440)).unwrap();
        assert_eq!(
            window.end - window.start,
            chrono::Duration::seconds(60 * MAX_DATAPOINTS as i64)
        );
    }

    #[test]
    fn window_is_none_for_a_zero_period_or_an_out_of_range_time() {
        assert_eq!(datapoint_window(at(NOW), 0, Some(1)), None);
        assert_eq!(
            datapoint_window(DateTime::<Utc>::MAX_UTC, 86_400, Some(1)),
            None
        );
    }

    #[test]
    fn error_types_are_the_ones_the_state_machine_retries() {
        assert_eq!(
            EnrichError::Throttled("x".into()).error_type(),
            "Enrichment.Throttled"
        );
        assert_eq!(
            EnrichError::Failed("x".into()).error_type(),
            "Enrichment.Failed"
        );
        let asl: Value =
            serde_json::from_str(include_str!("../statemachine/incident.asl.json")).unwrap();
        let retried: Vec<&str> = asl["States"]["Enrich"]["Retry"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|retry| retry["ErrorEquals"].as_array().unwrap())
            .filter_map(Value::as_str)
            .filter(|name| name.starts_with("Enrichment."))
            .collect();
        assert_eq!(retried, ["Enrichment.Throttled"]);
        for name in retried {
            assert!(EnrichError::ERROR_TYPES.contains(&name), "{name}");
        }
    }

    /// A query the fake saw, with its window.
    type SeenQuery = (MetricQuery, DateTime<Utc>, DateTime<Utc>);

    /// A scripted CloudWatch: alarms by name, datapoints for any query, tags by ARN; optional
    /// failures per call; records the queries.
    #[derive(Default)]
    struct FakeSource {
        alarms: BTreeMap<String, AlarmDefinition>,
        datapoints: Vec<Datapoint>,
        tags: BTreeMap<String, BTreeMap<String, String>>,
        describe_error: Option<EnrichError>,
        datapoints_error: Option<EnrichError>,
        queries: Mutex<Vec<SeenQuery>>,
    }

    #[async_trait]
    impl AlarmSource for FakeSource {
        async fn describe_alarm(&self, name: &str) -> Result<Option<AlarmDefinition>, EnrichError> {
            if let Some(error) = &self.describe_error {
                return Err(error.clone());
            }
            Ok(self.alarms.get(name).cloned())
        }

        async fn metric_datapoints(
            &self,
            query: &MetricQuery,
            start: DateTime<Utc>,
            end: DateTime<Utc>,
        ) -> Result<Vec<Datapoint>, EnrichError> {
            self.queries
                .lock()
                .unwrap()
                .push((query.clone(), start, end));
            if let Some(error) = &self.datapoints_error {
                return Err(error.clone());
            }
            Ok(self.datapoints.clone())
        }

        async fn alarm_tags(
            &self,
            arn: &str,
        ) -> Result<Option<BTreeMap<String, String>>, EnrichError> {
            Ok(self.tags.get(arn).cloned())
        }

        async fn alarm_states(
            &self,
            names: &[String],
        ) -> Result<BTreeMap<String, StateValue>, EnrichError> {
            Ok(names
                .iter()
                .filter_map(|name| {
                    let state = match self.alarms.get(name)? {
                        AlarmDefinition::Metric(alarm) => alarm.state?,
                        AlarmDefinition::Composite(alarm) => alarm.state?,
                    };
                    Some((name.clone(), state))
                })
                .collect())
        }
    }

    const ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:NFM-Alarm-EKS-DB";

    fn nfm_alarm() -> AlarmDefinition {
        AlarmDefinition::Metric(MetricAlarmDefinition {
            name: "NFM-Alarm-EKS-DB".into(),
            arn: Some(ARN.into()),
            state: Some(StateValue::Alarm),
            threshold: Some(50.0),
            comparison_operator: Some("GreaterThanThreshold".into()),
            evaluation_periods: Some(1),
            datapoints_to_alarm: Some(1),
            treat_missing_data: Some("missing".into()),
            statistic: Some("Sum".into()),
            period: Some(300),
            actions_enabled: Some(true),
            ..MetricAlarmDefinition::default()
        })
    }

    fn source_with_nfm_alarm() -> FakeSource {
        let points = [("09:50", 3.0), ("09:55", 87.0), ("09:45", f64::NAN)];
        FakeSource {
            alarms: BTreeMap::from([("NFM-Alarm-EKS-DB".into(), nfm_alarm())]),
            datapoints: points
                .iter()
                .map(|(time, value)| Datapoint {
                    timestamp: at(&format!("2026-11-24T{time}:00Z")),
                    value: *value,
                })
                .collect(),
            tags: BTreeMap::from([(
                ARN.into(),
                BTreeMap::from([("team".to_owned(), "network".to_owned())]),
            )]),
            ..FakeSource::default()
        }
    }

    #[tokio::test]
    async fn a_metric_alarm_gets_its_settings_datapoints_tags_and_monitor() {
        let source = source_with_nfm_alarm();
        let event = AlarmEvent::parse(METRIC).unwrap();
        let enrichment = enrich(&event, &source, at(NOW)).await.unwrap();
        assert_eq!(enrichment["kind"], "metric");
        assert_eq!(
            enrichment["metric"],
            json!({
                "namespace": "AWS/NetworkFlowMonitor", "name": "Timeouts",
                "dimensions": {"MonitorId": "arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/my-monitor"},
                "stat": "Sum", "period": 300, "id": "m1",
            })
        );
        assert_eq!(enrichment["alarm"]["type"], "MetricAlarm");
        assert_eq!(enrichment["alarm"]["threshold"], json!(50.0));
        assert_eq!(
            enrichment["alarm"]["comparisonOperator"],
            "GreaterThanThreshold"
        );
        assert_eq!(enrichment["alarm"]["state"], "ALARM");
        assert_eq!(
            enrichment["datapoints"],
            json!([
                {"timestamp": "2026-11-24T09:55:00.000Z", "value": 87.0},
                {"timestamp": "2026-11-24T09:50:00.000Z", "value": 3.0},
            ]),
            "newest first, non-finite values dropped"
        );
        assert_eq!(enrichment["tags"], json!({"team": "network"}));
        assert_eq!(
            enrichment["networkFlowMonitor"]["monitorArn"],
            "arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/my-monitor"
        );
        assert_eq!(enrichment["notes"], json!([]));
        assert!(enrichment.get("composite").is_none());
        let queries = source.queries.lock().unwrap();
        let (query, start, end) = &queries[0];
        assert_eq!(query.stat, "Sum");
        assert_eq!(query.period, 300);
        assert_eq!(
            query.dimensions,
            [(
                "MonitorId".to_owned(),
                "arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/my-monitor".to_owned()
            )]
        );
        assert_eq!(
            (*start, *end),
            (at("2026-11-24T09:50:00Z"), at("2026-11-24T10:05:00Z"))
        );
    }

    #[tokio::test]
    async fn a_deleted_alarm_is_null_with_a_note_not_an_error() {
        let source = FakeSource::default();
        let event = AlarmEvent::parse(METRIC).unwrap();
        let enrichment = enrich(&event, &source, at(NOW)).await.unwrap();
        assert_eq!(enrichment["alarm"], Value::Null);
        assert_eq!(enrichment["tags"], Value::Null);
        assert_eq!(enrichment["datapoints"], json!([]));
        assert_eq!(
            enrichment["metric"]["name"], "Timeouts",
            "the event still tells the metric"
        );
        let notes = enrichment["notes"].to_string();
        assert!(
            notes.contains("not found") && notes.contains("no datapoints"),
            "{notes}"
        );
    }

    #[tokio::test]
    async fn throttling_anywhere_is_throttled_and_other_secondary_failures_are_notes() {
        let event = AlarmEvent::parse(METRIC).unwrap();
        let throttled = FakeSource {
            datapoints_error: Some(EnrichError::Throttled("GetMetricData: Throttling".into())),
            ..source_with_nfm_alarm()
        };
        assert!(matches!(
            enrich(&event, &throttled, at(NOW)).await,
            Err(EnrichError::Throttled(_))
        ));
        let denied = FakeSource {
            datapoints_error: Some(EnrichError::Failed("GetMetricData: AccessDenied".into())),
            ..source_with_nfm_alarm()
        };
        let enrichment = enrich(&event, &denied, at(NOW)).await.unwrap();
        assert_eq!(enrichment["datapoints"], json!([]));
        assert!(enrichment["notes"].to_string().contains("AccessDenied"));
        let describe_denied = FakeSource {
            describe_error: Some(EnrichError::Failed("DescribeAlarms: AccessDenied".into())),
            ..FakeSource::default()
        };
        assert!(matches!(
            enrich(&event, &describe_denied, at(NOW)).await,
            Err(EnrichError::Failed(_))
        ));
    }

    #[tokio::test]
    async fn a_metric_math_alarm_reads_the_first_metric_with_a_note() {
        let event = AlarmEvent::parse(METRIC_MATH).unwrap();
        let source = FakeSource::default();
        let enrichment = enrich(&event, &source, at(NOW)).await.unwrap();
        assert_eq!(enrichment["kind"], "metric-math");
        assert_eq!(enrichment["metric"]["id"], "m1");
        assert_eq!(enrichment["metric"]["name"], "Retransmissions");
        assert_eq!(
            enrichment["networkFlowMonitor"]["monitorArn"],
            "arn:aws:networkflowmonitor:eu-west-1:123456789012:monitor/db"
        );
        assert!(enrichment["notes"].to_string().contains("metric m1"));
    }

    #[tokio::test]
    async fn a_composite_alarm_gets_its_rule_and_the_states_of_its_alarms() {
        let event = AlarmEvent::parse(COMPOSITE).unwrap();
        let source = FakeSource {
            alarms: BTreeMap::from([
                ("NFM-Alarm-EKS-DB".into(), nfm_alarm()),
                (
                    "NetworkPathDegraded".into(),
                    AlarmDefinition::Composite(CompositeAlarmDefinition {
                        name: "NetworkPathDegraded".into(),
                        state: Some(StateValue::Alarm),
                        alarm_rule: Some("ALARM(changed-since)".into()),
                        ..CompositeAlarmDefinition::default()
                    }),
                ),
            ]),
            ..FakeSource::default()
        };
        let enrichment = enrich(&event, &source, at(NOW)).await.unwrap();
        assert_eq!(enrichment["kind"], "composite");
        assert_eq!(enrichment["metric"], Value::Null);
        assert_eq!(enrichment["alarm"]["type"], "CompositeAlarm");
        assert_eq!(
            enrichment["composite"],
            json!({
                "alarmRule": "ALARM(\"NFM-Alarm-EKS-DB\") OR ALARM(\"NFM-Alarm-EKS-Cache\")",
                "alarms": [
                    {"name": "NFM-Alarm-EKS-DB", "state": "ALARM"},
                    {"name": "NFM-Alarm-EKS-Cache", "state": null},
                ],
            }),
            "the event's rule wins over a later edit"
        );
        assert!(
            enrichment["notes"]
                .to_string()
                .contains("1 alarm(s) of the rule not found")
        );
        assert!(
            source.queries.lock().unwrap().is_empty(),
            "no metric to read"
        );
    }

    #[cfg(feature = "sqlite")]
    mod handler {
        use super::*;
        use crate::adapters::SqliteStore;
        use crate::intake::Intake;
        use crate::outbox::Dispatcher;
        use crate::testing::{FakeStarter, FixedClock};
        use std::sync::Arc;

        async fn started(raw: &[u8]) -> (Arc<dyn IncidentStore>, Value, IncidentId) {
            let store: Arc<dyn IncidentStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
            let dispatcher = Dispatcher::new(
                store.clone(),
                Arc::new(FakeStarter::default()),
                Arc::new(FixedClock::at(NOW)),
            );
            let outcome = Intake::new(dispatcher, None).handle(raw).await.unwrap();
            let id = outcome.incident().incident_id.clone();
            assert_eq!(outcome.incident().status, IncidentStatus::Started);
            let event: Value = serde_json::from_slice(raw).unwrap();
            (store, json!({ "incidentId": id, "event": event }), id)
        }

        #[tokio::test]
        async fn enriching_a_started_incident_records_it_and_moves_it_to_enriched() {
            let (store, input, id) = started(METRIC).await;
            let source = source_with_nfm_alarm();
            let clock = FixedClock::at(NOW);
            let enrichment = handle(
                input,
                &source,
                &NetworkSettings::default(),
                store.as_ref(),
                &clock,
            )
            .await
            .unwrap();
            assert_eq!(enrichment["alarm"]["threshold"], json!(50.0));
            let incident = store.get(&id).await.unwrap().unwrap();
            assert_eq!(incident.status, IncidentStatus::Enriched);
            let events = store.events(&id).await.unwrap();
            let last = events.last().unwrap();
            assert_eq!(last.kind, EventType::Enriched);
            assert_eq!(last.data, enrichment);
        }

        #[tokio::test]
        async fn a_later_status_is_never_overwritten() {
            let (store, input, id) = started(METRIC).await;
            let clock = FixedClock::at(NOW);
            let current = store.get(&id).await.unwrap().unwrap();
            let mut delivered = current.advance(clock.now());
            delivered.status = IncidentStatus::Delivered;
            store
                .append(
                    &delivered,
                    &NewEvent::new(EventType::Delivered, clock.now(), json!({})),
                )
                .await
                .unwrap();
            handle(
                input,
                &source_with_nfm_alarm(),
                &NetworkSettings::default(),
                store.as_ref(),
                &clock,
            )
            .await
            .unwrap();
            let incident = store.get(&id).await.unwrap().unwrap();
            assert_eq!(incident.status, IncidentStatus::Delivered);
            assert_eq!(
                store.events(&id).await.unwrap().last().unwrap().kind,
                EventType::Enriched
            );
        }

        #[tokio::test]
        async fn a_failure_is_recorded_before_it_is_returned() {
            let (store, input, id) = started(METRIC).await;
            let source = FakeSource {
                describe_error: Some(EnrichError::Throttled("DescribeAlarms: Throttling".into())),
                ..FakeSource::default()
            };
            let error = handle(
                input,
                &source,
                &NetworkSettings::default(),
                store.as_ref(),
                &FixedClock::at(NOW),
            )
            .await
            .unwrap_err();
            assert_eq!(error.error_type(), "Enrichment.Throttled");
            let incident = store.get(&id).await.unwrap().unwrap();
            assert_eq!(incident.status, IncidentStatus::Started);
            let last = store.events(&id).await.unwrap().pop().unwrap();
            assert_eq!(last.kind, EventType::EnrichmentFailed);
            assert_eq!(last.data["error"], "Enrichment.Throttled");
            assert!(last.data["reason"].as_str().unwrap().contains("Throttling"));
        }

        #[tokio::test]
        async fn bad_input_and_unknown_incidents_are_failed() {
            let store = SqliteStore::open_in_memory().unwrap();
            let clock = FixedClock::at(NOW);
            let source = source_with_nfm_alarm();
            for input in [
                json!({}),
                json!({"incidentId": 5, "event": {}}),
                json!({"incidentId": "x", "event": {"detail-type": "other"}}),
            ] {
                let error = handle(input, &source, &NetworkSettings::default(), &store, &clock)
                    .await
                    .unwrap_err();
                assert_eq!(error.error_type(), "Enrichment.Failed", "{error}");
            }
            let event: Value = serde_json::from_slice(METRIC).unwrap();
            let error = handle(
                json!({"incidentId": "nope", "event": event}),
                &source,
                &NetworkSettings::default(),
                &store,
                &clock,
            )
            .await
            .unwrap_err();
            assert!(
                matches!(error, EnrichError::Failed(ref m) if m.contains("no incident")),
                "{error}"
            );
        }

        #[test]
        fn an_unavailable_store_is_retryable() {
            assert_eq!(
                from_store(StoreError::Unavailable("busy".into())).error_type(),
                "Enrichment.Throttled"
            );
            assert_eq!(
                from_store(StoreError::Failed("denied".into())).error_type(),
                "Enrichment.Failed"
            );
        }
    }

    proptest! {
        #[test]
        fn rule_parsing_never_panics_and_finds_only_nonempty_names(rule in ".{0,200}") {
            for reference in rule_alarms(&rule) {
                prop_assert!(!reference.name.is_empty());
                prop_assert!(rule.contains(&reference.reference));
            }
        }

        #[test]
        fn rule_parsing_never_panics_on_rule_shaped_text(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("ALARM(".to_owned()), Just("OK(".to_owned()), Just("INSUFFICIENT_DATA(".to_owned()),
                    Just(")".to_owned()), Just("\"".to_owned()), Just(" AND ".to_owned()), Just("NOT ".to_owned()),
                    Just("arn:aws:cloudwatch:us-east-1:1:alarm:".to_owned()), "[a-zé: ]{0,8}",
                ],
                0..24,
            ),
        ) {
            let rule = parts.concat();
            let found = rule_alarms(&rule);
            prop_assert!(found.len() <= rule.len());
        }
    }
}
