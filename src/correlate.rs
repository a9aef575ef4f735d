//! The Correlate and ConfirmResolve states of the workflow: which episode an alarm transition
//! belongs to, and whether its investigation is opened, updated, left alone or resolved (the
//! rules are [`crate::episode`]'s). The recorder Lambda runs both (they are bookkeeping on the
//! incident table, like Record), and so does the local engine.
//!
//! Input is `{"step": "Correlate" | "ConfirmResolve", "incidentId", "event", "enriched"?}`;
//! the answer is the decision (see [`handle`]), which the state machine's Choice routes on
//! (`action`) and the Deliver state renders. Each decision is recorded once, in the same
//! conditional write as the episode it changes: a retried or redriven state finds it in the
//! incident's log and answers it again, so a replay decides the same way.

use crate::config::CorrelationConfig;
use crate::episode::{self, Confirmation, Decision, Episode, Transition};
use crate::event::{AlarmEvent, IncidentId};
use crate::incident::{Correlation, EventType, Incident, IncidentStatus, NewEvent};
use crate::ports::{Clock, IncidentStore, StoreError};
use crate::recorder::RecorderError;
use crate::routing;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The `step` of the Correlate state.
pub const CORRELATE: &str = "Correlate";
/// The `step` of the ConfirmResolve state.
pub const CONFIRM_RESOLVE: &str = "ConfirmResolve";
/// How often a decision is taken again after another writer changed the episode or the
/// incident first, before giving up (as retryable).
/// 30, not 20: the last of 50 concurrent alarms of one group needed up to 23 (moto, with backoff).
const MAX_DECISION_ATTEMPTS: usize = 30;
/// The first ceiling of the pause before deciding again; doubled per attempt up to
/// [`BACKOFF_CAP`], full jitter. Without it the losers of a race reread in lockstep, one wins per
/// round, and the k-th of k alarms of one group needs k attempts (measured on moto: 50 alarms,
/// 20 attempts, 30 gave up).
const BACKOFF_BASE: Duration = Duration::from_millis(10);
/// The longest pause between two attempts: all 30 sleep at most 24 s (about 12 s expected), inside
/// the recorder Lambda's 30 s timeout.
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// The states' input; other fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepInput {
    step: String,
    incident_id: String,
    event: Value,
    /// The Enrich state's result: `{"enrichment": {…, "tags"}}`, or a caught error.
    #[serde(default)]
    enriched: Option<Value>,
}

/// Runs the step `input` names. Answers the decision: `{"step", "decision", "action",
/// "groupKey", "groupedBy", "primaryIncidentId", "incidentId", "episode", "members"}`, plus
/// `reason`, `mutedBy` or `quietSeconds` where they apply. `action` is `created` or `updated`
/// (deliver), `resolve-pending` (wait `quietSeconds`, then ConfirmResolve), `resolved`
/// (deliver the resolve) or `none`.
pub async fn handle(
    input: &Value,
    config: &CorrelationConfig,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<Value, RecorderError> {
    let input: StepInput = serde_json::from_value(input.clone()).map_err(|error| {
        RecorderError::Invalid(format!("{CORRELATE}/{CONFIRM_RESOLVE} input: {error}"))
    })?;
    let event = AlarmEvent::from_value(input.event)
        .map_err(|error| RecorderError::Invalid(format!("{} input: event: {error}", input.step)))?;
    let id = IncidentId::from_raw(input.incident_id);
    let tags = input
        .enriched
        .as_ref()
        .and_then(|enriched| enriched.pointer("/enrichment/tags"));
    let decision = match input.step.as_str() {
        CORRELATE => correlate(&id, &event, tags, config, store, clock).await?,
        CONFIRM_RESOLVE => confirm(&id, store, clock).await?,
        other => {
            return Err(RecorderError::Invalid(format!(
                "unknown step {other:?}: expected {CORRELATE} or {CONFIRM_RESOLVE}"
            )));
        }
    };
    tracing::info!(
        incident_id = id.as_str(),
        step = input.step,
        decision = decision["decision"].as_str(),
        action = decision["action"].as_str(),
        group_key = decision["groupKey"].as_str(),
        "correlation decided"
    );
    Ok(decision)
}

/// The decision `step` already recorded for the incident, if any.
async fn recorded(
    store: &dyn IncidentStore,
    id: &IncidentId,
    step: &str,
) -> Result<Option<Value>, StoreError> {
    Ok(store
        .events(id)
        .await?
        .into_iter()
        .find(|event| event.kind == EventType::Correlated && event.data["step"] == step)
        .map(|event| event.data))
}

async fn current(store: &dyn IncidentStore, id: &IncidentId) -> Result<Incident, RecorderError> {
    store
        .get(id)
        .await?
        .ok_or_else(|| RecorderError::Invalid(format!("no incident {id}")))
}

fn grouped_by(group_key: &str) -> &'static str {
    match group_key.split_once(':').map(|(kind, _)| kind) {
        Some("group") => "tag",
        Some("monitor") => "monitor",
        _ => "alarm",
    }
}

