//! The local engine's durable workflow executions, in the incident store's SQLite file.
//!
//! One row per execution in the table `executions` (migration 2 of the store): the whole
//! [`asl::Execution`] as JSON (its state, pending retry timer and history), plus the columns
//! the engine queries: the unique `name` (what makes a start idempotent), `status` and the
//! canonical `input`, and `transitions`, the length of its history. Every state transition
//! rewrites the row in one transaction on the store's connection (`synchronous=FULL`), so a
//! process killed at any moment finds each execution as of its last transition and resumes it
//! from there. A save only replaces a row with fewer transitions: a stale copy of an execution
//! (driven by another process, or by a driver that lost a race) can never overwrite its
//! progress, and learns that it is stale.
//!
//! Saves are group-committed: one writer task takes the saves that are waiting and commits
//! them in one transaction (one sync of the WAL), so many executions moving at once cost one
//! disk sync per batch rather than one each. A lone save is committed at once: batching adds
//! no wait. Each save still returns only once its transaction is durable.

use crate::adapters::SqliteStore;
use crate::adapters::sqlite_store::sql_error;
use crate::incident::timestamp;
use crate::ports::StoreError;
use asl::{Execution, Status};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

const INSERT: &str = "INSERT INTO executions
    (execution_arn, name, status, input, updated_at, transitions, execution)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO NOTHING";
const UPDATE: &str = "UPDATE executions
    SET status = ?2, updated_at = ?3, transitions = ?4, execution = ?5
    WHERE execution_arn = ?1 AND transitions < ?4";
const SELECT_BY_ARN: &str = "SELECT execution FROM executions WHERE execution_arn = ?1";
const SELECT_BY_NAME: &str = "SELECT input, execution FROM executions WHERE name = ?1";
const SELECT_BY_STATUS: &str = "SELECT execution FROM executions WHERE status = ?1
    ORDER BY updated_at ASC, execution_arn ASC LIMIT ?2";

/// What [`SqliteExecutions::insert`] found.
#[derive(Debug)]
pub enum Inserted {
    /// The execution is new and stored.
    New,
    /// An execution of that name and input exists already (running or finished): this one.
    Existing(Box<Execution>),
    /// An execution of that name exists with another input (`ExecutionAlreadyExists`).
    Conflict,
}

/// Saves committed in one transaction, at most.
const MAX_BATCH: usize = 256;

/// A save waiting for the writer, and where its outcome goes.
type PendingSave = (Row, oneshot::Sender<Result<bool, StoreError>>);

/// The executions table of a [`SqliteStore`]'s file, sharing its connection. Clones share the
/// writer.
#[derive(Debug, Clone)]
pub struct SqliteExecutions {
    store: SqliteStore,
    /// The group-commit writer, started by the first save (on the runtime that makes it).
    writer: Arc<OnceLock<mpsc::UnboundedSender<PendingSave>>>,
}

impl SqliteExecutions {
    pub fn new(store: SqliteStore) -> Self {
        Self {
            store,
            writer: Arc::new(OnceLock::new()),
        }
    }

    /// Stores a new execution unless one of the same name exists; `input` is its canonical JSON
    /// input, compared with the existing one's as Step Functions compares a repeated start.
    pub async fn insert(
        &self,
        execution: &Execution,
        input: &str,
        at: DateTime<Utc>,
    ) -> Result<Inserted, StoreError> {
        let row = Row::new(execution, at)?;
        let input = input.to_owned();
        self.store
            .with_connection(move |connection| {
                let doing = format!("start execution {}", row.name);
                let transaction = connection
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sql_error(&doing))?;
                let inserted = transaction
                    .prepare_cached(INSERT)
                    .and_then(|mut insert| {
                        insert.execute(params![
                            row.arn,
                            row.name,
                            row.status,
                            input,
                            row.updated_at,
                            row.transitions,
                            row.json
                        ])
                    })
                    .map_err(sql_error(&doing))?;
                let outcome = if inserted == 1 {
                    Inserted::New
                } else {
                    let (existing_input, existing): (String, String) = transaction
                        .query_row(SELECT_BY_NAME, params![row.name], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .map_err(sql_error(&doing))?;
                    if existing_input == input {
                        Inserted::Existing(Box::new(parse(&row.name, &existing)?))
                    } else {
                        Inserted::Conflict
                    }
                };
                transaction.commit().map_err(sql_error(&doing))?;
                Ok(outcome)
            })
            .await
    }

