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

    /// Starts one query per category; a category whose start failed is left out with a note.
    pub async fn start(
        &self,
        flows: &dyn TopContributors,
        limit: usize,
        deadline: Instant,
        notes: &mut Vec<String>,
    ) -> Started {
        let mut queries = Vec::new();
        for category in &self.categories {
            let query = TopContributorsQuery {
                monitor_name: self.monitor_name.clone(),
                metric: self.metric.to_owned(),
                destination_category: category.clone(),
                start: self.window.start,
                end: self.window.end,
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
            };
            match bounded(deadline, flows.start_query(&query)).await {
                Ok(query_id) => queries.push(StartedQuery {
                    destination_category: category.clone(),
                    query_id,
                }),
                Err(error) => notes.push(format!(
                    "top contributors ({category}) not started: {error}"
                )),
            }
        }
        Started {
            monitor_name: self.monitor_name.clone(),
            metric: self.metric.to_owned(),
            start: timestamp(self.window.start),
            end: timestamp(self.window.end),
            queries,
        }
    }
}

/// A call cut at `deadline`.
async fn bounded<T>(
    deadline: Instant,
    call: impl Future<Output = Result<T, FlowQueryError>>,
) -> Result<T, FlowQueryError> {
    tokio::time::timeout_at(deadline, call)
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
        if pending.is_empty() || Instant::now() + delay >= deadline {
            break;
        }
        tokio::time::sleep(delay).await;
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
    let started = match Started::recorded(&events, &plan.monitor_name, plan.metric) {
        Some(started) => started,
        None => {
            let started = plan.start(flows, settings.flows, deadline, notes).await;
            if !started.queries.is_empty() {
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
            started
        }
    };
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
