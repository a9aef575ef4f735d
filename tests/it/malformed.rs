//! The malformed-event corpus (`tests/corpus/events/`, one README.md line per file) through
//! the parser and through intake on SQLite in memory: never a panic; a clear reason (not
//! empty, one line, short, echoing no secret-like content); every file recorded REJECTED once
//! with that reason and a bounded excerpt; the same bytes again answered with the same
//! rejected incident (intake answers a repeated rejected input `Rejected` again, found by its
//! content hash, not `Duplicate`) and nothing new recorded or started.

use alarm_relay::adapters::SqliteStore;
use alarm_relay::event::{AlarmEvent, MAX_EVENT_BYTES};
use alarm_relay::incident::{EventType, IncidentStatus};
use alarm_relay::intake::{Intake, IntakeOutcome, REJECTED_EXCERPT_BYTES};
use alarm_relay::outbox::Dispatcher;
use alarm_relay::ports::IncidentStore;
use alarm_relay::testing::{FakeStarter, FixedClock};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/events");

/// Planted in some corpus files; no error message may contain it.
const SECRET_MARK: &str = "whsec_LEAKED_IF_SEEN";

/// The files the parser accepts (the README says why); every other file is refused.
const ACCEPTED: &[&str] = &["alarm-name-empty.json"];

/// An error quotes at most 80 characters of the input around a fixed message.
const MAX_REASON_CHARS: usize = 300;

/// Every corpus file but the README, by name.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(CORPUS)
        .expect("tests/corpus/events exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.file_name().is_some_and(|name| name != "README.md"))
        .map(|path| {
            let name = file_name(&path);
            let bytes = std::fs::read(&path).expect("a readable corpus file");
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|name| name.to_str())
        .expect("a UTF-8 file name")
        .to_owned()
}

fn refused(files: &[(String, Vec<u8>)]) -> impl Iterator<Item = &(String, Vec<u8>)> {
    files
        .iter()
        .filter(|(name, _)| !ACCEPTED.contains(&name.as_str()))
}

/// Not empty, one line, short, and no planted secret.
fn assert_clear(name: &str, reason: &str) {
    assert!(!reason.trim().is_empty(), "{name}: empty reason");
    assert!(
        !reason.contains(['\n', '\r']),
        "{name}: not one line: {reason:?}"
    );
    assert!(
        reason.chars().count() <= MAX_REASON_CHARS,
        "{name}: {} characters: {reason}",
        reason.chars().count()
    );
    assert!(
        !reason.contains(SECRET_MARK),
        "{name}: echoes a secret: {reason}"
    );
}

#[test]
fn the_corpus_is_large_enough_and_every_file_is_described() {
    let files = corpus();
    assert!(files.len() >= 25, "{} files", files.len());
    let readme = std::fs::read_to_string(Path::new(CORPUS).join("README.md")).unwrap();
    let described: BTreeSet<&str> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("- `")?.split_once('`'))
        .map(|(name, _)| name)
        .collect();
    let present: BTreeSet<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(described, present, "README.md lines and files differ");
    for accepted in ACCEPTED {
        assert!(
            present.contains(accepted),
            "{accepted} is not in the corpus"
        );
    }
    assert!(
        files.iter().any(|(_, bytes)| bytes.len() > MAX_EVENT_BYTES),
        "an oversized body"
    );
    assert!(
        files
            .iter()
            .any(|(_, bytes)| std::str::from_utf8(bytes).is_err()),
        "invalid UTF-8"
    );
}

#[test]
fn the_parser_refuses_every_malformed_file_with_a_clear_reason() {
    for (name, bytes) in &corpus() {
        let parsed = std::panic::catch_unwind(|| AlarmEvent::parse(bytes))
            .unwrap_or_else(|_| panic!("{name}: the parser panicked"));
        match parsed {
            Err(error) => {
                assert!(
                    !ACCEPTED.contains(&name.as_str()),
                    "{name}: now refused ({error}): update ACCEPTED and the README"
                );
                assert_clear(name, &error.to_string());
            }
            Ok(event) => assert!(
                ACCEPTED.contains(&name.as_str()),
                "{name}: accepted as {}",
                event.incident_id()
            ),
        }
    }
}

