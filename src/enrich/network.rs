//! Network evidence for Network Flow Monitor alarms, part of the Enrich state: which flows
//! degrade and what they traverse, from the monitor's top-contributors queries.
//!
//! For an ALARM of an `AWS/NetworkFlowMonitor` metric (`Timeouts`, `Retransmissions`,
//! `RoundTripTime`, `DataTransferred`; for metric math, the first such input), one query is
//! started per destination category over the alarm's evaluation window (the window the
//! datapoints use, ending now), polled with a bounded wait, and the worst flows of all of them
//! are kept, most degraded first. `HealthIndicator` alarms get an `interpretation` instead (the
//! query API has no per-flow health).
//!
//! Best effort: a throttled, failed, slow or empty query leaves a note saying which, never an
//! error. The started queries are recorded in the incident's log (`TopContributorsStarted`)
//! before they are polled, so a retry of the Enrich state reads the same queries instead of
//! starting new ones.

use super::{NETWORK_FLOW_MONITOR_NAMESPACE, Window, datapoint_window};
use crate::event::{AlarmEvent, IncidentId, StateValue};
use crate::incident::{EventType, IncidentEvent, timestamp};
use crate::ports::{
    AlarmSource, Clock, FlowContributor, FlowQueryError, IncidentStore, QueryStatus, StoreError,
    TopContributors, TopContributorsQuery,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::time::Duration;
use tokio::time::Instant;

/// The metric whose alarms get an interpretation rather than a query.
pub const HEALTH_INDICATOR: &str = "HealthIndicator";
/// The most flows an enrichment carries, whatever `TOP_CONTRIBUTORS` says.
pub const MAX_FLOWS: usize = 50;
/// The destination categories queried when the metric names none: the network paths (the AWS
/// service categories, `AMAZON_S3` and `AMAZON_DYNAMODB`, are opt-in).
pub const DEFAULT_CATEGORIES: [&str; 4] = ["INTRA_AZ", "INTER_AZ", "INTER_VPC", "INTER_REGION"];
/// Every destination category the query API takes.
pub const CATEGORIES: [&str; 7] = [
    "INTRA_AZ",
    "INTER_AZ",
    "INTER_VPC",
    "INTER_REGION",
    "AMAZON_S3",
    "AMAZON_DYNAMODB",
    "UNCLASSIFIED",
];
/// The most traversed components kept per flow.
const MAX_TRAVERSED: usize = 16;
/// The `network` section's bound in bytes: flows beyond it are counted in `omitted`.
pub const MAX_SECTION_BYTES: usize = 64 * 1024;
/// The first wait between status polls, doubled up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(200);
const MAX_POLL: Duration = Duration::from_secs(2);
/// Result pages read per query at most.
const MAX_PAGES: usize = 5;

/// How the enricher asks for top contributors (`TOP_CONTRIBUTORS…`, `serve --top-contributors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    /// Flows kept (0: no query).
    pub flows: usize,
    /// How long queries are polled before enrichment goes on without them.
    pub wait: Duration,
    /// The destination categories queried when the metric's dimensions name none.
    pub categories: Vec<String>,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            flows: 10,
            wait: Duration::from_secs(10),
            categories: DEFAULT_CATEGORIES.map(str::to_owned).to_vec(),
        }
    }
}

impl NetworkSettings {
    /// These settings with the wait cut to what `remaining` (the invocation's time left, less
    /// a margin for recording) allows.
    pub fn within(mut self, remaining: Duration) -> Self {
        self.wait = self.wait.min(remaining);
        self
    }
}

/// Network Flow Monitor's CloudWatch metrics with top contributors, and the query API's name
/// of each.
pub const QUERY_METRICS: [(&str, &str); 4] = [
    ("Timeouts", "TIMEOUTS"),
    ("Retransmissions", "RETRANSMISSIONS"),
    ("RoundTripTime", "ROUND_TRIP_TIME"),
    ("DataTransferred", "DATA_TRANSFERRED"),
];

/// The query API's name of a Network Flow Monitor CloudWatch metric.
pub fn query_metric(metric_name: &str) -> Option<&'static str> {
    QUERY_METRICS
        .iter()
        .find(|(cloudwatch, _)| *cloudwatch == metric_name)
        .map(|(_, api)| *api)
}

/// The monitor name in a `MonitorId` (an ARN `…:monitor/<name>` or the name itself).
pub fn monitor_name_of(monitor_id: &str) -> Option<&str> {
    let monitor_id = monitor_id.trim();
    let name = match monitor_id.strip_prefix("arn:") {
        Some(_) => monitor_id.rsplit_once(":monitor/")?.1,
        None => monitor_id,
    };
    (!name.is_empty()).then_some(name)
}

/// The Network Flow Monitor metric an alarm watches, as its event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorMetric {
    /// From the `MonitorId` dimension, else `MonitorName`; `None` when neither is usable.
    pub monitor_name: Option<String>,
    /// The CloudWatch metric name (`Timeouts`…).
    pub metric: String,
    /// A `DestinationCategory` dimension the query API knows.
    pub category: Option<String>,
    pub period: Option<u32>,
}

