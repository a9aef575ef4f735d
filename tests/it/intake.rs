//! Intake and the outbox sweeper on the SQLite store: idempotence, conflicts, rejections, the
//! crash between record and start, and a randomized interleaving that must never lose an
//! acknowledged event nor start one twice.

use alarm_relay::adapters::SqliteStore;
use alarm_relay::event::IncidentId;
use alarm_relay::incident::{EventType, IncidentStatus};
use alarm_relay::intake::{Intake, IntakeOutcome};
use alarm_relay::outbox::Dispatcher;
use alarm_relay::ports::{Clock, IncidentStore};
use alarm_relay::testing::{FakeStarter, FixedClock};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const METRIC: &str = include_str!("../fixtures/metric-alarm.json");

struct Pipeline {
    store: Arc<dyn IncidentStore>,
    starter: Arc<FakeStarter>,
    clock: Arc<FixedClock>,
    dispatcher: Dispatcher,
    intake: Intake,
}

fn pipeline() -> Pipeline {
    let store: Arc<dyn IncidentStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let starter = Arc::new(FakeStarter::default());
    let clock = Arc::new(FixedClock::at("2026-11-24T10:00:05Z"));
    let dispatcher = Dispatcher::new(store.clone(), starter.clone(), clock.clone());
    let intake = Intake::new(dispatcher.clone(), Some(Duration::from_secs(86_400)));
    Pipeline {
        store,
        starter,
        clock,
        dispatcher,
        intake,
    }
}

/// The metric fixture as another transition of the alarm (`n` picks the state timestamp).
fn alarm_event(n: usize) -> String {
    METRIC.replace(
        "\"timestamp\": \"2026-11-24T10:00:00.000+0000\"",
        &format!(
            "\"timestamp\": \"2026-11-24T10:{:02}:{:02}.000+0000\"",
            n / 60 % 60,
            n % 60
        ),
    )
}

fn incident_id(n: usize) -> IncidentId {
    IncidentId::new(
        "NFM-Alarm-EKS-DB",
        &format!("2026-11-24T10:{:02}:{:02}.000+0000", n / 60 % 60, n % 60),
    )
}

async fn kinds(store: &Arc<dyn IncidentStore>, id: &IncidentId) -> Vec<EventType> {
    store
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect()
}

#[tokio::test]
async fn an_alarm_is_recorded_then_started_once() {
    let p = pipeline();
    let outcome = p.intake.handle(alarm_event(0).as_bytes()).await.unwrap();
    let IntakeOutcome::Recorded { incident } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(incident.status, IncidentStatus::Started);
    assert!(
        incident
            .execution_arn
            .as_deref()
            .unwrap()
            .ends_with(&incident.execution_name)
    );
    assert_eq!(
        kinds(&p.store, &incident_id(0)).await,
        [EventType::Received, EventType::ExecutionStarted]
    );
    let executions = p.starter.executions();
    assert_eq!(executions.len(), 1);
    let input = executions.values().next().unwrap();
    assert_eq!(input["incidentId"], incident_id(0).as_str());
    assert_eq!(input["event"]["detail"]["alarmName"], "NFM-Alarm-EKS-DB");
}

