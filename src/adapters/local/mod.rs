//! Local adapters (the `local` feature).

mod secret_file;

pub use secret_file::SecretFile;
