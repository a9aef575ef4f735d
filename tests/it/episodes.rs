//! Episodes end to end: CloudWatch alarm events POSTed to a real `alarm-relay serve`, the
//! workflow run by the local engine, and the signed bodies a real [`Receiver`] on loopback
//! accepted. A storm of one Network Flow Monitor opens one investigation and updates it; a
//! flap and a muted alarm send nothing; every member recovering resolves the episode once,
//! unless one re-enters ALARM during the quiet period; a window of 0 is the seed.

use alarm_relay::event::AlarmEvent;
use alarm_relay::payload::WebhookBody;
use alarm_relay::receiver::{FaultPlan, Receiver, ReceiverConfig};
use alarm_relay::signing::WebhookSecret;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const METRIC: &str = include_str!("../fixtures/metric-alarm.json");
pub(crate) const SECRET: &str = "episodes-secret";
/// How long any one wait of these tests may take.
const PATIENCE: Duration = Duration::from_secs(15);

/// The storm's alarms: the names' suffixes and the metrics they watch.
const STORM: [&str; 4] = [
    "Timeouts",
    "Retransmissions",
    "RoundTripTime",
    "HealthIndicator",
];

/// A running `serve`, killed when dropped.
pub(crate) struct Serve {
    child: Child,
    url: String,
    client: reqwest::Client,
}

impl Serve {
    pub(crate) fn start(dir: &Path, secret: &Path, extra: &[&str]) -> Self {
        let (child, url, _) = crate::serve_process::spawn(&dir.join("relay.db"), secret, extra);
        Self {
            child,
            url,
            client: alarm_relay::adapters::http_client().unwrap(),
        }
    }

