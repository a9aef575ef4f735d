//! The DevOps Agent webhook signature: base64 HMAC-SHA256 of `"{timestamp}:{body}"`.
//!
//! The timestamp is sent in `x-amzn-event-timestamp` as `%Y-%m-%dT%H:%M:%S.000Z` (the seed
//! writes a literal `.000`), the signature in `x-amzn-event-signature`. Every attempt signs
//! afresh with its own timestamp: a stored pre-signed request would age past the receiver's
//! replay window.
//!
//! Secrets and signatures redact themselves: neither `Debug` nor anything else prints them, and
//! there is no `Display` or `Serialize` to reach for by mistake.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use std::time::Duration;

/// Header carrying the signing time.
pub const TIMESTAMP_HEADER: &str = "x-amzn-event-timestamp";
/// Header carrying the base64 signature.
pub const SIGNATURE_HEADER: &str = "x-amzn-event-signature";
/// `strftime` format of [`TIMESTAMP_HEADER`], exactly as the seed writes it.
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S.000Z";
/// How far a receiver lets a timestamp stray from its clock (DevOps Agent documents that it
/// "can reject requests with timestamps that are too far in the past" without a figure).
pub const TOLERANCE_IN_SECONDS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// The shared HMAC secret of a DevOps Agent generic webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// The secret as the console shows it; its UTF-8 bytes are the HMAC key, as in the seed.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into().into_bytes())
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("HMAC accepts keys of any length")
    }

    /// Strings in which the secret must never appear verbatim (for redaction of echoes).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// A computed signature: the value of [`SIGNATURE_HEADER`].
#[derive(Clone, PartialEq, Eq)]
pub struct Signature(String);

impl Signature {
    /// The header value. Call only to put it on the wire or print it on explicit request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature([redacted])")
    }
}

/// [`TIMESTAMP_HEADER`] for a moment.
pub fn event_timestamp(now: DateTime<Utc>) -> String {
    now.format(TIMESTAMP_FORMAT).to_string()
}

/// Reads a [`TIMESTAMP_HEADER`] value; only the exact seed format is accepted.
pub fn parse_timestamp(timestamp: &str) -> Result<DateTime<Utc>, VerifyError> {
    NaiveDateTime::parse_from_str(timestamp, TIMESTAMP_FORMAT)
        .ok()
        .filter(|parsed| event_timestamp(parsed.and_utc()) == timestamp)
        .map(|parsed| parsed.and_utc())
        .ok_or_else(|| VerifyError::MalformedTimestamp {
            found: timestamp.chars().take(40).collect(),
        })
}

/// base64(HMAC-SHA256(secret, "{timestamp}:{body}")).
pub fn sign(secret: &WebhookSecret, timestamp: &str, body: &[u8]) -> Signature {
    let mut mac = secret.mac();
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    Signature(BASE64.encode(mac.finalize().into_bytes()))
}

/// Why a signed request does not verify. No variant carries the secret or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {TIMESTAMP_HEADER} header")]
    MissingTimestamp,
    #[error("missing {SIGNATURE_HEADER} header")]
    MissingSignature,
    #[error("timestamp {found:?} is not in the format {TIMESTAMP_FORMAT}")]
    MalformedTimestamp { found: String },
    #[error(
        "timestamp is {skew_seconds} s away from the receiver's clock (tolerance {TOLERANCE_IN_SECONDS} s)"
    )]
    OutsideTolerance { skew_seconds: i64 },
    #[error("signature is not standard base64 of a 32-byte HMAC-SHA256")]
    MalformedSignature,
    #[error(
        "signature does not match: the body or the timestamp differ from what was signed, or the secret differs"
    )]
    Mismatch,
}

/// Checks a signature header against the body and timestamp, in constant time.
///
/// The header may hold several space-separated signatures (sent during secret rotation); one
/// match is enough. The timestamp must be well-formed but its age is not checked: see
/// [`verify_fresh`].
pub fn verify_ignoring_timestamp(
    secret: &WebhookSecret,
    timestamp: &str,
    body: &[u8],
    signature_header: &str,
) -> Result<(), VerifyError> {
    parse_timestamp(timestamp)?;
    let mut malformed = true;
    for candidate in signature_header.split(' ').filter(|part| !part.is_empty()) {
        let Ok(decoded) = BASE64.decode(candidate) else {
            continue;
        };
        if decoded.len() != 32 {
            continue;
        }
        malformed = false;
        let mut mac = secret.mac();
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        if mac.verify_slice(&decoded).is_ok() {
            return Ok(());
        }
    }
    Err(if malformed {
        VerifyError::MalformedSignature
    } else {
        VerifyError::Mismatch
    })
}

