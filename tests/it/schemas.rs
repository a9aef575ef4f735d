//! The JSON Schemas in `schemas/` describe what the code accepts and produces: every fixture,
//! every rendered body (created, updated, resolved), the correlation decisions, the signer's
//! input and its delivery record validate; near misses do not.

use alarm_relay::adapters::SqliteStore;
use alarm_relay::config::CorrelationConfig;
use alarm_relay::correlate;
use alarm_relay::delivery::{AttemptOutcome, AttemptRecord, DeliveryRecord};
use alarm_relay::event::AlarmEvent;
use alarm_relay::intake::Intake;
use alarm_relay::outbox::Dispatcher;
use alarm_relay::payload::WebhookBody;
use alarm_relay::testing::{FakeStarter, FixedClock};
use jsonschema::{Draft, Registry, Validator};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

const ALARM_EVENT: &str = "alarm-event.schema.json";
const WEBHOOK_BODY: &str = "webhook-body.schema.json";
const WEBHOOK_UPDATED: &str = "webhook-updated.schema.json";
const WEBHOOK_RESOLVED: &str = "webhook-resolved.schema.json";
const CORRELATE_DECISION: &str = "correlate-decision.schema.json";
const DELIVER_INPUT: &str = "deliver-input.schema.json";
const DELIVERY_RECORD: &str = "delivery-record.schema.json";
const ALARMS_FILE: &str = "alarms-file.schema.json";
const ENRICHMENT: &str = "enrichment.schema.json";
const SCHEMAS: [&str; 9] = [
    ALARM_EVENT,
    WEBHOOK_BODY,
    WEBHOOK_UPDATED,
    WEBHOOK_RESOLVED,
    CORRELATE_DECISION,
    DELIVER_INPUT,
    DELIVERY_RECORD,
    ALARMS_FILE,
    ENRICHMENT,
];

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

/// A validator for one schema, with all of them loaded so `$ref`s between them resolve offline.
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
        event_timestamp: Some("2026-11-24T10:00:00.000Z".into()),
        auth: Some("hmac".into()),
        dry_run: None,
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

#[test]
fn every_file_in_schemas_is_listed() {
    let directory = manifest_path(&["schemas"]);
    let mut files: Vec<String> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("{}: {error}", directory.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut listed = SCHEMAS.map(str::to_owned).to_vec();
    listed.sort();
    assert_eq!(
        files, listed,
        "every schema is listed in SCHEMAS (and tested)"
    );
}

// Episodes: the `updated` and `resolved` bodies, and the decisions that pick them.

const GROUP: &str = "group:checkout";

/// The fixture `name` as the transition of alarm `alarm` into `state` at `timestamp`.
fn transition(name: &str, alarm: &str, state: &str, timestamp: &str) -> Value {
    let mut event = fixture(name);
    let arn = format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{alarm}",
        event["region"].as_str().unwrap(),
        event["account"].as_str().unwrap()
    );
    event["resources"] = json!([arn]);
    event["detail"]["alarmName"] = json!(alarm);
    event["detail"]["state"]["value"] = json!(state);
    event["detail"]["state"]["timestamp"] = json!(timestamp);
    if state == "OK" {
        event["detail"]["state"]["reason"] = json!(
            "Threshold Crossed: 1 out of the last 1 datapoints [2.0] was not greater than the threshold (50.0)."
        );
    }
    event
}

fn parsed(event: &Value) -> AlarmEvent {
    AlarmEvent::parse(&serde_json::to_vec(event).unwrap()).expect("a valid alarm event")
}

fn body_json(body: &WebhookBody) -> Value {
    serde_json::from_str(body.as_str()).expect("the body is JSON")
}

/// A decision as `correlate::handle` answers it for an episode of `GROUP`.
fn decision(
    step: &str,
    decision: &str,
    action: &str,
    primary: &AlarmEvent,
    event: &AlarmEvent,
    members: &[&str],
) -> Value {
    json!({
        "step": step,
        "groupKey": GROUP,
        "groupedBy": "tag",
        "primaryIncidentId": primary.incident_id().as_str(),
        "incidentId": event.incident_id().as_str(),
        "episode": 3,
        "members": members,
        "decision": decision,
        "action": action,
    })
}

fn enrichments() -> [Option<Value>; 2] {
    [
        None,
        Some(json!({"alarm": {"threshold": 50.0}, "tags": {"alarm-relay:group": "checkout"}})),
    ]
}

