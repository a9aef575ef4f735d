//! The alarms the local engine knows, from a JSON file: exactly what
//! `aws cloudwatch describe-alarms` prints (`{"MetricAlarms": [...], "CompositeAlarms": [...]}`,
//! the API's field names), plus one addition per alarm, `"Tags": [{"Key": ..., "Value": ...}]`
//! as `aws cloudwatch list-tags-for-resource` prints them. The shape is
//! `schemas/alarms-file.schema.json`.
//!
//! Fields are converted into [`AlarmDefinition`] exactly as the CloudWatch adapter converts
//! DescribeAlarms output (`src/adapters/aws/cloudwatch.rs`); `StateUpdatedTimestamp` is
//! normalised to [`crate::incident::timestamp`] (UTC, milliseconds, `Z`). `Namespace`,
//! `MetricName`, `Dimensions` and `Metrics` are checked for shape but not kept: an
//! [`AlarmDefinition`] does not carry the metric (the event does). Both top-level keys are
//! optional and unknown fields are ignored (the CLI prints many).
//!
//! A file has no metric data: [`AlarmSource::metric_datapoints`] always answers an empty list,
//! so enrichment notes that no datapoints were found.
//!
//! A third optional key, `TopContributorsQueries`, holds Network Flow Monitor results:
//! each entry names `monitorName`, `metricName` (`TIMEOUTS`…) and `destinationCategory`, and
//! carries what `aws networkflowmonitor get-query-results-monitor-top-contributors` prints
//! (`unit`, `topContributors`, the API's camelCase names). With it the file answers the
//! enricher's top-contributors queries: a query of a monitor the file names succeeds at once
//! with the entry's flows (none without an entry for that metric and category), a query of
//! another monitor is `NotFound`, as the service answers.

use crate::enrich::alarm_name_of;
use crate::enrich::network::{CATEGORIES, QUERY_METRICS};
use crate::event::StateValue;
use crate::incident::timestamp;
use crate::ports::{
    AlarmDefinition, AlarmSource, CompositeAlarmDefinition, ContributorsPage, Datapoint,
    EnrichError, FlowContributor, FlowQueryError, MetricAlarmDefinition, MetricQuery, QueryStatus,
    TopContributors, TopContributorsQuery,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Why an alarm file was refused. Every message is one line naming the file and, when the
/// fault is inside the document, its JSON path (`MetricAlarms[2].Tags[0]: missing field
/// `Value``).
#[derive(Debug, thiserror::Error)]
pub enum AlarmFileError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The document is not an alarm file.
    #[error("{}", located(file.as_deref(), at, message))]
    Invalid {
        /// The file, `None` for [`FileAlarmSource::from_json`].
        file: Option<PathBuf>,
        /// The JSON path of the fault (`MetricAlarms[0].StateValue`); empty for the document
        /// itself (not JSON, not an object, trailing characters).
        at: String,
        message: String,
    },
}

impl AlarmFileError {
    fn invalid(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            file: None,
            at: at.into(),
            message: message.into(),
        }
    }

    fn in_file(self, path: &Path) -> Self {
        match self {
            Self::Invalid { at, message, .. } => Self::Invalid {
                file: Some(path.to_owned()),
                at,
                message,
            },
            read @ Self::Read { .. } => read,
        }
    }
}

/// `<file>: <path>: <message>`, without the path when the fault is the whole document.
fn located(file: Option<&Path>, at: &str, message: &str) -> String {
    let file = file.map_or_else(
        || "alarm file".to_owned(),
        |path| path.display().to_string(),
    );
    if at.is_empty() {
        format!("{file}: {message}")
    } else {
        format!("{file}: {at}: {message}")
    }
}

/// An [`AlarmSource`] answering from the alarms of one file, loaded once.
#[derive(Debug, Clone, Default)]
pub struct FileAlarmSource {
    alarms: Vec<KnownAlarm>,
    by_name: HashMap<String, usize>,
    by_arn: HashMap<String, usize>,
    queries: Vec<ContributorsQuery>,
}

/// The query id of an entry of `TopContributorsQueries` (its index), or of a query with no
/// entry.
const QUERY_ID_PREFIX: &str = "file-";
const NO_ENTRY: &str = "file-none";

#[derive(Debug, Clone)]
struct KnownAlarm {
    definition: AlarmDefinition,
    tags: BTreeMap<String, String>,
}

impl KnownAlarm {
    fn state(&self) -> Option<StateValue> {
        match &self.definition {
            AlarmDefinition::Metric(alarm) => alarm.state,
            AlarmDefinition::Composite(alarm) => alarm.state,
        }
    }
}

