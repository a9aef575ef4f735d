//! `send`: POSTs an event (a file, or standard input) to a running `serve` and prints its
//! answer. Exit 0 for a 2xx answer, 1 for any other answer, 2 when nothing was answered.

use super::{CliError, read_input, write_stdout};
use crate::event::MAX_EVENT_BYTES;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(super) struct SendArgs {
    /// Where to POST, e.g. http://127.0.0.1:8080/events.
    #[arg(long, value_name = "URL")]
    to: String,
    /// The EventBridge event JSON; standard input when absent.
    #[arg(long, value_name = "F")]
    event: Option<PathBuf>,
    /// File holding `serve`'s API token (its --token-file), sent as `Authorization: Bearer`.
    #[arg(long, value_name = "F")]
    token_file: Option<PathBuf>,
}

pub(super) async fn run(args: SendArgs) -> Result<(), CliError> {
    let url = url::Url::parse(&args.to).map_err(|error| CliError::input("--to", error))?;
    // One byte past the limit is enough for the server to answer 413.
    let body = read_input(args.event.as_deref(), MAX_EVENT_BYTES + 1)?;
    let client = crate::adapters::http_client()
        .map_err(|error| CliError::Failed(format!("HTTP client unavailable: {error}")))?;
    let mut request = client
        .post(url.clone())
        .header("content-type", "application/json")
        .body(body);
    if let Some(path) = &args.token_file {
        request = request.bearer_auth(super::read_token(path)?);
    }
    let response = request
        .send()
        .await
        .map_err(|error| CliError::input(format!("POST {url}"), error))?;
    let status = response.status();
    let answer = response
        .bytes()
        .await
        .map_err(|error| CliError::input(format!("reading the answer of {url}"), error))?;
    if status.is_success() {
        write_stdout(&answer)?;
        write_stdout(b"\n")
    } else {
        Err(CliError::Failed(format!(
            "{status}: {}",
            String::from_utf8_lossy(&answer)
        )))
    }
}
