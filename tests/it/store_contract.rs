//! The contract of [`IncidentStore`], one suite for every adapter: [`run_contract`] runs each
//! scenario against a fresh, empty store. SQLite runs it here; DynamoDB (on moto_server) in
//! `store_dynamodb.rs`. Times are explicit so that every ordering is deterministic, and every
//! assertion is on exact values.
#![cfg_attr(not(any(feature = "sqlite", feature = "aws")), allow(dead_code))]

use alarm_relay::event::{AlarmEvent, IncidentId};
use alarm_relay::incident::{self, EventType, Incident, IncidentEvent, IncidentStatus, NewEvent};
use alarm_relay::ports::{Created, IncidentStore, StoreError};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

const METRIC_ALARM: &[u8] = include_bytes!("../fixtures/metric-alarm.json");
const TTL: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// Event data whose key order and number literals must come back exactly as written.
const AWKWARD_DATA: &str = r#"{"zeta":1,"alpha":{"threshold":50.0,"ratio":1e-05,"big":123456789012345678901234567890,"list":[87.0,-0.0,0.10]},"text":"é \"quoted\""}"#;

/// Runs every scenario of the store contract, each against a fresh, empty store from `fresh`.
pub async fn run_contract<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::sync::Arc<dyn alarm_relay::ports::IncidentStore>>,
{
    created_incident_reads_back_field_for_field(fresh().await).await;
    second_create_of_an_id_writes_nothing_and_returns_the_first(fresh().await).await;
    exactly_one_of_a_hundred_concurrent_creates_wins(fresh().await).await;
    appends_advance_the_projection_only_from_the_version_read(fresh().await).await;
    queries_answer_by_status_by_alarm_and_from_the_outbox(fresh().await).await;
    rejected_input_is_found_by_id_and_status_only(fresh().await).await;
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .with_timezone(&Utc)
}

/// The metric-alarm fixture as another transition: alarm name, state and state timestamp
/// replaced.
fn alarm_bytes(alarm_name: &str, state: &str, state_timestamp: &str) -> Vec<u8> {
    let mut event: Value = serde_json::from_slice(METRIC_ALARM).unwrap();
    event["detail"]["alarmName"] = json!(alarm_name);
    event["detail"]["state"]["value"] = json!(state);
    event["detail"]["state"]["timestamp"] = json!(state_timestamp);
    event["resources"][0] = json!(format!(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm_name}"
    ));
    serde_json::to_vec_pretty(&event).unwrap()
}

/// What intake records for raw alarm bytes: the projection and its one event, the raw event.
fn recorded_from(raw: &[u8], now: &str) -> (Incident, Vec<NewEvent>) {
    let event = AlarmEvent::parse(raw).expect("the fixture is an alarm event");
    let now = at(now);
    let mut incident = incident::received(&event, raw, now, Some(TTL), false);
    let events = vec![NewEvent::new(EventType::Received, now, event.raw().clone())];
    incident.event_count = 1;
    (incident, events)
}

fn recorded(alarm_name: &str, state: &str, state_timestamp: &str, now: &str) -> Incident {
    recorded_from(&alarm_bytes(alarm_name, state, state_timestamp), now).0
}

async fn create(store: &dyn IncidentStore, incident: &Incident) {
    let events = [NewEvent::new(
        EventType::Received,
        at(&incident.created_at),
        json!({"incident": incident.incident_id.as_str()}),
    )];
    assert_eq!(incident.event_count, 1);
    assert_eq!(
        store.create(incident, &events).await,
        Ok(Created::New),
        "{}",
        incident.incident_id
    );
}

/// Moves `incident` to STARTED at `now`, as the outbox relay does.
async fn start(store: &dyn IncidentStore, incident: &Incident, now: &str) -> Incident {
    let mut next = incident.advance(at(now));
    next.status = IncidentStatus::Started;
    next.execution_arn = Some(format!(
        "arn:aws:states:us-east-1:123456789012:execution:relay:{}",
        next.execution_name
    ));
    let event = NewEvent::new(
        EventType::ExecutionStarted,
        at(now),
        json!({"executionArn": next.execution_arn}),
    );
    assert_eq!(store.append(&next, &event).await, Ok(()));
    next
}

