//! The embedded incident store: the DynamoDB model of [`crate::incident`] in one local SQLite
//! file, for the CLI and local runs.
//!
//! The table `incidents` holds one row per incident: the projection as the JSON of
//! [`Incident`], plus the columns the queries need (`status`, `alarm_name`, `created_at`,
//! `updated_at`) and `version`, the condition of every write. The table `incident_events` is
//! the append-only log, keyed by `(incident_id, seq)`, each event's `data` its JSON. The
//! projection, the events' data and the episodes are JSON text, deflated into a BLOB once they
//! are long enough for that to pay ([`packed`]).
//! Three indexes answer the operators' questions with the same names as the DynamoDB GSIs:
//! `incidents_by_status (status, updated_at)`, `incidents_by_alarm (alarm_name, created_at)`
//! (partial: rejected inputs have no alarm name) and `incidents_outbox (created_at)` (partial:
//! only RECEIVED incidents, so the outbox stays as small as the backlog).
//!
//! ## Locking
//!
//! A store owns one [`Connection`], on a thread of its own (`group_commit`): the operations
//! of one store run there one at a time, so the async runtime never waits on the disk. The
//! operations waiting when the thread turns to them run in one `BEGIN IMMEDIATE` transaction,
//! each in its own savepoint, and are answered once it is committed: it takes the file's write
//! lock first and so can never fail half-way on a lock upgrade, and many concurrent writes cost
//! one sync of the WAL.
//!
//! The journal is in WAL mode because the file is local and shared by a few processes (the
//! relay, an operator's `audit` or `redrive`): readers go on reading a consistent snapshot
//! while the single writer commits, and a writer does not wait for readers. Cargo's cache
//! tracker avoids WAL because its file may sit on a network mount, where WAL's shared memory
//! does not work; this file must not be put on one either. A writer that finds the file locked
//! by another process waits up to [`BUSY_TIMEOUT`], then the operation fails with
//! [`StoreError::Unavailable`] (worth retrying). Every other SQLite failure is
//! [`StoreError::Failed`]; error text names the operation and the incident id, never event data.
//!
//! ## Durability
//!
//! `synchronous=FULL`: every commit syncs the WAL before the write returns, so an incident the
//! relay acknowledged survives a crash of the process, of the OS or a power loss. (In WAL mode
//! `NORMAL` would keep the file consistent but could lose the last commits, and losing an
//! acknowledged alarm is the one failure this store exists to prevent.) Nothing expires rows:
//! `expires_at` is kept in the projection for DynamoDB's TTL only.
//!
//! ## Compatibility
//!
//! The schema is built by [`MIGRATIONS`], applied in order over `PRAGMA user_version` inside one
//! transaction when a store is opened, so two processes opening a new file at once cannot both
//! migrate it. The list is only ever appended to, and entries only add tables, columns and
//! indexes. A build reads every file an older one wrote: a column holds text or a packed BLOB,
//! and the projection JSON tolerates unknown fields. The reverse does not hold: a build from
//! before packed documents (or before migration 4's compacted executions) cannot read the
//! BLOBs of a newer one, so a file is not taken back to an older build.

