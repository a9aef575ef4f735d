//! The contract of [`IncidentStore`], one suite for every adapter: [`run_contract`] runs each
//! scenario against a fresh, empty store. SQLite runs it here; DynamoDB (on moto_server) in
//! `store_dynamodb.rs`. Times are explicit so that every ordering is deterministic, and every
//! assertion is on exact values. The episode scenarios run the Correlate state's decision loop
//! ([`alarm_relay::correlate`]) on the store as well, 50 alarms of one group at once.
#![cfg_attr(not(any(feature = "sqlite", feature = "aws")), allow(dead_code))]

use alarm_relay::config::CorrelationConfig;
use alarm_relay::episode::{Episode, Member};
use alarm_relay::event::{AlarmEvent, IncidentId};
use alarm_relay::incident::{
    self, Correlation, EventType, Incident, IncidentEvent, IncidentStatus, NewEvent,
};
use alarm_relay::ports::{Created, IncidentStore, StoreError};
use alarm_relay::testing::FixedClock;
use alarm_relay::{correlate, recorder};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

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
    an_episode_decided_with_its_incident_reads_back_field_for_field(fresh().await).await;
    a_decision_on_a_stale_episode_or_incident_writes_nothing(fresh().await).await;
    a_decision_without_an_episode_is_an_append(fresh().await).await;
    fifty_concurrent_alarms_of_one_monitor_open_one_episode(fresh().await).await;
    a_replayed_correlate_answers_its_decision_again_and_writes_nothing(fresh().await).await;
    by_group_lists_a_groups_decided_incidents_newest_first(fresh().await).await;
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

// --- Episodes: `episode`, `decide`, `by_group`, and the Correlate state's decision loop ---------

/// The group of the scenarios that decide through the store directly.
const GROUP: &str = "monitor:arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/contract";
/// The group every alarm made from the fixture is in: its Network Flow Monitor `MonitorId`.
const FIXTURE_GROUP: &str =
    "monitor:arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/my-monitor";

/// The projection and log entry of `incident` decided at `now`, as the Correlate state writes
/// them: one more event, the correlation set.
fn decided(
    incident: &Incident,
    group_key: &str,
    primary: &Incident,
    decision: &str,
    members: &[&str],
    now: &str,
) -> (Incident, NewEvent) {
    let mut next = incident.advance(at(now));
    next.correlation = Some(Correlation {
        group_key: group_key.to_owned(),
        primary_incident_id: primary.incident_id.clone(),
        decision: decision.to_owned(),
        members: members.iter().map(|name| (*name).to_owned()).collect(),
    });
    let event = NewEvent::new(
        EventType::Correlated,
        at(now),
        json!({
            "step": "Correlate",
            "decision": decision,
            "groupKey": group_key,
            "incidentId": incident.incident_id,
            "members": members,
        }),
    );
    (next, event)
}

fn member(incident: &Incident, last_alarm_at: &str, last_ok_at: Option<&str>) -> Member {
    Member {
        alarm: incident.alarm_arn.clone(),
        alarm_name: incident.alarm_name.clone(),
        incident_id: incident.incident_id.clone(),
        last_alarm_at: at(last_alarm_at),
        last_ok_at: last_ok_at.map(at),
    }
}

/// A first episode of `group_key` opened by `primary`, with `members`.
fn episode_of(group_key: &str, primary: &Incident, members: Vec<Member>, version: u64) -> Episode {
    Episode {
        group_key: group_key.to_owned(),
        number: 1,
        primary_incident_id: primary.incident_id.clone(),
        primary_alarm_name: primary.alarm_name.clone(),
        opened_at: members[0].last_alarm_at,
        last_transition_at: members
            .iter()
            .map(|member| member.last_alarm_at)
            .max()
            .unwrap(),
        updates: u32::try_from(members.len() - 1).unwrap(),
        members,
        resolve_pending: None,
        resolved_at: None,
        version,
    }
}

type Snapshot = (Option<Episode>, Vec<(Option<Incident>, Vec<IncidentEvent>)>);

/// Everything `decide` could have written: the episode of `group_key` and each incident's
/// projection and log.
async fn snapshot(store: &dyn IncidentStore, group_key: &str, ids: &[&IncidentId]) -> Snapshot {
    let mut incidents = Vec::new();
    for id in ids {
        incidents.push((
            store.get(id).await.unwrap(),
            store.events(id).await.unwrap(),
        ));
    }
    (store.episode(group_key).await.unwrap(), incidents)
}

