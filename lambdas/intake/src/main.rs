//! The intake Lambda: EventBridge alarm events in, durable incident records out, workflow
//! started. Wiring only; the logic is `alarm_relay::intake::Intake`.

use alarm_relay::adapters::aws::{dispatcher, sdk};
use alarm_relay::config::{CorrelationConfig, IntakeConfig};
use alarm_relay::intake::Intake;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

// Lambda sends one invocation at a time: one thread, no worker pool to start (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = IntakeConfig::from_env()?;
    let aws = sdk::load().await;
    let correlation = CorrelationConfig::from_env()?;
    let intake = Intake::new(dispatcher(&config, &aws), config.ttl)
        .starting_recoveries(correlation.enabled());
    let intake = &intake;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        intake
            .handle_value(&event.payload)
            .await
            .map_err(|error| Diagnostic {
                error_type: error.error_type().to_owned(),
                error_message: error.to_string(),
            })
    }))
    .await
}
