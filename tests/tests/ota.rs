//! Models over the air with real processes on loopback: the embedded
//! broker, the hub (`central-hub serve`) and a gateway (`edge-agent run`,
//! one simulated pump). A package travels from the hub's registry to the
//! gateway in chunks, is verified, runs in shadow, is swapped in and kept
//! through a restart; refused packages (untrusted key, failing self-test)
//! halt the rollout with the gateway's reason and leave the old model
//! running; a gateway killed mid-download resumes where it stood, and one
//! killed on probation after its swap restarts on its verified old model
//! and finishes the rollout. Every test checks that the hub's view (the
//! rollout, the asset's model) matches what the gateway runs, and prints
//! `ota: <case> ok` once its assertions have passed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use edge_agent::model_package;
use protocol::package::{self, CommissioningPolicy, SigningKey};
use serde_json::{Value, json};
use system_tests::{
    Process, TEST_ENGINEER_TOKEN, bin, free_port, get_json, repo_root, start_broker, start_hub,
    test_signing_key, wait_hub_connected, wait_until,
};

/// Broker, hub and one gateway, in a temporary folder.
struct Fleet {
    dir: tempfile::TempDir,
    api: String,
    config: PathBuf,
    agent: Option<Process>,
    agent_runs: u32,
    mqtt: u16,
    broker: Process,
    _hub: Process,
}

impl Fleet {
    /// The gateway trusts test engineer 1 only (the hub trusts 1 and 2).
    fn start() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let (mqtt, http) = (free_port(), free_port());
        let api = format!("http://127.0.0.1:{http}");
        let broker = start_broker(mqtt, dir.path());
        let hub = start_hub("hub", mqtt, http, &dir.path().join("hub-data"), dir.path());
        wait_hub_connected(&api);
        let trusted = package::format_public_key(&test_signing_key(1).verifying_key());
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                r#"site = "ota-site"
gateway = "gw-ota"
heartbeat_interval_s = 1
data_dir = "{data}"

[mqtt]
host = "127.0.0.1"
port = {mqtt}

[models]
trusted_keys = ["{trusted}"]
probation_windows = 5
fetch_chunk_bytes = 512

[[assets]]
id = "P-1"
kind = "pump"
model = "{model}"
source = {{ type = "sim", seed = 4401, speed = 10 }}
"#,
                data = dir.path().join("gateway-data").display(),
                model = repo_root().join("models/pump-anomaly").display(),
            ),
        )
        .unwrap();
        let mut fleet = Fleet {
            dir,
            api,
            config,
            agent: None,
            agent_runs: 0,
            mqtt,
            broker,
            _hub: hub,
        };
        fleet.start_agent(&[]);
        fleet.wait_model("2.0.0");
        fleet
    }

    fn start_agent(&mut self, env: &[(&str, &str)]) {
        self.agent_runs += 1;
        self.agent = Some(Process::start_with_env(
            &format!("agent-{}", self.agent_runs),
            &bin("edge-agent"),
            &["run", "--config", self.config.to_str().unwrap()],
            env,
            self.dir.path(),
        ));
    }

    fn agent(&self) -> &Process {
        self.agent.as_ref().expect("agent running")
    }

    /// The version of the model the hub says P-1 runs (from heartbeats).
    fn model_version(&self) -> Option<String> {
        let assets = get_json(&format!("{}/api/assets", self.api)).ok()?;
        let p1 = assets.as_array()?.iter().find(|a| a["id"] == "P-1")?;
        p1["model"]["version"].as_str().map(str::to_owned)
    }

    fn wait_model(&self, version: &str) {
        wait_until(
            &format!("the hub to see P-1 on model {version}"),
            Duration::from_secs(60),
            || Ok((self.model_version().as_deref() == Some(version)).then_some(())),
        );
    }

    fn post(&self, path: &str, body: Vec<u8>, content_type: &str) -> (u16, Value) {
        let mut r = ureq::post(&format!("{}{path}", self.api))
            .header("Authorization", format!("Bearer {TEST_ENGINEER_TOKEN}"))
            .header("Content-Type", content_type)
            .config()
            .http_status_as_error(false)
            .build()
            .send(&body[..])
            .unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().unwrap_or(Value::Null))
    }

    /// Uploads `package` and rolls it out to the gateway; the rollout's id.
    fn roll_out(&self, package: Vec<u8>, version: &str) -> String {
        let (status, body) = self.post("/api/models", package, "application/octet-stream");
        assert_eq!(status, 201, "upload: {body}");
        let request = json!({
            "model": "pump-anomaly", "version": version,
            "target": {"gateways": ["ota-site/gw-ota"]}, "waves": ["100%"],
            "shadow_s": 2, "gateway_timeout_s": 120,
        });
        let (status, body) = self.post(
            "/api/rollouts",
            request.to_string().into_bytes(),
            "application/json",
        );
        assert_eq!(status, 201, "rollout: {body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Rolls out a padded package of `version` and returns once the
    /// gateway has received part of it (not all): the rollout's id.
    fn roll_out_part_way(&self, version: &str) -> String {
        let bytes = padded_package(version, &test_signing_key(1), 128);
        let total = bytes.len() as u64;
        let id = self.roll_out(bytes, version);
        wait_until(
            "part of the package received",
            Duration::from_secs(60),
            || {
                let p = phase(&self.rollout(&id));
                let got = p["received"].as_u64().unwrap_or(0);
                Ok((p["state"] == "downloading" && got > 0 && got < total).then_some(()))
            },
        );
        id
    }

    fn rollout(&self, id: &str) -> Value {
        get_json(&format!("{}/api/rollouts/{id}", self.api)).unwrap()
    }

    /// Waits until the rollout is in `state` (completed, halted ...).
    fn wait_rollout(&self, id: &str, state: &str, within: Duration) -> Value {
        wait_until(&format!("rollout {id} {state}"), within, || {
            let r = get_json(&format!("{}/api/rollouts/{id}", self.api))?;
            Ok((r["state"]["state"] == state).then_some(r))
        })
    }
}

/// A copy of the shipped pump model folder as version `version`, with
/// `model.json` changed by `edit`.
fn model_copy(version: &str, edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let src = repo_root().join("models/pump-anomaly");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("model.onnx"), dir.path().join("model.onnx")).unwrap();
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(src.join("model.json")).unwrap()).unwrap();
    manifest["version"] = version.into();
    edit(&mut manifest);
    std::fs::write(dir.path().join("model.json"), manifest.to_string()).unwrap();
    dir
}

