//! The whole pipeline on one machine, as `serve`, `redrive` and `demo` run it: the SQLite
//! store, intake, the outbox, and the engine running the workflow with the in-process handlers.

use super::functions::LocalFunctions;
use super::{DEFINITION, Engine, substitutions};
use crate::adapters::local::{OfflineAlarmSource, SecretFile, SqliteExecutions};
use crate::adapters::{HttpTransportConfig, ReqwestTransport, SqliteStore, SystemClock};
use crate::config::CorrelationConfig;
use crate::config::RoutingConfig;
use crate::delivery::{Deliverer, DeliveryMode};
use crate::destination::NamedDestinations;
use crate::enrich::network::NetworkSettings;
use crate::intake::Intake;
use crate::outbox::{Dispatcher, SweepReport};
use crate::ports::{AlarmSource, Clock, IncidentStore, SecretSource, StoreError};
use crate::secret::{CachedSecretSource, DEFAULT_TTL};
use asl::StateMachine;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
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
    /// The episode rules (see [`crate::episode`]).
    pub correlation: CorrelationConfig,
    /// `DryRun`: render, sign and record what would be sent, send nothing.
    pub delivery_mode: DeliveryMode,
    /// Destinations besides the default: name → its secret document's file.
    pub destinations: BTreeMap<String, PathBuf>,
    /// Default priority and destinations by account.
    pub routing: RoutingConfig,
    /// What the Enrich state asks Network Flow Monitor.
    pub network: NetworkSettings,
}

/// Why the pipeline could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(
        "{path} is in use by another alarm-relay process (serve, demo or redrive); with serve running, redrive through POST /incidents/{{id}}/redrive"
    )]
    InUse { path: String },
    #[error("lock file {path}: {error}")]
    Lock { path: String, error: std::io::Error },
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
    /// The exclusive lock on `<db>.lock`, held for as long as the pipeline lives: one process
    /// drives a file's executions (the OS releases it when the process dies, even by SIGKILL).
    _lock: Arc<File>,
}

/// Takes the exclusive lock on `<db>.lock` without waiting.
fn lock(db: &Path) -> Result<File, PipelineError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let failed = |error| PipelineError::Lock {
        path: path.display().to_string(),
        error,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(failed)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(PipelineError::InUse {
            path: db.display().to_string(),
        }),
        Err(TryLockError::Error(error)) => Err(failed(error)),
    }
}

impl Pipeline {
    /// Locks the store's file for this process, opens it and wires the pipeline; nothing runs
    /// until [`Pipeline::recover`] or an event arrives. A file another process has open this
    /// way is [`PipelineError::InUse`].
    pub fn open(config: &PipelineConfig) -> Result<Self, PipelineError> {
        Self::open_with(config, Arc::new(OfflineAlarmSource))
    }

    /// [`Pipeline::open`] with the enricher reading `alarms` instead of the offline source.
    pub fn open_with(
        config: &PipelineConfig,
        alarms: Arc<dyn AlarmSource>,
    ) -> Result<Self, PipelineError> {
        let lock = lock(&config.db)?;
        let sqlite = SqliteStore::open(&config.db).map_err(|error| PipelineError::Store {
            path: config.db.display().to_string(),
            error,
        })?;
        let machine = StateMachine::load(DEFINITION, &substitutions())?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store: Arc<dyn IncidentStore> = Arc::new(sqlite.clone());
        let deliverer = Self::deliverer(config, clock.clone())?;
        let functions = LocalFunctions {
            deliverer: Arc::new(deliverer),
            alarms,
            store: store.clone(),
            clock: clock.clone(),
            correlation: config.correlation,
            routing: config.routing.clone(),
            network: config.network.clone(),
        };
        let engine = Engine::new(
            machine,
            SqliteExecutions::new(sqlite),
            Arc::new(functions),
            store.clone(),
            clock.clone(),
        );
        let dispatcher = Dispatcher::new(store.clone(), Arc::new(engine.clone()), clock);
        let intake =
            Intake::new(dispatcher.clone(), None).starting_recoveries(config.correlation.enabled());
        Ok(Self {
            store,
            engine,
            intake,
            dispatcher,
            _lock: Arc::new(lock),
        })
    }

    /// The deliverer of a pipeline with `config`: its transport, its destinations' secret
    /// files (each cached for [`DEFAULT_TTL`]) and its delivery mode.
    pub fn deliverer(
        config: &PipelineConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Deliverer, PipelineError> {
        let transport = ReqwestTransport::new(HttpTransportConfig {
            allow_http_loopback: config.allow_http_loopback,
            ..HttpTransportConfig::default()
        })
        .map_err(|error| PipelineError::Http(error.to_string()))?;
        let file = |path: &Path| -> Arc<dyn SecretSource> {
            Arc::new(CachedSecretSource::new(
                SecretFile::new(path),
                clock.clone(),
                DEFAULT_TTL,
            ))
        };
        let named = config
            .destinations
            .iter()
            .map(|(name, path)| (name.clone(), file(path)))
            .collect();
        let destinations = NamedDestinations::fixed(file(&config.secret_file), named);
        Ok(
            Deliverer::new(file(&config.secret_file), Arc::new(transport), clock)
                .with_destinations(Arc::new(destinations))
                .with_mode(config.delivery_mode),
        )
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
