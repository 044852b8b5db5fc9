use super::*;
use crate::source::{FaultKind, SourceConfig};

const GOOD: &str = r#"
site = "pumpstation-north"
gateway = "gw-ps-north-1"
heartbeat_interval_s = 5

[mqtt]
host = "127.0.0.1"
port = 1884

[[assets]]
id = "P-101"
kind = "pump"
model = "../models/pump-pca"
vibration_channel = "de-accel"

[assets.source]
type = "sim"
seed = 101

[[assets]]
id = "P-102"
kind = "pump"
model = "/opt/models/pump-pca"

[assets.source]
type = "sim"
seed = 102
speed = 2.0
fault = { kind = "bearing_outer_race", onset_s = 20, ramp_s = 30 }

[assets.detector]
enter_windows = 4

[assets.commissioning]
baseline_windows = 60
"#;

#[test]
fn parses_a_full_config_with_defaults_and_resolves_paths() {
    let c = AgentConfig::parse(GOOD, Path::new("/etc/pdm")).unwrap();
    assert_eq!(c.gateway, "gw-ps-north-1");
    assert_eq!(c.client_id(), "gw-ps-north-1");
    assert_eq!(c.mqtt.port, 1884);
    assert_eq!(c.mqtt.keep_alive_s, 30);
    assert_eq!(c.heartbeat_interval(), Duration::from_secs(5));
    assert_eq!(c.assets[0].model, Path::new("/etc/pdm/../models/pump-pca"));
    assert_eq!(c.assets[1].model, Path::new("/opt/models/pump-pca"));
    assert_eq!(c.assets[0].vibration_channel, "de-accel");
    assert_eq!(c.assets[1].temperature_channel, "temp");
    assert_eq!(c.assets[1].detector.enter_windows, 4);
    assert_eq!(c.assets[1].detector.exit_windows, 5);
    let SourceConfig::Sim(sim) = &c.assets[1].source else {
        panic!("sim source expected");
    };
    assert_eq!(sim.speed, 2.0);
    assert_eq!(c.data_dir, Path::new("/etc/pdm/data"));
    assert!(c.assets[0].commissioning.is_none());
    let commissioning = c.assets[1].commissioning.as_ref().unwrap();
    // Without a spec in the model: the replay defaults, with this baseline.
    let spec = commissioning.spec(None);
    assert_eq!(
        (
            spec.baseline_windows,
            spec.threshold_quantile,
            spec.threshold_margin
        ),
        (60, 0.99, 1.5)
    );
    // With one: the model's numbers, this baseline.
    let model_spec = crate::commissioning::CommissioningSpec {
        threshold_margin: 3.0,
        ..spec.clone()
    };
    assert_eq!(commissioning.spec(Some(&model_spec)).threshold_margin, 3.0);
    assert_eq!(
        sim.fault.as_ref().unwrap().kind,
        FaultKind::BearingOuterRace
    );
}

fn invalid(text: &str) -> String {
    AgentConfig::parse(text, Path::new("/"))
        .unwrap_err()
        .to_string()
}

#[test]
fn mistakes_are_reported_precisely() {
    let cases = [
        (GOOD.replace("gw-ps-north-1", "gw/1"), "gateway id `gw/1`"),
        (
            GOOD.replace("seed = 102", "seed = 102\nsped = 3"),
            "unknown field `sped`",
        ),
        (
            GOOD.replace("P-102", "P-101"),
            "asset id `P-101` appears twice",
        ),
        (
            GOOD.replace("\"bearing_outer_race\"", "\"stiffness_loss\""),
            "asset `P-102`: fault StiffnessLoss cannot be simulated on a pump",
        ),
        (
            GOOD.replace("speed = 2.0", "speed = -1"),
            "source.speed = -1",
        ),
        (
            GOOD.replace("enter_windows = 4", "enter_windows = 0"),
            "enter_windows",
        ),
        (
            GOOD.replace("kind = \"pump\"", "kind = \"turbine\""),
            "unknown variant `turbine`",
        ),
        (GOOD.replace("port = 1884", "port = 99999"), "line 8"),
        (
            GOOD.replace("port = 1884", "port = 1884\nkeep_alive_s = 70000"),
            "keep_alive_s = 70000",
        ),
        (
            GOOD.replace("port = 1884", "port = 1884\nclient_id = \"a/#\""),
            "mqtt.client_id `a/#`",
        ),
        (
            GOOD.replace("baseline_windows = 60", "baseline_windows = 3"),
            "asset `P-102`: commissioning.baseline_windows = 3 is too few",
        ),
        (
            GOOD.replace(
                "baseline_windows = 60",
                "baseline_windows = 60\nalarm_factor = 0.5",
            ),
            "commissioning.alarm_factor = 0.5 must be >= 1",
        ),
    ];
    for (text, expected) in cases {
        let err = invalid(&text);
        assert!(err.contains(expected), "expected `{expected}` in: {err}");
        assert!(!err.contains('\n'), "multi-line error: {err}");
    }
}

#[test]
fn a_config_without_assets_is_refused() {
    let text = "site = \"s\"\ngateway = \"g\"\n[mqtt]\nassets = []\n";
    let text = text.replace("[mqtt]\nassets = []", "assets = []\n[mqtt]");
    assert!(invalid(&text).contains("at least one asset"));
}

#[test]
fn load_names_the_file_in_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = AgentConfig::load(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("config file {}", missing.display())),
        "{err}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "site = 3").unwrap();
    let err = AgentConfig::load(&bad).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("config file {}", bad.display())),
        "{err}"
    );
}
