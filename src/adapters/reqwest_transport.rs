//! The webhook POST over reqwest with rustls: one client (keep-alive pool) for the process,
//! connect and total timeouts, no redirects (a 3xx is an answer, classified permanent), and the
//! HTTPS-only policy: plain HTTP only to a loopback host and only when explicitly allowed.

use crate::ports::{
    Credentials, RESPONSE_EXCERPT_BYTES, TransportError, WebhookRequest, WebhookResponse,
    WebhookTransport,
};
use crate::signing::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use std::net::IpAddr;
use std::time::Duration;
use url::{Host, Url};

/// Transport settings; [`Default`] is what production uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTransportConfig {
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout, connect included.
    pub timeout: Duration,
    /// Permit `http://` to loopback hosts (local receivers, tests). Never on in AWS.
    pub allow_http_loopback: bool,
}

impl Default for HttpTransportConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(10),
            allow_http_loopback: false,
        }
    }
}

/// A reqwest client builder on the crate's one TLS stack: rustls with the ring crypto provider
/// (the AWS SDK clients use the same, `adapters::aws::sdk`). reqwest is built without a
/// provider of its own, so the first call installs ring as the process default.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    // Err means a provider is installed already: ours, from an earlier call.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A default client of [`http_client_builder`] (the CLI's own requests, the tests').
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    http_client_builder().build()
}

/// [`WebhookTransport`] over one shared reqwest client.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    config: HttpTransportConfig,
}

impl ReqwestTransport {
    pub fn new(config: HttpTransportConfig) -> Result<Self, TransportError> {
        let client = http_client_builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("alarm-relay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                TransportError::Refused(format!("HTTP client unavailable: {error}"))
            })?;
        Ok(Self { client, config })
    }

    fn check_policy(&self, url: &Url) -> Result<(), TransportError> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if is_loopback(url) && self.config.allow_http_loopback => Ok(()),
            "http" if is_loopback(url) => Err(TransportError::Refused(
                "plain http to loopback needs the explicit allowance (--allow-http-loopback)"
                    .into(),
            )),
            "http" => Err(TransportError::Refused(format!(
                "plain http to {} is not allowed; use https",
                url.host_str().unwrap_or("?")
            ))),
            other => Err(TransportError::Refused(format!(
                "scheme {other} is not allowed"
            ))),
        }
    }

    fn classify(&self, error: &reqwest::Error) -> TransportError {
        if error.is_timeout() {
            let limit = if error.is_connect() {
                self.config.connect_timeout
            } else {
                self.config.timeout
            };
            return TransportError::TimedOut(u64::try_from(limit.as_millis()).unwrap_or(u64::MAX));
        }
        let cause = root_cause(error);
        if error.is_connect() {
            TransportError::Connect(cause)
        } else {
            TransportError::Io(cause)
        }
    }
}

/// Loopback: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The innermost cause, without the URL reqwest puts in its own message.
fn root_cause(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

#[async_trait]
impl WebhookTransport for ReqwestTransport {
    async fn post(&self, request: WebhookRequest<'_>) -> Result<WebhookResponse, TransportError> {
        self.check_policy(request.url)?;
        let post = self
            .client
            .post(request.url.clone())
            .header(CONTENT_TYPE, "application/json");
        let post = match request.credentials {
            Credentials::Hmac {
                timestamp,
                signature,
            } => post
                .header(TIMESTAMP_HEADER, timestamp)
                .header(SIGNATURE_HEADER, signature.expose()),
            Credentials::Bearer { key } => {
                post.header(AUTHORIZATION, format!("Bearer {}", key.expose()))
            }
        };
        let mut response = post
            .body(request.body.to_vec())
            .send()
            .await
            .map_err(|error| self.classify(&error))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let mut excerpt = Vec::new();
        while excerpt.len() < RESPONSE_EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        excerpt.truncate(RESPONSE_EXCERPT_BYTES);
        Ok(WebhookResponse {
            status,
            retry_after,
            body_excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(allow_http_loopback: bool) -> ReqwestTransport {
        ReqwestTransport::new(HttpTransportConfig {
            allow_http_loopback,
            ..HttpTransportConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn https_always_allowed_http_only_to_allowed_loopback() {
        for (url, allow, ok) in [
            (
                "https://event-ai.us-east-1.api.aws/webhook/generic/x",
                false,
                true,
            ),
            ("http://127.0.0.1:8080/hook", true, true),
            ("http://localhost/hook", true, true),
            ("http://[::1]:9/hook", true, true),
            ("http://127.0.0.1:8080/hook", false, false),
            ("http://10.0.0.1/hook", true, false),
            ("http://example.com/hook", true, false),
        ] {
            let url = Url::parse(url).unwrap();
            assert_eq!(
                transport(allow).check_policy(&url).is_ok(),
                ok,
                "{url} allow={allow}"
            );
        }
    }
}
