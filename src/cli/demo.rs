//! `demo`: the whole pipeline on this machine, with no AWS. In a temporary directory it starts
//! a receiver that checks signatures like DevOps Agent (scripted to answer a `503` and then drop
//! a connection), and the pipeline `serve` runs behind its HTTP intake. It POSTs a Network Flow
//! Monitor storm: three alarms of one monitor (one of them flapping, one event sent twice, as
//! EventBridge may), an alarm of another monitor, then every member's recovery. It follows each
//! incident through the state machine (Enrich, Correlate, Deliver with the definition's own
//! retries, Record; the quiet period and ConfirmResolve), prints the audit, and exits 0 only if
//! the receiver's record shows one investigation per monitor, each message accepted exactly
//! once with a valid signature: `created`, an `updated` per other alarm, nothing for the flap,
//! one `resolved`.
//!
//! Unless `--alarms` says otherwise, the enricher answers Network Flow Monitor's top
//! contributors from `tests/fixtures/alarm-file/top-contributors.json` (flows from EKS to a
//! database in another VPC through a transit gateway), so each investigation carries its worst
//! flows under `data.enrichment.network`.

use super::CliError;
use crate::engine::pipeline::Pipeline;
use crate::event::IncidentId;
use crate::incident::{EventType, IncidentEvent, IncidentStatus};
use crate::receiver::{FaultPlan, Receiver, ReceiverConfig};
use crate::secret::secret_from_json;
use crate::signing::TOLERANCE_IN_SECONDS;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

const METRIC_ALARM: &str = include_str!("../../tests/fixtures/metric-alarm.json");
const OTHER_MONITOR: &str = include_str!("../../tests/fixtures/metric-math-alarm.json");
/// What Network Flow Monitor answers the demo (an alarm file of top contributors only).
const TOP_CONTRIBUTORS: &str =
    include_str!("../../tests/fixtures/alarm-file/top-contributors.json");
const FAULTS: &str = "503,drop";
/// Longer than the definition's whole Deliver retry schedule (2+4+8+16+32+60 s, jittered).
const DEADLINE: Duration = Duration::from_secs(180);
const POLL: Duration = Duration::from_millis(100);

/// The demo's options: the episode rules, as `serve` takes them. The demo always resolves on
/// OK (to show it), after a quiet period of 2 s unless `--resolve-quiet` says otherwise.
#[derive(Debug, clap::Args)]
pub(super) struct DemoArgs {
    #[command(flatten)]
    correlation: super::CorrelationArgs,
    /// Its --dry-run: the receiver should see no request, and every incident that would send
    /// ends DRY_RUN.
    #[command(flatten)]
    routing: super::RoutingArgs,
}

/// The demo's quiet period before resolving, unless `--resolve-quiet` is given.
const DEMO_QUIET: Duration = Duration::from_secs(2);

/// One transition of the storm: alarm, metric, state, `state.timestamp`.
type Step = (&'static str, &'static str, &'static str, &'static str);

/// The storm, in the order it arrives. Times are the alarms' own (event time).
const STORM: [Step; 9] = [
    (
        "NFM-EKS-DB-Timeouts",
        "Timeouts",
        "ALARM",
        "2026-11-24T10:00:00.000+0000",
    ),
    (
        "NFM-EKS-DB-Retransmissions",
        "Retransmissions",
        "ALARM",
        "2026-11-24T10:00:30.000+0000",
    ),
    (
        "NFM-EKS-DB-Timeouts",
        "Timeouts",
        "ALARM",
        "2026-11-24T10:00:00.000+0000",
    ),
    (
        "NFM-EKS-DB-RoundTripTime",
        "RoundTripTime",
        "ALARM",
        "2026-11-24T10:01:00.000+0000",
    ),
    (
        "NFM-EKS-DB-Timeouts",
        "Timeouts",
        "OK",
        "2026-11-24T10:03:00.000+0000",
    ),
    (
        "NFM-EKS-DB-Timeouts",
        "Timeouts",
        "ALARM",
        "2026-11-24T10:04:00.000+0000",
    ),
    (
        "NFM-EKS-DB-Timeouts",
        "Timeouts",
        "OK",
        "2026-11-24T10:06:00.000+0000",
    ),
    (
        "NFM-EKS-DB-Retransmissions",
        "Retransmissions",
        "OK",
        "2026-11-24T10:06:10.000+0000",
    ),
    (
        "NFM-EKS-DB-RoundTripTime",
        "RoundTripTime",
        "OK",
        "2026-11-24T10:06:20.000+0000",
    ),
];