/// What every episode body keeps of the seed's body for the same event, and how it differs.
#[track_caller]
fn assert_keeps_the_seed_body(
    body: &Value,
    event: &AlarmEvent,
    enrichment: Option<&Value>,
    decision: &Value,
) {
    let seed = body_json(&WebhookBody::render_enriched(event, enrichment));
    let keys = |value: &Value| {
        value
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(body), keys(&seed), "the seed's keys, in its order");
    for key in ["eventType", "priority", "timestamp", "service"] {
        assert_eq!(body[key], seed[key], "{key}");
    }
    assert_eq!(body["incidentId"], decision["primaryIncidentId"]);
    assert_eq!(body["action"], decision["action"]);
    let (_, seed_description) = body["description"]
        .as_str()
        .unwrap()
        .split_once('\n')
        .unwrap();
    assert_eq!(seed_description, seed["description"].as_str().unwrap());
    assert_eq!(body["data"]["metadata"], seed["data"]["metadata"]);
    assert_eq!(body["data"].get("enrichment"), enrichment);
    let mut data_keys = keys(&seed["data"]);
    data_keys.push("correlation".to_owned());
    assert_eq!(keys(&body["data"]), data_keys, "correlation comes last");
    let correlation = &body["data"]["correlation"];
    for key in [
        "groupKey",
        "primaryIncidentId",
        "incidentId",
        "episode",
        "members",
    ] {
        assert_eq!(correlation[key], decision[key], "data.correlation.{key}");
    }
}

/// An `updated` body for each fixture joining the episode the metric fixture opened.
fn updated_bodies() -> Vec<(String, Value)> {
    let primary = parsed(&fixture("metric-alarm.json"));
    let mut bodies = Vec::new();
    for name in FIXTURES {
        let joining = parsed(&transition(
            name,
            &format!("joining {name}"),
            "ALARM",
            "2026-11-24T10:03:00.000+0000",
        ));
        let members = [primary.alarm_name(), joining.alarm_name()];
        let decision = decision(
            "Correlate",
            "joined",
            "updated",
            &primary,
            &joining,
            &members,
        );
        for enrichment in enrichments() {
            let body = WebhookBody::render_decision(&joining, enrichment.as_ref(), &decision);
            let body = body_json(&body);
            assert_keeps_the_seed_body(&body, &joining, enrichment.as_ref(), &decision);
            bodies.push((format!("{name}, enriched: {}", enrichment.is_some()), body));
        }
    }
    bodies
}

/// A `resolved` body for each fixture recovering last from the metric fixture's episode.
fn resolved_bodies() -> Vec<(String, Value)> {
    let primary = parsed(&fixture("metric-alarm.json"));
    let mut bodies = Vec::new();
    for name in FIXTURES {
        let recovery = parsed(&transition(
            name,
            &format!("recovering {name}"),
            "OK",
            "2026-11-24T10:20:00.000+0000",
        ));
        let members = [primary.alarm_name(), recovery.alarm_name()];
        let decision = decision(
            "ConfirmResolve",
            "resolved",
            "resolved",
            &primary,
            &recovery,
            &members,
        );
        for enrichment in enrichments() {
            let body = WebhookBody::render_decision(&recovery, enrichment.as_ref(), &decision);
            let body = body_json(&body);
            assert_keeps_the_seed_body(&body, &recovery, enrichment.as_ref(), &decision);
            bodies.push((format!("{name}, enriched: {}", enrichment.is_some()), body));
        }
    }
    bodies
}

#[test]
fn the_decisions_the_body_tests_render_are_correlate_decisions() {
    let validator = validator(CORRELATE_DECISION);
    let primary = parsed(&fixture("metric-alarm.json"));
    let other = parsed(&fixture("composite-alarm.json"));
    let members = [primary.alarm_name(), other.alarm_name()];
    for (step, name, action) in [
        ("Correlate", "joined", "updated"),
        ("ConfirmResolve", "resolved", "resolved"),
    ] {
        let decision = decision(step, name, action, &primary, &other, &members);
        assert_valid(&validator, &decision, name);
    }
}

#[test]
fn every_updated_body_is_a_webhook_updated_body() {
    let updated = validator(WEBHOOK_UPDATED);
    let seed = validator(WEBHOOK_BODY);
    for (what, body) in updated_bodies() {
        assert_valid(&updated, &body, &what);
        assert_eq!(body["data"]["metadata"]["newState"], "ALARM");
        assert!(
            body["title"]
                .as_str()
                .unwrap()
                .contains(" joined NFM-Alarm-EKS-DB"),
            "{what}: {}",
            body["title"]
        );
        assert_refused(&seed, &body, "/action", "created");
    }
}

#[test]
fn every_resolved_body_is_a_webhook_resolved_body() {
    let resolved = validator(WEBHOOK_RESOLVED);
    let seed = validator(WEBHOOK_BODY);
    for (what, body) in resolved_bodies() {
        assert_valid(&resolved, &body, &what);
        assert_eq!(body["data"]["metadata"]["newState"], "OK");
        assert_eq!(
            body["title"], "CloudWatch Alarm: NFM-Alarm-EKS-DB resolved",
            "{what}"
        );
        assert_refused(&seed, &body, "/action", "created");
    }
}

