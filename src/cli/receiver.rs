//! `receiver`: the local DevOps Agent stand-in, until interrupted.

use super::{CliError, read_secret_file};
use crate::receiver::{FaultPlan, Receiver, ReceiverConfig};
use crate::secret::{api_key_from_text, secret_from_json};
use crate::signing::{TOLERANCE_IN_SECONDS, WebhookSecret};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(super) struct ReceiverArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// File holding the Secrets Manager JSON document (its WEBHOOK_SECRET checks signatures);
    /// not needed with --api-key-file.
    #[arg(
        long = "secret-file",
        env = "ALARM_RELAY_SECRET_FILE",
        value_name = "F",
        required_unless_present = "api_key_file"
    )]
    secret_file: Option<PathBuf>,
    /// JSON-lines file that gets one line per request.
    #[arg(long, value_name = "OUT.jsonl")]
    record: PathBuf,
    /// Faults for the next requests, in order: STATUS, STATUS:retry-after=VALUE, delay=MS, drop.
    #[arg(long, value_name = "SPEC", default_value = "")]
    faults: String,
    /// How far x-amzn-event-timestamp may stray from this machine's clock.
    #[arg(long, value_name = "SECONDS", default_value_t = TOLERANCE_IN_SECONDS)]
    tolerance_seconds: u64,
    /// Expect `Authorization: Bearer <key>` (an API-key webhook) instead of a signature: a
    /// file holding the key, or a secret document with `WEBHOOK_API_KEY`.
    #[arg(long, value_name = "F")]
    api_key_file: Option<PathBuf>,
}

pub(super) async fn run(args: ReceiverArgs) -> Result<(), CliError> {
    let (secret, api_key) = match (&args.api_key_file, &args.secret_file) {
        (Some(path), _) => (
            // Never consulted: an API-key receiver checks the Authorization header only.
            WebhookSecret::new(String::new()),
            Some(
                api_key_from_text(&read_secret_file(path)?)
                    .map_err(|error| CliError::input(path.display(), error))?,
            ),
        ),
        (None, Some(path)) => (
            secret_from_json(&read_secret_file(path)?)
                .map_err(|error| CliError::input(path.display(), error))?,
            None,
        ),
        (None, None) => {
            return Err(CliError::Input(
                "--secret-file or --api-key-file is required".to_owned(),
            ));
        }
    };
    let faults =
        FaultPlan::parse(&args.faults).map_err(|error| CliError::input("--faults", error))?;
    let listen = tokio::net::lookup_host(&args.listen)
        .await
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| CliError::Input(format!("--listen {:?} is not a host:port", args.listen)))?;
    let config = ReceiverConfig {
        api_key,
        secret,
        record_path: args.record.clone(),
        faults,
        tolerance: Duration::from_secs(args.tolerance_seconds),
    };
    let receiver = Receiver::start(listen, config)
        .await
        .map_err(|error| CliError::input(format!("receiver on {listen}"), error))?;
    println!("receiver listening on {}", receiver.url());
    shutdown_signal().await;
    receiver.stop().await;
    Ok(())
}

pub(super) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
