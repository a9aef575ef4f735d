//! The Network Flow Monitor adapter through the real `aws-sdk-networkflowmonitor` client against
//! a loopback fake of the REST-JSON wire protocol (moto has no Network Flow Monitor), serving
//! the recorded-shape responses in `tests/fixtures/network-flow-monitor/`. It proves what goes
//! on the wire (paths, the JSON body of `StartQueryMonitorTopContributors`, `maxResults` and
//! `nextToken` as query parameters, SigV4 for `networkflowmonitor`) and what comes back through
//! the port: statuses (an unknown one kept as written), every field of a row, pagination, an
//! empty result, and throttling and unknown monitors classified with the operation and the
//! error code but never the request body.
//!
//! At the bottom, the Enrich state end to end: [`enrich::handle`] with the real CloudWatch
//! adapter on moto (holding the fixture's alarm) and the real Network Flow Monitor adapter on
//! the fake (one query id and one result per destination category), recording into SQLite: the
//! top contributors in `data.enrichment.network`, the queries started once per incident (a
//! retry of Enrich starts none), and throttling, a slow query and an unknown monitor as notes.

use crate::enrich::{client as cloudwatch_client, put_nfm_alarm};
use crate::moto::Moto;
use alarm_relay::adapters::aws::{CloudWatchAlarmSource, NetworkFlowMonitor, sdk};
use alarm_relay::adapters::{SqliteStore, SystemClock};
use alarm_relay::enrich;
use alarm_relay::enrich::network::{CATEGORIES, DEFAULT_CATEGORIES, NetworkSettings};
use alarm_relay::event::{AlarmEvent, IncidentId};
use alarm_relay::incident::{EventType, IncidentEvent, IncidentStatus};
use alarm_relay::intake::Intake;
use alarm_relay::outbox::Dispatcher;
use alarm_relay::payload::WebhookBody;
use alarm_relay::ports::{
    FlowContributor, FlowQueryError, IncidentStore, KubernetesMetadata, QueryStatus,
    TopContributors, TopContributorsQuery, TraversedComponent,
};
use alarm_relay::testing::FakeStarter;
use aws_sdk_networkflowmonitor::Client;
use aws_sdk_networkflowmonitor::config::retry::RetryConfig;
use aws_sdk_networkflowmonitor::config::timeout::TimeoutConfig;
use aws_sdk_networkflowmonitor::config::{BehaviorVersion, Credentials, Region};
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::cmp::Reverse;
use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const START_QUERY: &str = include_str!("../fixtures/network-flow-monitor/start-query.json");
const STATUS_RUNNING: &str = include_str!("../fixtures/network-flow-monitor/status-running.json");
const STATUS_SUCCEEDED: &str =
    include_str!("../fixtures/network-flow-monitor/status-succeeded.json");
const RESULTS: &str = include_str!("../fixtures/network-flow-monitor/results.json");
const RESULTS_PAGE_2: &str = include_str!("../fixtures/network-flow-monitor/results-page-2.json");
const RESULTS_EMPTY: &str = include_str!("../fixtures/network-flow-monitor/results-empty.json");
const RESULTS_INTER_AZ: &str =
    include_str!("../fixtures/network-flow-monitor/results-inter-az.json");
const THROTTLING: &str = include_str!("../fixtures/network-flow-monitor/throttling.json");
const NOT_FOUND: &str = include_str!("../fixtures/network-flow-monitor/not-found.json");

const MONITOR: &str = "my-monitor";
const QUERIES_PATH: &str = "/monitors/my-monitor/topContributorsQueries";
const OPERATIONS: [&str; 3] = [
    "StartQueryMonitorTopContributors",
    "GetQueryStatusMonitorTopContributors",
    "GetQueryResultsMonitorTopContributors",
];
/// The SDK's attempts per call (see [`FakeNfm::adapter`]).
const MAX_ATTEMPTS: u32 = 2;

