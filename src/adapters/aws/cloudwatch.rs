//! What enrichment reads from CloudWatch: DescribeAlarms (metric and composite alarms),
//! GetMetricData and ListTagsForResource. Errors are classified here so no code above sees an
//! `SdkError`: throttling, limits, 5xx, timeouts and connection failures are
//! [`EnrichError::Throttled`]; anything else is [`EnrichError::Failed`]. A missing alarm is
//! `None`, not an error.
//!
//! `aws-sdk-cloudwatch` is pinned to 1.99.0, the last release speaking the awsQuery protocol
//! (later ones speak Smithy RPC v2 CBOR, which moto cannot answer).

use super::{NetworkFlowMonitor, sdk_error};
use crate::event::StateValue;
use crate::incident::timestamp;
use crate::ports::{
    AlarmDefinition, AlarmSource, CompositeAlarmDefinition, Datapoint, EnrichError,
    MetricAlarmDefinition, MetricQuery, TopContributors,
};
use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{
    AlarmType, CompositeAlarm, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, ScanBy,
    StandardUnit,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The id of the one query GetMetricData is sent.
const QUERY_ID: &str = "m1";
/// DescribeAlarms takes at most 100 names per call.
const NAMES_PER_CALL: usize = 100;
/// GetMetricData pages read at most (enrichment asks for a few dozen datapoints).
const MAX_PAGES: usize = 5;
/// Error codes that mean "slow down" or "try again later".
const RETRYABLE_CODES: [&str; 12] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceeded",
    "LimitExceededException",
    "LimitExceededFault",
    "ServiceUnavailable",
    "InternalServiceError",
    "InternalServiceFault",
];
/// Error codes that mean the resource does not exist.
const NOT_FOUND_CODES: [&str; 2] = ["ResourceNotFound", "ResourceNotFoundException"];

/// [`AlarmSource`] over the CloudWatch API, with Network Flow Monitor of the same account and
/// region for top contributors.
#[derive(Debug, Clone)]
pub struct CloudWatchAlarmSource {
    client: Client,
    flows: Option<NetworkFlowMonitor>,
}

impl CloudWatchAlarmSource {
    /// CloudWatch only: enrichment notes that no monitor was asked for top contributors.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            flows: None,
        }
    }

    /// Asks `flows` for the top contributors of Network Flow Monitor alarms.
    pub fn with_flows(self, flows: NetworkFlowMonitor) -> Self {
        Self {
            flows: Some(flows),
            ..self
        }
    }

    /// Both clients from the shared AWS configuration (what the Lambda builds once).
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config)).with_flows(NetworkFlowMonitor::from_sdk_config(config))
    }

    /// DescribeAlarms for `names` (at most [`NAMES_PER_CALL`]), both alarm types, every page.
    async fn describe(
        &self,
        names: &[String],
    ) -> Result<(Vec<MetricAlarm>, Vec<CompositeAlarm>), EnrichError> {
        let mut metric = Vec::new();
        let mut composite = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let output = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .max_records(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|error| classify("DescribeAlarms", &error))?;
            metric.extend(output.metric_alarms().iter().cloned());
            composite.extend(output.composite_alarms().iter().cloned());
            match output.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok((metric, composite)),
            }
        }
    }
}

#[async_trait]
impl AlarmSource for CloudWatchAlarmSource {
    async fn describe_alarm(&self, name: &str) -> Result<Option<AlarmDefinition>, EnrichError> {
        let (metric, composite) = self.describe(&[name.to_owned()]).await?;
        if let Some(alarm) = metric.iter().find(|a| a.alarm_name() == Some(name)) {
            return Ok(Some(AlarmDefinition::Metric(metric_definition(alarm))));
        }
        Ok(composite
            .iter()
            .find(|a| a.alarm_name() == Some(name))
            .map(|alarm| AlarmDefinition::Composite(composite_definition(alarm))))
    }

    async fn metric_datapoints(
        &self,
        query: &MetricQuery,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Datapoint>, EnrichError> {
        let mut points = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let output = self
                .client
                .get_metric_data()
                .metric_data_queries(data_query(query))
                .start_time(AwsDateTime::from_secs(start.timestamp()))
                .end_time(AwsDateTime::from_secs(end.timestamp()))
                .scan_by(ScanBy::TimestampDescending)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|error| classify("GetMetricData", &error))?;
            for result in output.metric_data_results() {
                if result.id().is_some_and(|id| id != QUERY_ID) {
                    continue;
                }
                points.extend(result.timestamps().iter().zip(result.values()).filter_map(
                    |(at, value)| {
                        Some(Datapoint {
                            timestamp: to_chrono(at)?,
                            value: *value,
                        })
                    },
                ));
            }
            match output.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(points)
    }