impl FileAlarmSource {
    /// Reads and checks the alarm file at `path` (synchronously: call it at startup).
    pub fn load(path: &Path) -> Result<Self, AlarmFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| AlarmFileError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::from_json(&text).map_err(|error| error.in_file(path))
    }

    /// Checks an alarm document. Refused: anything not of the file's shape (named by its JSON
    /// path), an empty `AlarmName`, a `StateValue` other than `ALARM`, `OK` or
    /// `INSUFFICIENT_DATA`, two alarms (of either type) with one `AlarmName` or one
    /// `AlarmArn`, and two tags of one alarm with one `Key`.
    pub fn from_json(text: &str) -> Result<Self, AlarmFileError> {
        let file = parse(text)?;
        let mut source = Self::default();
        for (index, mut alarm) in file.metric_alarms.into_iter().enumerate() {
            let at = format!("MetricAlarms[{index}]");
            let tags = tag_map(&at, std::mem::take(&mut alarm.tags))?;
            let definition = AlarmDefinition::Metric(alarm.definition());
            source.add(&at, definition, tags)?;
        }
        for (index, mut alarm) in file.composite_alarms.into_iter().enumerate() {
            let at = format!("CompositeAlarms[{index}]");
            let tags = tag_map(&at, std::mem::take(&mut alarm.tags))?;
            let definition = AlarmDefinition::Composite(alarm.definition());
            source.add(&at, definition, tags)?;
        }
        for (index, query) in file.top_contributors_queries.into_iter().enumerate() {
            source.add_query(&format!("TopContributorsQueries[{index}]"), query)?;
        }
        Ok(source)
    }

    /// Records a top-contributors entry, refusing an unknown metric or category and a second
    /// entry for one monitor, metric and category.
    fn add_query(&mut self, at: &str, query: ContributorsQuery) -> Result<(), AlarmFileError> {
        if query.monitor_name.trim().is_empty() {
            return Err(AlarmFileError::invalid(
                format!("{at}.monitorName"),
                "must not be empty",
            ));
        }
        let metrics: Vec<&str> = QUERY_METRICS.iter().map(|(_, api)| *api).collect();
        if !metrics.contains(&query.metric_name.as_str()) {
            return Err(AlarmFileError::invalid(
                format!("{at}.metricName"),
                format!(
                    "must be one of {}, got {:?}",
                    metrics.join(", "),
                    query.metric_name
                ),
            ));
        }
        if !CATEGORIES.contains(&query.destination_category.as_str()) {
            return Err(AlarmFileError::invalid(
                format!("{at}.destinationCategory"),
                format!(
                    "must be one of {}, got {:?}",
                    CATEGORIES.join(", "),
                    query.destination_category
                ),
            ));
        }
        if let Some(other) = self.queries.iter().position(|known| {
            (
                &known.monitor_name,
                &known.metric_name,
                &known.destination_category,
            ) == (
                &query.monitor_name,
                &query.metric_name,
                &query.destination_category,
            )
        }) {
            return Err(AlarmFileError::invalid(
                at,
                format!("the same monitor, metric and category as TopContributorsQueries[{other}]"),
            ));
        }
        self.queries.push(query);
        Ok(())
    }

    /// How many alarms the file holds.
    pub fn len(&self) -> usize {
        self.alarms.len()
    }

    /// Whether the file holds no alarm.
    pub fn is_empty(&self) -> bool {
        self.alarms.is_empty()
    }

    /// Records the alarm at JSON path `at`, refusing an empty or repeated name or a repeated
    /// ARN (an empty ARN is kept but matches nothing).
    fn add(
        &mut self,
        at: &str,
        definition: AlarmDefinition,
        tags: BTreeMap<String, String>,
    ) -> Result<(), AlarmFileError> {
        let name = definition.name();
        if name.is_empty() {
            return Err(AlarmFileError::invalid(
                format!("{at}.AlarmName"),
                "must not be empty",
            ));
        }
        if let Some(&other) = self.by_name.get(name) {
            return Err(AlarmFileError::invalid(
                format!("{at}.AlarmName"),
                format!(
                    "duplicate alarm name {name:?} (also {})",
                    self.path_of(other)
                ),
            ));
        }
        let arn = definition.arn().filter(|arn| !arn.is_empty());
        if let Some(arn) = arn
            && let Some(&other) = self.by_arn.get(arn)
        {
            return Err(AlarmFileError::invalid(
                format!("{at}.AlarmArn"),
                format!("duplicate alarm ARN {arn:?} (also {})", self.path_of(other)),
            ));
        }
        let index = self.alarms.len();
        self.by_name.insert(name.to_owned(), index);
        if let Some(arn) = arn {
            self.by_arn.insert(arn.to_owned(), index);
        }
        self.alarms.push(KnownAlarm { definition, tags });
        Ok(())
    }

    /// The JSON path of the alarm at `index` (metric alarms come first).
    fn path_of(&self, index: usize) -> String {
        let metric = self
            .alarms
            .iter()
            .filter(|alarm| matches!(alarm.definition, AlarmDefinition::Metric(_)))
            .count();
        if index < metric {
            format!("MetricAlarms[{index}]")
        } else {
            format!("CompositeAlarms[{}]", index - metric)
        }
    }

    fn named(&self, name: &str) -> Option<&KnownAlarm> {
        self.by_name.get(name).map(|&index| &self.alarms[index])
    }
}

#[async_trait]
impl AlarmSource for FileAlarmSource {
    /// The alarm whose `AlarmName` is `name`.
    async fn describe_alarm(&self, name: &str) -> Result<Option<AlarmDefinition>, EnrichError> {
        Ok(self.named(name).map(|alarm| alarm.definition.clone()))
    }

    /// Always empty: a file holds alarm definitions, not metric data.
    async fn metric_datapoints(
        &self,
        _query: &MetricQuery,
        _start: DateTime<Utc>,
        _end: DateTime<Utc>,
    ) -> Result<Vec<Datapoint>, EnrichError> {
        Ok(Vec::new())
    }

    /// The `Tags` of the alarm whose `AlarmArn` is `arn`, else of the alarm named in `arn`
    /// (see [`alarm_name_of`]); an alarm without `Tags` has none (`Some` of an empty map).
    async fn alarm_tags(&self, arn: &str) -> Result<Option<BTreeMap<String, String>>, EnrichError> {
        let alarm = match self.by_arn.get(arn) {
            Some(&index) => Some(&self.alarms[index]),
            None => self.named(alarm_name_of(arn)),
        };
        Ok(alarm.map(|alarm| alarm.tags.clone()))
    }

    /// The `StateValue` of each named alarm that exists and has one.
    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<BTreeMap<String, StateValue>, EnrichError> {
        Ok(names
            .iter()
            .filter_map(|name| Some((name.clone(), self.named(name)?.state()?)))
            .collect())
    }

    /// The file's top contributors, when it has any `TopContributorsQueries`.
    fn top_contributors(&self) -> Option<&dyn TopContributors> {
        (!self.queries.is_empty()).then_some(self as &dyn TopContributors)
    }
}

