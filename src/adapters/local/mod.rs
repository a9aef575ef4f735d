//! Local adapters (the `local` feature).

mod alarm_file;
mod executions;
mod secret_file;

pub use crate::adapters::OfflineAlarmSource;
pub use alarm_file::{AlarmFileError, FileAlarmSource};
pub use executions::{Inserted, SqliteExecutions};
pub use secret_file::SecretFile;