    async fn alarm_tags(&self, arn: &str) -> Result<Option<BTreeMap<String, String>>, EnrichError> {
        match self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
        {
            Ok(output) => Ok(Some(
                output
                    .tags()
                    .iter()
                    .filter_map(|tag| Some((tag.key()?.to_owned(), tag.value()?.to_owned())))
                    .collect(),
            )),
            Err(error)
                if error
                    .code()
                    .is_some_and(|code| NOT_FOUND_CODES.contains(&code)) =>
            {
                Ok(None)
            }
            Err(error) => Err(classify("ListTagsForResource", &error)),
        }
    }

    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<BTreeMap<String, StateValue>, EnrichError> {
        let mut states = BTreeMap::new();
        for chunk in names.chunks(NAMES_PER_CALL) {
            let (metric, composite) = self.describe(chunk).await?;
            let found = metric
                .iter()
                .map(|a| (a.alarm_name(), a.state_value()))
                .chain(composite.iter().map(|a| (a.alarm_name(), a.state_value())));
            for (name, state) in found {
                if let (Some(name), Some(state)) = (name, state.and_then(state_value)) {
                    states.insert(name.to_owned(), state);
                }
            }
        }
        Ok(states)
    }

    fn top_contributors(&self) -> Option<&dyn TopContributors> {
        self.flows
            .as_ref()
            .map(|flows| flows as &dyn TopContributors)
    }
}

/// The GetMetricData query for one metric.
fn data_query(query: &MetricQuery) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace(&query.namespace)
        .metric_name(&query.name)
        .set_dimensions(Some(
            query
                .dimensions
                .iter()
                .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                .collect(),
        ))
        .build();
    let stat = MetricStat::builder()
        .metric(metric)
        .period(i32::try_from(query.period).unwrap_or(i32::MAX))
        .stat(&query.stat)
        .set_unit(query.unit.as_deref().map(StandardUnit::from))
        .build();
    MetricDataQuery::builder()
        .id(QUERY_ID)
        .metric_stat(stat)
        .return_data(true)
        .build()
}

/// A metric alarm in domain terms.
fn metric_definition(alarm: &MetricAlarm) -> MetricAlarmDefinition {
    MetricAlarmDefinition {
        name: alarm.alarm_name().unwrap_or_default().to_owned(),
        arn: alarm.alarm_arn().map(str::to_owned),
        state: alarm.state_value().and_then(state_value),
        state_updated_at: alarm
            .state_updated_timestamp()
            .and_then(to_chrono)
            .map(timestamp),
        threshold: alarm.threshold(),
        threshold_metric_id: alarm.threshold_metric_id().map(str::to_owned),
        comparison_operator: alarm.comparison_operator().map(|op| op.as_str().to_owned()),
        evaluation_periods: alarm.evaluation_periods().and_then(non_negative),
        datapoints_to_alarm: alarm.datapoints_to_alarm().and_then(non_negative),
        treat_missing_data: alarm.treat_missing_data().map(str::to_owned),
        unit: alarm.unit().map(|unit| unit.as_str().to_owned()),
        statistic: alarm.statistic().map(|stat| stat.as_str().to_owned()),
        extended_statistic: alarm.extended_statistic().map(str::to_owned),
        period: alarm.period().and_then(non_negative),
        actions_enabled: alarm.actions_enabled(),
    }
}

/// A composite alarm in domain terms.
fn composite_definition(alarm: &CompositeAlarm) -> CompositeAlarmDefinition {
    CompositeAlarmDefinition {
        name: alarm.alarm_name().unwrap_or_default().to_owned(),
        arn: alarm.alarm_arn().map(str::to_owned),
        state: alarm.state_value().and_then(state_value),
        state_updated_at: alarm
            .state_updated_timestamp()
            .and_then(to_chrono)
            .map(timestamp),
        alarm_rule: alarm.alarm_rule().map(str::to_owned),
        actions_enabled: alarm.actions_enabled(),
        actions_suppressor: alarm.actions_suppressor().map(str::to_owned),
    }
}

fn state_value(state: &aws_sdk_cloudwatch::types::StateValue) -> Option<StateValue> {
    match state.as_str() {
        "ALARM" => Some(StateValue::Alarm),
        "OK" => Some(StateValue::Ok),
        "INSUFFICIENT_DATA" => Some(StateValue::InsufficientData),
        _ => None,
    }
}

fn non_negative(value: i32) -> Option<u32> {
    u32::try_from(value).ok()
}

fn to_chrono(at: &AwsDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.secs(), at.subsec_nanos())
}