/// The shipped pump model as version `version`, with `model.json` changed
/// by `edit`, packaged and signed by `key`.
fn package(version: &str, key: &SigningKey, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let dir = model_copy(version, edit);
    match model_package::package_dir(dir.path(), key, CommissioningPolicy::Keep, 1) {
        Ok((_, bytes)) => bytes,
        // A model that fails its self-test is never signed by the packer:
        // seal it by hand, as a careless or hostile tool would.
        Err(_) => seal_unchecked(dir.path(), key),
    }
}

/// The shipped pump model as version `version` with a `notes.txt` of
/// `pad_kib` KiB besides (a package that takes a while to download).
fn padded_package(version: &str, key: &SigningKey, pad_kib: usize) -> Vec<u8> {
    let dir = model_copy(version, |_| {});
    let notes: Vec<u8> = (0..pad_kib * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(dir.path().join("notes.txt"), notes).unwrap();
    seal_unchecked(dir.path(), key)
}

fn seal_unchecked(dir: &Path, key: &SigningKey) -> Vec<u8> {
    let json = std::fs::read(dir.join("model.json")).unwrap();
    let m: Value = serde_json::from_slice(&json).unwrap();
    let manifest = package::PackageManifest {
        format: package::PACKAGE_FORMAT,
        name: m["model_id"].as_str().unwrap().into(),
        version: package::Version::parse(m["version"].as_str().unwrap()).unwrap(),
        asset_kinds: vec![protocol::AssetKind::Pump],
        feature_profile: m["feature_profile"].as_str().unwrap().into(),
        inputs: serde_json::from_value(m["features"].clone()).unwrap(),
        outputs: package::MODEL_OUTPUTS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        threshold: m["threshold"].as_f64().unwrap(),
        alarm_threshold: m["alarm_threshold"].as_f64().unwrap(),
        self_test: serde_json::from_value(m["self_test"].clone()).unwrap(),
        commissioning: CommissioningPolicy::Keep,
        created_at_ms: 1,
        files: Vec::new(),
    };
    let mut files = vec![
        ("model.json".to_owned(), json),
        (
            "model.onnx".to_owned(),
            std::fs::read(dir.join("model.onnx")).unwrap(),
        ),
    ];
    if let Ok(notes) = std::fs::read(dir.join("notes.txt")) {
        files.push(("notes.txt".to_owned(), notes));
    }
    package::seal(manifest, &files, key).unwrap()
}

fn phase(r: &Value) -> Value {
    r["gateways"][0]["phase"].clone()
}

#[test]
fn ota_rollout_installs_a_verified_model_that_survives_a_restart() {
    let mut fleet = Fleet::start();
    let id = fleet.roll_out(package("2.0.1", &test_signing_key(1), |_| {}), "2.0.1");
    let r = fleet.wait_rollout(&id, "completed", Duration::from_secs(120));
    assert_eq!(phase(&r)["state"], "active", "{r:#}");
    // It ran in shadow on live windows first, and said how it compared.
    let shadow = &r["shadow"]["ota-site/gw-ota"];
    assert!(shadow["windows"].as_u64().unwrap_or(0) > 0, "{r:#}");
    assert!(shadow["agreement"].as_f64().is_some(), "{r:#}");
    fleet.wait_model("2.0.1");
    let log = fleet.agent().log();
    for step in ["fetching 512 bytes", "model swapped in", "phase=Active"] {
        assert!(log.contains(step), "no `{step}` in the gateway's log");
    }
    // A restart runs the installed package, verified again.
    fleet
        .agent
        .as_mut()
        .unwrap()
        .terminate(Duration::from_secs(20));
    fleet.start_agent(&[]);
    wait_until(
        "the installed model at start",
        Duration::from_secs(30),
        || {
            Ok(fleet
                .agent()
                .log()
                .contains("running the model installed over the air")
                .then_some(()))
        },
    );
    fleet.wait_model("2.0.1");
    println!("ota: install_and_restart ok");
}

#[test]
fn ota_untrusted_and_self_test_failing_packages_are_refused_and_halt() {
    let fleet = Fleet::start();
    // Signed by engineer 2: the hub trusts them, this gateway does not.
    let id = fleet.roll_out(package("2.0.2", &test_signing_key(2), |_| {}), "2.0.2");
    let r = fleet.wait_rollout(&id, "halted", Duration::from_secs(60));
    let reason = phase(&r)["reason"].as_str().unwrap_or("").to_owned();
    assert!(reason.contains("not trusted here"), "{r:#}");
    // An older version, without an engineer's explicit downgrade.
    let id = fleet.roll_out(package("1.9.0", &test_signing_key(1), |_| {}), "1.9.0");
    let r = fleet.wait_rollout(&id, "halted", Duration::from_secs(60));
    let reason = phase(&r)["reason"].as_str().unwrap_or("").to_owned();
    assert!(reason.contains("older than 2.0.0"), "{r:#}");
    // A model whose self-test vectors it does not reproduce.
    let broken = package("2.0.3", &test_signing_key(1), |m| {
        let s = m["self_test"][0]["score"].as_f64().unwrap();
        m["self_test"][0]["score"] = (s * 3.0 + 1.0).into();
    });
    let id = fleet.roll_out(broken, "2.0.3");
    let r = fleet.wait_rollout(&id, "halted", Duration::from_secs(60));
    let reason = phase(&r)["reason"].as_str().unwrap_or("").to_owned();
    assert!(reason.contains("self-test"), "{r:#}");
    // The gateway still runs (and the hub still sees) the old model.
    assert_eq!(fleet.model_version().as_deref(), Some("2.0.0"));
    println!("ota: refused_packages ok");
}

#[test]
fn ota_agent_killed_mid_download_resumes_where_it_stood() {
    let mut fleet = Fleet::start();
    let id = fleet.roll_out_part_way("2.0.4");
    fleet.agent.as_mut().unwrap().kill();
    fleet.start_agent(&[]);
    let resumed = wait_until("the download resumed", Duration::from_secs(30), || {
        let log = fleet.agent().log();
        Ok(log
            .lines()
            .find(|l| l.contains("fetching") && l.contains("bytes of the package from byte"))
            .map(str::to_owned))
    });
    assert!(
        !resumed.contains("from byte 0 "),
        "the restarted agent fetched from the start: {resumed}"
    );
    fleet.wait_rollout(&id, "completed", Duration::from_secs(120));
    fleet.wait_model("2.0.4");
    println!("ota: kill_mid_download ok");
}

#[test]
fn ota_agent_killed_on_probation_restarts_verified_and_finishes() {
    let mut fleet = Fleet::start();
    let id = fleet.roll_out(package("2.0.5", &test_signing_key(1), |_| {}), "2.0.5");
    wait_until("the swap", Duration::from_secs(90), || {
        Ok(fleet
            .agent()
            .log()
            .contains("model swapped in")
            .then_some(()))
    });
    fleet.agent.as_mut().unwrap().kill();
    // Not installed yet: the restart runs the configured (verified) model,
    // then the rollout goes on from verification.
    fleet.start_agent(&[]);
    wait_until(
        "the restart on the old model",
        Duration::from_secs(30),
        || {
            Ok(fleet
                .agent()
                .log()
                .contains("connected to broker")
                .then_some(()))
        },
    );
    assert!(
        !fleet
            .agent()
            .log()
            .contains("running the model installed over the air"),
        "a model still on probation was kept across the kill"
    );
    let r = fleet.wait_rollout(&id, "completed", Duration::from_secs(120));
    assert_eq!(phase(&r)["state"], "active");
    fleet.wait_model("2.0.5");
    println!("ota: kill_mid_swap ok");
}

#[test]
fn ota_a_model_that_storms_after_its_swap_is_rolled_back_by_the_gateway() {
    let fleet = Fleet::start();
    // Thresholds a hundred times too low: every window is an alarm.
    let storming = package("2.0.6", &test_signing_key(1), |m| {
        for field in ["threshold", "alarm_threshold"] {
            m[field] = (m[field].as_f64().unwrap() / 100.0).into();
        }
    });
    let id = fleet.roll_out(storming, "2.0.6");
    let r = fleet.wait_rollout(&id, "halted", Duration::from_secs(90));
    let reason = phase(&r)["reason"].as_str().unwrap_or("").to_owned();
    assert!(
        reason.contains("rolled back by the gateway") && reason.contains("alarm storm"),
        "{r:#}"
    );
    // Back on the model it ran before, and the hub sees that.
    fleet.wait_model("2.0.0");
    assert!(fleet.agent().log().contains("model swapped in"));
    println!("ota: alarm_storm_rollback ok");
}

#[test]
fn ota_broker_down_during_a_rollout_delays_it_and_it_completes() {
    let mut fleet = Fleet::start();
    let id = fleet.roll_out_part_way("2.0.7");
    fleet.broker.kill();
    wait_until(
        "the hub to lose the broker",
        Duration::from_secs(30),
        || {
            let h = get_json(&format!("{}/healthz", fleet.api))?;
            Ok((h["broker_connected"] == false).then_some(()))
        },
    );
    let stalled = phase(&fleet.rollout(&id));
    assert_ne!(stalled["state"], "active", "finished without a broker?");
    fleet.broker = start_broker(fleet.mqtt, fleet.dir.path());
    let r = fleet.wait_rollout(&id, "completed", Duration::from_secs(120));
    assert_eq!(phase(&r)["state"], "active");
    fleet.wait_model("2.0.7");
    println!("ota: broker_down ok");
}
