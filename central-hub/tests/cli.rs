//! The hub binary's start-up errors are one clear line, and its embedded
//! broker answers MQTT.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn hub(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_central-hub"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("central-hub runs")
}

#[test]
fn an_http_address_in_use_is_reported_with_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = hub(&[
        "serve",
        "--http",
        &addr,
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("HTTP address {addr}")), "{err}");
}

#[test]
fn a_malformed_broker_address_is_refused() {
    let out = hub(&["serve", "--mqtt", "no-port-here"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--mqtt `no-port-here` must be host:port"),
        "{err}"
    );
}

#[test]
fn broker_subcommand_serves_mqtt_until_terminated() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_central-hub"))
        .args(["broker", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answered = false;
    while Instant::now() < deadline && !answered {
        answered = central_hub::broker::answers_mqtt(addr.parse().unwrap());
        if !answered {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(answered, "no CONNACK from the embedded broker on {addr}");
    assert!(status.success(), "{status:?}");
}

#[test]
fn an_engineer_makes_a_key_signs_a_model_and_a_gateway_check_accepts_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/pump-anomaly");
    let out = hub(&["models", "keygen", "--out", &d("alice")]);
    assert!(out.status.success(), "{out:?}");
    let again = hub(&["models", "keygen", "--out", &d("alice")]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d("alice.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the secret key is readable by others");
    }
    let out = hub(&[
        "models",
        "package",
        "--model",
        model,
        "--key",
        &d("alice.key"),
        "--out",
        &d("p.pdmpkg"),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains("packaged pump-anomaly 2.0.0"), "{said}");

    let inspect =
        |package: &str, key: &str| hub(&["models", "inspect", package, "--trusted-key", key]);
    let out = inspect(&d("p.pdmpkg"), &d("alice.pub"));
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("self-test passed"));

    // Another engineer's key is not trusted for it.
    assert!(
        hub(&["models", "keygen", "--out", &d("mallory")])
            .status
            .success()
    );
    let out = inspect(&d("p.pdmpkg"), &d("mallory.pub"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not trusted here"));
    // A flipped byte in the ONNX file.
    let mut bytes = std::fs::read(d("p.pdmpkg")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(d("t.pdmpkg"), &bytes).unwrap();
    let out = inspect(&d("t.pdmpkg"), &d("alice.pub"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("package file model.onnx: SHA-256"), "{err}");
    // A bad commissioning policy is named.
    let out = hub(&[
        "models",
        "package",
        "--model",
        model,
        "--key",
        &d("alice.key"),
        "--commissioning",
        "maybe",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("`rerun` or `keep`"));
}