#[test]
fn episode_body_schemas_refuse_near_misses() {
    type Edit = fn(&mut Value);
    let common: [(&str, Edit, &str, &str); 6] = [
        (
            "no data.correlation",
            |body| drop(body["data"].as_object_mut().unwrap().remove("correlation")),
            "/data",
            "correlation",
        ),
        (
            "no correlation.members",
            |body| {
                drop(
                    body["data"]["correlation"]
                        .as_object_mut()
                        .unwrap()
                        .remove("members"),
                )
            },
            "/data/correlation",
            "members",
        ),
        (
            "episode as text",
            |body| body["data"]["correlation"]["episode"] = json!("3"),
            "/data/correlation/episode",
            "integer",
        ),
        (
            "members not strings",
            |body| body["data"]["correlation"]["members"] = json!([1]),
            "/data/correlation/members/0",
            "string",
        ),
        (
            "no metadata.alarmArn",
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
        (
            "an extra top-level key",
            |body| body["correlation"] = json!({}),
            "",
            "correlation",
        ),
    ];
    for (schema_name, bodies, action, state) in [
        (WEBHOOK_UPDATED, updated_bodies(), "updated", "ALARM"),
        (WEBHOOK_RESOLVED, resolved_bodies(), "resolved", "OK"),
    ] {
        let validator = validator(schema_name);
        let (_, base) = &bodies[0];
        for (what, edit, path, needle) in common {
            let mut body = base.clone();
            edit(&mut body);
            assert!(!validator.is_valid(&body), "{schema_name}: {what}");
            assert_refused(&validator, &body, path, needle);
        }
        // The error names the action (and state) the schema expects.
        for wrong in ["created", "updated", "resolved", "closed"] {
            if wrong != action {
                let mut body = base.clone();
                body["action"] = json!(wrong);
                assert_refused(&validator, &body, "/action", action);
            }
        }
        for wrong in ["ALARM", "OK", "INSUFFICIENT_DATA"] {
            if wrong != state {
                let mut body = base.clone();
                body["data"]["metadata"]["newState"] = json!(wrong);
                assert_refused(&validator, &body, "/data/metadata/newState", state);
            }
        }
        let mut body = base.clone();
        body["data"]["correlation"]["members"] = json!([]);
        assert_refused(&validator, &body, "/data/correlation/members", "[]");
        let mut body = base.clone();
        body["data"]["correlation"]["episode"] = Value::Null;
        assert_valid(&validator, &body, "episode null");
        body["data"]["investigation"] = json!({"runbook": "https://example.com"});
        assert_valid(&validator, &body, "new keys inside data");
    }
}

#[test]
fn a_created_decision_renders_the_seed_body_byte_for_byte() {
    let validator = validator(WEBHOOK_BODY);
    for name in FIXTURES {
        let event = parsed(&fixture(name));
        for enrichment in enrichments() {
            let seed = WebhookBody::render_enriched(&event, enrichment.as_ref());
            for (step, name_of_decision) in [("Correlate", "opened"), ("Correlate", "uncorrelated")]
            {
                let decision = decision(step, name_of_decision, "created", &event, &event, &[]);
                let body = WebhookBody::render_decision(&event, enrichment.as_ref(), &decision);
                assert_eq!(body.as_str(), seed.as_str(), "{name} {name_of_decision}");
                assert_eq!(body.sha256_hex(), seed.sha256_hex());
                assert_valid(&validator, &body_json(&body), name);
            }
        }
    }
}

/// An in-memory store, intake and clock, and the Correlate/ConfirmResolve states over them.
struct Episodes {
    store: Arc<SqliteStore>,
    intake: Intake,
    config: CorrelationConfig,
    clock: Arc<FixedClock>,
}

impl Episodes {
    fn new(config: CorrelationConfig) -> Self {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let clock = Arc::new(FixedClock::at("2026-11-24T10:00:01Z"));
        let dispatcher = Dispatcher::new(
            store.clone(),
            Arc::new(FakeStarter::default()),
            clock.clone(),
        );
        let intake = Intake::new(dispatcher, None).starting_recoveries(config.enabled());
        Self {
            store,
            intake,
            config,
            clock,
        }
    }

    fn input(step: &str, event: &Value, group: Option<&str>) -> Value {
        let mut input = json!({
            "step": step,
            "incidentId": parsed(event).incident_id().as_str(),
            "event": event,
        });
        if let Some(group) = group {
            input["enriched"] = json!({"enrichment": {"tags": {"alarm-relay:group": group}}});
        }
        input
    }

    async fn run(&self, input: &Value) -> Value {
        self.clock.advance(std::time::Duration::from_secs(1));
        correlate::handle(
            input,
            &self.config,
            self.store.as_ref(),
            self.clock.as_ref(),
        )
        .await
        .unwrap_or_else(|error| panic!("{}: {error}", input["step"]))
    }

    /// Intake records the event, then Correlate decides it (with the group tag, if any).
    async fn correlate(&self, event: &Value, group: Option<&str>) -> (Value, Value) {
        self.intake
            .handle(&serde_json::to_vec(event).unwrap())
            .await
            .unwrap();
        let input = Self::input(correlate::CORRELATE, event, group);
        (self.run(&input).await, input)
    }

    /// ConfirmResolve for the OK incident `event`, after its quiet period.
    async fn confirm(&self, event: &Value, group: Option<&str>) -> (Value, Value) {
        self.clock.advance(self.config.resolve_quiet);
        let input = Self::input(correlate::CONFIRM_RESOLVE, event, group);
        (self.run(&input).await, input)
    }
}

fn at(minute: u32) -> String {
    format!("2026-11-24T10:{minute:02}:00.000+0000")
}

fn muted(mut event: Value) -> Value {
    event["detail"]["muteDetail"] = json!({
        "mutedByArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm-mute-rule:maintenance",
        "muteWindowStart": "2026-11-24T09:00:00.000+0000",
        "muteWindowEnd": "2026-11-24T11:00:00.000+0000",
    });
    event
}

/// The Deliver state's input for a decision, as statemachine/incident.asl.json builds it.
fn deliver_input(input: &Value, decision: &Value) -> Value {
    json!({
        "incidentId": input["incidentId"],
        "event": input["event"],
        "enriched": input.get("enriched").cloned().unwrap_or(json!({"Error": "States.TaskFailed", "Cause": "no alarm"})),
        "execution": {"arn": "arn:aws:states:us-east-1:123456789012:execution:incident:x", "retryCount": 0},
        "correlation": decision,
    })
}

/// Renders the body Deliver sends for `decision`, as src/signer.rs does.
fn delivered_body(input: &Value, decision: &Value) -> Value {
    let enrichment = input.pointer("/enriched/enrichment");
    let body = WebhookBody::render_decision(&parsed(&input["event"]), enrichment, decision);
    body_json(&body)
}

#[tokio::test]
async fn real_decisions_are_correlate_decisions_and_render_their_bodies() {
    let schema = validator(CORRELATE_DECISION);
    let deliver = validator(DELIVER_INPUT);
    let seed = validator(WEBHOOK_BODY);
    let updated = validator(WEBHOOK_UPDATED);
    let resolved = validator(WEBHOOK_RESOLVED);
    let episodes = Episodes::new(CorrelationConfig {
        resolve_on_ok: true,
        max_updates: 1,
        ..CorrelationConfig::default()
    });
    let metric = "metric-alarm.json";
    let checkout = Some("checkout");
    let payments = Some("payments");
    let a_ok = transition(metric, "A", "OK", &at(4));
    let b_ok = transition("metric-math-alarm.json", "B", "OK", &at(5));
    let c_ok = transition("anomaly-detection-alarm.json", "C", "OK", &at(6));
    let d_ok = transition(metric, "D", "OK", &at(11));
    let steps: Vec<(&str, Value, Option<&str>, &str)> = vec![
        (
            "Correlate",
            transition(metric, "A", "ALARM", &at(0)),
            checkout,
            "opened",
        ),
        (
            "Correlate",
            transition("metric-math-alarm.json", "B", "ALARM", &at(1)),
            checkout,
            "joined",
        ),
        (
            "Correlate",
            transition("anomaly-detection-alarm.json", "C", "ALARM", &at(2)),
            checkout,
            "update-limit",
        ),
        (
            "Correlate",
            transition(metric, "A", "ALARM", &at(3)),
            checkout,
            "flapping",
        ),
        ("Correlate", a_ok, checkout, "recovered"),
        ("Correlate", b_ok, checkout, "recovered"),
        // C sent nothing (past the update limit) but is a member: its OK is the last one.
        ("Correlate", c_ok.clone(), checkout, "resolve-pending"),
        ("ConfirmResolve", c_ok, checkout, "resolved"),
        // Another group: a recovery, then its alarm back in ALARM during the quiet period.
        (
            "Correlate",
            transition(metric, "D", "ALARM", &at(10)),
            payments,
            "opened",
        ),
        ("Correlate", d_ok.clone(), payments, "resolve-pending"),
        (
            "Correlate",
            transition(metric, "D", "ALARM", &at(12)),
            payments,
            "flapping",
        ),
        ("ConfirmResolve", d_ok, payments, "resolve-cancelled"),
        // No episode: muted, an OK of no episode, INSUFFICIENT_DATA.
        (
            "Correlate",
            muted(transition(metric, "E", "ALARM", &at(20))),
            Some("maintenance"),
            "muted",
        ),
        (
            "Correlate",
            transition(metric, "F", "OK", &at(21)),
            Some("quiet"),
            "ignored",
        ),
        (
            "Correlate",
            transition(metric, "G", "INSUFFICIENT_DATA", &at(22)),
            Some("quiet"),
            "ignored",
        ),
        // No tags (enrichment failed): grouped by the Network Flow Monitor, or by the alarm.
        (
            "Correlate",
            transition(metric, "H", "ALARM", &at(30)),
            None,
            "opened",
        ),
        (
            "Correlate",
            transition("composite-alarm.json", "I", "ALARM", &at(31)),
            None,
            "opened",
        ),
    ];
    let mut decided = Vec::new();
    for (step, event, group, expected) in steps {
        let (decision, input) = if step == correlate::CORRELATE {
            episodes.correlate(&event, group).await
        } else {
            episodes.confirm(&event, group).await
        };
        let what = format!("{step} {} {}", input["incidentId"], decision);
        assert_eq!(decision["decision"], expected, "{what}");
        assert_valid(&schema, &decision, &what);
        assert_valid(&deliver, &deliver_input(&input, &decision), &what);
        match decision["action"].as_str().unwrap() {
            "created" => assert_valid(&seed, &delivered_body(&input, &decision), &what),
            "updated" => assert_valid(&updated, &delivered_body(&input, &decision), &what),
            "resolved" => assert_valid(&resolved, &delivered_body(&input, &decision), &what),
            _ => {}
        }
        decided.push(decision);
    }
    let by_decision = |name: &str| {
        decided
            .iter()
            .find(|decision| decision["decision"] == name)
            .unwrap()
    };
    assert_eq!(by_decision("joined")["members"], json!(["A", "B"]));
    assert_eq!(
        by_decision("joined")["primaryIncidentId"],
        decided[0]["incidentId"]
    );
    assert_eq!(by_decision("resolved")["episode"], json!(1));
    if let Some(member_incidents) = by_decision("resolved").get("memberIncidents") {
        assert_eq!(
            member_incidents,
            &json!([
                decided[0]["incidentId"],
                decided[1]["incidentId"],
                decided[2]["incidentId"]
            ])
        );
    }
    assert!(by_decision("resolve-pending")["quietSeconds"].is_u64());
    assert!(by_decision("muted")["mutedBy"].is_string());
    assert!(by_decision("update-limit")["reason"].is_string());
    assert!(by_decision("resolve-cancelled")["reason"].is_string());
    let grouped: Vec<_> = decided[decided.len() - 2..]
        .iter()
        .map(|decision| (decision["groupedBy"].clone(), decision["note"].is_string()))
        .collect();
    assert_eq!(
        grouped,
        [(json!("monitor"), true), (json!("alarm"), true)],
        "untagged alarms"
    );
}

#[tokio::test]
async fn uncorrelated_decisions_are_correlate_decisions() {
    let schema = validator(CORRELATE_DECISION);
    let seed = validator(WEBHOOK_BODY);
    let episodes = Episodes::new(CorrelationConfig {
        window: std::time::Duration::ZERO,
        ..CorrelationConfig::default()
    });
    let metric = "metric-alarm.json";
    for (event, expected) in [
        (transition(metric, "A", "ALARM", &at(0)), "uncorrelated"),
        (transition(metric, "A", "ALARM", &at(1)), "uncorrelated"),
        (transition(metric, "A", "OK", &at(2)), "ignored"),
    ] {
        let (decision, input) = episodes.correlate(&event, Some("checkout")).await;
        assert_eq!(decision["decision"], expected);
        assert_valid(&schema, &decision, expected);
        if decision["action"] == "created" {
            let body = WebhookBody::render_decision(
                &parsed(&event),
                input.pointer("/enriched/enrichment"),
                &decision,
            );
            let plain = WebhookBody::render_enriched(
                &parsed(&event),
                input.pointer("/enriched/enrichment"),
            );
            assert_eq!(body, plain, "uncorrelated is the seed's body");
            assert_valid(&seed, &body_json(&body), expected);
        }
    }
}

#[test]
fn correlate_decision_schema_refuses_near_misses() {
    let deliver = validator(DELIVER_INPUT);
    let validator = validator(CORRELATE_DECISION);
    let primary = parsed(&fixture("metric-alarm.json"));
    let other = parsed(&fixture("composite-alarm.json"));
    let members = [primary.alarm_name(), other.alarm_name()];
    let base = decision("Correlate", "joined", "updated", &primary, &other, &members);
    assert_valid(&validator, &base, "joined");
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str, &str); 11] = [
        (
            "unknown decision",
            |d| d["decision"] = json!("merged"),
            "/decision",
            "merged",
        ),
        (
            "unknown action",
            |d| d["action"] = json!("closed"),
            "/action",
            "closed",
        ),
        (
            "joined but created",
            |d| d["action"] = json!("created"),
            "/action",
            "updated",
        ),
        (
            "ConfirmResolve cannot join",
            |d| d["step"] = json!("ConfirmResolve"),
            "/decision",
            "joined",
        ),
        (
            "unknown step",
            |d| d["step"] = json!("Deliver"),
            "/step",
            "Deliver",
        ),
        (
            "muted without mutedBy",
            |d| {
                d["decision"] = json!("muted");
                d["action"] = json!("none");
                d["episode"] = Value::Null;
                d["members"] = json!([]);
            },
            "",
            "mutedBy",
        ),
        (
            "resolve-pending without quietSeconds",
            |d| {
                d["decision"] = json!("resolve-pending");
                d["action"] = json!("resolve-pending");
            },
            "",
            "quietSeconds",
        ),
        (
            "joined without an episode",
            |d| d["episode"] = Value::Null,
            "/episode",
            "integer",
        ),
        (
            "groupedBy does not match groupKey",
            |d| d["groupedBy"] = json!("monitor"),
            "",
            "oneOf",
        ),
        (
            "no primaryIncidentId",
            |d| drop(d.as_object_mut().unwrap().remove("primaryIncidentId")),
            "",
            "primaryIncidentId",
        ),
        (
            "an unknown key",
            |d| d["suppressed"] = json!(true),
            "",
            "suppressed",
        ),
    ];
    for (what, edit, path, needle) in cases {
        let mut decision = base.clone();
        edit(&mut decision);
        assert!(!validator.is_valid(&decision), "{what}: {decision}");
        assert_refused(&validator, &decision, path, needle);
    }
    let mut input = json!({"event": fixture("metric-alarm.json"), "correlation": base});
    assert_valid(&deliver, &input, "deliver input with its decision");
    input["correlation"]["action"] = json!("closed");
    assert_refused(&deliver, &input, "/correlation/action", "closed");
}

