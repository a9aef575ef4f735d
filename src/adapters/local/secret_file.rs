//! The webhook secret document from a local file, with the Secrets Manager JSON shape.

use crate::ports::SecretFetcher;
use crate::secret::SecretError;
use async_trait::async_trait;
use std::path::PathBuf;

/// Reads the document from a file on every fetch (the cache in front decides how often).
#[derive(Debug, Clone)]
pub struct SecretFile {
    path: PathBuf,
}

impl SecretFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

#[async_trait]
impl SecretFetcher for SecretFile {
    async fn fetch(&self) -> Result<String, SecretError> {
        tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|error| {
                SecretError::Denied(format!("cannot read {}: {error}", self.path.display()))
            })
    }
}
