//! A private `moto_server` per test: the AWS API emulator the adapters are tested against.
//! `scripts/test` installs it (a project venv) and points `ALARM_RELAY_MOTO_SERVER` at it.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `moto_server` on a free loopback port; killed when dropped.
pub struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// With extra environment, e.g. `MOTO_PORT`, the port moto's Step Functions interpreter
    /// sends its Lambda calls to.
    pub fn start_with_env(env: &[(&str, String)]) -> Self {
        let binary =
            std::env::var("ALARM_RELAY_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start {binary} ({error}); run the suite with ./scripts/test, which installs it")
            });
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{binary} did not listen on port {port} within 10 s");
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