impl MonitorMetric {
    /// The first `AWS/NetworkFlowMonitor` metric of the event's configuration, preferring one
    /// the query API knows (a metric-math alarm may read several).
    pub fn of(event: &AlarmEvent) -> Option<Self> {
        let metrics: Vec<&Value> = event
            .metrics()
            .as_array()?
            .iter()
            .filter(|query| {
                query.pointer("/metricStat/metric/namespace")
                    == Some(&json!(NETWORK_FLOW_MONITOR_NAMESPACE))
            })
            .collect();
        let name = |query: &Value| {
            query
                .pointer("/metricStat/metric/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let query = metrics
            .iter()
            .find(|query| {
                name(query)
                    .as_deref()
                    .is_some_and(|n| query_metric(n).is_some())
            })
            .or_else(|| metrics.first())?;
        let dimension = |key: &str| {
            query
                .pointer(&format!("/metricStat/metric/dimensions/{key}"))
                .and_then(Value::as_str)
        };
        Some(Self {
            monitor_name: dimension("MonitorId")
                .and_then(monitor_name_of)
                .or_else(|| {
                    dimension("MonitorName")
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                })
                .map(str::to_owned),
            metric: name(query)?,
            category: dimension("DestinationCategory")
                .filter(|category| CATEGORIES.contains(category))
                .map(str::to_owned),
            period: query
                .pointer("/metricStat/period")
                .and_then(Value::as_u64)
                .and_then(|period| u32::try_from(period).ok()),
        })
    }
}

/// One started query, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartedQuery {
    pub destination_category: String,
    pub query_id: String,
}

/// The queries started for an incident: the `TopContributorsStarted` event's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub monitor_name: String,
    /// The query API's metric name.
    pub metric: String,
    pub start: String,
    pub end: String,
    pub queries: Vec<StartedQuery>,
}

impl Started {
    /// The window the queries were started over.
    fn window(&self) -> Option<Window> {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|at| at.with_timezone(&Utc))
        };
        Some(Window {
            start: at(&self.start)?,
            end: at(&self.end)?,
        })
    }

    /// The queries recorded for `monitor_name` and `metric` in an incident's log, newest first.
    pub fn recorded(events: &[IncidentEvent], monitor_name: &str, metric: &str) -> Option<Self> {
        events
            .iter()
            .rev()
            .filter(|event| event.kind == EventType::TopContributorsStarted)
            .filter_map(|event| serde_json::from_value::<Self>(event.data.clone()).ok())
            .find(|started| started.monitor_name == monitor_name && started.metric == metric)
    }
}

/// What to ask for one alarm, or why nothing is asked (`Err`, a note; `Ok(None)`: nothing to
/// say, for an alarm in another state or with queries turned off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub monitor_name: String,
    pub metric: &'static str,
    pub categories: Vec<String>,
    pub window: Window,
}

impl Plan {
    /// The plan for `metric` of an alarm in `state`, at `now`, the alarm evaluating
    /// `evaluation_periods` periods.
    pub fn of(
        metric: &MonitorMetric,
        state: StateValue,
        evaluation_periods: Option<u32>,
        settings: &NetworkSettings,
        now: DateTime<Utc>,
    ) -> Result<Option<Self>, String> {
        if settings.flows == 0 || state != StateValue::Alarm || metric.metric == HEALTH_INDICATOR {
            return Ok(None);
        }
        let query_metric = query_metric(&metric.metric).ok_or_else(|| {
            format!(
                "top contributors not queried: Network Flow Monitor has no top contributors for {}",
                metric.metric
            )
        })?;
        let monitor_name = metric.monitor_name.clone().ok_or_else(|| {
            "top contributors not queried: the metric has no usable MonitorId or MonitorName dimension"
                .to_owned()
        })?;
        let window = metric
            .period
            .and_then(|period| datapoint_window(now, period, evaluation_periods))
            .ok_or_else(|| {
                "top contributors not queried: the metric's period is unknown".to_owned()
            })?;
        let categories = match &metric.category {
            Some(category) => vec![category.clone()],
            None => settings.categories.clone(),
        };
        Ok(Some(Self {
            monitor_name,
            metric: query_metric,
            categories,
            window: Window {
                start: window.start,
                end: window.end.min(now),
            },
        }))
    }

    /// Starts a query for each category `recorded` (an earlier attempt's queries) has none
    /// for, over `recorded`'s window when there is one; a category whose start failed is left
    /// out with a note (a retry tries it again). Answers every query and whether any is new.
    pub async fn start(
        &self,
        flows: &dyn TopContributors,
        limit: usize,
        deadline: Instant,
        recorded: Option<Started>,
        notes: &mut Vec<String>,
    ) -> (Started, bool) {
        let mut started = recorded.unwrap_or_else(|| Started {
            monitor_name: self.monitor_name.clone(),
            metric: self.metric.to_owned(),
            start: timestamp(self.window.start),
            end: timestamp(self.window.end),
            queries: Vec::new(),
        });
        let window = started.window().unwrap_or(self.window);
        let mut added = false;
        for category in &self.categories {
            if started
                .queries
                .iter()
                .any(|query| &query.destination_category == category)
            {
                continue;
            }
            let query = TopContributorsQuery {
                monitor_name: self.monitor_name.clone(),
                metric: self.metric.to_owned(),
                destination_category: category.clone(),
                start: window.start,
                end: window.end,
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
            };
            match bounded(deadline, flows.start_query(&query)).await {
                Ok(query_id) => {
                    started.queries.push(StartedQuery {
                        destination_category: category.clone(),
                        query_id,
                    });
                    added = true;
                }
                Err(error) => notes.push(format!(
                    "top contributors ({category}) not started: {error}"
                )),
            }
        }
        (started, added)
    }
}

/// How long a call begun at the end of the wait may still take (within the invocation's margin,
/// [`crate::config::ENRICH_MARGIN`]).
const CALL_GRACE: Duration = Duration::from_secs(2);

