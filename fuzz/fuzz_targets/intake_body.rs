//! Any bytes as the body of `POST /events`, through [`Intake::handle`] over an in-memory SQLite
//! store and the fake starter: an answer every time, never a panic nor a store error.
//!
//! Checked on every input:
//! - a rejection is stored as one REJECTED incident whose single REJECTED event carries the
//!   reason the caller was given (non-empty, one line, bounded), the input's size, and an
//!   excerpt of at most [`REJECTED_EXCERPT_BYTES`] input bytes;
//! - an accepted event is stored under the id the parser gives it: recorded (STARTED for
//!   ALARM, IGNORED otherwise), or a duplicate or conflict of an earlier input;
//! - the same bytes submitted again are answered with the same incident: a rejection again for
//!   rejected input (intake has no "duplicate" outcome for it), a duplicate (or the same
//!   conflict) otherwise, and no new execution is started.
//!
//! The store is shared by [`ROTATE`] consecutive inputs, then replaced: opening and migrating
//! a database per input made the store setup most of the cost, and a million inputs in one
//! store would pile up in memory. An input's outcome can therefore depend on the few hundred
//! before it (a duplicate instead of a new record), which the checks allow.

#![no_main]

use alarm_relay::adapters::SqliteStore;
use alarm_relay::event::AlarmEvent;
use alarm_relay::incident::{EventType, IncidentStatus};
use alarm_relay::intake::{Intake, IntakeOutcome, REJECTED_EXCERPT_BYTES};
use alarm_relay::outbox::Dispatcher;
use alarm_relay::ports::IncidentStore;
use alarm_relay::testing::{FakeStarter, FixedClock};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock, Mutex};
use tokio::runtime::Runtime;

/// Built once: a runtime per input would dominate the cost of an execution.
static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
});

/// Inputs that share one store.
const ROTATE: usize = 512;

/// The longest reason accepted as "bounded": an `EventError` quotes at most 80 characters of
/// the input, escaped (up to 12 bytes each), around a fixed message.
const MAX_REASON_BYTES: usize = 2048;

struct Harness {
    store: Arc<dyn IncidentStore>,
    starter: Arc<FakeStarter>,
    intake: Intake,
    used: usize,
}

impl Harness {
    fn new() -> Self {
        let store: Arc<dyn IncidentStore> =
            Arc::new(SqliteStore::open_in_memory().expect("an in-memory store"));
        let starter = Arc::new(FakeStarter::default());
        let clock = Arc::new(FixedClock::at("2026-11-24T10:00:05Z"));
        let dispatcher = Dispatcher::new(store.clone(), starter.clone(), clock);
        let intake = Intake::new(dispatcher, None);
        Self {
            store,
            starter,
            intake,
            used: 0,
        }
    }
}

static HARNESS: LazyLock<Mutex<Harness>> = LazyLock::new(|| Mutex::new(Harness::new()));

fuzz_target!(|data: &[u8]| {
    let mut harness = HARNESS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if harness.used == ROTATE {
        *harness = Harness::new();
    }
    harness.used += 1;
    RUNTIME.block_on(check(&harness, data));
});

async fn check(harness: &Harness, data: &[u8]) {
    let Harness {
        store,
        starter,
        intake,
        ..
    } = harness;
    let parsed = AlarmEvent::parse(data);
    let executions = starter.executions().len();
    let first = intake
        .handle(data)
        .await
        .expect("the in-memory store does not fail");
    let id = first.incident().incident_id.clone();
    let stored = store
        .get(&id)
        .await
        .expect("store read")
        .expect("the answered incident is stored");
    assert_eq!(stored.status, first.incident().status);
    let events = store.events(&id).await.expect("store read");
    match (&first, &parsed) {
        (IntakeOutcome::Rejected { incident, reason }, Err(error)) => {
            assert_eq!(reason, &error.to_string());
            assert_eq!(incident.status, IncidentStatus::Rejected);
            assert!(!reason.is_empty());
            assert!(!reason.contains(['\n', '\r']), "one line: {reason:?}");
            assert!(
                reason.len() <= MAX_REASON_BYTES,
                "bounded: {}",
                reason.len()
            );
            assert_eq!(stored.last_error.as_deref(), Some(reason.as_str()));
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].kind, EventType::Rejected);
            assert_eq!(events[0].data["reason"], reason.as_str());
            assert_eq!(events[0].data["bytes"], data.len());
            let excerpt = events[0].data["excerpt"]
                .as_str()
                .expect("a string excerpt");
            let kept = &data[..data.len().min(REJECTED_EXCERPT_BYTES)];
            // At most REJECTED_EXCERPT_BYTES input bytes: invalid UTF-8 becomes U+FFFD (one
            // character for one or more bytes), so the characters are bounded too.
            assert!(excerpt.chars().count() <= REJECTED_EXCERPT_BYTES);
            assert_eq!(excerpt, String::from_utf8_lossy(kept));
            assert_eq!(starter.executions().len(), executions);
        }
        (IntakeOutcome::Recorded { incident }, Ok(event)) => {
            assert_eq!(&id, event.incident_id());
            assert!(
                matches!(
                    incident.status,
                    IncidentStatus::Started | IncidentStatus::Ignored | IncidentStatus::Received
                ),
                "{:?}",
                incident.status
            );
            assert_eq!(events[0].kind, EventType::Received);
        }
        (
            IntakeOutcome::Duplicate { incident } | IntakeOutcome::Conflict { incident },
            Ok(event),
        ) => {
            assert_eq!(&incident.incident_id, event.incident_id());
            assert_eq!(events[0].kind, EventType::Received);
        }
        (outcome, parsed) => panic!("{outcome:?} for {parsed:?}"),
    }

    let executions = starter.executions().len();
    let recorded = events.len();
    let second = intake
        .handle(data)
        .await
        .expect("the in-memory store does not fail");
    assert_eq!(second.incident().incident_id, id);
    match (&first, &second) {
        (IntakeOutcome::Rejected { reason, .. }, IntakeOutcome::Rejected { reason: again, .. }) => {
            assert_eq!(reason, again);
        }
        (
            IntakeOutcome::Recorded { .. } | IntakeOutcome::Duplicate { .. },
            IntakeOutcome::Duplicate { .. },
        ) => {
            let events = store.events(&id).await.expect("store read");
            assert_eq!(events.len(), recorded, "a copy records nothing");
        }
        (IntakeOutcome::Conflict { .. }, IntakeOutcome::Conflict { .. }) => {}
        (first, second) => panic!("{first:?} then {second:?}"),
    }
    assert_eq!(
        starter.executions().len(),
        executions,
        "a copy starts nothing new"
    );
}
