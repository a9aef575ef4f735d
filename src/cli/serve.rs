//! `serve`: the whole pipeline behind an HTTP intake, until interrupted. Executions in flight
//! when it stops (or is killed) resume at the next start.

use super::CliError;
use crate::config::CorrelationConfig;
use crate::delivery::DeliveryMode;
use crate::engine::pipeline::{Pipeline, PipelineConfig, SWEEP_LIMIT};
use crate::secret::ApiKey;
use crate::server::{Access, Limits};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often, and after how long, incidents recorded but not started are started again.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// The SQLite file holding incidents and executions (created if missing).
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    #[command(flatten)]
    secret: super::SecretArg,
    /// Permit an http:// WEBHOOK_URL on loopback (a local receiver).
    #[arg(long)]
    allow_http_loopback: bool,
    /// File holding the API token: every request but GET /healthz must then carry
    /// `Authorization: Bearer <token>`. Required to listen on a non-loopback address.
    #[arg(long, value_name = "F", conflicts_with = "insecure_no_auth")]
    token_file: Option<PathBuf>,
    /// Listen on a non-loopback address without a token: anyone who reaches the port may post
    /// events and redrive incidents.
    #[arg(long)]
    insecure_no_auth: bool,
    #[command(flatten)]
    correlation: super::CorrelationArgs,
    #[command(flatten)]
    routing: super::RoutingArgs,
}

pub(super) async fn run(args: ServeArgs) -> Result<(), CliError> {
    let access = access(&args)?;
    let pipeline = args.routing.open(config(
        args.db,
        args.secret.path,
        args.allow_http_loopback,
        args.correlation.serve_config(),
        args.routing.delivery_mode(),
    ))?;
    let (resumed, swept) = pipeline
        .recover()
        .await
        .map_err(|error| CliError::input("recovering in-flight work", error))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|error| CliError::input(format!("--listen {}", args.listen), error))?;
    let address = listener
        .local_addr()
        .map_err(|error| CliError::input("--listen", error))?;
    if matches!(access, Access::Open) && !address.ip().is_loopback() {
        eprintln!(
            "warning: --insecure-no-auth: anyone who reaches {address} may post events and redrive incidents"
        );
    }
    println!(
        "serving on http://{address} (resumed {resumed} execution(s), started {} recorded incident(s))",
        swept.started
    );
    let sweeper = tokio::spawn(sweep_forever(pipeline.clone()));
    let limits = Limits::default();
    let router = crate::server::router_with(pipeline, access, limits.body_timeout);
    crate::server::serve(listener, router, limits, super::receiver::shutdown_signal()).await;
    sweeper.abort();
    Ok(())
}

/// Who may call this serve: the holders of `--token-file`'s token; else anyone, on loopback or
/// with `--insecure-no-auth` (refused otherwise, before anything is opened).
fn access(args: &ServeArgs) -> Result<Access, CliError> {
    if let Some(path) = &args.token_file {
        return Ok(Access::Token(Arc::new(ApiKey::new(super::read_token(
            path,
        )?))));
    }
    if !args.listen.ip().is_loopback() && !args.insecure_no_auth {
        return Err(CliError::Input(format!(
            "--listen {}: not a loopback address, and no --token-file: anyone who reaches the port could post events and redrive incidents (give --token-file F, or --insecure-no-auth to accept that)",
            args.listen
        )));
    }
    Ok(Access::Open)
}

/// The pipeline's settings over `db` and `secret_file` (the default destination only).
pub(super) fn config(
    db: PathBuf,
    secret_file: PathBuf,
    allow_http_loopback: bool,
    correlation: CorrelationConfig,
    delivery_mode: DeliveryMode,
) -> PipelineConfig {
    PipelineConfig {
        db,
        secret_file,
        allow_http_loopback,
        correlation,
        delivery_mode,
        destinations: Default::default(),
        routing: Default::default(),
        network: Default::default(),
    }
}

/// Wires the pipeline over `db` and `secret_file`.
pub(super) fn open(config: PipelineConfig) -> Result<Pipeline, CliError> {
    Pipeline::open(&config).map_err(|error| CliError::Input(error.to_string()))
}

/// Now and then: starts what intake recorded but could not start (the store was busy), and
/// takes up RUNNING executions no driver has (one that could not reload its execution).
async fn sweep_forever(pipeline: Pipeline) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(error) = pipeline.dispatcher.sweep(SWEEP_EVERY, SWEEP_LIMIT).await {
            tracing::warn!(%error, "outbox sweep failed; trying again later");
        }
        if let Err(error) = pipeline.engine.resume().await {
            tracing::warn!(%error, "resuming executions failed; trying again later");
        }
    }
}
