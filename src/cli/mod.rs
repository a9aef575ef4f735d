//! The `alarm-relay` command line (the `local` feature).
//!
//! Exit codes: 0 success; 1 a check that ran and failed (`verify` mismatch, an undelivered
//! demo incident); 2 bad input (unreadable file, malformed event, secret or option), with
//! one line on stderr and nothing on stdout.

mod audit;
mod debug;
mod demo;
mod receiver;
mod redrive;
mod send;
mod serve;
mod workflow;

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Turns CloudWatch alarm state changes into signed AWS DevOps Agent webhook investigations.
#[derive(Debug, Parser)]
#[command(name = "alarm-relay", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the exact webhook body bytes for an alarm event (no enrichment, no newline).
    Render {
        /// EventBridge alarm event JSON; standard input when absent.
        #[arg(long, value_name = "F")]
        event: Option<PathBuf>,
    },
    /// Print the x-amzn-event-signature for a body and timestamp.
    Sign {
        #[command(flatten)]
        secret: SecretArg,
        /// The x-amzn-event-timestamp, e.g. 2026-11-24T10:00:00.000Z.
        #[arg(long, value_name = "TS")]
        timestamp: String,
        /// The exact body bytes; standard input when absent.
        #[arg(long, value_name = "B")]
        body_file: Option<PathBuf>,
    },
    /// Check a signature: prints `valid` (exit 0) or what does not match (exit 1).
    Verify {
        #[command(flatten)]
        secret: SecretArg,
        /// The x-amzn-event-timestamp that was sent.
        #[arg(long, value_name = "TS")]
        timestamp: String,
        /// The x-amzn-event-signature that was sent.
        #[arg(long, value_name = "SIG")]
        signature: String,
        /// The exact body bytes that were sent; standard input when absent.
        #[arg(long, value_name = "B")]
        body_file: Option<PathBuf>,
    },
    /// Show recorded incidents: one incident's history, a status, or an alarm.
    Audit(audit::AuditArgs),
    /// Run a webhook receiver that checks signatures as DevOps Agent does.
    Receiver(receiver::ReceiverArgs),
    /// Run the whole pipeline on sample Network Flow Monitor alarms, through receiver faults, and audit it.
    Demo(demo::DemoArgs),
    /// Run the pipeline behind an HTTP intake (POST /events), with durable executions.
    Serve(serve::ServeArgs),
    /// POST an EventBridge event to a running `serve`.
    Send(send::SendArgs),
    /// Redrive failed executions from the state that failed and run them to their end.
    Redrive(redrive::RedriveArgs),
    /// Work with a state machine definition locally.
    #[command(subcommand)]
    Workflow(workflow::WorkflowCommand),
}

/// The webhook secret document, `{"WEBHOOK_URL": "...", "WEBHOOK_SECRET": "..."}`.
#[derive(Debug, clap::Args)]
struct SecretArg {
    /// File holding the Secrets Manager JSON document.
    #[arg(
        long = "secret-file",
        env = "ALARM_RELAY_SECRET_FILE",
        value_name = "F"
    )]
    path: PathBuf,
}

/// The episode rules (see `alarm_relay::episode`): `serve` and `demo` take them.
#[derive(Debug, Clone, clap::Args)]
struct CorrelationArgs {
    /// How long an episode stays open after its last member's transition; 0 turns
    /// correlation and flap suppression off (every ALARM opens its own investigation).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    correlation_window: u64,
    /// An episode takes no new members this long after it opened.
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    max_episode: u64,
    /// Send `action: resolved` once every member alarm recovered and stayed quiet.
    #[arg(long)]
    resolve_on_ok: bool,
    /// How long every member must stay recovered before the episode resolves [default: 300;
    /// for demo 2].
    #[arg(long, value_name = "SECONDS")]
    resolve_quiet: Option<u64>,
    /// Open investigations for alarms inside a CloudWatch mute window too.
    #[arg(long)]
    ignore_mute_rules: bool,
    /// `updated` messages one episode sends at most.
    #[arg(long, value_name = "N", default_value_t = 20)]
    max_updates_per_episode: u32,
}

