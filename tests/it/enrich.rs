//! Enrichment against moto's CloudWatch through the real adapter (`aws-sdk-cloudwatch` 1.99.0,
//! awsQuery): a Network Flow Monitor metric alarm with datapoints and tags, the states of a
//! composite rule's alarms, a deleted alarm, an unreachable endpoint, and the Enrich handler
//! recording into a SQLite store.
//!
//! moto 5.2.5 cannot create composite alarms (PutCompositeAlarm is not implemented), so the
//! composite alarm itself is "not found" here; its rule comes from the event and the states of
//! the alarms it names come from moto. The conversion of a described composite alarm is
//! unit-tested in the adapter.

use crate::moto::Moto;
use alarm_relay::adapters::SystemClock;
use alarm_relay::adapters::aws::{CloudWatchAlarmSource, sdk};
use alarm_relay::enrich::network::NetworkSettings;
use alarm_relay::enrich::{self, handle};
use alarm_relay::event::AlarmEvent;
use alarm_relay::incident::{EventType, IncidentStatus};
use alarm_relay::ports::{EnrichError, IncidentStore};
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricDatum, StandardUnit, StateValue, Statistic, Tag,
};
use chrono::Utc;
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::sync::Arc;

const METRIC: &str = include_str!("../fixtures/metric-alarm.json");
const COMPOSITE: &str = include_str!("../fixtures/composite-alarm.json");
const ALARM: &str = "NFM-Alarm-EKS-DB";
const MONITOR: &str = "arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/my-monitor";

