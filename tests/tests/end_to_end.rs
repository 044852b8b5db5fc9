//! Sensor to work order with real processes: an embedded broker
//! (`central-hub broker`), the hub (`central-hub serve`) and a gateway
//! (`edge-agent run`) on loopback. One simulated pump develops a bearing
//! fault, its neighbour stays healthy; the work order must appear through
//! the HTTP API, a malformed payload must be counted and dropped without
//! touching stored state, a stopped gateway must show as offline, and the
//! hub must keep its state across a kill -9. The hub starts after the
//! gateway, so it only learns the healthy pump through a rebirth request. A
//! killed gateway goes offline through its last will, and an alarm
//! published while the hub is down reaches it after its restart.

use std::time::Duration;

use rumqttc::{Client, MqttOptions, QoS};
use serde_json::Value;
use system_tests::{
    Process, bin, free_port, get_json, repo_root, start_broker, start_hub, wait_hub_connected,
    wait_until,
};

fn agent_config(mqtt_port: u16) -> String {
    let models = repo_root().join("models");
    format!(
        r#"site = "e2e-site"
gateway = "gw-e2e"
heartbeat_interval_s = 1

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}

[[assets]]
id = "P-1"
kind = "pump"
model = "{pump}"
source = {{ type = "sim", seed = 3201, speed = 10 }}

[[assets]]
id = "P-2"
kind = "pump"
model = "{pump}"
source = {{ type = "sim", seed = 3202, speed = 10, fault = {{ kind = "bearing_outer_race", onset_s = 5, ramp_s = 60 }} }}
"#,
        pump = models.join("pump-anomaly").display()
    )
}

fn find<'a>(list: &'a Value, field: &str, value: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|v| v[field] == value)
}

