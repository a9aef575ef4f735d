//! The AWS SDK configuration every Lambda loads: the default provider chain (region and
//! credentials from the Lambda environment) with explicit timeouts and the standard retry mode.
//!
//! `aws_config::load_defaults(BehaviorVersion::latest())` alone sets only a connect timeout
//! (3.1 s): no attempt, read or operation timeout. A service that accepts the connection and
//! then answers slowly, or never, keeps the call waiting until Lambda kills the function at
//! its own timeout (30 s). Step Functions documents a function timeout as `Lambda.Unknown`,
//! which no Retry of the definition names: the execution fails (Enrich catches it) instead of
//! retrying, and an intake event goes through Lambda's asynchronous retries. With these values
//! a slow answer is an SDK timeout, retried by the SDK, then classified by the adapters
//! (`Store.Unavailable`, `Secret.Unavailable`, a start left in the outbox) well inside the
//! Lambda's timeout. `tests/it/faults.rs` checks both behaviours against a fault-injecting
//! proxy.
//!
//! | setting | value | why |
//! |---|---|---|
//! | connect timeout | [`CONNECT_TIMEOUT`] 3 s | TCP and TLS to a regional endpoint take milliseconds; the SDK's own default is 3.1 s |
//! | attempt timeout | [`ATTEMPT_TIMEOUT`] 4 s | DynamoDB, Step Functions, Secrets Manager and CloudWatch answer these calls in well under a second; a slower attempt is given up and retried |
//! | operation timeout | [`OPERATION_TIMEOUT`] 12 s | every attempt and backoff of one call: two calls that each run out still end before the 30 s Lambda timeout, leaving the handler time to answer a classified error |
//! | retries | standard mode, [`MAX_ATTEMPTS`] 3 attempts | exponential backoff with full jitter from 1 s, capped at 20 s, and the client-side retry quota; throttling, 5xx, connection errors and timeouts are retried |
//!
//! The explicit retry configuration overrides `AWS_RETRY_MODE` and `AWS_MAX_ATTEMPTS`.
//!
//! Every client speaks HTTPS through [`https_client`]: hyper with rustls on the ring crypto
//! provider, the same stack as the webhook POST (`adapters::reqwest_transport`), so a Lambda
//! links one TLS implementation. The SDK's default client uses rustls on aws-lc-rs instead, a
//! C library that adds about 1.4 MB to each binary, a minute to each build, and a one-time
//! entropy gathering (~20 ms) before the first handshake of a cold start. What that gives up,
//! stated in docs/performance.md: the post-quantum hybrid key exchange (X25519MLKEM768) that
//! aws-lc-rs prefers; TLS 1.3 and 1.2 with X25519/P-256 and AES-GCM/ChaCha20 remain, and the
//! trust roots are the system's, as before.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::time::Duration;

/// How long establishing a connection (TCP and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one attempt of a call (connect, send, the whole answer) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// How long one call may take, every attempt and backoff included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(12);
/// Attempts of one call, the first included.
pub const MAX_ATTEMPTS: u32 = 3;

/// The timeouts of the table in the module documentation.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The standard retry mode with [`MAX_ATTEMPTS`] attempts.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// The HTTPS client of every AWS call: rustls on ring, the system's trust roots.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// `loader` with the HTTPS client, timeouts and retries of this module (tests add an endpoint
/// and credentials to the same loader).
pub fn configure(loader: ConfigLoader) -> ConfigLoader {
    loader
        .http_client(https_client())
        .timeout_config(timeout_config())
        .retry_config(retry_config())
}

/// The configuration the Lambdas use: the default chain, [`configure`]d.
pub async fn load() -> SdkConfig {
    configure(aws_config::defaults(BehaviorVersion::latest()))
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::retry::RetryMode;

    #[test]
    fn timeouts_end_a_call_inside_the_lambda_timeout() {
        let timeouts = timeout_config();
        assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        let lambda_timeout = Duration::from_secs(30);
        assert!(OPERATION_TIMEOUT * 2 < lambda_timeout);
        assert!(
            ATTEMPT_TIMEOUT * 2 < OPERATION_TIMEOUT,
            "a timed-out attempt is retried"
        );
        let retries = retry_config();
        assert_eq!(retries.mode(), RetryMode::Standard);
        assert_eq!(retries.max_attempts(), MAX_ATTEMPTS);
    }
}
