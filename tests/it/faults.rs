//! Faults between the real SDK clients and moto: a loopback proxy answers a share of the
//! requests with the services' own error documents (throttling, `TransactionConflict`
//! cancellations, 5xx), resets connections, or answers after the SDK has given up, and forwards
//! the rest to `moto_server`. The clients are built with the Lambdas' own SDK configuration
//! (`alarm_relay::adapters::aws::sdk`: timeouts, standard retries), so what reaches the
//! adapters is what a Lambda would see.
//!
//! - `each_fault_is_classified_as_the_state_machine_expects`: one fault kind at a time, on every
//!   request of one operation, against the DynamoDB store, the Step Functions starter and the
//!   Secrets Manager fetcher; and the SDK defaults without those timeouts, hanging on a slow
//!   answer.
//! - `a_soak_under_a_fifth_of_faults_loses_nothing_and_starts_nothing_twice`: intake with
//!   duplicates, the sweeper until the outbox is empty, then every incident's workflow store
//!   calls (Enrich, Correlate, Deliver's attempt records, Record) with the definition's own
//!   Retry lists, under 20% faults; checked against moto directly, not through the proxy.
//!
//! The proxy lets one request per table reach moto at a time (moto applies transactions
//! without a lock; see `store_dynamodb.rs`), and it remembers the `ClientRequestToken` of every
//! `TransactWriteItems` that committed, answering a repeat with success as DynamoDB does for
//! 10 minutes (moto ignores the token). Without that, an SDK retry of a transaction whose
//! answer was lost would see its own write as a condition failure, which DynamoDB never shows.
//! Faults are drawn from a seeded generator, two draws per request in arrival order: the
//! sequence is the seed's, while which request gets which draw depends on scheduling, so the
//! soak's totals vary a little from run to run.
//!
//! The figures are printed; to see them:
//!
//! ```text
//! ALARM_RELAY_MOTO_SERVER=$PWD/.venv-test/bin/moto_server \
//!   cargo test --all-features --test it -- faults --nocapture
//! ```

use crate::moto::Moto;
use alarm_relay::adapters::aws::{DynamoDbStore, SecretsManagerFetcher, StepFunctionsStarter, sdk};
use alarm_relay::adapters::{OfflineAlarmSource, SystemClock};
use alarm_relay::config::{CorrelationConfig, RoutingConfig};
use alarm_relay::delivery::{Deliverer, DeliveryError};
use alarm_relay::enrich::network::NetworkSettings;
use alarm_relay::episode::Episode;
use alarm_relay::event::IncidentId;
use alarm_relay::incident::{EventType, Incident, IncidentEvent, IncidentStatus, NewEvent};
use alarm_relay::intake::{Intake, IntakeOutcome};
use alarm_relay::outbox::{Dispatcher, execution_input};
use alarm_relay::ports::{
    Created, IncidentStore, SecretFetcher, StartError, StoreError, WorkflowStarter,
};
use alarm_relay::secret::CachedSecretSource;
use alarm_relay::signer::SignerError;
use alarm_relay::testing::FakeTransport;
use alarm_relay::{enrich, recorder, signer};
use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::retry::RetryPartition;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const TABLE: &str = "incidents";
const DEFINITION: &str = include_str!("../../statemachine/incident.asl.json");
/// A state machine moto keeps RUNNING: only the starts are counted here.
const WAITING: &str =
    r#"{"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#;
const SECRET_DOCUMENT: &str = r#"{"WEBHOOK_URL": "https://event-ai.us-east-1.api.aws/webhook/generic/soak", "WEBHOOK_SECRET": "soak-secret"}"#;
/// How long a slow answer is held: past the SDK's attempt timeout, so the client gives up.
const SLOW: Duration = Duration::from_secs(sdk::ATTEMPT_TIMEOUT.as_secs() + 1);

// --- the proxy -------------------------------------------------------------------------------

/// What the proxy does instead of (or after) forwarding a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// DynamoDB's 400 `ProvisionedThroughputExceededException`.
    ProvisionedThroughputExceeded,
    /// 400 `ThrottlingException` (every service).
    Throttling,
    /// `TransactWriteItems` only: 400 `TransactionCanceledException`, the first item's
    /// cancellation reason `TransactionConflict`, the others `None`.
    TransactionConflict,
    /// 500: DynamoDB's `InternalServerError`, Step Functions' `InternalFailure`, Secrets
    /// Manager's `InternalServiceError`.
    InternalError,
    /// 503 `ServiceUnavailable`.
    ServiceUnavailable,
    /// 502 with an HTML body, as a load balancer in between answers.
    BadGateway,
    /// The connection is reset (RST) before the request reaches the service.
    ResetBeforeForward,
    /// The request reaches the service (and is applied), then the connection is reset.
    ResetAfterForward,
    /// The request reaches the service; its answer is held past the SDK's attempt timeout.
    Slow,
}

impl Fault {
    const ALL: [Self; 9] = [
        Self::ProvisionedThroughputExceeded,
        Self::Throttling,
        Self::TransactionConflict,
        Self::InternalError,
        Self::ServiceUnavailable,
        Self::BadGateway,
        Self::ResetBeforeForward,
        Self::ResetAfterForward,
        Self::Slow,
    ];

    fn applies_to(self, service: Service, operation: &str) -> bool {
        match self {
            Self::ProvisionedThroughputExceeded => service == Service::DynamoDb,
            Self::TransactionConflict => operation == "TransactWriteItems",
            _ => true,
        }
    }

    /// HTTP status and error code of an answered fault, per service.
    fn document(self, service: Service) -> Option<(u16, &'static str, &'static str)> {
        use Service::*;
        Some(match (self, service) {
            (Self::ProvisionedThroughputExceeded, _) => (
                400,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded. \
                 Consider increasing your provisioning level with the UpdateTable API.",
            ),
            (Self::Throttling, DynamoDb) => (
                400,
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            ),
            (Self::Throttling, _) => (400, "ThrottlingException", "Rate exceeded"),
            (Self::TransactionConflict, _) => (
                400,
                "TransactionCanceledException",
                "Transaction cancelled, please refer cancellation reasons for specific reasons",
            ),
            (Self::InternalError, DynamoDb) => {
                (500, "InternalServerError", "Internal server error")
            }
            (Self::InternalError, SecretsManager) => (
                500,
                "InternalServiceError",
                "An error occurred on the server side.",
            ),
            (Self::InternalError, _) => (
                500,
                "InternalFailure",
                "The request processing has failed because of an unknown error, exception or failure.",
            ),
            (Self::ServiceUnavailable, _) => (
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
            ),
            _ => return None,
        })
    }
}

/// The service a request is for, by its `X-Amz-Target` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    DynamoDb,
    StepFunctions,
    SecretsManager,
    Other,
}

impl Service {
    fn of(target: &str) -> Self {
        match target.split('.').next().unwrap_or("") {
            "DynamoDB_20120810" => Self::DynamoDb,
            "AWSStepFunctions" => Self::StepFunctions,
            "secretsmanager" => Self::SecretsManager,
            _ => Self::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::DynamoDb => "DynamoDB",
            Self::StepFunctions => "Step Functions",
            Self::SecretsManager => "Secrets Manager",
            Self::Other => "other",
        }
    }