// The local alarm file: what `aws cloudwatch describe-alarms` prints, plus each alarm's tags.

#[cfg(feature = "local")]
mod alarms_file {
    use super::*;
    use alarm_relay::adapters::local::{AlarmFileError, FileAlarmSource};
    use alarm_relay::event::StateValue;
    use alarm_relay::ports::{AlarmDefinition, AlarmSource};
    use std::collections::BTreeMap;

    /// Not in tests/fixtures itself: `seed_compat::fixtures_match_seed` takes every JSON file
    /// there for an alarm event.
    fn example_path() -> PathBuf {
        manifest_path(&["tests", "fixtures", "alarm-file", "alarms.json"])
    }

    fn example_text() -> String {
        let path = example_path();
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    fn example() -> Value {
        serde_json::from_str(&example_text()).expect("the example is JSON")
    }

    #[tokio::test]
    async fn the_example_alarm_file_validates_and_loads() {
        assert_valid(&validator(ALARMS_FILE), &example(), "alarms.json");
        let source = FileAlarmSource::from_json(&example_text()).expect("the example loads");
        let loaded = FileAlarmSource::load(&example_path()).expect("the example loads");
        assert_eq!((source.len(), loaded.len()), (3, 3));

        let Some(AlarmDefinition::Metric(db)) =
            source.describe_alarm("NFM-Alarm-EKS-DB").await.unwrap()
        else {
            panic!("NFM-Alarm-EKS-DB is a metric alarm");
        };
        assert_eq!(db.state, Some(StateValue::Alarm));
        assert_eq!(
            db.state_updated_at.as_deref(),
            Some("2026-11-24T10:00:00.000Z")
        );
        assert_eq!(db.threshold, Some(50.0));
        assert_eq!(db.statistic.as_deref(), Some("Sum"));
        assert_eq!((db.period, db.evaluation_periods), (Some(300), Some(1)));
        let tags = source.alarm_tags(db.arn.as_deref().unwrap()).await.unwrap();
        assert_eq!(
            tags,
            Some(BTreeMap::from([
                ("alarm-relay:destination".to_owned(), "db-team".to_owned()),
                ("alarm-relay:priority".to_owned(), "CRITICAL".to_owned()),
                ("alarm-relay:service".to_owned(), "checkout-db".to_owned()),
            ]))
        );

        let Some(AlarmDefinition::Metric(math)) = source
            .describe_alarm("NFM-EKS-DB-Retransmissions")
            .await
            .unwrap()
        else {
            panic!("NFM-EKS-DB-Retransmissions is a metric alarm");
        };
        assert_eq!((math.statistic, math.period), (None, None));
        assert_eq!(math.threshold, Some(2.5));
        let arn = math.arn.unwrap();
        assert_eq!(
            source.alarm_tags(&arn).await.unwrap(),
            Some(BTreeMap::new())
        );

        let Some(AlarmDefinition::Composite(composite)) =
            source.describe_alarm("NetworkPathDegraded").await.unwrap()
        else {
            panic!("NetworkPathDegraded is a composite alarm");
        };
        assert_eq!(
            composite.actions_suppressor.as_deref(),
            Some("MaintenanceWindow")
        );
        let names = [
            "NFM-Alarm-EKS-DB",
            "NFM-EKS-DB-Retransmissions",
            "NFM-Alarm-EKS-Cache",
        ]
        .map(str::to_owned);
        assert_eq!(
            source.alarm_states(&names).await.unwrap(),
            BTreeMap::from([
                ("NFM-Alarm-EKS-DB".to_owned(), StateValue::Alarm),
                ("NFM-EKS-DB-Retransmissions".to_owned(), StateValue::Ok),
            ])
        );
    }

    /// One row per fault: the schema refuses it at `pointer` and the loader at `at`.
    #[test]
    fn the_alarm_file_schema_refuses_what_the_loader_refuses() {
        let validator = validator(ALARMS_FILE);
        type Edit = fn(&mut Value);
        let cases: [(Edit, &str, &str, &str); 10] = [
            (
                |f| {
                    drop(
                        f["MetricAlarms"][0]["Tags"][2]
                            .as_object_mut()
                            .unwrap()
                            .remove("Value"),
                    )
                },
                "/MetricAlarms/0/Tags/2",
                "Value",
                "MetricAlarms[0].Tags[2]",
            ),
            (
                |f| {
                    drop(
                        f["CompositeAlarms"][0]
                            .as_object_mut()
                            .unwrap()
                            .remove("AlarmName"),
                    )
                },
                "/CompositeAlarms/0",
                "AlarmName",
                "CompositeAlarms[0]",
            ),
            (
                |f| f["MetricAlarms"][1]["AlarmName"] = json!(""),
                "/MetricAlarms/1/AlarmName",
                "",
                "MetricAlarms[1].AlarmName",
            ),
            (
                |f| f["MetricAlarms"][1]["StateValue"] = json!("PENDING"),
                "/MetricAlarms/1/StateValue",
                "PENDING",
                "MetricAlarms[1].StateValue",
            ),
            (
                |f| f["CompositeAlarms"][0]["StateUpdatedTimestamp"] = json!("yesterday"),
                "/CompositeAlarms/0/StateUpdatedTimestamp",
                "date-time",
                "CompositeAlarms[0].StateUpdatedTimestamp",
            ),
            (
                |f| f["MetricAlarms"][0]["EvaluationPeriods"] = json!(-1),
                "/MetricAlarms/0/EvaluationPeriods",
                "minimum",
                "MetricAlarms[0].EvaluationPeriods",
            ),
            (
                |f| f["MetricAlarms"][0]["Dimensions"] = json!({"MonitorId": "m"}),
                "/MetricAlarms/0/Dimensions",
                "array",
                "MetricAlarms[0].Dimensions",
            ),
            (
                |f| {
                    drop(
                        f["MetricAlarms"][1]["Metrics"][1]["MetricStat"]
                            .as_object_mut()
                            .unwrap()
                            .remove("Stat"),
                    )
                },
                "/MetricAlarms/1/Metrics/1/MetricStat",
                "",
                "MetricAlarms[1].Metrics[1].MetricStat",
            ),
            (
                |f| f["MetricAlarms"][0] = json!(["NFM-Alarm-EKS-DB"]),
                "/MetricAlarms/0",
                "object",
                "MetricAlarms[0]",
            ),
            (
                |f| f["CompositeAlarms"] = Value::Null,
                "/CompositeAlarms",
                "array",
                "CompositeAlarms",
            ),
        ];
        for (edit, pointer, needle, at) in cases {
            let mut file = example();
            edit(&mut file);
            assert_refused(&validator, &file, pointer, needle);
            match FileAlarmSource::from_json(&file.to_string()) {
                Err(AlarmFileError::Invalid { at: found, .. }) => {
                    assert_eq!(found, at, "{pointer}")
                }
                other => panic!("{pointer}: the loader answers {other:?}"),
            }
        }
    }

    #[test]
    fn the_alarm_file_schema_accepts_what_the_loader_tolerates() {
        let validator = validator(ALARMS_FILE);
        type Edit = fn(&mut Value);
        let cases: [(&str, Edit); 6] = [
            ("no alarms at all", |f| *f = json!({})),
            ("no composite alarms", |f| {
                drop(f.as_object_mut().unwrap().remove("CompositeAlarms"))
            }),
            ("unknown fields everywhere", |f| {
                f["NextToken"] = json!("abc");
                f["MetricAlarms"][0]["EvaluationState"] = json!("PARTIAL_DATA");
                f["MetricAlarms"][0]["Tags"][0]["ResourceArn"] = json!("arn");
                f["MetricAlarms"][1]["Metrics"][0]["Extra"] = json!([1, 2]);
            }),
            ("nulls for optional fields", |f| {
                f["MetricAlarms"][0]["Unit"] = Value::Null;
                f["MetricAlarms"][0]["Threshold"] = Value::Null;
                f["CompositeAlarms"][0]["StateValue"] = Value::Null;
                f["CompositeAlarms"][0]["StateUpdatedTimestamp"] = Value::Null;
            }),
            ("no tags and no state", |f| {
                let alarm = f["MetricAlarms"][0].as_object_mut().unwrap();
                alarm.remove("Tags");
                alarm.remove("StateValue");
            }),
            ("an alarm of a name only", |f| {
                f["MetricAlarms"] = json!([{"AlarmName": "bare"}]);
            }),
        ];
        for (what, edit) in cases {
            let mut file = example();
            edit(&mut file);
            assert_valid(&validator, &file, what);
            if let Err(error) = FileAlarmSource::from_json(&file.to_string()) {
                panic!("{what}: the loader refuses it: {error}");
            }
        }
    }
}

// The Enrich state's result, network evidence included.

#[cfg(feature = "local")]
mod enrichment {
    use super::*;
    use alarm_relay::adapters::OfflineAlarmSource;
    use alarm_relay::adapters::local::FileAlarmSource;
    use alarm_relay::enrich::{self, network::NetworkSettings};
    use alarm_relay::ports::{AlarmSource, IncidentStore};

