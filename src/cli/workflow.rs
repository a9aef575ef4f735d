//! `workflow test`: runs a state machine definition with its Task results mocked in AWS Step
//! Functions Local's MockConfigFile format and prints `{"status", "output" | "error" + "cause",
//! "history"}`. Exit 0 whenever the execution ran to its end (whatever its status: a test may
//! expect a failure), 2 when the definition, mocks or input cannot be used.

use super::{CliError, write_stdout};
use crate::engine::mock::{self, MockConfig};
use asl::StateMachine;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub(super) enum WorkflowCommand {
    /// Run one test case of a mock config against a definition.
    Test(TestArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct TestArgs {
    /// The ASL definition (JSONPath), e.g. statemachine/incident.asl.json.
    #[arg(long, value_name = "F")]
    definition: PathBuf,
    /// The MockConfigFile (StateMachines → TestCases, MockedResponses).
    #[arg(long = "mock-config", value_name = "M")]
    mock_config: PathBuf,
    /// The state machine's name under StateMachines.
    #[arg(long = "state-machine", value_name = "NAME")]
    state_machine: String,
    /// The test case's name under TestCases.
    #[arg(long, value_name = "C")]
    case: String,
    /// The execution input JSON; `{}` when absent.
    #[arg(long, value_name = "F")]
    input: Option<PathBuf>,
    /// A DefinitionSubstitution, NAME=VALUE (repeatable). The local engine's function ARNs
    /// (EnricherFunctionArn, SignerFunctionArn, RecorderFunctionArn) are preset.
    #[arg(long = "substitution", value_name = "NAME=VALUE")]
    substitutions: Vec<String>,
}

pub(super) fn run(command: WorkflowCommand) -> Result<(), CliError> {
    let WorkflowCommand::Test(args) = command;
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|error| CliError::input(path.display(), error))
    };
    let mut substitutions = crate::engine::substitutions();
    for pair in &args.substitutions {
        let (name, value) = pair.split_once('=').ok_or_else(|| {
            CliError::Input(format!("--substitution {pair:?}: expected NAME=VALUE"))
        })?;
        substitutions.insert(name.to_owned(), value.to_owned());
    }
    let machine = StateMachine::load(&read(&args.definition)?, &substitutions)
        .map_err(|error| CliError::input(args.definition.display(), error))?;
    let config = MockConfig::parse(&read(&args.mock_config)?)
        .map_err(|error| CliError::input(args.mock_config.display(), error))?;
    let case = config
        .test_case(&args.state_machine, &args.case)
        .map_err(|error| CliError::input(args.mock_config.display(), error))?;
    let input = match &args.input {
        Some(path) => serde_json::from_str(&read(path)?)
            .map_err(|error| CliError::input(path.display(), error))?,
        None => serde_json::json!({}),
    };
    let report = mock::run(&machine, &case, input, chrono::Utc::now())
        .map_err(|error| CliError::Input(format!("test case {}: {error}", args.case)))?;
    let mut text =
        serde_json::to_string_pretty(&report).map_err(|error| CliError::input("report", error))?;
    text.push('\n');
    write_stdout(text.as_bytes())
}
