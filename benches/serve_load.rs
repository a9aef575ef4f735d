//! `serve` under load, end to end, against the machine's own ceiling measured in the same run.
//!
//! 1. **Ceiling**: the same clients POST signed webhook bodies straight to the same receiver
//!    (`alarm-relay receiver`'s code, in process): what this box does with HTTP + signature
//!    checks alone.
//! 2. **Relay bound**: the same clients POST the same ALARM events to a relay with no state:
//!    `serve`'s connection loop and HTTP stack, the product's parse, render, signature and
//!    delivery, answered once the webhook is (the seed's own design, a stateless handler). No
//!    store, no workflow: what any relay that takes an event in and sends a webhook out costs
//!    on this box, the bound a pipeline could reach with durability and a workflow for free.
//! 3. **Pipeline**: ALARM events POSTed to `serve`'s API (the same router, connection loop and
//!    SQLite durability as `alarm-relay serve`), a share of them copies of earlier ones, as
//!    EventBridge may send; timed from the first POST until every incident is DELIVERED, and checked:
//!    every unique event answered 202 once and every copy 200, each delivered exactly once with
//!    a valid signature, none lost.
//!
//! 4. **Latency at a fixed rate**: new ALARM events offered open-loop at `--rate` per second
//!    for `--seconds` (each POST on its own schedule, whatever the answers take), each timed
//!    from its POST to the receiver recording its webhook: p50, p99 and max.
//!
//! `cargo bench --bench serve_load -- [--events N] [--senders C] [--duplicates SHARE]
//! [--rate R] [--seconds S] [--baseline-seconds B] [--keep-db FILE]` (defaults 2000 events,
//! 8 senders, no copies, 200/s for 10 s, each baseline run in rounds of the same events for
//! 2 s at least, so that it is not a fraction of a second; `--duplicates 0.3` makes 30% of
//! the N events copies; `--keep-db` copies the database as it is after the pipeline phase,
//! for `benches/growth/run.py`); `--smoke` runs 100 events, each baseline once, and 1 s at
//! 50/s (what CI runs: no timing is asserted, the delivery checks are).
//! Figures: events/s of each phase, the ratios pipeline/ceiling, relay/ceiling and
//! pipeline/relay, the latency percentiles, and the store's bytes per delivered incident: the
//! database file after a WAL checkpoint (the file that stays) and the WAL as it was before it
//! (transient: SQLite reuses it from its start after each checkpoint).

use alarm_relay::adapters::SystemClock;
use alarm_relay::config::CorrelationConfig;
use alarm_relay::delivery::{Deliverer, DeliveryMode};
use alarm_relay::engine::pipeline::{Pipeline, PipelineConfig};
use alarm_relay::event::AlarmEvent;
use alarm_relay::payload::WebhookBody;
use alarm_relay::receiver::{FaultPlan, Receiver, ReceiverConfig};
use alarm_relay::server::{Access, Limits, router_with, serve};
use alarm_relay::signing::{self, WebhookSecret};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "load-secret";
const EVENT: &str = include_str!("../tests/fixtures/metric-alarm.json");

struct Options {
    events: usize,
    senders: usize,
    duplicates: f64,
    rate: u32,
    seconds: u32,
    /// The least time each baseline (ceiling, relay bound) runs: rounds of the same events
    /// until it has passed.
    baseline: Duration,
    /// Where to copy the database after the pipeline phase's checkpoint.
    keep_db: Option<std::path::PathBuf>,
}