/// The metric fixture as the alarm `alarm` of the same monitor, watching `metric`, in `state`
/// at `at`.
fn storm_event(alarm: &str, metric: &str, state: &str, at: &str) -> String {
    let mut event: Value = serde_json::from_str(METRIC_ALARM).unwrap_or_default();
    event["resources"] = json!([format!(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"
    )]);
    event["detail"]["alarmName"] = json!(alarm);
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["name"] = json!(metric);
    let (previous, reason) = match state {
        "OK" => (
            "ALARM",
            "Threshold Crossed: 1 out of the last 1 datapoints was not greater than the threshold (50.0).",
        ),
        _ => (
            "OK",
            "Threshold Crossed: 1 out of the last 1 datapoints was greater than the threshold (50.0).",
        ),
    };
    event["detail"]["state"] = json!({ "value": state, "reason": reason, "timestamp": at });
    event["detail"]["previousState"]["value"] = json!(previous);
    event.to_string()
}

pub(super) async fn run(args: DemoArgs) -> Result<(), CliError> {
    let mut correlation = args.correlation.config(DEMO_QUIET);
    correlation.resolve_on_ok = true;
    let dir = tempfile::tempdir().map_err(|error| CliError::input("temporary directory", error))?;
    let record_path = dir.path().join("received.jsonl");
    let secret_path = dir.path().join("webhook-secret.json");
    let db = dir.path().join("alarm-relay.db");
    let demo_secret = format!("demo-{}", std::process::id());
    let receiver = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: None,
            secret: secret_from_json(&json!({ "WEBHOOK_SECRET": demo_secret }).to_string())
                .map_err(|error| CliError::input("demo secret", error))?,
            record_path: record_path.clone(),
            faults: FaultPlan::parse(FAULTS)
                .map_err(|error| CliError::input("demo faults", error))?,
            tolerance: Duration::from_secs(TOLERANCE_IN_SECONDS),
        },
    )
    .await
    .map_err(|error| CliError::input("demo receiver", error))?;
    let document = json!({ "WEBHOOK_URL": receiver.url(), "WEBHOOK_SECRET": demo_secret });
    std::fs::write(&secret_path, document.to_string())
        .map_err(|error| CliError::input(secret_path.display(), error))?;

    let flows = crate::adapters::local::FileAlarmSource::from_json(TOP_CONTRIBUTORS)
        .map_err(|error| CliError::input("demo top contributors", error))?;
    let pipeline = args.routing.open_or(
        super::serve::config(
            db.clone(),
            secret_path,
            true,
            correlation,
            args.routing.delivery_mode(),
        ),
        Some(std::sync::Arc::new(flows)),
    )?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|error| CliError::input("demo intake", error))?;
    let intake = listener
        .local_addr()
        .map_err(|error| CliError::input("demo intake", error))?;
    let router = crate::server::router(pipeline.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    println!("store     {}", db.display());
    println!("intake    http://{intake}/events");
    println!(
        "receiver  {} (checks signatures like DevOps Agent; next answers: {FAULTS})",
        receiver.url()
    );
    println!(
        "episodes  window {} s, resolve on OK after {} s quiet",
        correlation.window.as_secs(),
        correlation.resolve_quiet.as_secs()
    );

    let client = crate::adapters::http_client()
        .map_err(|error| CliError::Failed(format!("HTTP client unavailable: {error}")))?;
    let events_url = format!("http://{intake}/events");
    let mut incidents: Vec<String> = Vec::new();
    let started = Instant::now();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let events = STORM
        .iter()
        .map(|(alarm, metric, state, at)| storm_event(alarm, metric, state, at))
        .chain(std::iter::once(OTHER_MONITOR.to_owned()));
    println!();
    for event in events {
        let (status, answer) = post(&client, &events_url, &event).await?;
        println!("POST /events  {status}  {answer}");
        let Some(id) = answer["incidentId"].as_str().map(str::to_owned) else {
            continue;
        };
        if !incidents.contains(&id) {
            incidents.push(id.clone());
        }
        // The next alarm arrives once this one is decided: arrival order decides the primary.
        decided(&pipeline, &id, &incidents, &mut seen, started).await?;
    }
    follow(&pipeline, &incidents, &mut seen, started).await?;
    server.abort();
    receiver.stop().await;

    println!();
    if let Some(primary) = incidents.first() {
        print_audit(&pipeline, primary).await?;
    }
    print_episodes(&pipeline, &incidents).await?;
    check_receiver(&record_path, &pipeline, &incidents, args.routing.dry_run).await
}

async fn post(client: &reqwest::Client, url: &str, body: &str) -> Result<(u16, Value), CliError> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .map_err(|error| CliError::input("POST /events", error))?;
    let status = response.status().as_u16();
    let answer = response
        .json()
        .await
        .map_err(|error| CliError::input("POST /events answer", error))?;
    Ok((status, answer))
}