    const NOW: &str = "2026-11-24T10:00:30.500Z";

    fn alarm_file(name: &str) -> FileAlarmSource {
        let path = manifest_path(&["tests", "fixtures", "alarm-file", name]);
        FileAlarmSource::load(&path).unwrap_or_else(|error| panic!("{error}"))
    }

    /// What the Enrich state answers for the fixture `name`, reading `source`.
    async fn enriched(name: &str, source: &dyn AlarmSource) -> Value {
        let store: Arc<dyn IncidentStore> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let clock = Arc::new(FixedClock::at(NOW));
        let dispatcher = Dispatcher::new(
            store.clone(),
            Arc::new(FakeStarter::default()),
            clock.clone(),
        );
        let raw = fixture_bytes(name);
        let outcome = Intake::new(dispatcher, None).handle(&raw).await.unwrap();
        let input = json!({
            "incidentId": outcome.incident().incident_id,
            "event": serde_json::from_slice::<Value>(&raw).unwrap(),
        });
        enrich::handle(
            input,
            source,
            &NetworkSettings::default(),
            store.as_ref(),
            clock.as_ref(),
        )
        .await
        .unwrap_or_else(|error| panic!("{name}: {error}"))
    }

    #[tokio::test]
    async fn every_enrichment_validates_with_and_without_network_evidence() {
        let validator = validator(ENRICHMENT);
        let sources: [(&str, Box<dyn AlarmSource>); 3] = [
            ("offline", Box::new(OfflineAlarmSource)),
            ("alarms.json", Box::new(alarm_file("alarms.json"))),
            (
                "top-contributors.json",
                Box::new(alarm_file("top-contributors.json")),
            ),
        ];
        let mut with_flows = 0;
        for name in FIXTURES {
            for (source_name, source) in &sources {
                let enrichment = enriched(name, source.as_ref()).await;
                assert_valid(
                    &validator,
                    &enrichment,
                    &format!("{name} from {source_name}"),
                );
                with_flows +=
                    usize::from(enrichment.pointer("/network/topContributors/0").is_some());
            }
        }
        assert!(
            with_flows >= 1,
            "the flows of the top-contributors file are carried"
        );
    }