    /// Replaces the stored execution with `execution` (same ARN), changed `at`, if the stored
    /// one has fewer transitions. Answers whether it did: `false` means the stored execution
    /// has moved on (or was never inserted) and `execution` is a stale copy.
    pub async fn save(&self, execution: &Execution, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let row = Row::new(execution, at)?;
        let writer = self.writer.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(write_batches(self.store.clone(), receiver));
            sender
        });
        let (reply, outcome) = oneshot::channel();
        let gone = || StoreError::Failed("the execution writer has stopped".to_owned());
        writer.send((row, reply)).map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }

    /// The execution with this ARN.
    pub async fn get(&self, execution_arn: &str) -> Result<Option<Execution>, StoreError> {
        let arn = execution_arn.to_owned();
        self.store
            .with_connection(move |connection| {
                let doing = format!("read execution {arn}");
                let json: Option<String> = connection
                    .query_row(SELECT_BY_ARN, params![arn], |row| row.get(0))
                    .optional()
                    .map_err(sql_error(&doing))?;
                json.map(|json| parse(&arn, &json)).transpose()
            })
            .await
    }

    /// Executions in `status`, least recently changed first, at most `limit`.
    pub async fn with_status(
        &self,
        status: Status,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        let status = status_text(status)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.store
            .with_connection(move |connection| {
                let doing = format!("list {status} executions");
                let mut select = connection
                    .prepare_cached(SELECT_BY_STATUS)
                    .map_err(sql_error(&doing))?;
                let rows = select
                    .query_map(params![status, limit], |row| row.get::<_, String>(0))
                    .map_err(sql_error(&doing))?;
                rows.map(|json| {
                    json.map_err(sql_error(&doing))
                        .and_then(|json| parse(&doing, &json))
                })
                .collect()
            })
            .await
    }
}

/// The writer: each turn takes every save waiting (up to [`MAX_BATCH`]) and commits them in
/// one transaction. Ends when every [`SqliteExecutions`] is dropped.
async fn write_batches(store: SqliteStore, mut pending: mpsc::UnboundedReceiver<PendingSave>) {
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(save) => batch.push(save),
                Err(_) => break,
            }
        }
        let (rows, replies): (Vec<Row>, Vec<_>) = batch.into_iter().unzip();
        let outcome = store
            .with_connection(move |connection| {
                let doing = format!("save {} execution(s)", rows.len());
                let transaction = connection
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sql_error(&doing))?;
                let mut saved = Vec::with_capacity(rows.len());
                {
                    let mut update = transaction
                        .prepare_cached(UPDATE)
                        .map_err(sql_error(&doing))?;
                    for row in &rows {
                        let updated = update
                            .execute(params![
                                row.arn,
                                row.status,
                                row.updated_at,
                                row.transitions,
                                row.json
                            ])
                            .map_err(sql_error(&format!("save execution {}", row.name)))?;
                        saved.push(updated == 1);
                    }
                }
                transaction.commit().map_err(sql_error(&doing))?;
                Ok(saved)
            })
            .await;
        match outcome {
            Ok(saved) => {
                for (reply, saved) in replies.into_iter().zip(saved) {
                    let _ = reply.send(Ok(saved));
                }
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// The columns of one row.
struct Row {
    arn: String,
    name: String,
    status: String,
    updated_at: String,
    transitions: i64,
    json: String,
}

impl Row {
    fn new(execution: &Execution, at: DateTime<Utc>) -> Result<Self, StoreError> {
        let info = execution.info();
        let json = serde_json::to_string(execution).map_err(|error| {
            StoreError::Failed(format!("serialize execution {}: {error}", info.name))
        })?;
        Ok(Self {
            arn: info.execution_arn.clone(),
            name: info.name.clone(),
            status: status_text(execution.status())?,
            updated_at: timestamp(at),
            transitions: i64::try_from(execution.history().len()).unwrap_or(i64::MAX),
            json,
        })
    }
}

/// `RUNNING`, `FAILED`…: the status as Step Functions spells it.
fn status_text(status: Status) -> Result<String, StoreError> {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::String(text)) => Ok(text),
        _ => Err(StoreError::Failed(format!(
            "execution status {status:?} has no name"
        ))),
    }
}

