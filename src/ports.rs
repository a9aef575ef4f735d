//! The traits the domain talks to the world through. Each adapter lives in `adapters/`; tests
//! use fakes of the same traits.

use crate::secret::{SecretError, WebhookConfig};
use crate::signing::Signature;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use url::Url;

/// Wall-clock time, injected so that timestamps, TTLs and `Retry-After` dates are testable.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The raw secret document, `{"WEBHOOK_URL": "...", "WEBHOOK_SECRET": "..."}`, from wherever it
/// is kept. Implementations classify their failures (see [`SecretError`]) and never put the
/// document into an error.
#[async_trait]
pub trait SecretFetcher: Send + Sync {
    async fn fetch(&self) -> Result<String, SecretError>;
}

/// The webhook's URL and secret as delivery needs them.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The current configuration; may be served from a cache.
    async fn webhook_config(&self) -> Result<Arc<WebhookConfig>, SecretError>;
    /// Reads the configuration again, bypassing any cache (after the webhook answered 401/403,
    /// in case the secret was rotated).
    async fn refresh(&self) -> Result<Arc<WebhookConfig>, SecretError>;
}

/// One signed POST, as the transport puts it on the wire.
#[derive(Debug)]
pub struct SignedRequest<'a> {
    pub url: &'a Url,
    pub timestamp: &'a str,
    pub signature: &'a Signature,
    pub body: &'a [u8],
}

/// What the webhook answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    pub status: u16,
    /// The raw `Retry-After` header, when present.
    pub retry_after: Option<String>,
    /// The start of the response body, at most [`RESPONSE_EXCERPT_BYTES`] bytes, lossy UTF-8.
    pub body_excerpt: String,
}

/// How much of a response body is kept for the audit trail.
pub const RESPONSE_EXCERPT_BYTES: usize = 512;

/// Why no HTTP answer came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The URL breaks the delivery policy (not HTTPS, or plain HTTP to a non-loopback host or
    /// without the explicit allowance). Permanent.
    #[error("refused to send: {0}")]
    Refused(String),
    /// No connection could be made (DNS, TCP, TLS). Transient.
    #[error("could not connect: {0}")]
    Connect(String),
    /// Connect or total timeout. Transient.
    #[error("timed out after {0} ms")]
    TimedOut(u64),
    /// The connection broke before a full answer. Transient.
    #[error("connection failed: {0}")]
    Io(String),
}

/// Sends a signed webhook request.
#[async_trait]
pub trait WebhookTransport: Send + Sync {
    async fn post(&self, request: SignedRequest<'_>) -> Result<WebhookResponse, TransportError>;
}
