//! A gateway whose broker is unreachable keeps working when its outbox
//! fills (it drops the oldest records, counted), still stops promptly on
//! SIGTERM, and says how many stay kept for the next start.

use std::time::{Duration, Instant};

use system_tests::{Process, bin, free_port, repo_root, wait_until};

#[test]
fn agent_stops_within_seconds_when_the_broker_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: free_port() releases it again.
    let closed = free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"site = "s"
gateway = "gw-unreachable"
heartbeat_interval_s = 0.2
[mqtt]
host = "127.0.0.1"
port = {closed}
[outbox]
# About forty events.
max_bytes = 65536
[[assets]]
id = "P-1"
kind = "pump"
model = "{model}"
source = {{ type = "sim", seed = 3301, speed = 50, fault = {{ kind = "bearing_outer_race", onset_s = 0, ramp_s = 0 }} }}
# An event for every window: hundreds kept within seconds.
detector = {{ reminder_windows = 1 }}
"#,
            model = repo_root().join("models/pump-anomaly").display()
        ),
    )
    .unwrap();
    let mut agent = Process::start(
        "agent",
        &bin("edge-agent"),
        &["run", "--config", config.to_str().unwrap()],
        dir.path(),
    );
    wait_until(
        "200 events raised while offline",
        Duration::from_secs(120),
        || {
            let raised = agent.log().matches("detector event").count();
            Ok((raised >= 200).then_some(()))
        },
    );
    let asked = Instant::now();
    let status = agent
        .terminate(Duration::from_secs(30))
        .expect("agent exits after SIGTERM");
    let took = asked.elapsed();
    eprintln!("agent stopped {:.1} s after SIGTERM", took.as_secs_f64());
    assert!(status.success(), "{status:?}\n{}", agent.log());
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let log = agent.log();
    assert!(
        log.contains("records stay in the outbox and are sent after the next start"),
        "{log}"
    );
    assert!(log.contains("MQTT connection failed"), "{log}");
    // Full long before the 200th event; it went on raising them.
    assert!(
        log.contains(
            "outbox full (65536 bytes): oldest records of the least important class dropped"
        ),
        "{log}"
    );
    assert!(log.matches("detector event").count() >= 200);
}
