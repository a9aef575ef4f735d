use alarm_relay::cli::{self, Cli};
use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    cli::init_tracing();
    cli::run(Cli::parse()).await
}
