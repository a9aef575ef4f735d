//! The integration tests: one crate, one module per area.

mod cli;
mod destinations;
mod engine;
#[cfg(feature = "aws")]
mod enrich;
mod episodes;
#[cfg(feature = "aws")]
mod faults;
mod intake;
#[cfg(feature = "aws")]
mod intake_aws;
#[cfg(feature = "aws")]
mod lambda_api;
mod leaks;
#[cfg(feature = "sqlite")]
mod malformed;
#[cfg(feature = "aws")]
mod moto;
#[cfg(feature = "aws")]
mod network_flow_monitor;
mod receiver;
mod schemas;
#[cfg(feature = "aws")]
mod secrets_manager;
mod seed_compat;
mod serve;
mod serve_process;
mod serve_security;
mod store_contract;
#[cfg(feature = "aws")]
mod store_dynamodb;
mod workflow;
#[cfg(feature = "aws")]
mod workflow_local;
#[cfg(feature = "aws")]
mod workflow_moto;
