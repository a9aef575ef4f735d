//! Network Flow Monitor's top-contributors queries (`StartQueryMonitorTopContributors`,
//! `GetQueryStatusMonitorTopContributors`, `GetQueryResultsMonitorTopContributors`), over the
//! REST-JSON API. Errors are classified here so no code above sees an `SdkError`:
//! throttling, quotas, 5xx, timeouts and connection failures are
//! [`FlowQueryError::Throttled`], a missing monitor or query [`FlowQueryError::NotFound`],
//! anything else [`FlowQueryError::Failed`].

use super::sdk_error;
use crate::ports::{
    ContributorsPage, FlowContributor, FlowQueryError, KubernetesMetadata, QueryStatus,
    TopContributors, TopContributorsQuery, TraversedComponent,
};
use async_trait::async_trait;
use aws_sdk_networkflowmonitor::Client;
use aws_sdk_networkflowmonitor::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_networkflowmonitor::primitives::DateTime as AwsDateTime;
use aws_sdk_networkflowmonitor::types::{
    DestinationCategory, MonitorMetric, MonitorTopContributorsRow,
};

/// Error codes that mean "slow down" or "try again later".
const RETRYABLE_CODES: [&str; 3] = [
    "ThrottlingException",
    "ServiceQuotaExceededException",
    "InternalServerException",
];
const NOT_FOUND_CODE: &str = "ResourceNotFoundException";

/// [`TopContributors`] over the Network Flow Monitor API.
#[derive(Debug, Clone)]
pub struct NetworkFlowMonitor {
    client: Client,
}

impl NetworkFlowMonitor {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A client from the shared AWS configuration (what the Lambda builds once).
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }
}

#[async_trait]
impl TopContributors for NetworkFlowMonitor {
    async fn start_query(&self, query: &TopContributorsQuery) -> Result<String, FlowQueryError> {
        let output = self
            .client
            .start_query_monitor_top_contributors()
            .monitor_name(&query.monitor_name)
            .metric_name(MonitorMetric::from(query.metric.as_str()))
            .destination_category(DestinationCategory::from(
                query.destination_category.as_str(),
            ))
            .start_time(AwsDateTime::from_millis(query.start.timestamp_millis()))
            .end_time(AwsDateTime::from_millis(query.end.timestamp_millis()))
            .limit(i32::try_from(query.limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|error| classify("StartQueryMonitorTopContributors", &error))?;
        match output.query_id() {
            "" => Err(FlowQueryError::Failed(
                "StartQueryMonitorTopContributors: the answer has no queryId".into(),
            )),
            query_id => Ok(query_id.to_owned()),
        }
    }

    async fn query_status(
        &self,
        monitor_name: &str,
        query_id: &str,
    ) -> Result<QueryStatus, FlowQueryError> {
        let output = self
            .client
            .get_query_status_monitor_top_contributors()
            .monitor_name(monitor_name)
            .query_id(query_id)
            .send()
            .await
            .map_err(|error| classify("GetQueryStatusMonitorTopContributors", &error))?;
        Ok(match output.status().as_str() {
            "QUEUED" => QueryStatus::Queued,
            "RUNNING" => QueryStatus::Running,
            "SUCCEEDED" => QueryStatus::Succeeded,
            "FAILED" => QueryStatus::Failed,
            "CANCELED" => QueryStatus::Canceled,
            other => QueryStatus::Other(other.to_owned()),
        })
    }

    async fn query_results(
        &self,
        monitor_name: &str,
        query_id: &str,
        max_results: u32,
        next_token: Option<&str>,
    ) -> Result<ContributorsPage, FlowQueryError> {
        let output = self
            .client
            .get_query_results_monitor_top_contributors()
            .monitor_name(monitor_name)
            .query_id(query_id)
            .max_results(i32::try_from(max_results).unwrap_or(i32::MAX))
            .set_next_token(next_token.map(str::to_owned))
            .send()
            .await
            .map_err(|error| classify("GetQueryResultsMonitorTopContributors", &error))?;
        Ok(ContributorsPage {
            unit: output.unit().map(|unit| unit.as_str().to_owned()),
            flows: output.top_contributors().iter().map(flow).collect(),
            next_token: output
                .next_token()
                .filter(|token| !token.is_empty())
                .map(str::to_owned),
        })
    }
}

fn flow(row: &MonitorTopContributorsRow) -> FlowContributor {
    let text = |value: Option<&str>| value.map(str::to_owned);
    FlowContributor {
        local_ip: text(row.local_ip()),
        snat_ip: text(row.snat_ip()),
        local_instance_id: text(row.local_instance_id()),
        local_instance_arn: text(row.local_instance_arn()),
        local_vpc_id: text(row.local_vpc_id()),
        local_vpc_arn: text(row.local_vpc_arn()),
        local_region: text(row.local_region()),
        local_az: text(row.local_az()),
        local_subnet_id: text(row.local_subnet_id()),
        local_subnet_arn: text(row.local_subnet_arn()),
        target_port: row.target_port(),
        destination_category: row
            .destination_category()
            .map(|category| category.as_str().to_owned()),
        remote_ip: text(row.remote_ip()),
        dnat_ip: text(row.dnat_ip()),
        remote_instance_id: text(row.remote_instance_id()),
        remote_instance_arn: text(row.remote_instance_arn()),
        remote_vpc_id: text(row.remote_vpc_id()),
        remote_vpc_arn: text(row.remote_vpc_arn()),
        remote_region: text(row.remote_region()),
        remote_az: text(row.remote_az()),
        remote_subnet_id: text(row.remote_subnet_id()),
        remote_subnet_arn: text(row.remote_subnet_arn()),
        value: row.value(),
        traversed_constructs: row
            .traversed_constructs()
            .iter()
            .map(|component| TraversedComponent {
                component_id: text(component.component_id()),
                component_type: text(component.component_type()),
                component_arn: text(component.component_arn()),
                service_name: text(component.service_name()),
            })
            .collect(),
        kubernetes_metadata: row
            .kubernetes_metadata()
            .map(|kubernetes| KubernetesMetadata {
                local_service_name: text(kubernetes.local_service_name()),
                local_pod_name: text(kubernetes.local_pod_name()),
                local_pod_namespace: text(kubernetes.local_pod_namespace()),
                remote_service_name: text(kubernetes.remote_service_name()),
                remote_pod_name: text(kubernetes.remote_pod_name()),
                remote_pod_namespace: text(kubernetes.remote_pod_namespace()),
            }),
    }
}

/// An SDK failure as the enrichment reports it: the operation, the error code and a bounded
/// message, never a request or response body.
fn classify<E: ProvideErrorMetadata>(operation: &str, error: &SdkError<E>) -> FlowQueryError {
    let status = sdk_error::status(error);
    let detail = format!("{operation}: {}", sdk_error::describe(error));
    let code = error.code().unwrap_or_default();
    if code == NOT_FOUND_CODE {
        FlowQueryError::NotFound(detail)
    } else if RETRYABLE_CODES.contains(&code)
        || status.is_some_and(|status| status == 429 || status >= 500)
        || matches!(
            error,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
        )
    {
        FlowQueryError::Throttled(detail)
    } else {
        FlowQueryError::Failed(detail)
    }
}