use crate::episode::Episode;
use crate::event::IncidentId;
use crate::incident::{EventType, Incident, IncidentEvent, IncidentStatus, NewEvent, timestamp};
use crate::ports::{Created, IncidentStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

mod group_commit;
pub(crate) mod packed;

use packed::{Packed, Unpacked};

/// How long a write waits for another process's lock before the store is
/// [`StoreError::Unavailable`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements kept per connection: more than the store runs (about twenty).
const STATEMENT_CACHE: usize = 64;

/// The schema, one entry per `user_version`. Never remove a migration entry from the list, and
/// never change one that has shipped: append a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the incident table, its three indexes and the event log.
    "CREATE TABLE incidents (
        incident_id TEXT NOT NULL PRIMARY KEY,
        status      TEXT NOT NULL,
        alarm_name  TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        version     INTEGER NOT NULL,
        projection  TEXT NOT NULL
    );
    CREATE INDEX incidents_by_status ON incidents (status, updated_at);
    CREATE INDEX incidents_by_alarm ON incidents (alarm_name, created_at) WHERE alarm_name <> '';
    CREATE INDEX incidents_outbox ON incidents (created_at) WHERE status = 'RECEIVED';
    CREATE TABLE incident_events (
        incident_id TEXT NOT NULL REFERENCES incidents (incident_id),
        seq         INTEGER NOT NULL,
        type        TEXT NOT NULL,
        at          TEXT NOT NULL,
        data        TEXT NOT NULL,
        PRIMARY KEY (incident_id, seq)
    );",
    // 2: the local engine's workflow executions (see adapters::local::executions).
    "CREATE TABLE executions (
        execution_arn TEXT NOT NULL PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        status        TEXT NOT NULL,
        input         TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        transitions   INTEGER NOT NULL,
        execution     TEXT NOT NULL
    );
    CREATE INDEX executions_by_status ON executions (status, updated_at);",
    // 3: episodes (one row per group key, see crate::episode) and incidents by group key.
    "ALTER TABLE incidents ADD COLUMN group_key TEXT;
    CREATE INDEX incidents_by_group ON incidents (group_key, created_at)
        WHERE group_key IS NOT NULL;
    CREATE TABLE episodes (
        group_key TEXT NOT NULL PRIMARY KEY,
        version   INTEGER NOT NULL,
        episode   TEXT NOT NULL
    );",
    // 4: executions keep their history apart (see adapters::local::executions): one row per
    // event while they run, appended; the whole execution compacted into `history` when they
    // end. The events of the executions stored before move out of their documents.
    "CREATE TABLE execution_events (
        execution_arn TEXT NOT NULL,
        id            INTEGER NOT NULL,
        event         TEXT NOT NULL,
        PRIMARY KEY (execution_arn, id)
    );
    ALTER TABLE executions ADD COLUMN history BLOB;
    INSERT INTO execution_events (execution_arn, id, event)
        SELECT e.execution_arn, h.key + 1, h.value
        FROM executions AS e, json_each(e.execution, '$.history') AS h;
    UPDATE executions SET execution = json_remove(execution, '$.history');",
];

const INSERT_INCIDENT: &str = "INSERT INTO incidents
    (incident_id, status, alarm_name, created_at, updated_at, version, projection, group_key)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (incident_id) DO NOTHING";

const UPDATE_INCIDENT: &str = "UPDATE incidents
    SET status = ?2, alarm_name = ?3, created_at = ?4, updated_at = ?5, version = ?6, projection = ?7,
        group_key = ?9
    WHERE incident_id = ?1 AND version = ?8";

const INSERT_EVENT: &str =
    "INSERT INTO incident_events (incident_id, seq, type, at, data) VALUES (?1, ?2, ?3, ?4, ?5)";

const SELECT_PROJECTION: &str = "SELECT projection FROM incidents WHERE incident_id = ?1";

const SELECT_EVENTS: &str =
    "SELECT seq, type, at, data FROM incident_events WHERE incident_id = ?1 ORDER BY seq";

/// `since` defaults to `''`, which every timestamp sorts after.
const SELECT_BY_STATUS: &str = "SELECT incident_id, projection FROM incidents
    WHERE status = ?1 AND updated_at >= ?2
    ORDER BY updated_at DESC, incident_id DESC LIMIT ?3";

/// `alarm_name <> ''` repeats the partial index's condition so that SQLite may use it.
const SELECT_BY_ALARM: &str = "SELECT incident_id, projection FROM incidents
    WHERE alarm_name = ?1 AND alarm_name <> ''
    ORDER BY created_at DESC, incident_id DESC LIMIT ?2";

/// `group_key IS NOT NULL` repeats the partial index's condition so that SQLite may use it.
const SELECT_BY_GROUP: &str = "SELECT incident_id, projection FROM incidents
    WHERE group_key = ?1 AND group_key IS NOT NULL
    ORDER BY created_at DESC, incident_id DESC LIMIT ?2";

const SELECT_EPISODE: &str = "SELECT episode FROM episodes WHERE group_key = ?1";

const INSERT_EPISODE: &str =
    "INSERT INTO episodes (group_key, version, episode) VALUES (?1, ?2, ?3)
    ON CONFLICT (group_key) DO NOTHING";

