//! The enricher Lambda: the workflow's Enrich state. Wiring only; the logic is
//! `alarm_relay::enrich::handle_in`.

use alarm_relay::adapters::SystemClock;
use alarm_relay::adapters::aws::{MemberAccounts, incident_store, sdk};
use alarm_relay::config::{ENRICH_MARGIN, EnricherConfig};
use alarm_relay::enrich;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use std::time::{Duration, SystemTime};

// Lambda sends one invocation at a time: one thread, no worker pool to start (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = EnricherConfig::from_env()?;
    let aws = sdk::load().await;
    let source = MemberAccounts::new(
        &aws,
        config.relay_account_id.clone(),
        config.member_read_role_name.clone(),
    );
    let store = incident_store(&aws, &config.table_name);
    let (source, store, config) = (&source, &store, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let left = event
            .context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .saturating_sub(ENRICH_MARGIN);
        let network = config.network.clone().within(left);
        enrich::handle_in(event.payload, source, &network, store, &SystemClock)
            .await
            .map_err(|error| Diagnostic {
                error_type: error.error_type().to_owned(),
                error_message: error.to_string(),
            })
    }))
    .await
}
