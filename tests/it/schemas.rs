//! The JSON Schemas in `schemas/` describe what the code accepts and produces: every fixture,
//! every rendered body, the signer's input and its delivery record validate; near misses do not.

use alarm_relay::delivery::{AttemptOutcome, AttemptRecord, DeliveryRecord};
use alarm_relay::event::AlarmEvent;
use alarm_relay::payload::WebhookBody;
use jsonschema::{Draft, Registry, Validator};
use serde_json::{Value, json};
use std::path::PathBuf;

const ALARM_EVENT: &str = "alarm-event.schema.json";
const WEBHOOK_BODY: &str = "webhook-body.schema.json";
const DELIVER_INPUT: &str = "deliver-input.schema.json";
const DELIVERY_RECORD: &str = "delivery-record.schema.json";
const SCHEMAS: [&str; 4] = [ALARM_EVENT, WEBHOOK_BODY, DELIVER_INPUT, DELIVERY_RECORD];

const FIXTURES: [&str; 4] = [
    "metric-alarm.json",
    "metric-math-alarm.json",
    "anomaly-detection-alarm.json",
    "composite-alarm.json",
];

fn manifest_path(parts: &[&str]) -> PathBuf {
    parts
        .iter()
        .fold(PathBuf::from(env!("CARGO_MANIFEST_DIR")), |path, part| {
            path.join(part)
        })
}

