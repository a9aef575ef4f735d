//! The DynamoDB incident store against moto's DynamoDB: the shared contract, then what the
//! contract cannot see — the table as created, the raw items (keys, the sparse `outbox`, no
//! `alarmName` for rejected inputs, event data as text, the EPISODE item and the sparse
//! `groupKey`), reads longer than one page or one transaction, retried transaction conflicts,
//! and the classification of failures.

use crate::moto::Moto;
use alarm_relay::adapters::aws::{DynamoDbStore, sdk};
use alarm_relay::episode::{Episode, Member};
use alarm_relay::event::{AlarmEvent, IncidentId};
use alarm_relay::incident::{self, Correlation, EventType, Incident, IncidentStatus, NewEvent};
use alarm_relay::ports::{Created, IncidentStore, StoreError};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, ProjectionType, TimeToLiveStatus,
};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(sdk::https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .build();
    Client::from_conf(config)
}

/// A new table with a name unique in this process.
async fn fresh_table(client: &Client) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("incidents-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    DynamoDbStore::create_table(client, &name)
        .await
        .expect("moto creates the table");
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_store_honours_the_contract() {
    let moto = Moto::start();
    let proxy = SerialProxy::start(moto.endpoint()).await;
    let client = client(proxy.endpoint());
    crate::store_contract::run_contract(|| {
        let client = client.clone();
        async move {
            let table = fresh_table(&client).await;
            Arc::new(DynamoDbStore::new(client, table)) as Arc<dyn IncidentStore>
        }
    })
    .await;
}

/// A loopback HTTP/1.1 proxy in front of moto that forwards one request at a time, and can
/// answer the next requests of one operation with canned responses instead.
///
/// Why serialise: moto applies `TransactWriteItems` without a lock. Two concurrent transactions
/// can both pass `attribute_not_exists(pk)` or `version = :v`, and a cancelled one restores a
/// snapshot of the whole table taken before a concurrent commit, erasing that commit (measured:
/// 2 of 20 contract runs had two winning appends, or a create cancelled as
/// `[None, ConditionalCheckFailed, ConditionalCheckFailed]`). DynamoDB executes each request
/// atomically; serialising requests gives moto the same property while requests from
/// concurrent writers still interleave.
/// Canned responses: the operation they answer, and the raw HTTP response.
type Canned = VecDeque<(String, Vec<u8>)>;

struct SerialProxy {
    endpoint: String,
    canned: Arc<Mutex<Canned>>,
    accept: tokio::task::JoinHandle<()>,
}

impl SerialProxy {
    async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("moto's endpoint is http://ip:port");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let canned = Arc::new(Mutex::new(VecDeque::new()));
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        let shared = Arc::clone(&canned);
        let accept = tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                let (turn, canned) = (Arc::clone(&turn), Arc::clone(&shared));
                tokio::spawn(async move {
                    let _ = forward(connection, upstream, &turn, &canned).await;
                });
            }
        });
        Self {
            endpoint,
            canned,
            accept,
        }
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Answers the next request for `operation` (e.g. `TransactWriteItems`) with a DynamoDB
    /// error: HTTP `status`, JSON `body`.
    fn inject(&self, operation: &str, status: u16, body: serde_json::Value) {
        let body = body.to_string();
        let response = format!(
            "HTTP/1.1 {status} Injected\r\nContent-Type: application/x-amz-json-1.0\r\n\
             Content-Length: {}\r\nx-amzn-RequestId: injected\r\n\r\n{body}",
            body.len()
        );
        self.canned
            .lock()
            .unwrap()
            .push_back((operation.to_owned(), response.into_bytes()));
    }

    fn injected_left(&self) -> usize {
        self.canned.lock().unwrap().len()
    }
}

impl Drop for SerialProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn forward(
    connection: TcpStream,
    upstream: SocketAddr,
    turn: &tokio::sync::Mutex<()>,
    canned: &Mutex<Canned>,
) -> std::io::Result<()> {
    let mut client = BufReader::new(connection);
    while let Some(request) = read_message(&mut client).await? {
        let target = String::from_utf8_lossy(&request)
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("x-amz-target")
                    .then(|| value.trim().rsplit('.').next().unwrap_or("").to_owned())
            })
            .unwrap_or_default();
        let injected = {
            let mut canned = canned.lock().unwrap();
            let position = canned
                .iter()
                .position(|(operation, _)| *operation == target);
            position.and_then(|position| canned.remove(position))
        };
        let response = match injected {
            Some((_, response)) => response,
            None => {
                let _turn = turn.lock().await;
                let mut moto = BufReader::new(TcpStream::connect(upstream).await?);
                moto.get_mut().write_all(&request).await?;
                read_message(&mut moto)
                    .await?
                    .ok_or_else(|| std::io::Error::other("moto closed without a response"))?
            }
        };
        client.get_mut().write_all(&response).await?;
    }
    Ok(())
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