#[async_trait]
impl TopContributors for FileAlarmSource {
    async fn start_query(&self, query: &TopContributorsQuery) -> Result<String, FlowQueryError> {
        if !self
            .queries
            .iter()
            .any(|known| known.monitor_name == query.monitor_name)
        {
            return Err(FlowQueryError::NotFound(format!(
                "monitor {:?} is not in the alarm file's TopContributorsQueries",
                query.monitor_name
            )));
        }
        Ok(self
            .queries
            .iter()
            .position(|known| {
                known.monitor_name == query.monitor_name
                    && known.metric_name == query.metric
                    && known.destination_category == query.destination_category
            })
            .map_or_else(
                || NO_ENTRY.to_owned(),
                |index| format!("{QUERY_ID_PREFIX}{index}"),
            ))
    }

    async fn query_status(
        &self,
        _monitor_name: &str,
        query_id: &str,
    ) -> Result<QueryStatus, FlowQueryError> {
        self.entry(query_id).map(|_| QueryStatus::Succeeded)
    }

    /// The entry's flows from `next_token` (an offset), `max_results` at a time.
    async fn query_results(
        &self,
        _monitor_name: &str,
        query_id: &str,
        max_results: u32,
        next_token: Option<&str>,
    ) -> Result<ContributorsPage, FlowQueryError> {
        let Some(entry) = self.entry(query_id)? else {
            return Ok(ContributorsPage::default());
        };
        let from = next_token
            .and_then(|token| token.parse::<usize>().ok())
            .unwrap_or(0);
        let to = from
            .saturating_add(usize::try_from(max_results.max(1)).unwrap_or(usize::MAX))
            .min(entry.top_contributors.len());
        Ok(ContributorsPage {
            unit: entry.unit.clone(),
            flows: entry
                .top_contributors
                .get(from..to)
                .unwrap_or_default()
                .to_vec(),
            next_token: (to < entry.top_contributors.len()).then(|| to.to_string()),
        })
    }
}

impl FileAlarmSource {
    /// The entry a query id names (`None` for a query with no entry).
    fn entry(&self, query_id: &str) -> Result<Option<&ContributorsQuery>, FlowQueryError> {
        if query_id == NO_ENTRY {
            return Ok(None);
        }
        query_id
            .strip_prefix(QUERY_ID_PREFIX)
            .and_then(|index| index.parse::<usize>().ok())
            .and_then(|index| self.queries.get(index))
            .map(Some)
            .ok_or_else(|| FlowQueryError::NotFound(format!("no query {query_id:?}")))
    }
}

// --- The file's shape -------------------------------------------------------------------------

/// Deserialises the document, naming the JSON path of the first fault.
fn parse(text: &str) -> Result<AlarmsFile, AlarmFileError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let Object(file): Object<AlarmsFile> = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| {
            AlarmFileError::invalid(json_path(error.path()), json_message(error.inner()))
        })?;
    deserializer
        .end()
        .map_err(|error| AlarmFileError::invalid("", json_message(&error)))?;
    Ok(file)
}

/// The path as serde_path_to_error prints it (`MetricAlarms[2].Tags[0]`), without the `?` it
/// puts for a key not read yet (a syntax error inside an object), empty for the document.
fn json_path(path: &serde_path_to_error::Path) -> String {
    let mut at = path.to_string();
    while let Some(known) = at.strip_suffix(".?") {
        at.truncate(known.len());
    }
    if at == "." || at == "?" {
        at.clear();
    }
    at
}

/// serde_json's message; for a wrong or missing value the JSON path locates it, so the
/// ` at line L column C` suffix is dropped (it stays for syntax errors).
fn json_message(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if error.classify() != serde_json::error::Category::Data {
        return message;
    }
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(message) => message.to_owned(),
        None => message,
    }
}

/// The tags of the alarm at `at` as a map, refusing a repeated key.
fn tag_map(at: &str, tags: Vec<Tag>) -> Result<BTreeMap<String, String>, AlarmFileError> {
    let mut map = BTreeMap::new();
    let mut first: HashMap<String, usize> = HashMap::new();
    for (index, tag) in tags.into_iter().enumerate() {
        if let Some(other) = first.get(&tag.key) {
            return Err(AlarmFileError::invalid(
                format!("{at}.Tags[{index}].Key"),
                format!("duplicate tag key {:?} (also Tags[{other}])", tag.key),
            ));
        }
        first.insert(tag.key.clone(), index);
        map.insert(tag.key, tag.value);
    }
    Ok(map)
}

/// `StateUpdatedTimestamp`: RFC 3339 as the CLI prints it (`2026-11-24T10:00:00.000000+00:00`),
/// normalised to [`timestamp`].
fn rfc3339<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|at| Some(timestamp(at.with_timezone(&Utc))))
        .map_err(|_| serde::de::Error::custom(format!("not an RFC 3339 timestamp: {text:?}")))
}

/// One of the file's objects, and what an error says was expected instead.
trait Shape: for<'de> Deserialize<'de> {
    const EXPECTING: &'static str;
}

/// A JSON object only: serde's derived structs also accept an array (fields by position),
/// which neither the CLI prints nor the schema allows.
struct Object<T>(T);

impl<'de, T: Shape> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Shape> serde::de::Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(T::EXPECTING)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(std::marker::PhantomData))
            .map(Object)
    }
}

/// An array of objects.
fn objects<'de, D: Deserializer<'de>, T: Shape>(deserializer: D) -> Result<Vec<T>, D::Error> {
    let objects = Vec::<Object<T>>::deserialize(deserializer)?;
    Ok(objects.into_iter().map(|Object(value)| value).collect())
}

