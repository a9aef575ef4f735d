//! Starting the incident workflow in AWS Step Functions.
//!
//! Executions are named deterministically, so `ExecutionAlreadyExists` for that name means the
//! incident was already started (by intake, an EventBridge retry or the sweeper): success, with
//! the ARN Step Functions gives that name. Standard workflows keep names unique for 90 days
//! after an execution closes.

use crate::ports::{StartError, WorkflowStarter};
use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::ProvideErrorMetadata;
use serde_json::Value;

/// Starts executions of one state machine.
#[derive(Debug, Clone)]
pub struct StepFunctionsStarter {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctionsStarter {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// `arn:aws:states:R:A:stateMachine:M` → `arn:aws:states:R:A:execution:M:NAME`.
    pub fn execution_arn(&self, name: &str) -> String {
        format!(
            "{}:{name}",
            self.state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }
}

#[async_trait]
impl WorkflowStarter for StepFunctionsStarter {
    async fn start(&self, name: &str, input: &Value) -> Result<String, StartError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.execution_arn),
            Err(error) => match error.code() {
                Some("ExecutionAlreadyExists") => Ok(self.execution_arn(name)),
                Some(
                    code @ ("StateMachineDoesNotExist"
                    | "StateMachineDeleting"
                    | "InvalidArn"
                    | "InvalidName"
                    | "InvalidExecutionInput"
                    | "AccessDeniedException"
                    | "ValidationException"
                    | "KmsAccessDeniedException"),
                ) => Err(StartError::Failed(code.to_owned())),
                Some(code) => Err(StartError::Unavailable(code.to_owned())),
                None => Err(StartError::Unavailable(format!("{error}"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arn_follows_the_state_machine_arn() {
        let config = aws_sdk_sfn::Config::builder()
            .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
            .region(aws_sdk_sfn::config::Region::new("us-east-1"))
            .build();
        let starter = StepFunctionsStarter::new(
            Client::from_conf(config),
            "arn:aws:states:us-east-1:123456789012:stateMachine:incident",
        );
        assert_eq!(
            starter.execution_arn("NFM-abc"),
            "arn:aws:states:us-east-1:123456789012:execution:incident:NFM-abc"
        );
    }
}