/// Prints the incidents' new events, once each.
async fn print_new(
    pipeline: &Pipeline,
    incidents: &[String],
    seen: &mut HashMap<String, u64>,
    started: Instant,
) -> Result<(), CliError> {
    for id in incidents {
        let events = pipeline
            .store
            .events(&IncidentId::from_raw(id.as_str()))
            .await
            .map_err(|error| CliError::input("store", error))?;
        let last = seen.entry(id.clone()).or_default();
        let already = *last;
        for event in events.iter().filter(|event| event.seq > already) {
            println!(
                "{:>6.1}s  {id}  {:<17} {}",
                started.elapsed().as_secs_f64(),
                event.kind.as_str(),
                progress(event)
            );
            *last = event.seq;
        }
    }
    Ok(())
}

/// Prints events until `id` has its Correlate decision (or nothing was started for it).
async fn decided(
    pipeline: &Pipeline,
    id: &str,
    incidents: &[String],
    seen: &mut HashMap<String, u64>,
    started: Instant,
) -> Result<(), CliError> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        print_new(pipeline, incidents, seen, started).await?;
        let incident = pipeline
            .store
            .get(&IncidentId::from_raw(id))
            .await
            .map_err(|error| CliError::input("store", error))?;
        let done = incident.is_none_or(|incident| {
            incident.correlation.is_some() || incident.execution_name.is_empty()
        });
        if done || Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Prints each incident's events as they are recorded, until no execution is running (every
/// one has ended, or waits on a failure) or the deadline.
async fn follow(
    pipeline: &Pipeline,
    incidents: &[String],
    seen: &mut HashMap<String, u64>,
    started: Instant,
) -> Result<(), CliError> {
    let idle = pipeline.engine.wait_idle();
    tokio::pin!(idle);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ended = tokio::time::timeout(POLL, &mut idle).await.is_ok();
        print_new(pipeline, incidents, seen, started).await?;
        if ended || Instant::now() > deadline {
            return Ok(());
        }
    }
}

/// What an event says, in a few words.
fn progress(event: &IncidentEvent) -> String {
    let data = &event.data;
    match event.kind {
        EventType::DeliveryAttempted => {
            let attempt = &data["attempt"];
            let what = match (attempt["statusCode"].as_u64(), attempt["error"].as_str()) {
                (Some(status), _) => format!("HTTP {status}"),
                (None, Some(error)) => error.to_owned(),
                (None, None) => "no answer".to_owned(),
            };
            format!(
                "{what} in {} ms ({})",
                attempt["latencyMs"],
                attempt["outcome"].as_str().unwrap_or("?")
            )
        }
        EventType::Enriched => {
            let mut text = format!(
                "metric {}",
                data["metric"]["name"].as_str().unwrap_or("unknown")
            );
            if let Some(worst) = data.pointer("/network/topContributors/0") {
                text.push_str(&format!(
                    "; worst of {} flow(s): {}",
                    data["network"]["topContributors"]
                        .as_array()
                        .map_or(0, Vec::len),
                    flow(worst)
                ));
            }
            text
        }
        EventType::TopContributorsStarted => format!(
            "{} of {}: {} queries",
            data["metric"].as_str().unwrap_or("?"),
            data["monitorName"].as_str().unwrap_or("?"),
            data["queries"].as_array().map_or(0, Vec::len)
        ),
        EventType::Correlated => {
            let mut text = format!(
                "{} -> {} (primary {}",
                data["decision"].as_str().unwrap_or("?"),
                data["action"].as_str().unwrap_or("?"),
                data["primaryIncidentId"].as_str().unwrap_or("?")
            );
            if let Some(reason) = data["reason"].as_str() {
                text.push_str(&format!("; {reason}"));
            }
            text.push(')');
            text
        }
        EventType::Delivered => format!("as {}", data["action"].as_str().unwrap_or("created")),
        EventType::Failed => format!(
            "{}: {}",
            data["error"].as_str().unwrap_or("?"),
            data["cause"].as_str().unwrap_or_default()
        ),
        _ => String::new(),
    }
}