/// Sorts an SDK failure into retryable or not; the message names the call, the code and the
/// start of AWS's message.
fn classify<E: ProvideErrorMetadata>(operation: &str, error: &SdkError<E>) -> EnrichError {
    let code = error.code();
    let status = sdk_error::status(error);
    let message = format!("{operation}: {}", sdk_error::describe(error));
    let retryable = match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ConstructionFailure(_) => false,
        _ => {
            code.is_some_and(|code| RETRYABLE_CODES.contains(&code))
                || status.is_some_and(|status| status == 429 || status >= 500)
        }
    };
    if retryable {
        EnrichError::Throttled(message)
    } else {
        EnrichError::Failed(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};

    #[test]
    fn a_metric_alarm_keeps_its_evaluation_settings() {
        let alarm = MetricAlarm::builder()
            .alarm_name("NFM-Alarm-EKS-DB")
            .alarm_arn("arn:aws:cloudwatch:us-east-1:1:alarm:NFM-Alarm-EKS-DB")
            .state_value(aws_sdk_cloudwatch::types::StateValue::InsufficientData)
            .state_updated_timestamp(AwsDateTime::from_secs(1_795_514_400))
            .threshold(50.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .evaluation_periods(3)
            .datapoints_to_alarm(2)
            .treat_missing_data("breaching")
            .statistic(Statistic::Sum)
            .period(300)
            .unit(StandardUnit::Count)
            .actions_enabled(false)
            .build();
        let definition = metric_definition(&alarm);
        assert_eq!(definition.state, Some(StateValue::InsufficientData));
        assert_eq!(
            definition.state_updated_at.as_deref(),
            Some("2026-11-24T10:00:00.000Z")
        );
        assert_eq!(
            definition.comparison_operator.as_deref(),
            Some("GreaterThanThreshold")
        );
        assert_eq!(
            (
                definition.evaluation_periods,
                definition.datapoints_to_alarm,
                definition.period
            ),
            (Some(3), Some(2), Some(300))
        );
        assert_eq!(definition.statistic.as_deref(), Some("Sum"));
        assert_eq!(definition.unit.as_deref(), Some("Count"));
        assert_eq!(definition.actions_enabled, Some(false));
    }

    /// moto cannot create composite alarms, so their conversion is checked here.
    #[test]
    fn a_composite_alarm_keeps_its_rule_and_state() {
        let alarm = CompositeAlarm::builder()
            .alarm_name("NetworkPathDegraded")
            .alarm_rule(r#"ALARM("NFM-Alarm-EKS-DB") OR ALARM("NFM-Alarm-EKS-Cache")"#)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .actions_suppressor("MaintenanceWindow")
            .build();
        let definition = composite_definition(&alarm);
        assert_eq!(definition.name, "NetworkPathDegraded");
        assert_eq!(definition.state, Some(StateValue::Alarm));
        assert!(
            definition
                .alarm_rule
                .unwrap()
                .contains("NFM-Alarm-EKS-Cache")
        );
        assert_eq!(
            definition.actions_suppressor.as_deref(),
            Some("MaintenanceWindow")
        );
    }

    #[test]
    fn the_query_carries_the_metric_stat_period_and_unit() {
        let query = data_query(&MetricQuery {
            namespace: "AWS/NetworkFlowMonitor".into(),
            name: "Timeouts".into(),
            dimensions: vec![("MonitorId".into(), "m".into())],
            stat: "p99".into(),
            period: 60,
            unit: Some("Count".into()),
        });
        let stat = query.metric_stat().unwrap();
        assert_eq!(query.id(), Some(QUERY_ID));
        assert_eq!(stat.stat(), Some("p99"));
        assert_eq!(stat.period(), Some(60));
        assert_eq!(stat.unit(), Some(&StandardUnit::Count));
        let metric = stat.metric().unwrap();
        assert_eq!(metric.dimensions()[0].value(), Some("m"));
    }

    /// One row per case: (code, HTTP status) → retryable?
    #[test]
    fn service_errors_are_throttled_only_when_retrying_can_help() {
        use aws_sdk_cloudwatch::config::http::HttpResponse;
        use aws_sdk_cloudwatch::error::ErrorMetadata;
        use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsError;
        let rows = [
            (Some("Throttling"), 400, true),
            (Some("LimitExceeded"), 400, true),
            (Some("LimitExceededException"), 400, true),
            (Some("InternalServiceError"), 500, true),
            (None, 503, true),
            (None, 429, true),
            (Some("AccessDenied"), 403, false),
            (Some("InvalidParameterValue"), 400, false),
            (None, 404, false),
        ];
        for (code, status, retryable) in rows {
            let mut metadata = ErrorMetadata::builder().message("why");
            if let Some(code) = code {
                metadata = metadata.code(code);
            }
            let error = SdkError::service_error(
                DescribeAlarmsError::generic(metadata.build()),
                HttpResponse::new(status.try_into().unwrap(), "".into()),
            );
            let classified = classify("DescribeAlarms", &error);
            assert_eq!(
                matches!(classified, EnrichError::Throttled(_)),
                retryable,
                "{code:?} {status}: {classified}"
            );
            assert!(classified.to_string().starts_with("enrichment "));
            assert!(classified.to_string().contains("DescribeAlarms: "));
        }
        let timeout: SdkError<DescribeAlarmsError> = SdkError::timeout_error("slow");
        assert!(matches!(
            classify("DescribeAlarms", &timeout),
            EnrichError::Throttled(ref m) if m.contains("timed out")
        ));
    }

    #[test]
    fn unknown_states_and_negative_counts_are_left_out() {
        assert_eq!(
            state_value(&aws_sdk_cloudwatch::types::StateValue::from("NEW")),
            None
        );
        assert_eq!(non_negative(-1), None);
    }
}
