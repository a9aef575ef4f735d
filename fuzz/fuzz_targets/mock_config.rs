//! Any bytes as the MockConfigFile of `alarm-relay workflow test`, through
//! [`MockConfig::parse`]: a `MockError` with a message, or a config whose test cases (the first
//! few of each state machine) run against `statemachine/incident.asl.json` to their end or to
//! a typed error (an unmocked state, an exhausted response, an interpreter error). Never a
//! panic.

#![no_main]

use alarm_relay::engine::mock::{self, MockConfig};
use asl::StateMachine;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::sync::LazyLock;

static INCIDENT: LazyLock<StateMachine> = LazyLock::new(|| {
    StateMachine::load(
        include_str!("../../statemachine/incident.asl.json"),
        &alarm_relay::engine::substitutions(),
    )
    .expect("the shipped definition loads")
});

/// Test cases run per state machine, and state machines per input.
const CASES: usize = 4;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match MockConfig::parse(text) {
        Ok(config) => config,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    // The names, from the document itself (MockConfig keeps them private).
    let document: Value = serde_json::from_str(text).expect("a parsed config is JSON");
    let Some(machines) = document.get("StateMachines").and_then(Value::as_object) else {
        return;
    };
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-24T10:00:05Z")
        .expect("a valid start time")
        .with_timezone(&Utc);
    let input = json!({"incidentId": "i-1", "event": {"detail": {"alarmName": "a"}}});
    for (machine, body) in machines.iter().take(CASES) {
        let Some(cases) = body.get("TestCases").and_then(Value::as_object) else {
            continue;
        };
        for name in cases.keys().take(CASES) {
            let Ok(case) = config.test_case(machine, name) else {
                continue;
            };
            match mock::run(&INCIDENT, &case, input.clone(), start) {
                Ok(report) => assert!(report.get("status").is_some()),
                Err(error) => assert!(!error.to_string().is_empty()),
            }
        }
    }
});