const UPDATE_EPISODE: &str =
    "UPDATE episodes SET version = ?2, episode = ?3 WHERE group_key = ?1 AND version = ?4";

/// Through the partial `incidents_outbox` index, named: left to itself SQLite picks
/// `incidents_by_status` and sorts the whole backlog before taking the oldest (18.4 ms instead
/// of 1.4 ms for the first 1,000 of 20,000 RECEIVED incidents). The literal `'RECEIVED'`
/// matches the index's condition, which SQLite needs to use it.
const SELECT_OUTBOX: &str = "SELECT incident_id, projection FROM incidents
    INDEXED BY incidents_outbox
    WHERE status = 'RECEIVED' AND created_at < ?1
    ORDER BY created_at ASC, incident_id ASC LIMIT ?2";

/// The embedded incident store: one SQLite file (or an in-memory database), see the module
/// docs for locking and durability. Clones share the connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    connection: group_commit::Connector,
}

impl SqliteStore {
    /// Opens (creating it if need be) the store at `path` and brings its schema up to date. The
    /// parent directory must exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection =
            Connection::open(path).map_err(sql_error(&format!("open {}", path.display())))?;
        Self::prepare(connection)
    }

    /// A private, empty store that lives as long as this value (and its clones).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let connection =
            Connection::open_in_memory().map_err(sql_error("open an in-memory database"))?;
        Self::prepare(connection)
    }

    fn prepare(mut connection: Connection) -> Result<Self, StoreError> {
        // The timeout comes first: switching to WAL and migrating may wait on another opener.
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_error("set busy_timeout"))?;
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sql_error("set journal_mode"))?;
        // An in-memory database has no journal file and answers `memory`.
        if !(mode.eq_ignore_ascii_case("wal") || mode.eq_ignore_ascii_case("memory")) {
            return Err(StoreError::Failed(format!(
                "SQLite refused journal_mode=WAL (it answered {mode:?}): is the file on a network mount?"
            )));
        }
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(sql_error("set synchronous"))?;
        // Each operation of a group commit is a savepoint, whose journal (the pages as they
        // were, to roll one operation back alone) SQLite spills to a temporary file past 64 KiB:
        // measured at 200 KB of writes per delivered incident. That journal never needs to
        // survive the process (the WAL is what makes a commit durable): keep it in memory.
        connection
            .pragma_update(None, "temp_store", "MEMORY")
            .map_err(sql_error("set temp_store"))?;
        connection
            .pragma_update(None, "foreign_keys", true)
            .map_err(sql_error("set foreign_keys"))?;
        migrate(&mut connection)?;
        // Every statement the store, the executions table and the group commit run is
        // prepared once: rusqlite's default cache (16) is smaller than that, and a cycle of
        // more statements than the cache holds re-parses each of them every time.
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            connection: group_commit::Connector::start(connection)?,
        })
    }

    /// Runs `operation` on the connection, in the transaction of its batch, and answers once
    /// that is committed (see `group_commit`). The local engine's execution table shares the
    /// connection through this.
    pub(crate) async fn with_connection<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.connection.run(operation).await
    }
}

impl SqliteStore {
    /// `append`, with the episode row written first in the same operation when given
    /// (`decide`).
    async fn append_with(
        &self,
        episode: Option<&Episode>,
        next: &Incident,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        let row = IncidentRow::new(next)?;
        // Version 0 is never stored, so nothing can be at `next.version - 1`.
        let Some(expected) = next.version.checked_sub(1) else {
            return Err(StoreError::VersionConflict(row.id));
        };
        let expected = to_sql_integer(expected, "version", &row.id)?;
        let event = EventRow::new(&row.id, next.event_count, event)?;
        let episode = episode.cloned();
        self.with_connection(move |connection| {
            // Atomic on its own: the connection thread runs each operation in a savepoint.
            if let Some(episode) = &episode {
                write_episode(connection, episode)?;
            }
            row.append(connection, expected, &event)?;
            Ok(())
        })
        .await
    }
}