/// One flow in a few words: `10.0.12.41 -> 10.2.40.17:5432 INTER_VPC 412 via tgw-…`.
fn flow(flow: &Value) -> String {
    let text = |key: &str| flow[key].as_str().unwrap_or("?").to_owned();
    let mut line = format!(
        "{} -> {}:{} {} {}",
        text("localIp"),
        text("remoteIp"),
        flow["targetPort"],
        text("destinationCategory"),
        flow["value"]
    );
    let via: Vec<&str> = flow["traversedConstructs"]
        .as_array()
        .map(|components| {
            components
                .iter()
                .filter_map(|component| component["componentId"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if !via.is_empty() {
        line.push_str(&format!(" via {}", via.join(", ")));
    }
    line
}

/// Each group's episode and incidents, as `audit --episode` prints them.
async fn print_episodes(pipeline: &Pipeline, incidents: &[String]) -> Result<(), CliError> {
    let failed = |error| CliError::input("store", error);
    let mut groups: Vec<String> = Vec::new();
    for id in incidents {
        let incident = pipeline
            .store
            .get(&IncidentId::from_raw(id.as_str()))
            .await
            .map_err(failed)?;
        if let Some(correlation) = incident.and_then(|incident| incident.correlation)
            && !groups.contains(&correlation.group_key)
        {
            groups.push(correlation.group_key);
        }
    }
    for group in groups {
        let episode = pipeline.store.episode(&group).await.map_err(failed)?;
        let members = pipeline
            .store
            .by_group(&group, incidents.len())
            .await
            .map_err(failed)?;
        println!(
            "{}",
            super::audit::describe_episode(episode.as_ref(), &members)
        );
    }
    Ok(())
}

async fn print_audit(pipeline: &Pipeline, id: &str) -> Result<(), CliError> {
    let failed = |error| CliError::input("store", error);
    let id = IncidentId::from_raw(id);
    let Some(incident) = pipeline.store.get(&id).await.map_err(failed)? else {
        return Ok(());
    };
    let events = pipeline.store.events(&id).await.map_err(failed)?;
    let history = match &incident.execution_arn {
        Some(arn) => pipeline
            .engine
            .executions()
            .get(arn)
            .await
            .map_err(failed)?
            .map(|execution| {
                execution
                    .history()
                    .iter()
                    .filter_map(|event| serde_json::to_value(event).ok())
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    println!("{}", super::audit::describe(&incident, &events, &history));
    Ok(())
}

/// Reads the receiver's record: every incident whose decision sends something (created,
/// updated, resolved) accepted exactly once with a valid signature, and recorded so in the
/// store; nothing accepted for the others (a flap, recoveries that resolve nothing).
async fn check_receiver(
    record_path: &std::path::Path,
    pipeline: &Pipeline,
    incidents: &[String],
    dry_run: bool,
) -> Result<(), CliError> {
    // The receiver writes its record on the first request: a dry run may leave none.
    let text = match std::fs::read_to_string(record_path) {
        Err(error) if dry_run && error.kind() == std::io::ErrorKind::NotFound => String::new(),
        read => read.map_err(|error| CliError::input(record_path.display(), error))?,
    };
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    // Each accepted message, under the incident it came from: `data.correlation.incidentId`
    // for updated and resolved, the body's incidentId for created.
    let mut accepted: HashMap<String, Vec<&Value>> = HashMap::new();
    for line in lines.iter().filter(|line| line["outcome"] == "accepted") {
        let body = &line["body"];
        let source = body
            .pointer("/data/correlation/incidentId")
            .or_else(|| body.get("incidentId"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        accepted.entry(source.to_owned()).or_default().push(line);
    }
    let investigations = lines
        .iter()
        .filter(|line| line["outcome"] == "accepted" && line["body"]["action"] == "created")
        .count();
    println!(
        "receiver record: {} request(s), {investigations} investigation(s) opened",
        lines.len()
    );
    let mut failures = Vec::new();
    let mut dry_runs = 0;
    for id in incidents {
        let copies = accepted.get(id).map_or(&[][..], Vec::as_slice);
        let signed = copies.iter().all(|line| line["signatureValid"] == true);
        let status = pipeline
            .store
            .get(&IncidentId::from_raw(id.as_str()))
            .await
            .map_err(|error| CliError::input("store", error))?
            .map(|incident| incident.status);
        let sends = !dry_run
            && matches!(
                status,
                Some(
                    IncidentStatus::Delivered
                        | IncidentStatus::Correlated
                        | IncidentStatus::Resolved
                )
            );
        let actions: Vec<&str> = copies
            .iter()
            .filter_map(|line| line["body"]["action"].as_str())
            .collect();
        dry_runs += usize::from(status == Some(IncidentStatus::DryRun));
        let ok = signed && copies.len() == usize::from(sends);
        let status = status.map_or("unknown".to_owned(), |status| status.to_string());
        println!(
            "  {id}: {status}, accepted {} time(s){}  {}",
            copies.len(),
            if actions.is_empty() {
                String::new()
            } else {
                format!(" as {}", actions.join(", "))
            },
            if ok { "ok" } else { "NOT as decided" }
        );
        if !ok {
            failures.push(id.clone());
        }
    }
    if failures.is_empty() && dry_run {
        println!(
            "\ndemo ok (dry run): {dry_runs} message(s) rendered, signed and recorded for {} alarm transition(s); none sent",
            incidents.len()
        );
        Ok(())
    } else if failures.is_empty() {
        println!(
            "\ndemo ok: {investigations} investigation(s) for {} alarm transition(s); every message delivered exactly once with a valid signature",
            incidents.len()
        );
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "demo failed: not delivered as decided: {}",
            failures.join(", ")
        )))
    }
}
