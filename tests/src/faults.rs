//! A fault-injection rig: a broker (the embedded rumqttd or a real
//! Mosquitto with the shipped configuration), the hub and one gateway, all
//! real processes on 127.0.0.1, each of which a test can stop, kill -9 and
//! start again; and the accounting the fault tests print.
//!
//! What the gateway sent is every event id its runs logged as kept in the
//! outbox (durable, so promised); what the hub stored is what its
//! `/api/events` lists for the gateway. An event applied twice would show
//! as work-order evidence counted more often than stored events point at
//! work orders.

use std::collections::HashSet;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{Process, bin, free_port, get_json, repo_root, wait_until};

/// Which broker the rig runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// `central-hub broker` (rumqttd, in memory).
    Embedded,
    /// Mosquitto with `central-hub/deploy/mosquitto.conf`.
    Mosquitto,
}

impl BrokerKind {
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Embedded => "rumqttd",
            BrokerKind::Mosquitto => "mosquitto",
        }
    }
}

/// The Mosquitto binary, installed with apt-get (under a lock, as tests
/// run in parallel) if it is missing.
pub fn mosquitto() -> PathBuf {
    let find = || {
        [
            "/usr/sbin/mosquitto",
            "/usr/bin/mosquitto",
            "/usr/local/sbin/mosquitto",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    };
    if let Some(p) = find() {
        return p;
    }
    eprintln!("mosquitto not found; installing it with apt-get");
    let sudo = if Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
    {
        ""
    } else {
        "sudo "
    };
    let script = format!(
        "flock /tmp/pdm-apt.lock sh -c 'command -v mosquitto || [ -x /usr/sbin/mosquitto ] || \
         ({sudo}apt-get update -qq && DEBIAN_FRONTEND=noninteractive {sudo}apt-get install -y -qq mosquitto)'"
    );
    let status = Command::new("sh").args(["-c", &script]).status();
    find().unwrap_or_else(|| {
        panic!(
            "mosquitto is needed and could not be installed ({status:?}); apt-get install mosquitto"
        )
    })
}

/// A broker on 127.0.0.1 that can be stopped and started on the same port.
pub struct Broker {
    pub kind: BrokerKind,
    pub port: u16,
    dir: PathBuf,
    process: Option<Process>,
    starts: u32,
}

impl Broker {
    pub fn start(kind: BrokerKind, dir: &Path) -> Broker {
        let mut b = Broker {
            kind,
            port: free_port(),
            dir: dir.to_owned(),
            process: None,
            starts: 0,
        };
        b.up();
        b
    }

    /// Starts it (again) and waits until it accepts connections.
    pub fn up(&mut self) {
        assert!(self.process.is_none(), "broker already running");
        self.starts += 1;
        let name = format!("broker-{}", self.starts);
        let process = match self.kind {
            BrokerKind::Embedded => Process::start(
                &name,
                &bin("central-hub"),
                &["broker", "--listen", &format!("127.0.0.1:{}", self.port)],
                &self.dir,
            ),
            BrokerKind::Mosquitto => {
                let conf = self.mosquitto_conf();
                Process::start(
                    &name,
                    &mosquitto(),
                    &["-c", conf.to_str().unwrap()],
                    &self.dir,
                )
            }
        };
        self.process = Some(process);
        let port = self.port;
        wait_until(
            "broker accepting connections",
            Duration::from_secs(20),
            || {
                Ok(TcpStream::connect(("127.0.0.1", port))
                    .is_ok()
                    .then_some(()))
            },
        );
    }

    /// A clean stop (SIGTERM; Mosquitto saves its sessions).
    pub fn down(&mut self) {
        let mut p = self.process.take().expect("broker running");
        p.terminate(Duration::from_secs(20))
            .expect("broker stops on SIGTERM");
    }

    /// The shipped configuration, with this rig's listener and folder.
    fn mosquitto_conf(&self) -> PathBuf {
        let shipped =
            std::fs::read_to_string(repo_root().join("central-hub/deploy/mosquitto.conf"))
                .expect("central-hub/deploy/mosquitto.conf");
        let db = self.dir.join("mosquitto-db");
        std::fs::create_dir_all(&db).unwrap();
        let mut conf: String = shipped
            .lines()
            .filter(|l| !l.starts_with("persistence_location") && !l.starts_with("listener"))
            .map(|l| format!("{l}\n"))
            .collect();
        // Started as root, Mosquitto would switch to its own user, which
        // cannot write in this test's private folder: stay who we are.
        let user = Command::new("id").arg("-un").output().expect("id -un");
        conf += &format!(
            "persistence_location {}/\nlistener {} 127.0.0.1\nlog_dest stderr\nuser {}\n",
            db.display(),
            self.port,
            String::from_utf8_lossy(&user.stdout).trim()
        );
        let path = self.dir.join("mosquitto.conf");
        std::fs::write(&path, conf).unwrap();
        path
    }
}

/// Hub, gateway and their data folders around a [`Broker`].
pub struct Rig {
    pub dir: PathBuf,
    pub broker: Broker,
    pub api: String,
    http: u16,
    hub: Option<Process>,
    hub_starts: u32,
    agent: Option<Process>,
    agent_runs: u32,
    agent_config: PathBuf,
}

/// Site and gateway of the rig's gateway.
pub const SITE: &str = "faults";
pub const GATEWAY: &str = "gw-faults";

impl Rig {
    /// Broker and hub up; the gateway's config written (not started):
    /// one pump with a bearing fault from the start, an event for every
    /// window (`reminder_windows = 1`), `speed` seconds of signal per second
    /// for `signal_s` seconds of signal per run.
    pub fn new(kind: BrokerKind, dir: &Path, speed: f64, signal_s: f64) -> Rig {
        let broker = Broker::start(kind, dir);
        let http = free_port();
        let agent_config = dir.join("gateway.toml");
        std::fs::write(
            &agent_config,
            format!(
                r#"site = "{SITE}"
gateway = "{GATEWAY}"
heartbeat_interval_s = 1
data_dir = "{data}"

[mqtt]
host = "127.0.0.1"
port = {port}
drain_timeout_s = 60

[[assets]]
id = "P-1"
kind = "pump"
model = "{model}"
source = {{ type = "sim", seed = 5101, speed = {speed}, duration_s = {signal_s}, fault = {{ kind = "bearing_outer_race", onset_s = 0, ramp_s = 0 }} }}
detector = {{ reminder_windows = 1 }}
"#,
                data = dir.join("agent-data").display(),
                port = broker.port,
                model = repo_root().join("models/pump-anomaly").display(),
            ),
        )
        .unwrap();
        let mut rig = Rig {
            dir: dir.to_owned(),
            broker,
            api: format!("http://127.0.0.1:{http}"),
            http,
            hub: None,
            hub_starts: 0,
            agent: None,
            agent_runs: 0,
            agent_config,
        };
        rig.start_hub();
        rig
    }

    pub fn start_hub(&mut self) {
        self.hub_starts += 1;
        let config = crate::hub_config(&self.dir);
        let hub = Process::start(
            &format!("hub-{}", self.hub_starts),
            &bin("central-hub"),
            &[
                "serve",
                "--mqtt",
                &format!("127.0.0.1:{}", self.broker.port),
                "--http",
                &format!("127.0.0.1:{}", self.http),
                "--data-dir",
                self.dir.join("hub-data").to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
            ],
            &self.dir,
        );
        self.hub = Some(hub);
        crate::wait_hub_connected(&self.api);
    }

    pub fn kill_hub(&mut self) {
        self.hub.take().expect("hub running").kill();
    }

    pub fn start_agent(&mut self) {
        self.agent_runs += 1;
        let agent = Process::start_with_env(
            &format!("agent-{}", self.agent_runs),
            &bin("edge-agent"),
            &["run", "--config", self.agent_config.to_str().unwrap()],
            &[("RUST_LOG", "info,edge_agent::event_sink=debug")],
            &self.dir,
        );
        self.agent = Some(agent);
    }

    pub fn kill_agent(&mut self) {
        self.agent.take().expect("agent running").kill();
    }

    /// Every log of every agent run, joined.
    pub fn agent_logs(&self) -> String {
        (1..=self.agent_runs)
            .map(|n| {
                std::fs::read_to_string(self.dir.join(format!("agent-{n}.log"))).unwrap_or_default()
            })
            .collect()
    }

    /// Event ids the gateway kept (across all its runs).
    pub fn sent(&self) -> HashSet<String> {
        self.agent_logs()
            .lines()
            .filter_map(|l| {
                let rest = l.split("event ").nth(1)?;
                let (id, tail) = rest.split_once(' ')?;
                tail.starts_with("kept in the outbox")
                    .then(|| id.to_owned())
            })
            .collect()
    }

    /// Waits until the gateway has kept at least `n` events.
    pub fn wait_sent(&self, n: usize, timeout: Duration) {
        wait_until(&format!("{n} events kept by the gateway"), timeout, || {
            let sent = self.sent().len();
            Ok((sent >= n).then_some(()))
        });
    }

    /// Waits for the running agent to end by itself (its signal ran out and
    /// its outbox drained), and checks it left nothing behind.
    pub fn wait_agent_done(&mut self, timeout: Duration) {
        let mut agent = self.agent.take().expect("agent running");
        let status = agent
            .wait_exit(timeout)
            .expect("the agent ends when its signal does");
        assert!(status.success(), "{status:?}");
        let log = agent.log();
        assert!(
            !log.contains("records stay in the outbox"),
            "outbox not drained:\n{log}"
        );
    }

    /// Event ids the hub stored for the gateway.
    pub fn stored(&self) -> Result<HashSet<String>, String> {
        let events = get_json(&format!(
            "{}/api/events?site={SITE}&gateway={GATEWAY}&limit=1000000",
            self.api
        ))?;
        Ok(events
            .as_array()
            .ok_or("not a list")?
            .iter()
            .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
            .collect())
    }

    /// Evidence counted on work orders beyond the stored events that point
    /// at them: an event applied twice.
    pub fn duplicated(&self) -> Result<i64, String> {
        let orders = get_json(&format!("{}/api/work-orders", self.api))?;
        let counted: i64 = orders
            .as_array()
            .ok_or("not a list")?
            .iter()
            .filter(|w| w["site"] == SITE)
            .filter_map(|w| w["event_count"].as_i64())
            .sum();
        let events = get_json(&format!(
            "{}/api/events?site={SITE}&gateway={GATEWAY}&limit=1000000",
            self.api
        ))?;
        let pointing = events
            .as_array()
            .ok_or("not a list")?
            .iter()
            .filter(|e| !e["work_order"].is_null())
            .count() as i64;
        Ok(counted - pointing)
    }

    /// Waits until the hub holds every event the gateway sent, then prints
    /// and returns the accounting line.
    pub fn account(&self, name: &str, timeout: Duration) -> Accounting {
        let sent = self.sent();
        assert!(!sent.is_empty(), "the gateway sent nothing");
        // The event list is large: read it once a second, not every poll.
        let mut last_read: Option<std::time::Instant> = None;
        let stored = wait_until(
            &format!("{name}: hub holds all {} events", sent.len()),
            timeout,
            || {
                if last_read.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                    return Ok(None);
                }
                last_read = Some(std::time::Instant::now());
                let stored = self.stored()?;
                match sent.difference(&stored).count() {
                    0 => Ok(Some(stored)),
                    missing => Err(format!("{missing} of {} not at the hub", sent.len())),
                }
            },
        );
        let a = Accounting {
            sent: sent.len(),
            stored: stored.len(),
            lost: sent.difference(&stored).count(),
            duplicated: self.duplicated().expect("work orders readable"),
        };
        println!(
            "faults: {name} sent={} stored={} lost={} duplicated={}",
            a.sent, a.stored, a.lost, a.duplicated
        );
        // What the deduplication absorbed (the hub's counter, since its
        // last start): the price of at-least-once delivery.
        if let Ok(stats) = get_json(&format!("{}/api/stats", self.api)) {
            println!("faults-detail: {name} redelivered={}", stats["duplicates"]);
        }
        a
    }
}

/// The figures a fault test prints and asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accounting {
    pub sent: usize,
    pub stored: usize,
    pub lost: usize,
    pub duplicated: i64,
}