/// A conflict of `decide`. Which condition failed is not part of the contract: SQLite names the
/// episode (`episode <groupKey>`) or the incident, DynamoDB always the incident.
fn is_conflict(result: &Result<(), StoreError>) -> bool {
    matches!(result, Err(StoreError::VersionConflict(_)))
}

async fn an_episode_decided_with_its_incident_reads_back_field_for_field(
    store: Arc<dyn IncidentStore>,
) {
    // GIVEN two recorded ALARMs and no episode of their group
    let a = recorded(
        "A",
        "ALARM",
        "2026-11-24T10:00:00.000+0000",
        "2026-11-24T10:00:01Z",
    );
    let b = recorded(
        "B",
        "ALARM",
        "2026-11-24T10:01:00.000+0000",
        "2026-11-24T10:01:01Z",
    );
    create(&*store, &a).await;
    create(&*store, &b).await;
    assert_eq!(store.episode(GROUP).await, Ok(None));
    assert_eq!(store.by_group(GROUP, 10).await, Ok(Vec::new()));

    // WHEN A's decision writes a new episode with every field set (times to the nanosecond)
    let v1 = Episode {
        group_key: GROUP.to_owned(),
        number: 3,
        primary_incident_id: a.incident_id.clone(),
        primary_alarm_name: "A".to_owned(),
        opened_at: at("2026-11-24T10:00:00.123456789Z"),
        last_transition_at: at("2026-11-24T10:04:59.5Z"),
        members: vec![
            member(
                &a,
                "2026-11-24T10:00:00.123456789Z",
                Some("2026-11-24T10:04:59.5Z"),
            ),
            member(&b, "2026-11-24T10:01:00Z", None),
        ],
        updates: 7,
        resolve_pending: Some(a.incident_id.clone()),
        resolved_at: Some(at("2026-11-24T10:09:59.999999999Z")),
        version: 1,
    };
    let (next_a, event_a) = decided(&a, GROUP, &a, "opened", &["A", "B"], "2026-11-24T10:00:02Z");
    assert_eq!(store.decide(Some(&v1), &next_a, &event_a).await, Ok(()));

    // THEN the episode reads back equal, and the incident advanced with its correlation and
    // the decision at the end of its log
    assert_eq!(store.episode(GROUP).await, Ok(Some(v1.clone())));
    let stored = store.get(&a.incident_id).await.unwrap().unwrap();
    assert_eq!(stored, next_a);
    assert_eq!(
        stored.correlation,
        Some(Correlation {
            group_key: GROUP.to_owned(),
            primary_incident_id: a.incident_id.clone(),
            decision: "opened".to_owned(),
            members: vec!["A".to_owned(), "B".to_owned()],
        })
    );
    assert_eq!((stored.version, stored.event_count), (2, 2));
    let log = store.events(&a.incident_id).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log.last(),
        Some(&IncidentEvent {
            seq: 2,
            kind: EventType::Correlated,
            at: "2026-11-24T10:00:02.000Z".into(),
            data: event_a.data.clone(),
        })
    );
    assert_eq!(store.get(&b.incident_id).await, Ok(Some(b.clone())));
    assert_eq!(store.episode("monitor:another").await, Ok(None));

    // WHEN B's decision replaces it with version 2, the optional fields cleared
    let v2 = Episode {
        resolve_pending: None,
        resolved_at: None,
        updates: 8,
        last_transition_at: at("2026-11-24T10:05:00.000000001Z"),
        version: 2,
        ..v1.clone()
    };
    let (next_b, event_b) = decided(&b, GROUP, &a, "joined", &["A", "B"], "2026-11-24T10:05:01Z");
    assert_eq!(store.decide(Some(&v2), &next_b, &event_b).await, Ok(()));

    // THEN the stored episode is version 2 exactly (nothing left of version 1's fields)
    let episode = store.episode(GROUP).await.unwrap().unwrap();
    assert_eq!(episode, v2);
    assert_eq!((episode.resolve_pending, episode.resolved_at), (None, None));
    assert_eq!(store.get(&b.incident_id).await, Ok(Some(next_b.clone())));
    assert_eq!(
        store.events(&b.incident_id).await.unwrap().last(),
        Some(&IncidentEvent {
            seq: 2,
            kind: EventType::Correlated,
            at: "2026-11-24T10:05:01.000Z".into(),
            data: event_b.data.clone(),
        })
    );
    assert_eq!(store.get(&a.incident_id).await, Ok(Some(next_a)));
}