fn parse(what: &str, json: &str) -> Result<Execution, StoreError> {
    serde_json::from_str(json).map_err(|error| {
        StoreError::Failed(format!(
            "the stored execution {what} cannot be read: {error}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use asl::{Env, ExecutionInfo, StateMachine};
    use serde_json::json;
    use std::collections::BTreeMap;

    /// A clock that stands still unless moved.
    struct TestEnv(DateTime<Utc>);

    impl Env for TestEnv {
        fn now(&mut self) -> DateTime<Utc> {
            self.0
        }

        fn random(&mut self) -> f64 {
            0.5
        }
    }

    fn env() -> TestEnv {
        TestEnv(DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default())
    }

    fn machine() -> StateMachine {
        let definition = json!({"StartAt": "Wait", "States": {
            "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
            "Done": {"Type": "Succeed"}}});
        StateMachine::load(&definition.to_string(), &BTreeMap::new()).unwrap()
    }

    fn started(machine: &StateMachine, name: &str) -> Execution {
        let info = ExecutionInfo {
            execution_arn: format!("arn:aws:states:local:000000000000:execution:m:{name}"),
            name: name.to_owned(),
            state_machine_arn: "arn:aws:states:local:000000000000:stateMachine:m".to_owned(),
            state_machine_name: "m".to_owned(),
            role_arn: "arn:aws:iam::000000000000:role/m".to_owned(),
        };
        Execution::start(machine, info, json!({}), &mut env())
    }

    #[tokio::test]
    async fn starts_are_idempotent_by_name_and_stale_copies_never_overwrite_progress() {
        let executions = SqliteExecutions::new(SqliteStore::open_in_memory().unwrap());
        let machine = machine();
        let at = env().now();
        let execution = started(&machine, "one");
        assert!(matches!(
            executions.insert(&execution, "{}", at).await.unwrap(),
            Inserted::New
        ));
        assert!(matches!(
            executions.insert(&execution, "{}", at).await.unwrap(),
            Inserted::Existing(existing) if *existing == execution
        ));
        assert!(matches!(
            executions
                .insert(&execution, r#"{"other":1}"#, at)
                .await
                .unwrap(),
            Inserted::Conflict
        ));

        let stale = execution.clone();
        let mut ahead = execution;
        let mut later = TestEnv(at + chrono::TimeDelta::seconds(1));
        ahead.wake(&machine, &mut later).unwrap();
        assert_eq!(ahead.status(), Status::Succeeded);
        assert!(executions.save(&ahead, at).await.unwrap());
        assert!(
            !executions.save(&stale, at).await.unwrap(),
            "a stale copy is refused"
        );
        assert_eq!(
            executions.get(&ahead.info().execution_arn).await.unwrap(),
            Some(ahead.clone())
        );
        assert_eq!(
            executions.with_status(Status::Succeeded, 10).await.unwrap(),
            [ahead]
        );
        assert!(
            executions
                .with_status(Status::Running, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_saves_are_committed_together_each_with_its_own_outcome() {
        let executions = SqliteExecutions::new(SqliteStore::open_in_memory().unwrap());
        let machine = machine();
        let at = env().now();
        let later = at + chrono::TimeDelta::seconds(1);
        let mut saves = Vec::new();
        for n in 0..50 {
            let mut execution = started(&machine, &format!("e{n}"));
            executions.insert(&execution, "{}", at).await.unwrap();
            let executions = executions.clone();
            // Every other one is a stale copy (not moved on), which is refused.
            if n % 2 == 0 {
                execution.wake(&machine, &mut TestEnv(later)).unwrap();
            }
            saves.push(tokio::spawn(async move {
                executions.save(&execution, later).await.unwrap()
            }));
        }
        let mut outcomes = Vec::new();
        for save in saves {
            outcomes.push(save.await.unwrap());
        }
        let expected: Vec<bool> = (0..50).map(|n| n % 2 == 0).collect();
        assert_eq!(outcomes, expected);
        assert_eq!(
            executions
                .with_status(Status::Succeeded, 100)
                .await
                .unwrap()
                .len(),
            25
        );
    }
}