/// A call cut [`CALL_GRACE`] after `deadline`.
async fn bounded<T>(
    deadline: Instant,
    call: impl Future<Output = Result<T, FlowQueryError>>,
) -> Result<T, FlowQueryError> {
    tokio::time::timeout_at(deadline + CALL_GRACE, call)
        .await
        .unwrap_or_else(|_| {
            Err(FlowQueryError::Throttled(
                "no answer within the wait".into(),
            ))
        })
}

/// Where one query ended.
#[derive(Debug, Default)]
struct Outcome {
    status: Option<QueryStatus>,
    /// The last status call's failure, while the status is unknown.
    error: Option<FlowQueryError>,
    unit: Option<String>,
    flows: Vec<FlowContributor>,
}

/// Polls `started`'s queries until each ended or `deadline`, reads the succeeded ones' flows,
/// and answers the `network` section's query part: `queryMetric`, `window`, `unit`,
/// `queries` (`{destinationCategory, queryId, status, flows}`), `topContributors` (at most
/// `limit`, most degraded first, within [`MAX_SECTION_BYTES`]) and `omitted`.
pub async fn collect(
    started: &Started,
    source: &dyn TopContributors,
    limit: usize,
    deadline: Instant,
    wait: Duration,
    notes: &mut Vec<String>,
) -> Map<String, Value> {
    let monitor = started.monitor_name.as_str();
    let mut outcomes: Vec<Outcome> = started.queries.iter().map(|_| Outcome::default()).collect();
    let mut pending: Vec<usize> = (0..started.queries.len()).collect();
    let mut delay = FIRST_POLL;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for index in pending {
            let query = &started.queries[index];
            let outcome = &mut outcomes[index];
            match bounded(deadline, source.query_status(monitor, &query.query_id)).await {
                Ok(status) => {
                    if status.pending() {
                        still.push(index);
                    }
                    outcome.status = Some(status);
                    outcome.error = None;
                }
                Err(error) => {
                    // Throttled: asked again next round; anything else is final.
                    if matches!(error, FlowQueryError::Throttled(_)) {
                        still.push(index);
                    }
                    outcome.error = Some(error);
                }
            }
        }
        pending = still;
        let left = deadline.saturating_duration_since(Instant::now());
        if pending.is_empty() || left.is_zero() {
            break;
        }
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(MAX_POLL);
    }
    for (query, outcome) in started.queries.iter().zip(outcomes.iter_mut()) {
        let label = format!(
            "top contributors query {} ({})",
            query.query_id, query.destination_category
        );
        match &outcome.status {
            Some(QueryStatus::Succeeded) => {
                match read_flows(source, monitor, &query.query_id, limit, deadline).await {
                    Ok((unit, flows)) => {
                        outcome.unit = unit;
                        outcome.flows = flows;
                    }
                    Err(error) => notes.push(format!("{label}: results unavailable: {error}")),
                }
            }
            Some(status) if status.pending() => notes.push(format!(
                "{label} still {} after {} s: not waited for (a retry of Enrich reads it)",
                status.as_str(),
                wait.as_secs()
            )),
            Some(status) => notes.push(format!("{label} ended {}", status.as_str())),
            None => notes.push(format!(
                "{label}: status unknown: {}",
                outcome
                    .error
                    .as_ref()
                    .map_or_else(|| "not asked".to_owned(), ToString::to_string)
            )),
        }
    }
    let succeeded = outcomes
        .iter()
        .filter(|outcome| outcome.status == Some(QueryStatus::Succeeded))
        .count();
    let unit = outcomes.iter().find_map(|outcome| outcome.unit.clone());
    let queries: Vec<Value> = started
        .queries
        .iter()
        .zip(&outcomes)
        .map(|(query, outcome)| {
            json!({
                "destinationCategory": query.destination_category,
                "queryId": query.query_id,
                "status": outcome.status.as_ref().map(QueryStatus::as_str),
                "flows": outcome.flows.len(),
            })
        })
        .collect();
    let mut flows: Vec<FlowContributor> = outcomes.into_iter().flat_map(|o| o.flows).collect();
    if succeeded > 0 && flows.is_empty() {
        notes.push(format!(
            "top contributors: no flows for {} of monitor {monitor} between {} and {}",
            started.metric, started.start, started.end
        ));
    }
    // Most degraded first; flows without a value last; the categories' order among equals.
    flows.sort_by_key(|flow| std::cmp::Reverse(flow.value.unwrap_or(i64::MIN)));
    for flow in &mut flows {
        flow.traversed_constructs.truncate(MAX_TRAVERSED);
    }
    let total = flows.len();
    flows.truncate(limit);
    let mut section = Map::new();
    section.insert("queryMetric".into(), json!(started.metric));
    section.insert(
        "window".into(),
        json!({ "start": started.start, "end": started.end }),
    );
    section.insert("unit".into(), json!(unit));
    section.insert("queries".into(), Value::Array(queries));
    loop {
        let omitted = total - flows.len();
        section.insert("topContributors".into(), json!(flows));
        section.insert("omitted".into(), json!(omitted));
        let size = serde_json::to_vec(&section).map_or(0, |bytes| bytes.len());
        if size <= MAX_SECTION_BYTES || flows.is_empty() {
            break;
        }
        flows.pop();
    }
    section
}

