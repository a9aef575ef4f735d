//! Local adapters (the `local` feature): the secret file and the webhook receiver.

pub mod receiver;
mod secret_file;

pub use secret_file::SecretFile;