impl CorrelationArgs {
    /// The rules these options give; `default_quiet` when `--resolve-quiet` is not given.
    fn config(&self, default_quiet: std::time::Duration) -> crate::config::CorrelationConfig {
        crate::config::CorrelationConfig {
            window: std::time::Duration::from_secs(self.correlation_window),
            max_episode: std::time::Duration::from_secs(self.max_episode),
            max_updates: self.max_updates_per_episode,
            resolve_on_ok: self.resolve_on_ok,
            resolve_quiet: self
                .resolve_quiet
                .map_or(default_quiet, std::time::Duration::from_secs),
            honour_mute_rules: !self.ignore_mute_rules,
        }
    }

    /// The rules of `serve` and `redrive` (the template's defaults).
    fn serve_config(&self) -> crate::config::CorrelationConfig {
        self.config(crate::config::CorrelationConfig::default().resolve_quiet)
    }
}

/// Where investigations go and how alarms' tags are read (issue 11's options): `serve` and
/// `demo` take them.
#[derive(Debug, Clone, clap::Args)]
struct RoutingArgs {
    /// Another destination (agent space): NAME=SECRET_FILE, the file a Secrets Manager-shaped
    /// document. Alarms go to it by their `alarm-relay:destination` tag or their account.
    /// Repeatable; --secret-file stays the default destination.
    #[arg(long = "destination", value_name = "NAME=SECRET_FILE", value_parser = parse_destination)]
    destinations: Vec<(String, std::path::PathBuf)>,
    /// Alarms of ACCOUNT go to destination NAME unless their tag says otherwise. Repeatable.
    #[arg(long = "account-destination", value_name = "ACCOUNT=NAME", value_parser = crate::config::parse_account_destination)]
    account_destinations: Vec<(String, String)>,
    /// The priority of alarms without an `alarm-relay:priority` tag [default: HIGH].
    #[arg(long, value_name = "P", value_parser = clap::builder::PossibleValuesParser::new(["CRITICAL", "HIGH", "MEDIUM", "LOW", "MINIMAL"]))]
    default_priority: Option<String>,
    /// The alarms the local enricher knows (settings, tags): what `aws cloudwatch
    /// describe-alarms` prints, each alarm with the `Tags` `list-tags-for-resource` prints,
    /// and Network Flow Monitor results under `TopContributorsQueries`.
    #[arg(long, value_name = "FILE")]
    alarms: Option<std::path::PathBuf>,
    /// Flows of a Network Flow Monitor alarm's top contributors put in its investigation
    /// (0: none asked).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(0..=crate::enrich::network::MAX_FLOWS as i64))]
    top_contributors: u16,
    /// Render, sign and record what would be sent, and send nothing (incidents end DRY_RUN).
    #[arg(long)]
    dry_run: bool,
}

fn parse_destination(text: &str) -> Result<(String, std::path::PathBuf), String> {
    let (name, path) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=SECRET_FILE"))?;
    if !crate::routing::valid_destination(name) {
        return Err(format!(
            "{name:?} is not a destination name (letters, digits, /_+=.@-)"
        ));
    }
    if name == crate::destination::DEFAULT {
        return Err("\"default\" is the --secret-file destination".to_owned());
    }
    Ok((name.to_owned(), std::path::PathBuf::from(path)))
}

impl RoutingArgs {
    fn delivery_mode(&self) -> crate::delivery::DeliveryMode {
        if self.dry_run {
            crate::delivery::DeliveryMode::DryRun
        } else {
            crate::delivery::DeliveryMode::Live
        }
    }

    fn routing(&self) -> crate::config::RoutingConfig {
        crate::config::RoutingConfig {
            default_priority: self
                .default_priority
                .as_deref()
                .and_then(|priority| priority.parse().ok()),
            account_destinations: self.account_destinations.iter().cloned().collect(),
        }
    }

    /// The pipeline over `config` with these options; a bad `--alarms` file or destination
    /// file is refused here, at start.
    fn open(
        &self,
        config: crate::engine::pipeline::PipelineConfig,
    ) -> Result<crate::engine::pipeline::Pipeline, CliError> {
        self.open_or(config, None)
    }