impl Shape for AlarmsFile {
    const EXPECTING: &'static str = "an object with MetricAlarms and/or CompositeAlarms";
}
impl Shape for MetricAlarm {
    const EXPECTING: &'static str = "a metric alarm object";
}
impl Shape for CompositeAlarm {
    const EXPECTING: &'static str = "a composite alarm object";
}
impl Shape for Tag {
    const EXPECTING: &'static str = "a tag object with Key and Value";
}
impl Shape for Dimension {
    const EXPECTING: &'static str = "a dimension object with Name and Value";
}
impl Shape for MetricDataQuery {
    const EXPECTING: &'static str = "a metric data query object";
}
impl Shape for MetricStat {
    const EXPECTING: &'static str = "a metric stat object";
}
impl Shape for Metric {
    const EXPECTING: &'static str = "a metric object";
}
impl Shape for ContributorsQuery {
    const EXPECTING: &'static str =
        "a top-contributors object with monitorName, metricName, destinationCategory";
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AlarmsFile {
    #[serde(default, deserialize_with = "objects")]
    metric_alarms: Vec<MetricAlarm>,
    #[serde(default, deserialize_with = "objects")]
    composite_alarms: Vec<CompositeAlarm>,
    #[serde(default, deserialize_with = "objects")]
    top_contributors_queries: Vec<ContributorsQuery>,
}

/// One top-contributors result of the file, in the Network Flow Monitor API's names.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContributorsQuery {
    monitor_name: String,
    metric_name: String,
    destination_category: String,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    top_contributors: Vec<FlowContributor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricAlarm {
    alarm_name: String,
    alarm_arn: Option<String>,
    state_value: Option<StateValue>,
    #[serde(default, deserialize_with = "rfc3339")]
    state_updated_timestamp: Option<String>,
    threshold: Option<f64>,
    threshold_metric_id: Option<String>,
    comparison_operator: Option<String>,
    evaluation_periods: Option<u32>,
    datapoints_to_alarm: Option<u32>,
    treat_missing_data: Option<String>,
    unit: Option<String>,
    statistic: Option<String>,
    extended_statistic: Option<String>,
    period: Option<u32>,
    actions_enabled: Option<bool>,
    #[allow(dead_code, reason = "checked for shape only")]
    namespace: Option<String>,
    #[allow(dead_code, reason = "checked for shape only")]
    metric_name: Option<String>,
    #[allow(dead_code, reason = "checked for shape only")]
    #[serde(default)]
    dimensions: Vec<Object<Dimension>>,
    #[allow(dead_code, reason = "checked for shape only")]
    #[serde(default)]
    metrics: Vec<Object<MetricDataQuery>>,
    #[serde(default, deserialize_with = "objects")]
    tags: Vec<Tag>,
}

impl MetricAlarm {
    /// The definition, field for field as `cloudwatch::metric_definition` builds it.
    fn definition(self) -> MetricAlarmDefinition {
        MetricAlarmDefinition {
            name: self.alarm_name,
            arn: self.alarm_arn,
            state: self.state_value,
            state_updated_at: self.state_updated_timestamp,
            threshold: self.threshold,
            threshold_metric_id: self.threshold_metric_id,
            comparison_operator: self.comparison_operator,
            evaluation_periods: self.evaluation_periods,
            datapoints_to_alarm: self.datapoints_to_alarm,
            treat_missing_data: self.treat_missing_data,
            unit: self.unit,
            statistic: self.statistic,
            extended_statistic: self.extended_statistic,
            period: self.period,
            actions_enabled: self.actions_enabled,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompositeAlarm {
    alarm_name: String,
    alarm_arn: Option<String>,
    state_value: Option<StateValue>,
    #[serde(default, deserialize_with = "rfc3339")]
    state_updated_timestamp: Option<String>,
    alarm_rule: Option<String>,
    actions_enabled: Option<bool>,
    actions_suppressor: Option<String>,
    #[serde(default, deserialize_with = "objects")]
    tags: Vec<Tag>,
}

impl CompositeAlarm {
    /// The definition, field for field as `cloudwatch::composite_definition` builds it.
    fn definition(self) -> CompositeAlarmDefinition {
        CompositeAlarmDefinition {
            name: self.alarm_name,
            arn: self.alarm_arn,
            state: self.state_value,
            state_updated_at: self.state_updated_timestamp,
            alarm_rule: self.alarm_rule,
            actions_enabled: self.actions_enabled,
            actions_suppressor: self.actions_suppressor,
        }
    }
}

/// One tag as `list-tags-for-resource` prints it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code, reason = "checked for shape only")]
struct Dimension {
    name: String,
    value: String,
}

/// One entry of a metric-math alarm's `Metrics`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code, reason = "checked for shape only")]
struct MetricDataQuery {
    id: String,
    expression: Option<String>,
    label: Option<String>,
    return_data: Option<bool>,
    period: Option<u32>,
    account_id: Option<String>,
    metric_stat: Option<Object<MetricStat>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code, reason = "checked for shape only")]
struct MetricStat {
    metric: Object<Metric>,
    period: u32,
    stat: String,
    unit: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code, reason = "checked for shape only")]
struct Metric {
    namespace: Option<String>,
    metric_name: Option<String>,
    #[serde(default)]
    dimensions: Vec<Object<Dimension>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const MONITOR: &str = "arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/my-monitor";
    const DB_ARN: &str = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:NFM-Alarm-EKS-DB";

