//! The README's first command: `central-hub demo`. Within 90 s of start a
//! work order exists for each faulty asset (P-102, SPAN-2) and none for the
//! healthy ones (P-101, P-201, SPAN-1), every asset judged against the
//! baseline it learned first; the model release the demo publishes rolls
//! out over the air from the command it prints, wave by wave, to both pump
//! stations; `--for` ends it cleanly.

use std::time::{Duration, Instant};

use serde_json::Value;
use system_tests::{Process, bin, free_port, get_json_as, wait_until};

fn assets_with_orders(orders: &Value) -> Vec<String> {
    let mut ids: Vec<String> = orders
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["asset_id"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[test]
fn demo_raises_work_orders_for_the_faulty_assets_within_a_minute_and_a_half() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let api = format!("http://127.0.0.1:{http}");
    let data = dir.path().join("demo-data");
    let started = Instant::now();
    let mut demo = Process::start(
        "demo",
        &bin("central-hub"),
        &[
            "demo",
            "--http",
            &format!("127.0.0.1:{http}"),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    let token = demo.printed_token("operator");
    let get_json = |url: &str| get_json_as(url, &token);
    let deadline = Duration::from_secs(90);
    let orders = wait_until("work orders for P-102 and SPAN-2", deadline, || {
        let orders = get_json(&format!("{api}/api/work-orders"))?;
        let assets = assets_with_orders(&orders);
        Ok(
            (assets.contains(&"P-102".to_owned()) && assets.contains(&"SPAN-2".to_owned()))
                .then_some(orders),
        )
    });
    eprintln!(
        "both work orders after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(assets_with_orders(&orders), ["P-102", "SPAN-2"], "{orders}");

    let assets = get_json(&format!("{api}/api/assets")).unwrap();
    let states: Vec<(String, String)> = assets
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(states.len(), 5, "{assets}");
    // Every asset learned its own baseline (10 windows) before being judged.
    for a in assets.as_array().unwrap() {
        assert_eq!(a["commissioning"]["phase"], "commissioned", "{a}");
        assert_eq!(a["commissioning"]["windows"], 10, "{a}");
    }
    // The span's work order names a mode that fell.
    let span = orders
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["asset_id"] == "SPAN-2")
        .unwrap();
    let reason = span["reason"].as_str().unwrap_or_default();
    assert!(
        ["mode1", "mode2", "mode3"]
            .iter()
            .any(|m| reason.contains(&format!("{m}_freq_hz"))),
        "{span}"
    );
    for (id, state) in &states {
        if id == "P-101" || id == "P-201" || id == "SPAN-1" {
            assert_eq!(state, "normal", "{id}: {assets}");
        }
    }

    // The rollout the demo suggests, run as printed (but with the built
    // binary): canary north first, then south; it follows to the end.
    let engineer = demo.printed_token("engineer");
    let suggested = wait_until(
        "the suggested rollout command",
        Duration::from_secs(10),
        || {
            Ok(demo
                .log()
                .lines()
                .find(|l| l.contains("-- rollout --hub"))
                .map(str::to_owned))
        },
    );
    let args: Vec<String> = suggested
        .split(" -- ")
        .nth(1)
        .expect("cargo run ... -- rollout ...")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    // A short shadow run keeps the test quick.
    if let Some(i) = args.iter().position(|a| *a == "--shadow-s") {
        args[i + 1] = "3";
    }
    let mut rollout = Process::start_with_env(
        "rollout-cli",
        &bin("central-hub"),
        &args,
        &[("PDM_HUB_TOKEN", engineer.as_str())],
        dir.path(),
    );
    let status = rollout
        .wait_exit(Duration::from_secs(240))
        .expect("the rollout ends");
    let printed = rollout.log();
    assert!(status.success(), "{printed}");
    for expected in ["wave 1/2", "wave 2/2", "completed"] {
        assert!(printed.contains(expected), "no `{expected}` in:\n{printed}");
    }
    let assets = get_json(&format!("{api}/api/assets")).unwrap();
    for a in assets.as_array().unwrap() {
        if a["kind"] == "pump" {
            wait_until(
                &format!("{} on the new model", a["id"]),
                Duration::from_secs(30),
                || {
                    let now = get_json(&format!("{api}/api/assets"))?;
                    let this = now
                        .as_array()
                        .and_then(|l| l.iter().find(|b| b["id"] == a["id"]).cloned());
                    Ok(this
                        .filter(|b| b["model"]["version"] == "2.0.1")
                        .map(|_| ()))
                },
            );
        }
    }
    eprintln!("demo rollout:\n{printed}");

    let status = demo
        .terminate(Duration::from_secs(30))
        .expect("demo stops on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", demo.log());
    let out = demo.log();
    assert!(
        out.contains(&format!("operators' queue:  http://127.0.0.1:{http}/")),
        "{out}"
    );
}

#[test]
fn demo_for_seconds_exits_cleanly_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let mut demo = Process::start(
        "demo-for",
        &bin("central-hub"),
        &["demo", "--http", &format!("127.0.0.1:{http}"), "--for", "3"],
        dir.path(),
    );
    let status = demo
        .wait_exit(Duration::from_secs(30))
        .expect("demo --for 3 ends by itself");
    assert!(status.success(), "{status:?}\n{}", demo.log());
    assert!(
        demo.log().contains("stopping: agents say goodbye"),
        "{}",
        demo.log()
    );
}
