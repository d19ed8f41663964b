//! The real `pipecat` binary as a child process on port 0, for process-level tests (kill -9, signals,
//! file-system faults). Include with `#[path = "common/process.rs"] mod process;`.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The admin key of the binaries started here.
pub const ADMIN: &str = "e2e-admin-key";

/// The binary running on a free port. Dropping it kills it (SIGKILL).
pub struct Binary {
    pub child: Child,
    pub url: String,
}

/// A start that did not get as far as listening.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    pub stderr: String,
}

fn command(data_dir: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipecat"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("PIPECAT_ADMIN_KEY", ADMIN)
        .env("RUST_LOG", "warn")
        .env_remove("PIPECAT_CONFIG")
        .env_remove("PIPECAT_LISTEN")
        .env_remove("PIPECAT_WITH_EXAMPLES")
        .stdout(Stdio::piped());
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Reads stdout until the "listening on" line; `None` when stdout ends first (the process exited).
fn wait_for_url(child: &mut Child) -> Option<String> {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next()?.ok()?;
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_string();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Some(url)
}

impl Binary {
    /// Starts the binary (stderr inherited) and waits until it listens; panics when it exits instead.
    pub fn start(data_dir: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> Binary {
        let mut cmd = command(data_dir, config, env);
        cmd.stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn pipecat");
        match wait_for_url(&mut child) {
            Some(url) => Binary { child, url },
            None => {
                let status = child.wait().expect("wait");
                panic!("pipecat exited before listening: {status:?}");
            }
        }
    }

    /// Starts the binary with stderr captured: `Ok` when it listens, else its exit status and stderr.
    pub fn try_start(
        data_dir: &Path,
        config: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Result<Binary, StartFailure> {
        let mut cmd = command(data_dir, config, env);
        cmd.stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn pipecat");
        let mut stderr = child.stderr.take().expect("stderr");
        let collected = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        match wait_for_url(&mut child) {
            Some(url) => Ok(Binary { child, url }),
            None => {
                let status = child.wait().expect("wait");
                let stderr = collected.join().unwrap_or_default();
                Err(StartFailure { status, stderr })
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// Sends a signal (`"TERM"`, `"KILL"`, …) with kill(1).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill(1)")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// SIGKILL and reap.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `within` for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident memory (`VmRSS`) in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when a TCP connection to `addr` is refused (the server stopped accepting).
pub fn refuses(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(
        &addr.parse().expect("socket address"),
        Duration::from_millis(200),
    )
    .is_err()
}
