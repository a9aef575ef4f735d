//! Local adapters (the `local` feature).

mod executions;
mod offline_alarms;
mod secret_file;

pub use executions::{Inserted, SqliteExecutions};
pub use offline_alarms::OfflineAlarmSource;
pub use secret_file::SecretFile;