fn options() -> Options {
    let mut options = Options {
        events: 2000,
        senders: 8,
        duplicates: 0.0,
        rate: 200,
        seconds: 10,
        baseline: Duration::from_secs(2),
        keep_db: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--events" => options.events = value().parse().expect("--events N"),
            "--senders" => options.senders = value().parse().expect("--senders C"),
            "--duplicates" => options.duplicates = value().parse().expect("--duplicates SHARE"),
            "--rate" => options.rate = value().parse().expect("--rate R"),
            "--seconds" => options.seconds = value().parse().expect("--seconds S"),
            "--baseline-seconds" => {
                options.baseline =
                    Duration::from_secs_f64(value().parse().expect("--baseline-seconds S"))
            }
            "--keep-db" => options.keep_db = Some(value().into()),
            "--smoke" => {
                options.events = 100;
                options.rate = 50;
                options.seconds = 1;
                options.baseline = Duration::ZERO;
            }
            // What `cargo bench` passes to every bench binary.
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    options
}

/// Event `n`: its own alarm and monitor (no two correlate).
fn event(n: usize) -> String {
    let mut event: Value = serde_json::from_str(EVENT).unwrap();
    let alarm = format!("Load-{n}");
    event["detail"]["alarmName"] = json!(alarm);
    event["resources"] = json!([format!(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"
    )]);
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["MonitorId"] =
        json!(format!("monitor-{n}"));
    event.to_string()
}

/// Sends `bodies` from `senders` keep-alive clients to `url` (`sign`ed or not), each body once,
/// in order of the shared counter; answers each status, by index, and the wall time.
async fn blast(
    url: &str,
    bodies: Arc<Vec<String>>,
    senders: usize,
    sign: bool,
) -> (Vec<u16>, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (url, bodies, next) = (url.to_owned(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let client = alarm_relay::adapters::http_client_builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let secret = WebhookSecret::new(SECRET);
            let mut answers = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(index) else {
                    return answers;
                };
                let mut request = client.post(&url).body(body.clone());
                if sign {
                    let timestamp = signing::event_timestamp(chrono::Utc::now());
                    let signature = signing::sign(&secret, &timestamp, body.as_bytes());
                    request = request
                        .header("x-amzn-event-timestamp", timestamp)
                        .header("x-amzn-event-signature", signature.expose());
                }
                let status = request.send().await.expect("answered").status().as_u16();
                answers.push((index, status));
            }
        }));
    }
    let mut statuses = vec![0; bodies.len()];
    for task in tasks {
        for (index, status) in task.await.unwrap() {
            statuses[index] = status;
        }
    }
    (statuses, started.elapsed())
}

/// A baseline: rounds of [`blast`] of `bodies` to `url` until `least` has passed (one round at
/// least), each POST answered 202; answers the requests sent, the time they took and the rounds.
async fn baseline(
    url: &str,
    bodies: &[String],
    senders: usize,
    sign: bool,
    least: Duration,
) -> (usize, Duration, usize) {
    let bodies = Arc::new(bodies.to_vec());
    let (mut sent, mut took, mut rounds) = (0, Duration::ZERO, 0);
    while rounds == 0 || took < least {
        let (answers, round) = blast(url, bodies.clone(), senders, sign).await;
        assert!(
            answers.iter().all(|status| *status == 202),
            "{url}: all 202"
        );
        sent += answers.len();
        took += round;
        rounds += 1;
    }
    (sent, took, rounds)
}

/// Posts `bodies` to `url` open-loop, body `i` at `i / rate` seconds from the start, each on
/// its own task; answers each POST's wall-clock time and the incident id of its answer.
async fn paced(url: &str, bodies: Vec<String>, rate: u32) -> Vec<(DateTime<Utc>, String)> {
    let client = alarm_relay::adapters::http_client().unwrap();
    let start = tokio::time::Instant::now();
    let mut posts = Vec::new();
    for (index, body) in bodies.into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(index as f64 / f64::from(rate)))
            .await;
        let (client, url) = (client.clone(), url.to_owned());
        posts.push(tokio::spawn(async move {
            let sent = Utc::now();
            let answer: Value = client
                .post(&url)
                .body(body)
                .send()
                .await
                .expect("answered")
                .json()
                .await
                .expect("a JSON answer");
            let id = answer["incidentId"].as_str().expect("an incident id");
            (sent, id.to_owned())
        }));
    }
    let mut sent = Vec::new();
    for post in posts {
        sent.push(post.await.unwrap());
    }
    sent
}

/// The relay bound's routes: `POST /events` parses the event, renders the seed's body, signs
/// and delivers it with `deliverer`, and answers 202 once the receiver has; 400 for a body that
/// is not an alarm event, 502 when the delivery failed. Nothing is stored.
fn relay(deliverer: Deliverer) -> Router {
    async fn relay_event(State(deliverer): State<Arc<Deliverer>>, body: String) -> StatusCode {
        let Ok(event) = AlarmEvent::parse(body.as_bytes()) else {
            return StatusCode::BAD_REQUEST;
        };
        match deliverer.deliver(&WebhookBody::render(&event)).await {
            Ok(_) => StatusCode::ACCEPTED,
            Err(_) => StatusCode::BAD_GATEWAY,
        }
    }
    Router::new()
        .route("/events", post(relay_event))
        .with_state(Arc::new(deliverer))
}