/// A succeeded query's flows, page by page, until `limit` or the last page.
async fn read_flows(
    source: &dyn TopContributors,
    monitor: &str,
    query_id: &str,
    limit: usize,
    deadline: Instant,
) -> Result<(Option<String>, Vec<FlowContributor>), FlowQueryError> {
    let mut flows = Vec::new();
    let mut unit = None;
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page_size = u32::try_from(limit.saturating_sub(flows.len()).max(1)).unwrap_or(u32::MAX);
        let page = bounded(
            deadline,
            source.query_results(monitor, query_id, page_size, token.as_deref()),
        )
        .await?;
        unit = unit.or(page.unit);
        flows.extend(page.flows);
        match page.next_token {
            Some(next) if flows.len() < limit => token = Some(next),
            _ => break,
        }
    }
    Ok((unit, flows))
}

/// What a `HealthIndicator` value means, with the latest value when there is one.
pub fn interpretation(latest: Option<f64>) -> String {
    let meaning = "HealthIndicator is 1 when the AWS network is degraded for this monitor's flows and 0 when it is not: at 0, look at the workload (hosts, security groups, NACLs, firewalls, the application) rather than AWS";
    match latest {
        Some(value) if value >= 1.0 => {
            format!("{meaning}. Latest value {value}: the AWS network is degraded.")
        }
        Some(value) => {
            format!("{meaning}. Latest value {value}: the AWS network is not the cause.")
        }
        None => format!("{meaning}."),
    }
}

/// The `network` section of `event`'s enrichment (`None` for an alarm of no Network Flow
/// Monitor metric): `monitorName`, `metric`, for `HealthIndicator` an `interpretation`, and for
/// an ALARM the top contributors ([`collect`]). The queries are started once per incident: the
/// first attempt records them (`TopContributorsStarted`) before polling, a retry reads them
/// back. Only the store failing is an error (the Enrich state retries it).
pub(super) async fn evidence(
    event: &AlarmEvent,
    enrichment: &Value,
    source: &dyn AlarmSource,
    settings: &NetworkSettings,
    incident: Incident<'_>,
    notes: &mut Vec<String>,
) -> Result<Option<Value>, StoreError> {
    let Some(metric) = MonitorMetric::of(event) else {
        return Ok(None);
    };
    let deadline = Instant::now() + settings.wait;
    let mut section = Map::new();
    section.insert("monitorName".into(), json!(metric.monitor_name));
    section.insert("metric".into(), json!(metric.metric));
    if metric.metric == HEALTH_INDICATOR {
        let latest = (enrichment.pointer("/metric/name") == Some(&json!(HEALTH_INDICATOR)))
            .then(|| {
                enrichment
                    .pointer("/datapoints/0/value")
                    .and_then(Value::as_f64)
            })
            .flatten();
        section.insert("interpretation".into(), json!(interpretation(latest)));
    }
    let evaluation_periods = enrichment
        .pointer("/alarm/evaluationPeriods")
        .and_then(Value::as_u64)
        .and_then(|periods| u32::try_from(periods).ok());
    let plan = match Plan::of(
        &metric,
        event.state().value,
        evaluation_periods,
        settings,
        incident.clock.now(),
    ) {
        Ok(Some(plan)) => plan,
        Ok(None) => return Ok(Some(Value::Object(section))),
        Err(note) => {
            notes.push(note);
            return Ok(Some(Value::Object(section)));
        }
    };
    let Some(flows) = source.top_contributors() else {
        notes.push(
            "top contributors not queried: no Network Flow Monitor to ask for this account and region"
                .into(),
        );
        return Ok(Some(Value::Object(section)));
    };
    let events = incident.store.events(incident.id).await?;
    let recorded = Started::recorded(&events, &plan.monitor_name, plan.metric);
    let (started, added) = plan
        .start(flows, settings.flows, deadline, recorded, notes)
        .await;
    if added {
        let data = serde_json::to_value(&started)
            .map_err(|error| StoreError::Failed(format!("started queries: {error}")))?;
        super::record(
            incident.store,
            incident.clock,
            incident.id,
            EventType::TopContributorsStarted,
            &data,
            false,
        )
        .await?;
    }
    section.extend(
        collect(
            &started,
            flows,
            settings.flows,
            deadline,
            settings.wait,
            notes,
        )
        .await,
    );
    Ok(Some(Value::Object(section)))
}

/// The incident an enrichment is for, and where its log is.
#[derive(Clone, Copy)]
pub(super) struct Incident<'a> {
    pub store: &'a dyn IncidentStore,
    pub clock: &'a dyn Clock,
    pub id: &'a IncidentId,
}