/// What the fake answers.
#[derive(Debug, Clone)]
enum Scenario {
    /// `running` statuses RUNNING (counted over all queries), then SUCCEEDED; the `INTER_VPC`
    /// result over two pages.
    Success { running: usize },
    /// RUNNING on every status call.
    AlwaysRunning,
    /// 429 `ThrottlingException` on every call.
    Throttling,
    /// 404 `ResourceNotFoundException` on every call.
    UnknownMonitor,
    /// SUCCEEDED, and results without flows.
    Empty,
    /// This status, whatever it is.
    Status(&'static str),
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    /// The query string's parameters, percent-decoded.
    query: Vec<(String, String)>,
    /// The body, when it is JSON.
    body: Option<Value>,
    /// Whether `authorization` is a SigV4 signature for Network Flow Monitor.
    signed: bool,
}

impl Received {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A top-contributors call, from its method and path.
enum Call {
    Start,
    Status(String),
    Results(String),
}

/// The monitor and the call `method path` addresses, if it is one of the three.
fn route(method: &str, path: &str) -> Option<(String, Call)> {
    let rest = path.strip_prefix("/monitors/")?;
    let (monitor, rest) = rest.split_once("/topContributorsQueries")?;
    let call = match (method, rest) {
        ("POST", "") => Call::Start,
        ("GET", rest) => {
            let (query_id, leaf) = rest.strip_prefix('/')?.split_once('/')?;
            match leaf {
                "status" => Call::Status(query_id.to_owned()),
                "results" => Call::Results(query_id.to_owned()),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some((monitor.to_owned(), call))
}

/// An HTTP answer: status, `x-amzn-ErrorType` for errors, JSON body.
struct Answer {
    status: StatusCode,
    error_type: Option<&'static str>,
    body: String,
}

fn ok(body: impl Into<String>) -> Answer {
    Answer {
        status: StatusCode::OK,
        error_type: None,
        body: body.into(),
    }
}

fn error(status: u16, error_type: &'static str, body: impl Into<String>) -> Answer {
    Answer {
        status: StatusCode::from_u16(status).expect("a valid status"),
        error_type: Some(error_type),
        body: body.into(),
    }
}

fn not_found(message: String) -> Answer {
    error(
        404,
        "ResourceNotFoundException",
        json!({ "message": message }).to_string(),
    )
}

/// A top-level string field of a fixture.
fn field(fixture: &str, name: &str) -> String {
    let value: Value = serde_json::from_str(fixture).expect("a fixture is JSON");
    value[name].as_str().expect("a string field").to_owned()
}

/// `start-query.json`'s query id: the `INTER_VPC` query's.
fn query_id() -> String {
    field(START_QUERY, "queryId")
}

/// The id the fake gives a query of `category`: [`query_id`] for `INTER_VPC`, else that id
/// prefixed with the category in lower case.
fn query_id_of(category: &str) -> String {
    match category {
        "INTER_VPC" => query_id(),
        other => format!("{}-{}", other.to_ascii_lowercase(), query_id()),
    }
}

/// The category of a query id [`query_id_of`] gave, if it is one.
fn category_of(id: &str) -> Option<String> {
    if id == query_id() {
        return Some("INTER_VPC".to_owned());
    }
    let category = id
        .strip_suffix(&query_id())?
        .strip_suffix('-')?
        .to_ascii_uppercase();
    CATEGORIES.contains(&category.as_str()).then_some(category)
}

fn page_1_token() -> String {
    field(RESULTS, "nextToken")
}

/// The fake's state, shared by its connections.
struct Fake {
    scenario: Scenario,
    status_calls: AtomicUsize,
    received: Mutex<Vec<Received>>,
}

impl Fake {
    fn answer(&self, request: &Received) -> Answer {
        match self.scenario {
            Scenario::Throttling => return error(429, "ThrottlingException", THROTTLING),
            Scenario::UnknownMonitor => return error(404, "ResourceNotFoundException", NOT_FOUND),
            _ => {}
        }
        let Some((monitor, call)) = route(&request.method, &request.path) else {
            let message = format!("no operation at {} {}", request.method, request.path);
            return error(
                404,
                "UnknownOperationException",
                json!({ "message": message }).to_string(),
            );
        };
        if monitor != MONITOR {
            return not_found(format!("Monitor {monitor} not found"));
        }
        match call {
            Call::Start => {
                let category = request
                    .body
                    .as_ref()
                    .and_then(|body| body["destinationCategory"].as_str())
                    .unwrap_or_default();
                match category {
                    "INTER_VPC" => ok(START_QUERY),
                    other => ok(json!({ "queryId": query_id_of(other) }).to_string()),
                }
            }
            Call::Status(id) | Call::Results(id) if category_of(&id).is_none() => {
                not_found(format!("Query {id} not found"))
            }
            Call::Status(_) => self.status(),
            Call::Results(id) => match category_of(&id).as_deref() {
                Some("INTER_VPC") => self.results(request.param("nextToken")),
                Some("INTER_AZ") if !matches!(self.scenario, Scenario::Empty) => {
                    ok(RESULTS_INTER_AZ)
                }
                _ => ok(RESULTS_EMPTY),
            },
        }
    }

    fn status(&self) -> Answer {
        let call = self.status_calls.fetch_add(1, Ordering::SeqCst);
        match self.scenario {
            Scenario::Success { running } if call < running => ok(STATUS_RUNNING),
            Scenario::AlwaysRunning => ok(STATUS_RUNNING),
            Scenario::Status(status) => ok(json!({ "status": status }).to_string()),
            _ => ok(STATUS_SUCCEEDED),
        }
    }

    fn results(&self, next_token: Option<&str>) -> Answer {
        if matches!(self.scenario, Scenario::Empty) {
            return ok(RESULTS_EMPTY);
        }
        match next_token {
            None => ok(RESULTS),
            Some(token) if token == page_1_token() => ok(RESULTS_PAGE_2),
            Some(_) => error(
                400,
                "ValidationException",
                r#"{"message": "Invalid nextToken"}"#,
            ),
        }
    }
}

/// Network Flow Monitor on loopback, answering as its [`Scenario`] says and recording every
/// request.
struct FakeNfm {
    endpoint: String,
    fake: Arc<Fake>,
    accept: JoinHandle<()>,
}

impl FakeNfm {
    async fn start(scenario: Scenario) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let fake = Arc::new(Fake {
            scenario,
            status_calls: AtomicUsize::new(0),
            received: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&fake);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let fake = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| respond(Arc::clone(&fake), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            fake,
            accept,
        }
    }

    /// The adapter over a real SDK client for this fake: two attempts, short backoff and
    /// timeouts.
    fn adapter(&self) -> NetworkFlowMonitor {
        let config = aws_sdk_networkflowmonitor::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(sdk::https_client())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&self.endpoint)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(10))
                    .build(),
            )
            .build();
        NetworkFlowMonitor::new(Client::from_conf(config))
    }

    fn received(&self) -> Vec<Received> {
        self.fake.received.lock().unwrap().clone()
    }

    /// The `StartQueryMonitorTopContributors` requests received (`POST
    /// …/topContributorsQueries`), each SDK attempt counted.
    fn starts(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|request| {
                request.method == "POST" && request.path.ends_with("/topContributorsQueries")
            })
            .collect()
    }
}

impl Drop for FakeNfm {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn respond(
    fake: Arc<Fake>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let signed = parts
        .headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("AWS4-HMAC-SHA256")
                && value.contains("/networkflowmonitor/aws4_request")
        });
    let received = Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
        body: serde_json::from_slice(&body).ok(),
        signed,
    };
    let answer = fake.answer(&received);
    fake.received.lock().unwrap().push(received);
    let mut response = Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .header("x-amzn-requestid", "5f0c8e1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b");
    if let Some(error_type) = answer.error_type {
        response = response.header("x-amzn-errortype", error_type);
    }
    Ok(response.body(Full::new(answer.body.into())).unwrap())
}

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 3, hour, minute, 0).unwrap()
}