    #[tokio::test]
    async fn the_example_top_contributors_file_validates_and_answers_the_metric_fixture() {
        let path = manifest_path(&["tests", "fixtures", "alarm-file", "top-contributors.json"]);
        let document: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_valid(&validator(ALARMS_FILE), &document, "top-contributors.json");
        let enrichment = enriched("metric-alarm.json", &alarm_file("top-contributors.json")).await;
        let network = &enrichment["network"];
        assert_eq!(network["monitorName"], json!("my-monitor"));
        assert_eq!(network["queryMetric"], json!("TIMEOUTS"));
        let values: Vec<i64> = network["topContributors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|flow| flow["value"].as_i64().unwrap())
            .collect();
        assert_eq!(
            values,
            [412, 305, 97, 23],
            "both categories' flows, worst first"
        );
    }

    #[tokio::test]
    async fn near_misses_are_refused() {
        let validator = validator(ENRICHMENT);
        let good = enriched("metric-alarm.json", &alarm_file("top-contributors.json")).await;
        let mut unknown_field = good.clone();
        unknown_field["network"]["topContributors"][0]["secret"] = json!("x");
        assert_refused(
            &validator,
            &unknown_field,
            "/network/topContributors/0",
            "secret",
        );
        let mut too_many = good.clone();
        let flow = too_many["network"]["topContributors"][0].clone();
        too_many["network"]["topContributors"] = json!(vec![flow; 51]);
        assert_refused(
            &validator,
            &too_many,
            "/network/topContributors",
            "more than 50",
        );
        let mut no_metric = good.clone();
        no_metric["network"]
            .as_object_mut()
            .unwrap()
            .remove("metric");
        assert_refused(&validator, &no_metric, "/network", "metric");
        let mut bad_category = good;
        bad_category["network"]["queries"][0]["destinationCategory"] = json!("MARS");
        assert_refused(
            &validator,
            &bad_category,
            "/network/queries/0/destinationCategory",
            "MARS",
        );
    }
}