async fn a_decision_on_a_stale_episode_or_incident_writes_nothing(store: Arc<dyn IncidentStore>) {
    // GIVEN an episode at version 1 opened by A, and B recorded
    let a = recorded(
        "A",
        "ALARM",
        "2026-11-24T10:00:00.000+0000",
        "2026-11-24T10:00:01Z",
    );
    let b = recorded(
        "B",
        "ALARM",
        "2026-11-24T10:01:00.000+0000",
        "2026-11-24T10:01:01Z",
    );
    create(&*store, &a).await;
    create(&*store, &b).await;
    let at_a = "2026-11-24T10:00:00Z";
    let at_b = "2026-11-24T10:01:00Z";
    let v1 = episode_of(GROUP, &a, vec![member(&a, at_a, None)], 1);
    let (next_a, event_a) = decided(&a, GROUP, &a, "opened", &["A"], "2026-11-24T10:00:02Z");
    assert_eq!(store.decide(Some(&v1), &next_a, &event_a).await, Ok(()));
    let ids = [&a.incident_id, &b.incident_id];
    let before = snapshot(&*store, GROUP, &ids).await;
    assert_eq!(before.0, Some(v1.clone()));

    // WHEN B opens an episode of its own (version 1) although one exists
    let b_opens = episode_of(GROUP, &b, vec![member(&b, at_b, None)], 1);
    let (next_b, event_b) = decided(&b, GROUP, &b, "opened", &["B"], "2026-11-24T10:01:02Z");
    let result = store.decide(Some(&b_opens), &next_b, &event_b).await;
    // THEN a conflict, and neither the episode nor B's projection or log changed
    assert!(is_conflict(&result), "{result:?}");
    assert_eq!(snapshot(&*store, GROUP, &ids).await, before);

    // WHEN B joins an episode version 3 (based on version 2) while the stored one is 1
    let joined = |version| {
        episode_of(
            GROUP,
            &a,
            vec![member(&a, at_a, None), member(&b, at_b, None)],
            version,
        )
    };
    let (next_b, event_b) = decided(&b, GROUP, &a, "joined", &["A", "B"], "2026-11-24T10:01:02Z");
    let result = store.decide(Some(&joined(3)), &next_b, &event_b).await;
    assert!(is_conflict(&result), "{result:?}");
    assert_eq!(snapshot(&*store, GROUP, &ids).await, before);

    // WHEN the episode's condition would pass (version 2) but B's projection is stale
    let started_b = start(&*store, &b, "2026-11-24T10:01:03Z").await;
    let before = snapshot(&*store, GROUP, &ids).await;
    assert_eq!(before.1[1].0, Some(started_b.clone()));
    let result = store.decide(Some(&joined(2)), &next_b, &event_b).await;
    // THEN a conflict too, and the episode was not written either
    assert!(is_conflict(&result), "{result:?}");
    assert_eq!(snapshot(&*store, GROUP, &ids).await, before);
    assert_eq!(store.episode(GROUP).await, Ok(Some(v1.clone())));

    // WHEN the incident was never recorded, with an episode that would pass: nothing written
    let ghost = recorded(
        "Ghost",
        "ALARM",
        "2026-11-24T10:02:00.000+0000",
        "2026-11-24T10:02:01Z",
    );
    let (next_ghost, event_ghost) = decided(
        &ghost,
        GROUP,
        &a,
        "joined",
        &["A", "Ghost"],
        "2026-11-24T10:02:02Z",
    );
    let result = store
        .decide(Some(&joined(2)), &next_ghost, &event_ghost)
        .await;
    assert!(is_conflict(&result), "{result:?}");
    assert_eq!(snapshot(&*store, GROUP, &ids).await, before);
    assert_eq!(store.get(&ghost.incident_id).await, Ok(None));
    assert_eq!(store.events(&ghost.incident_id).await, Ok(Vec::new()));

    // WHEN B decides again from what is stored now THEN both are written
    let (next_b, event_b) = decided(
        &started_b,
        GROUP,
        &a,
        "joined",
        &["A", "B"],
        "2026-11-24T10:01:04Z",
    );
    assert_eq!(
        store.decide(Some(&joined(2)), &next_b, &event_b).await,
        Ok(())
    );
    assert_eq!(store.episode(GROUP).await, Ok(Some(joined(2))));
    assert_eq!(store.get(&b.incident_id).await, Ok(Some(next_b)));
    assert_eq!(store.events(&b.incident_id).await.unwrap().len(), 3);
    assert_eq!(store.get(&a.incident_id).await, Ok(Some(next_a)));
}

