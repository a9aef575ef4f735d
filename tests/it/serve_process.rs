//! `alarm-relay serve` as a child process, for the tests that run it as users do.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A started `serve` over `db` and `secret` (plus `extra` options), listening on a free
/// loopback port: the child, its base URL and the first line it printed.
pub(crate) fn spawn(db: &Path, secret: &Path, extra: &[&str]) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_alarm-relay"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-http-loopback",
            "--db",
        ])
        .arg(db)
        .arg("--secret-file")
        .arg(secret)
        .args(extra)
        .env_remove("ALARM_RELAY_SECRET_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("serve's stdout is piped"))
        .read_line(&mut line)
        .expect("serve prints its address");
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_owned();
    (child, url, line)
}