/// Destination categories, comma-separated (spaces ignored), each one the query API takes,
/// each once, at least one.
pub fn parse_categories(text: &str) -> Result<Vec<String>, String> {
    let mut categories: Vec<String> = Vec::new();
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let category = item.to_ascii_uppercase();
        if !CATEGORIES.contains(&category.as_str()) {
            return Err(format!(
                "unknown destination category {item:?} (one of {})",
                CATEGORIES.join(", ")
            ));
        }
        if !categories.contains(&category) {
            categories.push(category);
        }
    }
    if categories.is_empty() {
        return Err("names no destination category".into());
    }
    Ok(categories)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::StateValue;
    use crate::ports::{
        AlarmDefinition, ContributorsPage, Datapoint, EnrichError, MetricQuery, TraversedComponent,
    };
    use async_trait::async_trait;
    use std::collections::{BTreeMap, HashMap, VecDeque};
    use std::sync::Mutex;

    const METRIC: &[u8] = include_bytes!("../../tests/fixtures/metric-alarm.json");
    const MATH: &[u8] = include_bytes!("../../tests/fixtures/metric-math-alarm.json");
    const NOW: &str = "2026-11-24T10:00:30.500Z";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(NOW)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn event(raw: &[u8]) -> AlarmEvent {
        AlarmEvent::parse(raw).unwrap()
    }

    /// The metric fixture with its metric's `name` and `dimensions` replaced.
    fn event_of(metric: &str, dimensions: Value) -> AlarmEvent {
        let mut raw: Value = serde_json::from_slice(METRIC).unwrap();
        raw["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["name"] =
            json!(metric);
        raw["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
            dimensions;
        AlarmEvent::from_value(raw).unwrap()
    }

    fn flow(local: &str, category: &str, value: i64) -> FlowContributor {
        serde_json::from_value(json!({
            "localIp": local,
            "remoteIp": "10.2.40.17",
            "targetPort": 5432,
            "destinationCategory": category,
            "value": value,
            "traversedConstructs": [{"componentId": "tgw-1", "componentType": "transit-gateway"}],
        }))
        .unwrap()
    }

    /// Network Flow Monitor, scripted: each query's id is `q-<category>`; statuses come from
    /// `statuses` (the last one repeats; SUCCEEDED when empty); results are `rows` per category.
    #[derive(Default)]
    struct Flows {
        started: Mutex<Vec<TopContributorsQuery>>,
        refused: HashMap<String, FlowQueryError>,
        statuses: Mutex<VecDeque<Result<QueryStatus, FlowQueryError>>>,
        rows: HashMap<String, Vec<FlowContributor>>,
        status_calls: Mutex<usize>,
    }

    impl Flows {
        fn with_rows(rows: &[(&str, Vec<FlowContributor>)]) -> Self {
            Self {
                rows: rows
                    .iter()
                    .map(|(category, rows)| ((*category).to_owned(), rows.clone()))
                    .collect(),
                ..Self::default()
            }
        }

        fn script(self, statuses: Vec<Result<QueryStatus, FlowQueryError>>) -> Self {
            *self.statuses.lock().unwrap() = statuses.into();
            self
        }

        fn starts(&self) -> usize {
            self.started.lock().unwrap().len()
        }
    }

    #[async_trait]
    impl TopContributors for Flows {
        async fn start_query(
            &self,
            query: &TopContributorsQuery,
        ) -> Result<String, FlowQueryError> {
            if let Some(error) = self.refused.get(&query.destination_category) {
                return Err(error.clone());
            }
            self.started.lock().unwrap().push(query.clone());
            Ok(format!("q-{}", query.destination_category))
        }

        async fn query_status(&self, _: &str, _: &str) -> Result<QueryStatus, FlowQueryError> {
            *self.status_calls.lock().unwrap() += 1;
            let mut statuses = self.statuses.lock().unwrap();
            match statuses.len() {
                0 => Ok(QueryStatus::Succeeded),
                1 => statuses[0].clone(),
                _ => statuses.pop_front().unwrap(),
            }
        }

        async fn query_results(
            &self,
            _: &str,
            query_id: &str,
            max_results: u32,
            next_token: Option<&str>,
        ) -> Result<ContributorsPage, FlowQueryError> {
            let rows = self
                .rows
                .get(query_id.trim_start_matches("q-"))
                .cloned()
                .unwrap_or_default();
            let from: usize = next_token.map_or(0, |token| token.parse().unwrap());
            let to = (from + max_results as usize).min(rows.len());
            Ok(ContributorsPage {
                unit: Some("Count".into()),
                flows: rows[from..to].to_vec(),
                next_token: (to < rows.len()).then(|| to.to_string()),
            })
        }
    }

    /// An alarm source that knows no alarm but has [`Flows`].
    #[async_trait]
    impl AlarmSource for Flows {
        async fn describe_alarm(&self, _: &str) -> Result<Option<AlarmDefinition>, EnrichError> {
            Ok(None)
        }
        async fn metric_datapoints(
            &self,
            _: &MetricQuery,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<Vec<Datapoint>, EnrichError> {
            Ok(Vec::new())
        }
        async fn alarm_tags(
            &self,
            _: &str,
        ) -> Result<Option<BTreeMap<String, String>>, EnrichError> {
            Ok(None)
        }
        async fn alarm_states(
            &self,
            _: &[String],
        ) -> Result<BTreeMap<String, StateValue>, EnrichError> {
            Ok(BTreeMap::new())
        }
        fn top_contributors(&self) -> Option<&dyn TopContributors> {
            Some(self)
        }
    }

    fn plan(event: &AlarmEvent, settings: &NetworkSettings) -> Result<Option<Plan>, String> {
        let metric = MonitorMetric::of(event).expect("a Network Flow Monitor metric");
        Plan::of(&metric, event.state().value, Some(1), settings, now())
    }

    fn started(categories: &[&str]) -> Started {
        Started {
            monitor_name: "my-monitor".into(),
            metric: "TIMEOUTS".into(),
            start: "2026-11-24T09:45:00.000Z".into(),
            end: NOW.into(),
            queries: categories
                .iter()
                .map(|category| StartedQuery {
                    destination_category: (*category).to_owned(),
                    query_id: format!("q-{category}"),
                })
                .collect(),
        }
    }

    fn later(seconds: u64) -> Instant {
        Instant::now() + Duration::from_secs(seconds)
    }

    #[test]
    fn the_monitor_name_comes_from_the_monitor_id_arn_or_the_name() {
        let arn = "arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/my-monitor";
        assert_eq!(monitor_name_of(arn), Some("my-monitor"));
        assert_eq!(monitor_name_of(" my-monitor "), Some("my-monitor"));
        assert_eq!(
            monitor_name_of("arn:aws:networkflowmonitor:us-east-1:1:scope/x"),
            None
        );
        assert_eq!(
            monitor_name_of("arn:aws:networkflowmonitor:us-east-1:1:monitor/"),
            None
        );
        assert_eq!(monitor_name_of(""), None);
        let by_name = event_of("Timeouts", json!({"MonitorName": "web"}));
        assert_eq!(
            MonitorMetric::of(&by_name).unwrap().monitor_name.as_deref(),
            Some("web")
        );
    }

    #[test]
    fn an_alarm_of_a_timeouts_metric_queries_every_default_category_over_its_window() {
        let plan = plan(&event(METRIC), &NetworkSettings::default())
            .unwrap()
            .expect("a plan");
        assert_eq!(plan.monitor_name, "my-monitor");
        assert_eq!(plan.metric, "TIMEOUTS");
        assert_eq!(
            plan.categories,
            DEFAULT_CATEGORIES.map(str::to_owned).to_vec()
        );
        // The datapoints' window (1 evaluation period + 2 of margin, period 300 s), ending now.
        let window = datapoint_window(now(), 300, Some(1)).unwrap();
        assert_eq!(plan.window.start, window.start);
        assert_eq!(plan.window.end, now(), "never in the future");
    }

    #[test]
    fn a_destination_category_dimension_narrows_the_query_to_it() {
        let event = event_of(
            "Retransmissions",
            json!({"MonitorId": "db", "DestinationCategory": "INTER_AZ"}),
        );
        let plan = plan(&event, &NetworkSettings::default()).unwrap().unwrap();
        assert_eq!(plan.metric, "RETRANSMISSIONS");
        assert_eq!(plan.categories, vec!["INTER_AZ".to_owned()]);
    }

    #[test]
    fn metric_math_queries_its_network_flow_monitor_input() {
        let plan = plan(&event(MATH), &NetworkSettings::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            (plan.monitor_name.as_str(), plan.metric),
            ("db", "RETRANSMISSIONS")
        );
    }

    #[test]
    fn nothing_is_asked_off_alarm_with_queries_off_or_for_the_health_indicator() {
        let mut ok: Value = serde_json::from_slice(METRIC).unwrap();
        ok["detail"]["state"]["value"] = json!("OK");
        let ok = AlarmEvent::from_value(ok).unwrap();
        assert_eq!(plan(&ok, &NetworkSettings::default()), Ok(None));
        let off = NetworkSettings {
            flows: 0,
            ..NetworkSettings::default()
        };
        assert_eq!(plan(&event(METRIC), &off), Ok(None));
        let health = event_of("HealthIndicator", json!({"MonitorId": "my-monitor"}));
        assert_eq!(plan(&health, &NetworkSettings::default()), Ok(None));
    }

    #[test]
    fn what_cannot_be_queried_says_why() {
        let unknown = event_of("SomethingNew", json!({"MonitorId": "my-monitor"}));
        assert!(
            plan(&unknown, &NetworkSettings::default())
                .unwrap_err()
                .contains("no top contributors for SomethingNew")
        );
        let nameless = event_of("Timeouts", json!({"InstanceId": "i-1"}));
        assert!(
            plan(&nameless, &NetworkSettings::default())
                .unwrap_err()
                .contains("no usable MonitorId or MonitorName")
        );
    }

    #[test]
    fn the_health_indicator_is_interpreted_with_its_latest_value() {
        assert!(interpretation(Some(1.0)).ends_with("the AWS network is degraded."));
        assert!(interpretation(Some(0.0)).ends_with("the AWS network is not the cause."));
        assert!(interpretation(None).contains("look at the workload"));
    }

    #[test]
    fn categories_are_parsed_checked_and_kept_once() {
        assert_eq!(
            parse_categories(" inter_az, INTER_VPC,INTER_AZ ,"),
            Ok(vec!["INTER_AZ".to_owned(), "INTER_VPC".to_owned()])
        );
        assert!(
            parse_categories("INTER_GALAXY")
                .unwrap_err()
                .contains("INTER_GALAXY")
        );
        assert!(parse_categories(" , ").is_err());
    }

    #[tokio::test]
    async fn the_worst_flows_of_every_category_come_first_and_the_rest_are_counted() {
        let flows = Flows::with_rows(&[
            (
                "INTER_VPC",
                vec![
                    flow("10.0.0.1", "INTER_VPC", 412),
                    flow("10.0.0.2", "INTER_VPC", 97),
                ],
            ),
            (
                "INTER_AZ",
                vec![
                    flow("10.0.0.3", "INTER_AZ", 305),
                    flow("10.0.0.4", "INTER_AZ", 5),
                ],
            ),
        ]);
        let mut notes = Vec::new();
        let section = collect(
            &started(&["INTER_VPC", "INTER_AZ", "INTRA_AZ"]),
            &flows,
            3,
            later(10),
            Duration::from_secs(10),
            &mut notes,
        )
        .await;
        let values: Vec<i64> = section["topContributors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|flow| flow["value"].as_i64().unwrap())
            .collect();
        assert_eq!(values, [412, 305, 97]);
        assert_eq!(section["omitted"], json!(1));
        assert_eq!(section["unit"], json!("Count"));
        assert_eq!(section["queryMetric"], json!("TIMEOUTS"));
        assert_eq!(
            section["window"],
            json!({"start": "2026-11-24T09:45:00.000Z", "end": NOW})
        );
        assert_eq!(
            section["queries"][0],
            json!({"destinationCategory": "INTER_VPC", "queryId": "q-INTER_VPC", "status": "SUCCEEDED", "flows": 2})
        );
        assert_eq!(section["queries"][2]["flows"], json!(0));
        assert_eq!(
            section["topContributors"][0]["traversedConstructs"][0]["componentId"],
            json!("tgw-1")
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_query_still_running_at_the_end_of_the_wait_is_a_note() {
        let flows = Flows::with_rows(&[("INTER_VPC", vec![flow("10.0.0.1", "INTER_VPC", 1)])])
            .script(vec![Ok(QueryStatus::Running)]);
        let mut notes = Vec::new();
        let begun = Instant::now();
        let section = collect(
            &started(&["INTER_VPC"]),
            &flows,
            10,
            later(3),
            Duration::from_secs(3),
            &mut notes,
        )
        .await;
        assert!(
            begun.elapsed() <= Duration::from_secs(3),
            "the wait is kept"
        );
        assert!(
            *flows.status_calls.lock().unwrap() > 1,
            "polled more than once"
        );
        assert_eq!(section["topContributors"], json!([]));
        assert_eq!(section["queries"][0]["status"], json!("RUNNING"));
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains("q-INTER_VPC (INTER_VPC) still RUNNING after 3 s"),
            "{notes:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_status_is_asked_again_and_a_failed_query_is_a_note() {
        let flows = Flows::with_rows(&[("INTER_VPC", vec![flow("10.0.0.1", "INTER_VPC", 7)])])
            .script(vec![
                Err(FlowQueryError::Throttled("Rate exceeded".into())),
                Ok(QueryStatus::Queued),
                Ok(QueryStatus::Succeeded),
            ]);
        let mut notes = Vec::new();
        let section = collect(
            &started(&["INTER_VPC"]),
            &flows,
            10,
            later(10),
            Duration::from_secs(10),
            &mut notes,
        )
        .await;
        assert_eq!(section["topContributors"][0]["value"], json!(7));
        assert!(notes.is_empty(), "{notes:?}");

        let failed = Flows::default().script(vec![Ok(QueryStatus::Failed)]);
        let mut notes = Vec::new();
        collect(
            &started(&["INTER_AZ"]),
            &failed,
            10,
            later(10),
            Duration::from_secs(10),
            &mut notes,
        )
        .await;
        assert_eq!(
            notes,
            ["top contributors query q-INTER_AZ (INTER_AZ) ended FAILED"]
        );

        let gone = Flows::default().script(vec![Err(FlowQueryError::NotFound(
            "no such monitor".into(),
        ))]);
        let mut notes = Vec::new();
        collect(
            &started(&["INTER_AZ"]),
            &gone,
            10,
            later(10),
            Duration::from_secs(10),
            &mut notes,
        )
        .await;
        assert_eq!(*gone.status_calls.lock().unwrap(), 1, "not found is final");
        assert!(
            notes[0].contains("status unknown: not found: no such monitor"),
            "{notes:?}"
        );
    }

    #[tokio::test]
    async fn an_empty_result_says_so() {
        let mut notes = Vec::new();
        let section = collect(
            &started(&["INTER_VPC"]),
            &Flows::default(),
            10,
            later(10),
            Duration::from_secs(10),
            &mut notes,
        )
        .await;
        assert_eq!(section["topContributors"], json!([]));
        assert_eq!(section["omitted"], json!(0));
        assert_eq!(
            notes,
            [format!(
                "top contributors: no flows for TIMEOUTS of monitor my-monitor between 2026-11-24T09:45:00.000Z and {NOW}"
            )]
        );
    }

    #[tokio::test]
    async fn the_section_stays_within_its_bound_and_counts_what_it_leaves_out() {
        let component = TraversedComponent {
            component_id: Some("x".repeat(900)),
            component_type: Some("transit-gateway".into()),
            component_arn: None,
            service_name: None,
        };
        let big: Vec<FlowContributor> = (0..MAX_FLOWS as i64)
            .map(|value| {
                let mut flow = flow("10.0.0.1", "INTER_VPC", value);
                flow.traversed_constructs = vec![component.clone(); 40];
                flow
            })
            .collect();
        let flows = Flows::with_rows(&[("INTER_VPC", big)]);
        let mut notes = Vec::new();
        let section = collect(
            &started(&["INTER_VPC"]),
            &flows,
            MAX_FLOWS,
            later(10),
            Duration::from_secs(10),
            &mut notes,
        )
        .await;
        let size = serde_json::to_vec(&section).unwrap().len();
        assert!(size <= MAX_SECTION_BYTES, "{size} bytes");
        let kept = section["topContributors"].as_array().unwrap();
        assert!(!kept.is_empty());
        assert_eq!(
            kept.len() + section["omitted"].as_u64().unwrap() as usize,
            MAX_FLOWS
        );
        assert_eq!(
            kept[0]["traversedConstructs"].as_array().unwrap().len(),
            MAX_TRAVERSED
        );
        assert_eq!(
            kept[0]["value"],
            json!(MAX_FLOWS as i64 - 1),
            "the worst are kept"
        );
    }

    #[tokio::test]
    async fn a_category_that_cannot_start_is_a_note_and_the_others_go_on() {
        let flows = Flows {
            refused: HashMap::from([(
                "INTER_AZ".to_owned(),
                FlowQueryError::Throttled(
                    "StartQueryMonitorTopContributors: ThrottlingException".into(),
                ),
            )]),
            ..Flows::default()
        };
        let plan = plan(&event(METRIC), &NetworkSettings::default())
            .unwrap()
            .unwrap();
        let mut notes = Vec::new();
        let (started, added) = plan.start(&flows, 10, later(10), None, &mut notes).await;
        assert!(added);
        assert_eq!(started.queries.len(), DEFAULT_CATEGORIES.len() - 1);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("top contributors (INTER_AZ) not started: throttled"),
            "{notes:?}"
        );
        let asked = flows.started.lock().unwrap();
        assert!(
            asked
                .iter()
                .all(|query| query.limit == 10 && query.monitor_name == "my-monitor")
        );
    }

    #[tokio::test]
    async fn a_retry_starts_only_what_did_not_start_over_the_recorded_window() {
        let recorded = started(&["INTRA_AZ", "INTER_VPC", "INTER_REGION"]);
        let flows = Flows::default();
        let plan = plan(&event(METRIC), &NetworkSettings::default())
            .unwrap()
            .unwrap();
        let mut notes = Vec::new();
        let (again, added) = plan
            .start(&flows, 10, later(10), Some(recorded.clone()), &mut notes)
            .await;
        assert!(added && notes.is_empty());
        let asked = flows.started.lock().unwrap().clone();
        assert_eq!(asked.len(), 1, "only the category missing from the record");
        assert_eq!(asked[0].destination_category, "INTER_AZ");
        assert_eq!(timestamp(asked[0].start), recorded.start);
        assert_eq!(timestamp(asked[0].end), recorded.end);
        assert_eq!(again.queries[..3], recorded.queries[..]);
        assert_eq!((&again.start, &again.end), (&recorded.start, &recorded.end));

        let (same, added) = plan
            .start(&flows, 10, later(10), Some(again.clone()), &mut notes)
            .await;
        assert!(!added, "nothing left to start");
        assert_eq!(same, again);
        assert_eq!(flows.starts(), 1);
    }

    #[cfg(feature = "sqlite")]
    mod handler {
        use super::*;
        use crate::adapters::SqliteStore;
        use crate::enrich::handle;
        use crate::intake::Intake;
        use crate::outbox::Dispatcher;
        use crate::testing::{FakeStarter, FixedClock};
        use std::sync::Arc;

        #[tokio::test(start_paused = true)]
        async fn a_retry_of_enrich_reads_the_queries_the_first_attempt_started() {
            let store: Arc<dyn IncidentStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
            let clock = FixedClock::at(NOW);
            let dispatcher = Dispatcher::new(
                store.clone(),
                Arc::new(FakeStarter::default()),
                Arc::new(FixedClock::at(NOW)),
            );
            let outcome = Intake::new(dispatcher, None).handle(METRIC).await.unwrap();
            let id = outcome.incident().incident_id.clone();
            let raw: Value = serde_json::from_slice(METRIC).unwrap();
            let input = json!({ "incidentId": id, "event": raw });
            let settings = NetworkSettings {
                wait: Duration::from_secs(2),
                ..NetworkSettings::default()
            };

            let flows =
                Flows::with_rows(&[("INTER_VPC", vec![flow("10.0.0.1", "INTER_VPC", 412)])])
                    .script(vec![Ok(QueryStatus::Running)]);
            let first = handle(input.clone(), &flows, &settings, store.as_ref(), &clock)
                .await
                .unwrap();
            assert_eq!(flows.starts(), DEFAULT_CATEGORIES.len());
            assert_eq!(first["network"]["topContributors"], json!([]));
            assert!(
                first["notes"]
                    .to_string()
                    .contains("still RUNNING after 2 s")
            );
            let recorded: Vec<_> = store
                .events(&id)
                .await
                .unwrap()
                .into_iter()
                .filter(|event| event.kind == EventType::TopContributorsStarted)
                .collect();
            assert_eq!(recorded.len(), 1);
            assert_eq!(recorded[0].data["queries"].as_array().unwrap().len(), 4);

            // The retry: the queries have finished; none is started again.
            flows.statuses.lock().unwrap().clear();
            clock.advance(Duration::from_secs(30));
            let retry = handle(input, &flows, &settings, store.as_ref(), &clock)
                .await
                .unwrap();
            assert_eq!(
                flows.starts(),
                DEFAULT_CATEGORIES.len(),
                "no query started twice"
            );
            assert_eq!(retry["network"]["topContributors"][0]["value"], json!(412));
            assert_eq!(retry["network"]["window"], first["network"]["window"]);
            assert_eq!(retry["network"]["monitorName"], json!("my-monitor"));
            assert_eq!(retry["network"]["metric"], json!("Timeouts"));
        }

        #[tokio::test]
        async fn a_source_without_network_flow_monitor_is_a_note() {
            let store: Arc<dyn IncidentStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
            let dispatcher = Dispatcher::new(
                store.clone(),
                Arc::new(FakeStarter::default()),
                Arc::new(FixedClock::at(NOW)),
            );
            let outcome = Intake::new(dispatcher, None).handle(METRIC).await.unwrap();
            let raw: Value = serde_json::from_slice(METRIC).unwrap();
            let input = json!({ "incidentId": outcome.incident().incident_id, "event": raw });
            let enrichment = handle(
                input,
                &crate::adapters::OfflineAlarmSource,
                &NetworkSettings::default(),
                store.as_ref(),
                &FixedClock::at(NOW),
            )
            .await
            .unwrap();
            assert_eq!(enrichment["network"]["monitorName"], json!("my-monitor"));
            assert!(enrichment["network"].get("topContributors").is_none());
            assert!(
                enrichment["notes"]
                    .to_string()
                    .contains("no Network Flow Monitor to ask")
            );
        }
    }
}
