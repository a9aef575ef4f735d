//! Destinations end to end through a real `alarm-relay serve`: an API-key webhook gets
//! `Authorization: Bearer` and no signature; alarms go where their tag, else their account,
//! says, with their tagged priority and service, or nowhere when they opted out; a dry run
//! renders, signs and records what it would send, and the receivers see nothing.

use crate::episodes::{Serve, accepted, at, event, id_of, receiver, until_accepted};
use alarm_relay::receiver::{FaultPlan, Receiver, ReceiverConfig};
use alarm_relay::secret::ApiKey;
use alarm_relay::signing::WebhookSecret;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

const API_KEY: &str = "api-key-of-the-agent-space";

/// The log entries of `kind` in a `GET /incidents/{id}` answer.
fn entries(answer: &Value, kind: &str) -> Vec<Value> {
    answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["type"] == kind)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_webhook_gets_the_bearer_key_and_no_signature() {
    // GIVEN a receiver expecting an API key, and the API-key webhook's secret document
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: Some(ApiKey::new(API_KEY)),
            secret: WebhookSecret::new(String::new()),
            record_path: dir.path().join("received.jsonl"),
            faults: FaultPlan::parse("").unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap();
    let secret = dir.path().join("secret.json");
    let document = json!({ "WEBHOOK_URL": receiver.url(), "WEBHOOK_API_KEY": API_KEY });
    std::fs::write(&secret, document.to_string()).unwrap();
    let serve = Serve::start(dir.path(), &secret, &[]);

    // WHEN an alarm fires
    let alarm = event("NFM-Api-Timeouts", "api", "Timeouts", "ALARM", &at(0));
    serve.post(&alarm).await;

    // THEN the receiver accepted it on the key alone, and nothing records the key
    let id = id_of(&alarm);
    let answer = serve.settled(&id, "DELIVERED").await;
    let lines = until_accepted(dir.path(), 1).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["signatureValid"], true, "{:#}", lines[0]);
    assert!(
        lines[0].get("eventTimestamp").is_none(),
        "no signature headers"
    );
    assert_eq!(lines[0]["incidentId"], id);
    let attempt = &entries(&answer, "DeliveryAttempted")[0]["data"]["attempt"];
    assert_eq!(attempt["auth"], "api-key");
    assert!(attempt.get("eventTimestamp").is_none());
    assert!(!answer.to_string().contains(API_KEY));
    drop(serve);
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_records_what_it_would_send_and_sends_nothing() {
    // GIVEN serve in a dry run, before an HMAC receiver
    let dir = tempfile::tempdir().unwrap();
    let (receiver, secret) = receiver(dir.path()).await;
    let serve = Serve::start(dir.path(), &secret, &["--dry-run"]);

    // WHEN two alarms of one monitor fire (an investigation and its update, were it live)
    let first = event("NFM-Dry-Timeouts", "dry", "Timeouts", "ALARM", &at(0));
    let second = event(
        "NFM-Dry-Retransmissions",
        "dry",
        "Retransmissions",
        "ALARM",
        &at(5),
    );
    serve.post(&first).await;
    let primary = serve.settled(&id_of(&first), "DRY_RUN").await;
    serve.post(&second).await;
    let update = serve.settled(&id_of(&second), "DRY_RUN").await;

    // THEN each records what it would have sent, and the receiver saw nothing
    for (answer, action) in [(&primary, "created"), (&update, "updated")] {
        let attempt = &entries(answer, "DeliveryAttempted")[0]["data"]["attempt"];
        assert_eq!(attempt["outcome"], "dry-run", "{attempt:#}");
        let would = &attempt["dryRun"];
        assert_eq!(would["auth"], "hmac");
        assert_eq!(would["host"], "127.0.0.1");
        assert!(would["bodyBytes"].as_u64().unwrap() > 0);
        assert_eq!(would["headers"]["x-amzn-event-signature"], "[redacted]");
        let dry_run = entries(answer, "DryRun");
        assert_eq!(dry_run.len(), 1);
        assert_eq!(dry_run[0]["data"]["action"], action);
        assert_eq!(dry_run[0]["data"]["bodySha256"], would["bodySha256"]);
    }
    assert!(
        update["incident"]["correlation"]["primaryIncidentId"] == id_of(&first),
        "correlated as if live: {:#}",
        update["incident"]
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(accepted(dir.path()).is_empty(), "the receiver saw nothing");
    assert!(!primary.to_string().contains(crate::episodes::SECRET));
    drop(serve);
    receiver.stop().await;
}

/// An alarm of the alarm file: its name, account and tags.
fn alarm(name: &str, account: &str, tags: &[(&str, &str)]) -> Value {
    json!({
        "AlarmName": name,
        "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:{account}:alarm:{name}"),
        "StateValue": "ALARM",
        "Namespace": "AWS/NetworkFlowMonitor",
        "MetricName": "Timeouts",
        "Tags": tags.iter().map(|(key, value)| json!({"Key": key, "Value": value})).collect::<Vec<_>>(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_are_routed_by_tag_then_account_with_their_tagged_priority() {
    // GIVEN the default destination (HMAC) and `db-team` (an API-key webhook), and an alarm
    // file saying which alarm goes where
    let dir = tempfile::tempdir().unwrap();
    let (default, secret) = receiver(dir.path()).await;
    let team_dir = dir.path().join("db-team");
    std::fs::create_dir(&team_dir).unwrap();
    let team = Receiver::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ReceiverConfig {
            api_key: Some(ApiKey::new(API_KEY)),
            secret: WebhookSecret::new(String::new()),
            record_path: team_dir.join("received.jsonl"),
            faults: FaultPlan::parse("").unwrap(),
            tolerance: Duration::from_secs(300),
        },
    )
    .await
    .unwrap();
    let team_secret = dir.path().join("db-team.json");
    let document = json!({ "WEBHOOK_URL": team.url(), "WEBHOOK_API_KEY": API_KEY });
    std::fs::write(&team_secret, document.to_string()).unwrap();
    let alarms = json!({"MetricAlarms": [
        alarm("NFM-Tagged", "123456789012", &[
            ("alarm-relay:destination", "db-team"),
            ("alarm-relay:priority", "CRITICAL"),
            ("alarm-relay:service", "checkout-db"),
        ]),
        alarm("NFM-Off", "123456789012", &[("alarm-relay:enabled", "false")]),
        alarm("NFM-Member", "111122223333", &[("alarm-relay:priority", "urgent")]),
        alarm("NFM-Plain", "123456789012", &[]),
    ]});
    let alarms_path = dir.path().join("alarms.json");
    std::fs::write(&alarms_path, alarms.to_string()).unwrap();
    let destination = format!("db-team={}", team_secret.display());
    let serve = Serve::start(
        dir.path(),
        &secret,
        &[
            "--destination",
            &destination,
            "--account-destination",
            "111122223333=db-team",
            "--alarms",
            alarms_path.to_str().unwrap(),
        ],
    );

    // WHEN four alarms of four monitors fire
    let mut events = Vec::new();
    for (name, monitor) in [
        ("NFM-Tagged", "t"),
        ("NFM-Off", "o"),
        ("NFM-Member", "m"),
        ("NFM-Plain", "p"),
    ] {
        let mut event = event(name, monitor, "Timeouts", "ALARM", &at(0));
        if name == "NFM-Member" {
            event["account"] = json!("111122223333");
            event["resources"] =
                json!(["arn:aws:cloudwatch:us-east-1:111122223333:alarm:NFM-Member"]);
        }
        serve.post(&event).await;
        events.push(event);
    }

    // THEN the tagged alarm and the member account's went to db-team, on its key; the plain
    // one to the default, signed, as the seed; the opted-out one nowhere
    let tagged = serve.settled(&id_of(&events[0]), "DELIVERED").await;
    let skipped = serve.settled(&id_of(&events[1]), "SKIPPED").await;
    let member = serve.settled(&id_of(&events[2]), "DELIVERED").await;
    serve.settled(&id_of(&events[3]), "DELIVERED").await;
    let to_team = until_accepted(&team_dir, 2).await;
    let to_default = until_accepted(dir.path(), 1).await;
    let body = |lines: &[Value], id: String| -> Value {
        lines
            .iter()
            .find(|line| line["incidentId"] == id)
            .unwrap_or_else(|| panic!("{id} not received: {lines:#?}"))["body"]
            .clone()
    };
    let tagged_body = body(&to_team, id_of(&events[0]));
    assert_eq!(tagged_body["priority"], "CRITICAL");
    assert_eq!(tagged_body["service"], "checkout-db");
    let member_body = body(&to_team, id_of(&events[2]));
    assert_eq!(member_body["priority"], "HIGH", "an invalid tag falls back");
    assert_eq!(member_body["service"], "NFM-Member");
    let plain_body = body(&to_default, id_of(&events[3]));
    assert_eq!(
        (
            plain_body["priority"].as_str(),
            plain_body["service"].as_str()
        ),
        (Some("HIGH"), Some("NFM-Plain"))
    );
    assert!(
        to_team
            .iter()
            .chain(&to_default)
            .all(|line| line["signatureValid"] == true)
    );
    assert_eq!(
        to_team.len() + to_default.len(),
        3,
        "the opted-out alarm is sent nowhere"
    );

    let attempted = |answer: &Value| entries(answer, "DeliveryAttempted")[0]["data"].clone();
    assert_eq!(attempted(&tagged)["destination"], "db-team");
    assert_eq!(attempted(&tagged)["settings"]["routedBy"], "tag");
    let member_attempt = attempted(&member);
    assert_eq!(member_attempt["settings"]["routedBy"], "account");
    assert!(
        member_attempt["settings"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("urgent")
    );
    let decision = &entries(&skipped, "Correlated")[0]["data"];
    assert_eq!(
        (decision["decision"].as_str(), decision["action"].as_str()),
        (Some("skipped"), Some("none"))
    );
    drop(serve);
    default.stop().await;
    team.stop().await;
}

#[test]
fn an_unknown_destination_or_a_bad_alarm_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.json");
    std::fs::write(
        &secret,
        r#"{"WEBHOOK_URL":"http://127.0.0.1:9/webhook","WEBHOOK_SECRET":"s"}"#,
    )
    .unwrap();
    let alarms = dir.path().join("alarms.json");
    std::fs::write(
        &alarms,
        r#"{"MetricAlarms": [{"AlarmName": "a", "Tags": [{"Key": "k"}]}]}"#,
    )
    .unwrap();
    let bad_destination = dir.path().join("bad.json");
    std::fs::write(
        &bad_destination,
        r#"{"WEBHOOK_URL":"https://x.example","WEBHOOK_SECRET":"s","WEBHOOK_API_KEY":"k"}"#,
    )
    .unwrap();
    for (args, expected) in [
        (
            vec!["--alarms".to_owned(), alarms.display().to_string()],
            "MetricAlarms[0].Tags[0]",
        ),
        (
            vec![
                "--destination".to_owned(),
                format!("team={}", bad_destination.display()),
            ],
            "both WEBHOOK_SECRET and WEBHOOK_API_KEY",
        ),
        (
            vec!["--destination".to_owned(), "no spaces=x".to_owned()],
            "not a destination name",
        ),
        (
            vec!["--destination".to_owned(), "default=x".to_owned()],
            "is the --secret-file destination",
        ),
        (
            vec!["--account-destination".to_owned(), "12=team".to_owned()],
            "12-digit account id",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("relay.db"))
            .arg("--secret-file")
            .arg(&secret)
            .args(&args)
            .env_remove("ALARM_RELAY_SECRET_FILE")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("\"k\""), "{stderr}");
    }
}