async fn correlate(
    id: &IncidentId,
    event: &AlarmEvent,
    tags: Option<&Value>,
    config: &CorrelationConfig,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<Value, RecorderError> {
    let group_key = episode::group_key(event, tags);
    let transition =
        Transition::of(event).map_err(|error| RecorderError::Invalid(error.to_string()))?;
    for attempt in 0..MAX_DECISION_ATTEMPTS {
        back_off(attempt).await;
        if let Some(decision) = recorded(store, id, CORRELATE).await? {
            return Ok(decision);
        }
        let incident = current(store, id).await?;
        if !routing::enabled(tags).0 {
            return skip(id, &group_key, incident, store, clock).await;
        }
        let stored = store.episode(&group_key).await?;
        let (decision, write) = episode::decide(config, &group_key, stored.as_ref(), &transition);
        // The episode the incident is part of: the one written, or the one that stays.
        let episode = write.as_ref().or(stored.as_ref()).filter(|_| {
            !matches!(
                decision,
                Decision::Uncorrelated | Decision::Muted { .. } | Decision::Ignored { .. }
            )
        });
        let mut data = decision_data(CORRELATE, id, &group_key, episode);
        data.insert("decision".into(), json!(decision.name()));
        data.insert("action".into(), json!(decision.action()));
        match &decision {
            Decision::Muted { rule } => {
                data.insert("mutedBy".into(), json!(rule));
            }
            Decision::Ignored { reason } => {
                data.insert("reason".into(), json!(reason));
            }
            Decision::Recovered { resolve: true } => {
                data.insert("quietSeconds".into(), json!(config.resolve_quiet.as_secs()));
            }
            Decision::UpdateLimit => {
                data.insert(
                    "reason".into(),
                    json!(format!(
                        "the episode sent its {} updates (or tracks {} alarms) already",
                        config.max_updates,
                        episode::MAX_MEMBERS
                    )),
                );
            }
            _ => {}
        }
        if tags.is_none() {
            data.insert(
                "note".into(),
                json!("no alarm tags (enrichment failed or found no alarm): grouped without them"),
            );
        }
        let now = clock.now();
        let mut next = incident.advance(now);
        next.correlation = Some(correlation(&data));
        match decision {
            Decision::Flapping | Decision::UpdateLimit => {
                next.status = IncidentStatus::Suppressed;
            }
            Decision::Muted { .. } => next.status = IncidentStatus::Muted,
            Decision::Recovered { .. } | Decision::Ignored { .. } => {
                next.status = IncidentStatus::Ignored;
            }
            Decision::Uncorrelated | Decision::Opened | Decision::Joined => {}
        }
        if let Some(decision) = record(store, write.as_ref(), &next, data, now).await? {
            return Ok(decision);
        }
    }
    Err(contended(id))
}

async fn confirm(
    id: &IncidentId,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<Value, RecorderError> {
    for attempt in 0..MAX_DECISION_ATTEMPTS {
        back_off(attempt).await;
        if let Some(decision) = recorded(store, id, CONFIRM_RESOLVE).await? {
            return Ok(decision);
        }
        let incident = current(store, id).await?;
        let group_key = incident
            .correlation
            .as_ref()
            .map(|correlation| correlation.group_key.clone())
            .ok_or_else(|| {
                RecorderError::Invalid(format!(
                    "incident {id} has no correlation: {CONFIRM_RESOLVE} runs after {CORRELATE}"
                ))
            })?;
        let stored = store.episode(&group_key).await?;
        let now = clock.now();
        let (confirmation, write) = episode::confirm_resolve(stored.as_ref(), id, now);
        let mut data = decision_data(CONFIRM_RESOLVE, id, &group_key, stored.as_ref());
        match &confirmation {
            Confirmation::Resolved => {
                data.insert("decision".into(), json!("resolved"));
                data.insert("action".into(), json!("resolved"));
                // The signer sends `resolved` after each member's own message.
                let members: Vec<&IncidentId> = stored
                    .iter()
                    .flat_map(|episode| &episode.members)
                    .map(|member| &member.incident_id)
                    .collect();
                data.insert("memberIncidents".into(), json!(members));
            }
            Confirmation::Cancelled { reason } => {
                data.insert("decision".into(), json!("resolve-cancelled"));
                data.insert("action".into(), json!("none"));
                data.insert("reason".into(), json!(reason));
            }
        }
        let mut next = incident.advance(now);
        if let Some(correlation) = &mut next.correlation {
            correlation.decision = data["decision"].as_str().unwrap_or_default().to_owned();
        }
        if let Some(decision) = record(store, write.as_ref(), &next, data, now).await? {
            return Ok(decision);
        }
    }
    Err(contended(id))
}

/// Before attempt `attempt` (none before the first): a pause uniform in
/// `[0, min(BACKOFF_BASE * 2^(attempt - 1), BACKOFF_CAP)]`, so that deciders who lost a race
/// spread out instead of rereading together.
async fn back_off(attempt: usize) {
    if attempt == 0 {
        return;
    }
    let doublings = u32::try_from(attempt - 1).unwrap_or(u32::MAX).min(16);
    let ceiling = BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_CAP);
    // The standard library's randomly keyed hasher: enough for jitter.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = u32::try_from(random % 1_000).unwrap_or(0);
    tokio::time::sleep(ceiling * fraction / 1_000).await;
}

/// An alarm that opted out (`alarm-relay:enabled` = `false`): SKIPPED, part of no episode,
/// never delivered, the decision recorded like any other.
async fn skip(
    id: &IncidentId,
    group_key: &str,
    incident: Incident,
    store: &dyn IncidentStore,
    clock: &dyn Clock,
) -> Result<Value, RecorderError> {
    let mut data = decision_data(CORRELATE, id, group_key, None);
    data.insert("decision".into(), json!("skipped"));
    data.insert("action".into(), json!("none"));
    data.insert(
        "reason".into(),
        json!(format!("the alarm's {} tag is false", routing::ENABLED_TAG)),
    );
    let now = clock.now();
    let mut next = incident.advance(now);
    next.correlation = Some(correlation(&data));
    next.status = IncidentStatus::Skipped;
    // Another writer changed the incident: the state's Retry (Store.Unavailable) decides again.
    record(store, None, &next, data, now).await?.ok_or_else(|| {
        StoreError::Unavailable(format!("incident {id} changed while it was skipped")).into()
    })
}

/// Records `data` as the incident's decision, with the projection `next` and the episode
/// `write`, in one conditional write. `None`: another writer got there first (decide again).
async fn record(
    store: &dyn IncidentStore,
    write: Option<&Episode>,
    next: &Incident,
    data: Map<String, Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Value>, RecorderError> {
    let data = Value::Object(data);
    let log = NewEvent::new(EventType::Correlated, now, data.clone());
    match store.decide(write, next, &log).await {
        Ok(()) => Ok(Some(data)),
        Err(StoreError::VersionConflict(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn contended(id: &IncidentId) -> RecorderError {
    RecorderError::Store(StoreError::Unavailable(format!(
        "incident {id}: its episode kept changing under {MAX_DECISION_ATTEMPTS} attempts"
    )))
}

/// The fields every decision carries; without an episode the incident is its own primary.
fn decision_data(
    step: &str,
    id: &IncidentId,
    group_key: &str,
    episode: Option<&Episode>,
) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("step".into(), json!(step));
    data.insert("groupKey".into(), json!(group_key));
    data.insert("groupedBy".into(), json!(grouped_by(group_key)));
    data.insert(
        "primaryIncidentId".into(),
        json!(episode.map_or(id, |episode| &episode.primary_incident_id)),
    );
    data.insert("incidentId".into(), json!(id));
    data.insert(
        "episode".into(),
        json!(episode.map(|episode| episode.number)),
    );
    data.insert(
        "members".into(),
        json!(episode.map(Episode::member_names).unwrap_or_default()),
    );
    data
}

fn correlation(data: &Map<String, Value>) -> Correlation {
    let text = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Correlation {
        group_key: text("groupKey"),
        primary_incident_id: IncidentId::from_raw(text("primaryIncidentId")),
        decision: text("decision"),
        members: data
            .get("members")
            .and_then(Value::as_array)
            .map(|members| {
                members
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::SqliteStore;
    use crate::intake::Intake;
    use crate::outbox::Dispatcher;
    use crate::testing::{FakeStarter, FixedClock};
    use std::sync::Arc;

    const METRIC: &str = include_str!("../tests/fixtures/metric-alarm.json");

    /// The fixture as alarm `alarm` of the same monitor, in `state` at `at`.
    fn event(alarm: &str, state: &str, at: &str) -> Value {
        let mut event: Value = serde_json::from_str(METRIC).unwrap();
        event["detail"]["alarmName"] = json!(alarm);
        event["resources"] = json!([format!("arn:aws:cloudwatch:us-east-1:1:alarm:{alarm}")]);
        event["detail"]["state"]["value"] = json!(state);
        event["detail"]["state"]["timestamp"] = json!(at);
        event
    }

    /// Records `event` through intake (correlation on) and runs `step` on it.
    async fn step(store: &Arc<SqliteStore>, event: &Value, step: &str) -> Value {
        let clock = Arc::new(FixedClock::at("2026-11-24T10:30:00Z"));
        let dispatcher = Dispatcher::new(
            store.clone(),
            Arc::new(FakeStarter::default()),
            clock.clone(),
        );
        let outcome = Intake::new(dispatcher, None)
            .starting_recoveries(true)
            .handle(event.to_string().as_bytes())
            .await
            .unwrap();
        let id = outcome.incident().incident_id.clone();
        let config = CorrelationConfig {
            resolve_on_ok: true,
            ..CorrelationConfig::default()
        };
        let input = json!({"step": step, "incidentId": id, "event": event, "enriched": {"enrichment": {"tags": {}}}});
        handle(&input, &config, store.as_ref(), clock.as_ref())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_decision_is_recorded_once_and_answered_again_on_retry() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let opened = step(
            &store,
            &event("A", "ALARM", "2026-11-24T10:00:00.000+0000"),
            CORRELATE,
        )
        .await;
        assert_eq!(
            (opened["decision"].as_str(), opened["action"].as_str()),
            (Some("opened"), Some("created"))
        );
        let joined = event("B", "ALARM", "2026-11-24T10:01:00.000+0000");
        let first = step(&store, &joined, CORRELATE).await;
        assert_eq!(first["action"], "updated");
        assert_eq!(first["primaryIncidentId"], opened["incidentId"]);
        assert_eq!(first["members"], json!(["A", "B"]));
        let id = IncidentId::from_raw(first["incidentId"].as_str().unwrap());
        let before = store.events(&id).await.unwrap().len();
        // A retry (or redrive) of the state: the same answer, nothing written.
        assert_eq!(step(&store, &joined, CORRELATE).await, first);
        assert_eq!(store.events(&id).await.unwrap().len(), before);
        let episode = store
            .episode(first["groupKey"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((episode.updates, episode.members.len()), (1, 2));
        let incident = store.get(&id).await.unwrap().unwrap();
        assert_eq!(incident.correlation.unwrap().decision, "joined");
    }

    #[tokio::test]
    async fn flaps_are_suppressed_and_recoveries_lead_to_one_resolve() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        step(
            &store,
            &event("A", "ALARM", "2026-11-24T10:00:00.000+0000"),
            CORRELATE,
        )
        .await;
        let flap = step(
            &store,
            &event("A", "ALARM", "2026-11-24T10:02:00.000+0000"),
            CORRELATE,
        )
        .await;
        assert_eq!(
            (flap["decision"].as_str(), flap["action"].as_str()),
            (Some("flapping"), Some("none"))
        );
        let flap_id = IncidentId::from_raw(flap["incidentId"].as_str().unwrap());
        assert_eq!(
            store.get(&flap_id).await.unwrap().unwrap().status,
            IncidentStatus::Suppressed
        );

        let ok = event("A", "OK", "2026-11-24T10:05:00.000+0000");
        let pending = step(&store, &ok, CORRELATE).await;
        assert_eq!(pending["action"], "resolve-pending");
        assert_eq!(pending["quietSeconds"], 300);
        let resolved = step(&store, &ok, CONFIRM_RESOLVE).await;
        assert_eq!(resolved["action"], "resolved");
        assert!(
            resolved["memberIncidents"]
                .as_array()
                .is_some_and(|m| m.len() == 1)
        );
        // Confirming again answers the recorded decision, not a second resolve.
        assert_eq!(step(&store, &ok, CONFIRM_RESOLVE).await, resolved);
        // The group's next ALARM opens a new episode.
        let next = step(
            &store,
            &event("A", "ALARM", "2026-11-24T10:06:00.000+0000"),
            CORRELATE,
        )
        .await;
        assert_eq!(
            (next["decision"].as_str(), next["episode"].as_u64()),
            (Some("opened"), Some(2))
        );
    }

    #[tokio::test]
    async fn a_muted_alarm_is_recorded_muted_with_its_rule() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let mut muted = event("A", "ALARM", "2026-11-24T10:00:00.000+0000");
        muted["detail"]["muteDetail"] = json!({
            "mutedByArn": "arn:aws:cloudwatch:us-east-1:1:alarm-mute-rule:patching",
            "muteWindowStart": "2026-11-24T09:00:00.000+0000",
            "muteWindowEnd": "2026-11-24T11:00:00.000+0000"
        });
        let decision = step(&store, &muted, CORRELATE).await;
        assert_eq!(decision["decision"], "muted");
        assert!(decision["mutedBy"].as_str().unwrap().ends_with("patching"));
        let id = IncidentId::from_raw(decision["incidentId"].as_str().unwrap());
        assert_eq!(
            store.get(&id).await.unwrap().unwrap().status,
            IncidentStatus::Muted
        );
        assert_eq!(
            store
                .episode(decision["groupKey"].as_str().unwrap())
                .await
                .unwrap(),
            None
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        /// Random transitions of four alarms of one monitor, with exact copies (EventBridge's
        /// duplicates), in any order of event time.
        fn storm() -> impl Strategy<Value = Vec<Value>> {
            prop::collection::vec((0..4usize, any::<bool>(), 0..30u32, any::<bool>()), 1..16)
                .prop_map(|items| {
                    let mut events = Vec::new();
                    for (alarm, alarm_state, minute, copy) in items {
                        let at = format!("2026-11-24T10:{minute:02}:00.000+0000");
                        let state = if alarm_state { "ALARM" } else { "OK" };
                        let event = event(["A", "B", "C", "D"][alarm], state, &at);
                        if copy {
                            events.push(event.clone());
                        }
                        events.push(event);
                    }
                    events
                })
        }

        /// Each event's Correlate decision, in arrival order, on a fresh store.
        fn decide_all(events: &[Value]) -> Vec<Value> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let store = Arc::new(SqliteStore::open_in_memory().unwrap());
                let mut decisions = Vec::new();
                for event in events {
                    decisions.push(step(&store, event, CORRELATE).await);
                }
                decisions
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            /// Never two `created` for one episode; a flap, a duplicate or a recovery never
            /// sends; a replay of the same events decides the same way.
            #[test]
            fn one_created_per_episode_and_replays_agree(events in storm()) {
                let decisions = decide_all(&events);
                let mut created: BTreeMap<u64, usize> = BTreeMap::new();
                let mut by_incident: BTreeMap<String, &Value> = BTreeMap::new();
                for decision in &decisions {
                    // A copy of an event (or another event under the same incident id, which
                    // intake records as a conflict) answers the incident's first decision.
                    let id = decision["incidentId"].as_str().unwrap().to_owned();
                    if let Some(first) = by_incident.get(&id) {
                        prop_assert_eq!(*first, decision);
                        continue;
                    }
                    by_incident.insert(id, decision);
                    let action = decision["action"].as_str().unwrap();
                    match decision["decision"].as_str().unwrap() {
                        "opened" => {
                            *created.entry(decision["episode"].as_u64().unwrap()).or_default() += 1;
                            prop_assert_eq!(action, "created");
                        }
                        "joined" => prop_assert_eq!(action, "updated"),
                        _ => prop_assert!(action == "none" || action == "resolve-pending", "{}", decision),
                    }
                }
                prop_assert!(created.values().all(|count| *count == 1), "{:?}", created);
                prop_assert_eq!(decide_all(&events), decisions);
            }
        }
    }

    #[tokio::test]
    async fn bad_input_is_payload_invalid() {
        let store = SqliteStore::open_in_memory().unwrap();
        let clock = FixedClock::at("2026-11-24T10:30:00Z");
        let event = event("A", "ALARM", "2026-11-24T10:00:00.000+0000");
        for input in [
            json!({"step": "Correlate"}),
            json!({"step": "Guess", "incidentId": "x", "event": event}),
            json!({"step": "Correlate", "incidentId": "x", "event": {"detail": {}}}),
            json!({"step": "Correlate", "incidentId": "not-recorded", "event": event}),
        ] {
            let error = handle(&input, &CorrelationConfig::default(), &store, &clock)
                .await
                .unwrap_err();
            assert_eq!(error.error_type(), "Payload.Invalid", "{error}");
        }
    }
}