#[tokio::test]
async fn copies_of_an_event_are_duplicates_whatever_their_whitespace() {
    let p = pipeline();
    p.intake.handle(alarm_event(0).as_bytes()).await.unwrap();
    let compact: Value = serde_json::from_str(&alarm_event(0)).unwrap();
    for copy in [alarm_event(0), compact.to_string()] {
        let outcome = p.intake.handle(copy.as_bytes()).await.unwrap();
        assert!(
            matches!(outcome, IntakeOutcome::Duplicate { .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(p.starter.executions().len(), 1);
    assert_eq!(p.store.events(&incident_id(0)).await.unwrap().len(), 2);
}

#[tokio::test]
async fn ok_and_insufficient_data_are_recorded_ignored_and_start_nothing() {
    let p = pipeline();
    for (n, state) in [(1, "OK"), (2, "INSUFFICIENT_DATA")] {
        let event = alarm_event(n).replacen(
            "\"value\": \"ALARM\"",
            &format!("\"value\": \"{state}\""),
            1,
        );
        let outcome = p.intake.handle(event.as_bytes()).await.unwrap();
        assert_eq!(outcome.incident().status, IncidentStatus::Ignored);
        assert_eq!(
            kinds(&p.store, &incident_id(n)).await,
            [EventType::Received, EventType::Ignored]
        );
    }
    assert_eq!(p.starter.calls(), 0);
    assert_eq!(
        p.store
            .by_status(IncidentStatus::Ignored, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_different_event_under_an_existing_id_is_audited_as_a_conflict() {
    let p = pipeline();
    p.intake.handle(alarm_event(0).as_bytes()).await.unwrap();
    let changed =
        alarm_event(0).replace("was greater than the threshold", "exceeded the threshold");
    let outcome = p.intake.handle(changed.as_bytes()).await.unwrap();
    assert!(
        matches!(outcome, IntakeOutcome::Conflict { .. }),
        "{outcome:?}"
    );
    let events = p.store.events(&incident_id(0)).await.unwrap();
    let conflict = events.last().unwrap();
    assert_eq!(conflict.kind, EventType::Conflict);
    assert!(
        conflict.data["event"]["detail"]["state"]["reason"]
            .as_str()
            .unwrap()
            .contains("exceeded")
    );
    assert_eq!(p.starter.executions().len(), 1, "a conflict starts nothing");
}

#[tokio::test]
async fn bad_input_is_recorded_rejected_once_and_acknowledged() {
    let p = pipeline();
    for _ in 0..2 {
        let outcome = p
            .intake
            .handle(b"{\"detail-type\": \"CloudWatch Alarm State Change\"")
            .await
            .unwrap();
        let IntakeOutcome::Rejected { reason, .. } = &outcome else {
            panic!("{outcome:?}")
        };
        assert!(reason.contains("not valid JSON"), "{reason}");
    }
    let rejected = p
        .store
        .by_status(IncidentStatus::Rejected, None, 10)
        .await
        .unwrap();
    assert_eq!(
        rejected.len(),
        1,
        "a redelivered poison event is one record"
    );
    let events = p.store.events(&rejected[0].incident_id).await.unwrap();
    assert_eq!(events[0].kind, EventType::Rejected);
    assert!(
        events[0].data["excerpt"]
            .as_str()
            .unwrap()
            .starts_with("{\"detail-type\"")
    );
    assert_eq!(p.starter.calls(), 0);
}

#[tokio::test]
async fn a_failed_start_leaves_the_incident_in_the_outbox_for_the_sweeper() {
    let p = pipeline();
    p.starter.fail_next(1);
    let outcome = p.intake.handle(alarm_event(0).as_bytes()).await.unwrap();
    assert_eq!(
        outcome.incident().status,
        IncidentStatus::Received,
        "acknowledged, not started"
    );

    let too_soon = p
        .dispatcher
        .sweep(Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(
        too_soon.found, 0,
        "inside the grace period intake may still be starting it"
    );
    p.clock.advance(Duration::from_secs(61));
    let report = p
        .dispatcher
        .sweep(Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(
        (report.found, report.started, report.still_pending),
        (1, 1, 0)
    );
    let again = p
        .dispatcher
        .sweep(Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(again.found, 0);
    assert_eq!(p.starter.executions().len(), 1);
    assert_eq!(
        kinds(&p.store, &incident_id(0)).await,
        [EventType::Received, EventType::ExecutionStarted]
    );
}

#[tokio::test]
async fn an_eventbridge_retry_after_a_failed_start_starts_it() {
    let p = pipeline();
    p.starter.fail_next(1);
    p.intake.handle(alarm_event(0).as_bytes()).await.unwrap();
    let retry = p.intake.handle(alarm_event(0).as_bytes()).await.unwrap();
    assert!(matches!(retry, IntakeOutcome::Duplicate { .. }));
    assert_eq!(retry.incident().status, IncidentStatus::Started);
    assert_eq!(p.starter.executions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_copies_make_one_incident_and_one_start() {
    let p = pipeline();
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let intake = p.intake.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                intake.handle(alarm_event(0).as_bytes()).await.unwrap()
            })
        })
        .collect();
    let mut recorded = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), IntakeOutcome::Recorded { .. }) {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 1);
    assert_eq!(p.starter.executions().len(), 1);
    assert_eq!(
        kinds(&p.store, &incident_id(0)).await,
        [EventType::Received, EventType::ExecutionStarted]
    );
}

/// Intake copies, failed starts and concurrent sweeps in a random order, many seeds: at the end
/// (after one last sweep with Step Functions healthy) every acknowledged ALARM incident has
/// exactly one execution and exactly one `ExecutionStarted`, and none is left in the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn intake_and_sweepers_interleaved_never_lose_or_double_start() {
    let mut failed_starts = 0;
    for seed in 0..24u64 {
        let p = pipeline();
        let mut rng = SplitMix64(seed);
        let incidents = 12;
        let mut tasks = Vec::new();
        let mut acknowledged = std::collections::BTreeSet::new();
        for step in 0..60 {
            let n = rng.below(incidents);
            match rng.below(10) {
                0..=5 => {
                    if rng.below(3) == 0 {
                        p.starter.fail_next(1 + rng.below(2));
                    }
                    let intake = p.intake.clone();
                    let event = alarm_event(n);
                    tasks.push(tokio::spawn(async move {
                        intake.handle(event.as_bytes()).await.map(|_| Some(n))
                    }));
                }
                6 => p.clock.advance(Duration::from_secs(30)),
                _ => {
                    let dispatcher = p.dispatcher.clone();
                    tasks.push(tokio::spawn(async move {
                        dispatcher
                            .sweep(Duration::from_secs(30), 100)
                            .await
                            .map(|_| None)
                    }));
                }
            }
            if step % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
        for task in tasks {
            if let Some(n) = task.await.unwrap().expect("store never fails here") {
                acknowledged.insert(n);
            }
        }
        p.clock.advance(Duration::from_secs(3600));
        p.dispatcher
            .sweep(Duration::from_secs(30), 100)
            .await
            .unwrap();

        assert_eq!(
            p.starter.executions().len(),
            acknowledged.len(),
            "seed {seed}"
        );
        for n in &acknowledged {
            let events = kinds(&p.store, &incident_id(*n)).await;
            let starts = events
                .iter()
                .filter(|kind| **kind == EventType::ExecutionStarted)
                .count();
            assert_eq!(starts, 1, "seed {seed}, incident {n}: {events:?}");
            let incident = p.store.get(&incident_id(*n)).await.unwrap().unwrap();
            assert_eq!(
                incident.status,
                IncidentStatus::Started,
                "seed {seed}, incident {n}"
            );
        }
        let cutoff = alarm_relay::incident::timestamp(p.clock.now() + chrono::Duration::seconds(1));
        assert!(
            p.store.outbox(&cutoff, 100).await.unwrap().is_empty(),
            "seed {seed}"
        );
        failed_starts += p.starter.failures();
    }
    assert!(
        failed_starts > 20,
        "the schedules must exercise failed starts, got {failed_starts}"
    );
}

/// A seeded generator for the interleaving (splitmix64): the same seed, the same schedule.
struct SplitMix64(u64);

impl SplitMix64 {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % bound as u64) as usize
    }
}