#[test]
fn faulty_pump_becomes_a_work_order_healthy_pump_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path();
    let (mqtt, http) = (free_port(), free_port());
    let api = format!("http://127.0.0.1:{http}");
    let hub_dir = dir.path().join("hub-data");

    let _broker = start_broker(mqtt, logs);
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, agent_config(mqtt)).unwrap();
    let mut agent = Process::start(
        "agent",
        &bin("edge-agent"),
        &["run", "--config", config.to_str().unwrap()],
        logs,
    );
    // The gateway's birth goes out before any hub listens.
    wait_until(
        "the gateway connected to the broker",
        Duration::from_secs(30),
        || Ok(agent.log().contains("connected to broker").then_some(())),
    );

    let mut hub = start_hub("hub", mqtt, http, &hub_dir, logs);
    wait_hub_connected(&api);

    // The faulty pump's work order, through the API.
    let order = wait_until("a work order for P-2", Duration::from_secs(120), || {
        let orders = get_json(&format!("{api}/api/work-orders"))?;
        Ok(find(&orders, "asset_id", "P-2").cloned())
    });
    assert_eq!(order["status"], "open");
    assert_eq!(order["kind"], "anomaly");
    assert!(order["id"].as_str().unwrap().starts_with("WO-"));
    assert!(matches!(order["priority"].as_u64(), Some(1 | 2)), "{order}");
    assert!(
        order["created_at"].as_str().unwrap().ends_with('Z'),
        "{order}"
    );
    let reason = order["reason"].as_str().unwrap();
    assert!(
        reason.contains("P-2") && reason.contains("pump-anomaly 2.0.0"),
        "{reason}"
    );

    wait_until(
        "P-2 in alarm with low health",
        Duration::from_secs(30),
        || {
            let assets = get_json(&format!("{api}/api/assets"))?;
            let p2 = find(&assets, "id", "P-2").ok_or("P-2 not listed")?;
            Ok((p2["state"] == "alarm" && p2["health"].as_f64() < Some(50.0)).then_some(()))
        },
    );
    // Give the healthy pump time to misbehave: 100 s of signal each.
    wait_until("200 windows scored", Duration::from_secs(120), || {
        let gateways = get_json(&format!("{api}/api/gateways"))?;
        let scored = gateways[0]["counters"]["windows_scored"]
            .as_u64()
            .unwrap_or(0);
        Ok((scored >= 200).then_some(()))
    });
    let assets = get_json(&format!("{api}/api/assets")).unwrap();
    // P-1 never raised an event: only the birth the hub asked for lists it.
    let p1 = find(&assets, "id", "P-1").expect("P-1 listed");
    assert_eq!(p1["kind"], "pump");
    assert_eq!(p1["state"], "normal", "{p1}");
    assert!(p1["health"].as_f64().unwrap() >= 80.0, "{p1}");
    // Its vibration severity is reported: a healthy pump is in zone A or B.
    assert!(matches!(p1["iso_zone"].as_str(), Some("A" | "B")), "{p1}");
    assert!(p1["velocity_rms_mm_s"].as_f64().unwrap() > 0.1, "{p1}");
    let orders = get_json(&format!("{api}/api/work-orders")).unwrap();
    assert!(
        find(&orders, "asset_id", "P-1").is_none(),
        "healthy pump got a work order: {orders}"
    );

    // A malformed payload on a hub topic is counted and dropped.
    let stats_before = get_json(&format!("{api}/api/stats")).unwrap();
    publish_raw(
        mqtt,
        "pdm/v1/e2e-site/gw-e2e/event",
        b"{\"event_id\": 42, truncated",
    );
    wait_until(
        "the malformed payload to be counted",
        Duration::from_secs(20),
        || {
            let stats = get_json(&format!("{api}/api/stats"))?;
            Ok((stats["malformed"].as_u64() > stats_before["malformed"].as_u64()).then_some(()))
        },
    );
    let orders_after = get_json(&format!("{api}/api/work-orders")).unwrap();
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&orders_after),
        ids(&orders),
        "stored work orders changed"
    );

    // A cleanly stopped gateway says goodbye: its assets go offline.
    let status = agent
        .terminate(Duration::from_secs(20))
        .expect("agent stops on SIGTERM");
    assert!(status.success(), "agent exit: {status:?}\n{}", agent.log());
    wait_until(
        "assets offline after the gateway's death message",
        Duration::from_secs(20),
        || {
            let assets = get_json(&format!("{api}/api/assets"))?;
            let all_offline = assets
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["state"] == "offline");
            Ok(all_offline.then_some(()))
        },
    );

    let gateway_death = |reason: &'static str| {
        let url = format!("{api}/api/gateways");
        move || -> Result<Option<()>, String> {
            let gateways = get_json(&url)?;
            let g = &gateways[0];
            Ok((g["online"] == false && g["last_death"] == reason).then_some(()))
        }
    };
    wait_until(
        "the death recorded as a shutdown",
        Duration::from_secs(10),
        gateway_death("shutdown"),
    );

    // A gateway that vanishes (kill -9): the broker publishes its last will.
    let mut agent = Process::start(
        "agent-again",
        &bin("edge-agent"),
        &["run", "--config", config.to_str().unwrap()],
        logs,
    );
    wait_until("the gateway back online", Duration::from_secs(30), || {
        let gateways = get_json(&format!("{api}/api/gateways"))?;
        Ok((gateways[0]["online"] == true).then_some(()))
    });
    agent.kill();
    wait_until(
        "the last will marking the gateway offline",
        Duration::from_secs(60),
        gateway_death("connection_lost"),
    );

    // The hub keeps its state across a kill -9, and its persistent session
    // receives what was published while it was down.
    hub.kill();
    let late = alarm_event("late-alarm-1", "P-9");
    publish_raw(mqtt, &late.topic, &late.payload);
    let _hub = start_hub("hub-restarted", mqtt, http, &hub_dir, logs);
    let orders = wait_until(
        "the alarm published while the hub was down",
        Duration::from_secs(30),
        || {
            let orders = get_json(&format!("{api}/api/work-orders"))?;
            Ok(find(&orders, "asset_id", "P-9").is_some().then_some(orders))
        },
    );
    let mut expected = ids(&orders_after);
    expected.push("WO-000002".into());
    assert_eq!(ids(&orders), expected);
}

/// A valid alarm event for `asset` of the test gateway.
fn alarm_event(id: &str, asset: &str) -> protocol::Envelope {
    use protocol::*;
    let now = 1_800_000_000_000;
    protocol::encode(&Message::Event(AnomalyEvent {
        event_id: id.into(),
        site: "e2e-site".into(),
        gateway: "gw-e2e".into(),
        asset_id: asset.into(),
        asset_kind: AssetKind::Pump,
        channel: "accel".into(),
        kind: EventKind::Anomaly,
        state: DetectorState::Alarm,
        previous_state: DetectorState::Warning,
        window_start_ms: now,
        window_end_ms: now + 1000,
        raised_at_ms: now + 1000,
        score: 500.0,
        threshold: 60.0,
        alarm_threshold: 120.0,
        model: ModelRef {
            id: "pump-anomaly".into(),
            version: "1.0.0".into(),
        },
        top_features: vec![],
        detail: None,
    }))
    .unwrap()
}

/// Publishes bytes with QoS 1 and waits for the broker's PUBACK.
fn publish_raw(port: u16, topic: &str, payload: &[u8]) {
    let mut options = MqttOptions::new("e2e-test-publisher", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(options, 10);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .unwrap();
    for event in connection.iter().take(20) {
        match event {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                let _ = client.disconnect();
                return;
            }
            Ok(_) => {}
            Err(e) => panic!("publishing to {topic}: {e}"),
        }
    }
    panic!("no PUBACK for the message to {topic}");
}
