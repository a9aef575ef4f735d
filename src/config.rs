//! The signer Lambda's configuration, read from its environment (set by `template.yaml`).

use std::time::Duration;

/// Why the environment does not configure the function. Names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

/// Everything the signer reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerConfig {
    /// `SECRET_ARN`: the Secrets Manager secret holding `{"WEBHOOK_URL", "WEBHOOK_SECRET"}`.
    pub secret_id: String,
    /// `SECRET_TTL_SECONDS` (default 300): how long a warm function reuses the secret.
    pub secret_ttl: Duration,
    /// `WEBHOOK_CONNECT_TIMEOUT_MS` (default 3000).
    pub connect_timeout: Duration,
    /// `WEBHOOK_TIMEOUT_MS` (default 10000): the whole request; keep it under the function timeout.
    pub timeout: Duration,
}

impl SignerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secret_id = lookup("SECRET_ARN")
            .filter(|value| !value.trim().is_empty())
            .ok_or(ConfigError {
                variable: "SECRET_ARN",
                reason: "must name the webhook secret".into(),
            })?;
        let number = |variable: &'static str, default: u64| -> Result<u64, ConfigError> {
            match lookup(variable) {
                None => Ok(default),
                Some(text) => {
                    text.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(ConfigError {
                            variable,
                            reason: format!("must be a positive integer, got {text:?}"),
                        })
                }
            }
        };
        Ok(Self {
            secret_id,
            secret_ttl: Duration::from_secs(number("SECRET_TTL_SECONDS", 300)?),
            connect_timeout: Duration::from_millis(number("WEBHOOK_CONNECT_TIMEOUT_MS", 3000)?),
            timeout: Duration::from_millis(number("WEBHOOK_TIMEOUT_MS", 10_000)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<SignerConfig, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SignerConfig::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_secret_is_set() {
        let config =
            config(&[("SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:x")]).unwrap();
        assert_eq!(config.secret_ttl, Duration::from_secs(300));
        assert_eq!(config.timeout, Duration::from_secs(10));
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(config(&[]).unwrap_err().variable, "SECRET_ARN");
        let error = config(&[("SECRET_ARN", "x"), ("WEBHOOK_TIMEOUT_MS", "soon")]).unwrap_err();
        assert_eq!(error.variable, "WEBHOOK_TIMEOUT_MS");
        assert!(error.to_string().contains("\"soon\""));
    }
}
