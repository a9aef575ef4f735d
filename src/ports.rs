//! The traits the domain talks to the world through. Each adapter lives in `adapters/`; tests
//! use fakes of the same traits.

use crate::episode::Episode;
use crate::event::IncidentId;
use crate::incident::{Incident, IncidentEvent, IncidentStatus, NewEvent};
use crate::secret::{ApiKey, SecretError, WebhookConfig};
use crate::signing::Signature;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use url::Url;

/// Wall-clock time, injected so that timestamps, TTLs and `Retry-After` dates are testable.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The raw secret document, `{"WEBHOOK_URL": "...", "WEBHOOK_SECRET": "..."}`, from wherever it
/// is kept. Implementations classify their failures (see [`SecretError`]) and never put the
/// document into an error.
#[async_trait]
pub trait SecretFetcher: Send + Sync {
    async fn fetch(&self) -> Result<String, SecretError>;
}

/// The webhook's URL and secret as delivery needs them.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The current configuration; may be served from a cache.
    async fn webhook_config(&self) -> Result<Arc<WebhookConfig>, SecretError>;
    /// Reads the configuration again, bypassing any cache (after the webhook answered 401/403,
    /// in case the secret was rotated).
    async fn refresh(&self) -> Result<Arc<WebhookConfig>, SecretError>;
}

/// How one request proves itself to the webhook.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// `x-amzn-event-timestamp` and `x-amzn-event-signature` (an HMAC webhook).
    Hmac {
        timestamp: &'a str,
        signature: &'a Signature,
    },
    /// `Authorization: Bearer <key>` (an API-key webhook).
    Bearer { key: &'a ApiKey },
}

/// The webhooks investigations go to (see [`crate::destination`]).
pub trait Destinations: Send + Sync {
    /// The secret source of destination `name`, the default one for `None`. A name no
    /// destination has is an error naming it ([`SecretError::Denied`], or
    /// [`SecretError::Malformed`] for a name that cannot be one); in AWS it surfaces when the
    /// secret is read.
    fn secrets(&self, name: Option<&str>) -> Result<Arc<dyn SecretSource>, SecretError>;
}

/// One authenticated POST, as the transport puts it on the wire.
#[derive(Debug)]
pub struct WebhookRequest<'a> {
    pub url: &'a Url,
    pub credentials: Credentials<'a>,
    pub body: &'a [u8],
}

/// What the webhook answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    pub status: u16,
    /// The raw `Retry-After` header, when present.
    pub retry_after: Option<String>,
    /// The start of the response body, at most [`RESPONSE_EXCERPT_BYTES`] bytes, lossy UTF-8.
    pub body_excerpt: String,
}

/// How much of a response body is kept for the audit trail.
pub const RESPONSE_EXCERPT_BYTES: usize = 512;

/// Why no HTTP answer came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The URL breaks the delivery policy (not HTTPS, or plain HTTP to a non-loopback host or
    /// without the explicit allowance). Permanent.
    #[error("refused to send: {0}")]
    Refused(String),
    /// No connection could be made (DNS, TCP, TLS). Transient.
    #[error("could not connect: {0}")]
    Connect(String),
    /// Connect or total timeout. Transient.
    #[error("timed out after {0} ms")]
    TimedOut(u64),
    /// The connection broke before a full answer. Transient.
    #[error("connection failed: {0}")]
    Io(String),
}

/// Sends an authenticated webhook request.
#[async_trait]
pub trait WebhookTransport: Send + Sync {
    async fn post(&self, request: WebhookRequest<'_>) -> Result<WebhookResponse, TransportError>;
}

/// Why the incident store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The stored projection is not at the version the write was based on: another writer
    /// got there first. Reread and decide again.
    #[error("incident {0} was changed by another writer")]
    VersionConflict(String),
    /// Throttling, timeouts, a busy database: worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else (validation, permissions, corruption): retrying will not help.
    #[error("store failed: {0}")]
    Failed(String),
}

impl StoreError {
    /// The Lambda error type: `Store.Unavailable` (EventBridge or the schedule retries) or
    /// `Store.Failed`. Never a conflict: callers resolve those by rereading.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Unavailable(_) | Self::VersionConflict(_) => "Store.Unavailable",
            Self::Failed(_) => "Store.Failed",
        }
    }
}

/// What [`IncidentStore::create`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The incident and its first events are now recorded.
    New,
    /// An incident with this id was already recorded; nothing was written. Its projection.
    Existing(Box<Incident>),
}