/// Timeouts of flows between VPCs over the quarter-hour before an alarm.
fn timeouts_query() -> TopContributorsQuery {
    TopContributorsQuery {
        monitor_name: MONITOR.to_owned(),
        metric: "TIMEOUTS".to_owned(),
        destination_category: "INTER_VPC".to_owned(),
        start: at(14, 0),
        end: at(14, 15),
        limit: 25,
    }
}

fn rfc3339(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a date-time string"))
        .expect("an RFC 3339 date-time")
        .with_timezone(&Utc)
}

fn text(value: &str) -> Option<String> {
    Some(value.to_owned())
}

fn transit_gateway() -> TraversedComponent {
    TraversedComponent {
        component_id: text("tgw-0e5f6a7b8c9d01234"),
        component_type: text("transit-gateway"),
        component_arn: text(
            "arn:aws:ec2:us-east-1:123456789012:transit-gateway/tgw-0e5f6a7b8c9d01234",
        ),
        service_name: text("ec2"),
    }
}

/// `results.json`'s first row, written out by hand.
fn first_flow() -> FlowContributor {
    FlowContributor {
        local_ip: text("10.0.12.37"),
        snat_ip: text("100.64.3.18"),
        local_instance_id: text("i-0a1b2c3d4e5f60718"),
        local_instance_arn: text("arn:aws:ec2:us-east-1:123456789012:instance/i-0a1b2c3d4e5f60718"),
        local_vpc_id: text("vpc-0a7d3e9c1b2f45a61"),
        local_vpc_arn: text("arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0a7d3e9c1b2f45a61"),
        local_region: text("us-east-1"),
        local_az: text("use1-az1"),
        local_subnet_id: text("subnet-04f1e2d3c4b5a6978"),
        local_subnet_arn: text(
            "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-04f1e2d3c4b5a6978",
        ),
        target_port: Some(5432),
        destination_category: text("INTER_VPC"),
        remote_ip: text("10.1.40.211"),
        dnat_ip: text("10.1.40.200"),
        remote_instance_id: text("i-09f8e7d6c5b4a3021"),
        remote_instance_arn: text(
            "arn:aws:ec2:us-east-1:123456789012:instance/i-09f8e7d6c5b4a3021",
        ),
        remote_vpc_id: text("vpc-0c3b2a1f9e8d7c6b5"),
        remote_vpc_arn: text("arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0c3b2a1f9e8d7c6b5"),
        remote_region: text("us-east-1"),
        remote_az: text("use1-az2"),
        remote_subnet_id: text("subnet-0b9a8c7d6e5f40312"),
        remote_subnet_arn: text(
            "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0b9a8c7d6e5f40312",
        ),
        value: Some(87),
        traversed_constructs: vec![
            TraversedComponent {
                component_id: text("nat-0c1d2e3f4a5b67890"),
                component_type: text("nat-gateway"),
                component_arn: text(
                    "arn:aws:ec2:us-east-1:123456789012:natgateway/nat-0c1d2e3f4a5b67890",
                ),
                service_name: text("ec2"),
            },
            transit_gateway(),
        ],
        kubernetes_metadata: Some(KubernetesMetadata {
            local_service_name: text("orders-api"),
            local_pod_name: text("orders-api-7d9f8b6c5-x2k4q"),
            local_pod_namespace: text("orders"),
            remote_service_name: text("orders-db-proxy"),
            remote_pod_name: text("orders-db-proxy-5c6d7e8f9-m3n7p"),
            remote_pod_namespace: text("data"),
        }),
    }
}

