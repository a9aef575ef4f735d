//! The recorder Lambda: the workflow's Correlate, ConfirmResolve and Record states and the
//! target of the Step Functions execution-status rule. Wiring only; the logic is
//! `alarm_relay::recorder::invoke`.

use alarm_relay::adapters::SystemClock;
use alarm_relay::adapters::aws::{incident_store, sdk};
use alarm_relay::config::{CorrelationConfig, RecorderConfig};
use alarm_relay::recorder;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

// Lambda sends one invocation at a time: one thread, no worker pool to start (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = RecorderConfig::from_env()?;
    let correlation = CorrelationConfig::from_env()?;
    let aws = sdk::load().await;
    let store = incident_store(&aws, &config.table_name);
    let (store, correlation) = (&store, &correlation);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        recorder::invoke(&event.payload, correlation, store, &SystemClock)
            .await
            .map_err(|error| Diagnostic {
                error_type: error.error_type().to_owned(),
                error_message: error.to_string(),
            })
    }))
    .await
}
