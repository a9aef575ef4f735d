//! AWS adapters (the `aws` feature), used by the Lambda binaries.

mod secrets_manager;

pub use secrets_manager::SecretsManagerFetcher;

use crate::adapters::{HttpTransportConfig, ReqwestTransport, SystemClock};
use crate::config::SignerConfig;
use crate::delivery::Deliverer;
use crate::ports::TransportError;
use crate::secret::CachedSecretSource;
use aws_config::SdkConfig;
use std::sync::Arc;

/// The signer's [`Deliverer`] in AWS: Secrets Manager behind the TTL cache, HTTPS only.
pub fn signer_deliverer(
    config: &SignerConfig,
    aws: &SdkConfig,
) -> Result<Deliverer, TransportError> {
    let clock = Arc::new(SystemClock);
    let fetcher = SecretsManagerFetcher::new(
        aws_sdk_secretsmanager::Client::new(aws),
        config.secret_id.clone(),
    );
    let secrets = CachedSecretSource::new(fetcher, clock.clone(), config.secret_ttl);
    let transport = ReqwestTransport::new(HttpTransportConfig {
        connect_timeout: config.connect_timeout,
        timeout: config.timeout,
        allow_http_loopback: false,
    })?;
    Ok(Deliverer::new(
        Arc::new(secrets),
        Arc::new(transport),
        clock,
    ))
}