    /// [`Self::open`], the enricher reading `fallback` when `--alarms` is not given.
    fn open_or(
        &self,
        mut config: crate::engine::pipeline::PipelineConfig,
        fallback: Option<std::sync::Arc<dyn crate::ports::AlarmSource>>,
    ) -> Result<crate::engine::pipeline::Pipeline, CliError> {
        for (name, path) in &self.destinations {
            let document = read_secret_file(path)?;
            crate::secret::WebhookConfig::from_json(&document).map_err(|error| {
                CliError::input(format!("--destination {name}={}", path.display()), error)
            })?;
        }
        config.destinations = self.destinations.iter().cloned().collect();
        config.routing = self.routing();
        config.network.flows = usize::from(self.top_contributors);
        let alarms = match &self.alarms {
            Some(path) => Some(std::sync::Arc::new(
                crate::adapters::local::FileAlarmSource::load(path)
                    .map_err(|error| CliError::Input(error.to_string()))?,
            )
                as std::sync::Arc<dyn crate::ports::AlarmSource>),
            None => fallback,
        };
        let opened = match alarms {
            Some(alarms) => crate::engine::pipeline::Pipeline::open_with(&config, alarms),
            None => crate::engine::pipeline::Pipeline::open(&config),
        };
        opened.map_err(|error| CliError::Input(error.to_string()))
    }
}

/// How a command failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// Exit 2: the input cannot be used.
    #[error("{0}")]
    Input(String),
    /// Exit 1: the command ran and the check failed; the message goes to stdout.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    fn input(context: impl std::fmt::Display, error: impl std::fmt::Display) -> Self {
        Self::Input(format!("{context}: {error}"))
    }
}

/// Runs one command and maps the outcome to the exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Render { event } => debug::render(event.as_deref()),
        Command::Sign {
            secret,
            timestamp,
            body_file,
        } => debug::sign(&secret.path, &timestamp, body_file.as_deref()),
        Command::Verify {
            secret,
            timestamp,
            signature,
            body_file,
        } => debug::verify(&secret.path, &timestamp, &signature, body_file.as_deref()),
        Command::Audit(args) => audit::run(args).await,
        Command::Receiver(args) => receiver::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Send(args) => send::run(args).await,
        Command::Redrive(args) => redrive::run(args).await,
        Command::Workflow(command) => workflow::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Failed(message)) => {
            println!("{message}");
            ExitCode::from(1)
        }
        Err(CliError::Input(message)) => {
            eprintln!("alarm-relay: {message}");
            ExitCode::from(2)
        }
    }
}

impl Cli {
    /// What is logged when `RUST_LOG` does not say: warnings, but only errors for `demo`, whose
    /// injected faults would otherwise warn in the middle of its own account of them.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Demo(_) => "error",
            _ => "warn",
        }
    }
}

/// Logs to stderr, `RUST_LOG` deciding (`default_filter` when unset).
pub fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// A file's bytes, or standard input's; at most `limit` bytes are read (one more tells the
/// caller the input was larger).
fn read_input(path: Option<&Path>, limit: usize) -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let read = match path {
        Some(path) => std::fs::File::open(path)
            .and_then(|file| file.take(cap).read_to_end(&mut bytes))
            .map_err(|error| CliError::input(path.display(), error)),
        None => std::io::stdin()
            .lock()
            .take(cap)
            .read_to_end(&mut bytes)
            .map_err(|error| CliError::input("standard input", error)),
    };
    read.map(|_| bytes)
}

fn read_secret_file(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|error| CliError::input(path.display(), error))
}

/// The API token in `path` (`serve --token-file`, `send --token-file`): the file's content
/// without surrounding whitespace, printable ASCII without spaces (what a header carries),
/// not empty. Errors name the file, never its content.
fn read_token(path: &Path) -> Result<String, CliError> {
    let text = read_secret_file(path)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::Input(format!(
            "{}: the token file is empty",
            path.display()
        )));
    }
    if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(CliError::Input(format!(
            "{}: a token is printable ASCII without spaces",
            path.display()
        )));
    }
    Ok(token.to_owned())
}

fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|error| CliError::input("standard output", error))
}
