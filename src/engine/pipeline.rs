//! The whole pipeline on one machine, as `serve`, `redrive` and `demo` run it: the SQLite
//! store, intake, the outbox, and the engine running the workflow with the in-process handlers.

use super::functions::LocalFunctions;
use super::{DEFINITION, Engine, substitutions};
use crate::adapters::local::{OfflineAlarmSource, SecretFile, SqliteExecutions};
use crate::adapters::{HttpTransportConfig, ReqwestTransport, SqliteStore, SystemClock};
use crate::delivery::Deliverer;
use crate::intake::Intake;
use crate::outbox::{Dispatcher, SweepReport};
use crate::ports::{Clock, IncidentStore, StoreError};
use crate::secret::{CachedSecretSource, DEFAULT_TTL};
use asl::StateMachine;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Outbox incidents started per sweep, at most.
pub const SWEEP_LIMIT: usize = 1000;

/// Where the pipeline keeps its state and finds its secret.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The SQLite file (created if need be).
    pub db: PathBuf,
    /// The Secrets Manager-shaped document `{"WEBHOOK_URL", "WEBHOOK_SECRET"}`.
    pub secret_file: PathBuf,
    /// Permit `http://` webhook URLs on loopback (local receivers only).
    pub allow_http_loopback: bool,
}

/// Why the pipeline could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("store {path}: {error}")]
    Store { path: String, error: StoreError },
    #[error("the state machine definition: {0}")]
    Definition(#[from] asl::LoadError),
    #[error("HTTP client: {0}")]
    Http(String),
}

/// Everything `serve` needs; clones share it.
#[derive(Clone)]
pub struct Pipeline {
    pub store: Arc<dyn IncidentStore>,
    pub engine: Engine,
    pub intake: Intake,
    pub dispatcher: Dispatcher,
}

impl Pipeline {
    /// Opens the store and wires the pipeline; nothing runs until [`Pipeline::recover`] or an
    /// event arrives.
    pub fn open(config: &PipelineConfig) -> Result<Self, PipelineError> {
        let sqlite = SqliteStore::open(&config.db).map_err(|error| PipelineError::Store {
            path: config.db.display().to_string(),
            error,
        })?;
        let machine = StateMachine::load(DEFINITION, &substitutions())?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store: Arc<dyn IncidentStore> = Arc::new(sqlite.clone());
        let transport = ReqwestTransport::new(HttpTransportConfig {
            allow_http_loopback: config.allow_http_loopback,
            ..HttpTransportConfig::default()
        })
        .map_err(|error| PipelineError::Http(error.to_string()))?;
        let deliverer = Deliverer::new(
            Arc::new(CachedSecretSource::new(
                SecretFile::new(&config.secret_file),
                clock.clone(),
                DEFAULT_TTL,
            )),
            Arc::new(transport),
            clock.clone(),
        );
        let functions = LocalFunctions {
            deliverer: Arc::new(deliverer),
            alarms: Arc::new(OfflineAlarmSource),
            store: store.clone(),
            clock: clock.clone(),
        };
        let engine = Engine::new(
            machine,
            SqliteExecutions::new(sqlite),
            Arc::new(functions),
            store.clone(),
            clock.clone(),
        );
        let dispatcher = Dispatcher::new(store.clone(), Arc::new(engine.clone()), clock);
        let intake = Intake::new(dispatcher.clone(), None);
        Ok(Self {
            store,
            engine,
            intake,
            dispatcher,
        })
    }

    /// After a restart: drives the executions that were in flight, records failures whose
    /// recording was cut short, then starts what intake recorded but never started. Answers
    /// (executions resumed, the sweep's report).
    pub async fn recover(&self) -> Result<(usize, SweepReport), StoreError> {
        let resumed = self.engine.resume().await?;
        self.engine.report_failures().await?;
        let swept = self.dispatcher.sweep(Duration::ZERO, SWEEP_LIMIT).await?;
        Ok((resumed, swept))
    }
}
