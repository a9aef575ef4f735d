//! The project's Lambda handlers, called in-process: what a `lambda:invoke` Task of the local
//! engine runs. Each function is found by its name (`signer`, or in an ARN
//! `…:function:signer[:qualifier]`), the names the engine's DefinitionSubstitutions give them.

use crate::config::CorrelationConfig;
use crate::config::RoutingConfig;
use crate::delivery::Deliverer;
use crate::enrich::network::NetworkSettings;
use crate::ports::{AlarmSource, Clock, IncidentStore};
use crate::{enrich, recorder, signer};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

/// A function's error as Lambda reports it: `errorType` becomes the Task's error name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub error_type: String,
    pub message: String,
}

/// Runs a function by name.
#[async_trait]
pub trait Functions: Send + Sync {
    async fn invoke(&self, function_name: &str, payload: Value) -> Result<Value, FunctionError>;
}

/// The enricher, signer and recorder handlers over the local adapters.
pub struct LocalFunctions {
    pub deliverer: Arc<Deliverer>,
    pub alarms: Arc<dyn AlarmSource>,
    pub store: Arc<dyn IncidentStore>,
    pub clock: Arc<dyn Clock>,
    /// The episode rules the recorder's Correlate state applies.
    pub correlation: CorrelationConfig,
    /// The signer's routing defaults (default priority, destinations by account).
    pub routing: RoutingConfig,
    /// What the enricher asks Network Flow Monitor.
    pub network: NetworkSettings,
}

/// A function's name from a name or an ARN, without a version or alias qualifier.
fn bare_name(function: &str) -> &str {
    let name = function
        .split_once(":function:")
        .map_or(function, |(_, rest)| rest);
    name.split(':').next().unwrap_or(name)
}

/// The function names the local engine's substitutions use.
pub const ENRICHER: &str = "enricher";
pub const SIGNER: &str = "signer";
pub const RECORDER: &str = "recorder";

#[async_trait]
impl Functions for LocalFunctions {
    async fn invoke(&self, function_name: &str, payload: Value) -> Result<Value, FunctionError> {
        let (store, clock) = (self.store.as_ref(), self.clock.as_ref());
        match bare_name(function_name) {
            ENRICHER => enrich::handle(payload, self.alarms.as_ref(), &self.network, store, clock)
                .await
                .map_err(|error| FunctionError {
                    error_type: error.error_type().to_owned(),
                    message: error.to_string(),
                }),
            SIGNER => {
                match signer::handle(payload, &self.deliverer, &self.routing, store, clock).await {
                    Ok(record) => serde_json::to_value(record).map_err(|error| FunctionError {
                        error_type: "Payload.Invalid".to_owned(),
                        message: format!("delivery record: {error}"),
                    }),
                    Err(error) => Err(FunctionError {
                        error_type: error.name.as_str().to_owned(),
                        message: error.message,
                    }),
                }
            }
            RECORDER => recorder::invoke(&payload, &self.correlation, store, clock)
                .await
                .map_err(|error| FunctionError {
                    error_type: error.error_type().to_owned(),
                    message: error.to_string(),
                }),
            _ => Err(FunctionError {
                error_type: "Lambda.ResourceNotFoundException".to_owned(),
                message: format!("Function not found: {function_name}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bare_name;

    #[test]
    fn functions_are_found_by_name_arn_or_qualified_arn() {
        for function in [
            "signer",
            "signer:live",
            "arn:aws:lambda:local:000000000000:function:signer",
            "arn:aws:lambda:local:000000000000:function:signer:$LATEST",
        ] {
            assert_eq!(bare_name(function), "signer", "{function}");
        }
    }
}