/// The rows of a results fixture, as JSON.
fn fixture_rows(fixture: &str) -> Vec<Value> {
    let value: Value = serde_json::from_str(fixture).expect("a fixture is JSON");
    value["topContributors"]
        .as_array()
        .expect("topContributors")
        .clone()
}

/// Every flow, written back with the API's field names, is its fixture row: no field lost,
/// renamed or changed on the way through the SDK and the adapter.
fn assert_rows(flows: &[FlowContributor], fixture: &str) {
    let written: Vec<Value> = flows
        .iter()
        .map(|flow| serde_json::to_value(flow).expect("a flow serialises"))
        .collect();
    assert_eq!(written, fixture_rows(fixture));
}

fn results_path() -> String {
    format!("{QUERIES_PATH}/{}/results", query_id())
}

#[tokio::test]
async fn a_query_runs_succeeds_and_pages_through_its_flows() {
    let fake = FakeNfm::start(Scenario::Success { running: 2 }).await;
    let flows = fake.adapter();
    let query = timeouts_query();

    let id = flows.start_query(&query).await.expect("the query starts");
    assert_eq!(id, "7f3c5f2e-9b1d-4c8a-a6e2-3d5b8c0f1a94");
    let start = &fake.received()[0];
    assert_eq!(
        (start.method.as_str(), start.path.as_str()),
        ("POST", QUERIES_PATH)
    );
    assert!(start.query.is_empty(), "{:?}", start.query);
    let body = start.body.as_ref().expect("a JSON body");
    assert_eq!(body["metricName"], "TIMEOUTS");
    assert_eq!(body["destinationCategory"], "INTER_VPC");
    assert_eq!(body["limit"], 25);
    assert_eq!(rfc3339(&body["startTime"]), query.start);
    assert_eq!(rfc3339(&body["endTime"]), query.end);
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "destinationCategory",
            "endTime",
            "limit",
            "metricName",
            "startTime"
        ],
        "the monitor travels in the path only"
    );

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(flows.query_status(MONITOR, &id).await.expect("a status"));
    }
    assert_eq!(
        statuses,
        [
            QueryStatus::Running,
            QueryStatus::Running,
            QueryStatus::Succeeded
        ]
    );
    assert!(statuses[0].pending());
    assert!(!statuses[2].pending());
    let status_path = format!("{QUERIES_PATH}/{id}/status");
    for request in &fake.received()[1..4] {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", status_path.as_str())
        );
        assert!(request.body.is_none(), "a GET carries no body");
    }

    let page_1 = flows
        .query_results(MONITOR, &id, 3, None)
        .await
        .expect("page 1");
    assert_eq!(page_1.unit.as_deref(), Some("Count"));
    assert_eq!(page_1.flows.len(), 3);
    assert_eq!(page_1.flows[0], first_flow());
    assert_eq!(page_1.flows[1].traversed_constructs, [transit_gateway()]);
    assert_eq!(page_1.flows[1].kubernetes_metadata, None);
    assert_rows(&page_1.flows, RESULTS);
    assert_eq!(page_1.next_token, Some(page_1_token()));

    let page_2 = flows
        .query_results(MONITOR, &id, 3, page_1.next_token.as_deref())
        .await
        .expect("page 2");
    assert_eq!(page_2.unit.as_deref(), Some("Count"));
    assert_rows(&page_2.flows, RESULTS_PAGE_2);
    assert_eq!(page_2.next_token, None, "the last page");

    let received = fake.received();
    assert_eq!(received.len(), 6, "one request per call: {received:?}");
    let (first, second) = (&received[4], &received[5]);
    for request in [first, second] {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", results_path().as_str())
        );
        assert_eq!(request.param("maxResults"), Some("3"));
    }
    assert_eq!(first.param("nextToken"), None);
    assert_eq!(
        second.param("nextToken"),
        Some(page_1_token().as_str()),
        "the token survives percent-encoding of + / ="
    );
    assert!(
        received.iter().all(|request| request.signed),
        "every request is SigV4-signed for networkflowmonitor"
    );
}