#[tokio::test]
async fn transaction_conflicts_are_retried_then_reported_unavailable() {
    let moto = Moto::start();
    let proxy = SerialProxy::start(moto.endpoint()).await;
    let client = client(proxy.endpoint());
    let store = DynamoDbStore::new(client.clone(), fresh_table(&client).await);
    let conflict = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]",
        "CancellationReasons": [
            {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item."},
            {"Code": "None"}
        ]
    });

    // Two conflicts, then the transaction goes through.
    let (incident, first) = received();
    proxy.inject("TransactWriteItems", 400, conflict.clone());
    proxy.inject("TransactWriteItems", 400, conflict.clone());
    assert_eq!(
        store.create(&incident, std::slice::from_ref(&first)).await,
        Ok(Created::New)
    );
    assert_eq!(proxy.injected_left(), 0);

    // Conflicts on every attempt: Unavailable, naming the code; nothing written.
    let mut next = incident.advance(at(1));
    next.status = IncidentStatus::Started;
    let event = NewEvent::new(EventType::ExecutionStarted, at(1), json!({}));
    for _ in 0..10 {
        proxy.inject("TransactWriteItems", 400, conflict.clone());
    }
    let error = store.append(&next, &event).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    assert!(error.to_string().contains("TransactionConflict"), "{error}");
    assert!(proxy.injected_left() > 0, "a bounded number of attempts");
    proxy.canned.lock().unwrap().clear();
    assert_eq!(
        store.get(&incident.incident_id).await,
        Ok(Some(incident.clone()))
    );

    // Throttling outlasting the SDK's retries, and a server fault, are Unavailable too.
    for _ in 0..5 {
        proxy.inject(
            "GetItem",
            400,
            json!({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow down"}),
        );
    }
    let error = store.get(&incident.incident_id).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    assert!(error.to_string().contains("ThrottlingException"), "{error}");
    proxy.canned.lock().unwrap().clear();
    for _ in 0..5 {
        proxy.inject(
            "Query",
            500,
            json!({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "oops"}),
        );
    }
    let error = store.by_alarm(&incident.alarm_name, 10).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    proxy.canned.lock().unwrap().clear();

    // A cancellation for a validation error is not worth retrying.
    proxy.inject(
        "TransactWriteItems",
        400,
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled",
            "CancellationReasons": [{"Code": "ValidationError", "Message": "item data here"}, {"Code": "None"}]
        }),
    );
    let error = store.append(&next, &event).await.unwrap_err();
    assert!(matches!(error, StoreError::Failed(_)), "{error}");
    assert!(!error.to_string().contains("item data"), "{error}");
    assert_eq!(store.append(&next, &event).await, Ok(()));
}

fn at(seconds: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
        + chrono::Duration::seconds(seconds.into())
}

const RAW: &[u8] = include_bytes!("../fixtures/metric-alarm.json");

/// The fixture's incident (RECEIVED, with a TTL) and its first event.
fn received() -> (Incident, NewEvent) {
    let event = AlarmEvent::parse(RAW).unwrap();
    let mut incident =
        incident::received(&event, RAW, at(0), Some(Duration::from_secs(86_400)), false);
    assert_eq!(
        incident.status,
        IncidentStatus::Received,
        "an ALARM fixture"
    );
    incident.event_count = 1;
    let first = NewEvent::new(EventType::Received, at(0), event.raw().clone());
    (incident, first)
}

/// A variation of the fixture's incident: another id, alarm, status and creation time.
fn variant(alarm: &str, created: u32, status: IncidentStatus) -> Incident {
    let (mut incident, _) = received();
    incident.incident_id = IncidentId::new(alarm, &incident::timestamp(at(created)));
    incident.alarm_name = alarm.to_owned();
    incident.status = status;
    incident.created_at = incident::timestamp(at(created));
    incident.updated_at = incident.created_at.clone();
    incident.event_count = 0;
    incident
}