/// Serves `router` on a fresh loopback port with `serve`'s connection loop; answers the URL
/// of its `/events`.
async fn serve_events(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        router,
        Limits::default(),
        std::future::pending(),
    ));
    url
}

/// The receiver's record file, one parsed line per request; every one validly signed.
fn received_lines(path: &std::path::Path) -> Vec<Value> {
    let record = std::fs::read_to_string(path).unwrap();
    let lines: Vec<Value> = record
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.iter().all(|line| line["signatureValid"] == true));
    lines
}

/// The lines of requests the receiver accepted.
fn accepted(lines: &[Value]) -> impl Iterator<Item = &Value> {
    lines.iter().filter(|line| line["outcome"] == "accepted")
}

/// The value below which `share` of the sorted `values` lie.
fn percentile(sorted: &[f64], share: f64) -> f64 {
    let rank = ((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

/// The size of the file at `path`, 0 if it is missing.
fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

/// The allocator `alarm-relay serve` runs with (`src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let options = options();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            secret: WebhookSecret::new(SECRET),
            api_key: None,
            record_path: dir.path().join("received.jsonl"),
            faults: FaultPlan::parse("").unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap();
    let copies = (options.events as f64 * options.duplicates).round() as usize;
    let distinct = options.events - copies.min(options.events);
    let unique: Vec<String> = (0..distinct).map(event).collect();

    // 1. The ceiling: signed bodies straight to the receiver.
    let (ceiling_sent, ceiling_took, ceiling_rounds) = baseline(
        &receiver.url(),
        &unique,
        options.senders,
        true,
        options.baseline,
    )
    .await;
    std::fs::write(dir.path().join("received.jsonl"), "").unwrap();

    // 2. The relay bound: the same events through a relay that keeps nothing, delivering with
    // the pipeline's own deliverer.
    let secret_file = dir.path().join("secret.json");
    let document = json!({ "WEBHOOK_URL": receiver.url(), "WEBHOOK_SECRET": SECRET });
    std::fs::write(&secret_file, document.to_string()).unwrap();
    let db = dir.path().join("relay.db");
    let config = PipelineConfig {
        db: db.clone(),
        secret_file,
        allow_http_loopback: true,
        correlation: CorrelationConfig::default(),
        delivery_mode: DeliveryMode::Live,
        destinations: Default::default(),
        routing: Default::default(),
        network: Default::default(),
    };
    let deliverer = Pipeline::deliverer(&config, Arc::new(SystemClock)).unwrap();
    let relay_url = serve_events(relay(deliverer)).await;
    let (relay_sent, relay_took, relay_rounds) = baseline(
        &relay_url,
        &unique,
        options.senders,
        false,
        options.baseline,
    )
    .await;
    let relayed = received_lines(&dir.path().join("received.jsonl"));
    assert_eq!(
        accepted(&relayed).count(),
        relay_sent,
        "the relay delivered every event"
    );
    std::fs::write(dir.path().join("received.jsonl"), "").unwrap();

    // 3. The pipeline.
    let pipeline = Pipeline::open(&config).unwrap();
    let body_timeout = Limits::default().body_timeout;
    let events_url = serve_events(router_with(pipeline.clone(), Access::Open, body_timeout)).await;

    // Copies after every original, spread over them: each copy is answered 200 (a duplicate),
    // or its original is, when both race.
    let mut bodies = unique.clone();
    bodies.extend((0..copies).map(|n| unique[n * 7919 % distinct.max(1)].clone()));
    let started = Instant::now();
    let (answers, posted) = blast(
        &events_url,
        Arc::new(bodies.clone()),
        options.senders,
        false,
    )
    .await;
    pipeline.engine.wait_idle().await;
    let took = started.elapsed();

    let mut counts: HashMap<u16, usize> = HashMap::new();
    for status in &answers {
        *counts.entry(*status).or_default() += 1;
    }
    let record_path = dir.path().join("received.jsonl");
    let record = received_lines(&record_path);
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for line in accepted(&record) {
        *delivered
            .entry(line["incidentId"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let once = delivered.values().filter(|count| **count == 1).count();
    let wal_size = file_size(&db.with_extension("db-wal"));
    let checkpoint = rusqlite::Connection::open(&db).unwrap();
    checkpoint
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(checkpoint);
    let db_size = file_size(&db);
    if let Some(keep) = &options.keep_db {
        // Consistent: the WAL was just truncated and the pipeline is idle.
        std::fs::copy(&db, keep).unwrap_or_else(|e| panic!("--keep-db {}: {e}", keep.display()));
    }

    // 4. Latency at a fixed rate, on the same running pipeline.
    let offered = (options.rate * options.seconds) as usize;
    let fresh: Vec<String> = (0..offered).map(|n| event(1_000_000 + n)).collect();
    let sent = paced(&events_url, fresh, options.rate).await;
    pipeline.engine.wait_idle().await;
    let mut received: HashMap<String, DateTime<Utc>> = HashMap::new();
    for line in accepted(&received_lines(&record_path)[record.len()..]) {
        let at = DateTime::parse_from_rfc3339(line["receivedAt"].as_str().unwrap()).unwrap();
        received.insert(line["incidentId"].as_str().unwrap().to_owned(), at.into());
    }
    let mut latencies: Vec<f64> = sent
        .iter()
        .filter_map(|(at, id)| {
            received
                .get(id)
                .map(|got| (*got - *at).as_seconds_f64() * 1e3)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);

    println!(
        "serve_load: {} events ({distinct} unique, {copies} copies) from {} senders",
        bodies.len(),
        options.senders
    );
    println!(
        "  answers: 202 x {}, 200 x {}, other x {}",
        counts.get(&202).copied().unwrap_or(0),
        counts.get(&200).copied().unwrap_or(0),
        answers.len()
            - counts.get(&202).copied().unwrap_or(0)
            - counts.get(&200).copied().unwrap_or(0)
    );
    println!(
        "  delivered exactly once: {once} of {distinct} (lost: {}, more than once: {})",
        distinct - delivered.len(),
        delivered.len() - once
    );
    let ceiling = rate(ceiling_sent, ceiling_took);
    let pipeline_rate = rate(distinct, took);
    println!(
        "  ceiling (signed POSTs straight to the receiver): {ceiling:.0}/s in {:.2} s, {ceiling_rounds} × the {distinct} events",
        ceiling_took.as_secs_f64()
    );
    let relay_rate = rate(relay_sent, relay_took);
    println!(
        "  relay bound (the same events, parsed, rendered, signed and POSTed, nothing stored): {relay_rate:.0}/s in {:.2} s, {relay_rounds} × the same",
        relay_took.as_secs_f64()
    );
    println!(
        "  pipeline (POST /events -> durable record -> workflow -> signed POST -> DELIVERED): {pipeline_rate:.0}/s in {:.2} s (intake answered all in {:.2} s)",
        took.as_secs_f64(),
        posted.as_secs_f64()
    );
    println!("  ratio pipeline/ceiling: {:.3}", pipeline_rate / ceiling);
    println!(
        "  ratio relay/ceiling: {:.3} (a relay that keeps nothing); pipeline/relay: {:.3}",
        relay_rate / ceiling,
        pipeline_rate / relay_rate
    );
    println!(
        "  latency at {}/s for {} s, POST -> webhook received ({} of {offered} delivered): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (receiver clock: 1 ms resolution)",
        options.rate,
        options.seconds,
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  store after {distinct} delivered incidents: {:.1} KB per incident in the database file ({db_size} bytes after a checkpoint); the WAL was {wal_size} bytes before it",
        db_size as f64 / 1024.0 / distinct.max(1) as f64,
    );
    assert_eq!(latencies.len(), offered, "every paced event delivered");
    assert_eq!(
        counts.get(&202).copied().unwrap_or(0),
        distinct,
        "one 202 per event"
    );
    assert_eq!(
        counts.get(&200).copied().unwrap_or(0),
        copies,
        "one 200 per copy"
    );
    assert_eq!(once, distinct, "each delivered exactly once");
}
