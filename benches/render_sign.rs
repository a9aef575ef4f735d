//! Render + sign per event, against a baseline measured in the same run: `serde_json`
//! parsing the same event bytes into a `Value` and writing it back out compactly. The figure
//! to report is each step's time as a ratio of that baseline (see benches/REPORT.md).

use alarm_relay::event::AlarmEvent;
use alarm_relay::payload::WebhookBody;
use alarm_relay::signing::{self, WebhookSecret};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const FIXTURES: [(&str, &[u8]); 2] = [
    (
        "metric",
        include_bytes!("../tests/fixtures/metric-alarm.json"),
    ),
    (
        "metric-math",
        include_bytes!("../tests/fixtures/metric-math-alarm.json"),
    ),
];
const TS: &str = "2026-11-24T10:00:00.000Z";

fn bench(c: &mut Criterion) {
    let secret = WebhookSecret::new("bench-secret");
    for (name, bytes) in FIXTURES {
        let mut group = c.benchmark_group(name);
        group.bench_function("baseline: serde_json parse + write", |b| {
            b.iter(|| {
                let value: serde_json::Value = serde_json::from_slice(black_box(bytes)).unwrap();
                serde_json::to_vec(&value).unwrap()
            })
        });
        group.bench_function("parse", |b| {
            b.iter(|| AlarmEvent::parse(black_box(bytes)).unwrap())
        });
        let event = AlarmEvent::parse(bytes).unwrap();
        group.bench_function("render", |b| {
            b.iter(|| WebhookBody::render(black_box(&event)))
        });
        let body = WebhookBody::render(&event);
        group.bench_function("sign", |b| {
            b.iter(|| signing::sign(&secret, TS, black_box(body.as_bytes())))
        });
        group.bench_function("parse + render + sign", |b| {
            b.iter(|| {
                let event = AlarmEvent::parse(black_box(bytes)).unwrap();
                let body = WebhookBody::render(&event);
                signing::sign(&secret, TS, body.as_bytes())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
