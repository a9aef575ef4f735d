//! The local engine's durable workflow executions, in the incident store's SQLite file.
//!
//! One row per execution in the table `executions` (migration 2 of the store): the whole
//! [`asl::Execution`] as JSON (its state, pending retry timer and history), plus the columns
//! the engine queries: the unique `name` (what makes a start idempotent), `status` and the
//! canonical `input`. Every state transition rewrites the row in one transaction on the store's
//! connection (`synchronous=FULL`), so a process killed at any moment finds each execution as
//! of its last transition and resumes it from there.

use crate::adapters::SqliteStore;
use crate::adapters::sqlite_store::sql_error;
use crate::incident::timestamp;
use crate::ports::StoreError;
use asl::{Execution, Status};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

const INSERT: &str =
    "INSERT INTO executions (execution_arn, name, status, input, updated_at, execution)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO NOTHING";
const UPDATE: &str =
    "UPDATE executions SET status = ?2, updated_at = ?3, execution = ?4 WHERE execution_arn = ?1";
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

/// The executions table of a [`SqliteStore`]'s file, sharing its connection.
#[derive(Debug, Clone)]
pub struct SqliteExecutions {
    store: SqliteStore,
}

impl SqliteExecutions {
    pub fn new(store: SqliteStore) -> Self {
        Self { store }
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

    /// Replaces the stored execution with `execution` (same ARN), changed `at`.
    pub async fn save(&self, execution: &Execution, at: DateTime<Utc>) -> Result<(), StoreError> {
        let row = Row::new(execution, at)?;
        self.store
            .with_connection(move |connection| {
                let doing = format!("save execution {}", row.name);
                let updated = connection
                    .prepare_cached(UPDATE)
                    .and_then(|mut update| {
                        update.execute(params![row.arn, row.status, row.updated_at, row.json])
                    })
                    .map_err(sql_error(&doing))?;
                if updated == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Failed(format!("{doing}: it is not stored")))
                }
            })
            .await
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

/// The columns of one row.
struct Row {
    arn: String,
    name: String,
    status: String,
    updated_at: String,
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
