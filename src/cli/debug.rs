//! `render`, `sign` and `verify`: the tools for a 401/403 from DevOps Agent.

use super::{CliError, read_input, read_secret_file, write_stdout};
use crate::event::{AlarmEvent, MAX_EVENT_BYTES};
use crate::payload::WebhookBody;
use crate::secret::secret_from_json;
use crate::signing::{self, VerifyError, WebhookSecret};
use std::path::Path;

/// Bodies larger than this are refused by `sign`/`verify` (well over any webhook body).
const MAX_BODY_BYTES: usize = 4 * MAX_EVENT_BYTES;

pub(super) fn render(event: Option<&Path>) -> Result<(), CliError> {
    let bytes = read_input(event, MAX_EVENT_BYTES)?;
    let event = AlarmEvent::parse(&bytes).map_err(|error| CliError::input("event", error))?;
    write_stdout(WebhookBody::render(&event).as_bytes())
}

pub(super) fn sign(
    secret_file: &Path,
    timestamp: &str,
    body: Option<&Path>,
) -> Result<(), CliError> {
    let secret = load_secret(secret_file)?;
    signing::parse_timestamp(timestamp).map_err(|error| CliError::input("--timestamp", error))?;
    let body = read_body(body)?;
    let signature = signing::sign(&secret, timestamp, &body);
    write_stdout(format!("{}\n", signature.expose()).as_bytes())
}

pub(super) fn verify(
    secret_file: &Path,
    timestamp: &str,
    signature: &str,
    body: Option<&Path>,
) -> Result<(), CliError> {
    let secret = load_secret(secret_file)?;
    let body = read_body(body)?;
    match signing::verify_ignoring_timestamp(&secret, timestamp, &body, signature) {
        Ok(()) => write_stdout(b"valid\n"),
        Err(VerifyError::Mismatch) => Err(CliError::Failed(explain_mismatch(
            &secret, timestamp, &body, signature,
        ))),
        Err(error) => Err(CliError::Failed(error.to_string())),
    }
}

/// Names the usual culprits when the signature is well-formed but does not match.
fn explain_mismatch(
    secret: &WebhookSecret,
    timestamp: &str,
    body: &[u8],
    signature: &str,
) -> String {
    let matches = |secret: &WebhookSecret, body: &[u8]| {
        signing::verify_ignoring_timestamp(secret, timestamp, body, signature).is_ok()
    };
    if let Some(trimmed) = body.strip_suffix(b"\n")
        && matches(secret, trimmed.strip_suffix(b"\r").unwrap_or(trimmed))
    {
        return "signature does not match this body, but matches it without its trailing newline: \
                the file has a newline the sender did not sign"
            .to_owned();
    }
    VerifyError::Mismatch.to_string()
}

fn load_secret(path: &Path) -> Result<WebhookSecret, CliError> {
    secret_from_json(&read_secret_file(path)?)
        .map_err(|error| CliError::input(path.display(), error))
}

fn read_body(path: Option<&Path>) -> Result<Vec<u8>, CliError> {
    let body = read_input(path, MAX_BODY_BYTES)?;
    if body.len() > MAX_BODY_BYTES {
        return Err(CliError::Input(format!(
            "body is over {MAX_BODY_BYTES} bytes, larger than any webhook body"
        )));
    }
    Ok(body)
}