    /// Two metric alarms of one monitor (one with tags, one metric-math without) and a
    /// composite, with some of the many fields the CLI prints and we ignore.
    fn document() -> Value {
        json!({
            "MetricAlarms": [
                {
                    "AlarmName": "NFM-Alarm-EKS-DB",
                    "AlarmArn": DB_ARN,
                    "AlarmDescription": "Network degradation detected between EKS and RDS",
                    "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:db-team"],
                    "StateValue": "ALARM",
                    "StateReason": "Threshold Crossed",
                    "StateUpdatedTimestamp": "2026-11-24T10:00:00.000000+00:00",
                    "Namespace": "AWS/NetworkFlowMonitor",
                    "MetricName": "Timeouts",
                    "Dimensions": [{"Name": "MonitorId", "Value": MONITOR}],
                    "Statistic": "Sum",
                    "Period": 300,
                    "Unit": "Count",
                    "EvaluationPeriods": 3,
                    "DatapointsToAlarm": 2,
                    "Threshold": 50.0,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "breaching",
                    "ActionsEnabled": true,
                    "Tags": [
                        {"Key": "alarm-relay:priority", "Value": "CRITICAL"},
                        {"Key": "alarm-relay:service", "Value": "checkout-db"}
                    ]
                },
                {
                    "AlarmName": "NFM-EKS-DB-Retransmissions",
                    "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:NFM-EKS-DB-Retransmissions",
                    "StateValue": "OK",
                    "StateUpdatedTimestamp": "2026-11-24T11:30:00.250+01:00",
                    "Metrics": [
                        {"Id": "e1", "Expression": "m1 * 2", "ReturnData": true},
                        {
                            "Id": "m1",
                            "MetricStat": {
                                "Metric": {
                                    "Namespace": "AWS/NetworkFlowMonitor",
                                    "MetricName": "Retransmissions",
                                    "Dimensions": [{"Name": "MonitorId", "Value": MONITOR}]
                                },
                                "Period": 60,
                                "Stat": "p99"
                            },
                            "ReturnData": false
                        }
                    ],
                    "EvaluationPeriods": 1,
                    "Threshold": 2.5,
                    "ComparisonOperator": "GreaterThanThreshold"
                }
            ],
            "CompositeAlarms": [
                {
                    "AlarmName": "NetworkPathDegraded",
                    "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:NetworkPathDegraded",
                    "AlarmRule": "ALARM(\"NFM-Alarm-EKS-DB\") OR ALARM(\"NFM-EKS-DB-Retransmissions\")",
                    "StateValue": "INSUFFICIENT_DATA",
                    "ActionsEnabled": false,
                    "ActionsSuppressor": "MaintenanceWindow",
                    "ActionsSuppressorWaitPeriod": 120
                }
            ]
        })
    }

    fn source() -> FileAlarmSource {
        FileAlarmSource::from_json(&document().to_string()).expect("the document loads")
    }

    fn refusal(document: &Value) -> String {
        refusal_of(&document.to_string())
    }

    fn refusal_of(text: &str) -> String {
        match FileAlarmSource::from_json(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(error) => error.to_string(),
        }
    }

    #[tokio::test]
    async fn a_metric_alarm_is_described_field_for_field() {
        let source = source();
        assert_eq!(source.len(), 3);
        let Some(AlarmDefinition::Metric(alarm)) =
            source.describe_alarm("NFM-Alarm-EKS-DB").await.unwrap()
        else {
            panic!("not a metric alarm");
        };
        assert_eq!(
            alarm,
            MetricAlarmDefinition {
                name: "NFM-Alarm-EKS-DB".into(),
                arn: Some(DB_ARN.into()),
                state: Some(StateValue::Alarm),
                state_updated_at: Some("2026-11-24T10:00:00.000Z".into()),
                threshold: Some(50.0),
                threshold_metric_id: None,
                comparison_operator: Some("GreaterThanThreshold".into()),
                evaluation_periods: Some(3),
                datapoints_to_alarm: Some(2),
                treat_missing_data: Some("breaching".into()),
                unit: Some("Count".into()),
                statistic: Some("Sum".into()),
                extended_statistic: None,
                period: Some(300),
                actions_enabled: Some(true),
            }
        );
    }

    #[tokio::test]
    async fn a_metric_math_alarm_has_no_statistic_and_its_timestamp_is_normalised() {
        let Some(AlarmDefinition::Metric(alarm)) = source()
            .describe_alarm("NFM-EKS-DB-Retransmissions")
            .await
            .unwrap()
        else {
            panic!("not a metric alarm");
        };
        assert_eq!(
            alarm.state_updated_at.as_deref(),
            Some("2026-11-24T10:30:00.250Z")
        );
        assert_eq!((alarm.statistic, alarm.period), (None, None));
        assert_eq!(alarm.threshold, Some(2.5));
    }

    #[tokio::test]
    async fn a_composite_alarm_is_described_field_for_field() {
        let definition = source()
            .describe_alarm("NetworkPathDegraded")
            .await
            .unwrap();
        assert_eq!(
            definition,
            Some(AlarmDefinition::Composite(CompositeAlarmDefinition {
                name: "NetworkPathDegraded".into(),
                arn: Some(
                    "arn:aws:cloudwatch:us-east-1:123456789012:alarm:NetworkPathDegraded".into()
                ),
                state: Some(StateValue::InsufficientData),
                state_updated_at: None,
                alarm_rule: Some(
                    r#"ALARM("NFM-Alarm-EKS-DB") OR ALARM("NFM-EKS-DB-Retransmissions")"#.into()
                ),
                actions_enabled: Some(false),
                actions_suppressor: Some("MaintenanceWindow".into()),
            }))
        );
    }

    #[tokio::test]
    async fn describe_alarm_finds_by_name_only() {
        let source = source();
        assert_eq!(source.describe_alarm("NFM-Alarm-EKS").await.unwrap(), None);
        assert_eq!(source.describe_alarm(DB_ARN).await.unwrap(), None);
    }

