//! AWS adapters (the `aws` feature), used by the Lambda binaries.

mod secrets_manager;

pub use secrets_manager::SecretsManagerFetcher;
