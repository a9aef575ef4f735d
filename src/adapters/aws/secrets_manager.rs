//! The webhook secret document from AWS Secrets Manager. Errors are classified here so no code
//! above sees an `SdkError`: a missing or forbidden secret is permanent, anything else (throttling,
//! network, service faults) is worth retrying.

use crate::ports::SecretFetcher;
use crate::secret::SecretError;
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

/// Reads one secret's `SecretString`.
#[derive(Debug, Clone)]
pub struct SecretsManagerFetcher {
    client: Client,
    secret_id: String,
}

impl SecretsManagerFetcher {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait]
impl SecretFetcher for SecretsManagerFetcher {
    async fn fetch(&self) -> Result<String, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|error| {
                let code = error.code().unwrap_or("Unknown").to_owned();
                match code.as_str() {
                    "ResourceNotFoundException"
                    | "AccessDeniedException"
                    | "DecryptionFailure"
                    | "InvalidRequestException"
                    | "InvalidParameterException" => SecretError::Denied(code),
                    _ => SecretError::Unavailable(code),
                }
            })?;
        output
            .secret_string
            .ok_or_else(|| SecretError::Malformed("the secret has no SecretString".into()))
    }
}
