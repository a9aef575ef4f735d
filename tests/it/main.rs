//! The integration tests: one crate, one module per area.

mod cli;
mod receiver;
mod schemas;
mod seed_compat;