fn schema(name: &str) -> Value {
    let path = manifest_path(&["schemas", name]);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn schema_id(name: &str) -> String {
    schema(name)["$id"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no string $id"))
        .to_owned()
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = manifest_path(&["tests", "fixtures", name]);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&fixture_bytes(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// A validator for one schema, with all four loaded so `$ref`s between them resolve offline.
fn validator(name: &str) -> Validator {
    let registry = Registry::new()
        .extend(SCHEMAS.map(|other| (schema_id(other), schema(other))))
        .expect("schema ids are valid URIs")
        .prepare()
        .expect("schemas index");
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .offline()
        .with_registry(&registry)
        .build(&schema(name))
        .unwrap_or_else(|error| panic!("{name} does not compile: {error}"))
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

#[track_caller]
fn assert_valid(validator: &Validator, instance: &Value, what: &str) {
    let errors = errors(validator, instance);
    assert!(errors.is_empty(), "{what} should validate: {errors:#?}");
}

/// Asserts `instance` is refused, with an error at `path` mentioning `needle`.
#[track_caller]
fn assert_refused(validator: &Validator, instance: &Value, path: &str, needle: &str) {
    let errors = errors(validator, instance);
    assert!(
        errors
            .iter()
            .any(|error| error.starts_with(&format!("{path}: ")) && error.contains(needle)),
        "expected an error at {path:?} mentioning {needle:?}, got {errors:#?}"
    );
}

fn rendered(name: &str) -> Value {
    let event =
        AlarmEvent::parse(&fixture_bytes(name)).unwrap_or_else(|error| panic!("{name}: {error}"));
    serde_json::from_str(WebhookBody::render(&event).as_str()).expect("the body is JSON")
}

fn attempt(outcome: AttemptOutcome) -> AttemptRecord {
    AttemptRecord {
        at: "2026-11-24T10:00:00.000Z".into(),
        event_timestamp: "2026-11-24T10:00:00.000Z".into(),
        outcome,
        status_code: None,
        latency_ms: 0,
        retry_after_seconds: None,
        error: None,
        response_excerpt: None,
    }
}

fn delivery_record() -> DeliveryRecord {
    let event = AlarmEvent::parse(&fixture_bytes("metric-alarm.json")).unwrap();
    DeliveryRecord {
        outcome: AttemptOutcome::Delivered,
        body_sha256: WebhookBody::render(&event).sha256_hex(),
        attempts: vec![
            AttemptRecord {
                status_code: Some(401),
                latency_ms: 42,
                retry_after_seconds: Some(7),
                error: Some("webhook answered 401".into()),
                response_excerpt: Some("{\"message\":\"[redacted]\"}".into()),
                ..attempt(AttemptOutcome::Permanent)
            },
            AttemptRecord {
                status_code: Some(200),
                latency_ms: u64::MAX,
                ..attempt(AttemptOutcome::Delivered)
            },
        ],
    }
}

fn record_json(record: &DeliveryRecord) -> Value {
    serde_json::to_value(record).expect("a record serialises")
}

#[test]
fn every_fixture_is_an_alarm_event() {
    let validator = validator(ALARM_EVENT);
    for name in FIXTURES {
        assert_valid(&validator, &fixture(name), name);
    }
}

#[test]
fn alarm_event_schema_refuses_what_the_parser_refuses() {
    let validator = validator(ALARM_EVENT);
    let base = fixture("metric-alarm.json");
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str, &str); 10] = [
        (
            "other detail-type",
            |event| event["detail-type"] = json!("EC2 Instance State-change Notification"),
            "/detail-type",
            "CloudWatch Alarm State Change",
        ),
        (
            "no alarmName",
            |event| drop(event["detail"].as_object_mut().unwrap().remove("alarmName")),
            "/detail",
            "alarmName",
        ),
        (
            "alarmName not a string",
            |event| event["detail"]["alarmName"] = json!(7),
            "/detail/alarmName",
            "string",
        ),
        (
            "no state",
            |event| drop(event["detail"].as_object_mut().unwrap().remove("state")),
            "/detail",
            "state",
        ),
        (
            "state not an object",
            |event| event["detail"]["state"] = json!("ALARM"),
            "/detail/state",
            "object",
        ),
        (
            "no state.timestamp",
            |event| {
                drop(
                    event["detail"]["state"]
                        .as_object_mut()
                        .unwrap()
                        .remove("timestamp"),
                )
            },
            "/detail/state",
            "timestamp",
        ),
        (
            "unknown state value",
            |event| event["detail"]["state"]["value"] = json!("PENDING"),
            "/detail/state/value",
            "PENDING",
        ),
        (
            "metrics not an array",
            |event| event["detail"]["configuration"]["metrics"] = json!({"id": "m1"}),
            "/detail/configuration/metrics",
            "array",
        ),
        (
            "metrics[0] not an object",
            |event| event["detail"]["configuration"]["metrics"] = json!(["m1"]),
            "/detail/configuration/metrics/0",
            "object",
        ),
        (
            "metric namespace not a string",
            |event| {
                event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["namespace"] =
                    json!(1)
            },
            "/detail/configuration/metrics/0/metricStat/metric/namespace",
            "string",
        ),
    ];
    for (what, edit, path, needle) in cases {
        let mut event = base.clone();
        edit(&mut event);
        let parsed = AlarmEvent::parse(&serde_json::to_vec(&event).unwrap());
        assert!(parsed.is_err(), "{what}: the parser accepts it: {parsed:?}");
        assert_refused(&validator, &event, path, needle);
    }
}

#[test]
fn alarm_event_schema_accepts_what_the_parser_tolerates() {
    let validator = validator(ALARM_EVENT);
    let base = fixture("metric-alarm.json");
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 7] = [
        ("unknown fields", |event| {
            event["extra"] = json!({"any": [1, "thing"]});
            event["detail"]["extra"] = json!(true);
            event["detail"]["state"]["extra"] = json!(null);
        }),
        ("no region, account or resources", |event| {
            let object = event.as_object_mut().unwrap();
            for key in ["region", "account", "resources"] {
                object.remove(key);
            }
        }),
        ("empty resources", |event| event["resources"] = json!([])),
        ("null metrics", |event| {
            event["detail"]["configuration"]["metrics"] = Value::Null
        }),
        ("no configuration", |event| {
            drop(
                event["detail"]
                    .as_object_mut()
                    .unwrap()
                    .remove("configuration"),
            )
        }),
        ("null previousState", |event| {
            event["detail"]["previousState"] = Value::Null
        }),
        ("OK state", |event| {
            event["detail"]["state"]["value"] = json!("OK")
        }),
    ];
    for (what, edit) in cases {
        let mut event = base.clone();
        edit(&mut event);
        let parsed = AlarmEvent::parse(&serde_json::to_vec(&event).unwrap());
        assert!(parsed.is_ok(), "{what}: the parser refuses it: {parsed:?}");
        assert_valid(&validator, &event, what);
    }
}

#[test]
fn every_rendered_body_is_a_webhook_body() {
    let validator = validator(WEBHOOK_BODY);
    for name in FIXTURES {
        assert_valid(&validator, &rendered(name), name);
    }
}

#[test]
fn bodies_with_null_or_absent_metrics_are_webhook_bodies() {
    let validator = validator(WEBHOOK_BODY);
    let mut event = fixture("metric-alarm.json");
    event["detail"]["configuration"]["metrics"] = Value::Null;
    let parsed = AlarmEvent::parse(&serde_json::to_vec(&event).unwrap()).unwrap();
    let body: Value = serde_json::from_str(WebhookBody::render(&parsed).as_str()).unwrap();
    assert_eq!(body["data"]["metadata"]["metrics"], Value::Null);
    assert_valid(&validator, &body, "null metrics");
    let composite = rendered("composite-alarm.json");
    assert_eq!(composite["data"]["metadata"]["metrics"], json!([]));
}

#[test]
fn a_body_with_an_extra_top_level_key_is_not_a_webhook_body() {
    let validator = validator(WEBHOOK_BODY);
    let mut body = rendered("metric-alarm.json");
    body["severity"] = json!("HIGH");
    assert_refused(&validator, &body, "", "severity");
}

#[test]
fn webhook_body_schema_pins_what_we_send() {
    let validator = validator(WEBHOOK_BODY);
    let base = rendered("metric-alarm.json");
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str, &str); 5] = [
        (
            "priority",
            |body| body["priority"] = json!("CRITICAL"),
            "/priority",
            "HIGH",
        ),
        (
            "action",
            |body| body["action"] = json!("resolved"),
            "/action",
            "created",
        ),
        (
            "eventType",
            |body| body["eventType"] = json!("alert"),
            "/eventType",
            "incident",
        ),
        (
            "metrics",
            |body| body["data"]["metadata"]["metrics"] = json!({}),
            "/data/metadata/metrics",
            "array",
        ),
        (
            "alarmArn",
            |body| {
                drop(
                    body["data"]["metadata"]
                        .as_object_mut()
                        .unwrap()
                        .remove("alarmArn"),
                )
            },
            "/data/metadata",
            "alarmArn",
        ),
    ];
    for (_, edit, path, needle) in cases {
        let mut body = base.clone();
        edit(&mut body);
        assert_refused(&validator, &body, path, needle);
    }
    let mut extended = base;
    extended["data"]["investigation"] = json!({"runbook": "https://example.com"});
    assert_valid(&validator, &extended, "new keys inside data");
}

