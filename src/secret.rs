//! The webhook configuration (`WEBHOOK_URL`, `WEBHOOK_SECRET`) and its TTL cache.
//!
//! The document has the shape the seed stores in Secrets Manager. It is cached across warm
//! invocations for a TTL, so a rotation takes effect without a redeploy, and [`SecretSource::refresh`]
//! rereads it at once when the webhook answers 401/403.

use crate::ports::{Clock, SecretFetcher, SecretSource};
use crate::signing::WebhookSecret;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use url::Url;

/// Key of the URL in the secret document.
pub const URL_KEY: &str = "WEBHOOK_URL";
/// Key of the HMAC secret in the secret document.
pub const SECRET_KEY: &str = "WEBHOOK_SECRET";
/// How long a fetched secret is used before it is read again, unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// Why the webhook configuration is not available. Messages never hold the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The store could not be reached or throttled us; worth retrying.
    #[error("secret unavailable: {0}")]
    Unavailable(String),
    /// The secret does not exist or we may not read it; retrying will not help.
    #[error("secret not readable: {0}")]
    Denied(String),
    /// The document is not `{"WEBHOOK_URL": "https://…", "WEBHOOK_SECRET": "…"}`.
    #[error("secret malformed: {0}")]
    Malformed(String),
}

/// Where and how to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: Url,
    pub secret: WebhookSecret,
}

impl WebhookConfig {
    /// Parses the secret document. Errors name the key at fault, never its value.
    pub fn from_json(document: &str) -> Result<Self, SecretError> {
        let value = parse_document(document)?;
        let url = Url::parse(field(&value, URL_KEY)?)
            .map_err(|error| SecretError::Malformed(format!("{URL_KEY} is not a URL: {error}")))?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err(SecretError::Malformed(format!(
                "{URL_KEY} must be an https:// URL with a host"
            )));
        }
        Ok(Self {
            url,
            secret: WebhookSecret::new(field(&value, SECRET_KEY)?),
        })
    }
}

/// Only the HMAC secret of a document (`sign`, `verify` and the receiver need no URL).
pub fn secret_from_json(document: &str) -> Result<WebhookSecret, SecretError> {
    Ok(WebhookSecret::new(field(
        &parse_document(document)?,
        SECRET_KEY,
    )?))
}

fn parse_document(document: &str) -> Result<Value, SecretError> {
    serde_json::from_str(document).map_err(|error| {
        SecretError::Malformed(format!(
            "not JSON (line {}, column {})",
            error.line(),
            error.column()
        ))
    })
}

fn field<'a>(document: &'a Value, key: &str) -> Result<&'a str, SecretError> {
    document
        .get(key)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .ok_or_else(|| SecretError::Malformed(format!("{key} must be a non-empty string")))
}

struct Cached {
    config: Arc<WebhookConfig>,
    fetched_at: DateTime<Utc>,
}

/// A [`SecretSource`] over any [`SecretFetcher`], caching the parsed document for a TTL.
pub struct CachedSecretSource<F> {
    fetcher: F,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    cached: Mutex<Option<Cached>>,
}

impl<F: SecretFetcher> CachedSecretSource<F> {
    pub fn new(fetcher: F, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            fetcher,
            clock,
            ttl,
            cached: Mutex::new(None),
        }
    }

    async fn load(&self, cached: &mut Option<Cached>) -> Result<Arc<WebhookConfig>, SecretError> {
        let config = Arc::new(WebhookConfig::from_json(&self.fetcher.fetch().await?)?);
        *cached = Some(Cached {
            config: config.clone(),
            fetched_at: self.clock.now(),
        });
        Ok(config)
    }
}

#[async_trait]
impl<F: SecretFetcher> SecretSource for CachedSecretSource<F> {
    async fn webhook_config(&self) -> Result<Arc<WebhookConfig>, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some(entry) = cached.as_ref() {
            let age = (self.clock.now() - entry.fetched_at)
                .to_std()
                .unwrap_or_default();
            if age < self.ttl {
                return Ok(entry.config.clone());
            }
        }
        self.load(&mut cached).await
    }

    async fn refresh(&self) -> Result<Arc<WebhookConfig>, SecretError> {
        let mut cached = self.cached.lock().await;
        self.load(&mut cached).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FixedClock, ScriptedFetcher};

    const DOC: &str = r#"{"WEBHOOK_URL":"https://event-ai.us-east-1.api.aws/webhook/generic/abc","WEBHOOK_SECRET":"k1"}"#;

    #[test]
    fn parses_the_seed_document() {
        let config = WebhookConfig::from_json(DOC).unwrap();
        assert_eq!(config.url.host_str(), Some("event-ai.us-east-1.api.aws"));
        assert_eq!(config.secret, WebhookSecret::new("k1"));
    }

    #[test]
    fn malformed_documents_name_the_key_never_the_value() {
        for (document, expected) in [
            ("{", "not JSON"),
            (r#"{"WEBHOOK_SECRET":"hunter2"}"#, "WEBHOOK_URL must be"),
            (
                r#"{"WEBHOOK_URL":"https://x.example","WEBHOOK_SECRET":""}"#,
                "WEBHOOK_SECRET must be",
            ),
            (
                r#"{"WEBHOOK_URL":"ftp://x.example","WEBHOOK_SECRET":"hunter2"}"#,
                "must be an https://",
            ),
            (
                r#"{"WEBHOOK_URL":"not a url","WEBHOOK_SECRET":"hunter2"}"#,
                "is not a URL",
            ),
        ] {
            let error = WebhookConfig::from_json(document).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[tokio::test]
    async fn cache_serves_within_ttl_and_refetches_after() {
        let clock = Arc::new(FixedClock::at("2026-11-24T10:00:00Z"));
        let rotated = DOC.replace("k1", "k2");
        let fetcher = ScriptedFetcher::new([DOC.to_owned(), rotated]);
        let source =
            CachedSecretSource::new(fetcher.clone(), clock.clone(), Duration::from_secs(60));
        assert_eq!(
            source.webhook_config().await.unwrap().secret,
            WebhookSecret::new("k1")
        );
        clock.advance(Duration::from_secs(59));
        assert_eq!(
            source.webhook_config().await.unwrap().secret,
            WebhookSecret::new("k1")
        );
        assert_eq!(fetcher.calls(), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            source.webhook_config().await.unwrap().secret,
            WebhookSecret::new("k2")
        );
        assert_eq!(fetcher.calls(), 2);
    }

    #[tokio::test]
    async fn refresh_bypasses_the_cache() {
        let clock = Arc::new(FixedClock::at("2026-11-24T10:00:00Z"));
        let fetcher = ScriptedFetcher::new([DOC.to_owned(), DOC.replace("k1", "k2")]);
        let source = CachedSecretSource::new(fetcher.clone(), clock, DEFAULT_TTL);
        source.webhook_config().await.unwrap();
        assert_eq!(
            source.refresh().await.unwrap().secret,
            WebhookSecret::new("k2")
        );
        assert_eq!(
            source.webhook_config().await.unwrap().secret,
            WebhookSecret::new("k2")
        );
        assert_eq!(fetcher.calls(), 2);
    }
}