/// A CloudWatch client for moto at `endpoint`.
pub(crate) fn client(endpoint: &str) -> Client {
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(sdk::https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .build();
    Client::from_conf(config)
}

fn monitor_dimension() -> Dimension {
    Dimension::builder()
        .name("MonitorId")
        .value(MONITOR)
        .build()
}

/// The fixture's alarm: Timeouts of one monitor, Sum over 5 minutes above 50, tagged.
pub(crate) async fn put_nfm_alarm(client: &Client) {
    client
        .put_metric_alarm()
        .alarm_name(ALARM)
        .namespace("AWS/NetworkFlowMonitor")
        .metric_name("Timeouts")
        .dimensions(monitor_dimension())
        .statistic(Statistic::Sum)
        .period(300)
        .evaluation_periods(1)
        .datapoints_to_alarm(1)
        .threshold(50.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .treat_missing_data("missing")
        .tags(Tag::builder().key("team").value("network").build())
        .send()
        .await
        .expect("moto creates the alarm");
}

/// One value per 5-minute period, newest first: at the start of the current period, then one
/// period earlier each, so each lands in its own period and inside the enrichment's window
/// (which starts on a period boundary) whatever the time of the run.
async fn put_datapoints(client: &Client, values: &[f64]) {
    let now = Utc::now().timestamp().div_euclid(300) * 300 + 10;
    for (index, value) in values.iter().enumerate() {
        client
            .put_metric_data()
            .namespace("AWS/NetworkFlowMonitor")
            .metric_data(
                MetricDatum::builder()
                    .metric_name("Timeouts")
                    .dimensions(monitor_dimension())
                    .timestamp(AwsDateTime::from_secs(now - 10 - 300 * index as i64))
                    .value(*value)
                    .unit(StandardUnit::Count)
                    .build(),
            )
            .send()
            .await
            .expect("moto stores the datapoint");
    }
}

fn event(text: &str) -> AlarmEvent {
    AlarmEvent::parse(text.as_bytes()).expect("a fixture parses")
}

fn values(enrichment: &Value) -> Vec<f64> {
    enrichment["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|point| point["value"].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn an_nfm_metric_alarm_gets_settings_datapoints_tags_and_monitor() {
    let moto = Moto::start();
    let client = client(moto.endpoint());
    put_nfm_alarm(&client).await;
    put_datapoints(&client, &[87.0, 3.0, 12.0]).await;
    let source = CloudWatchAlarmSource::new(client);

    let enrichment = enrich::enrich(&event(METRIC), &source, Utc::now())
        .await
        .expect("enriched");

    let alarm = &enrichment["alarm"];
    assert_eq!(alarm["type"], "MetricAlarm");
    assert_eq!(alarm["name"], ALARM);
    assert_eq!(alarm["threshold"].as_f64(), Some(50.0));
    assert_eq!(alarm["comparisonOperator"], "GreaterThanThreshold");
    assert_eq!(alarm["evaluationPeriods"], 1);
    assert_eq!(alarm["datapointsToAlarm"], 1);
    assert_eq!(alarm["treatMissingData"], "missing");
    assert_eq!(alarm["statistic"], "Sum");
    assert_eq!(alarm["period"], 300);
    assert_eq!(alarm["actionsEnabled"], true);
    assert_eq!(
        enrichment["metric"],
        json!({"namespace": "AWS/NetworkFlowMonitor", "name": "Timeouts",
               "dimensions": {"MonitorId": MONITOR}, "stat": "Sum", "period": 300, "id": "m1"})
    );
    assert_eq!(values(&enrichment), [87.0, 3.0, 12.0], "newest first");
    assert_eq!(enrichment["tags"], json!({"team": "network"}));
    assert_eq!(enrichment["networkFlowMonitor"]["monitorArn"], MONITOR);
    assert_eq!(enrichment["notes"], json!([]), "{enrichment:#}");
}

#[tokio::test]
async fn a_composite_alarm_gets_the_states_of_the_alarms_its_rule_names() {
    let moto = Moto::start();
    let client = client(moto.endpoint());
    put_nfm_alarm(&client).await;
    client
        .set_alarm_state()
        .alarm_name(ALARM)
        .state_value(StateValue::Alarm)
        .state_reason("test")
        .send()
        .await
        .expect("moto sets the state");
    let source = CloudWatchAlarmSource::new(client);

    let enrichment = enrich::enrich(&event(COMPOSITE), &source, Utc::now())
        .await
        .expect("enriched");

    assert_eq!(enrichment["kind"], "composite");
    assert_eq!(enrichment["metric"], Value::Null);
    assert_eq!(enrichment["datapoints"], json!([]));
    assert_eq!(
        enrichment["composite"],
        json!({
            "alarmRule": "ALARM(\"NFM-Alarm-EKS-DB\") OR ALARM(\"NFM-Alarm-EKS-Cache\")",
            "alarms": [
                {"name": "NFM-Alarm-EKS-DB", "state": "ALARM"},
                {"name": "NFM-Alarm-EKS-Cache", "state": null},
            ],
        })
    );
    // moto holds no composite alarm (see `moto_cannot_create_composite_alarms`).
    assert_eq!(enrichment["alarm"], Value::Null);
}

/// Documents the emulator's gap; when this fails, moto learned PutCompositeAlarm and the test
/// above can describe the composite alarm itself.
#[tokio::test]
async fn moto_cannot_create_composite_alarms() {
    let moto = Moto::start();
    let result = client(moto.endpoint())
        .put_composite_alarm()
        .alarm_name("NetworkPathDegraded")
        .alarm_rule(r#"ALARM("NFM-Alarm-EKS-DB")"#)
        .send()
        .await;
    assert!(result.is_err(), "moto now implements PutCompositeAlarm");
}

#[tokio::test]
async fn a_deleted_alarm_still_enriches_with_alarm_null() {
    let moto = Moto::start();
    let client = client(moto.endpoint());
    put_nfm_alarm(&client).await;
    client
        .delete_alarms()
        .alarm_names(ALARM)
        .send()
        .await
        .expect("moto deletes the alarm");
    let source = CloudWatchAlarmSource::new(client);

    let enrichment = enrich::enrich(&event(METRIC), &source, Utc::now())
        .await
        .expect("a missing alarm is no error");

    assert_eq!(enrichment["alarm"], Value::Null);
    assert_eq!(enrichment["tags"], Value::Null);
    assert_eq!(enrichment["datapoints"], json!([]));
    assert_eq!(enrichment["metric"]["name"], "Timeouts");
    let notes = enrichment["notes"].to_string();
    assert!(
        notes.contains("not found") && notes.contains("no datapoints"),
        "{notes}"
    );
}

#[tokio::test]
async fn an_unreachable_cloudwatch_is_throttled() {
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let source = CloudWatchAlarmSource::new(client(&format!("http://127.0.0.1:{port}")));
    let error = enrich::enrich(&event(METRIC), &source, Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(error, EnrichError::Throttled(_)), "{error}");
    assert_eq!(error.error_type(), "Enrichment.Throttled");
}

#[tokio::test]
async fn the_handler_moves_a_started_incident_to_enriched() {
    let moto = Moto::start();
    let client = client(moto.endpoint());
    put_nfm_alarm(&client).await;
    put_datapoints(&client, &[87.0]).await;
    let source = CloudWatchAlarmSource::new(client);

    let store: Arc<dyn IncidentStore> =
        Arc::new(alarm_relay::adapters::SqliteStore::open_in_memory().unwrap());
    let dispatcher = alarm_relay::outbox::Dispatcher::new(
        store.clone(),
        Arc::new(alarm_relay::testing::FakeStarter::default()),
        Arc::new(SystemClock),
    );
    let outcome = alarm_relay::intake::Intake::new(dispatcher, None)
        .handle(METRIC.as_bytes())
        .await
        .unwrap();
    let id = outcome.incident().incident_id.clone();
    assert_eq!(outcome.incident().status, IncidentStatus::Started);
    let raw: Value = serde_json::from_str(METRIC).unwrap();
    let input = json!({ "incidentId": id, "event": raw });

    let enrichment = handle(
        input,
        &source,
        &NetworkSettings::default(),
        store.as_ref(),
        &SystemClock,
    )
    .await
    .expect("enriched");

    assert_eq!(enrichment["alarm"]["threshold"].as_f64(), Some(50.0));
    assert_eq!(values(&enrichment), [87.0]);
    let incident = store.get(&id).await.unwrap().unwrap();
    assert_eq!(incident.status, IncidentStatus::Enriched);
    let events = store.events(&id).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.kind, EventType::Enriched);
    assert_eq!(last.data, enrichment);
}