#[test]
fn every_fixture_wrapped_in_event_is_a_deliver_input() {
    let validator = validator(DELIVER_INPUT);
    for name in FIXTURES {
        assert_valid(&validator, &json!({"event": fixture(name)}), name);
    }
    let with_context = json!({"event": fixture("composite-alarm.json"), "execution": {"id": "x"}});
    assert_valid(&validator, &with_context, "with workflow context");
}

#[test]
fn deliver_input_checks_the_event_through_its_ref() {
    let validator = validator(DELIVER_INPUT);
    let mut event = fixture("metric-alarm.json");
    event["detail"]["state"]["value"] = json!("PENDING");
    assert_refused(
        &validator,
        &json!({"event": event}),
        "/event/detail/state/value",
        "PENDING",
    );
    assert_refused(
        &validator,
        &json!({"alarm": fixture("metric-alarm.json")}),
        "",
        "event",
    );
}

#[test]
fn a_delivery_record_is_a_delivery_record() {
    let validator = validator(DELIVERY_RECORD);
    let record = delivery_record();
    let json = record_json(&record);
    assert_eq!(json["attempts"][0]["retryAfterSeconds"], json!(7));
    assert!(
        json["attempts"][1].get("error").is_none(),
        "None fields are omitted: {json}"
    );
    assert_valid(&validator, &json, "a record with both attempt shapes");
    let one = DeliveryRecord {
        outcome: AttemptOutcome::Transient,
        attempts: vec![AttemptRecord {
            error: Some("connection refused".into()),
            ..attempt(AttemptOutcome::Transient)
        }],
        ..record
    };
    assert_valid(&validator, &record_json(&one), "a transport failure");
}

#[test]
fn a_delivery_record_without_attempts_is_not_a_delivery_record() {
    let validator = validator(DELIVERY_RECORD);
    let mut json = record_json(&delivery_record());
    json.as_object_mut().unwrap().remove("attempts");
    assert_refused(&validator, &json, "", "attempts");
    json["attempts"] = json!([]);
    assert_refused(&validator, &json, "/attempts", "");
}

#[test]
fn delivery_record_schema_matches_the_serde_shape() {
    let validator = validator(DELIVERY_RECORD);
    let base = record_json(&delivery_record());
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str, &str); 5] = [
        (
            "short sha",
            |record| record["bodySha256"] = json!("abc"),
            "/bodySha256",
            "abc",
        ),
        (
            "outcome",
            |record| record["outcome"] = json!("retry"),
            "/outcome",
            "retry",
        ),
        (
            "extra key",
            |record| record["secret"] = json!("x"),
            "",
            "secret",
        ),
        (
            "snake_case field",
            |record| record["attempts"][0]["latency_ms"] = json!(1),
            "/attempts/0",
            "latency_ms",
        ),
        (
            "null optional",
            |record| record["attempts"][1]["statusCode"] = Value::Null,
            "/attempts/1/statusCode",
            "integer",
        ),
    ];
    for (_, edit, path, needle) in cases {
        let mut record = base.clone();
        edit(&mut record);
        assert_refused(&validator, &record, path, needle);
    }
    let round_trip: DeliveryRecord = serde_json::from_value(base).unwrap();
    assert_eq!(round_trip, delivery_record());
}

#[test]
fn every_schema_is_a_2020_12_schema_with_an_id() {
    for name in SCHEMAS {
        let schema = schema(name);
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        let id = schema_id(name);
        assert!(id.ends_with(&format!("/{name}")), "{name}: $id {id}");
        assert!(schema["title"].is_string(), "{name} has no title");
        assert!(
            schema["description"].is_string(),
            "{name} has no description"
        );
        if let Err(error) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{name} is not a valid 2020-12 schema: {error}");
        }
    }
}

#[test]
fn every_schema_field_is_described() {
    fn walk(node: &Value, path: &str, missing: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "properties" || key == "$defs" {
                        for (field, schema) in child.as_object().into_iter().flatten() {
                            if schema.get("description").is_none_or(|d| !d.is_string()) {
                                missing.push(format!("{path}/{key}/{field}"));
                            }
                        }
                    }
                    walk(child, &format!("{path}/{key}"), missing);
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}/{index}"), missing);
                }
            }
            _ => {}
        }
    }
    for name in SCHEMAS {
        let mut missing = Vec::new();
        walk(&schema(name), "", &mut missing);
        assert!(missing.is_empty(), "{name}: undescribed {missing:#?}");
    }
}
