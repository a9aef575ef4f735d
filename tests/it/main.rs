//! The integration tests: one crate, one module per area.

mod cli;
#[cfg(feature = "aws")]
mod moto;
mod receiver;
mod schemas;
#[cfg(feature = "aws")]
mod secrets_manager;
mod seed_compat;
