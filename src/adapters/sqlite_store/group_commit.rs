//! The store's connection thread, which commits the operations waiting for it together.
//!
//! A [`SqliteStore`](super::SqliteStore) hands every operation on its connection to one
//! thread that owns the connection. Each turn, the thread takes the operations that are
//! waiting (up to [`MAX_BATCH`]), opens one `BEGIN IMMEDIATE` transaction, runs each inside its
//! own savepoint (an operation that fails is rolled back to its savepoint, alone), commits, and
//! only then answers them: an operation's success means its writes are durable. With
//! `synchronous=FULL` a commit is one sync of the WAL, so the intake of many concurrent events
//! costs one disk sync per batch instead of one per write. A lone operation is committed at
//! once: batching adds no wait. If the commit fails, every operation of the batch answers its
//! error.
//!
//! An operation that panics (a bug) is rolled back and its caller told so; the connection is
//! then considered unusable and every later operation fails rather than run on it, as a
//! poisoned mutex would.

use super::{classify, sql_error};
use crate::ports::StoreError;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Operations committed in one transaction, at most.
const MAX_BATCH: usize = 256;

/// Sends operations to the connection thread; clones share it. The thread ends, and closes
/// the connection, when the last clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct Connector {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Connector {
    /// Starts the thread that owns `connection`.
    pub(super) fn start(connection: Connection) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-store".to_owned())
            .spawn(move || serve(connection, queue))
            .map_err(|error| {
                StoreError::Failed(format!("start the SQLite connection thread: {error}"))
            })?;
        Ok(Self { jobs })
    }

    /// Runs `operation` on the connection, inside the transaction of its batch; answers once
    /// that transaction is committed (or has failed).
    pub(super) async fn run<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(Operation { operation, reply }))
            .map_err(|_| unusable())?;
        answer
            .await
            .map_err(|_| StoreError::Failed("a SQLite operation panicked".to_owned()))?
    }
}

fn unusable() -> StoreError {
    StoreError::Failed(
        "the SQLite connection is unusable: an earlier operation panicked while using it"
            .to_owned(),
    )
}

/// One operation and where its answer goes, with its result type erased.
trait Job: Send {
    /// Runs the operation; answers whether it succeeded, and how to answer its caller once
    /// the batch's commit is known (`Some(error)` if the commit failed).
    fn run(self: Box<Self>, connection: &mut Connection) -> (bool, Box<dyn Answer>);
    /// Answers `error` without running.
    fn refuse(self: Box<Self>, error: StoreError);
}

/// The caller's answer, held until the commit.
trait Answer: Send {
    fn send(self: Box<Self>, commit: Result<(), StoreError>);
}

struct Operation<T, F> {
    operation: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

struct Reply<T> {
    outcome: Result<T, StoreError>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Operation<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, connection: &mut Connection) -> (bool, Box<dyn Answer>) {
        let outcome = (self.operation)(connection);
        let ok = outcome.is_ok();
        (
            ok,
            Box::new(Reply {
                outcome,
                reply: self.reply,
            }),
        )
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

impl<T: Send> Answer for Reply<T> {
    fn send(self: Box<Self>, commit: Result<(), StoreError>) {
        let outcome = match (self.outcome, commit) {
            (Ok(_), Err(error)) => Err(error),
            (outcome, _) => outcome,
        };
        let _ = self.reply.send(outcome);
    }
}

/// The thread: one batch per turn until every [`Connector`] is dropped.
fn serve(mut connection: Connection, queue: mpsc::Receiver<Box<dyn Job>>) {
    let mut poisoned = false;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if poisoned {
            batch.into_iter().for_each(|job| job.refuse(unusable()));
            continue;
        }
        poisoned = commit_batch(&mut connection, batch);
    }
}

/// Runs `batch` in one transaction and answers each job; answers whether a job panicked.
fn commit_batch(connection: &mut Connection, batch: Vec<Box<dyn Job>>) -> bool {
    let doing = format!("begin a transaction of {} operation(s)", batch.len());
    if let Err(error) = execute(connection, "BEGIN IMMEDIATE") {
        let error = classify(&doing, &error);
        batch.into_iter().for_each(|job| job.refuse(error.clone()));
        return false;
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut panicked = false;
    for job in jobs.by_ref() {
        if let Err(error) = execute(connection, "SAVEPOINT operation") {
            job.refuse(sql_error("open a savepoint")(error));
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| job.run(connection))) {
            Ok((true, answer)) => {
                answers.push(answer);
                if let Err(error) = execute(connection, "RELEASE operation") {
                    tracing::error!(%error, "SQLite refused to release a savepoint");
                }
            }
            Ok((false, answer)) => {
                answers.push(answer);
                rollback_operation(connection);
            }
            Err(_) => {
                // The job's reply was dropped while unwinding: its caller learns of the panic.
                rollback_operation(connection);
                panicked = true;
                break;
            }
        }
    }
    jobs.for_each(|job| job.refuse(unusable()));
    let commit = execute(connection, "COMMIT").map_err(|error| classify("commit", &error));
    if commit.is_err() {
        // A failed COMMIT can leave the transaction open; end it so the next batch can begin.
        let _ = connection.execute_batch("ROLLBACK");
    }
    for answer in answers {
        answer.send(commit.clone());
    }
    panicked
}

fn rollback_operation(connection: &Connection) {
    if let Err(error) = execute(connection, "ROLLBACK TO operation")
        .and_then(|()| execute(connection, "RELEASE operation"))
    {
        tracing::error!(%error, "SQLite refused to roll back to a savepoint");
    }
}

/// Runs one statement of the batch's own (`BEGIN`, `SAVEPOINT`, …), prepared once per
/// connection: they run several times per batch, and parsing them each time showed in
/// profiles.
fn execute(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(drop)
}