    /// DynamoDB and Step Functions speak JSON 1.0, Secrets Manager JSON 1.1.
    fn content_type(self) -> &'static str {
        match self {
            Self::SecretsManager => "application/x-amz-json-1.1",
            _ => "application/x-amz-json-1.0",
        }
    }

    /// DynamoDB names its errors in the body with its namespace; the coral services behind
    /// Step Functions and Secrets Manager also send `x-amzn-ErrorType`.
    fn error_type(self, code: &str) -> (String, Option<String>) {
        match self {
            Self::DynamoDb => (format!("com.amazonaws.dynamodb.v20120810#{code}"), None),
            _ => (
                code.to_owned(),
                Some(format!(
                    "{code}:http://internal.amazon.com/coral/com.amazon.coral.availability/"
                )),
            ),
        }
    }
}

/// Which requests get a fault.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// The share of eligible requests that get a fault.
    pub share: f64,
    /// The kinds drawn from (uniformly, among those that apply to the request).
    pub kinds: Vec<Fault>,
    /// Only these operations are eligible (`None`: every request).
    pub operations: Option<Vec<&'static str>>,
    /// At most this many faults in all.
    pub limit: Option<usize>,
    /// How long [`Fault::Slow`] holds the answer.
    pub slow: Duration,
    pub seed: u64,
}

impl FaultPlan {
    /// `kind` on every request of `operation`.
    fn always(kind: Fault, operation: &'static str) -> Self {
        Self {
            share: 1.0,
            kinds: vec![kind],
            operations: Some(vec![operation]),
            limit: None,
            slow: SLOW,
            seed: 1,
        }
    }

    fn times(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// splitmix64: a small seeded generator, so the fault sequence is the seed's.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What the proxy saw and did.
#[derive(Debug, Clone, Default)]
pub struct ProxyCounts {
    pub requests: BTreeMap<Service, usize>,
    pub injected: BTreeMap<Fault, usize>,
    pub injected_by_service: BTreeMap<Service, usize>,
    /// `TransactWriteItems` repeats of a committed `ClientRequestToken`, answered success.
    pub token_replays: usize,
    /// Requests forwarded to moto, and the time moto took, by operation.
    pub moto: BTreeMap<String, (usize, Duration)>,
}

impl ProxyCounts {
    fn total_requests(&self) -> usize {
        self.requests.values().sum()
    }

    fn total_injected(&self) -> usize {
        self.injected.values().sum()
    }
}

struct Shared {
    upstream: SocketAddr,
    plan: FaultPlan,
    rng: Mutex<Rng>,
    counts: Mutex<ProxyCounts>,
    /// Committed `TransactWriteItems` answers by `ClientRequestToken`.
    tokens: Mutex<HashMap<String, Vec<u8>>>,
}

/// A loopback HTTP/1.1 proxy in front of moto that injects faults by a [`FaultPlan`].
pub struct FaultProxy {
    endpoint: String,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: &str, plan: FaultPlan) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("moto's endpoint is http://ip:port");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream,
            rng: Mutex::new(Rng(plan.seed)),
            plan,
            counts: Mutex::new(ProxyCounts::default()),
            tokens: Mutex::new(HashMap::new()),
        });
        let accepting = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                let shared = Arc::clone(&accepting);
                tokio::spawn(async move {
                    let _ = serve(connection, &shared).await;
                });
            }
        });
        Self {
            endpoint,
            shared,
            accept,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn counts(&self) -> ProxyCounts {
        self.shared.counts.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Shared {
    /// Counts the request and draws its fault, if any.
    fn draw(&self, service: Service, operation: &str) -> Option<Fault> {
        let mut counts = self.counts.lock().unwrap();
        *counts.requests.entry(service).or_default() += 1;
        let plan = &self.plan;
        if plan
            .operations
            .as_ref()
            .is_some_and(|operations| !operations.contains(&operation))
            || plan
                .limit
                .is_some_and(|limit| counts.total_injected() >= limit)
        {
            return None;
        }
        let kinds: Vec<Fault> = plan
            .kinds
            .iter()
            .copied()
            .filter(|kind| kind.applies_to(service, operation))
            .collect();
        let mut rng = self.rng.lock().unwrap();
        // Two draws per eligible request, whatever it gets, so the sequence is the seed's.
        let (unit, pick) = (rng.unit(), rng.next());
        if kinds.is_empty() || unit >= plan.share {
            return None;
        }
        let kind = kinds[(pick % kinds.len() as u64) as usize];
        *counts.injected.entry(kind).or_default() += 1;
        *counts.injected_by_service.entry(service).or_default() += 1;
        Some(kind)
    }

    /// Forwards `request` to moto (or answers a repeated committed transaction token).
    async fn forward(&self, operation: &str, request: &[u8]) -> std::io::Result<Vec<u8>> {
        let token = (operation == "TransactWriteItems")
            .then(|| {
                body_json(request)["ClientRequestToken"]
                    .as_str()
                    .map(str::to_owned)
            })
            .flatten();
        let turn = turn(self.upstream, &table_of(request));
        let _turn = turn.lock().await;
        if let Some(token) = &token
            && let Some(answer) = self.tokens.lock().unwrap().get(token).cloned()
        {
            self.counts.lock().unwrap().token_replays += 1;
            return Ok(answer);
        }
        let began = Instant::now();
        let mut moto = BufReader::new(TcpStream::connect(self.upstream).await?);
        moto.get_mut().write_all(request).await?;
        let answer = read_message(&mut moto)
            .await?
            .ok_or_else(|| std::io::Error::other("moto closed without a response"))?;
        let took = began.elapsed();
        {
            let mut counts = self.counts.lock().unwrap();
            let entry = counts.moto.entry(operation.to_owned()).or_default();
            entry.0 += 1;
            entry.1 += took;
        }
        if let Some(token) = token
            && answer.starts_with(b"HTTP/1.1 200")
        {
            self.tokens.lock().unwrap().insert(token, answer.clone());
        }
        Ok(answer)
    }
}

async fn serve(connection: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut client = BufReader::new(connection);
    while let Some(request) = read_message(&mut client).await? {
        let target = header(&request, "x-amz-target").unwrap_or_default();
        let service = Service::of(&target);
        let operation = target.rsplit('.').next().unwrap_or("").to_owned();
        let fault = shared.draw(service, &operation);
        if let Some(answer) = fault.and_then(|fault| error_answer(fault, service, &request)) {
            client.get_mut().write_all(&answer).await?;
            continue;
        }
        if fault == Some(Fault::ResetBeforeForward) {
            reset(client.into_inner());
            return Ok(());
        }
        let answer = shared.forward(&operation, &request).await?;
        match fault {
            Some(Fault::ResetAfterForward) => {
                reset(client.into_inner());
                return Ok(());
            }
            Some(Fault::Slow) => {
                tokio::time::sleep(shared.plan.slow).await;
                // The client has given up by now; the write fails and the connection ends.
                client.get_mut().write_all(&answer).await?;
            }
            _ => client.get_mut().write_all(&answer).await?,
        }
    }
    Ok(())
}

/// One request at a time reaches one moto table (or one other service): moto applies a
/// transaction item by item and restores a snapshot of the table when one is cancelled, so a
/// request running beside it could see (or erase) half a transaction. Shared by every proxy
/// in front of the same moto.
fn turn(upstream: SocketAddr, table: &str) -> Arc<tokio::sync::Mutex<()>> {
    static TURNS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    TURNS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap()
        .entry(format!("{upstream}/{table}"))
        .or_default()
        .clone()
}

/// The table a DynamoDB request names (a transaction's first item's), else the service.
fn table_of(request: &[u8]) -> String {
    let body = body_json(request);
    let first = &body["TransactItems"][0];
    [
        &body["TableName"],
        &first["Put"]["TableName"],
        &first["Update"]["TableName"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .map_or_else(
        || {
            header(request, "x-amz-target")
                .unwrap_or_default()
                .split('.')
                .next()
                .unwrap_or("")
                .to_owned()
        },
        str::to_owned,
    )
}

/// Closes with an RST rather than a FIN.
#[allow(deprecated)] // SO_LINGER 0 does not block on drop: the kernel discards and resets.
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// The raw HTTP answer of an answered fault (`None` for resets and slow answers).
fn error_answer(fault: Fault, service: Service, request: &[u8]) -> Option<Vec<u8>> {
    if fault == Fault::BadGateway {
        let body = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>";
        return Some(
            format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        );
    }
    let (status, code, message) = fault.document(service)?;
    let (error_type, header) = service.error_type(code);
    let mut document = json!({ "__type": error_type, "message": message });
    if fault == Fault::TransactionConflict {
        let items = body_json(request)["TransactItems"]
            .as_array()
            .map_or(1, Vec::len)
            .max(1);
        let mut reasons = vec![
            json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item."}),
        ];
        reasons.extend((1..items).map(|_| json!({"Code": "None"})));
        let codes: Vec<&str> = reasons
            .iter()
            .map(|reason| reason["Code"].as_str().unwrap())
            .collect();
        document["message"] = json!(format!("{message} [{}]", codes.join(", ")));
        document["CancellationReasons"] = json!(reasons);
    }
    let body = document.to_string();
    let reason = match status {
        400 => "Bad Request",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    let header = header.map_or(String::new(), |value| {
        format!("x-amzn-ErrorType: {value}\r\n")
    });
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             x-amzn-RequestId: fault-injected\r\n{header}\r\n{body}",
            service.content_type(),
            body.len()
        )
        .into_bytes(),
    )
}

fn header(message: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(message)
        .split("\r\n\r\n")
        .next()?
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
}

fn body_json(message: &[u8]) -> Value {
    message
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .and_then(|head| serde_json::from_slice(&message[head + 4..]).ok())
        .unwrap_or(Value::Null)
}

/// One HTTP/1.1 message whose body has a `Content-Length` (or no body); `None` at a clean end.
async fn read_message(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    let mut length = 0;
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return if message.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
        if let Some(value) = text.strip_prefix("content-length:") {
            length = value.trim().parse().map_err(std::io::Error::other)?;
        }
        if text.starts_with("transfer-encoding:") {
            return Err(std::io::Error::other("chunked messages are not supported"));
        }
        message.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let head = message.len();
    message.resize(head + length, 0);
    reader.read_exact(&mut message[head..]).await?;
    Ok(Some(message))
}

// --- clients and resources -------------------------------------------------------------------

/// The Lambdas' SDK configuration (`sdk::configure`), pointed at `endpoint`.
async fn lambda_config(endpoint: &str) -> SdkConfig {
    sdk::configure(aws_config::defaults(BehaviorVersion::latest()))
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "faults"))
        .load()
        .await
}

/// What `aws_config::load_defaults(BehaviorVersion::latest())` gave the Lambdas before
/// `sdk::load`, pointed at `endpoint`.
async fn sdk_defaults(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(sdk::https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "faults"))
        .load()
        .await
}

