//! The whole chain from a sensor node: `edge-agent node-sim` runs the
//! firmware's sampling loop over a simulated accelerometer and thermometer
//! and serves its frames on TCP; a gateway reads them with a `type = "node"`
//! source (the firmware's frame decoder), scores them, and the hub opens a
//! work order when the node's pump develops a bearing fault. The link's
//! counters (frames damaged, sequence gaps) and the pipeline's reach the hub
//! in heartbeats.

use std::time::Duration;

use serde_json::Value;
use system_tests::{
    Process, bin, free_port, get_json, repo_root, start_broker, start_hub, wait_until,
};

#[test]
fn a_faulty_pump_on_a_sensor_node_becomes_a_work_order() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();
    let (mqtt, http, node) = (free_port(), free_port(), free_port());
    let api = format!("http://127.0.0.1:{http}");
    let _broker = start_broker(mqtt, logs);
    let _hub = start_hub("hub", mqtt, http, &dir.path().join("hub"), logs);
    let node_sim = Process::start(
        "node-sim",
        &bin("edge-agent"),
        &[
            "node-sim",
            "--listen",
            &format!("127.0.0.1:{node}"),
            "--node-id",
            "7",
            "--seed",
            "3501",
            "--speed",
            "4",
            "--fault",
            "bearing_outer_race",
            "--onset-s",
            "20",
            "--ramp-s",
            "60",
        ],
        logs,
    );
    wait_until("the node listening", Duration::from_secs(30), || {
        Ok(node_sim.log().contains("listening on").then_some(()))
    });
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"site = "node-site"
gateway = "gw-node"
heartbeat_interval_s = 0.5
[mqtt]
port = {mqtt}
[[assets]]
id = "P-7"
kind = "pump"
model = "{}"
source = {{ type = "node", connect = "tcp://127.0.0.1:{node}", node_id = 7, sample_rate_hz = 5120 }}
"#,
            repo_root().join("models/pump-anomaly").display()
        ),
    )
    .unwrap();
    let _agent = Process::start(
        "agent",
        &bin("edge-agent"),
        &["run", "--config", config.to_str().unwrap()],
        logs,
    );

    // Healthy for the first 20 simulated seconds: windows are scored and
    // nothing is raised.
    let counters = wait_until(
        "20 windows scored from the node",
        Duration::from_secs(60),
        || {
            let gateways = get_json(&format!("{api}/api/gateways"))?;
            let c = gateways[0]["counters"].clone();
            Ok((c["windows_scored"].as_u64() >= Some(20)).then_some(c))
        },
    );
    let orders = get_json(&format!("{api}/api/work-orders")).unwrap();
    let early = orders.as_array().unwrap().len();

    let order = wait_until(
        "a work order for the node's pump",
        Duration::from_secs(120),
        || {
            let orders = get_json(&format!("{api}/api/work-orders"))?;
            Ok(orders
                .as_array()
                .and_then(|a| a.iter().find(|o| o["asset_id"] == "P-7").cloned()))
        },
    );
    assert_eq!(early, 0, "a work order before the fault started");
    assert!(
        order["reason"].as_str().unwrap().contains("env_bpfo_g"),
        "{order}"
    );

    // The node link was clean: every frame decoded, no sequence gap.
    let gateways = get_json(&format!("{api}/api/gateways")).unwrap();
    let c: &Value = &gateways[0]["counters"];
    assert_eq!(c["frame_errors"], 0, "{c}");
    assert_eq!(c["sequence_gaps"], 0, "{c}");
    assert_eq!(c["gaps"], 0, "{c}");
    assert!(
        c["windows_scored"].as_u64() > counters["windows_scored"].as_u64(),
        "{c}"
    );
}