/// Applies the migrations `user_version` says are missing, all in one immediate transaction.
fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error("begin migration"))?;
    let applied: i64 = transaction
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sql_error("read user_version"))?;
    let applied = usize::try_from(applied).map_err(|_| {
        StoreError::Failed(format!(
            "the store's user_version is {applied}: not a file this program wrote"
        ))
    })?;
    if applied >= MIGRATIONS.len() {
        return Ok(());
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        transaction
            .execute_batch(migration)
            .map_err(sql_error(&format!("apply migration {}", index + 1)))?;
    }
    let version = i64::try_from(MIGRATIONS.len())
        .map_err(|_| StoreError::Failed("too many migrations".to_owned()))?;
    transaction
        .pragma_update(None, "user_version", version)
        .map_err(sql_error("write user_version"))?;
    transaction.commit().map_err(sql_error("commit migration"))
}

/// Classifies a SQLite error: a busy or locked database is worth retrying, nothing else is.
/// `doing` names the operation (and the incident id), never event data.
fn classify(doing: &str, error: &rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(format!("{doing}: {error}"))
        }
        _ => StoreError::Failed(format!("{doing}: {error}")),
    }
}

pub(crate) fn sql_error(doing: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |error| classify(doing, &error)
}

fn to_sql_integer(value: u64, what: &str, id: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StoreError::Failed(format!(
            "{what} {value} of incident {id} is beyond SQLite's integers"
        ))
    })
}

/// The columns of one `incidents` row.
struct IncidentRow {
    id: String,
    status: &'static str,
    alarm_name: String,
    created_at: String,
    updated_at: String,
    version: i64,
    projection: Packed,
    group_key: Option<String>,
}

impl IncidentRow {
    fn new(incident: &Incident) -> Result<Self, StoreError> {
        let id = incident.incident_id.as_str().to_owned();
        let projection = serde_json::to_string(incident).map_err(|error| {
            StoreError::Failed(format!("serialize the projection of {id}: {error}"))
        })?;
        Ok(Self {
            status: incident.status.as_str(),
            alarm_name: incident.alarm_name.clone(),
            created_at: incident.created_at.clone(),
            updated_at: incident.updated_at.clone(),
            version: to_sql_integer(incident.version, "version", &id)?,
            projection: Packed::new(projection),
            group_key: incident
                .correlation
                .as_ref()
                .map(|correlation| correlation.group_key.clone()),
            id,
        })
    }

    /// Replaces the row on the condition that its version is `expected`, and appends `event`,
    /// inside `transaction`.
    fn append(
        &self,
        transaction: &Connection,
        expected: i64,
        event: &EventRow,
    ) -> Result<(), StoreError> {
        let doing = format!("append to incident {}", self.id);
        let updated = transaction
            .prepare_cached(UPDATE_INCIDENT)
            .and_then(|mut update| {
                update.execute(params![
                    self.id,
                    self.status,
                    self.alarm_name,
                    self.created_at,
                    self.updated_at,
                    self.version,
                    self.projection,
                    expected,
                    self.group_key,
                ])
            })
            .map_err(sql_error(&doing))?;
        if updated == 0 {
            // Dropping the transaction rolls back: nothing was written.
            return Err(StoreError::VersionConflict(self.id.clone()));
        }
        event.insert(transaction, &self.id)
    }
}

/// Writes an episode row on the condition that the stored version is one less (or that there
/// is none, for version 1), inside `transaction`.
fn write_episode(transaction: &Connection, episode: &Episode) -> Result<(), StoreError> {
    let key = &episode.group_key;
    let doing = format!("write the episode of {key}");
    let text = serde_json::to_string(episode)
        .map(Packed::new)
        .map_err(|error| StoreError::Failed(format!("{doing}: {error}")))?;
    let version = to_sql_integer(episode.version, "episode version", key)?;
    let written = if episode.version <= 1 {
        transaction
            .prepare_cached(INSERT_EPISODE)
            .and_then(|mut insert| insert.execute(params![key, version, text]))
    } else {
        transaction
            .prepare_cached(UPDATE_EPISODE)
            .and_then(|mut update| update.execute(params![key, version, text, version - 1]))
    }
    .map_err(sql_error(&doing))?;
    if written == 0 {
        return Err(StoreError::VersionConflict(format!("episode {key}")));
    }
    Ok(())
}