/// Moto with the table, the state machine and the webhook secret, made without faults.
struct Resources {
    moto: Moto,
    /// The incident tables (one unless sharded).
    tables: Vec<String>,
    /// Unfaulted: for setup and for checking what moto holds.
    direct: SdkConfig,
    machine: String,
    secret_arn: String,
}

impl Resources {
    async fn create(shards: usize) -> Self {
        let moto = Moto::start();
        let direct = sdk_defaults(moto.endpoint()).await;
        let tables: Vec<String> = (0..shards)
            .map(|shard| format!("{TABLE}-{shard}"))
            .collect();
        for table in &tables {
            DynamoDbStore::create_table(&aws_sdk_dynamodb::Client::new(&direct), table)
                .await
                .unwrap();
        }
        let machine = aws_sdk_sfn::Client::new(&direct)
            .create_state_machine()
            .name("incident")
            .definition(WAITING)
            .role_arn("arn:aws:iam::123456789012:role/incident-workflow")
            .send()
            .await
            .unwrap()
            .state_machine_arn;
        let secret_arn = aws_sdk_secretsmanager::Client::new(&direct)
            .create_secret()
            .name("alarm-relay/webhook")
            .secret_string(SECRET_DOCUMENT)
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();
        Self {
            moto,
            tables,
            direct,
            machine,
            secret_arn,
        }
    }

    /// Every execution name moto holds.
    async fn executions(&self) -> Vec<String> {
        let sfn = aws_sdk_sfn::Client::new(&self.direct);
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let page = sfn
                .list_executions()
                .state_machine_arn(&self.machine)
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            names.extend(page.executions.into_iter().map(|execution| execution.name));
            token = page.next_token;
            if token.is_none() {
                return names;
            }
        }
    }

    /// The partition keys of every incident's STATE item in every table.
    async fn state_items(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for table in &self.tables {
            keys.extend(self.state_items_of(table).await);
        }
        keys
    }

    async fn state_items_of(&self, table: &str) -> Vec<String> {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.direct);
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let page = dynamodb
                .scan()
                .table_name(table)
                .filter_expression("sk = :s")
                .expression_attribute_values(":s", AttributeValue::S("STATE".into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            keys.extend(
                page.items
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|item| {
                        item.get("pk")
                            .and_then(|pk| pk.as_s().ok())
                            .filter(|pk| pk.starts_with("INCIDENT#"))
                            .cloned()
                    }),
            );
            start = page.last_evaluated_key.filter(|key| !key.is_empty());
            if start.is_none() {
                return keys;
            }
        }
    }

    fn direct_store(&self, shard: usize) -> DynamoDbStore {
        DynamoDbStore::new(
            aws_sdk_dynamodb::Client::new(&self.direct),
            &self.tables[shard],
        )
    }

    /// Whether no table's outbox holds an incident, read directly.
    async fn outbox_is_empty(&self) -> bool {
        for shard in 0..self.tables.len() {
            let pending = self
                .direct_store(shard)
                .outbox("9999-12-31T00:00:00.000Z", 10)
                .await
                .unwrap();
            if !pending.is_empty() {
                return false;
            }
        }
        true
    }
}

// --- (a) each fault kind, classified ---------------------------------------------------------

/// One row: a fault on every request of one operation, the call, what the adapters answered.
struct Row {
    fault: Fault,
    plan: FaultPlan,
    call: Call,
    /// The error name our code gives (`Ok` when the fault is absorbed).
    expected: &'static str,
}

#[derive(Clone, Copy, Debug)]
enum Call {
    /// `DynamoDbStore::get` (GetItem).
    StoreGet,
    /// `DynamoDbStore::create` of a new incident (TransactWriteItems).
    StoreCreate,
    /// `StepFunctionsStarter::start`.
    Start,
    /// `SecretsManagerFetcher::fetch`, as the signer reports it.
    Secret,
}

impl Call {
    fn operation(self) -> &'static str {
        match self {
            Self::StoreGet => "GetItem",
            Self::StoreCreate => "TransactWriteItems",
            Self::Start => "StartExecution",
            Self::Secret => "GetSecretValue",
        }
    }
}

/// A fresh incident for a create: the metric fixture renamed.
fn fresh_incident(name: &str) -> (Incident, Vec<NewEvent>) {
    let event = alarm_event(name, "ALARM");
    let raw = serde_json::to_vec(&event).unwrap();
    let parsed = alarm_relay::event::AlarmEvent::parse(&raw).unwrap();
    let now = chrono::Utc::now();
    let mut incident = alarm_relay::incident::received(&parsed, &raw, now, None, false);
    let events = vec![NewEvent::new(
        EventType::Received,
        now,
        json!({ "event": event }),
    )];
    incident.event_count = 1;
    (incident, events)
}

