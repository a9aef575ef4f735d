//! `demo`: the whole pipeline on this machine, with no AWS and no arguments. In a temporary
//! directory it starts a receiver that checks signatures like DevOps Agent (scripted to answer
//! a `503` and then drop a connection), and the pipeline `serve` runs behind its HTTP intake;
//! it POSTs sample Network Flow Monitor alarm events (one of them twice), follows each
//! incident through the state machine (Enrich, Deliver with the definition's own retries,
//! Record), prints the audit, and exits 0 only if the receiver's own record shows every
//! incident accepted exactly once with a valid signature.

use super::CliError;
use crate::engine::pipeline::{Pipeline, PipelineConfig};
use crate::event::IncidentId;
use crate::incident::{EventType, IncidentEvent, IncidentStatus};
use crate::receiver::{FaultPlan, Receiver, ReceiverConfig};
use crate::secret::secret_from_json;
use crate::signing::TOLERANCE_IN_SECONDS;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

const SAMPLES: [&str; 2] = [
    include_str!("../../tests/fixtures/metric-alarm.json"),
    include_str!("../../tests/fixtures/metric-math-alarm.json"),
];
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
}

/// The demo's quiet period before resolving, unless `--resolve-quiet` is given.
const DEMO_QUIET: Duration = Duration::from_secs(2);

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

    let pipeline = Pipeline::open(&PipelineConfig {
        db: db.clone(),
        secret_file: secret_path,
        allow_http_loopback: true,
        correlation,
    })
    .map_err(|error| CliError::Input(error.to_string()))?;
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

    let client = reqwest::Client::new();
    let events_url = format!("http://{intake}/events");
    let mut incidents = Vec::new();
    println!();
    for sample in SAMPLES.iter().chain(SAMPLES.first()) {
        let (status, answer) = post(&client, &events_url, sample).await?;
        println!("POST /events  {status}  {answer}");
        if let Some(id) = answer["incidentId"].as_str()
            && !incidents.contains(&id.to_owned())
        {
            incidents.push(id.to_owned());
        }
    }

    println!();
    follow(&pipeline, &incidents).await?;
    pipeline.engine.wait_idle().await;
    server.abort();
    receiver.stop().await;

    println!();
    for id in &incidents {
        print_audit(&pipeline, id).await?;
    }
    check_receiver(&record_path, &pipeline, &incidents).await
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

/// Prints each incident's events as they are recorded, until all have ended (or the deadline).
async fn follow(pipeline: &Pipeline, incidents: &[String]) -> Result<(), CliError> {
    let started = Instant::now();
    let mut seen: HashMap<&str, u64> = HashMap::new();
    loop {
        let mut open = 0;
        for id in incidents {
            let incident_id = IncidentId::from_raw(id.as_str());
            let events = pipeline
                .store
                .events(&incident_id)
                .await
                .map_err(|error| CliError::input("store", error))?;
            let last = seen.entry(id).or_default();
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
            let ended = events
                .iter()
                .any(|event| matches!(event.kind, EventType::Delivered | EventType::Failed));
            if !ended {
                open += 1;
            }
        }
        if open == 0 || started.elapsed() > DEADLINE {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
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
        EventType::Enriched => format!(
            "metric {}",
            data["metric"]["name"].as_str().unwrap_or("unknown")
        ),
        EventType::Failed => format!(
            "{}: {}",
            data["error"].as_str().unwrap_or("?"),
            data["cause"].as_str().unwrap_or_default()
        ),
        _ => String::new(),
    }
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

/// Reads the receiver's record: each incident accepted exactly once, with a valid signature,
/// and DELIVERED in the store.
async fn check_receiver(
    record_path: &std::path::Path,
    pipeline: &Pipeline,
    incidents: &[String],
) -> Result<(), CliError> {
    let text = std::fs::read_to_string(record_path)
        .map_err(|error| CliError::input(record_path.display(), error))?;
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let mut accepted: HashMap<&str, Vec<&Value>> = HashMap::new();
    for line in &lines {
        if line["outcome"] == "accepted" {
            accepted
                .entry(line["incidentId"].as_str().unwrap_or_default())
                .or_default()
                .push(line);
        }
    }
    println!("receiver record: {} request(s)", lines.len());
    let mut failures = Vec::new();
    for id in incidents {
        let copies = accepted.get(id.as_str()).map_or(&[][..], Vec::as_slice);
        let signed = copies.iter().all(|line| line["signatureValid"] == true);
        let status = pipeline
            .store
            .get(&IncidentId::from_raw(id.as_str()))
            .await
            .map_err(|error| CliError::input("store", error))?
            .map(|incident| incident.status);
        let ok = copies.len() == 1 && signed && status == Some(IncidentStatus::Delivered);
        println!(
            "  {id}: accepted {} time(s), {}",
            copies.len(),
            if ok {
                "delivered once"
            } else {
                "NOT delivered exactly once"
            }
        );
        if !ok {
            failures.push(id.clone());
        }
    }
    if failures.is_empty() {
        println!("\ndemo ok: every incident delivered exactly once with a valid signature");
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "demo failed: not delivered exactly once: {}",
            failures.join(", ")
        )))
    }
}
