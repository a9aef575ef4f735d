//! The outbox sweeper Lambda, on a schedule: starts incidents recorded but never started.
//! Wiring only; the logic is `alarm_relay::outbox::Dispatcher::sweep`.

use alarm_relay::adapters::aws::{dispatcher, sdk};
use alarm_relay::config::IntakeConfig;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

// Lambda sends one invocation at a time: one thread, no worker pool to start (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = IntakeConfig::from_env()?;
    let aws = sdk::load().await;
    let dispatcher = dispatcher(&config, &aws);
    let (dispatcher, config) = (&dispatcher, &config);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        match dispatcher
            .sweep(config.sweep_grace, config.sweep_batch)
            .await
        {
            Ok(report) => Ok(serde_json::json!(report)),
            Err(error) => Err(Diagnostic {
                error_type: error.error_type().to_owned(),
                error_message: error.to_string(),
            }),
        }
    }))
    .await
}