fn ids<'a>(incidents: impl IntoIterator<Item = &'a Incident>) -> Vec<&'a str> {
    incidents
        .into_iter()
        .map(|incident| incident.incident_id.as_str())
        .collect()
}

fn conflict(id: &IncidentId) -> Result<(), StoreError> {
    Err(StoreError::VersionConflict(id.as_str().to_owned()))
}

async fn created_incident_reads_back_field_for_field(store: Arc<dyn IncidentStore>) {
    // GIVEN an incident with every optional field set and two events, one of awkward JSON
    let (mut incident, mut events) = recorded_from(METRIC_ALARM, "2026-11-24T10:00:01.234Z");
    incident.execution_arn = Some("arn:aws:states:us-east-1:123456789012:execution:r:x".into());
    incident.attempts = 2;
    incident.last_error = Some("webhook answered 503".into());
    let awkward: Value = serde_json::from_str(AWKWARD_DATA).unwrap();
    events.push(NewEvent::new(
        EventType::DeliveryAttempted,
        at("2026-11-24T10:00:02.5Z"),
        awkward.clone(),
    ));
    incident.event_count = 2;
    let id = incident.incident_id.clone();
    assert_eq!(id.as_str(), "NFM-Alarm-EKS-DB-2026-11-24T10:00:00.000+0000");
    assert_eq!(
        incident.expires_at,
        Some(at("2026-11-24T10:00:01Z").timestamp() + 90 * 24 * 60 * 60)
    );
    assert_eq!(store.get(&id).await, Ok(None));
    assert_eq!(store.events(&id).await, Ok(Vec::new()));

    // WHEN it is created
    assert_eq!(store.create(&incident, &events).await, Ok(Created::New));

    // THEN the projection and the log read back exactly
    assert_eq!(store.get(&id).await, Ok(Some(incident.clone())));
    let raw: Value = serde_json::from_slice(METRIC_ALARM).unwrap();
    let stored = store.events(&id).await.unwrap();
    assert_eq!(
        stored,
        vec![
            IncidentEvent {
                seq: 1,
                kind: EventType::Received,
                at: "2026-11-24T10:00:01.234Z".into(),
                data: raw.clone(),
            },
            IncidentEvent {
                seq: 2,
                kind: EventType::DeliveryAttempted,
                at: "2026-11-24T10:00:02.500Z".into(),
                data: awkward,
            },
        ]
    );
    assert_eq!(stored[1].data.to_string(), AWKWARD_DATA);
    assert_eq!(stored[0].data.to_string(), raw.to_string());
    let other = IncidentId::from_raw("NFM-Alarm-EKS-DB-2026-11-24T10:00:00.001+0000");
    assert_eq!(store.get(&other).await, Ok(None));
    assert_eq!(store.events(&other).await, Ok(Vec::new()));
}

async fn second_create_of_an_id_writes_nothing_and_returns_the_first(
    store: Arc<dyn IncidentStore>,
) {
    // GIVEN a recorded transition
    let (first, first_events) = recorded_from(METRIC_ALARM, "2026-11-24T10:00:01.000Z");
    assert_eq!(store.create(&first, &first_events).await, Ok(Created::New));

    // WHEN the same copy arrives again, and then a different event under the same id
    let again = store.create(&first, &first_events).await;
    let mut changed: Value = serde_json::from_slice(METRIC_ALARM).unwrap();
    changed["detail"]["state"]["reason"] = json!("a different reason");
    let changed = serde_json::to_vec(&changed).unwrap();
    let (mut second, second_events) = recorded_from(&changed, "2026-11-24T10:07:00.000Z");
    second.attempts = 7;
    assert_eq!(second.incident_id, first.incident_id);
    assert_ne!(second.event_sha256, first.event_sha256);
    let different = store.create(&second, &second_events).await;

    // THEN both are answered with the first projection and nothing was written
    assert_eq!(again, Ok(Created::Existing(Box::new(first.clone()))));
    assert_eq!(different, Ok(Created::Existing(Box::new(first.clone()))));
    assert_eq!(store.get(&first.incident_id).await, Ok(Some(first.clone())));
    let events = store.events(&first.incident_id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].at, "2026-11-24T10:00:01.000Z");
    assert_eq!(events[0].data, first_events[0].data);
}