/// The columns of one `incident_events` row but the incident id.
struct EventRow {
    seq: i64,
    kind: &'static str,
    at: String,
    data: Packed,
}

impl EventRow {
    fn new(id: &str, seq: u64, event: &NewEvent) -> Result<Self, StoreError> {
        let data = serde_json::to_string(&event.data).map_err(|error| {
            StoreError::Failed(format!(
                "serialize the data of event {seq} of {id}: {}",
                error_position(&error)
            ))
        })?;
        Ok(Self {
            seq: to_sql_integer(seq, "event seq", id)?,
            kind: event.kind.as_str(),
            at: event.at.clone(),
            data: Packed::new(data),
        })
    }

    fn insert(&self, connection: &Connection, id: &str) -> Result<(), StoreError> {
        let doing = format!("append event {} to incident {id}", self.seq);
        connection
            .prepare_cached(INSERT_EVENT)
            .and_then(|mut insert| {
                insert.execute(params![id, self.seq, self.kind, self.at, self.data])
            })
            .map_err(sql_error(&doing))?;
        Ok(())
    }
}

/// A serde_json error's category and position: never the text it was reading.
fn error_position(error: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {}, column {}",
        error.classify(),
        error.line(),
        error.column()
    )
}

fn parse_projection(id: &str, text: &str) -> Result<Incident, StoreError> {
    serde_json::from_str(text).map_err(|error| {
        StoreError::Failed(format!(
            "the stored projection of {id} is not an incident: {error}"
        ))
    })
}

fn read_projection(connection: &Connection, id: &str) -> Result<Option<Incident>, StoreError> {
    let text: Option<Unpacked> = connection
        .prepare_cached(SELECT_PROJECTION)
        .and_then(|mut select| select.query_row([id], |row| row.get(0)).optional())
        .map_err(sql_error(&format!("read incident {id}")))?;
    text.map(|Unpacked(text)| parse_projection(id, &text))
        .transpose()
}

