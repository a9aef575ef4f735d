//! alarm-relay: CloudWatch alarm state changes in, signed AWS DevOps Agent investigations out.
//!
//! The domain ([`event`], [`payload`], [`signing`], [`delivery`]) never touches an AWS SDK or a
//! socket; it talks to the world through the small traits in [`ports`], which [`adapters`]
//! implement for AWS and for the local, single-machine mode.

pub mod adapters;
#[cfg(feature = "local")]
pub mod cli;
pub mod config;
pub mod correlate;
pub mod delivery;
pub mod destination;
#[cfg(feature = "local")]
pub mod engine;
pub mod enrich;
pub mod episode;
pub mod event;
pub mod incident;
pub mod intake;
pub mod outbox;
pub mod payload;
pub mod ports;
pub mod pyjson;
#[cfg(feature = "local")]
pub mod receiver;
pub mod recorder;
pub mod routing;
pub mod secret;
#[cfg(feature = "local")]
pub mod server;
pub mod signer;
pub mod signing;
pub mod testing;
