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
