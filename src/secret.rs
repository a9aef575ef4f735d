//! The webhook configuration and its TTL cache.
//!
//! The document has the shape the seed stores in Secrets Manager: `{"WEBHOOK_URL",
//! "WEBHOOK_SECRET"}` for an HMAC webhook (signed as the seed signs), or `{"WEBHOOK_URL",
//! "WEBHOOK_API_KEY"}` for an API-key webhook (`Authorization: Bearer <key>`, no signature), the
//! two kinds of DevOps Agent webhook. Its auth follows its content. It is cached across warm
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
/// Key of the API key in the secret document of an API-key webhook.
pub const API_KEY_KEY: &str = "WEBHOOK_API_KEY";
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
    /// The document is not `{"WEBHOOK_URL": "https://…", "WEBHOOK_SECRET" | "WEBHOOK_API_KEY": "…"}`.
    #[error("secret malformed: {0}")]
    Malformed(String),
}

/// An API-key webhook's key: sent as `Authorization: Bearer <key>`, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key. Call only to put it on the wire, or to compare or redact it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether an `Authorization` header value is `Bearer <this key>`, compared in constant
    /// time.
    pub fn authorizes(&self, header: &str) -> bool {
        let Some(given) = header.strip_prefix("Bearer ") else {
            return false;
        };
        let (given, expected) = (given.as_bytes(), self.0.as_bytes());
        given.len() == expected.len()
            && given
                .iter()
                .zip(expected)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// How a webhook authenticates a request: what the secret document holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAuth {
    /// `x-amzn-event-timestamp` and `x-amzn-event-signature`, as the seed signs.
    Hmac(WebhookSecret),
    /// `Authorization: Bearer <key>`.
    ApiKey(ApiKey),
}

impl WebhookAuth {
    /// `hmac` or `api-key`, for records and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hmac(_) => "hmac",
            Self::ApiKey(_) => "api-key",
        }
    }
}

/// Where and how to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: Url,
    pub auth: WebhookAuth,
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
        let auth = match (value.get(SECRET_KEY), value.get(API_KEY_KEY)) {
            (Some(_), None) => WebhookAuth::Hmac(WebhookSecret::new(field(&value, SECRET_KEY)?)),
            (None, Some(_)) => WebhookAuth::ApiKey(ApiKey::new(field(&value, API_KEY_KEY)?)),
            (Some(_), Some(_)) => {
                return Err(SecretError::Malformed(format!(
                    "both {SECRET_KEY} and {API_KEY_KEY} are set: keep the one of the webhook's type (HMAC or API key)"
                )));
            }
            (None, None) => {
                return Err(SecretError::Malformed(format!(
                    "{SECRET_KEY} (an HMAC webhook) or {API_KEY_KEY} (an API-key webhook) must be a non-empty string"
                )));
            }
        };
        Ok(Self { url, auth })
    }
}

/// The API key a receiver expects: a secret document's `WEBHOOK_API_KEY`, or the whole text
/// of a file holding just the key (trimmed).
pub fn api_key_from_text(text: &str) -> Result<ApiKey, SecretError> {
    if let Ok(document) = serde_json::from_str::<Value>(text)
        && document.is_object()
    {
        return Ok(ApiKey::new(field(&document, API_KEY_KEY)?));
    }
    let key = text.trim();
    if key.is_empty() {
        return Err(SecretError::Malformed("the API key file is empty".into()));
    }
    Ok(ApiKey::new(key))
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
        assert_eq!(config.auth, WebhookAuth::Hmac(WebhookSecret::new("k1")));
        assert_eq!(config.auth.kind(), "hmac");
    }

    #[test]
    fn an_api_key_document_is_an_api_key_webhook() {
        let config = WebhookConfig::from_json(
            r#"{"WEBHOOK_URL":"https://x.example/webhook","WEBHOOK_API_KEY":"key-1"}"#,
        )
        .unwrap();
        assert_eq!(config.auth, WebhookAuth::ApiKey(ApiKey::new("key-1")));
        assert_eq!(config.auth.kind(), "api-key");
        assert!(!format!("{config:?}").contains("key-1"));
        let key = ApiKey::new("key-1");
        assert!(key.authorizes("Bearer key-1"));
        for wrong in ["Bearer key-2", "Bearer key-10", "key-1", "bearer key-1", ""] {
            assert!(!key.authorizes(wrong), "{wrong}");
        }
        assert_eq!(api_key_from_text(" key-1\n").unwrap(), key);
        assert_eq!(
            api_key_from_text(r#"{"WEBHOOK_API_KEY":"key-1"}"#).unwrap(),
            key
        );
        assert!(api_key_from_text("  ").is_err());
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
            (
                r#"{"WEBHOOK_URL":"https://x.example","WEBHOOK_SECRET":"hunter2","WEBHOOK_API_KEY":"hunter2"}"#,
                "both WEBHOOK_SECRET and WEBHOOK_API_KEY",
            ),
            (
                r#"{"WEBHOOK_URL":"https://x.example"}"#,
                "WEBHOOK_SECRET (an HMAC webhook) or WEBHOOK_API_KEY",
            ),
            (
                r#"{"WEBHOOK_URL":"https://x.example","WEBHOOK_API_KEY":""}"#,
                "WEBHOOK_API_KEY must be",
            ),
            (
                r#"{"WEBHOOK_URL":"https://x.example","WEBHOOK_API_KEY":7}"#,
                "WEBHOOK_API_KEY must be",
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
            source.webhook_config().await.unwrap().auth,
            WebhookAuth::Hmac(WebhookSecret::new("k1"))
        );
        clock.advance(Duration::from_secs(59));
        assert_eq!(
            source.webhook_config().await.unwrap().auth,
            WebhookAuth::Hmac(WebhookSecret::new("k1"))
        );
        assert_eq!(fetcher.calls(), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            source.webhook_config().await.unwrap().auth,
            WebhookAuth::Hmac(WebhookSecret::new("k2"))
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
            source.refresh().await.unwrap().auth,
            WebhookAuth::Hmac(WebhookSecret::new("k2"))
        );
        assert_eq!(
            source.webhook_config().await.unwrap().auth,
            WebhookAuth::Hmac(WebhookSecret::new("k2"))
        );
        assert_eq!(fetcher.calls(), 2);
    }
}