    /// POSTs `event`; answers the 202's `{"incidentId", "status"}`.
    pub(crate) async fn post(&self, event: &Value) -> Value {
        let response = self
            .client
            .post(format!("{}/events", self.url))
            .body(event.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{event}");
        response.json().await.unwrap()
    }

    /// `GET /incidents/{id}`: `{"incident", "events", "history"}`.
    pub(crate) async fn incident(&self, id: &str) -> Value {
        let response = self
            .client
            .get(format!("{}/incidents/{id}", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET /incidents/{id}");
        response.json().await.unwrap()
    }

    /// Polls `GET /incidents/{id}` until `done` holds for it; answers that last answer.
    pub(crate) async fn until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let incident = self.incident(id).await;
            if done(&incident) {
                return incident;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{id}: {what} not reached: {incident:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the incident's execution ended (succeeded) with the incident in `status`.
    pub(crate) async fn settled(&self, id: &str, status: &str) -> Value {
        self.until(id, &format!("{status} and its execution over"), |answer| {
            answer["incident"]["status"] == status && execution_succeeded(answer)
        })
        .await
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn execution_succeeded(answer: &Value) -> bool {
    answer["history"]
        .as_array()
        .is_some_and(|history| history.iter().any(|e| e["type"] == "ExecutionSucceeded"))
}

/// A receiver accepting everything signed with [`SECRET`], and the secret file naming it.
pub(crate) async fn receiver(dir: &Path) -> (Receiver, PathBuf) {
    let receiver = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: None,
            secret: WebhookSecret::new(SECRET),
            record_path: dir.join("received.jsonl"),
            faults: FaultPlan::parse("").unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap();
    let secret = dir.join("secret.json");
    let document = json!({ "WEBHOOK_URL": receiver.url(), "WEBHOOK_SECRET": SECRET });
    std::fs::write(&secret, document.to_string()).unwrap();
    (receiver, secret)
}

/// The receiver's accepted requests, in the order they arrived.
pub(crate) fn accepted(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("received.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line["outcome"] == "accepted")
        .collect()
}

/// The accepted bodies whose `action` is `action`.
fn with_action(dir: &Path, action: &str) -> Vec<Value> {
    accepted(dir)
        .into_iter()
        .filter(|line| line["body"]["action"] == action)
        .collect()
}

/// Waits until the receiver accepted `count` bodies.
pub(crate) async fn until_accepted(dir: &Path, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let lines = accepted(dir);
        if lines.len() >= count {
            return lines;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{} of {count} bodies accepted: {lines:#?}",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) const MONITOR: &str = "arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/";

/// The event time `seconds` after the fixture's 10:00, as CloudWatch writes it.
pub(crate) fn at(seconds: u32) -> String {
    format!(
        "2026-11-24T{:02}:{:02}:{:02}.000+0000",
        10 + seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The metric fixture as the alarm `alarm` of the monitor `monitor` watching `metric`,
/// entering `state` at `timestamp`.
pub(crate) fn event(
    alarm: &str,
    monitor: &str,
    metric: &str,
    state: &str,
    timestamp: &str,
) -> Value {
    let mut event: Value = serde_json::from_str(METRIC).unwrap();
    event["time"] = json!(timestamp.replace(".000+0000", "Z"));
    event["resources"] = json!([format!(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"
    )]);
    let detail = &mut event["detail"];
    detail["alarmName"] = json!(alarm);
    let watched = &mut detail["configuration"]["metrics"][0]["metricStat"]["metric"];
    watched["name"] = json!(metric);
    watched["dimensions"]["MonitorId"] = json!(format!("{MONITOR}{monitor}"));
    let previous = if state == "OK" { "ALARM" } else { "OK" };
    detail["previousState"]["value"] = json!(previous);
    detail["state"]["value"] = json!(state);
    detail["state"]["timestamp"] = json!(timestamp);
    if state == "OK" {
        detail["state"]["reason"] = json!(
            "Threshold Crossed: 1 out of the last 1 datapoints [3.0] was not greater than the threshold (50.0)."
        );
    }
    event
}

/// The storm's alarm number `n` of `monitor`, in `state` at `timestamp`.
fn storm(monitor: &str, n: usize, state: &str, timestamp: &str) -> Value {
    let metric = STORM[n];
    event(
        &format!("NFM-{monitor}-{metric}"),
        monitor,
        metric,
        state,
        timestamp,
    )
}

/// The incident id of `event` (its alarm name and state timestamp).
pub(crate) fn id_of(event: &Value) -> String {
    AlarmEvent::parse(event.to_string().as_bytes())
        .unwrap()
        .incident_id()
        .as_str()
        .to_owned()
}

/// What `alarm-relay render` prints for `event`.
fn rendered(dir: &Path, event: &Value) -> String {
    let path = dir.join("render-event.json");
    std::fs::write(&path, event.to_string()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
        .arg("render")
        .arg("--event")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("the alarm-relay binary runs");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// `line` (a receiver record) carries the seed's body for `event`, byte for byte: what
/// `alarm-relay render` prints, with serve's offline enrichment (if any) under the new key
/// `data.enrichment` at the end (as src/signer.rs's tests compare it).
fn assert_seed_body(dir: &Path, line: &Value, event: &Value) {
    let seed = rendered(dir, event);
    let parsed = AlarmEvent::parse(event.to_string().as_bytes()).unwrap();
    let enrichment = line["body"]["data"].get("enrichment");
    let expected = WebhookBody::render_enriched(&parsed, enrichment);
    let prefix = seed.strip_suffix("}}").unwrap();
    assert!(
        expected.as_str().starts_with(prefix),
        "seed keys first, byte for byte"
    );
    if enrichment.is_none() {
        assert_eq!(expected.as_str(), seed);
    }
    assert_eq!(
        line["bodySha256"],
        expected.sha256_hex(),
        "the accepted bytes are the seed's body (plus data.enrichment): {line:#}"
    );
    let seed: Value = serde_json::from_str(&seed).unwrap();
    for key in ["incidentId", "action", "title", "description", "timestamp"] {
        assert_eq!(line["body"][key], seed[key], "{key}");
    }
    assert_eq!(line["body"]["data"]["metadata"], seed["data"]["metadata"]);
    assert_eq!(line["body"]["action"], "created");
    assert_eq!(line["incidentId"], id_of(event));
    assert!(line["body"]["data"].get("correlation").is_none());
}

/// The `Correlated` entries of an incident's log: `{"seq", "type", "at", "data"}`.
fn correlated_entries(answer: &Value) -> Vec<Value> {
    answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "Correlated")
        .cloned()
        .collect()
}

/// The decisions of an incident's log (the `Correlated` entries' data).
fn correlated(answer: &Value) -> Vec<Value> {
    correlated_entries(answer)
        .into_iter()
        .map(|entry| entry["data"].clone())
        .collect()
}

/// An RFC 3339 time of the API or the receiver's record.
fn time(text: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text.as_str().unwrap())
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .to_utc()
}

/// Opens the episode of `monitor` with its first storm alarm at 10:00 and waits until it is
/// delivered; answers the primary's event.
async fn open(serve: &Serve, dir: &Path, monitor: &str) -> Value {
    let primary = storm(monitor, 0, "ALARM", &at(0));
    let answer = serve.post(&primary).await;
    assert_eq!(answer["incidentId"], id_of(&primary));
    serve.settled(&id_of(&primary), "DELIVERED").await;
    assert_eq!(until_accepted(dir, 1).await.len(), 1);
    primary
}

/// The storm: the first alarm opens the episode; the other three, 5, 10 and 15 s later in
/// event time and POSTed together, join it. Answers the four events, primary first.
async fn storm_of(serve: &Serve, dir: &Path, monitor: &str) -> Vec<Value> {
    let mut events = vec![open(serve, dir, monitor).await];
    let joining: Vec<Value> = (1..4)
        .map(|n| storm(monitor, n, "ALARM", &at(5 * n as u32)))
        .collect();
    tokio::join!(
        serve.post(&joining[0]),
        serve.post(&joining[1]),
        serve.post(&joining[2])
    );
    for event in &joining {
        serve.settled(&id_of(event), "CORRELATED").await;
    }
    events.extend(joining);
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_one_monitor_opens_one_investigation_and_updates_it() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, secret) = receiver(dir.path()).await;
    let serve = Serve::start(dir.path(), &secret, &[]);
    let events = storm_of(&serve, dir.path(), "storm").await;
    let ids: Vec<String> = events.iter().map(id_of).collect();
    let primary = &ids[0];
    let group_key = format!("monitor:{MONITOR}storm");

    let lines = until_accepted(dir.path(), 4).await;
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines.iter().all(|line| line["signatureValid"] == true));
    let created = with_action(dir.path(), "created");
    assert_eq!(created.len(), 1, "one investigation: {created:#?}");
    assert_seed_body(dir.path(), &created[0], &events[0]);

    let updated = with_action(dir.path(), "updated");
    assert_eq!(updated.len(), 3, "{lines:#?}");
    let mut members_seen = Vec::new();
    for line in &updated {
        let body = &line["body"];
        assert_eq!(line["incidentId"], primary.as_str());
        assert_eq!(body["incidentId"], primary.as_str());
        let correlation = &body["data"]["correlation"];
        assert_eq!(correlation["groupKey"], group_key.as_str());
        assert_eq!(correlation["primaryIncidentId"], primary.as_str());
        let own = correlation["incidentId"].as_str().unwrap();
        let n = ids[1..]
            .iter()
            .position(|id| id == own)
            .unwrap_or_else(|| panic!("{own} is one of the joining alarms"))
            + 1;
        let members: Vec<String> = serde_json::from_value(correlation["members"].clone()).unwrap();
        assert_eq!(members[0], events[0]["detail"]["alarmName"]);
        assert_eq!(members.last().unwrap(), &events[n]["detail"]["alarmName"]);
        assert_eq!(
            body["data"]["metadata"]["alarmName"],
            events[n]["detail"]["alarmName"]
        );
        assert_eq!(
            body["title"],
            format!(
                "CloudWatch Alarm: {} joined {}",
                events[n]["detail"]["alarmName"].as_str().unwrap(),
                events[0]["detail"]["alarmName"].as_str().unwrap()
            )
        );
        members_seen.push(members);
    }
    // Each joining alarm saw the episode one member larger, whatever order they joined in.
    members_seen.sort_by_key(Vec::len);
    let sizes: Vec<usize> = members_seen.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 3, 4]);
    let all = &members_seen[2];
    for members in &members_seen {
        assert_eq!(members[..], all[..members.len()], "members only grow");
    }
    let mut names: Vec<&str> = all.iter().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected: Vec<&str> = events
        .iter()
        .map(|event| event["detail"]["alarmName"].as_str().unwrap())
        .collect();
    expected.sort_unstable();
    assert_eq!(names, expected);

    for (n, id) in ids.iter().enumerate() {
        let answer = serve.incident(id).await;
        let incident = &answer["incident"];
        let correlation = &incident["correlation"];
        assert_eq!(correlation["groupKey"], group_key.as_str(), "{answer:#}");
        assert_eq!(correlation["primaryIncidentId"], primary.as_str());
        if n == 0 {
            assert_eq!(incident["status"], "DELIVERED");
            assert_eq!(correlation["decision"], "opened");
        } else {
            assert_eq!(incident["status"], "CORRELATED");
            assert_eq!(correlation["decision"], "joined");
        }
    }
    drop(serve);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_flapping_back_into_alarm_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, secret) = receiver(dir.path()).await;
    let serve = Serve::start(dir.path(), &secret, &[]);
    let primary = open(&serve, dir.path(), "flap").await;
    let primary_id = id_of(&primary);

    // It recovers (counted, nothing sent: resolving is off)…
    let ok = storm("flap", 0, "OK", &at(60));
    serve.post(&ok).await;
    let answer = serve.settled(&id_of(&ok), "IGNORED").await;
    assert_eq!(answer["incident"]["correlation"]["decision"], "recovered");
    // …and re-enters ALARM well inside the window.
    let again = storm("flap", 0, "ALARM", &at(90));
    let again_id = id_of(&again);
    assert_ne!(again_id, primary_id);
    serve.post(&again).await;
    let answer = serve.settled(&again_id, "SUPPRESSED").await;
    let group_key = format!("monitor:{MONITOR}flap");
    let decisions = correlated(&answer);
    assert_eq!(decisions.len(), 1, "{answer:#}");
    let decision = &decisions[0];
    assert_eq!(decision["decision"], "flapping");
    assert_eq!(decision["action"], "none");
    assert_eq!(decision["groupKey"], group_key.as_str());
    assert_eq!(decision["primaryIncidentId"], primary_id.as_str());
    assert_eq!(decision["episode"], 1);
    assert_eq!(
        answer["incident"]["correlation"]["primaryIncidentId"],
        primary_id.as_str()
    );

    let lines = accepted(dir.path());
    assert_eq!(lines.len(), 1, "the flap sent nothing: {lines:#?}");
    assert_eq!(lines[0]["incidentId"], primary_id.as_str());
    assert_eq!(
        serve.incident(&primary_id).await["incident"]["status"],
        "DELIVERED"
    );
    drop(serve);
    receiver.stop().await;
}

/// An ALARM of a new monitor inside the mute window of a CloudWatch alarm mute rule.
fn muted_event() -> Value {
    let mut event = storm("muted", 0, "ALARM", &at(0));
    event["detail"]["muteDetail"] = json!({
        "mutedByArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm-mute-rule:maintenance",
        "muteWindowStart": "2026-11-24T09:30:00Z",
        "muteWindowEnd": "2026-11-24T10:30:00Z",
    });
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_inside_a_mute_window_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, secret) = receiver(dir.path()).await;
    let serve = Serve::start(dir.path(), &secret, &[]);
    let event = muted_event();
    let id = id_of(&event);
    serve.post(&event).await;
    let answer = serve.settled(&id, "MUTED").await;
    let decisions = correlated(&answer);
    assert_eq!(decisions.len(), 1, "{answer:#}");
    assert_eq!(decisions[0]["decision"], "muted");
    assert_eq!(decisions[0]["action"], "none");
    assert_eq!(
        decisions[0]["mutedBy"],
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm-mute-rule:maintenance"
    );
    assert_eq!(decisions[0]["primaryIncidentId"], id.as_str());
    assert!(accepted(dir.path()).is_empty(), "nothing was sent");
    drop(serve);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignoring_mute_rules_delivers_a_muted_alarm_as_created() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, secret) = receiver(dir.path()).await;
    let serve = Serve::start(dir.path(), &secret, &["--ignore-mute-rules"]);
    let event = muted_event();
    let id = id_of(&event);
    serve.post(&event).await;
    let answer = serve.settled(&id, "DELIVERED").await;
    assert_eq!(answer["incident"]["correlation"]["decision"], "opened");
    let lines = until_accepted(dir.path(), 1).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["signatureValid"], true);
    assert_seed_body(dir.path(), &lines[0], &event);
    drop(serve);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_recovering_resolves_the_episode_once() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, secret) = receiver(dir.path()).await;
    let serve = Serve::start(
        dir.path(),
        &secret,
        &["--resolve-on-ok", "--resolve-quiet", "1"],
    );
    let events = storm_of(&serve, dir.path(), "resolve").await;
    let primary = id_of(&events[0]);
    assert_eq!(until_accepted(dir.path(), 4).await.len(), 4);

    // Each member recovers, a minute apart in event time, POSTed one after the other.
    let oks: Vec<Value> = (0..4)
        .map(|n| storm("resolve", n, "OK", &at(60 * (n as u32 + 1))))
        .collect();
    for ok in &oks {
        serve.post(ok).await;
    }
    let lines = until_accepted(dir.path(), 5).await;
    let resolved = with_action(dir.path(), "resolved");
    assert_eq!(resolved.len(), 1, "{lines:#?}");
    let line = &resolved[0];
    assert_eq!(line["signatureValid"], true);
    assert_eq!(line["incidentId"], primary.as_str());
    assert_eq!(line["body"]["incidentId"], primary.as_str());
    let correlation = &line["body"]["data"]["correlation"];
    assert_eq!(
        correlation["groupKey"],
        format!("monitor:{MONITOR}resolve").as_str()
    );
    assert_eq!(correlation["primaryIncidentId"], primary.as_str());
    assert_eq!(correlation["members"].as_array().unwrap().len(), 4);
    let resolver = correlation["incidentId"].as_str().unwrap().to_owned();
    assert!(oks.iter().any(|ok| id_of(ok) == resolver), "{resolver}");

    // Every OK's workflow is over: the one that resolved, and those that only counted.
    for ok in &oks {
        let id = id_of(ok);
        let status = if id == resolver {
            "RESOLVED"
        } else {
            "IGNORED"
        };
        serve.settled(&id, status).await;
    }
    assert_eq!(
        line["body"]["title"],
        format!(
            "CloudWatch Alarm: {} resolved",
            events[0]["detail"]["alarmName"].as_str().unwrap()
        )
    );
    assert_eq!(line["body"]["data"]["metadata"]["newState"], "OK");
    // The resolve went out only after the quiet period, counted from the recovery of the last
    // member (the decision that set it pending).
    let answer = serve.incident(&resolver).await;
    let pending = correlated_entries(&answer)
        .into_iter()
        .find(|entry| entry["data"]["step"] == "Correlate")
        .unwrap();
    assert_eq!(pending["data"]["decision"], "resolve-pending", "{answer:#}");
    assert_eq!(pending["data"]["quietSeconds"], 1);
    let quiet = time(&line["receivedAt"]) - time(&pending["at"]);
    assert!(
        quiet >= chrono::Duration::seconds(1),
        "resolved {quiet} after every member recovered"
    );
    let answer = serve
        .until(&primary, "RESOLVED", |answer| {
            answer["incident"]["status"] == "RESOLVED"
        })
        .await;
    let resolved_entry = answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "Resolved")
        .unwrap_or_else(|| panic!("the primary's log says it was resolved: {answer:#}"));
    assert_eq!(resolved_entry["data"]["resolvedBy"], resolver.as_str());
    let lines = accepted(dir.path());
    assert_eq!(
        lines.len(),
        5,
        "1 created, 3 updated, 1 resolved: {lines:#?}"
    );
    assert_eq!(with_action(dir.path(), "resolved").len(), 1);
    drop(serve);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_back_in_alarm_during_the_quiet_period_cancels_the_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, secret) = receiver(dir.path()).await;
    let serve = Serve::start(
        dir.path(),
        &secret,
        &["--resolve-on-ok", "--resolve-quiet", "3"],
    );
    let events = storm_of(&serve, dir.path(), "reenter").await;
    let primary = id_of(&events[0]);
    assert_eq!(until_accepted(dir.path(), 4).await.len(), 4);

    let oks: Vec<Value> = (0..4)
        .map(|n| storm("reenter", n, "OK", &at(60 * (n as u32 + 1))))
        .collect();
    for ok in &oks {
        serve.post(ok).await;
    }
    // The OK that found every member recovered waits out the quiet period…
    let mut pending = None;
    let started = Instant::now();
    while pending.is_none() {
        for ok in &oks {
            let answer = serve.incident(&id_of(ok)).await;
            if answer["incident"]["correlation"]["decision"] == "resolve-pending" {
                pending = Some(id_of(ok));
            }
        }
        assert!(started.elapsed() < PATIENCE, "no resolve pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pending = pending.unwrap();
    // …and a member re-enters ALARM inside it.
    let reentry = storm("reenter", 2, "ALARM", &at(300));
    serve.post(&reentry).await;
    let answer = serve.settled(&id_of(&reentry), "SUPPRESSED").await;
    assert_eq!(answer["incident"]["correlation"]["decision"], "flapping");
    assert_eq!(
        answer["incident"]["correlation"]["primaryIncidentId"],
        primary.as_str()
    );

    let answer = serve
        .until(&pending, "the resolve confirmed or cancelled", |answer| {
            execution_succeeded(answer)
        })
        .await;
    let confirmation = correlated(&answer)
        .into_iter()
        .find(|decision| decision["step"] == "ConfirmResolve")
        .unwrap_or_else(|| panic!("ConfirmResolve ran: {answer:#}"));
    assert_eq!(confirmation["decision"], "resolve-cancelled", "{answer:#}");
    assert_eq!(confirmation["action"], "none");
    assert_eq!(answer["incident"]["status"], "IGNORED");
    for ok in &oks {
        serve
            .until(&id_of(ok), "its execution over", execution_succeeded)
            .await;
    }

    let lines = accepted(dir.path());
    assert!(with_action(dir.path(), "resolved").is_empty(), "{lines:#?}");
    assert_eq!(lines.len(), 4, "1 created, 3 updated: {lines:#?}");
    assert_eq!(
        serve.incident(&primary).await["incident"]["status"],
        "DELIVERED"
    );
    drop(serve);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_of_zero_delivers_every_alarm_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, secret) = receiver(dir.path()).await;
    let serve = Serve::start(dir.path(), &secret, &["--correlation-window", "0"]);
    let events: Vec<Value> = (0..4)
        .map(|n| storm("seed", n, "ALARM", &at(5 * n as u32)))
        .collect();
    for event in &events {
        let answer = serve.post(event).await;
        assert_eq!(answer["incidentId"], id_of(event));
    }
    for event in &events {
        let answer = serve.settled(&id_of(event), "DELIVERED").await;
        assert_eq!(
            answer["incident"]["correlation"]["decision"],
            "uncorrelated"
        );
    }
    let oks: Vec<Value> = (0..4)
        .map(|n| storm("seed", n, "OK", &at(60 * (n as u32 + 1))))
        .collect();
    for ok in &oks {
        let answer = serve.post(ok).await;
        assert_eq!(answer["status"], "IGNORED", "{answer}");
        let answer = serve.incident(&id_of(ok)).await;
        assert_eq!(answer["incident"]["status"], "IGNORED");
        assert!(
            answer["incident"].get("executionArn").is_none(),
            "{answer:#}"
        );
        assert!(answer["history"].as_array().unwrap().is_empty());
    }

    let lines = until_accepted(dir.path(), 4).await;
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(with_action(dir.path(), "created").len(), 4);
    for event in &events {
        let line = lines
            .iter()
            .find(|line| line["incidentId"] == id_of(event))
            .unwrap_or_else(|| panic!("{} delivered: {lines:#?}", id_of(event)));
        assert_eq!(line["signatureValid"], true);
        assert_seed_body(dir.path(), line, event);
    }
    drop(serve);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_arriving_all_at_once_still_opens_one_investigation() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, secret) = receiver(dir.path()).await;
    let serve = Serve::start(dir.path(), &secret, &[]);
    let events: Vec<Value> = (0..4)
        .map(|n| storm("burst", n, "ALARM", &at(n as u32)))
        .collect();
    tokio::join!(
        serve.post(&events[0]),
        serve.post(&events[1]),
        serve.post(&events[2]),
        serve.post(&events[3])
    );
    let mut primaries = Vec::new();
    for event in &events {
        let id = id_of(event);
        let answer = serve
            .until(&id, "delivered or correlated", |answer| {
                ["DELIVERED", "CORRELATED"]
                    .contains(&answer["incident"]["status"].as_str().unwrap())
                    && execution_succeeded(answer)
            })
            .await;
        if answer["incident"]["status"] == "DELIVERED" {
            primaries.push((id, event.clone()));
        }
    }
    assert_eq!(primaries.len(), 1, "one primary: {primaries:?}");
    let (primary, primary_event) = &primaries[0];
    let lines = until_accepted(dir.path(), 4).await;
    assert_eq!(lines.len(), 4);
    let created = with_action(dir.path(), "created");
    assert_eq!(created.len(), 1);
    assert_seed_body(dir.path(), &created[0], primary_event);
    let updated = with_action(dir.path(), "updated");
    assert_eq!(updated.len(), 3);
    assert!(
        updated
            .iter()
            .all(|line| line["incidentId"] == primary.as_str())
    );
    let mut sizes: Vec<usize> = updated
        .iter()
        .map(|line| {
            line["body"]["data"]["correlation"]["members"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [2, 3, 4]);
    drop(serve);
    receiver.stop().await;
}