/// Runs `call` through a proxy with `plan` and answers the error name our code gives, or `Ok`.
async fn classify(resources: &Resources, plan: FaultPlan, call: Call, tag: usize) -> String {
    let proxy = FaultProxy::start(resources.moto.endpoint(), plan).await;
    let aws = lambda_config(proxy.endpoint()).await;
    let name = match call {
        Call::StoreGet => {
            let store =
                DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws), &resources.tables[0]);
            match store.get(&IncidentId::from_raw(format!("row-{tag}"))).await {
                Ok(_) => "Ok".to_owned(),
                Err(error) => error.error_type().to_owned(),
            }
        }
        Call::StoreCreate => {
            let store =
                DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws), &resources.tables[0]);
            let (incident, events) = fresh_incident(&format!("Row-{tag}"));
            match store.create(&incident, &events).await {
                Ok(Created::New) => "Ok".to_owned(),
                Ok(Created::Existing(_)) => "Existing".to_owned(),
                Err(error) => error.error_type().to_owned(),
            }
        }
        Call::Start => {
            let starter =
                StepFunctionsStarter::new(aws_sdk_sfn::Client::new(&aws), &resources.machine);
            match starter.start(&format!("row-{tag}"), &json!({})).await {
                Ok(_) => "Ok".to_owned(),
                Err(StartError::Unavailable(_)) => "StartError::Unavailable".to_owned(),
                Err(StartError::Failed(_)) => "StartError::Failed".to_owned(),
            }
        }
        Call::Secret => {
            let fetcher = SecretsManagerFetcher::new(
                aws_sdk_secretsmanager::Client::new(&aws),
                &resources.secret_arn,
            );
            match fetcher.fetch().await {
                Ok(_) => "Ok".to_owned(),
                Err(error) => SignerError::from(DeliveryError::Secret(error))
                    .name
                    .as_str()
                    .to_owned(),
            }
        }
    };
    let injected = proxy.counts().total_injected();
    assert!(injected > 0, "{call:?}: the fault reached the client");
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_is_classified_as_the_state_machine_expects() {
    let resources = Resources::create(1).await;
    let transient = [
        Fault::Throttling,
        Fault::InternalError,
        Fault::ServiceUnavailable,
        Fault::BadGateway,
        Fault::ResetBeforeForward,
        Fault::ResetAfterForward,
        Fault::Slow,
    ];
    let mut rows = Vec::new();
    let mut row = |fault, call: Call, expected, limit: Option<usize>| {
        let mut plan = FaultPlan::always(fault, call.operation());
        if let Some(limit) = limit {
            plan = plan.times(limit);
        }
        rows.push(Row {
            fault,
            plan,
            call,
            expected,
        });
    };
    // Every attempt faulted: what the SDK's retries end in, as our adapters name it.
    row(
        Fault::ProvisionedThroughputExceeded,
        Call::StoreGet,
        "Store.Unavailable",
        None,
    );
    for fault in transient {
        row(fault, Call::StoreGet, "Store.Unavailable", None);
    }
    row(
        Fault::ProvisionedThroughputExceeded,
        Call::StoreCreate,
        "Store.Unavailable",
        None,
    );
    row(
        Fault::TransactionConflict,
        Call::StoreCreate,
        "Store.Unavailable",
        None,
    );
    for fault in [Fault::Throttling, Fault::ResetAfterForward, Fault::Slow] {
        row(fault, Call::StoreCreate, "Store.Unavailable", None);
    }
    for fault in transient {
        row(fault, Call::Start, "StartError::Unavailable", None);
        row(fault, Call::Secret, "Secret.Unavailable", None);
    }
    // One fault, then the service answers: absorbed by a retry.
    row(Fault::TransactionConflict, Call::StoreCreate, "Ok", Some(1));
    row(Fault::Throttling, Call::StoreCreate, "Ok", Some(2));
    // The transaction committed, its answer was lost: the SDK's retry carries the same
    // ClientRequestToken and is answered success.
    row(Fault::ResetAfterForward, Call::StoreCreate, "Ok", Some(1));
    row(Fault::Slow, Call::StoreCreate, "Ok", Some(1));
    // The execution started, its answer was lost: the retry's ExecutionAlreadyExists is success.
    row(Fault::ResetAfterForward, Call::Start, "Ok", Some(1));
    row(Fault::Slow, Call::Start, "Ok", Some(1));

    // Without the timeouts of `sdk`: a slow answer holds the call (past the Lambda's 30 s).
    let hang = async {
        let mut plan = FaultPlan::always(Fault::Slow, "GetItem");
        plan.slow = Duration::from_secs(120);
        let proxy = FaultProxy::start(resources.moto.endpoint(), plan).await;
        let store = DynamoDbStore::new(
            aws_sdk_dynamodb::Client::new(&sdk_defaults(proxy.endpoint()).await),
            &resources.tables[0],
        );
        let wait = sdk::OPERATION_TIMEOUT + Duration::from_secs(3);
        let result = tokio::time::timeout(wait, store.get(&IncidentId::from_raw("hangs"))).await;
        (result.is_err(), wait, proxy.counts().total_requests())
    };
    let classified = futures_join_all(rows.iter().enumerate().map(|(tag, row)| {
        let resources = &resources;
        async move {
            let started = Instant::now();
            let name = classify(resources, row.plan.clone(), row.call, tag).await;
            (name, started.elapsed())
        }
    }));
    let (classified, (hung, waited, hang_requests)) = tokio::join!(classified, hang);

    let mut wrong = Vec::new();
    for (row, (name, elapsed)) in rows.iter().zip(&classified) {
        println!(
            "{:?} x{} on {:?}: {name} in {:.1} s",
            row.fault,
            row.plan.limit.map_or("all".to_owned(), |n| n.to_string()),
            row.call,
            elapsed.as_secs_f64()
        );
        if name != row.expected {
            wrong.push(format!(
                "{:?} on {:?}: {name}, expected {}",
                row.fault, row.call, row.expected
            ));
        }
        assert!(
            *elapsed < sdk::OPERATION_TIMEOUT + Duration::from_secs(3),
            "{:?} on {:?} took {elapsed:?}: the operation timeout bounds every call",
            row.fault,
            row.call
        );
    }
    assert!(wrong.is_empty(), "misclassified: {wrong:#?}");
    println!(
        "SDK defaults without timeouts: GetItem still waiting after {} s: {hung} ({hang_requests} request)",
        waited.as_secs()
    );
    assert!(
        hung,
        "without sdk::configure a slow answer is waited for (no attempt or operation timeout)"
    );
    assert_eq!(hang_requests, 1, "and never retried");
}