async fn a_decision_without_an_episode_is_an_append(store: Arc<dyn IncidentStore>) {
    // GIVEN a recorded ALARM
    let a = recorded(
        "A",
        "ALARM",
        "2026-11-24T10:00:00.000+0000",
        "2026-11-24T10:00:01Z",
    );
    create(&*store, &a).await;
    let received = store.events(&a.incident_id).await.unwrap();

    // WHEN it is decided without an episode (correlation off, muted, ignored)
    let (next, event) = decided(&a, GROUP, &a, "uncorrelated", &[], "2026-11-24T10:00:02Z");
    assert_eq!(store.decide(None, &next, &event).await, Ok(()));

    // THEN the projection and the log advanced exactly as by `append`, and no episode exists
    assert_eq!(store.get(&a.incident_id).await, Ok(Some(next.clone())));
    let mut expected = received.clone();
    expected.push(IncidentEvent {
        seq: 2,
        kind: EventType::Correlated,
        at: "2026-11-24T10:00:02.000Z".into(),
        data: event.data.clone(),
    });
    assert_eq!(store.events(&a.incident_id).await, Ok(expected.clone()));
    assert_eq!(store.episode(GROUP).await, Ok(None));

    // WHEN the same decision is written again (a stale projection): a conflict, as `append`
    // answers it, and nothing written
    assert_eq!(
        store.decide(None, &next, &event).await,
        conflict(&a.incident_id)
    );
    assert_eq!(store.append(&next, &event).await, conflict(&a.incident_id));
    assert_eq!(store.get(&a.incident_id).await, Ok(Some(next.clone())));
    assert_eq!(store.events(&a.incident_id).await, Ok(expected.clone()));

    // WHEN it names an incident never recorded: a conflict, as `append` answers it
    let ghost = recorded(
        "Ghost",
        "ALARM",
        "2026-11-24T10:02:00.000+0000",
        "2026-11-24T10:02:01Z",
    );
    let (ghost_next, ghost_event) = decided(
        &ghost,
        GROUP,
        &ghost,
        "uncorrelated",
        &[],
        "2026-11-24T10:02:02Z",
    );
    assert_eq!(
        store.decide(None, &ghost_next, &ghost_event).await,
        conflict(&ghost.incident_id)
    );
    assert_eq!(
        store.append(&ghost_next, &ghost_event).await,
        conflict(&ghost.incident_id)
    );
    assert_eq!(store.get(&ghost.incident_id).await, Ok(None));
    assert_eq!(store.events(&ghost.incident_id).await, Ok(Vec::new()));
    assert_eq!(store.episode(GROUP).await, Ok(None));

    // THEN the version chain goes on from the decision: an append based on it succeeds
    let mut delivered = next.advance(at("2026-11-24T10:00:03Z"));
    delivered.status = IncidentStatus::Delivered;
    let event = NewEvent::new(EventType::Delivered, at("2026-11-24T10:00:03Z"), json!({}));
    assert_eq!(store.append(&delivered, &event).await, Ok(()));
    assert_eq!(store.get(&a.incident_id).await, Ok(Some(delivered)));
    assert_eq!(store.events(&a.incident_id).await.unwrap().len(), 3);
    assert_eq!(store.episode(GROUP).await, Ok(None));
}

/// The Correlate state's input for the alarm event `raw`, enriched with no tags.
fn correlate_input(incident: &Incident, raw: &[u8]) -> Value {
    let event: Value = serde_json::from_slice(raw).unwrap();
    json!({
        "step": "Correlate",
        "incidentId": incident.incident_id,
        "event": event,
        "enriched": {"enrichment": {"tags": {}}},
    })
}

