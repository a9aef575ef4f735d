use alarm_relay::cli::{self, Cli};
use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: the engine's JSON documents make many short-lived
/// allocations, and `serve` delivers about 1.3× the incidents per second with it
/// (docs/performance.md, section 1).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_tracing(cli.default_log_filter());
    cli::run(cli).await
}
