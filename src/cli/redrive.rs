//! `redrive`: restarts failed executions from the state that failed (Step Functions'
//! RedriveExecution semantics, the definition's own retry waits), runs them to their end and
//! prints each incident's outcome. Exit 0 when every one was delivered, 1 otherwise.

use super::CliError;
use crate::event::IncidentId;
use crate::incident::IncidentStatus;
use std::path::PathBuf;

/// Most failed incidents `--all-failed` takes in one run.
const ALL_FAILED_LIMIT: usize = 10_000;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["incident", "all_failed"])))]
pub(super) struct RedriveArgs {
    /// The SQLite file `serve` or `demo` wrote.
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    #[command(flatten)]
    secret: super::SecretArg,
    /// The incident whose failed execution to redrive.
    #[arg(long, value_name = "ID")]
    incident: Option<String>,
    /// Every FAILED incident.
    #[arg(long)]
    all_failed: bool,
    /// Permit an http:// WEBHOOK_URL on loopback (a local receiver).
    #[arg(long)]
    allow_http_loopback: bool,
    /// The episode rules a redriven Correlate state applies (give serve's).
    #[command(flatten)]
    correlation: super::CorrelationArgs,
}

pub(super) async fn run(args: RedriveArgs) -> Result<(), CliError> {
    if !args.db.exists() {
        return Err(CliError::Input(format!(
            "no database at {}",
            args.db.display()
        )));
    }
    let pipeline = super::serve::open(super::serve::config(
        args.db,
        args.secret.path,
        args.allow_http_loopback,
        args.correlation.serve_config(),
        crate::delivery::DeliveryMode::Live,
    ))?;
    let store = &pipeline.store;
    let failed = |error| CliError::input("store", error);
    let targets: Vec<IncidentId> = match &args.incident {
        Some(id) => vec![IncidentId::from_raw(id.as_str())],
        None => store
            .by_status(IncidentStatus::Failed, None, ALL_FAILED_LIMIT)
            .await
            .map_err(failed)?
            .into_iter()
            .map(|incident| incident.incident_id)
            .collect(),
    };
    if targets.is_empty() {
        println!("no failed incidents");
        return Ok(());
    }
    for id in &targets {
        let incident = store
            .get(id)
            .await
            .map_err(failed)?
            .ok_or_else(|| CliError::Failed(format!("no incident {id}")))?;
        let outcome = match &incident.execution_arn {
            Some(arn) => pipeline
                .engine
                .redrive(arn)
                .await
                .map_err(|e| e.to_string()),
            None => Err(format!("it has no execution (status {})", incident.status)),
        };
        match outcome {
            Ok(status) => println!(
                "{id}: redriven, execution {}",
                serde_json::json!(status).as_str().unwrap_or_default()
            ),
            Err(reason) => println!("{id}: not redriven: {reason}"),
        }
    }
    pipeline.engine.wait_idle().await;
    let mut undelivered = Vec::new();
    for id in &targets {
        let status = store
            .get(id)
            .await
            .map_err(failed)?
            .map(|incident| incident.status);
        let status = status.map_or_else(|| "UNKNOWN".to_owned(), |status| status.to_string());
        println!("{id}: {status}");
        if status != IncidentStatus::Delivered.as_str() {
            undelivered.push(id.to_string());
        }
    }
    if undelivered.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "not delivered: {}",
            undelivered.join(", ")
        )))
    }
}
