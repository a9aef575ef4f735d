//! The local engine's durable workflow executions, in the incident store's SQLite file.
//!
//! One row per execution in the table `executions` (migration 2 of the store): the
//! [`asl::Execution`] without its history as JSON (its state and pending retry timer), plus
//! the columns the engine queries: the unique `name` (what makes a start idempotent), `status`
//! and the SHA-256 of the canonical `input` (a repeated start must repeat it), and `transitions`, the length of its history. The history is
//! kept apart (migration 4), so that a transition writes only what it added:
//!
//! - while the execution runs, its history is appended to `execution_events`, once: a save
//!   inserts the events the stored execution lacks, together in one row (a BLOB: their JSON
//!   array, deflated; a TEXT row is one event, as builds before wrote them and as a save that
//!   overlaps the stored history still does), and rewrites the small execution document,
//!   instead of rewriting the whole history at every transition (which made the file grow
//!   with the square of the history's length). One deflated row per save, rather than a row of
//!   text per event, is about a sixth of the bytes (docs/performance.md §2): fewer pages for
//!   the store's one connection to write at each commit;
//! - when it ends, the whole execution, history included, is compacted into the row's
//!   `history` column as one deflate-compressed JSON document (the events and the head repeat
//!   the incident's payload state after state, and compress ~6×; the `execution` column is
//!   left empty) and its event rows are deleted, their pages reused by the next executions.
//!   A redrive moves it back to a head and rows.
//!
//! Every save is one savepoint in a transaction of the store's connection thread
//! (`synchronous=FULL`, group-committed with whatever else is waiting: one disk sync for many
//! executions moving at once), answered once committed, so a process killed at any moment
//! finds each execution as of its last transition and resumes it from there. A save only
//! applies to a stored execution with fewer transitions: a stale copy of an execution (driven
//! by another process, or by a driver that lost a race) can never overwrite its progress, and
//! learns that it is stale.

