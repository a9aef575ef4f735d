//! Implementations of [`crate::ports`]: one technology per file.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "local")]
pub mod local;
mod offline_alarms;
mod reqwest_transport;
#[cfg(feature = "sqlite")]
mod sqlite_store;
mod system_clock;

pub use offline_alarms::OfflineAlarmSource;
pub use reqwest_transport::{
    HttpTransportConfig, ReqwestTransport, http_client, http_client_builder,
};
#[cfg(feature = "sqlite")]
pub use sqlite_store::SqliteStore;
pub use system_clock::SystemClock;
