//! The agent's lanes (acquisition thread -> scoring thread) with real
//! sources: acquisition never waits for scoring, and a silent node link puts
//! the channel in sensor_fault.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_agent::agent::Lanes;
use edge_agent::features::AssetAnalysis;
use edge_agent::source::{SimConfig, SourceConfig, SourcePoll};
use edge_agent::telemetry::{AssetBoard, Counters};
use edge_agent::{AgentConfig, AnomalyModel, PreparedAsset};
use protocol::{AssetKind, DetectorState, EventKind, Message};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn models() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn prepare(toml: &str) -> Vec<PreparedAsset> {
    let config = AgentConfig::parse(toml, Path::new("/")).unwrap();
    let model = AnomalyModel::load_dir(&models().join("pump-anomaly")).unwrap();
    config
        .assets
        .iter()
        .map(|a| PreparedAsset::new(&config, a, model.clone()).unwrap())
        .collect()
}

struct Running {
    lanes: Lanes,
    counters: Arc<Counters>,
    events: mpsc::Receiver<Message>,
    shutdown: CancellationToken,
}

fn start(assets: Vec<PreparedAsset>) -> Running {
    let counters = Arc::new(Counters::default());
    let board = Arc::new(AssetBoard::new(assets.iter().map(|a| a.status()).collect()));
    let (tx, events) = mpsc::channel(10_000);
    let shutdown = CancellationToken::new();
    let lanes = Lanes::start(assets, tx, counters.clone(), board, shutdown.clone());
    Running {
        lanes,
        counters,
        events,
        shutdown,
    }
}

#[test]
fn acquisition_never_waits_for_scoring_windows_are_dropped_and_counted() {
    // 300 s of a simulated pump, written as a raw recording.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pump.f32");
    let mut sim = SourceConfig::Sim(SimConfig {
        seed: 3401,
        speed: 0.0,
        sample_rate_hz: None,
        duration_s: None,
        fault: None,
    })
    .open(AssetKind::Pump, 0, &AssetAnalysis::default())
    .unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
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

    // Replayed as a live sensor a million times faster than real time:
    // scoring cannot keep up, acquisition must not wait for it.
    let assets = prepare(&format!(
        r#"site = "s"
gateway = "g"
[mqtt]
[[assets]]
id = "P-1"
kind = "pump"
model = "{}"
source = {{ type = "f32le", path = "{}", sample_rate_hz = 5120, temperature_c = 40, speed = 1000000 }}
"#,
        models().join("pump-anomaly").display(),
        path.display()
    ));
    let run = start(assets);
    run.lanes.join();
    let c = run.counters.snapshot();
    assert_eq!(c.windows_acquired, 300, "{c:?}");
    assert!(c.windows_dropped > 0, "nothing dropped: {c:?}");
    assert!(
        c.windows_dropped > c.windows_scored,
        "acquisition waited for scoring: {c:?}"
    );
    assert_eq!(
        c.windows_scored + c.windows_rejected + c.model_failures + c.windows_dropped,
        c.windows_acquired,
        "every window is accounted for: {c:?}"
    );
}

#[test]
fn a_node_that_falls_silent_puts_the_channel_in_sensor_fault() {
    use firmware::codec::{MAX_ENCODED_LEN, encode};
    use firmware::{ChannelKind, FrameHeader, SampleFrame};

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop_node = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let node = {
        let stop = stop_node.clone();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; MAX_ENCODED_LEN];
            // One frame, then silence while connected.
            let header = FrameHeader {
                node_id: 1,
                channel_id: 2,
                channel_kind: ChannelKind::Acceleration,
                sequence: 0,
                sample_rate_mhz: 5_120_000,
                timestamp_us: 0,
                scale: 1e-4,
            };
            let frame = SampleFrame::new(header, &[1, 2, 3, 4]).unwrap();
            let n = encode(&frame, &mut buf).unwrap();
            s.write_all(&buf[..n]).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let assets = prepare(&format!(
        r#"site = "s"
gateway = "g"
[mqtt]
[[assets]]
id = "P-1"
kind = "pump"
model = "{}"
source = {{ type = "node", connect = "tcp://{addr}", node_id = 1, sample_rate_hz = 5120 }}
sensor_health = {{ silence_s = 0.5 }}
"#,
        models().join("pump-anomaly").display()
    ));
    let mut run = start(assets);
    let deadline = Instant::now() + Duration::from_secs(20);
    let event = loop {
        assert!(Instant::now() < deadline, "no sensor-fault event");
        match run.events.try_recv() {
            Ok(Message::Event(e)) => break e,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    assert_eq!(
        (event.kind, event.state),
        (EventKind::SensorFault, DetectorState::SensorFault)
    );
    assert!(
        event.detail.as_deref().unwrap().starts_with("no data for"),
        "{event:?}"
    );
    run.shutdown.cancel();
    stop_node.store(true, std::sync::atomic::Ordering::Relaxed);
    run.lanes.join();
    node.join().unwrap();
}