/// The event-sourced incident table: one projection per incident (`sk = STATE`) and its
/// append-only events (`sk = EVENT#<seq>`), with the queries operators ask. DynamoDB and SQLite
/// implement the same contract, checked by one test suite against both.
///
/// `get`, `events` and the writes are strongly consistent. The list queries (`by_status`,
/// `by_alarm`, `outbox`) read DynamoDB indexes, which are eventually consistent: a write may
/// show up in them a moment later. Nothing correctness-critical depends on them (the outbox
/// sweeper only needs to see an incident eventually, and rechecks each one by version).
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Records a new incident: its projection and `events` (seq 1, 2, …) in one atomic write,
    /// unless an incident with this id exists, in which case nothing is written and the stored
    /// projection is returned. Of any number of concurrent creates of one id, exactly one
    /// returns [`Created::New`]. `incident.event_count` must equal `events.len()`, at most 99
    /// (one DynamoDB transaction); otherwise [`StoreError::Failed`].
    async fn create(&self, incident: &Incident, events: &[NewEvent])
    -> Result<Created, StoreError>;

    /// Appends `event` as seq `next.event_count` and replaces the projection with `next`, in one
    /// atomic write, on the condition that the stored version is `next.version - 1`; otherwise
    /// [`StoreError::VersionConflict`] and nothing is written. Build `next` with
    /// [`Incident::advance`].
    async fn append(&self, next: &Incident, event: &NewEvent) -> Result<(), StoreError>;

    /// The projection, if the incident exists.
    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError>;

    /// The event log in `seq` order (empty when the incident does not exist).
    async fn events(&self, id: &IncidentId) -> Result<Vec<IncidentEvent>, StoreError>;

    /// Incidents in `status` updated at or after `since`, newest first. Times here are in the
    /// store's own format, [`crate::incident::timestamp`] (UTC, milliseconds, `Z`): stores may
    /// compare them as text.
    async fn by_status(
        &self,
        status: IncidentStatus,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError>;

    /// Incidents of one alarm, newest first (rejected inputs have no alarm and never appear).
    async fn by_alarm(&self, alarm_name: &str, limit: usize) -> Result<Vec<Incident>, StoreError>;

    /// The outbox: incidents still RECEIVED (recorded, workflow not started) created before
    /// `created_before` ([`crate::incident::timestamp`] format), oldest first.
    async fn outbox(&self, created_before: &str, limit: usize)
    -> Result<Vec<Incident>, StoreError>;

    /// The current episode of `group_key` (`pk = EPISODE#<groupKey>`, `sk = STATE`), strongly
    /// consistent.
    async fn episode(&self, group_key: &str) -> Result<Option<Episode>, StoreError>;

    /// Records a Correlate decision in one atomic write: `episode` (when given: created when its
    /// version is 1, else replacing the stored item on the condition that its version is
    /// `version - 1`), and `event` appended to the incident with the projection `next`, exactly
    /// as [`IncidentStore::append`]. If either condition fails, nothing is written and the
    /// answer is [`StoreError::VersionConflict`]: reread both and decide again. Of any number of
    /// concurrent decisions based on one episode version, exactly one succeeds.
    async fn decide(
        &self,
        episode: Option<&Episode>,
        next: &Incident,
        event: &NewEvent,
    ) -> Result<(), StoreError>;

    /// Incidents whose correlation names `group_key`, newest first (by `created_at`): every
    /// episode of one group, for `audit --episode`. Eventually consistent, like the other lists.
    async fn by_group(&self, group_key: &str, limit: usize) -> Result<Vec<Incident>, StoreError>;
}

/// Why a workflow execution could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// Throttling, network, service faults: the outbox sweeper will try again.
    #[error("workflow start unavailable: {0}")]
    Unavailable(String),
    /// The state machine is missing, the input too large, access denied…
    #[error("workflow start failed: {0}")]
    Failed(String),
}

/// Starts the incident workflow (Step Functions, or the local engine).
#[async_trait]
pub trait WorkflowStarter: Send + Sync {
    /// Starts the execution `name` with `input` and returns its ARN. Idempotent: starting the
    /// same name again — with the same input, running or finished — is success with the same
    /// ARN, so intake and the sweeper may both try.
    async fn start(&self, name: &str, input: &Value) -> Result<String, StartError>;
}