/// Runs a query whose columns are `incident_id, projection`, and parses each projection.
fn read_projections(
    connection: &Connection,
    doing: &str,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Incident>, StoreError> {
    let rows: Vec<(String, Unpacked)> = connection
        .prepare_cached(sql)
        .and_then(|mut select| {
            select
                .query_map(params, |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .map_err(sql_error(doing))?;
    rows.into_iter()
        .map(|(id, Unpacked(text))| parse_projection(&id, &text))
        .collect()
}

/// An RFC 3339 bound in the store's one format, so that text order is time order whatever
/// offset or precision the caller wrote. Rounded up to the millisecond: `>=` and `<` against
/// stored millisecond times then mean what they mean for the exact instant.
fn time_bound(name: &str, text: &str) -> Result<String, StoreError> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|error| {
            StoreError::Failed(format!("{name} {text:?} is not an RFC 3339 time: {error}"))
        })?
        .with_timezone(&Utc);
    let below_millis = at.timestamp_subsec_nanos() % 1_000_000;
    let at = if below_millis == 0 {
        at
    } else {
        at + TimeDelta::nanoseconds(i64::from(1_000_000 - below_millis))
    };
    Ok(timestamp(at))
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl IncidentStore for SqliteStore {
    async fn create(
        &self,
        incident: &Incident,
        events: &[NewEvent],
    ) -> Result<Created, StoreError> {
        let row = IncidentRow::new(incident)?;
        if usize::try_from(incident.event_count).ok() != Some(events.len()) {
            return Err(StoreError::Failed(format!(
                "incident {} says event_count {} but {} events were given",
                row.id,
                incident.event_count,
                events.len()
            )));
        }
        let events = (1..)
            .zip(events)
            .map(|(seq, event)| EventRow::new(&row.id, seq, event))
            .collect::<Result<Vec<_>, _>>()?;
        self.with_connection(move |connection| {
            let doing = format!("create incident {}", row.id);
            // Atomic on its own: the connection thread runs each operation in a savepoint.
            let inserted = connection
                .prepare_cached(INSERT_INCIDENT)
                .and_then(|mut insert| {
                    insert.execute(params![
                        row.id,
                        row.status,
                        row.alarm_name,
                        row.created_at,
                        row.updated_at,
                        row.version,
                        row.projection,
                        row.group_key,
                    ])
                })
                .map_err(sql_error(&doing))?;
            if inserted == 0 {
                // Read in the same transaction as the failed insert: the row is there.
                return match read_projection(connection, &row.id)? {
                    Some(existing) => Ok(Created::Existing(Box::new(existing))),
                    None => Err(StoreError::Failed(format!(
                        "{doing}: the insert conflicted but no incident is stored"
                    ))),
                };
            }
            for event in &events {
                event.insert(connection, &row.id)?;
            }
            Ok(Created::New)
        })
        .await
    }

    async fn append(&self, next: &Incident, event: &NewEvent) -> Result<(), StoreError> {
        self.append_with(None, next, event).await
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        let id = id.as_str().to_owned();
        self.with_connection(move |connection| read_projection(connection, &id))
            .await
    }

    async fn events(&self, id: &IncidentId) -> Result<Vec<IncidentEvent>, StoreError> {
        let id = id.as_str().to_owned();
        let rows: Vec<(i64, String, String, Unpacked)> = {
            let id = id.clone();
            self.with_connection(move |connection| {
                connection
                    .prepare_cached(SELECT_EVENTS)
                    .and_then(|mut select| {
                        select
                            .query_map([&id], |row| {
                                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                            })?
                            .collect()
                    })
                    .map_err(sql_error(&format!("read the events of incident {id}")))
            })
            .await?
        };
        rows.into_iter()
            .map(|(seq, kind, at, Unpacked(data))| {
                let seq = u64::try_from(seq).map_err(|_| {
                    StoreError::Failed(format!("incident {id} has an event with seq {seq}"))
                })?;
                let kind: EventType =
                    serde_json::from_value(Value::String(kind)).map_err(|_| {
                        StoreError::Failed(format!(
                            "event {seq} of incident {id} has an unknown type"
                        ))
                    })?;
                let data = serde_json::from_str(&data).map_err(|error| {
                    StoreError::Failed(format!(
                        "the data of event {seq} of incident {id} is not JSON: {}",
                        error_position(&error)
                    ))
                })?;
                Ok(IncidentEvent {
                    seq,
                    kind,
                    at,
                    data,
                })
            })
            .collect()
    }

    async fn by_status(
        &self,
        status: IncidentStatus,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        let since = since
            .map(|since| time_bound("since", since))
            .transpose()?
            .unwrap_or_default();
        let limit = sql_limit(limit);
        self.with_connection(move |connection| {
            read_projections(
                connection,
                &format!("list {status} incidents"),
                SELECT_BY_STATUS,
                params![status.as_str(), since, limit],
            )
        })
        .await
    }

    async fn by_alarm(&self, alarm_name: &str, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let alarm_name = alarm_name.to_owned();
        let limit = sql_limit(limit);
        self.with_connection(move |connection| {
            read_projections(
                connection,
                &format!("list the incidents of alarm {alarm_name:?}"),
                SELECT_BY_ALARM,
                params![alarm_name, limit],
            )
        })
        .await
    }

    async fn outbox(
        &self,
        created_before: &str,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        let created_before = time_bound("created_before", created_before)?;
        let limit = sql_limit(limit);
        self.with_connection(move |connection| {
            read_projections(
                connection,
                "list the outbox",
                SELECT_OUTBOX,
                params![created_before, limit],
            )
        })
        .await
    }

    async fn episode(&self, group_key: &str) -> Result<Option<Episode>, StoreError> {
        let key = group_key.to_owned();
        self.with_connection(move |connection| {
            let doing = format!("read the episode of {key}");
            let text: Option<Unpacked> = connection
                .prepare_cached(SELECT_EPISODE)
                .and_then(|mut select| select.query_row([&key], |row| row.get(0)).optional())
                .map_err(sql_error(&doing))?;
            text.map(|Unpacked(text)| {
                serde_json::from_str(&text)
                    .map_err(|error| StoreError::Failed(format!("{doing}: {error}")))
            })
            .transpose()
        })
        .await
    }

    async fn decide(
        &self,
        episode: Option<&Episode>,
        next: &Incident,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        self.append_with(episode, next, event).await
    }

    async fn by_group(&self, group_key: &str, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let key = group_key.to_owned();
        let limit = sql_limit(limit);
        self.with_connection(move |connection| {
            read_projections(
                connection,
                &format!("list the incidents of {key}"),
                SELECT_BY_GROUP,
                params![key, limit],
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    #[test]
    fn busy_and_locked_databases_are_unavailable_everything_else_failed() {
        let failure = |code| rusqlite::Error::SqliteFailure(ffi::Error::new(code), None);
        let rows = [
            (ffi::SQLITE_BUSY, true),
            (ffi::SQLITE_LOCKED, true),
            (ffi::SQLITE_BUSY_SNAPSHOT, true),
            (ffi::SQLITE_CONSTRAINT, false),
            (ffi::SQLITE_CORRUPT, false),
            (ffi::SQLITE_READONLY, false),
            (ffi::SQLITE_FULL, false),
        ];
        for (code, retryable) in rows {
            let error = classify("create incident x", &failure(code));
            assert_eq!(
                matches!(error, StoreError::Unavailable(_)),
                retryable,
                "code {code}: {error:?}"
            );
            assert!(error.to_string().contains("create incident x"), "{error}");
        }
        let error = classify("read incident x", &rusqlite::Error::QueryReturnedNoRows);
        assert!(matches!(error, StoreError::Failed(_)), "{error:?}");
    }

    #[tokio::test]
    async fn opening_sets_the_pragmas_and_the_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("incidents.sqlite3")).unwrap();
        let names = [
            "journal_mode",
            "synchronous",
            "foreign_keys",
            "busy_timeout",
            "temp_store",
            "user_version",
        ];
        let values = store
            .with_connection(move |connection| {
                Ok(names.map(|name| {
                    connection
                        .pragma_query_value(None, name, |row| {
                            row.get::<_, rusqlite::types::Value>(0)
                        })
                        .map(|value| format!("{value:?}"))
                        .unwrap()
                }))
            })
            .await
            .unwrap();
        assert_eq!(
            values,
            [
                "Text(\"wal\")".to_owned(),
                "Integer(2)".to_owned(),
                "Integer(1)".to_owned(),
                "Integer(5000)".to_owned(),
                "Integer(2)".to_owned(),
                format!("Integer({})", MIGRATIONS.len())
            ]
        );
    }

    #[tokio::test]
    async fn the_outbox_is_read_in_order_through_its_partial_index() {
        let store = SqliteStore::open_in_memory().unwrap();
        let plan: Vec<String> = store
            .with_connection(|connection| {
                let mut explain = connection
                    .prepare(&format!("EXPLAIN QUERY PLAN {SELECT_OUTBOX}"))
                    .unwrap();
                Ok(explain
                    .query_map(params!["2026-12-04T00:00:00.000Z", 10], |row| row.get(3))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap())
            })
            .await
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX incidents_outbox")),
            "{plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|step| step == "USE TEMP B-TREE FOR ORDER BY"),
            "the backlog is not sorted whole: {plan:?}"
        );
    }

    #[test]
    fn time_bounds_are_normalised_and_rounded_up_to_the_millisecond() {
        let rows = [
            ("2026-11-24T10:00:00Z", "2026-11-24T10:00:00.000Z"),
            ("2026-11-24T12:00:00.250+02:00", "2026-11-24T10:00:00.250Z"),
            ("2026-11-24T10:00:00.000001Z", "2026-11-24T10:00:00.001Z"),
            ("2026-11-24T10:00:00.999500Z", "2026-11-24T10:00:01.000Z"),
        ];
        for (given, expected) in rows {
            assert_eq!(time_bound("since", given).unwrap(), expected, "{given}");
        }
        assert!(matches!(
            time_bound("since", "yesterday"),
            Err(StoreError::Failed(_))
        ));
    }

    #[tokio::test]
    async fn a_poisoned_connection_fails_every_later_operation_without_panicking() {
        let store = SqliteStore::open_in_memory().unwrap();
        let panicked = store
            .with_connection(|_| -> Result<(), StoreError> { panic!("a bug") })
            .await
            .unwrap_err();
        assert!(
            matches!(&panicked, StoreError::Failed(text) if text.contains("panicked")),
            "{panicked:?}"
        );
        let error = store.get(&IncidentId::from_raw("any")).await.unwrap_err();
        assert!(
            matches!(&error, StoreError::Failed(text) if text.contains("unusable")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn long_documents_are_stored_deflated_and_text_rows_from_before_read_back() {
        let raw = include_bytes!("../../tests/fixtures/metric-alarm.json");
        let event = crate::event::AlarmEvent::parse(raw).unwrap();
        let now = Utc::now();
        let mut incident = crate::incident::received(&event, raw, now, None, false);
        incident.event_count = 2;
        let short = serde_json::json!({"statusCode": 202});
        let events = [
            NewEvent::new(EventType::Received, now, event.raw().clone()),
            NewEvent::new(EventType::Delivered, now, short.clone()),
        ];
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.create(&incident, &events).await, Ok(Created::New));

        let id = incident.incident_id.as_str().to_owned();
        let kinds = store
            .with_connection(move |connection| {
                connection
                    .query_row(
                        "SELECT (SELECT typeof(projection) FROM incidents WHERE incident_id = ?1),
                                group_concat(typeof(data), ',' ORDER BY seq)
                         FROM incident_events WHERE incident_id = ?1",
                        [&id],
                        |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
                    )
                    .map_err(sql_error("typeof"))
            })
            .await
            .unwrap();
        assert_eq!(kinds, ("blob".to_owned(), "blob,text".to_owned()));
        let read = store.events(&incident.incident_id).await.unwrap();
        assert_eq!(read[0].data, *event.raw());
        assert_eq!(read[1].data, short);
        assert_eq!(
            store.get(&incident.incident_id).await.unwrap(),
            Some(incident.clone())
        );

        // A row as builds before packed documents wrote it: all text.
        let mut legacy = incident.clone();
        legacy.incident_id = IncidentId::new("legacy", "2026-11-24T10:00:00.000+0000");
        let projection = serde_json::to_string(&legacy).unwrap();
        let data = event.raw().to_string();
        let legacy_id = legacy.incident_id.as_str().to_owned();
        store
            .with_connection(move |connection| {
                connection
                    .execute(
                        "INSERT INTO incidents (incident_id, status, alarm_name, created_at,
                             updated_at, version, projection) VALUES (?1, 'RECEIVED', 'a', '', '', 1, ?2)",
                        params![legacy_id, projection],
                    )
                    .and_then(|_| {
                        connection.execute(
                            "INSERT INTO incident_events VALUES (?1, 1, 'Received', '', ?2)",
                            params![legacy_id, data],
                        )
                    })
                    .map_err(sql_error("insert a text row"))
            })
            .await
            .unwrap();
        assert_eq!(
            store.get(&legacy.incident_id).await.unwrap(),
            Some(legacy.clone())
        );
        let read = store.events(&legacy.incident_id).await.unwrap();
        assert_eq!(read[0].data, *event.raw());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_operations_commit_together_and_a_failing_one_is_rolled_back_alone() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .with_connection(|connection| {
                connection
                    .execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
                    .map_err(sql_error("create"))
            })
            .await
            .unwrap();
        let mut writes = Vec::new();
        for n in 0..100_i64 {
            let store = store.clone();
            writes.push(tokio::spawn(async move {
                store
                    .with_connection(move |connection| {
                        connection
                            .execute("INSERT INTO t (n) VALUES (?1)", [n])
                            .map_err(sql_error("insert"))?;
                        if n % 10 == 0 {
                            // Fails after writing: its insert must not survive.
                            return Err(StoreError::Failed(format!("refuse {n}")));
                        }
                        Ok(n)
                    })
                    .await
            }));
        }
        let mut failed = 0;
        for write in writes {
            if write.await.unwrap().is_err() {
                failed += 1;
            }
        }
        assert_eq!(failed, 10);
        let (count, tens): (i64, i64) = store
            .with_connection(|connection| {
                connection
                    .query_row(
                        "SELECT count(*), count(*) FILTER (WHERE n % 10 = 0) FROM t",
                        [],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .map_err(sql_error("count"))
            })
            .await
            .unwrap();
        assert_eq!((count, tens), (90, 0));
    }
}
