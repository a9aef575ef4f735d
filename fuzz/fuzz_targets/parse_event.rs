//! Any bytes: the parser either refuses them with a reason or yields an event whose body
//! renders as ASCII JSON that parses back. Never a panic.

#![no_main]

use alarm_relay::event::AlarmEvent;
use alarm_relay::payload::WebhookBody;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match AlarmEvent::parse(data) {
        Ok(event) => {
            let body = WebhookBody::render(&event);
            assert!(body.as_str().is_ascii());
            let reparsed: serde_json::Value =
                serde_json::from_slice(body.as_bytes()).expect("the rendered body is JSON");
            assert_eq!(reparsed["incidentId"], event.incident_id().as_str());
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