/// `futures::future::join_all` without the crate: every future polled concurrently.
async fn futures_join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut pending = false;
        for (slot, future) in outputs.iter_mut().zip(set.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(output) => *slot = Some(output),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

// --- (b) the soak ----------------------------------------------------------------------------

/// Distinct alarm events; every tenth is INSUFFICIENT_DATA (recorded IGNORED, started never).
const EVENTS: usize = 200;
/// Every third event is delivered twice, as EventBridge may.
const DUPLICATE_EVERY: usize = 3;
/// Concurrent invocations (EventBridge deliveries, workflow executions).
const CONCURRENCY: usize = 48;
/// EventBridge's retries of one event, here.
const DELIVERY_TRIES: usize = 30;
const SOAK_SHARE: f64 = 0.20;
/// Tables the incidents are spread over (by index), each with its own sweepers, as separate
/// stacks would be. For moto's sake: it copies the whole table for every `TransactWriteItems`
/// (its rollback snapshot), and the proxy lets one request per table through at a time; with
/// one table the queue grew past the SDK's attempt timeout (4 s), and the timeouts, not the
/// injected faults, dominated. The code under test is the same for each table.
const SHARDS: usize = 20;
const SOAK_SEED: u64 = 0x5eed_2026;

/// The metric fixture as alarm `name` in `state`, on an EC2 metric (its own episode group).
fn alarm_event(name: &str, state: &str) -> Value {
    let mut event: Value =
        serde_json::from_slice(include_bytes!("../fixtures/metric-alarm.json")).unwrap();
    event["id"] = json!(format!("soak-{name}"));
    event["resources"] = json!([format!(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
    )]);
    event["detail"]["alarmName"] = json!(name);
    event["detail"]["state"]["value"] = json!(state);
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"] = json!({
        "namespace": "AWS/EC2",
        "name": "CPUUtilization",
        "dimensions": {"InstanceId": format!("i-{}", name.to_lowercase())},
    });
    event
}

/// Error names by where they were raised (a Lambda's state, intake, the sweeper, a start).
#[derive(Default)]
struct Tally {
    errors: Mutex<BTreeMap<String, BTreeMap<String, usize>>>,
}

impl Tally {
    fn add(&self, at: &str, name: &str) {
        *self
            .errors
            .lock()
            .unwrap()
            .entry(at.to_owned())
            .or_default()
            .entry(name.to_owned())
            .or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        self.errors.lock().unwrap().clone()
    }
}

/// The store as the Lambdas have it, counting every error it raises to the code above.
struct Counting {
    inner: DynamoDbStore,
    tally: Arc<Tally>,
}

impl Counting {
    fn seen<T>(&self, operation: &str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(error) = &result {
            let kind = match error {
                StoreError::VersionConflict(_) => "VersionConflict",
                StoreError::Unavailable(_) => "Unavailable",
                StoreError::Failed(_) => "Failed",
            };
            self.tally.add(&format!("store.{operation}"), kind);
        }
        result
    }
}

#[async_trait]
impl IncidentStore for Counting {
    async fn create(
        &self,
        incident: &Incident,
        events: &[NewEvent],
    ) -> Result<Created, StoreError> {
        self.seen("create", self.inner.create(incident, events).await)
    }
    async fn append(&self, next: &Incident, event: &NewEvent) -> Result<(), StoreError> {
        self.seen("append", self.inner.append(next, event).await)
    }
    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        self.seen("get", self.inner.get(id).await)
    }
    async fn events(&self, id: &IncidentId) -> Result<Vec<IncidentEvent>, StoreError> {
        self.seen("events", self.inner.events(id).await)
    }
    async fn by_status(
        &self,
        status: IncidentStatus,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        self.seen(
            "by_status",
            self.inner.by_status(status, since, limit).await,
        )
    }
    async fn by_alarm(&self, alarm_name: &str, limit: usize) -> Result<Vec<Incident>, StoreError> {
        self.seen("by_alarm", self.inner.by_alarm(alarm_name, limit).await)
    }
    async fn outbox(
        &self,
        created_before: &str,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        self.seen("outbox", self.inner.outbox(created_before, limit).await)
    }
    async fn episode(&self, group_key: &str) -> Result<Option<Episode>, StoreError> {
        self.seen("episode", self.inner.episode(group_key).await)
    }
    async fn decide(
        &self,
        episode: Option<&Episode>,
        next: &Incident,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        self.seen("decide", self.inner.decide(episode, next, event).await)
    }
    async fn by_group(&self, group_key: &str, limit: usize) -> Result<Vec<Incident>, StoreError> {
        self.seen("by_group", self.inner.by_group(group_key, limit).await)
    }
}

/// The Step Functions starter, counting its failures (intake and the sweeper swallow them).
struct CountingStarter {
    inner: StepFunctionsStarter,
    tally: Arc<Tally>,
}

#[async_trait]
impl WorkflowStarter for CountingStarter {
    async fn start(&self, name: &str, input: &Value) -> Result<String, StartError> {
        let result = self.inner.start(name, input).await;
        match &result {
            Err(StartError::Unavailable(_)) => self.tally.add("start", "StartError::Unavailable"),
            Err(StartError::Failed(_)) => self.tally.add("start", "StartError::Failed"),
            Ok(_) => {}
        }
        result
    }
}

/// One retrier of a state's Retry list in the definition.
struct Retrier {
    errors: Vec<String>,
    max_attempts: u64,
    interval: f64,
    backoff_rate: f64,
    max_delay: Option<f64>,
}

type Retriers = Vec<Retrier>;

fn retriers(state: &str) -> Retriers {
    let definition: Value = serde_json::from_str(DEFINITION).unwrap();
    definition["States"][state]["Retry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|retrier| Retrier {
            errors: retrier["ErrorEquals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|name| name.as_str().unwrap().to_owned())
                .collect(),
            max_attempts: retrier["MaxAttempts"].as_u64().unwrap_or(3),
            interval: retrier["IntervalSeconds"].as_f64().unwrap_or(1.0),
            backoff_rate: retrier["BackoffRate"].as_f64().unwrap_or(2.0),
            max_delay: retrier["MaxDelaySeconds"].as_f64(),
        })
        .collect()
}

fn retried_by(retriers: &Retriers, name: &str) -> Option<usize> {
    retriers.iter().position(|retrier| {
        retrier
            .errors
            .iter()
            .any(|candidate| candidate == name || candidate == "States.ALL")
    })
}

/// How much faster than the definition's retry waits the soak runs them.
const RETRY_TIME_SCALE: f64 = 10.0;

/// A Task state as Step Functions runs it: the call, then its Retry list, with the
/// definition's backoff and full jitter, the waits scaled down by [`RETRY_TIME_SCALE`]. `Err`
/// is the error that ended the state.
async fn task<F, Fut>(
    state: &str,
    retriers: &Retriers,
    tally: &Tally,
    mut call: F,
) -> Result<Value, String>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Value, String>>,
{
    static JITTER: Mutex<Rng> = Mutex::new(Rng(SOAK_SEED));
    let mut used = vec![0; retriers.len()];
    let mut retry_count = 0;
    loop {
        match call(retry_count).await {
            Ok(output) => return Ok(output),
            Err(name) => {
                tally.add(state, &name);
                match retried_by(retriers, &name) {
                    Some(index) if used[index] < retriers[index].max_attempts => {
                        let retrier = &retriers[index];
                        let ceiling =
                            retrier.interval * retrier.backoff_rate.powi(used[index] as i32);
                        let ceiling = retrier.max_delay.map_or(ceiling, |max| ceiling.min(max));
                        let jitter = JITTER.lock().unwrap().unit();
                        used[index] += 1;
                        retry_count += 1;
                        let wait = ceiling * jitter / RETRY_TIME_SCALE;
                        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                    }
                    _ => return Err(name),
                }
            }
        }
    }
}

/// The names a state, intake or the sweeper may raise that nothing retries: under transient
/// faults none of them may appear.
const FINAL: [&str; 5] = [
    "Store.Failed",
    "Payload.Invalid",
    "Enrichment.Failed",
    "Webhook.Permanent",
    "Config.Invalid",
];