// --- AlarmSource: what enrichment asks CloudWatch -------------------------------------------

use crate::event::StateValue;

/// Why enrichment could not finish. Adapters classify their failures into these two; the
/// names are what Step Functions matches on (the Enrich state retries `Enrichment.Throttled`).
/// Messages name the call and the error code, never a request or response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrichError {
    /// Throttling, limits, service faults, timeouts, no connection: worth retrying.
    #[error("enrichment throttled: {0}")]
    Throttled(String),
    /// Anything else (bad input, access denied, a store refusing the write): retrying will
    /// not help; the workflow delivers without enrichment.
    #[error("enrichment failed: {0}")]
    Failed(String),
}

impl EnrichError {
    /// Every Lambda error type enrichment raises.
    pub const ERROR_TYPES: [&'static str; 2] = ["Enrichment.Throttled", "Enrichment.Failed"];

    /// The Lambda error type: `Enrichment.Throttled` or `Enrichment.Failed`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Throttled(_) => "Enrichment.Throttled",
            Self::Failed(_) => "Enrichment.Failed",
        }
    }
}

/// One alarm as DescribeAlarms describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type")]
pub enum AlarmDefinition {
    #[serde(rename = "MetricAlarm")]
    Metric(MetricAlarmDefinition),
    #[serde(rename = "CompositeAlarm")]
    Composite(CompositeAlarmDefinition),
}

impl AlarmDefinition {
    pub fn name(&self) -> &str {
        match self {
            Self::Metric(alarm) => &alarm.name,
            Self::Composite(alarm) => &alarm.name,
        }
    }

    pub fn arn(&self) -> Option<&str> {
        match self {
            Self::Metric(alarm) => alarm.arn.as_deref(),
            Self::Composite(alarm) => alarm.arn.as_deref(),
        }
    }
}

/// A metric (or metric-math, or anomaly-detection) alarm's settings. Every field but the name
/// is optional because CloudWatch omits what was never set (a metric-math alarm has no
/// statistic or period of its own).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricAlarmDefinition {
    pub name: String,
    pub arn: Option<String>,
    /// The alarm's state now, which may have moved on since the event.
    pub state: Option<StateValue>,
    /// When it entered that state (RFC 3339, UTC).
    pub state_updated_at: Option<String>,
    pub threshold: Option<f64>,
    /// For anomaly-detection alarms: the id of the band expression.
    pub threshold_metric_id: Option<String>,
    /// `GreaterThanThreshold`, `LessThanLowerOrGreaterThanUpperThreshold`, …
    pub comparison_operator: Option<String>,
    pub evaluation_periods: Option<u32>,
    pub datapoints_to_alarm: Option<u32>,
    /// `breaching`, `notBreaching`, `ignore`, `missing`.
    pub treat_missing_data: Option<String>,
    pub unit: Option<String>,
    /// `Sum`, `Average`, … (or `extended_statistic`, e.g. `p99`).
    pub statistic: Option<String>,
    pub extended_statistic: Option<String>,
    /// Seconds.
    pub period: Option<u32>,
    pub actions_enabled: Option<bool>,
}

/// A composite alarm's settings.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompositeAlarmDefinition {
    pub name: String,
    pub arn: Option<String>,
    pub state: Option<StateValue>,
    pub state_updated_at: Option<String>,
    pub alarm_rule: Option<String>,
    pub actions_enabled: Option<bool>,
    pub actions_suppressor: Option<String>,
}

/// One metric and how to aggregate it: what GetMetricData is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    pub namespace: String,
    pub name: String,
    /// Name and value, in the event's order.
    pub dimensions: Vec<(String, String)>,
    /// `Sum`, `Average`, `p99`, `TM(10%:90%)`…
    pub stat: String,
    /// Seconds, > 0.
    pub period: u32,
    pub unit: Option<String>,
}

/// One aggregated value of a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datapoint {
    pub timestamp: DateTime<Utc>,
    pub value: f64,
}

/// Which [`AlarmSource`] reads the alarms of an account: the relay's own CloudWatch, or a member
/// account's through its read role (an organization-wide relay).
#[async_trait]
pub trait AlarmSources: Send + Sync {
    /// The source for alarms of `account` in `region`, or why that account is not read (the
    /// reason becomes a note of the enrichment, which goes on without it).
    async fn for_account(
        &self,
        account: &str,
        region: &str,
    ) -> Result<Arc<dyn AlarmSource>, String>;
}