async fn exactly_one_of_a_hundred_concurrent_creates_wins(store: Arc<dyn IncidentStore>) {
    const WRITERS: usize = 100;
    // GIVEN 100 writers with different copies of one incident (told apart by event_sha256)
    let (base, _) = recorded_from(METRIC_ALARM, "2026-11-24T10:00:01.000Z");
    let copies: Vec<(Incident, Vec<NewEvent>)> = (0..WRITERS)
        .map(|writer| {
            let mut incident = base.clone();
            incident.event_sha256 = format!("{writer:064x}");
            incident.event_count = 2;
            let events = vec![
                NewEvent::new(
                    EventType::Received,
                    at("2026-11-24T10:00:01Z"),
                    json!({"writer": writer}),
                ),
                NewEvent::new(
                    EventType::Conflict,
                    at("2026-11-24T10:00:01Z"),
                    json!({"writer": writer}),
                ),
            ];
            (incident, events)
        })
        .collect();

    // WHEN they all create at once
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = copies
        .iter()
        .cloned()
        .map(|(incident, events)| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.create(&incident, &events).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut existing = Vec::new();
    for (writer, task) in tasks.into_iter().enumerate() {
        match task.await.expect("the writer finished") {
            Ok(Created::New) => winners.push(writer),
            Ok(Created::Existing(projection)) => existing.push(*projection),
            Err(error) => panic!("writer {writer}: {error:?}"),
        }
    }

    // THEN exactly one wins, the others see its projection, and its events alone are logged
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let winner = winners[0];
    let (winning, _) = &copies[winner];
    assert_eq!(existing.len(), WRITERS - 1);
    assert!(existing.iter().all(|projection| projection == winning));
    assert_eq!(
        store.get(&base.incident_id).await,
        Ok(Some(winning.clone()))
    );
    let events = store.events(&base.incident_id).await.unwrap();
    let logged: Vec<(u64, EventType, &Value)> = events
        .iter()
        .map(|event| (event.seq, event.kind, &event.data))
        .collect();
    let expected = json!({"writer": winner});
    assert_eq!(
        logged,
        vec![
            (1, EventType::Received, &expected),
            (2, EventType::Conflict, &expected)
        ]
    );
}

async fn appends_advance_the_projection_only_from_the_version_read(store: Arc<dyn IncidentStore>) {
    const WRITERS: usize = 20;
    // GIVEN a recorded incident (version 1, one event)
    let (first, events) = recorded_from(METRIC_ALARM, "2026-11-24T10:00:01.000Z");
    let id = first.incident_id.clone();
    assert_eq!(store.create(&first, &events).await, Ok(Created::New));

    // WHEN it is started: one event appended, the projection replaced
    let started = start(&*store, &first, "2026-11-24T10:00:02.000Z").await;
    assert_eq!((started.version, started.event_count), (2, 2));
    assert_eq!(store.get(&id).await, Ok(Some(started.clone())));
    let log = store.events(&id).await.unwrap();
    assert_eq!(
        log.iter().map(|event| event.seq).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        log[1],
        IncidentEvent {
            seq: 2,
            kind: EventType::ExecutionStarted,
            at: "2026-11-24T10:00:02.000Z".into(),
            data: json!({"executionArn": started.execution_arn}),
        }
    );

    // WHEN a writer appends from the projection it read before: a conflict, nothing written
    let mut stale = first.advance(at("2026-11-24T10:00:03.000Z"));
    stale.status = IncidentStatus::Failed;
    let stale_event = NewEvent::new(EventType::Failed, at("2026-11-24T10:00:03Z"), json!({}));
    assert_eq!(store.append(&stale, &stale_event).await, conflict(&id));
    assert_eq!(store.get(&id).await, Ok(Some(started.clone())));
    assert_eq!(store.events(&id).await.unwrap().len(), 2);

    // WHEN 20 writers append at once, all from the same projection
    let barrier = Arc::new(Barrier::new(WRITERS));
    let attempts: Vec<(Incident, NewEvent)> = (0..WRITERS)
        .map(|writer| {
            let mut next = started.advance(at("2026-11-24T10:00:04.000Z"));
            next.status = IncidentStatus::Delivered;
            next.attempts = u32::try_from(writer).unwrap() + 1;
            let event = NewEvent::new(
                EventType::Delivered,
                at("2026-11-24T10:00:04Z"),
                json!({"writer": writer}),
            );
            (next, event)
        })
        .collect();
    let tasks: Vec<_> = attempts
        .iter()
        .cloned()
        .map(|(next, event)| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.append(&next, &event).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (writer, task) in tasks.into_iter().enumerate() {
        match task.await.expect("the writer finished") {
            Ok(()) => winners.push(writer),
            Err(StoreError::VersionConflict(conflicted)) => assert_eq!(conflicted, id.as_str()),
            Err(error) => panic!("writer {writer}: {error:?}"),
        }
    }

    // THEN exactly one succeeded, and the store holds its projection and its event
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let (winning, winning_event) = &attempts[winners[0]];
    assert_eq!((winning.version, winning.event_count), (3, 3));
    assert_eq!(store.get(&id).await, Ok(Some(winning.clone())));
    let log = store.events(&id).await.unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log[2],
        IncidentEvent {
            seq: 3,
            kind: EventType::Delivered,
            at: "2026-11-24T10:00:04.000Z".into(),
            data: winning_event.data.clone(),
        }
    );

    // WHEN an append names an incident that was never created: a conflict, nothing written
    let (ghost, _) = recorded_from(
        &alarm_bytes("Ghost", "ALARM", "2026-11-24T09:00:00.000+0000"),
        "2026-11-24T09:00:01Z",
    );
    let next = ghost.advance(at("2026-11-24T09:00:02Z"));
    let event = NewEvent::new(
        EventType::ExecutionStarted,
        at("2026-11-24T09:00:02Z"),
        json!({}),
    );
    assert_eq!(
        store.append(&next, &event).await,
        conflict(&ghost.incident_id)
    );
    assert_eq!(store.get(&ghost.incident_id).await, Ok(None));
    assert_eq!(store.events(&ghost.incident_id).await, Ok(Vec::new()));
}

async fn queries_answer_by_status_by_alarm_and_from_the_outbox(store: Arc<dyn IncidentStore>) {
    // GIVEN two alarms' transitions, an OK transition and a rejected input, created in an
    // order that is not time order
    let a1 = recorded(
        "A",
        "ALARM",
        "2026-11-24T10:00:00.000+0000",
        "2026-11-24T10:00:01Z",
    );
    let b1 = recorded(
        "B",
        "ALARM",
        "2026-11-24T10:01:00.000+0000",
        "2026-11-24T10:01:00Z",
    );
    let a2 = recorded(
        "A",
        "ALARM",
        "2026-11-24T10:02:00.000+0000",
        "2026-11-24T10:02:00Z",
    );
    let a3 = recorded(
        "A",
        "OK",
        "2026-11-24T10:03:00.000+0000",
        "2026-11-24T10:03:00Z",
    );
    let b2 = recorded(
        "B",
        "ALARM",
        "2026-11-24T10:04:00.000+0000",
        "2026-11-24T10:04:00Z",
    );
    let a4 = recorded(
        "A",
        "ALARM",
        "2026-11-24T10:05:00.000+0000",
        "2026-11-24T10:05:00Z",
    );
    let mut rejected = incident::rejected(b"{", at("2026-11-24T10:01:30Z"), Some(TTL));
    rejected.event_count = 1;
    assert_eq!(a3.status, IncidentStatus::Ignored);
    for incident in [&a4, &b1, &rejected, &a1, &b2, &a3, &a2] {
        create(&*store, incident).await;
    }
    // a1 is created before b1 but started after it
    let b1 = start(&*store, &b1, "2026-11-24T10:10:00Z").await;
    let a1 = start(&*store, &a1, "2026-11-24T10:20:00Z").await;

    // THEN by_status holds one status, newest update first, from `since` on, up to `limit`
    let by_status = |status, since, limit| {
        let store = Arc::clone(&store);
        async move { store.by_status(status, since, limit).await.unwrap() }
    };
    assert_eq!(
        by_status(IncidentStatus::Received, None, 10).await,
        [a4.clone(), b2.clone(), a2.clone()]
    );
    assert_eq!(
        ids(&by_status(
            IncidentStatus::Received,
            Some("2026-11-24T10:04:00.000Z"),
            10
        )
        .await),
        ids([&a4, &b2])
    );
    assert_eq!(
        ids(&by_status(IncidentStatus::Received, None, 2).await),
        ids([&a4, &b2])
    );
    assert_eq!(
        by_status(IncidentStatus::Started, None, 10).await,
        [a1.clone(), b1.clone()]
    );
    assert_eq!(
        ids(&by_status(
            IncidentStatus::Started,
            Some("2026-11-24T10:15:00.000Z"),
            10
        )
        .await),
        ids([&a1])
    );
    assert_eq!(
        by_status(IncidentStatus::Ignored, None, 10).await,
        vec![a3.clone()]
    );
    assert_eq!(
        by_status(IncidentStatus::Rejected, None, 10).await,
        vec![rejected.clone()]
    );
    assert_eq!(
        by_status(IncidentStatus::Delivered, None, 10).await,
        Vec::<Incident>::new()
    );

    // THEN by_alarm holds one alarm's incidents in any status, newest created first
    assert_eq!(
        store.by_alarm("A", 10).await,
        Ok(vec![a4.clone(), a3.clone(), a2.clone(), a1.clone()])
    );
    assert_eq!(
        store
            .by_alarm("A", 2)
            .await
            .map(|found| ids(&found).join(" ")),
        Ok(ids([&a4, &a3]).join(" "))
    );
    assert_eq!(
        store.by_alarm("B", 10).await,
        Ok(vec![b2.clone(), b1.clone()])
    );
    assert_eq!(store.by_alarm("C", 10).await, Ok(Vec::new()));
    assert_eq!(store.by_alarm("", 10).await, Ok(Vec::new()));

    // THEN the outbox holds RECEIVED incidents created strictly before the cutoff, oldest first
    assert_eq!(
        store.outbox("2026-11-24T10:05:00.000Z", 10).await,
        Ok(vec![a2.clone(), b2.clone()])
    );
    assert_eq!(
        store.outbox("2026-11-24T11:00:00.000Z", 10).await,
        Ok(vec![a2.clone(), b2.clone(), a4.clone()])
    );
    assert_eq!(
        store.outbox("2026-11-24T11:00:00.000Z", 1).await,
        Ok(vec![a2.clone()])
    );
    assert_eq!(
        store.outbox("2026-11-24T10:00:00.000Z", 10).await,
        Ok(Vec::new())
    );

    // WHEN a2 is started THEN it leaves the outbox and joins the STARTED
    let a2 = start(&*store, &a2, "2026-11-24T10:30:00Z").await;
    assert_eq!(
        store.outbox("2026-11-24T11:00:00.000Z", 10).await,
        Ok(vec![b2.clone(), a4.clone()])
    );
    assert_eq!(
        by_status(IncidentStatus::Started, None, 10).await,
        [a2.clone(), a1.clone(), b1.clone()]
    );
    assert_eq!(
        ids(&by_status(IncidentStatus::Received, None, 10).await),
        ids([&a4, &b2])
    );
}

async fn rejected_input_is_found_by_id_and_status_only(store: Arc<dyn IncidentStore>) {
    // GIVEN a rejected input and one alarm transition
    let raw = br#"{"detail-type": "EC2 Instance State-change Notification"}"#;
    let now = at("2026-11-24T10:00:01Z");
    let mut rejected = incident::rejected(raw, now, Some(TTL));
    rejected.event_count = 1;
    let events = [NewEvent::new(
        EventType::Rejected,
        now,
        json!({"reason": "wrong detail-type", "excerpt": String::from_utf8_lossy(raw)}),
    )];
    let id = rejected.incident_id.clone();
    assert!(id.as_str().starts_with("rejected-"), "{id}");
    assert_eq!(store.create(&rejected, &events).await, Ok(Created::New));
    let alarm = recorded(
        "A",
        "ALARM",
        "2026-11-24T09:59:00.000+0000",
        "2026-11-24T09:59:30Z",
    );
    create(&*store, &alarm).await;

    // THEN it is found by id and by status, once however often it is redelivered
    assert_eq!(store.get(&id).await, Ok(Some(rejected.clone())));
    assert_eq!(
        store.events(&id).await,
        Ok(vec![IncidentEvent {
            seq: 1,
            kind: EventType::Rejected,
            at: "2026-11-24T10:00:01.000Z".into(),
            data: events[0].data.clone(),
        }])
    );
    assert_eq!(
        store.create(&rejected, &events).await,
        Ok(Created::Existing(Box::new(rejected.clone())))
    );
    assert_eq!(
        store.by_status(IncidentStatus::Rejected, None, 10).await,
        Ok(vec![rejected.clone()])
    );

    // THEN it is in no alarm's history and never in the outbox
    assert_eq!(store.by_alarm("", 10).await, Ok(Vec::new()));
    assert_eq!(store.by_alarm("A", 10).await, Ok(vec![alarm.clone()]));
    assert_eq!(
        store.outbox("2026-11-25T00:00:00.000Z", 10).await,
        Ok(vec![alarm])
    );
}

#[cfg(feature = "sqlite")]
fn sqlite_at(path: &std::path::Path) -> Arc<dyn IncidentStore> {
    Arc::new(alarm_relay::adapters::SqliteStore::open(path).expect("the store opens"))
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_honours_the_contract() {
    // Each store's directory lives until the whole suite is done, after the store is dropped.
    let dirs = std::sync::Mutex::new(Vec::new());
    run_contract(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = sqlite_at(&dir.path().join("incidents.sqlite3"));
        dirs.lock().unwrap().push(dir);
        std::future::ready(store)
    })
    .await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_reopened_sees_everything_written_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.sqlite3");
    let (first, events) = recorded_from(METRIC_ALARM, "2026-11-24T10:00:01.000Z");
    let other = recorded(
        "B",
        "ALARM",
        "2026-11-24T10:01:00.000+0000",
        "2026-11-24T10:01:00Z",
    );
    let (started, log) = {
        let store = sqlite_at(&path);
        assert_eq!(store.create(&first, &events).await, Ok(Created::New));
        create(&*store, &other).await;
        let started = start(&*store, &first, "2026-11-24T10:00:02Z").await;
        (started, store.events(&first.incident_id).await.unwrap())
    };
    assert_eq!(log.len(), 2);

    let store = sqlite_at(&path);
    assert_eq!(
        store.get(&first.incident_id).await,
        Ok(Some(started.clone()))
    );
    assert_eq!(store.events(&first.incident_id).await, Ok(log));
    assert_eq!(
        store.by_status(IncidentStatus::Started, None, 10).await,
        Ok(vec![started])
    );
    assert_eq!(
        store.outbox("2026-11-25T00:00:00.000Z", 10).await,
        Ok(vec![other])
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_migration_runs_once_and_two_stores_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.sqlite3");
    let schema = || {
        let connection = rusqlite::Connection::open(&path).unwrap();
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        let mut names = connection
            .prepare(
                "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .unwrap();
        let names: Vec<String> = names
            .query_map([], |row| {
                Ok(format!(
                    "{} {}",
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        (version, names)
    };

    let first = sqlite_at(&path);
    let migrated = schema();
    assert_eq!(
        migrated,
        (
            3,
            vec![
                "table episodes".to_owned(),
                "table executions".to_owned(),
                "index executions_by_status".to_owned(),
                "table incident_events".to_owned(),
                "table incidents".to_owned(),
                "index incidents_by_alarm".to_owned(),
                "index incidents_by_group".to_owned(),
                "index incidents_by_status".to_owned(),
                "index incidents_outbox".to_owned(),
            ]
        )
    );
    let second = sqlite_at(&path);
    assert_eq!(schema(), migrated);

    // Two stores on one file (two processes, say) see each other's writes and race fairly.
    let incident = recorded(
        "A",
        "ALARM",
        "2026-11-24T10:00:00.000+0000",
        "2026-11-24T10:00:01Z",
    );
    let events = [NewEvent::new(
        EventType::Received,
        at("2026-11-24T10:00:01Z"),
        json!({}),
    )];
    let (one, two) = tokio::join!(
        first.create(&incident, &events),
        second.create(&incident, &events)
    );
    let mut outcomes = [one.unwrap(), two.unwrap()];
    outcomes.sort_by_key(|created| matches!(created, Created::New));
    assert_eq!(
        outcomes,
        [Created::Existing(Box::new(incident.clone())), Created::New]
    );
    assert_eq!(
        second.get(&incident.incident_id).await,
        Ok(Some(incident.clone()))
    );
    assert_eq!(first.events(&incident.incident_id).await.unwrap().len(), 1);
    drop((first, second));
    assert_eq!(
        sqlite_at(&path).get(&incident.incident_id).await,
        Ok(Some(incident))
    );
    assert_eq!(schema(), migrated);
}