async fn raw_item(
    client: &Client,
    table: &str,
    pk: &str,
    sk: &str,
) -> HashMap<String, AttributeValue> {
    client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no item {pk} {sk}"))
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

#[tokio::test]
async fn the_table_has_the_documented_keys_indexes_and_ttl() {
    let moto = Moto::start();
    let client = client(moto.endpoint());
    let table = fresh_table(&client).await;
    let description = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        schema
            .iter()
            .map(|key| (key.attribute_name().to_owned(), key.key_type().clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(description.key_schema()),
        [("pk".into(), KeyType::Hash), ("sk".into(), KeyType::Range)]
    );
    assert_eq!(
        description
            .billing_mode_summary()
            .and_then(|summary| summary.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let mut indexes: Vec<_> = description
        .global_secondary_indexes()
        .iter()
        .map(|index| {
            assert_eq!(
                index.projection().and_then(|p| p.projection_type()),
                Some(&ProjectionType::All)
            );
            (
                index.index_name().unwrap().to_owned(),
                keys(index.key_schema()),
            )
        })
        .collect();
    indexes.sort();
    let pair = |hash: &str, range: &str| {
        vec![
            (hash.to_owned(), KeyType::Hash),
            (range.to_owned(), KeyType::Range),
        ]
    };
    assert_eq!(
        indexes,
        [
            ("ByAlarm".to_owned(), pair("alarmName", "createdAt")),
            ("ByGroup".to_owned(), pair("groupKey", "createdAt")),
            ("ByStatus".to_owned(), pair("status", "updatedAt")),
            ("Outbox".to_owned(), pair("outbox", "createdAt")),
        ]
    );

    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("expiresAt"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test]
async fn items_have_the_documented_layout() {
    let moto = Moto::start();
    let client = client(moto.endpoint());
    let table = fresh_table(&client).await;
    let store = DynamoDbStore::new(client.clone(), table.clone());

    // GIVEN a RECEIVED incident with a TTL and its raw event
    let (incident, first) = received();
    assert_eq!(
        store
            .create(&incident, std::slice::from_ref(&first))
            .await
            .unwrap(),
        Created::New
    );
    let pk = format!("INCIDENT#{}", incident.incident_id);
    let expires = incident.expires_at.unwrap();

    // THEN the projection carries the keys, every field, and the outbox marker
    let state = raw_item(&client, &table, &pk, "STATE").await;
    assert_eq!(state["pk"], s(&pk));
    assert_eq!(state["sk"], s("STATE"));
    assert_eq!(state["outbox"], s("PENDING"));
    assert_eq!(state["status"], s("RECEIVED"));
    assert_eq!(state["alarmName"], s(&incident.alarm_name));
    assert_eq!(state["createdAt"], s(&incident.created_at));
    assert_eq!(state["updatedAt"], s(&incident.updated_at));
    assert_eq!(state["incidentId"], s(incident.incident_id.as_str()));
    assert_eq!(state["version"], n(1));
    assert_eq!(state["eventCount"], n(1));
    assert_eq!(state["expiresAt"], n(expires));
    assert!(!state.contains_key("executionArn"), "None is left out");

    // AND the event keeps its data as the exact JSON text, and the incident's expiry
    let event = raw_item(&client, &table, &pk, "EVENT#0000000001").await;
    assert_eq!(event["seq"], n(1));
    assert_eq!(event["type"], s("Received"));
    assert_eq!(event["at"], s(&first.at));
    assert_eq!(event["expiresAt"], n(expires));
    let text = serde_json::to_string(&first.data).unwrap();
    assert_eq!(event["data"], s(&text));
    assert_eq!(
        text,
        serde_json::to_string(&serde_json::from_slice::<serde_json::Value>(RAW).unwrap()).unwrap()
    );

    // WHEN the workflow starts, the outbox marker goes
    let mut started = incident.advance(at(5));
    started.status = IncidentStatus::Started;
    started.execution_arn = Some("arn:aws:states:us-east-1:1:execution:m:x".into());
    let start = NewEvent::new(
        EventType::ExecutionStarted,
        at(5),
        serde_json::from_str(r#"{"n":1.50}"#).unwrap(),
    );
    store.append(&started, &start).await.unwrap();
    let state = raw_item(&client, &table, &pk, "STATE").await;
    assert!(!state.contains_key("outbox"));
    assert_eq!(state["status"], s("STARTED"));
    assert_eq!(state["version"], n(2));
    let second = raw_item(&client, &table, &pk, "EVENT#0000000002").await;
    assert_eq!(
        second["data"],
        s(r#"{"n":1.50}"#),
        "number literals survive"
    );

    // AND a rejected input has no alarmName (so it is in neither ByAlarm nor Outbox)
    let rejected = incident::rejected(b"{not json", at(9), None);
    store.create(&rejected, &[]).await.unwrap();
    let state = raw_item(
        &client,
        &table,
        &format!("INCIDENT#{}", rejected.incident_id),
        "STATE",
    )
    .await;
    assert!(!state.contains_key("alarmName"));
    assert!(!state.contains_key("outbox"));
    assert!(!state.contains_key("expiresAt"));
    assert_eq!(
        store.get(&rejected.incident_id).await.unwrap(),
        Some(rejected.clone())
    );
    let by_alarm = client
        .scan()
        .table_name(&table)
        .index_name("ByAlarm")
        .send()
        .await
        .unwrap();
    assert_eq!(by_alarm.count(), 1, "only the alarm's incident");
    let by_status = client
        .scan()
        .table_name(&table)
        .index_name("ByStatus")
        .send()
        .await
        .unwrap();
    assert_eq!(by_status.count(), 2, "every projection, no event");
    let outbox = client
        .scan()
        .table_name(&table)
        .index_name("Outbox")
        .send()
        .await
        .unwrap();
    assert_eq!(outbox.count(), 0);
}

#[tokio::test]
async fn episode_items_have_the_documented_layout() {
    let moto = Moto::start();
    let client = client(moto.endpoint());
    let table = fresh_table(&client).await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let group = "monitor:arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/eks-db";

    // GIVEN a decided incident (its episode with one member) and an undecided one
    let (incident, first) = received();
    store
        .create(&incident, std::slice::from_ref(&first))
        .await
        .unwrap();
    let undecided = variant("Other", 60, IncidentStatus::Received);
    store.create(&undecided, &[]).await.unwrap();
    let opened_at = at(0);
    let episode = Episode {
        group_key: group.to_owned(),
        number: 1,
        primary_incident_id: incident.incident_id.clone(),
        primary_alarm_name: incident.alarm_name.clone(),
        opened_at,
        last_transition_at: opened_at,
        members: vec![Member {
            alarm: incident.alarm_arn.clone(),
            alarm_name: incident.alarm_name.clone(),
            incident_id: incident.incident_id.clone(),
            last_alarm_at: opened_at,
            last_ok_at: None,
        }],
        updates: 0,
        resolve_pending: None,
        resolved_at: None,
        version: 1,
    };
    let mut next = incident.advance(at(2));
    next.correlation = Some(Correlation {
        group_key: group.to_owned(),
        primary_incident_id: incident.incident_id.clone(),
        decision: "opened".to_owned(),
        members: vec![incident.alarm_name.clone()],
    });
    let event = NewEvent::new(EventType::Correlated, at(2), json!({"decision": "opened"}));
    store.decide(Some(&episode), &next, &event).await.unwrap();

    // THEN the EPISODE item is keyed by the group and carries the episode under its serde names,
    // optional fields left out
    let item = raw_item(&client, &table, &format!("EPISODE#{group}"), "STATE").await;
    assert_eq!(item["groupKey"], s(group));
    assert_eq!(item["number"], n(1));
    assert_eq!(item["version"], n(1));
    assert_eq!(item["updates"], n(0));
    assert_eq!(item["primaryIncidentId"], s(incident.incident_id.as_str()));
    assert_eq!(item["primaryAlarmName"], s(&incident.alarm_name));
    assert!(matches!(&item["members"], AttributeValue::L(members) if members.len() == 1));
    assert!(!item.contains_key("resolvePending"));
    assert!(!item.contains_key("resolvedAt"));
    assert!(
        !item.contains_key("createdAt"),
        "so the episode is in no index"
    );

    // AND the decided projection carries groupKey (it is in ByGroup); the undecided one does not
    let state = raw_item(
        &client,
        &table,
        &format!("INCIDENT#{}", incident.incident_id),
        "STATE",
    )
    .await;
    assert_eq!(state["groupKey"], s(group));
    let other = raw_item(
        &client,
        &table,
        &format!("INCIDENT#{}", undecided.incident_id),
        "STATE",
    )
    .await;
    assert!(!other.contains_key("groupKey"));
    let by_group = client
        .scan()
        .table_name(&table)
        .index_name("ByGroup")
        .send()
        .await
        .unwrap();
    assert_eq!(by_group.count(), 1, "only the decided projection");
    assert_eq!(
        by_group.items()[0]["pk"],
        s(&format!("INCIDENT#{}", incident.incident_id))
    );
}

#[tokio::test]
async fn long_logs_and_queries_follow_every_page() {
    let moto = Moto::start();
    let client = client(moto.endpoint());
    let store = DynamoDbStore::new(client.clone(), fresh_table(&client).await);

    // GIVEN one incident with 120 events (more than one transaction could write at once)
    let (incident, first) = received();
    store.create(&incident, &[first]).await.unwrap();
    let mut current = incident.clone();
    for step in 0..119 {
        let next = current.advance(at(step + 1));
        let event = NewEvent::new(
            EventType::DeliveryAttempted,
            at(step + 1),
            json!({"step": step}),
        );
        store.append(&next, &event).await.unwrap();
        current = next;
    }
    let events = store.events(&incident.incident_id).await.unwrap();
    assert_eq!(events.len(), 120);
    assert!(events.iter().zip(1..).all(|(event, seq)| event.seq == seq));
    assert_eq!(events[119].data, json!({"step": 118}));

    // AND 30 FAILED incidents of one alarm
    for i in 0..30 {
        let failed = variant("Busy", 1000 + i, IncidentStatus::Failed);
        store.create(&failed, &[]).await.unwrap();
    }
    let newest = store
        .by_status(IncidentStatus::Failed, None, 25)
        .await
        .unwrap();
    assert_eq!(newest.len(), 25);
    assert_eq!(newest[0].created_at, incident::timestamp(at(1029)));
    assert!(
        newest
            .windows(2)
            .all(|pair| pair[0].updated_at > pair[1].updated_at)
    );
    let since = incident::timestamp(at(1020));
    assert_eq!(
        store
            .by_status(IncidentStatus::Failed, Some(&since), 100)
            .await
            .unwrap()
            .len(),
        10
    );
    assert_eq!(store.by_alarm("Busy", 1000).await.unwrap().len(), 30);
    assert_eq!(store.by_alarm("Busy", 0).await.unwrap(), []);

    // AND items big enough that a query page (1 MB) cannot hold them all
    let big = "x".repeat(300_000);
    let mut large = variant("Large", 2000, IncidentStatus::Received);
    large.event_count = 5;
    let events: Vec<_> = (0..5)
        .map(|i| {
            NewEvent::new(
                EventType::Enriched,
                at(2000 + i),
                json!({"i": i, "pad": big}),
            )
        })
        .collect();
    store.create(&large, &events).await.unwrap();
    let read = store.events(&large.incident_id).await.unwrap();
    assert_eq!(
        read.iter().map(|e| e.data["i"].clone()).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    for i in 0..5 {
        let mut failed = variant("Large", 3000 + i, IncidentStatus::Failed);
        failed.last_error = Some(big.clone());
        store.create(&failed, &[]).await.unwrap();
    }
    let since = incident::timestamp(at(3000));
    let failed = store
        .by_status(IncidentStatus::Failed, Some(&since), 5)
        .await
        .unwrap();
    assert_eq!(failed.len(), 5, "several pages");
    assert_eq!(failed[4].created_at, since);
}

#[tokio::test]
async fn failures_are_classified_without_item_data() {
    let moto = Moto::start();
    let client = client(moto.endpoint());
    let (incident, first) = received();

    let missing = DynamoDbStore::new(client.clone(), "no-such-table");
    let error = missing
        .create(&incident, std::slice::from_ref(&first))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Failed(_)), "{error}");
    assert!(
        error.to_string().contains("ResourceNotFoundException"),
        "{error}"
    );
    let error = missing.get(&incident.incident_id).await.unwrap_err();
    assert!(matches!(error, StoreError::Failed(_)), "{error}");

    // An item over 400 KB is cancelled as a validation error, and its data stays out of the message.
    let store = DynamoDbStore::new(client.clone(), fresh_table(&client).await);
    let huge = NewEvent::new(
        EventType::Received,
        at(0),
        json!({"secret": "s3cr3t".repeat(80_000)}),
    );
    let error = store.create(&incident, &[huge]).await.unwrap_err();
    assert!(matches!(error, StoreError::Failed(_)), "{error}");
    assert!(!error.to_string().contains("s3cr3t"), "{error}");
    assert_eq!(
        store.get(&incident.incident_id).await.unwrap(),
        None,
        "nothing written"
    );

    let mut mismatched = incident.clone();
    mismatched.event_count = 2;
    assert!(matches!(
        store
            .create(&mismatched, std::slice::from_ref(&first))
            .await,
        Err(StoreError::Failed(_))
    ));

    drop(moto);
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let unreachable = DynamoDbStore::new(self::client(&format!("http://127.0.0.1:{port}")), "t");
    let error = unreachable.create(&incident, &[first]).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    let error = unreachable
        .by_status(IncidentStatus::Failed, None, 10)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
}