#[tokio::test]
async fn intake_records_every_malformed_file_rejected_once_and_answers_a_copy_the_same() {
    let store: Arc<dyn IncidentStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let starter = Arc::new(FakeStarter::default());
    let clock = Arc::new(FixedClock::at("2026-11-24T10:00:05Z"));
    let intake = Intake::new(Dispatcher::new(store.clone(), starter.clone(), clock), None);
    let files = corpus();
    let mut ids = BTreeSet::new();
    for (name, bytes) in refused(&files) {
        let mut answers = Vec::new();
        for _ in 0..2 {
            // On a task of its own, so that a panic names the file.
            let (handler, input) = (intake.clone(), bytes.clone());
            let outcome = tokio::spawn(async move { handler.handle(&input).await })
                .await
                .unwrap_or_else(|error| panic!("{name}: intake panicked: {error}"))
                .unwrap_or_else(|error| panic!("{name}: store error: {error}"));
            let IntakeOutcome::Rejected { incident, reason } = outcome else {
                panic!("{name}: {outcome:?}")
            };
            answers.push((incident, reason));
        }
        let (first, reason) = &answers[0];
        let (second, reason_again) = &answers[1];
        assert_clear(name, reason);
        assert_eq!(
            reason,
            &AlarmEvent::parse(bytes).unwrap_err().to_string(),
            "{name}"
        );
        assert_eq!(first.status, IncidentStatus::Rejected, "{name}");
        assert_eq!(
            second.incident_id, first.incident_id,
            "{name}: same incident"
        );
        assert_eq!(reason_again, reason, "{name}: same reason");
        assert!(
            ids.insert(first.incident_id.clone()),
            "{name}: id {} is another file's",
            first.incident_id
        );

        let stored = store.get(&first.incident_id).await.unwrap().unwrap();
        assert_eq!(stored.status, IncidentStatus::Rejected, "{name}");
        assert_eq!(
            stored.last_error.as_deref(),
            Some(reason.as_str()),
            "{name}"
        );
        let events = store.events(&first.incident_id).await.unwrap();
        assert_eq!(events.len(), 1, "{name}: the copy recorded nothing new");
        assert_eq!(events[0].kind, EventType::Rejected, "{name}");
        let data = &events[0].data;
        assert_eq!(data["reason"], reason.as_str(), "{name}");
        assert_eq!(data["bytes"], bytes.len(), "{name}");
        let excerpt = data["excerpt"].as_str().unwrap();
        let kept = &bytes[..bytes.len().min(REJECTED_EXCERPT_BYTES)];
        assert_eq!(excerpt, String::from_utf8_lossy(kept), "{name}");
        assert!(
            excerpt.chars().count() <= REJECTED_EXCERPT_BYTES,
            "{name}: excerpt of {} characters",
            excerpt.chars().count()
        );
    }
    let rejected = store
        .by_status(IncidentStatus::Rejected, None, 1000)
        .await
        .unwrap();
    assert_eq!(rejected.len(), refused(&files).count());
    assert_eq!(starter.calls(), 0, "nothing malformed is started");
}

#[tokio::test]
async fn the_accepted_oddities_are_recorded_as_events() {
    let store: Arc<dyn IncidentStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let starter = Arc::new(FakeStarter::default());
    let clock = Arc::new(FixedClock::at("2026-11-24T10:00:05Z"));
    let intake = Intake::new(Dispatcher::new(store.clone(), starter.clone(), clock), None);
    for (name, bytes) in corpus()
        .iter()
        .filter(|(name, _)| ACCEPTED.contains(&name.as_str()))
    {
        let outcome = intake.handle(bytes).await.unwrap();
        assert!(
            matches!(outcome, IntakeOutcome::Recorded { .. }),
            "{name}: {outcome:?}"
        );
        let again = intake.handle(bytes).await.unwrap();
        assert!(
            matches!(&again, IntakeOutcome::Duplicate { incident } if incident.incident_id == outcome.incident().incident_id),
            "{name}: {again:?}"
        );
    }
}
