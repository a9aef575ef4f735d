//! The signer Lambda: the workflow's Deliver state. Wiring only; the logic is
//! `alarm_relay::signer::handle`.

use alarm_relay::adapters::SystemClock;
use alarm_relay::adapters::aws::{incident_store, sdk, signer_deliverer};
use alarm_relay::config::{RoutingConfig, SignerConfig};
use alarm_relay::signer;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

// Lambda sends one invocation at a time: one thread, no worker pool to start (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = SignerConfig::from_env()?;
    let routing = RoutingConfig::from_env()?;
    let aws = sdk::load().await;
    let deliverer = signer_deliverer(&config, &aws)?;
    let store = incident_store(&aws, &config.table_name);
    let (deliverer, routing, store) = (&deliverer, &routing, &store);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        signer::handle(event.payload, deliverer, routing, store, &SystemClock)
            .await
            .map_err(|error| Diagnostic {
                error_type: error.name.as_str().to_owned(),
                error_message: error.message,
            })
    }))
    .await
}