/// What enrichment reads from CloudWatch. Implementations classify their failures into
/// [`EnrichError`] (throttling and outages are `Throttled`) and report what does not exist as
/// `None` or empty, not as an error: an alarm deleted after it fired is normal.
#[async_trait]
pub trait AlarmSource: Send + Sync {
    /// The metric or composite alarm of this name, `None` when there is none.
    async fn describe_alarm(&self, name: &str) -> Result<Option<AlarmDefinition>, EnrichError>;

    /// The values of `query` with timestamps in `[start, end)`, in any order (empty when the
    /// metric has no data there).
    async fn metric_datapoints(
        &self,
        query: &MetricQuery,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Datapoint>, EnrichError>;

    /// The tags of the alarm `arn`, `None` when there is no such alarm.
    async fn alarm_tags(
        &self,
        arn: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, EnrichError>;

    /// The current state of each of the named alarms (metric or composite) that exists; names
    /// with no alarm are left out.
    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<std::collections::BTreeMap<String, StateValue>, EnrichError>;

    /// Network Flow Monitor in the same account and region, when this source can ask it
    /// (`None`, the default, for a source with no monitor to ask: enrichment notes it).
    fn top_contributors(&self) -> Option<&dyn TopContributors> {
        None
    }
}

// --- TopContributors: which flows Network Flow Monitor sees degrade -------------------------

/// One top-contributors query (`StartQueryMonitorTopContributors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopContributorsQuery {
    pub monitor_name: String,
    /// The API's metric name: `TIMEOUTS`, `RETRANSMISSIONS`, `ROUND_TRIP_TIME`,
    /// `DATA_TRANSFERRED`.
    pub metric: String,
    /// `INTRA_AZ`, `INTER_AZ`, `INTER_VPC`, `INTER_REGION`, `AMAZON_S3`, `AMAZON_DYNAMODB`,
    /// `UNCLASSIFIED`.
    pub destination_category: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The most flows the query returns.
    pub limit: u32,
}

/// Where a query is (`GetQueryStatusMonitorTopContributors`); an unknown status is kept as
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
    Other(String),
}

impl QueryStatus {
    /// The API's spelling (`SUCCEEDED`…).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
            Self::Other(status) => status,
        }
    }

    /// Still queued or running: worth asking again.
    pub fn pending(&self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// A section of the network a flow traversed (a transit gateway, a NAT gateway…).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraversedComponent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
}

/// The Kubernetes side of a flow, when its agents run in EKS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pod_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_pod_namespace: Option<String>,
}

/// One flow of a top-contributors result, with the API's field names
/// (`GetQueryResultsMonitorTopContributors`); what the service leaves out stays out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowContributor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snat_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_instance_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_vpc_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_az: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_subnet_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnat_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_instance_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_vpc_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_az: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_subnet_arn: Option<String>,
    /// The metric's value for this flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traversed_constructs: Vec<TraversedComponent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_metadata: Option<KubernetesMetadata>,
}

/// One page of a query's result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContributorsPage {
    /// The metric's unit (`Count`, `Microseconds`, `Bytes`…).
    pub unit: Option<String>,
    pub flows: Vec<FlowContributor>,
    /// Where the next page starts; `None` on the last.
    pub next_token: Option<String>,
}

/// Why a Network Flow Monitor call failed. Enrichment never fails on one: each becomes a note
/// saying which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowQueryError {
    /// Throttling, quotas, service faults, timeouts, no connection.
    #[error("throttled or unavailable: {0}")]
    Throttled(String),
    /// The monitor (or the query) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Anything else: access denied, a request the service refuses.
    #[error("failed: {0}")]
    Failed(String),
}

/// The top-contributors queries of Network Flow Monitor, for one account and region.
#[async_trait]
pub trait TopContributors: Send + Sync {
    /// Starts `query`; answers its id.
    async fn start_query(&self, query: &TopContributorsQuery) -> Result<String, FlowQueryError>;

    /// Where the query `query_id` of `monitor_name` is.
    async fn query_status(
        &self,
        monitor_name: &str,
        query_id: &str,
    ) -> Result<QueryStatus, FlowQueryError>;

    /// One page (at most `max_results` flows) of a succeeded query's result.
    async fn query_results(
        &self,
        monitor_name: &str,
        query_id: &str,
        max_results: u32,
        next_token: Option<&str>,
    ) -> Result<ContributorsPage, FlowQueryError>;
}