use crate::adapters::SqliteStore;
use crate::adapters::sqlite_store::packed::{deflate, deflate_fast, inflate};
use crate::adapters::sqlite_store::sql_error;
use crate::incident::{sha256_hex, timestamp};
use crate::ports::StoreError;
use asl::{Execution, Status};
use chrono::{DateTime, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const INSERT: &str = "INSERT INTO executions
    (execution_arn, name, status, input, updated_at, transitions, execution, history)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (name) DO NOTHING";
const SELECT_STORED: &str =
    "SELECT transitions, history IS NOT NULL FROM executions WHERE execution_arn = ?1";
const UPDATE: &str = "UPDATE executions
    SET status = ?2, updated_at = ?3, transitions = ?4, execution = ?5, history = ?6
    WHERE execution_arn = ?1";
const APPEND_EVENT: &str =
    "INSERT INTO execution_events (execution_arn, id, event) VALUES (?1, ?2, ?3)";
const DELETE_EVENTS: &str = "DELETE FROM execution_events WHERE execution_arn = ?1";
const SELECT_EVENTS: &str =
    "SELECT event FROM execution_events WHERE execution_arn = ?1 ORDER BY id";
const SELECT_BY_ARN: &str = "SELECT execution, history FROM executions WHERE execution_arn = ?1";
const SELECT_BY_NAME: &str =
    "SELECT input, execution_arn, execution, history FROM executions WHERE name = ?1";
const SELECT_BY_STATUS: &str = "SELECT execution_arn, execution, history FROM executions
    WHERE status = ?1 ORDER BY updated_at ASC, execution_arn ASC LIMIT ?2";

/// The first byte of an `execution_events` BLOB: the raw deflate of a JSON array of events.
const SEGMENT_DEFLATED: u8 = 2;

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

/// How many history events of each running execution are stored as rows, as far as this
/// process knows: a save serializes only the events after those. Only a hint (noted before
/// its batch commits, so it can run ahead of the file if that commit fails): each save checks
/// it against the stored count, and a save without it serializes the whole history.
type Known = Arc<Mutex<HashMap<String, usize>>>;

/// The executions table of a [`SqliteStore`]'s file, sharing its connection.
#[derive(Debug, Clone)]
pub struct SqliteExecutions {
    store: SqliteStore,
    known: Known,
}

impl SqliteExecutions {
    pub fn new(store: SqliteStore) -> Self {
        Self {
            store,
            known: Arc::default(),
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
        let row = Row::new(execution, at, 0)?;
        let input = input_digest(input);
        let known = self.known.clone();
        self.store
            .with_connection(move |connection| {
                let doing = format!("start execution {}", row.name);
                // Atomic on its own: the connection thread runs each operation in a savepoint.
                let inserted = connection
                    .prepare_cached(INSERT)
                    .and_then(|mut insert| {
                        insert.execute(params![
                            row.arn,
                            row.name,
                            row.status,
                            input,
                            row.updated_at,
                            row.transitions,
                            row.head,
                            row.history.compacted()
                        ])
                    })
                    .map_err(sql_error(&doing))?;
                let outcome = if inserted == 1 {
                    append_events(connection, &row, 0).map_err(sql_error(&doing))?;
                    Inserted::New
                } else {
                    let (existing_input, arn, head, history): (
                        String,
                        String,
                        String,
                        Option<Vec<u8>>,
                    ) = connection
                        .query_row(SELECT_BY_NAME, params![row.name], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })
                        .map_err(sql_error(&doing))?;
                    // Files written before migration 4 hold the input itself.
                    if existing_input == input || input_digest(&existing_input) == input {
                        let existing = load(connection, &arn, &head, history)?;
                        Inserted::Existing(Box::new(existing))
                    } else {
                        Inserted::Conflict
                    }
                };
                if matches!(outcome, Inserted::New) {
                    row.remember(&known);
                }
                Ok(outcome)
            })
            .await
    }

    /// Stores `execution` (same ARN), changed `at`, over the stored one if that has fewer
    /// transitions. Answers whether it did: `false` means the stored execution has moved on
    /// (or was never inserted) and `execution` is a stale copy.
    pub async fn save(&self, execution: &Execution, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let from = lock(&self.known)
            .get(&execution.info().execution_arn)
            .copied()
            .unwrap_or(0);
        let row = Row::new(execution, at, from)?;
        let known = self.known.clone();
        let saved = self
            .store
            .with_connection(move |connection| {
                let saved = save_one(connection, &row)?;
                match saved {
                    Saved::Yes => row.remember(&known),
                    Saved::Stale | Saved::Gap => forget(&known, &row.arn),
                }
                Ok(saved)
            })
            .await?;
        match saved {
            Saved::Yes => Ok(true),
            Saved::Stale => Ok(false),
            Saved::Gap => Err(StoreError::Failed(
                "the execution's stored history is shorter than this process knew; saving again with all of it"
                    .to_owned(),
            )),
        }
    }

    /// The execution with this ARN.
    pub async fn get(&self, execution_arn: &str) -> Result<Option<Execution>, StoreError> {
        let arn = execution_arn.to_owned();
        self.store
            .with_connection(move |connection| {
                let doing = format!("read execution {arn}");
                let stored: Option<(String, Option<Vec<u8>>)> = connection
                    .query_row(SELECT_BY_ARN, params![arn], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()
                    .map_err(sql_error(&doing))?;
                stored
                    .map(|(head, history)| load(connection, &arn, &head, history))
                    .transpose()
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
                let rows: Vec<(String, String, Option<Vec<u8>>)> = connection
                    .prepare_cached(SELECT_BY_STATUS)
                    .and_then(|mut select| {
                        select
                            .query_map(params![status, limit], |row| {
                                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                            })?
                            .collect()
                    })
                    .map_err(sql_error(&doing))?;
                rows.into_iter()
                    .map(|(arn, head, history)| load(connection, &arn, &head, history))
                    .collect()
            })
            .await
    }
}

/// What one save did.
enum Saved {
    Yes,
    /// The stored execution has as many transitions or more (or none is stored).
    Stale,
    /// The save carries events from a later index than the stored history reaches: the hint
    /// of [`Known`] was wrong. Nothing written; the caller saves again with the whole history.
    Gap,
}

fn save_one(connection: &Connection, row: &Row) -> Result<Saved, StoreError> {
    let doing = format!("save execution {}", row.name);
    let stored: Option<(i64, bool)> = connection
        .prepare_cached(SELECT_STORED)
        .and_then(|mut select| {
            select
                .query_row(params![row.arn], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql_error(&doing))?;
    let Some((stored, compacted)) = stored else {
        return Ok(Saved::Stale);
    };
    if stored >= row.transitions {
        return Ok(Saved::Stale);
    }
    let rows_stored = if compacted {
        0
    } else {
        usize::try_from(stored).unwrap_or(usize::MAX)
    };
    let update = |connection: &Connection| {
        connection.prepare_cached(UPDATE)?.execute(params![
            row.arn,
            row.status,
            row.updated_at,
            row.transitions,
            row.head,
            row.history.compacted()
        ])
    };
    match &row.history {
        History::Compacted(_) => {
            connection
                .prepare_cached(DELETE_EVENTS)
                .and_then(|mut delete| delete.execute(params![row.arn]))
                .map_err(sql_error(&doing))?;
        }
        History::Appended { from, .. } if *from > rows_stored => return Ok(Saved::Gap),
        History::Appended { .. } => {
            if compacted {
                // Redriven: the compacted history is replaced by its events as rows.
                connection
                    .prepare_cached(DELETE_EVENTS)
                    .and_then(|mut delete| delete.execute(params![row.arn]))
                    .map_err(sql_error(&doing))?;
            }
            append_events(connection, row, rows_stored).map_err(sql_error(&doing))?;
        }
    }
    update(connection).map_err(sql_error(&doing))?;
    Ok(Saved::Yes)
}

/// Inserts the events of a running execution's save from index `stored` on (the ones before
/// are stored already): the save's segment, one row keyed by its first event's id, when the
/// stored history ends where the save begins; else each missing event as a row of its own.
fn append_events(connection: &Connection, row: &Row, stored: usize) -> rusqlite::Result<()> {
    let History::Appended {
        from,
        events,
        segment,
    } = &row.history
    else {
        return Ok(());
    };
    if events.len() <= stored.saturating_sub(*from) {
        return Ok(());
    }
    let id = |index: usize| i64::try_from(from + index + 1).unwrap_or(i64::MAX);
    let mut append = connection.prepare_cached(APPEND_EVENT)?;
    if stored == *from {
        append.execute(params![row.arn, id(0), segment])?;
        return Ok(());
    }
    for (index, event) in events.iter().enumerate().skip(stored.saturating_sub(*from)) {
        append.execute(params![row.arn, id(index), event])?;
    }
    Ok(())
}

/// One `execution_events` row read back: its events' JSON.
enum StoredEvents {
    /// A row of text: one event.
    One(String),
    /// A segment: several events.
    Segment(Vec<Value>),
}

impl FromSql for StoredEvents {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Text(_) => String::column_result(value).map(Self::One),
            ValueRef::Blob([SEGMENT_DEFLATED, deflated @ ..]) => {
                let json = inflate(deflated).map_err(|error| FromSqlError::Other(error.into()))?;
                serde_json::from_slice(&json)
                    .map(Self::Segment)
                    .map_err(|error| FromSqlError::Other(Box::new(error)))
            }
            ValueRef::Blob(_) => Err(FromSqlError::Other(
                "history events of an unknown format (written by a newer build?)".into(),
            )),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// The execution stored as `compacted` (an ended one: the whole execution, deflated), or as
/// `head` (without its history) and its events in `execution_events`. A file written before
/// migration 4 holds executions whose head has its history inside; migration 4 moved those to
/// rows.
fn load(
    connection: &Connection,
    arn: &str,
    head: &str,
    compacted: Option<Vec<u8>>,
) -> Result<Execution, StoreError> {
    let unreadable = |error: &dyn std::fmt::Display| {
        StoreError::Failed(format!(
            "the stored execution {arn} cannot be read: {error}"
        ))
    };
    if let Some(compressed) = compacted {
        let json = inflate(&compressed).map_err(|e| unreadable(&e))?;
        return serde_json::from_slice(&json).map_err(|e| unreadable(&e));
    }
    let mut document: Value = serde_json::from_str(head).map_err(|e| unreadable(&e))?;
    let doing = format!("read the history of execution {arn}");
    let rows: Vec<StoredEvents> = connection
        .prepare_cached(SELECT_EVENTS)
        .and_then(|mut select| select.query_map(params![arn], |row| row.get(0))?.collect())
        .map_err(sql_error(&doing))?;
    let mut events = Vec::new();
    for row in rows {
        match row {
            StoredEvents::One(event) => {
                events.push(serde_json::from_str(&event).map_err(|e| unreadable(&e))?);
            }
            StoredEvents::Segment(segment) => events.extend(segment),
        }
    }
    let events = Value::Array(events);
    match &mut document {
        Value::Object(fields) => {
            fields.insert("history".to_owned(), events);
        }
        _ => return Err(unreadable(&"not a JSON object")),
    }
    serde_json::from_value(document).map_err(|e| unreadable(&e))
}

/// How a save stores the history.
enum History {
    /// A running execution's events from index `from` on, each as JSON, and all of them as
    /// one segment (`SEGMENT_DEFLATED`, then the deflate of their JSON array).
    Appended {
        from: usize,
        events: Vec<String>,
        segment: Vec<u8>,
    },
    /// An ended execution, history included: its deflated JSON (the head column is empty).
    Compacted(Vec<u8>),
}

impl History {
    fn compacted(&self) -> Option<&[u8]> {
        match self {
            History::Compacted(blob) => Some(blob),
            History::Appended { .. } => None,
        }
    }
}

/// The columns of one save.
struct Row {
    arn: String,
    name: String,
    status: String,
    updated_at: String,
    transitions: i64,
    /// The execution without its history, JSON (empty once it has ended).
    head: String,
    history: History,
}

impl Row {
    /// The save of `execution`, carrying its events from index `from` on (those before are
    /// stored) while it runs, its whole history compacted once it has ended.
    fn new(execution: &Execution, at: DateTime<Utc>, from: usize) -> Result<Self, StoreError> {
        let info = execution.info();
        let failed = |error: &dyn std::fmt::Display| {
            StoreError::Failed(format!("serialize execution {}: {error}", info.name))
        };
        let events = execution.history();
        let (head, history) = if execution.status() == Status::Running {
            let from = from.min(events.len());
            let head =
                serde_json::to_string(&execution.without_history()).map_err(|e| failed(&e))?;
            let events: Vec<String> = events[from..]
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<_, _>>()
                .map_err(|e| failed(&e))?;
            let array = format!("[{}]", events.join(","));
            let mut segment = vec![SEGMENT_DEFLATED];
            segment.extend(deflate_fast(array.as_bytes()));
            (
                head,
                History::Appended {
                    from,
                    events,
                    segment,
                },
            )
        } else {
            // The head repeats the input and the last state's data that the history holds:
            // deflated together, each is stored about once.
            // Serialized first, compressed in one call: flate2 zeroes the spare capacity of its
            // output at every write, and serde_json writes fragment by fragment (that was 37%
            // of the engine's CPU, docs/performance.md).
            let json = serde_json::to_vec(execution).map_err(|e| failed(&e))?;
            (String::new(), History::Compacted(deflate(&json)))
        };
        Ok(Self {
            arn: info.execution_arn.clone(),
            name: info.name.clone(),
            status: status_text(execution.status())?,
            updated_at: timestamp(at),
            transitions: i64::try_from(events.len()).unwrap_or(i64::MAX),
            head,
            history,
        })
    }

    /// Notes, after the save is committed, how many events are stored as rows.
    fn remember(&self, known: &Known) {
        match &self.history {
            History::Appended { .. } => {
                let count = usize::try_from(self.transitions).unwrap_or(usize::MAX);
                lock(known).insert(self.arn.clone(), count);
            }
            History::Compacted(_) => forget(known, &self.arn),
        }
    }
}

fn forget(known: &Known, arn: &str) {
    lock(known).remove(arn);
}

/// The hint map; a poisoned lock (a panic while holding it) still holds a usable map.
fn lock(known: &Known) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
    known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the `input` column holds: the canonical input's SHA-256, enough to tell a repeated
/// start from a conflicting one (the input itself is in the execution).
fn input_digest(input: &str) -> String {
    format!("sha256:{}", sha256_hex(input.as_bytes()))
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

    /// A machine of two Tasks: two saves while it runs, one when it ends.
    fn two_tasks() -> StateMachine {
        let definition = json!({"StartAt": "One", "States": {
            "One": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "one", "Payload.$": "$"}, "Next": "Two"},
            "Two": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "two", "Payload.$": "$"}, "End": true}}});
        StateMachine::load(&definition.to_string(), &BTreeMap::new()).unwrap()
    }

    async fn count(store: &SqliteStore, sql: &'static str) -> i64 {
        store
            .with_connection(move |connection| {
                Ok(connection.query_row(sql, [], |row| row.get(0)).unwrap())
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_running_execution_appends_its_events_and_an_ended_one_is_compacted() {
        let store = SqliteStore::open_in_memory().unwrap();
        let executions = SqliteExecutions::new(store.clone());
        let machine = two_tasks();
        let at = env().now();
        let mut execution = started(&machine, "two");
        executions.insert(&execution, "{}", at).await.unwrap();
        let rows = "SELECT count(*) FROM execution_events";
        let segments = "SELECT count(*) FROM execution_events WHERE typeof(event) = 'blob'";
        let compacted = "SELECT count(*) FROM executions WHERE history IS NOT NULL";
        assert_eq!(
            count(&store, rows).await,
            1,
            "the start's events are one row"
        );
        assert_eq!(count(&store, segments).await, 1);

        let result = asl::lambda_invoke_result(json!({"big": "x".repeat(4000)}));
        execution
            .task_succeeded(&machine, result.clone(), &mut env())
            .unwrap();
        assert_eq!(execution.status(), Status::Running);
        assert!(execution.history().len() > 2);
        assert!(executions.save(&execution, at).await.unwrap());
        assert_eq!(count(&store, rows).await, 2, "a save appends one row");
        assert_eq!(count(&store, segments).await, 2);
        let bytes = "SELECT sum(length(event)) FROM execution_events";
        let text: usize = execution
            .history()
            .iter()
            .map(|event| serde_json::to_string(event).unwrap().len())
            .sum();
        let stored = count(&store, bytes).await;
        assert!(
            stored * 4 < text as i64,
            "{stored} bytes stored for {text} bytes of events"
        );
        assert_eq!(count(&store, compacted).await, 0);
        let arn = execution.info().execution_arn.clone();
        assert_eq!(
            executions.get(&arn).await.unwrap().as_ref(),
            Some(&execution)
        );

        execution
            .task_succeeded(&machine, result, &mut env())
            .unwrap();
        assert_eq!(execution.status(), Status::Succeeded);
        assert!(executions.save(&execution, at).await.unwrap());
        assert_eq!(count(&store, rows).await, 0, "the rows are compacted away");
        assert_eq!(count(&store, compacted).await, 1);
        let size = "SELECT length(history) + length(execution) FROM executions";
        let stored = count(&store, size).await;
        let whole = serde_json::to_string(&execution).unwrap().len() as i64;
        assert!(
            stored * 4 < whole,
            "{stored} bytes stored for a {whole}-byte execution"
        );
        assert_eq!(executions.get(&arn).await.unwrap(), Some(execution.clone()));
        assert_eq!(
            executions.with_status(Status::Succeeded, 10).await.unwrap(),
            [execution]
        );
    }

    #[tokio::test]
    async fn a_save_without_the_hint_stores_the_missing_events_once() {
        let store = SqliteStore::open_in_memory().unwrap();
        let machine = two_tasks();
        let at = env().now();
        let mut execution = started(&machine, "hintless");
        SqliteExecutions::new(store.clone())
            .insert(&execution, "{}", at)
            .await
            .unwrap();
        let inserted = execution.history().len() as i64;
        // Another handle on the same store (as after a restart) knows nothing of the rows.
        let executions = SqliteExecutions::new(store.clone());
        let result = asl::lambda_invoke_result(json!({}));
        execution
            .task_succeeded(&machine, result, &mut env())
            .unwrap();
        assert!(executions.save(&execution, at).await.unwrap());
        // The start's segment, then each event it lacked as a row of text.
        let rows = "SELECT count(*) FROM execution_events";
        let added = execution.history().len() as i64 - inserted;
        assert_eq!(count(&store, rows).await, 1 + added);
        let text = "SELECT count(*) FROM execution_events WHERE typeof(event) = 'text'";
        assert_eq!(count(&store, text).await, added);
        let arn = execution.info().execution_arn.clone();
        assert_eq!(executions.get(&arn).await.unwrap(), Some(execution));
    }

    #[tokio::test]
    async fn executions_stored_before_migration_4_are_read_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        let machine = two_tasks();
        let at = env().now();
        let mut execution = started(&machine, "old");
        {
            let connection = Connection::open(&path).unwrap();
            for migration in &crate::adapters::sqlite_store::MIGRATIONS[..3] {
                connection.execute_batch(migration).unwrap();
            }
            connection.pragma_update(None, "user_version", 3).unwrap();
            connection
                .execute(
                    "INSERT INTO executions (execution_arn, name, status, input, updated_at,
                        transitions, execution) VALUES (?1, ?2, 'RUNNING', '{}', ?3, ?4, ?5)",
                    params![
                        execution.info().execution_arn,
                        execution.info().name,
                        timestamp(at),
                        execution.history().len() as i64,
                        serde_json::to_string(&execution).unwrap()
                    ],
                )
                .unwrap();
        }
        let executions = SqliteExecutions::new(SqliteStore::open(&path).unwrap());
        let arn = execution.info().execution_arn.clone();
        assert_eq!(
            executions.get(&arn).await.unwrap().as_ref(),
            Some(&execution)
        );
        let result = asl::lambda_invoke_result(json!({}));
        execution
            .task_succeeded(&machine, result, &mut env())
            .unwrap();
        assert!(executions.save(&execution, at).await.unwrap());
        assert_eq!(executions.get(&arn).await.unwrap(), Some(execution));
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