#[tokio::test]
async fn a_query_still_running_is_pending() {
    let fake = FakeNfm::start(Scenario::AlwaysRunning).await;
    let flows = fake.adapter();
    let id = flows.start_query(&timeouts_query()).await.expect("started");

    for _ in 0..3 {
        let status = flows.query_status(MONITOR, &id).await.expect("a status");
        assert_eq!(status, QueryStatus::Running);
        assert!(status.pending());
        assert_eq!(status.as_str(), "RUNNING");
    }
}

/// Each of the three calls, with its result reduced to its error.
async fn every_call(flows: &NetworkFlowMonitor) -> [Result<(), FlowQueryError>; 3] {
    let id = query_id();
    [
        flows.start_query(&timeouts_query()).await.map(drop),
        flows.query_status(MONITOR, &id).await.map(drop),
        flows.query_results(MONITOR, &id, 3, None).await.map(drop),
    ]
}

/// How many requests reached each operation's path, in [`OPERATIONS`]' order.
fn requests_per_operation(received: &[Received]) -> [usize; 3] {
    let count = |path: &str| {
        received
            .iter()
            .filter(|request| request.path == path)
            .count()
    };
    [
        count(QUERIES_PATH),
        count(&format!("{QUERIES_PATH}/{}/status", query_id())),
        count(&results_path()),
    ]
}

#[tokio::test]
async fn throttling_is_throttled_naming_the_operation_never_the_body() {
    let fake = FakeNfm::start(Scenario::Throttling).await;
    let results = every_call(&fake.adapter()).await;

    let received = fake.received();
    let body = received[0].body.clone().expect("StartQuery's JSON body");
    let sent: Vec<String> = body
        .as_object()
        .unwrap()
        .values()
        .filter_map(|value| value.as_str().map(str::to_owned))
        .collect();
    assert_eq!(sent.len(), 4, "metric, category and two times: {body}");
    for (operation, result) in OPERATIONS.iter().zip(results) {
        let Err(FlowQueryError::Throttled(message)) = &result else {
            panic!("{operation}: {result:?}");
        };
        assert!(message.contains(operation), "{message}");
        assert!(message.contains("ThrottlingException"), "{message}");
        assert!(message.contains("Rate exceeded"), "{message}");
        for value in &sent {
            assert!(!message.contains(value.as_str()), "{message} has {value}");
        }
        assert!(!message.contains(&body.to_string()), "{message}");
    }
    let attempts = MAX_ATTEMPTS as usize;
    assert_eq!(
        requests_per_operation(&received),
        [attempts; 3],
        "each call retried up to the configured attempts"
    );
}

#[tokio::test]
async fn an_unknown_monitor_is_not_found() {
    let fake = FakeNfm::start(Scenario::UnknownMonitor).await;
    let results = every_call(&fake.adapter()).await;

    for (operation, result) in OPERATIONS.iter().zip(results) {
        let Err(FlowQueryError::NotFound(message)) = &result else {
            panic!("{operation}: {result:?}");
        };
        assert!(message.contains(operation), "{message}");
        assert!(message.contains("ResourceNotFoundException"), "{message}");
        assert!(
            message.contains("Monitor my-monitor not found"),
            "{message}"
        );
    }
    assert_eq!(
        requests_per_operation(&fake.received()),
        [1; 3],
        "not found is not retried"
    );
}

#[tokio::test]
async fn an_empty_result_has_no_flows_and_no_next_page() {
    let fake = FakeNfm::start(Scenario::Empty).await;
    let flows = fake.adapter();
    let id = flows.start_query(&timeouts_query()).await.expect("started");
    assert_eq!(
        flows.query_status(MONITOR, &id).await,
        Ok(QueryStatus::Succeeded)
    );

    let page = flows
        .query_results(MONITOR, &id, 100, None)
        .await
        .expect("a page");
    assert!(page.flows.is_empty(), "{page:?}");
    assert_eq!(page.next_token, None);
    assert_eq!(page.unit.as_deref(), Some("Count"));
    assert_eq!(
        fake.received().last().unwrap().param("maxResults"),
        Some("100")
    );
}

#[tokio::test]
async fn an_unexpected_status_is_kept_as_written() {
    let fake = FakeNfm::start(Scenario::Status("EXPIRED")).await;
    let flows = fake.adapter();
    let id = flows.start_query(&timeouts_query()).await.expect("started");

    let status = flows.query_status(MONITOR, &id).await.expect("a status");
    assert_eq!(status, QueryStatus::Other("EXPIRED".to_owned()));
    assert_eq!(status.as_str(), "EXPIRED");
    assert!(!status.pending());
}

// The Enrich state end to end.

