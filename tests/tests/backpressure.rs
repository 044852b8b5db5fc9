//! Acquisition never waits for scoring: a recording replayed as a live
//! sensor a million times faster than real time outruns the scoring lane;
//! windows are dropped, counted, and the counts reach the hub in the
//! gateway's heartbeat.

use std::io::Write;
use std::time::Duration;

use edge_agent::features::AssetAnalysis;
use edge_agent::source::{SimConfig, SourceConfig, SourcePoll};
use protocol::AssetKind;
use system_tests::{
    Process, bin, free_port, get_json, repo_root, start_broker, start_hub, wait_hub_connected,
    wait_until,
};

#[test]
fn dropped_windows_are_counted_and_reported_in_the_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();
    // 300 s of a simulated pump as a raw float32 recording.
    let recording = dir.path().join("pump.f32");
    let mut sim = SourceConfig::Sim(SimConfig {
        seed: 3601,
        speed: 0.0,
        sample_rate_hz: None,
        duration_s: None,
        fault: None,
    })
    .open(AssetKind::Pump, 0, &AssetAnalysis::default())
    .unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(&recording).unwrap());
    for _ in 0..1200 {
        let SourcePoll::Block(b) = sim.poll().unwrap() else {
            unreachable!()
        };
        for v in b.vibration {
            file.write_all(&v.to_le_bytes()).unwrap();
        }
    }
    file.flush().unwrap();
    drop(file);

    let (mqtt, http) = (free_port(), free_port());
    let api = format!("http://127.0.0.1:{http}");
    let _broker = start_broker(mqtt, logs);
    let _hub = start_hub("hub", mqtt, http, &dir.path().join("hub"), logs);
    wait_hub_connected(&api);
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"site = "bp-site"
gateway = "gw-bp"
heartbeat_interval_s = 0.2
[mqtt]
port = {mqtt}
[[assets]]
id = "P-1"
kind = "pump"
model = "{}"
source = {{ type = "f32le", path = "{}", sample_rate_hz = 5120, temperature_c = 40, speed = 1000000 }}
"#,
            repo_root().join("models/pump-anomaly").display(),
            recording.display()
        ),
    )
    .unwrap();
    let mut agent = Process::start(
        "agent",
        &bin("edge-agent"),
        &["run", "--config", config.to_str().unwrap()],
        logs,
    );
    // The replay ends by itself; the agent's last heartbeat has the totals.
    let status = agent
        .wait_exit(Duration::from_secs(120))
        .expect("the agent ends with its recording");
    assert!(status.success(), "{status:?}\n{}", agent.log());
    let c = wait_until(
        "the final counters at the hub",
        Duration::from_secs(30),
        || {
            let gateways = get_json(&format!("{api}/api/gateways"))?;
            let c = gateways[0]["counters"].clone();
            Ok((c["windows_acquired"].as_u64() == Some(300)).then_some(c))
        },
    );
    let n = |k: &str| c[k].as_u64().unwrap();
    assert!(n("windows_dropped") > 0, "nothing dropped: {c}");
    assert!(
        n("windows_dropped") > n("windows_scored"),
        "acquisition waited: {c}"
    );
    assert_eq!(
        n("windows_scored") + n("windows_dropped") + n("windows_rejected") + n("model_failures"),
        300,
        "{c}"
    );
}