/// Pops work off a shared queue with `CONCURRENCY` workers.
async fn in_parallel<T, F, Fut>(items: Vec<T>, work: F)
where
    T: Send + 'static,
    F: Fn(usize, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let queue = Arc::new(Mutex::new(VecDeque::from(items)));
    let work = Arc::new(work);
    let mut workers = Vec::new();
    for worker in 0..CONCURRENCY {
        let (queue, work) = (Arc::clone(&queue), Arc::clone(&work));
        workers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().unwrap().pop_front();
                let Some(item) = next else { break };
                work(worker, item).await;
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
}

/// What the sweeper instances did.
#[derive(Default)]
struct Sweeps {
    passes: usize,
    started: usize,
}

impl Sweeps {
    /// One pass of every sweeper instance, concurrently: instance `k` sweeps table
    /// `k % SHARDS` (two instances per table).
    async fn pass(&mut self, sweepers: &[Instance], tally: &Tally) {
        let reports = futures_join_all(
            sweepers
                .iter()
                .enumerate()
                .map(|(k, sweeper)| sweeper.dispatchers[k % SHARDS].sweep(Duration::ZERO, 100)),
        )
        .await;
        self.passes += 1;
        for report in reports {
            match report {
                Ok(report) => self.started += report.started,
                Err(error) => tally.add("sweeper", error.error_type()),
            }
        }
    }
}

#[derive(Default)]
struct Acks {
    /// Per incident id: the outcomes intake acknowledged.
    outcomes: BTreeMap<String, Vec<&'static str>>,
    /// Deliveries EventBridge would still be retrying.
    unacknowledged: Vec<String>,
    /// Intake invocations, retries included.
    tries: usize,
}

/// One Lambda instance: its own clients, so its own SDK retry state and retry quota (a
/// partition of its own, as a process of its own has), one invocation at a time. The stores
/// and dispatchers are wired as `adapters::aws::dispatcher` wires them, with counting around
/// the store and the starter; one per shard table.
struct Instance {
    stores: Vec<Arc<dyn IncidentStore>>,
    dispatchers: Vec<Dispatcher>,
    intakes: Vec<Intake>,
    deliverer: Deliverer,
    transport: Arc<FakeTransport>,
}

impl Instance {
    fn new(aws: &SdkConfig, name: &str, resources: &Resources, tally: &Arc<Tally>) -> Self {
        let partition = |service: &str| RetryPartition::new(format!("{name}-{service}"));
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(aws)
                .retry_partition(partition("dynamodb"))
                .build(),
        );
        let sfn = aws_sdk_sfn::Client::from_conf(
            aws_sdk_sfn::config::Builder::from(aws)
                .retry_partition(partition("sfn"))
                .build(),
        );
        let secretsmanager = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(aws)
                .retry_partition(partition("secretsmanager"))
                .build(),
        );
        let starter: Arc<dyn WorkflowStarter> = Arc::new(CountingStarter {
            inner: StepFunctionsStarter::new(sfn, &resources.machine),
            tally: tally.clone(),
        });
        let stores: Vec<Arc<dyn IncidentStore>> = resources
            .tables
            .iter()
            .map(|table| {
                Arc::new(Counting {
                    inner: DynamoDbStore::new(dynamodb.clone(), table),
                    tally: tally.clone(),
                }) as Arc<dyn IncidentStore>
            })
            .collect();
        let dispatchers: Vec<Dispatcher> = stores
            .iter()
            .map(|store| Dispatcher::new(store.clone(), starter.clone(), Arc::new(SystemClock)))
            .collect();
        let intakes = dispatchers
            .iter()
            .map(|dispatcher| Intake::new(dispatcher.clone(), Some(Duration::from_secs(86_400))))
            .collect();
        // The secret is read on every Deliver (a TTL of 0), so Secrets Manager sees the load
        // of cold signers.
        let transport = Arc::new(FakeTransport::answering([]));
        let deliverer = Deliverer::new(
            Arc::new(CachedSecretSource::new(
                SecretsManagerFetcher::new(secretsmanager, &resources.secret_arn),
                Arc::new(SystemClock),
                Duration::ZERO,
            )),
            transport.clone(),
            Arc::new(SystemClock),
        );
        Self {
            stores,
            dispatchers,
            intakes,
            deliverer,
            transport,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_under_a_fifth_of_faults_loses_nothing_and_starts_nothing_twice() {
    let began = Instant::now();
    let resources = Arc::new(Resources::create(SHARDS).await);
    let proxy = FaultProxy::start(
        resources.moto.endpoint(),
        FaultPlan {
            share: SOAK_SHARE,
            kinds: Fault::ALL.to_vec(),
            operations: None,
            limit: None,
            slow: SLOW,
            seed: SOAK_SEED,
        },
    )
    .await;
    let aws = lambda_config(proxy.endpoint()).await;
    let tally = Arc::new(Tally::default());
    let instances = |role: &str| -> Arc<Vec<Instance>> {
        Arc::new(
            (0..CONCURRENCY)
                .map(|n| Instance::new(&aws, &format!("{role}-{n}"), &resources, &tally))
                .collect(),
        )
    };

    // The events (shard = index % SHARDS), each distinct one once and every third twice, in a
    // seeded order.
    let events: Arc<Vec<(IncidentId, Value)>> = Arc::new(
        (0..EVENTS)
            .map(|i| {
                let name = format!("Soak-{i:03}");
                let state = if i % 10 == 9 {
                    "INSUFFICIENT_DATA"
                } else {
                    "ALARM"
                };
                let event = alarm_event(&name, state);
                let timestamp = event["detail"]["state"]["timestamp"].as_str().unwrap();
                (IncidentId::new(&name, timestamp), event)
            })
            .collect(),
    );
    let mut deliveries: Vec<usize> = (0..EVENTS)
        .chain((0..EVENTS).filter(|i| i % DUPLICATE_EVERY == 0))
        .collect();
    let mut rng = Rng(SOAK_SEED);
    for i in (1..deliveries.len()).rev() {
        deliveries.swap(i, rng.below(i + 1));
    }
    let duplicates = deliveries.len() - EVENTS;

    // 1. Intake: EventBridge retries every delivery intake did not acknowledge. Two sweeper
    // instances per table run beside it with no grace period, racing intake for fresh
    // incidents.
    let acks = Arc::new(Mutex::new(Acks::default()));
    let sweepers: Vec<Instance> = (0..2 * SHARDS)
        .map(|k| Instance::new(&aws, &format!("sweeper-{k}"), &resources, &tally))
        .collect();
    let mut sweeps = Sweeps::default();
    let intaking = AtomicBool::new(true);
    let intake_phase = {
        let (intake, tally, acks, events) = (
            instances("intake"),
            tally.clone(),
            acks.clone(),
            events.clone(),
        );
        let intaking = &intaking;
        async move {
            in_parallel(deliveries, move |worker, index| {
                let (intake, tally, acks, events) =
                    (intake.clone(), tally.clone(), acks.clone(), events.clone());
                async move {
                    let (id, event) = &events[index];
                    let intake = &intake[worker].intakes[index % SHARDS];
                    let raw = serde_json::to_vec(event).unwrap();
                    for attempt in 1..=DELIVERY_TRIES {
                        acks.lock().unwrap().tries += 1;
                        match intake.handle(&raw).await {
                            Ok(outcome) => {
                                let kind = match outcome {
                                    IntakeOutcome::Recorded { .. } => "recorded",
                                    IntakeOutcome::Duplicate { .. } => "duplicate",
                                    IntakeOutcome::Conflict { .. } => "conflict",
                                    IntakeOutcome::Rejected { .. } => "rejected",
                                };
                                let mut acks = acks.lock().unwrap();
                                acks.outcomes.entry(id.to_string()).or_default().push(kind);
                                return;
                            }
                            Err(error) => {
                                tally.add("intake", error.error_type());
                                // EventBridge backs off too (here 50 ms more each time).
                                tokio::time::sleep(Duration::from_millis(50 * attempt as u64))
                                    .await;
                            }
                        }
                    }
                    acks.lock().unwrap().unacknowledged.push(id.to_string());
                }
            })
            .await;
            intaking.store(false, Ordering::SeqCst);
        }
    };
    let sweeping = async {
        while intaking.load(Ordering::SeqCst) {
            sweeps.pass(&sweepers, &tally).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    tokio::join!(intake_phase, sweeping);
    let intake_done = began.elapsed();
    let after_intake = proxy.counts();

    // 2. The sweepers again until every outbox is empty (read directly).
    for _ in 0..60 {
        if resources.outbox_is_empty().await {
            break;
        }
        sweeps.pass(&sweepers, &tally).await;
    }
    assert!(resources.outbox_is_empty().await, "the outbox is empty");
    let sweep_done = began.elapsed();
    let after_sweep = proxy.counts();
    let Sweeps {
        passes,
        started: swept,
    } = sweeps;

    // 3. Every ALARM incident's workflow: Enrich, Correlate, Deliver, Record, each with the
    // definition's Retry list.
    let alarms: Vec<usize> = (0..EVENTS)
        .filter(|i| events[*i].1["detail"]["state"]["value"] == "ALARM")
        .collect();
    let workers = instances("workflow");
    let ended: Arc<Mutex<BTreeMap<String, Ending>>> = Arc::default();
    {
        let (workers, tally, events, ended) = (
            workers.clone(),
            tally.clone(),
            events.clone(),
            ended.clone(),
        );
        let machine = resources.machine.clone();
        in_parallel(alarms.clone(), move |worker, index| {
            let (workers, tally, events, ended, machine) = (
                workers.clone(),
                tally.clone(),
                events.clone(),
                ended.clone(),
                machine.clone(),
            );
            async move {
                let (id, event) = &events[index];
                let instance = &workers[worker];
                let ending = workflow(
                    id,
                    event,
                    instance.stores[index % SHARDS].as_ref(),
                    &instance.deliverer,
                    &tally,
                    &machine,
                )
                .await;
                ended.lock().unwrap().insert(id.to_string(), ending);
            }
        })
        .await;
    }
    let workflow_done = began.elapsed();

    // What moto holds, read directly.
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    assert!(
        acks.unacknowledged.is_empty(),
        "deliveries never acknowledged: {:?}",
        acks.unacknowledged
    );
    let mut keys = resources.state_items().await;
    keys.sort();
    let mut expected_keys: Vec<String> = events
        .iter()
        .map(|(id, _)| format!("INCIDENT#{id}"))
        .collect();
    expected_keys.sort();
    assert_eq!(keys, expected_keys, "every incident exactly once");

    let executions = resources.executions().await;
    let mut started: BTreeMap<String, usize> = BTreeMap::new();
    for name in &executions {
        *started.entry(name.clone()).or_default() += 1;
    }
    let ended = std::mem::take(&mut *ended.lock().unwrap());
    let mut problems = Vec::new();
    let (mut enriched_twice, mut caught, mut attempts_more, mut attempts_total) = (0, 0, 0, 0);
    for (index, (id, event)) in events.iter().enumerate() {
        let direct = resources.direct_store(index % SHARDS);
        let incident = direct.get(id).await.unwrap().expect("recorded");
        let log = direct.events(id).await.unwrap();
        let count = |kind: EventType| log.iter().filter(|entry| entry.kind == kind).count();
        let received: Vec<&IncidentEvent> = log
            .iter()
            .filter(|entry| entry.kind == EventType::Received)
            .collect();
        if received.len() != 1 || received[0].data["event"] != *event {
            problems.push(format!(
                "{id}: Received {} times or altered",
                received.len()
            ));
        }
        if count(EventType::Conflict) > 0 {
            problems.push(format!("{id}: a Conflict for an identical copy"));
        }
        let outcomes = acks.outcomes.get(id.as_str()).cloned().unwrap_or_default();
        if outcomes.iter().filter(|kind| **kind == "recorded").count() > 1
            || outcomes
                .iter()
                .any(|kind| *kind != "recorded" && *kind != "duplicate")
        {
            problems.push(format!("{id}: acknowledged as {outcomes:?}"));
        }
        let runs = started.get(&incident.execution_name).copied().unwrap_or(0);
        if event["detail"]["state"]["value"] != "ALARM" {
            if runs != 0 || incident.status != IncidentStatus::Ignored {
                problems.push(format!("{id}: {} with {runs} executions", incident.status));
            }
            continue;
        }
        if runs != 1 || count(EventType::ExecutionStarted) != 1 {
            problems.push(format!(
                "{id}: {runs} executions, {} ExecutionStarted",
                count(EventType::ExecutionStarted)
            ));
        }
        let ending = ended.get(id.as_str());
        if incident.status != IncidentStatus::Delivered
            || count(EventType::Delivered) != 1
            || count(EventType::Correlated) != 1
            || count(EventType::DeliveryAttempted) == 0
            || ending.map(|ending| ending.end.as_str()) != Some("delivered")
        {
            problems.push(format!(
                "{id}: {} ({ending:?}), Correlated {}, DeliveryAttempted {}, Delivered {}",
                incident.status,
                count(EventType::Correlated),
                count(EventType::DeliveryAttempted),
                count(EventType::Delivered)
            ));
        }
        let enrich_caught = ending.is_some_and(|ending| ending.enrich_caught);
        if count(EventType::Enriched) == 0 && !enrich_caught {
            problems.push(format!("{id}: no Enriched record"));
        }
        caught += usize::from(enrich_caught);
        enriched_twice += usize::from(count(EventType::Enriched) > 1);
        attempts_more += usize::from(count(EventType::DeliveryAttempted) > 1);
        attempts_total += count(EventType::DeliveryAttempted);
    }
    assert_eq!(
        executions.len(),
        alarms.len(),
        "one execution per ALARM incident"
    );

    // Every error raised to a caller: a name its caller retries, or one of FINAL (none here).
    let errors = tally.snapshot();
    let mut unexpected = Vec::new();
    for (at, names) in &errors {
        for (name, count) in names {
            let retried = match at.as_str() {
                "intake" | "sweeper" => name == "Store.Unavailable",
                "start" => name == "StartError::Unavailable",
                store if store.starts_with("store.") => name != "Failed",
                state => retried_by(&retriers(state), name).is_some(),
            };
            if !retried {
                let kind = if FINAL.contains(&name.as_str()) {
                    "final"
                } else {
                    "unknown"
                };
                unexpected.push(format!("{at}: {name} x{count} ({kind})"));
            }
        }
    }

    let counts = proxy.counts();
    let posts: usize = workers
        .iter()
        .map(|worker| worker.transport.sent().len())
        .sum();
    let joined = |items: Vec<String>| items.join(", ");
    let (alarm_count, other_count) = (alarms.len(), EVENTS - alarms.len());
    let (tries, sweeper_count) = (acks.tries, sweepers.len());
    let requests = counts.total_requests();
    let by_service = joined(
        counts
            .requests
            .iter()
            .map(|(service, n)| format!("{} {n}", service.name()))
            .collect(),
    );
    let injected = counts.total_injected();
    let share = 100.0 * injected as f64 / requests.max(1) as f64;
    let by_kind = joined(
        counts
            .injected
            .iter()
            .map(|(fault, n)| format!("{fault:?} {n}"))
            .collect(),
    );
    let injected_by_service = joined(
        counts
            .injected_by_service
            .iter()
            .map(|(service, n)| format!("{} {n}", service.name()))
            .collect(),
    );
    let replays = counts.token_replays;
    let execution_count = executions.len();
    let unretried = unexpected.len();
    let intake_s = intake_done.as_secs_f64();
    let intake_requests = after_intake.total_requests();
    let sweep_s = (sweep_done - intake_done).as_secs_f64();
    let sweep_requests = after_sweep.total_requests() - intake_requests;
    let workflow_s = (workflow_done - sweep_done).as_secs_f64();
    let workflow_requests = requests - after_sweep.total_requests();
    println!(
        "soak: {EVENTS} distinct events ({alarm_count} ALARM, {other_count} INSUFFICIENT_DATA) \
         + {duplicates} duplicates in {SHARDS} tables, {CONCURRENCY} concurrent instances, \
         {tries} intake invocations; {requests} requests ({by_service}), {injected} faults \
         injected ({share:.1}%: {by_kind}; {injected_by_service}), {replays} token replays; {sweeper_count} sweepers, \
         {passes} passes (beside intake, then alone), {swept} started; {execution_count} \
         executions, each once; Enrich caught {caught}, {enriched_twice} incidents Enriched \
         twice; {attempts_total} DeliveryAttempted ({attempts_more} incidents >1), {posts} \
         webhook POSTs; {unretried} errors nothing retries; intake and sweepers {intake_s:.1} s \
         ({intake_requests} requests), sweepers after {sweep_s:.1} s ({sweep_requests}), \
         workflow {workflow_s:.1} s ({workflow_requests})"
    );
    for (at, names) in &errors {
        let names = joined(
            names
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect(),
        );
        println!("soak errors raised by {at}: {names}");
    }
    let slowest: Vec<String> = counts
        .moto
        .iter()
        .map(|(operation, (n, total))| {
            format!(
                "{operation} {n} x {:.1} ms",
                total.as_secs_f64() * 1000.0 / *n as f64
            )
        })
        .collect();
    println!("soak moto time per request: {}", joined(slowest));
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        unexpected.is_empty(),
        "errors nothing retries: {unexpected:#?}"
    );
}

/// How one execution ended.
#[derive(Debug, Clone)]
struct Ending {
    /// `delivered`, `done: …` or `failed at STATE: ERROR`.
    end: String,
    /// Enrich ran out of retries and its Catch went on without enrichment.
    enrich_caught: bool,
}

/// One execution's store calls, as the definition runs them. Answers how it ended.
async fn workflow(
    id: &IncidentId,
    event: &Value,
    store: &dyn IncidentStore,
    deliverer: &Deliverer,
    tally: &Tally,
    machine: &str,
) -> Ending {
    let input = execution_input(id, event);
    let (enrich_retry, correlate_retry, deliver_retry, record_retry) = (
        retriers("Enrich"),
        retriers("Correlate"),
        retriers("Deliver"),
        retriers("Record"),
    );
    let enrich_input = json!({ "incidentId": input["incidentId"], "event": input["event"] });
    let mut enrich_caught = false;
    let ending = |end: String, enrich_caught: bool| Ending { end, enrich_caught };
    let enriched = match task("Enrich", &enrich_retry, tally, |_| {
        let input = enrich_input.clone();
        async move {
            enrich::handle(
                input,
                &OfflineAlarmSource,
                &NetworkSettings::default(),
                store,
                &SystemClock,
            )
            .await
            .map_err(|error| error.error_type().to_owned())
        }
    })
    .await
    {
        Ok(enrichment) => json!({ "enrichment": enrichment }),
        // Catch States.ALL: delivery goes on without enrichment.
        Err(name) => {
            enrich_caught = true;
            json!({ "Error": name, "Cause": "caught" })
        }
    };

    let correlate_input = json!({
        "step": "Correlate", "incidentId": input["incidentId"], "event": input["event"],
        "enriched": enriched,
    });
    let decision = match task("Correlate", &correlate_retry, tally, |_| {
        let input = correlate_input.clone();
        async move {
            recorder::invoke(&input, &CorrelationConfig::default(), store, &SystemClock)
                .await
                .map_err(|error| error.error_type().to_owned())
        }
    })
    .await
    {
        Ok(decision) => decision,
        Err(name) => return ending(format!("failed at Correlate: {name}"), enrich_caught),
    };
    match decision["action"].as_str() {
        Some("created" | "updated") => {}
        other => return ending(format!("done: {other:?}"), enrich_caught),
    }

    let execution_arn = format!(
        "{}:{id}",
        machine.replacen(":stateMachine:", ":execution:", 1)
    );
    let record = match task("Deliver", &deliver_retry, tally, |retry_count| {
        let input = json!({
            "incidentId": input["incidentId"], "event": input["event"], "enriched": enriched,
            "execution": {"arn": execution_arn, "retryCount": retry_count},
            "correlation": decision,
        });
        async move {
            signer::handle(
                input,
                deliverer,
                &RoutingConfig::default(),
                store,
                &SystemClock,
            )
            .await
            .map(|record| serde_json::to_value(record).unwrap())
            .map_err(|error| error.name.as_str().to_owned())
        }
    })
    .await
    {
        Ok(record) => record,
        Err(name) => return ending(format!("failed at Deliver: {name}"), enrich_caught),
    };

    let record_input =
        json!({ "incidentId": input["incidentId"], "delivery": record, "correlation": decision });
    match task("Record", &record_retry, tally, |_| {
        let input = record_input.clone();
        async move {
            recorder::invoke(&input, &CorrelationConfig::default(), store, &SystemClock)
                .await
                .map_err(|error| error.error_type().to_owned())
        }
    })
    .await
    {
        Ok(_) => ending("delivered".to_owned(), enrich_caught),
        Err(name) => ending(format!("failed at Record: {name}"), enrich_caught),
    }
}

#[test]
fn the_fault_sequence_is_the_seeds_and_every_answer_is_a_service_document() {
    let draws = |seed| {
        let mut rng = Rng(seed);
        (0..5).map(|_| rng.next()).collect::<Vec<_>>()
    };
    assert_eq!(draws(7), draws(7));
    assert_ne!(draws(7), draws(8));
    let mut rng = Rng(SOAK_SEED);
    let share = (0..10_000).filter(|_| rng.unit() < SOAK_SHARE).count();
    assert!((1_800..2_200).contains(&share), "{share}");

    let request = b"POST / HTTP/1.1\r\nContent-Length: 45\r\n\r\n{\"TransactItems\": [{\"Put\": {}}, {\"Put\": {}}]}";
    for service in [
        Service::DynamoDb,
        Service::StepFunctions,
        Service::SecretsManager,
    ] {
        for fault in Fault::ALL {
            let operation = match service {
                Service::DynamoDb => "TransactWriteItems",
                _ => "Other",
            };
            if !fault.applies_to(service, operation) {
                continue;
            }
            let answer = error_answer(fault, service, request);
            let connection_level = matches!(
                fault,
                Fault::ResetBeforeForward | Fault::ResetAfterForward | Fault::Slow
            );
            assert_eq!(answer.is_none(), connection_level, "{fault:?} {service:?}");
            let Some(answer) = answer.filter(|_| fault != Fault::BadGateway) else {
                continue;
            };
            let body = body_json(&answer);
            let code = body["__type"].as_str().unwrap();
            assert!(!code.is_empty(), "{fault:?} {service:?}");
            if fault == Fault::TransactionConflict {
                assert_eq!(
                    body["CancellationReasons"],
                    json!([{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item."}, {"Code": "None"}])
                );
            }
        }
    }
}