const METRIC_ALARM: &str = include_str!("../fixtures/metric-alarm.json");
/// The flows the fake serves per category, in [`DEFAULT_CATEGORIES`]' order.
const FLOWS_PER_CATEGORY: [(&str, usize); 4] = [
    ("INTRA_AZ", 0),
    ("INTER_AZ", 2),
    ("INTER_VPC", 4),
    ("INTER_REGION", 0),
];

/// A started incident of `metric-alarm.json` (an ALARM of `Timeouts` of monitor `my-monitor`)
/// in SQLite, and what the Enrich state reads: CloudWatch on moto, holding the alarm, and
/// Network Flow Monitor on the fake.
struct Incident {
    fake: FakeNfm,
    source: CloudWatchAlarmSource,
    store: Arc<dyn IncidentStore>,
    id: IncidentId,
    input: Value,
    _moto: Moto,
}

impl Incident {
    async fn start(scenario: Scenario) -> Self {
        let moto = Moto::start();
        let cloudwatch = cloudwatch_client(moto.endpoint());
        put_nfm_alarm(&cloudwatch).await;
        let fake = FakeNfm::start(scenario).await;
        let source = CloudWatchAlarmSource::new(cloudwatch).with_flows(fake.adapter());
        let store: Arc<dyn IncidentStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let dispatcher = Dispatcher::new(
            store.clone(),
            Arc::new(FakeStarter::default()),
            Arc::new(SystemClock),
        );
        let outcome = Intake::new(dispatcher, None)
            .handle(METRIC_ALARM.as_bytes())
            .await
            .unwrap();
        assert_eq!(outcome.incident().status, IncidentStatus::Started);
        let id = outcome.incident().incident_id.clone();
        let raw: Value = serde_json::from_str(METRIC_ALARM).unwrap();
        let input = json!({ "incidentId": id, "event": raw });
        Self {
            fake,
            source,
            store,
            id,
            input,
            _moto: moto,
        }
    }

    /// The Enrich state, once.
    async fn enrich(&self, settings: &NetworkSettings) -> Value {
        enrich::handle(
            self.input.clone(),
            &self.source,
            settings,
            self.store.as_ref(),
            &SystemClock,
        )
        .await
        .expect("Network Flow Monitor never fails enrichment")
    }

    async fn events(&self) -> Vec<IncidentEvent> {
        self.store.events(&self.id).await.unwrap()
    }

    /// The log's `TopContributorsStarted` events, after checking that it ends with
    /// `Enriched` recording `enrichment`.
    async fn started_after(&self, enrichment: &Value) -> Vec<IncidentEvent> {
        let events = self.events().await;
        let last = events.last().expect("a log");
        assert_eq!(last.kind, EventType::Enriched);
        assert_eq!(&last.data, enrichment, "Enriched records the enrichment");
        let incident = self.store.get(&self.id).await.unwrap().unwrap();
        assert_eq!(incident.status, IncidentStatus::Enriched);
        events
            .into_iter()
            .filter(|event| event.kind == EventType::TopContributorsStarted)
            .collect()
    }
}