/// [`verify_ignoring_timestamp`], and the timestamp within `tolerance` of `now`.
pub fn verify_fresh(
    secret: &WebhookSecret,
    timestamp: &str,
    body: &[u8],
    signature_header: &str,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let sent = parse_timestamp(timestamp)?;
    let skew_seconds = (now - sent).num_seconds();
    if skew_seconds.unsigned_abs() > tolerance.as_secs() {
        return Err(VerifyError::OutsideTolerance { skew_seconds });
    }
    verify_ignoring_timestamp(secret, timestamp, body, signature_header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const TS: &str = "2026-11-24T10:00:00.000Z";

    fn secret() -> WebhookSecret {
        WebhookSecret::new("s3cr3t-value")
    }

    #[test]
    fn sign_matches_openssl_reference_vector() {
        // printf '%s' '2026-11-24T10:00:00.000Z:{"a": 1}' | openssl dgst -sha256 -hmac s3cr3t-value -binary | base64
        let signature = sign(&secret(), TS, br#"{"a": 1}"#);
        assert_eq!(
            signature.expose(),
            "eRishvaTvNxJoQcPuX/TLs70+2kC8r7qP0/GRbMGhss="
        );
    }

    #[test]
    fn timestamp_has_literal_zero_millis() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
            + chrono::Duration::milliseconds(987);
        assert_eq!(event_timestamp(at), TS);
    }

    #[test]
    fn debug_never_shows_secret_or_signature() {
        let secret = secret();
        let signature = sign(&secret, TS, b"x");
        let shown = format!("{secret:?} {signature:?}");
        assert!(!shown.contains("s3cr3t"));
        assert!(!shown.contains(signature.expose()));
    }

    #[test]
    fn verify_accepts_own_signature_and_rotation_lists() {
        let good = sign(&secret(), TS, b"body");
        let other = sign(&WebhookSecret::new("old"), TS, b"body");
        assert_eq!(
            verify_ignoring_timestamp(&secret(), TS, b"body", good.expose()),
            Ok(())
        );
        let both = format!("{} {}", other.expose(), good.expose());
        assert_eq!(
            verify_ignoring_timestamp(&secret(), TS, b"body", &both),
            Ok(())
        );
    }

    #[test]
    fn verify_names_what_is_wrong() {
        let good = sign(&secret(), TS, b"body");
        assert_eq!(
            verify_ignoring_timestamp(&secret(), TS, b"body!", good.expose()),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_ignoring_timestamp(&secret(), TS, b"body", "not base64!"),
            Err(VerifyError::MalformedSignature)
        );
        assert!(matches!(
            verify_ignoring_timestamp(&secret(), "2026-11-24T10:00:00Z", b"body", good.expose()),
            Err(VerifyError::MalformedTimestamp { .. })
        ));
        assert!(matches!(
            verify_ignoring_timestamp(
                &secret(),
                "2026-11-24T10:00:00.123Z",
                b"body",
                good.expose()
            ),
            Err(VerifyError::MalformedTimestamp { .. })
        ));
    }

    #[test]
    fn verify_fresh_enforces_tolerance_both_ways() {
        let sent = parse_timestamp(TS).unwrap();
        let signature = sign(&secret(), TS, b"b");
        let tolerance = Duration::from_secs(TOLERANCE_IN_SECONDS);
        let check = |now| verify_fresh(&secret(), TS, b"b", signature.expose(), now, tolerance);
        assert_eq!(check(sent + chrono::Duration::seconds(300)), Ok(()));
        assert_eq!(
            check(sent + chrono::Duration::seconds(301)),
            Err(VerifyError::OutsideTolerance { skew_seconds: 301 })
        );
        assert_eq!(
            check(sent - chrono::Duration::seconds(400)),
            Err(VerifyError::OutsideTolerance { skew_seconds: -400 })
        );
    }

    proptest! {
        #[test]
        fn any_signature_verifies_and_any_change_breaks_it(
            key in ".{1,40}", body in proptest::collection::vec(any::<u8>(), 0..512), flip in any::<usize>()
        ) {
            let secret = WebhookSecret::new(key);
            let signature = sign(&secret, TS, &body);
            prop_assert_eq!(verify_ignoring_timestamp(&secret, TS, &body, signature.expose()), Ok(()));
            let mut changed = body.clone();
            if changed.is_empty() { changed.push(0) } else { let i = flip % changed.len(); changed[i] ^= 1; }
            prop_assert_eq!(
                verify_ignoring_timestamp(&secret, TS, &changed, signature.expose()),
                Err(VerifyError::Mismatch)
            );
        }
    }
}
