//! A gateway whose disk fills up keeps working: the lanes go on scoring,
//! each event that cannot be written is logged and counted, everything kept
//! before stays, and once space returns new events are kept again.
//!
//! The full disk is a store whose commits fail on demand ("No space left on
//! device"), under the real outbox and lanes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use edge_agent::agent::Lanes;
use edge_agent::outbox::{Cursor, Outbox, OutboxConfig};
use edge_agent::telemetry::{AssetBoard, Counters};
use edge_agent::{AgentConfig, AnomalyModel, PreparedAsset};
use store::{FillableStore, SledStore};
use tokio_util::sync::CancellationToken;

/// Polls `done` until it holds, failing after `timeout`.
fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_full_disk_costs_the_events_it_refuses_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FillableStore::new(SledStore::open(dir.path()).unwrap()));
    let outbox = Arc::new(Outbox::open(disk.clone(), OutboxConfig::default()).unwrap());
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/pump-anomaly");
    // A pump in alarm from the start, an event for every window, 20 times
    // faster than real time.
    let toml = format!(
        r#"site = "s"
gateway = "g"
[mqtt]
[[assets]]
id = "P-1"
kind = "pump"
model = "{}"
source = {{ type = "sim", seed = 7, speed = 20, fault = {{ kind = "bearing_outer_race", onset_s = 0, ramp_s = 0 }} }}
detector = {{ reminder_windows = 1 }}
"#,
        models.display()
    );
    let config = AgentConfig::parse(&toml, Path::new("/")).unwrap();
    let model = AnomalyModel::load_dir(&models).unwrap();
    let assets: Vec<PreparedAsset> = config
        .assets
        .iter()
        .map(|a| PreparedAsset::new(&config, a, model.clone()).unwrap())
        .collect();
    let counters = Arc::new(Counters::default());
    let board = Arc::new(AssetBoard::new(assets.iter().map(|a| a.status()).collect()));
    let shutdown = CancellationToken::new();
    let lanes = Lanes::start(
        assets,
        outbox.clone(),
        counters.clone(),
        board,
        shutdown.clone(),
    );
    let minute = Duration::from_secs(60);
    wait_for("10 events kept", minute, || {
        outbox.counters().accepted >= 10
    });

    disk.set_full(true);
    let kept_before = outbox.counters().records;
    let scored_before = counters.snapshot().windows_scored;
    wait_for("10 events refused by the full disk", minute, || {
        outbox.counters().write_failures >= 10
    });
    // The lanes went on: windows scored, the refused events counted.
    let c = counters.snapshot();
    assert!(c.windows_scored >= scored_before + 10, "{c:?}");
    assert!(c.publish_failures >= 10, "{c:?}");
    let o = outbox.counters();
    assert_eq!(o.dropped_alarms, o.write_failures, "{o:?}");
    assert_eq!(o.records, kept_before, "what was kept stays");

    disk.set_full(false);
    let accepted = outbox.counters().accepted;
    wait_for("events kept again", minute, || {
        outbox.counters().accepted >= accepted + 10
    });
    shutdown.cancel();
    lanes.join();

    // Everything kept is still there, in order, on the disk.
    drop(outbox);
    let reopened = Outbox::open(disk, OutboxConfig::default()).unwrap();
    let mut cursor = Cursor::default();
    let ids: Vec<u64> = std::iter::from_fn(|| reopened.next(&mut cursor))
        .map(|r| r.seq)
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(ids.len() as u64 >= kept_before + 10, "{} kept", ids.len());
}
