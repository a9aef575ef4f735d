//! Local adapters (the `local` feature).

mod alarm_file;
mod executions;
mod offline_alarms;
mod secret_file;

pub use alarm_file::{AlarmFileError, FileAlarmSource};
pub use executions::{Inserted, SqliteExecutions};
pub use offline_alarms::OfflineAlarmSource;
pub use secret_file::SecretFile;