/// Records the ALARM of `alarm_name` at `state_timestamp` as intake does; its Correlate input.
async fn recorded_alarm(
    store: &dyn IncidentStore,
    alarm_name: &str,
    state_timestamp: &str,
) -> (Incident, Value) {
    let raw = alarm_bytes(alarm_name, "ALARM", state_timestamp);
    let (incident, events) = recorded_from(&raw, "2026-11-24T10:01:00Z");
    assert_eq!(store.create(&incident, &events).await, Ok(Created::New));
    let input = correlate_input(&incident, &raw);
    (incident, input)
}

fn correlated_events(log: &[IncidentEvent]) -> Vec<&IncidentEvent> {
    log.iter()
        .filter(|event| event.kind == EventType::Correlated)
        .collect()
}

async fn fifty_concurrent_alarms_of_one_monitor_open_one_episode(store: Arc<dyn IncidentStore>) {
    const ALARMS: usize = 50;
    let config = CorrelationConfig::default();
    assert_eq!(config.max_updates, 20, "MAX_UPDATES_PER_EPISODE's default");
    let updates = usize::try_from(config.max_updates).unwrap();

    // GIVEN 50 recorded ALARMs of 50 alarms that watch one Network Flow Monitor
    let mut racers = Vec::new();
    for i in 0..ALARMS {
        let timestamp = format!("2026-11-24T10:00:{i:02}.000+0000");
        racers.push(recorded_alarm(&*store, &format!("NFM-Alarm-{i:02}"), &timestamp).await);
    }
    let clock = Arc::new(FixedClock::at("2026-11-24T10:01:30Z"));

    // WHEN their Correlate states all run at once
    let barrier = Arc::new(Barrier::new(ALARMS));
    let mut tasks = JoinSet::new();
    for (i, (_, input)) in racers.iter().cloned().enumerate() {
        let (store, clock, barrier) =
            (Arc::clone(&store), Arc::clone(&clock), Arc::clone(&barrier));
        tasks.spawn(async move {
            barrier.wait().await;
            (
                i,
                correlate::handle(&input, &config, &*store, &*clock).await,
            )
        });
    }
    let mut decisions = vec![Value::Null; ALARMS];
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.expect("the racer finished");
        match result {
            Ok(decision) => decisions[i] = decision,
            Err(error) => failures.push(format!("NFM-Alarm-{i:02}: {error}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ALARMS} decisions failed: {failures:#?}",
        failures.len()
    );

    // THEN exactly one opened the episode, 20 joined it and the other 29 hit the update limit
    let count = |key: &str, value: &str| decisions.iter().filter(|d| d[key] == value).count();
    assert_eq!(count("action", "created"), 1, "{decisions:#?}");
    assert_eq!(count("action", "updated"), updates);
    assert_eq!(count("action", "none"), ALARMS - 1 - updates);
    assert_eq!(count("decision", "opened"), 1);
    assert_eq!(count("decision", "joined"), updates);
    assert_eq!(count("decision", "update-limit"), ALARMS - 1 - updates);
    let opener = decisions
        .iter()
        .position(|d| d["decision"] == "opened")
        .unwrap();
    let (primary, _) = &racers[opener];
    for (decision, (incident, _)) in decisions.iter().zip(&racers) {
        assert_eq!(decision["step"], "Correlate");
        assert_eq!(decision["incidentId"], json!(incident.incident_id));
        assert_eq!(decision["groupKey"], FIXTURE_GROUP);
        assert_eq!(decision["groupedBy"], "monitor");
        assert_eq!(decision["primaryIncidentId"], json!(primary.incident_id));
        assert_eq!(decision["episode"], 1);
    }

    // THEN the episode took one decision at a time: version 50 after 50 writes, 20 updates
    let episode = store
        .episode(FIXTURE_GROUP)
        .await
        .unwrap()
        .expect("an episode");
    assert_eq!(episode.version, 50);
    assert_eq!(episode.number, 1);
    assert_eq!(episode.updates, config.max_updates);
    assert_eq!(episode.primary_incident_id, primary.incident_id);
    assert_eq!(episode.primary_alarm_name, primary.alarm_name);
    assert_eq!(
        episode.last_transition_at,
        at("2026-11-24T10:00:49Z"),
        "the latest member transition, suppressed ones included"
    );
    assert_eq!(episode.resolve_pending, None);
    assert_eq!(episode.resolved_at, None);
    // Every alarm is a member (past the update limit they send nothing but are tracked, so
    // that their OK counts), in the order the decisions saw them.
    let members = episode.member_names();
    assert_eq!(members.len(), racers.len(), "{members:?}");
    let mut seen: Vec<Vec<String>> = decisions
        .iter()
        .map(|d| serde_json::from_value(d["members"].clone()).unwrap())
        .collect();
    seen.sort_by_key(Vec::len);
    for (index, seen) in seen.iter().enumerate() {
        assert_eq!(
            seen[..],
            members[..=index],
            "each decision saw the one before"
        );
    }
    let sending = decisions.iter().filter(|d| d["action"] != "none").count();
    assert_eq!(sending, 1 + updates);

    // THEN every incident logged exactly one decision, and its projection carries it
    for (decision, (incident, _)) in decisions.iter().zip(&racers) {
        let log = store.events(&incident.incident_id).await.unwrap();
        let correlated = correlated_events(&log);
        assert_eq!(correlated.len(), 1, "{}: {log:?}", incident.incident_id);
        assert_eq!(&correlated[0].data, decision);
        assert_eq!(log.len(), 2);
        let stored = store.get(&incident.incident_id).await.unwrap().unwrap();
        assert_eq!((stored.version, stored.event_count), (2, 2));
        let correlation = stored.correlation.expect("decided");
        assert_eq!(correlation.decision, decision["decision"].as_str().unwrap());
        assert_eq!(correlation.group_key, FIXTURE_GROUP);
        assert_eq!(correlation.primary_incident_id, primary.incident_id);
        let status = if decision["decision"] == "update-limit" {
            IncidentStatus::Suppressed
        } else {
            IncidentStatus::Received
        };
        assert_eq!(stored.status, status, "{}", incident.incident_id);
    }
    assert_eq!(
        store.by_group(FIXTURE_GROUP, 100).await.unwrap().len(),
        ALARMS
    );
}

async fn a_replayed_correlate_answers_its_decision_again_and_writes_nothing(
    store: Arc<dyn IncidentStore>,
) {
    // GIVEN an opened episode, an alarm that joined it, and a flap of the first alarm, decided
    let config = CorrelationConfig::default();
    let clock = FixedClock::at("2026-11-24T10:01:30Z");
    let mut runs = Vec::new();
    for (alarm, timestamp) in [
        ("P", "2026-11-24T10:00:00.000+0000"),
        ("Q", "2026-11-24T10:00:10.000+0000"),
        ("P", "2026-11-24T10:00:20.000+0000"),
    ] {
        let (incident, input) = recorded_alarm(&*store, alarm, timestamp).await;
        let decision = recorder::invoke(&input, &config, &*store, &clock)
            .await
            .unwrap();
        runs.push((incident, input, decision));
    }
    let names: Vec<&Value> = runs.iter().map(|(_, _, d)| &d["decision"]).collect();
    assert_eq!(names, ["opened", "joined", "flapping"]);
    let ids: Vec<&IncidentId> = runs.iter().map(|(i, _, _)| &i.incident_id).collect();
    let before = snapshot(&*store, FIXTURE_GROUP, &ids).await;
    assert_eq!(before.0.as_ref().map(|episode| episode.version), Some(3));

    // WHEN each is replayed later, through the recorder and the Correlate state itself, even
    // with correlation turned off meanwhile
    clock.advance(Duration::from_secs(3600));
    let off = CorrelationConfig {
        window: Duration::ZERO,
        ..CorrelationConfig::default()
    };
    for (incident, input, decision) in &runs {
        for config in [&config, &off] {
            let again = recorder::invoke(input, config, &*store, &clock)
                .await
                .unwrap();
            // THEN the answer is the recorded decision, to the byte
            assert_eq!(&again, decision, "{}", incident.incident_id);
            assert_eq!(again.to_string(), decision.to_string());
            let direct = correlate::handle(input, config, &*store, &clock)
                .await
                .unwrap();
            assert_eq!(direct.to_string(), decision.to_string());
        }
    }

    // THEN nothing was written: no event, no projection change, the episode as it was
    assert_eq!(snapshot(&*store, FIXTURE_GROUP, &ids).await, before);
    for (incident, _, _) in &runs {
        let log = store.events(&incident.incident_id).await.unwrap();
        assert_eq!(log.len(), 2, "{}", incident.incident_id);
        assert_eq!(correlated_events(&log).len(), 1);
    }
}

async fn by_group_lists_a_groups_decided_incidents_newest_first(store: Arc<dyn IncidentStore>) {
    const OTHER: &str = "group:payments";
    // GIVEN three decided incidents of GROUP, created in an order that is not time order and
    // decided in yet another; an undecided incident of the same alarms, newer than all of
    // them; and a decided incident of another group
    let g1 = recorded(
        "G1",
        "ALARM",
        "2026-11-24T10:00:00.000+0000",
        "2026-11-24T10:00:01Z",
    );
    let g2 = recorded(
        "G2",
        "ALARM",
        "2026-11-24T10:02:00.000+0000",
        "2026-11-24T10:02:01Z",
    );
    let g3 = recorded(
        "G3",
        "ALARM",
        "2026-11-24T10:01:00.000+0000",
        "2026-11-24T10:01:01Z",
    );
    let undecided = recorded(
        "G1",
        "ALARM",
        "2026-11-24T10:05:00.000+0000",
        "2026-11-24T10:05:01Z",
    );
    let h1 = recorded(
        "H1",
        "ALARM",
        "2026-11-24T10:03:00.000+0000",
        "2026-11-24T10:03:01Z",
    );
    for incident in [&g2, &undecided, &g3, &h1, &g1] {
        create(&*store, incident).await;
    }
    let mut members = Vec::new();
    let mut projections = Vec::new();
    for (version, (incident, now)) in (1..).zip([
        (&g3, "2026-11-24T10:06:00Z"),
        (&g1, "2026-11-24T10:07:00Z"),
        (&g2, "2026-11-24T10:08:00Z"),
    ]) {
        members.push(member(incident, "2026-11-24T10:01:00Z", None));
        let names: Vec<&str> = members.iter().map(|m| m.alarm_name.as_str()).collect();
        let decision = if version == 1 { "opened" } else { "joined" };
        let (next, event) = decided(incident, GROUP, &g3, decision, &names, now);
        let episode = episode_of(GROUP, &g3, members.clone(), version);
        assert_eq!(store.decide(Some(&episode), &next, &event).await, Ok(()));
        projections.push(next);
    }
    let [g3, g1, g2] = <[Incident; 3]>::try_from(projections).unwrap();
    let (h1_next, h1_event) = decided(&h1, OTHER, &h1, "opened", &["H1"], "2026-11-24T10:09:00Z");
    let h1_episode = episode_of(
        OTHER,
        &h1,
        vec![member(&h1, "2026-11-24T10:03:00Z", None)],
        1,
    );
    assert_eq!(
        store.decide(Some(&h1_episode), &h1_next, &h1_event).await,
        Ok(())
    );

    // THEN by_group lists GROUP's decided incidents by created_at, newest first, up to limit
    assert_eq!(
        store.by_group(GROUP, 10).await,
        Ok(vec![g2.clone(), g3.clone(), g1.clone()])
    );
    assert_eq!(
        store.by_group(GROUP, 2).await,
        Ok(vec![g2.clone(), g3.clone()])
    );
    assert_eq!(store.by_group(GROUP, 1).await, Ok(vec![g2.clone()]));
    assert_eq!(store.by_group(GROUP, 0).await, Ok(Vec::new()));
    assert_eq!(store.by_group(OTHER, 10).await, Ok(vec![h1_next.clone()]));
    assert_eq!(store.by_group("group:nobody", 10).await, Ok(Vec::new()));
    assert_eq!(store.by_group("", 10).await, Ok(Vec::new()));
    assert_eq!(
        store.get(&undecided.incident_id).await,
        Ok(Some(undecided.clone()))
    );

    // WHEN a listed incident moves on (delivered) THEN it is listed as it is now, in place
    let mut delivered = g3.advance(at("2026-11-24T10:10:00Z"));
    delivered.status = IncidentStatus::Delivered;
    let event = NewEvent::new(EventType::Delivered, at("2026-11-24T10:10:00Z"), json!({}));
    assert_eq!(store.append(&delivered, &event).await, Ok(()));
    assert_eq!(store.by_group(GROUP, 10).await, Ok(vec![g2, delivered, g1]));
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
            4,
            vec![
                "table episodes".to_owned(),
                "table execution_events".to_owned(),
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