fn notes(enrichment: &Value) -> Vec<String> {
    enrichment["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|note| note.as_str().expect("a note is a string").to_owned())
        .collect()
}

/// The notes about top contributors (CloudWatch's, e.g. no datapoints on moto, left out).
fn network_notes(enrichment: &Value) -> Vec<String> {
    notes(enrichment)
        .into_iter()
        .filter(|note| note.starts_with("top contributors"))
        .collect()
}

/// Every flow the fake serves, most degraded first.
fn every_flow_worst_first() -> Vec<Value> {
    let mut rows: Vec<Value> = [RESULTS, RESULTS_PAGE_2, RESULTS_INTER_AZ]
        .into_iter()
        .flat_map(fixture_rows)
        .collect();
    rows.sort_by_key(|row| Reverse(row["value"].as_i64()));
    rows
}

/// `network.queries` as expected when every query ended `status`.
fn queries_ended(status: &str, with_flows: bool) -> Value {
    FLOWS_PER_CATEGORY
        .iter()
        .map(|(category, flows)| {
            json!({
                "destinationCategory": category,
                "queryId": query_id_of(category),
                "status": status,
                "flows": if with_flows { *flows } else { 0 },
            })
        })
        .collect()
}

/// What `TopContributorsStarted` records for the default categories over `window`.
fn started_record(window: &Value) -> Value {
    json!({
        "monitorName": MONITOR,
        "metric": "TIMEOUTS",
        "start": window["start"],
        "end": window["end"],
        "queries": DEFAULT_CATEGORIES
            .iter()
            .map(|category| json!({
                "destinationCategory": category,
                "queryId": query_id_of(category),
            }))
            .collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn enrich_puts_the_top_contributors_of_every_category_under_network() {
    assert_eq!(
        FLOWS_PER_CATEGORY.map(|(category, _)| category),
        DEFAULT_CATEGORIES
    );
    let incident = Incident::start(Scenario::Success { running: 4 }).await;
    let before = Utc::now();
    let enrichment = incident.enrich(&NetworkSettings::default()).await;

    let network = &enrichment["network"];
    assert_eq!(network["monitorName"], MONITOR, "{enrichment:#}");
    assert_eq!(network["metric"], "Timeouts");
    assert_eq!(network["queryMetric"], "TIMEOUTS");
    assert_eq!(network["unit"], "Count");
    assert_eq!(network["topContributors"], json!(every_flow_worst_first()));
    let values: Vec<i64> = network["topContributors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|flow| flow["value"].as_i64().unwrap())
        .collect();
    assert_eq!(
        values,
        [87, 64, 41, 23, 12, 9],
        "most degraded first, across categories and pages"
    );
    assert_eq!(network["omitted"], 0);
    assert_eq!(network["queries"], queries_ended("SUCCEEDED", true));
    assert_eq!(network_notes(&enrichment), Vec::<String>::new());

    // The window: RFC 3339, the alarm's evaluation window (1 period of 300 s, plus 2 of
    // margin) ending now, and exactly what every query was asked for.
    let window = &network["window"];
    let (start, end) = (rfc3339(&window["start"]), rfc3339(&window["end"]));
    assert_eq!(start.timestamp() % 300, 0, "on a period boundary: {window}");
    assert!(
        before - chrono::Duration::seconds(1) <= end && end <= Utc::now(),
        "ends now: {window}"
    );
    let length = end - start;
    assert!(
        chrono::Duration::minutes(10) < length && length <= chrono::Duration::minutes(15),
        "{window}"
    );
    let starts = incident.fake.starts();
    assert_eq!(
        starts.len(),
        DEFAULT_CATEGORIES.len(),
        "one query per category"
    );
    for (request, category) in starts.iter().zip(DEFAULT_CATEGORIES) {
        assert_eq!(request.path, QUERIES_PATH);
        let body = request.body.as_ref().expect("a JSON body");
        assert_eq!(body["destinationCategory"], category);
        assert_eq!(body["metricName"], "TIMEOUTS");
        assert_eq!(body["limit"], NetworkSettings::default().flows);
        assert_eq!(rfc3339(&body["startTime"]), start, "{body}");
        assert_eq!(rfc3339(&body["endTime"]), end, "{body}");
    }
    let received = incident.fake.received();
    assert!(received.iter().all(|request| request.signed));
    for category in ["INTRA_AZ", "INTER_AZ", "INTER_REGION"] {
        let results = format!("{QUERIES_PATH}/{}/results", query_id_of(category));
        let read = received.iter().filter(|r| r.path == results).count();
        assert_eq!(read, 1, "{category}'s single page");
    }
    assert_eq!(
        received.iter().filter(|r| r.path == results_path()).count(),
        2,
        "INTER_VPC's two pages"
    );

    // The log: the queries, recorded once before they were polled, then the enrichment.
    let events = incident.events().await;
    let kinds: Vec<EventType> = events.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds[kinds.len() - 2..],
        [EventType::TopContributorsStarted, EventType::Enriched],
        "{kinds:?}"
    );
    let started = incident.started_after(&enrichment).await;
    assert_eq!(started.len(), 1, "{kinds:?}");
    assert_eq!(started[0].data, started_record(window));

    // The webhook body: the evidence is under data.enrichment only; every byte before it,
    // the description included, is the body without enrichment.
    let event = AlarmEvent::parse(METRIC_ALARM.as_bytes()).unwrap();
    let plain = WebhookBody::render(&event);
    let enriched = WebhookBody::render_enriched(&event, Some(&enrichment));
    let plain_json: Value = serde_json::from_str(plain.as_str()).unwrap();
    let mut enriched_json: Value = serde_json::from_str(enriched.as_str()).unwrap();
    let description = plain_json["description"].as_str().unwrap();
    assert_eq!(
        enriched_json["description"].as_str().unwrap().as_bytes(),
        description.as_bytes()
    );
    assert!(!description.contains("10.0.12.37"), "{description}");
    let prefix = plain
        .as_str()
        .strip_suffix("}}")
        .expect("the body ends with data.metadata");
    assert!(
        enriched.as_str().starts_with(prefix),
        "the seed's bytes are kept"
    );
    assert_eq!(enriched_json["data"]["enrichment"], enrichment);
    enriched_json["data"]
        .as_object_mut()
        .unwrap()
        .remove("enrichment");
    assert_eq!(enriched_json, plain_json);
}

#[tokio::test]
async fn a_retry_of_enrich_reads_the_recorded_queries_and_starts_none() {
    let incident = Incident::start(Scenario::Success { running: 4 }).await;
    let first = incident.enrich(&NetworkSettings::default()).await;
    assert_eq!(incident.fake.starts().len(), DEFAULT_CATEGORIES.len());
    let asked = incident.fake.received().len();

    let retry = incident.enrich(&NetworkSettings::default()).await;

    assert_eq!(
        incident.fake.starts().len(),
        DEFAULT_CATEGORIES.len(),
        "no query started again"
    );
    assert!(
        incident.fake.received().len() > asked,
        "the recorded queries were read again"
    );
    assert_eq!(retry["network"], first["network"], "{retry:#}");
    let started = incident.started_after(&retry).await;
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].data, started_record(&first["network"]["window"]));
    let enriched = incident
        .events()
        .await
        .iter()
        .filter(|event| event.kind == EventType::Enriched)
        .count();
    assert_eq!(enriched, 2, "each attempt records its enrichment");
}

#[tokio::test]
async fn throttling_of_every_call_is_a_note_per_category_and_records_no_query() {
    let incident = Incident::start(Scenario::Throttling).await;
    let enrichment = incident.enrich(&NetworkSettings::default()).await;

    let network = &enrichment["network"];
    assert_eq!(network["monitorName"], MONITOR, "{enrichment:#}");
    let flows = network.get("topContributors");
    assert!(
        flows.is_none_or(|flows| flows == &json!([])),
        "{enrichment:#}"
    );
    let notes = network_notes(&enrichment);
    assert_eq!(notes.len(), DEFAULT_CATEGORIES.len(), "{notes:#?}");
    for (note, category) in notes.iter().zip(DEFAULT_CATEGORIES) {
        assert!(
            note.starts_with(&format!(
                "top contributors ({category}) not started: throttled"
            )),
            "{note}"
        );
        assert!(note.contains("ThrottlingException"), "{note}");
        assert!(note.contains("Rate exceeded"), "{note}");
    }
    assert!(incident.started_after(&enrichment).await.is_empty());
    let received = incident.fake.received();
    assert_eq!(
        incident.fake.starts().len(),
        DEFAULT_CATEGORIES.len() * MAX_ATTEMPTS as usize,
        "each start retried by the SDK, then given up"
    );
    assert_eq!(
        received.len(),
        incident.fake.starts().len(),
        "nothing polled"
    );
}

#[tokio::test]
async fn a_query_still_running_after_the_wait_is_a_note_and_stays_recorded() {
    let incident = Incident::start(Scenario::AlwaysRunning).await;
    let settings = NetworkSettings {
        wait: Duration::from_secs(1),
        ..NetworkSettings::default()
    };
    let begun = std::time::Instant::now();
    let enrichment = incident.enrich(&settings).await;
    assert!(begun.elapsed() < Duration::from_secs(5), "the wait is kept");

    let network = &enrichment["network"];
    assert_eq!(
        network["queries"],
        queries_ended("RUNNING", false),
        "{enrichment:#}"
    );
    assert_eq!(network["topContributors"], json!([]));
    let notes = network_notes(&enrichment);
    assert_eq!(notes.len(), DEFAULT_CATEGORIES.len(), "{notes:#?}");
    for (note, category) in notes.iter().zip(DEFAULT_CATEGORIES) {
        let query = format!(
            "top contributors query {} ({category}) still RUNNING after 1 s",
            query_id_of(category)
        );
        assert!(note.starts_with(&query), "{note}");
    }
    let started = incident.started_after(&enrichment).await;
    assert_eq!(started.len(), 1, "the queries are recorded for a retry");
    assert_eq!(started[0].data, started_record(&network["window"]));
    assert!(
        incident
            .fake
            .received()
            .iter()
            .all(|request| !request.path.ends_with("/results")),
        "no result read"
    );
}

#[tokio::test]
async fn an_unknown_monitor_is_a_note_naming_resource_not_found() {
    let incident = Incident::start(Scenario::UnknownMonitor).await;
    let enrichment = incident.enrich(&NetworkSettings::default()).await;

    let network = &enrichment["network"];
    assert_eq!(network["monitorName"], MONITOR, "{enrichment:#}");
    let flows = network.get("topContributors");
    assert!(
        flows.is_none_or(|flows| flows == &json!([])),
        "{enrichment:#}"
    );
    let notes = network_notes(&enrichment);
    assert_eq!(notes.len(), DEFAULT_CATEGORIES.len(), "{notes:#?}");
    for (note, category) in notes.iter().zip(DEFAULT_CATEGORIES) {
        assert!(
            note.starts_with(&format!(
                "top contributors ({category}) not started: not found"
            )),
            "{note}"
        );
        assert!(note.contains("ResourceNotFoundException"), "{note}");
        assert!(note.contains("Monitor my-monitor not found"), "{note}");
    }
    assert!(incident.started_after(&enrichment).await.is_empty());
    assert_eq!(
        incident.fake.starts().len(),
        DEFAULT_CATEGORIES.len(),
        "not found is not retried"
    );
}
