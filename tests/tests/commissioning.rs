//! Commissioning across an agent restart, with real processes: a gateway
//! whose model asks for per-asset commissioning learns its pump's baseline
//! (the hub shows the progress and the result), is stopped, and on restart
//! watches the pump at once with what it learned: no new baseline, the same
//! thresholds.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use system_tests::{
    Process, bin, free_port, get_json, repo_root, start_broker, start_hub, wait_hub_connected,
    wait_until,
};

/// A copy of the shipped pump model that asks for a 10-window baseline.
fn commissioning_model(dir: &Path) -> std::path::PathBuf {
    let shipped = repo_root().join("models/pump-anomaly");
    let folder = dir.join("pump-commissioned");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(shipped.join("model.onnx"), folder.join("model.onnx")).unwrap();
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(shipped.join("model.json")).unwrap()).unwrap();
    manifest["commissioning"] = serde_json::json!({
        "baseline_windows": 10,
        "threshold_quantile": 0.95,
        "threshold_margin": 1.5,
        "alarm_factor": 2.0,
    });
    std::fs::write(folder.join("model.json"), manifest.to_string()).unwrap();
    folder
}

fn asset(api: &str) -> Result<Value, String> {
    let assets = get_json(&format!("{api}/api/assets"))?;
    assets
        .as_array()
        .and_then(|a| a.iter().find(|v| v["id"] == "P-1").cloned())
        .ok_or_else(|| "P-1 not listed yet".into())
}

#[test]
fn commissioning_is_learned_once_and_kept_across_an_agent_restart() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();
    let (mqtt, http) = (free_port(), free_port());
    let api = format!("http://127.0.0.1:{http}");
    let _broker = start_broker(mqtt, logs);
    let _hub = start_hub("hub", mqtt, http, &dir.path().join("hub-data"), logs);
    wait_hub_connected(&api);

    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"site = "c-site"
gateway = "gw-c"
heartbeat_interval_s = 0.3
data_dir = "agent-data"
[mqtt]
host = "127.0.0.1"
port = {mqtt}
[[assets]]
id = "P-1"
kind = "pump"
model = "{model}"
source = {{ type = "sim", seed = 3401, speed = 5 }}
"#,
            model = commissioning_model(dir.path()).display()
        ),
    )
    .unwrap();
    let run = ["run", "--config", config.to_str().unwrap()];

    let mut first = Process::start("agent-1", &bin("edge-agent"), &run, logs);
    let baseline = wait_until(
        "the hub shows the baseline",
        Duration::from_secs(60),
        || {
            let a = asset(&api)?;
            Ok((a["commissioning"]["phase"] == "baseline").then_some(a))
        },
    );
    assert_eq!(
        baseline["commissioning"]["windows_needed"], 10,
        "{baseline}"
    );
    let learned = wait_until("P-1 commissioned", Duration::from_secs(60), || {
        let a = asset(&api)?;
        Ok((a["commissioning"]["phase"] == "commissioned").then_some(a))
    });
    let c = &learned["commissioning"];
    let threshold = learned["threshold"].as_f64().unwrap();
    let quantile = c["baseline_score_quantile"].as_f64().unwrap();
    assert!(
        (threshold - 1.5 * quantile).abs() < 1e-9 * threshold,
        "{learned}"
    );
    assert!(first.log().contains("commissioned"), "{}", first.log());
    let first_start = get_json(&format!("{api}/api/gateways")).unwrap()[0]["started_at_ms"].clone();
    assert!(first.terminate(Duration::from_secs(30)).is_some());
    assert!(dir.path().join("agent-data").is_dir());

    let second = Process::start("agent-2", &bin("edge-agent"), &run, logs);
    let gateway = wait_until(
        "the restarted agent has scored windows",
        Duration::from_secs(60),
        || {
            let g = get_json(&format!("{api}/api/gateways"))?[0].clone();
            let scored = g["counters"]["windows_scored"].as_u64().unwrap_or(0);
            Ok((g["started_at_ms"] != first_start && scored >= 3).then_some(g))
        },
    );
    assert_eq!(gateway["counters"]["windows_baseline"], 0, "{gateway}");
    let resumed = asset(&api).unwrap();
    assert_eq!(
        resumed["commissioning"], learned["commissioning"],
        "{resumed}"
    );
    assert_eq!(resumed["threshold"], learned["threshold"]);
    assert_eq!(resumed["alarm_threshold"], learned["alarm_threshold"]);
    assert!(
        second
            .log()
            .contains("resuming with the stored commissioning"),
        "{}",
        second.log()
    );
}