    #[tokio::test]
    async fn tags_are_found_by_arn_else_by_the_name_in_the_arn() {
        let source = source();
        let expected = BTreeMap::from([
            ("alarm-relay:priority".to_owned(), "CRITICAL".to_owned()),
            ("alarm-relay:service".to_owned(), "checkout-db".to_owned()),
        ]);
        assert_eq!(
            source.alarm_tags(DB_ARN).await.unwrap().as_ref(),
            Some(&expected)
        );
        // Another account's ARN of the same name, and a bare name.
        let elsewhere = "arn:aws:cloudwatch:eu-west-1:999999999999:alarm:NFM-Alarm-EKS-DB";
        assert_eq!(
            source.alarm_tags(elsewhere).await.unwrap().as_ref(),
            Some(&expected)
        );
        assert_eq!(
            source
                .alarm_tags("NFM-Alarm-EKS-DB")
                .await
                .unwrap()
                .as_ref(),
            Some(&expected)
        );
        let unknown = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:Gone";
        assert_eq!(source.alarm_tags(unknown).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_alarm_without_tags_has_an_empty_tag_set() {
        let source = source();
        for arn in [
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:NFM-EKS-DB-Retransmissions",
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:NetworkPathDegraded",
        ] {
            assert_eq!(
                source.alarm_tags(arn).await.unwrap(),
                Some(BTreeMap::new()),
                "{arn}"
            );
        }
    }

    #[tokio::test]
    async fn an_alarm_without_an_arn_is_found_by_the_name_in_any_arn() {
        let source = FileAlarmSource::from_json(
            r#"{"CompositeAlarms": [{"AlarmName": "a:b", "Tags": [{"Key": "k", "Value": "v"}]}]}"#,
        )
        .unwrap();
        let tags = source
            .alarm_tags("arn:aws:cloudwatch:us-east-1:1:alarm:a:b")
            .await
            .unwrap();
        assert_eq!(tags, Some(BTreeMap::from([("k".into(), "v".into())])));
    }

    #[tokio::test]
    async fn states_are_answered_for_the_named_alarms_that_exist() {
        let mut document = document();
        document["MetricAlarms"][1]
            .as_object_mut()
            .unwrap()
            .remove("StateValue");
        let source = FileAlarmSource::from_json(&document.to_string()).unwrap();
        let names = [
            "NFM-Alarm-EKS-DB",
            "NFM-EKS-DB-Retransmissions",
            "NetworkPathDegraded",
            "Gone",
        ]
        .map(str::to_owned);
        assert_eq!(
            source.alarm_states(&names).await.unwrap(),
            BTreeMap::from([
                ("NFM-Alarm-EKS-DB".to_owned(), StateValue::Alarm),
                (
                    "NetworkPathDegraded".to_owned(),
                    StateValue::InsufficientData
                ),
            ])
        );
        assert!(source.alarm_states(&[]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn there_are_never_datapoints() {
        let query = MetricQuery {
            namespace: "AWS/NetworkFlowMonitor".into(),
            name: "Timeouts".into(),
            dimensions: vec![("MonitorId".into(), MONITOR.into())],
            stat: "Sum".into(),
            period: 300,
            unit: None,
        };
        let now = Utc::now();
        let points = source()
            .metric_datapoints(&query, now - chrono::Duration::hours(1), now)
            .await
            .unwrap();
        assert!(points.is_empty());
    }

    #[tokio::test]
    async fn both_keys_are_optional() {
        for text in [
            "{}",
            r#"{"MetricAlarms": []}"#,
            r#"{"CompositeAlarms": [], "NextToken": "x"}"#,
        ] {
            let source = FileAlarmSource::from_json(text).unwrap();
            assert!(source.is_empty(), "{text}");
            assert_eq!(source.describe_alarm("any").await.unwrap(), None);
        }
        let only_composite =
            FileAlarmSource::from_json(r#"{"CompositeAlarms": [{"AlarmName": "c"}]}"#).unwrap();
        assert_eq!(only_composite.len(), 1);
    }

    #[test]
    fn unknown_fields_and_nulls_of_optional_fields_are_accepted() {
        let mut document = document();
        document["MetricAlarms"][0]["EvaluationState"] = json!("PARTIAL_DATA");
        document["MetricAlarms"][0]["Unit"] = Value::Null;
        document["MetricAlarms"][0]["Tags"][0]["ResourceArn"] = json!(DB_ARN);
        document["CompositeAlarms"][0]["ActionsSuppressedBy"] = json!({"any": ["thing", 1]});
        document["Extra"] = json!(1.5);
        assert_eq!(
            FileAlarmSource::from_json(&document.to_string())
                .unwrap()
                .len(),
            3
        );
    }

    /// Every refusal, with the message it gives.
    #[test]
    fn a_bad_document_is_refused_naming_the_fault() {
        type Edit = fn(&mut Value);
        let cases: [(Edit, &str); 16] = [
            (
                |d| {
                    drop(
                        d["MetricAlarms"][0]["Tags"][1]
                            .as_object_mut()
                            .unwrap()
                            .remove("Value"),
                    )
                },
                "alarm file: MetricAlarms[0].Tags[1]: missing field `Value`",
            ),
            (
                |d| {
                    drop(
                        d["MetricAlarms"][1]
                            .as_object_mut()
                            .unwrap()
                            .remove("AlarmName"),
                    )
                },
                "alarm file: MetricAlarms[1]: missing field `AlarmName`",
            ),
            (
                |d| d["CompositeAlarms"][0]["AlarmName"] = json!(""),
                "alarm file: CompositeAlarms[0].AlarmName: must not be empty",
            ),
            (
                |d| d["CompositeAlarms"][0]["AlarmName"] = Value::Null,
                "alarm file: CompositeAlarms[0].AlarmName: invalid type: null, expected a string",
            ),
            (
                |d| d["MetricAlarms"][1]["StateValue"] = json!("PENDING"),
                "alarm file: MetricAlarms[1].StateValue: unknown variant `PENDING`, expected one of `ALARM`, `OK`, `INSUFFICIENT_DATA`",
            ),
            (
                |d| d["CompositeAlarms"][0]["StateValue"] = json!("alarm"),
                "alarm file: CompositeAlarms[0].StateValue: unknown variant `alarm`, expected one of `ALARM`, `OK`, `INSUFFICIENT_DATA`",
            ),
            (
                |d| d["MetricAlarms"][1]["AlarmName"] = json!("NFM-Alarm-EKS-DB"),
                "alarm file: MetricAlarms[1].AlarmName: duplicate alarm name \"NFM-Alarm-EKS-DB\" (also MetricAlarms[0])",
            ),
            (
                |d| d["CompositeAlarms"][0]["AlarmName"] = json!("NFM-EKS-DB-Retransmissions"),
                "alarm file: CompositeAlarms[0].AlarmName: duplicate alarm name \"NFM-EKS-DB-Retransmissions\" (also MetricAlarms[1])",
            ),
            (
                |d| d["CompositeAlarms"][0]["AlarmArn"] = json!(DB_ARN),
                "alarm file: CompositeAlarms[0].AlarmArn: duplicate alarm ARN \"arn:aws:cloudwatch:us-east-1:123456789012:alarm:NFM-Alarm-EKS-DB\" (also MetricAlarms[0])",
            ),
            (
                |d| d["MetricAlarms"][0]["Tags"][1]["Key"] = json!("alarm-relay:priority"),
                "alarm file: MetricAlarms[0].Tags[1].Key: duplicate tag key \"alarm-relay:priority\" (also Tags[0])",
            ),
            (
                |d| {
                    d["MetricAlarms"][0]["StateUpdatedTimestamp"] =
                        json!("2026-11-24T10:00:00.000+0000")
                },
                "alarm file: MetricAlarms[0].StateUpdatedTimestamp: not an RFC 3339 timestamp: \"2026-11-24T10:00:00.000+0000\"",
            ),
            (
                |d| d["MetricAlarms"][0]["EvaluationPeriods"] = json!(-1),
                "alarm file: MetricAlarms[0].EvaluationPeriods: invalid value: integer `-1`, expected u32",
            ),
            (
                |d| d["MetricAlarms"][0]["Threshold"] = json!("50"),
                "alarm file: MetricAlarms[0].Threshold: invalid type: string \"50\", expected f64",
            ),
            (
                |d| {
                    drop(
                        d["MetricAlarms"][0]["Dimensions"][0]
                            .as_object_mut()
                            .unwrap()
                            .remove("Value"),
                    )
                },
                "alarm file: MetricAlarms[0].Dimensions[0]: missing field `Value`",
            ),
            (
                |d| {
                    drop(
                        d["MetricAlarms"][1]["Metrics"][1]["MetricStat"]
                            .as_object_mut()
                            .unwrap()
                            .remove("Stat"),
                    )
                },
                "alarm file: MetricAlarms[1].Metrics[1].MetricStat: missing field `Stat`",
            ),
            (
                |d| d["MetricAlarms"] = json!({"AlarmName": "x"}),
                "alarm file: MetricAlarms: invalid type: map, expected a sequence",
            ),
        ];
        for (edit, expected) in cases {
            let mut document = document();
            edit(&mut document);
            assert_eq!(refusal(&document), expected);
        }
    }

    #[test]
    fn a_document_that_is_not_an_alarm_object_is_refused() {
        let cases = [
            (
                "",
                "alarm file: EOF while parsing a value at line 1 column 0",
            ),
            (
                "[]",
                "alarm file: invalid type: sequence, expected an object with MetricAlarms and/or CompositeAlarms",
            ),
            (
                r#"{"MetricAlarms": ["NFM-Alarm-EKS-DB"]}"#,
                "alarm file: MetricAlarms[0]: invalid type: string \"NFM-Alarm-EKS-DB\", expected a metric alarm object",
            ),
            (
                r#"{"MetricAlarms": [["NFM-Alarm-EKS-DB"]]}"#,
                "alarm file: MetricAlarms[0]: invalid type: sequence, expected a metric alarm object",
            ),
            (
                r#"{"CompositeAlarms": [{"AlarmName": "c", "Tags": [["k", "v"]]}]}"#,
                "alarm file: CompositeAlarms[0].Tags[0]: invalid type: sequence, expected a tag object with Key and Value",
            ),
            (
                r#"{"MetricAlarms": [{"AlarmName": "m", "Metrics": [{"Id": "m1", "MetricStat": {"Metric": [], "Period": 60, "Stat": "Sum"}}]}]}"#,
                "alarm file: MetricAlarms[0].Metrics[0].MetricStat.Metric: invalid type: sequence, expected a metric object",
            ),
            (
                "{} {}",
                "alarm file: trailing characters at line 1 column 4",
            ),
            (
                "{\"MetricAlarms\": [{\"AlarmName\": \"a\",}]}",
                "alarm file: MetricAlarms[0]: trailing comma at line 1 column 37",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(refusal_of(text), expected, "{text:?}");
        }
    }

    fn with_flows() -> FileAlarmSource {
        let mut document = document();
        document["TopContributorsQueries"] = json!([
            {
                "monitorName": "my-monitor",
                "metricName": "TIMEOUTS",
                "destinationCategory": "INTER_VPC",
                "unit": "Count",
                "topContributors": [
                    {"localIp": "10.0.0.1", "remoteIp": "10.2.0.1", "value": 412,
                     "traversedConstructs": [{"componentId": "tgw-1", "componentType": "transit-gateway"}]},
                    {"localIp": "10.0.0.2", "remoteIp": "10.2.0.1", "value": 97},
                    {"localIp": "10.0.0.3", "remoteIp": "10.2.0.1", "value": 5, "somethingNew": true}
                ]
            }
        ]);
        FileAlarmSource::from_json(&document.to_string()).expect("the document loads")
    }

    fn query(category: &str) -> TopContributorsQuery {
        TopContributorsQuery {
            monitor_name: "my-monitor".into(),
            metric: "TIMEOUTS".into(),
            destination_category: category.into(),
            start: DateTime::UNIX_EPOCH,
            end: DateTime::UNIX_EPOCH,
            limit: 10,
        }
    }

    #[tokio::test]
    async fn top_contributors_come_from_the_file_page_by_page() {
        let source = with_flows();
        let flows = source.top_contributors().expect("the file has flows");
        let id = flows.start_query(&query("INTER_VPC")).await.unwrap();
        assert_eq!(
            flows.query_status("my-monitor", &id).await,
            Ok(QueryStatus::Succeeded)
        );
        let first = flows
            .query_results("my-monitor", &id, 2, None)
            .await
            .unwrap();
        assert_eq!(first.unit.as_deref(), Some("Count"));
        assert_eq!(first.flows.len(), 2);
        assert_eq!(first.flows[0].value, Some(412));
        assert_eq!(
            first.flows[0].traversed_constructs[0]
                .component_id
                .as_deref(),
            Some("tgw-1")
        );
        let rest = flows
            .query_results("my-monitor", &id, 2, first.next_token.as_deref())
            .await
            .unwrap();
        assert_eq!(rest.flows.len(), 1);
        assert_eq!(rest.next_token, None);
    }

    #[tokio::test]
    async fn another_category_has_no_flows_and_another_monitor_is_not_found() {
        let source = with_flows();
        let flows = source.top_contributors().unwrap();
        let id = flows.start_query(&query("INTRA_AZ")).await.unwrap();
        let page = flows
            .query_results("my-monitor", &id, 10, None)
            .await
            .unwrap();
        assert_eq!(page, ContributorsPage::default());
        let mut elsewhere = query("INTER_VPC");
        elsewhere.monitor_name = "other".into();
        assert!(matches!(
            flows.start_query(&elsewhere).await,
            Err(FlowQueryError::NotFound(message)) if message.contains("\"other\"")
        ));
        assert!(matches!(
            flows.query_status("my-monitor", "made-up").await,
            Err(FlowQueryError::NotFound(_))
        ));
    }

    #[test]
    fn a_file_without_top_contributors_has_no_monitor_to_ask() {
        assert!(source().top_contributors().is_none());
    }

    #[test]
    fn a_bad_top_contributors_entry_is_refused_naming_it() {
        let entry = json!({"monitorName": "m", "metricName": "TIMEOUTS", "destinationCategory": "INTER_AZ"});
        let cases = [
            (
                json!([{"metricName": "TIMEOUTS", "destinationCategory": "INTER_AZ"}]),
                "TopContributorsQueries[0]: missing field `monitorName`",
            ),
            (
                json!([{"monitorName": " ", "metricName": "TIMEOUTS", "destinationCategory": "INTER_AZ"}]),
                "TopContributorsQueries[0].monitorName: must not be empty",
            ),
            (
                json!([{"monitorName": "m", "metricName": "Timeouts", "destinationCategory": "INTER_AZ"}]),
                "TopContributorsQueries[0].metricName: must be one of TIMEOUTS, RETRANSMISSIONS, ROUND_TRIP_TIME, DATA_TRANSFERRED, got \"Timeouts\"",
            ),
            (
                json!([{"monitorName": "m", "metricName": "TIMEOUTS", "destinationCategory": "MARS"}]),
                "TopContributorsQueries[0].destinationCategory: must be one of",
            ),
            (
                json!([entry.clone(), entry]),
                "TopContributorsQueries[1]: the same monitor, metric and category as TopContributorsQueries[0]",
            ),
            (
                json!([{"monitorName": "m", "metricName": "TIMEOUTS", "destinationCategory": "INTER_AZ", "topContributors": [{"value": "many"}]}]),
                "TopContributorsQueries[0].topContributors[0].value: invalid type",
            ),
        ];
        for (queries, expected) in cases {
            let message = refusal(&json!({ "TopContributorsQueries": queries }));
            assert!(message.contains(expected), "{message} lacks {expected}");
        }
    }

    #[test]
    fn every_message_is_one_line() {
        let mut document = document();
        document["MetricAlarms"][1]["AlarmName"] = json!("NFM-Alarm-EKS-DB");
        document["MetricAlarms"][0]["AlarmName"] = json!("NFM-Alarm-EKS-DB");
        let text = document
            .to_string()
            .replace("NFM-Alarm-EKS-DB", "two\\nlines");
        let message = refusal_of(&text);
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains(r#""two\nlines""#), "{message}");
    }

    #[test]
    fn load_names_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("alarms.json");
        let mut document = document();
        document["MetricAlarms"][0]["Tags"][0]
            .as_object_mut()
            .unwrap()
            .remove("Value");
        std::fs::write(&path, document.to_string()).unwrap();
        let error = FileAlarmSource::load(&path).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}: MetricAlarms[0].Tags[0]: missing field `Value`",
                path.display()
            )
        );
        assert!(matches!(
            error,
            AlarmFileError::Invalid { ref file, ref at, .. }
                if file.as_deref() == Some(path.as_path()) && at == "MetricAlarms[0].Tags[0]"
        ));

        std::fs::write(&path, self::document().to_string()).unwrap();
        assert_eq!(FileAlarmSource::load(&path).unwrap().len(), 3);

        let missing = directory.path().join("missing.json");
        let error = FileAlarmSource::load(&missing).unwrap_err();
        assert!(matches!(error, AlarmFileError::Read { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("{}: cannot read: ", missing.display())),
            "{message}"
        );
        assert!(!message.contains('\n'));
    }
}
