//! AWS adapters (the `aws` feature), used by the Lambda binaries.

mod cloudwatch;
mod dynamodb_store;
mod member_accounts;
mod network_flow_monitor;
pub mod sdk;
mod sdk_error;
mod secrets_manager;
mod step_functions;

pub use cloudwatch::CloudWatchAlarmSource;
pub use dynamodb_store::DynamoDbStore;
pub use member_accounts::MemberAccounts;
pub use network_flow_monitor::NetworkFlowMonitor;
pub use secrets_manager::SecretsManagerFetcher;
pub use step_functions::StepFunctionsStarter;

use crate::adapters::{HttpTransportConfig, ReqwestTransport, SystemClock};
use crate::config::{IntakeConfig, SignerConfig};
use crate::delivery::Deliverer;
use crate::destination::NamedDestinations;
use crate::outbox::Dispatcher;
use crate::ports::{Clock, SecretSource, TransportError};
use crate::secret::CachedSecretSource;
use aws_config::SdkConfig;
use std::sync::Arc;

/// The signer's [`Deliverer`] in AWS: Secrets Manager behind the TTL cache (the default
/// destination `SECRET_ARN`, any other `<DESTINATION_SECRET_PREFIX><NAME>`), HTTPS only.
pub fn signer_deliverer(
    config: &SignerConfig,
    aws: &SdkConfig,
) -> Result<Deliverer, TransportError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let client = aws_sdk_secretsmanager::Client::new(aws);
    let (ttl, prefix) = (config.secret_ttl, config.destination_secret_prefix.clone());
    let open = {
        let (client, clock) = (client.clone(), clock.clone());
        move |name: &str| -> Arc<dyn SecretSource> {
            let fetcher = SecretsManagerFetcher::new(client.clone(), format!("{prefix}{name}"));
            Arc::new(CachedSecretSource::new(fetcher, clock.clone(), ttl))
        }
    };
    let fetcher = SecretsManagerFetcher::new(client, config.secret_id.clone());
    let secrets: Arc<dyn SecretSource> =
        Arc::new(CachedSecretSource::new(fetcher, clock.clone(), ttl));
    let destinations = NamedDestinations::opening(secrets.clone(), Box::new(open));
    let transport = ReqwestTransport::new(HttpTransportConfig {
        connect_timeout: config.connect_timeout,
        timeout: config.timeout,
        allow_http_loopback: false,
    })?;
    Ok(Deliverer::new(secrets, Arc::new(transport), clock)
        .with_destinations(Arc::new(destinations))
        .with_mode(config.delivery_mode))
}

/// The incident table.
pub fn incident_store(aws: &SdkConfig, table: &str) -> DynamoDbStore {
    DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), table)
}

/// Intake's and the sweeper's [`Dispatcher`] in AWS: the DynamoDB table and Step Functions.
pub fn dispatcher(config: &IntakeConfig, aws: &SdkConfig) -> Dispatcher {
    let store = incident_store(aws, &config.table_name);
    let starter = StepFunctionsStarter::new(
        aws_sdk_sfn::Client::new(aws),
        config.state_machine_arn.clone(),
    );
    Dispatcher::new(Arc::new(store), Arc::new(starter), Arc::new(SystemClock))
}
