//! Helpers for system tests: real processes on loopback, waited on by
//! condition, stopped by PID.
//!
//! The binaries under test are the workspace's own (`central-hub`,
//! `edge-agent`), taken from the same target directory as the test binary,
//! so the suite shares one build. Every process is started with its output in
//! a log file that is printed when a test fails, and is stopped when its
//! guard is dropped.

pub mod faults;
pub mod webdriver;

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_owned()
}

/// Path of a workspace binary next to the running test binary.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` (scripts/test.sh does) before the system tests",
        path.display()
    );
    path
}

/// The folder of a shared real data set (`cwru-bearing`, `skab`, ...).
///
/// Their licences forbid committing them, so tests read them in place:
/// from `$PDM_DATA_DIR/<name>` if set, else from `../shared/data/<name>`
/// beside the repository (where CI has them). Absent, the caller's test is
/// skipped with a line saying so; it never fails for lack of data.
pub fn shared_data(name: &str) -> Option<PathBuf> {
    let candidates = std::env::var_os("PDM_DATA_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain(repo_root().parent().map(|p| p.join("shared/data")));
    for base in candidates {
        let dir = base.join(name);
        if dir.join("SOURCE.md").is_file() {
            return Some(dir);
        }
    }
    eprintln!(
        "skipped: data set `{name}` not found (set PDM_DATA_DIR or place it in ../shared/data)"
    );
    None
}

/// A headerless float32 little-endian file.
pub fn read_f32le(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A free TCP port on 127.0.0.1 (free when asked; bound again by the caller).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on loopback")
        .port()
}

/// A child process that is killed (by its PID) when dropped.
pub struct Process {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `program args` with stdout and stderr going to `log_dir/name.log`.
    pub fn start(name: &str, program: &Path, args: &[&str], log_dir: &Path) -> Process {
        Process::start_with_env(name, program, args, &[], log_dir)
    }

    /// [`Process::start`] with extra environment variables (`RUST_LOG` is
    /// `info,rumqttd=off` unless given).
    pub fn start_with_env(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log_dir: &Path,
    ) -> Process {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env("RUST_LOG", "info,rumqttd=off")
            .envs(env.iter().copied())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        eprintln!(
            "started {name} (pid {}): {} {}",
            child.id(),
            program.display(),
            args.join(" ")
        );
        Process {
            name: name.to_owned(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The token a hub printed for `role` (`<role> token: <token>`), once
    /// it has; waits up to 30 s.
    pub fn printed_token(&self, role: &str) -> String {
        let prefix = format!("{role} token: ");
        wait_until(
            &format!("{} to print the {role} token", self.name),
            Duration::from_secs(30),
            || {
                Ok(self
                    .log()
                    .lines()
                    .find_map(|l| l.strip_prefix(&prefix).map(|t| t.trim().to_owned())))
            },
        )
    }

    /// Sends SIGTERM (a clean stop) and waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        self.wait_exit(timeout)
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- {} log ({}) -----\n{}",
                self.name,
                self.log.display(),
                self.log()
            );
        }
    }
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes;
/// panics naming `what` and the last observation.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>, String>,
) -> T {
    let started = Instant::now();
    let mut last = String::from("not checked yet");
    while started.elapsed() < timeout {
        match check() {
            Ok(Some(v)) => {
                eprintln!("{what}: after {:.1} s", started.elapsed().as_secs_f64());
                return v;
            }
            Ok(None) => last = "condition not met".into(),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}; last: {last}");
}

/// Starts the embedded broker (`central-hub broker`) on 127.0.0.1:`mqtt`.
pub fn start_broker(mqtt: u16, log_dir: &Path) -> Process {
    Process::start(
        "broker",
        &bin("central-hub"),
        &["broker", "--listen", &format!("127.0.0.1:{mqtt}")],
        log_dir,
    )
}

/// The operator's bearer token of hubs started with [`hub_config`].
pub const TEST_OPERATOR_TOKEN: &str = "system-test-operator-token-000001";
/// The engineer's bearer token of hubs started with [`hub_config`]; what
/// [`get_json`] sends.
pub const TEST_ENGINEER_TOKEN: &str = "system-test-engineer-token-000001";

/// The signing key of test engineer `n` (1 and 2 are trusted by hubs
/// started with [`hub_config`]).
pub fn test_signing_key(n: u8) -> protocol::package::SigningKey {
    protocol::package::secret_key_from_seed([n; 32])
}

/// Writes a hub config with the test users (and the test engineers' keys 1
/// and 2 as trusted model signers) into `dir` and returns its path.
pub fn hub_config(dir: &Path) -> PathBuf {
    let path = dir.join("hub-test.toml");
    let key = |n| protocol::package::format_public_key(&test_signing_key(n).verifying_key());
    std::fs::write(
        &path,
        format!(
            "[[users]]\nname = \"test-operator\"\nrole = \"operator\"\ntoken = \"{TEST_OPERATOR_TOKEN}\"\n\n\
             [[users]]\nname = \"test-engineer\"\nrole = \"engineer\"\ntoken = \"{TEST_ENGINEER_TOKEN}\"\n\n\
             [models]\ntrusted_keys = [\"{}\", \"{}\"]\n",
            key(1),
            key(2)
        ),
    )
    .expect("hub config written");
    path
}

/// Starts `central-hub serve` against the broker on `mqtt`, its API on
/// `http`, its database in `data_dir`, logging as `name`, with the test
/// users ([`hub_config`]).
pub fn start_hub(name: &str, mqtt: u16, http: u16, data_dir: &Path, log_dir: &Path) -> Process {
    let config = hub_config(log_dir);
    Process::start(
        name,
        &bin("central-hub"),
        &[
            "serve",
            "--mqtt",
            &format!("127.0.0.1:{mqtt}"),
            "--http",
            &format!("127.0.0.1:{http}"),
            "--data-dir",
            data_dir.to_str().expect("a UTF-8 path"),
            "--config",
            config.to_str().expect("a UTF-8 path"),
        ],
        log_dir,
    )
}

/// Waits until the hub whose API is at `api` reports a broker connection.
pub fn wait_hub_connected(api: &str) {
    wait_until(
        "hub connected to the broker",
        Duration::from_secs(30),
        || {
            let h = get_json(&format!("{api}/healthz"))?;
            Ok((h["broker_connected"] == true).then_some(()))
        },
    );
}

/// Runs `edge-agent eval BENCHMARK --data DATA --model MODEL` and returns
/// its stdout (the test fails with stderr if the run does), printing it.
pub fn run_eval(benchmark: &str, data: &Path, model: &str) -> String {
    let out = Command::new(bin("edge-agent"))
        .args(["eval", benchmark, "--data"])
        .arg(data)
        .arg("--model")
        .arg(repo_root().join("models").join(model))
        .env("RUST_LOG", "off")
        .output()
        .expect("edge-agent runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}");
    stdout
}

/// The value of `name=...` in a `key=value key=value` line.
pub fn figure<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// GET a JSON document as the test engineer ([`TEST_ENGINEER_TOKEN`]).
pub fn get_json(url: &str) -> Result<serde_json::Value, String> {
    get_json_as(url, TEST_ENGINEER_TOKEN)
}

/// GET a JSON document with a bearer token.
pub fn get_json_as(url: &str, token: &str) -> Result<serde_json::Value, String> {
    ureq::get(url)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?
        .body_mut()
        .read_json()
        .map_err(|e| format!("GET {url}: body: {e}"))
}
