//! Implementations of [`crate::ports`]: one technology per file.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "local")]
pub mod local;
mod reqwest_transport;
mod system_clock;

pub use reqwest_transport::{HttpTransportConfig, ReqwestTransport};
pub use system_clock::SystemClock;
