//! The hub in-process against its embedded broker, fed by a scripted gateway
//! over MQTT: what it stores and what the HTTP API shows, including a
//! redelivered event and a malformed payload.

use std::time::{Duration, Instant};

use central_hub::auth::{Role, User};
use central_hub::config::HubConfig;
use central_hub::hub::{self, HubSettings};
use central_hub::ingest::IngestSettings;
use protocol::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

mod common;
use common::event;

fn birth() -> Message {
    common::birth(&["P-7"])
}

fn alarm(id: &str) -> Message {
    event(id, "P-7", EventKind::Anomaly, DetectorState::Alarm, 400.0)
}

/// Publishes each (topic, payload) with QoS 1 and waits for all PUBACKs.
async fn publish_all(port: u16, items: Vec<(String, Vec<u8>)>) {
    let mut options = MqttOptions::new("scripted-gateway", "127.0.0.1", port);
    options.set_max_packet_size(1024 * 1024, 1024 * 1024);
    let (client, mut eventloop) = AsyncClient::new(options, 32);
    let n = items.len();
    for (topic, payload) in items {
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    let mut acked = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked < n {
        let event = tokio::time::timeout_at(deadline.into(), eventloop.poll())
            .await
            .expect("PUBACKs in time");
        if let Event::Incoming(Packet::PubAck(_)) = event.expect("connection") {
            acked += 1;
        }
    }
}

const TOKEN: &str = "ingest-test-operator-token-0001";

fn config() -> HubConfig {
    HubConfig {
        users: vec![User {
            name: "ops".into(),
            role: Role::Operator,
            token: TOKEN.into(),
        }],
        ..HubConfig::default()
    }
}

async fn get(url: &str) -> (u16, String, Value) {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut resp = ureq::get(&url)
            .header("Authorization", format!("Bearer {TOKEN}"))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap();
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.body_mut().read_to_string().unwrap();
        (
            status,
            ctype,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    })
    .await
    .unwrap()
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stores_what_gateways_say_and_serves_it() {
    let broker = central_hub::broker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hub = hub::start(HubSettings {
        mqtt: IngestSettings {
            host: "127.0.0.1".into(),
            port: broker.addr.port(),
            client_id: "hub-under-test".into(),
            keep_alive: Duration::from_secs(30),
            liveness: Default::default(),
        },
        http: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        config: config(),
    })
    .await
    .unwrap();
    let api = format!("http://{}", hub.http_addr);
    wait_for("the hub's subscription", async || {
        get(&format!("{api}/healthz")).await.2["broker_connected"] == true
    })
    .await;
    // The subscription is sent right after CONNACK; give the broker a
    // condition to prove it is in place: a birth that gets stored.
    let encoded = |m: &Message| {
        let e = encode(m).unwrap();
        (e.topic, e.payload)
    };
    wait_for("the birth to be stored", async || {
        publish_all(broker.addr.port(), vec![encoded(&birth())]).await;
        !hub.ledger.assets().unwrap().is_empty()
    })
    .await;

    let event = encoded(&alarm("evt-1"));
    publish_all(
        broker.addr.port(),
        vec![
            event.clone(),
            event, // redelivered
            (
                "pdm/v1/north/gw-1/event".into(),
                b"\xff\xfe not json".to_vec(),
            ),
            (
                "pdm/v1/north/gw-1/heartbeat".into(),
                br#"{"site":"north","gateway":"gw-1"}"#.to_vec(),
            ),
            // Oversize: over the protocol's limit, under the broker's.
            ("pdm/v1/north/gw-1/event".into(), vec![b' '; 200 * 1024]),
        ],
    )
    .await;
    wait_for("all five messages handled", async || {
        let s = hub.stats.snapshot();
        s.duplicates + s.malformed >= 4
    })
    .await;

    let stats = hub.stats.snapshot();
    assert_eq!(
        (stats.duplicates, stats.malformed, stats.store_failures),
        (1, 3, 0),
        "{stats:?}"
    );
    assert!(
        stats.broker_connected,
        "the oversize payload broke the hub's session"
    );

    let (status, _, orders) = get(&format!("{api}/api/work-orders")).await;
    assert_eq!(status, 200);
    let orders = orders.as_array().unwrap();
    assert_eq!(orders.len(), 1, "{orders:?}");
    let wo = &orders[0];
    for field in [
        "id",
        "asset_id",
        "priority",
        "status",
        "created_at",
        "reason",
    ] {
        assert!(!wo[field].is_null(), "missing {field}: {wo}");
    }
    assert_eq!(
        (wo["asset_id"].as_str(), wo["event_count"].as_u64()),
        (Some("P-7"), Some(1))
    );

    let (_, _, assets) = get(&format!("{api}/api/assets")).await;
    let asset = &assets[0];
    assert_eq!(
        (
            asset["id"].as_str(),
            asset["kind"].as_str(),
            asset["state"].as_str()
        ),
        (Some("P-7"), Some("pump"), Some("alarm"))
    );
    let health = asset["health"].as_f64().unwrap();
    assert!((0.0..50.0).contains(&health), "{asset}");

    let id = wo["id"].as_str().unwrap();
    let (status, _, one) = get(&format!("{api}/api/work-orders/{id}")).await;
    assert_eq!((status, one["id"].as_str()), (200, Some(id)));
    let (status, _, missing) = get(&format!("{api}/api/work-orders/WO-999999")).await;
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap().contains("WO-999999"));

    let (status, ctype, page) = get(&format!("{api}/")).await;
    assert_eq!((status, ctype.as_str()), (200, "text/html; charset=utf-8"));
    assert!(page.as_str().unwrap().contains("app.js"));

    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_mixed_qos_messages_is_all_ingested() {
    let broker = central_hub::broker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hub = hub::start(HubSettings {
        mqtt: IngestSettings {
            host: "127.0.0.1".into(),
            port: broker.addr.port(),
            client_id: "hub-burst".into(),
            keep_alive: Duration::from_secs(30),
            liveness: Default::default(),
        },
        http: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        config: config(),
    })
    .await
    .unwrap();
    wait_for("the hub's connection", async || {
        hub.stats.snapshot().broker_connected
    })
    .await;
    // Wait until the subscription is in place: a birth gets stored.
    let birth = encode(&birth()).unwrap();
    wait_for("the birth to be stored", async || {
        publish_all(
            broker.addr.port(),
            vec![(birth.topic.clone(), birth.payload.clone())],
        )
        .await;
        !hub.ledger.assets().unwrap().is_empty()
    })
    .await;

    // 1500 QoS 0 messages (outside the broker's inflight limit) mixed with
    // 1500 QoS 1 events (each stored with an fsync, each acknowledged).
    let (client, mut eventloop) = AsyncClient::new(
        MqttOptions::new("burster", "127.0.0.1", broker.addr.port()),
        4096,
    );
    let driver = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                return;
            }
        }
    });
    for i in 0..3000 {
        if i % 2 == 0 {
            let e = encode(&alarm(&format!("burst-{i}"))).unwrap();
            client
                .publish(e.topic, QoS::AtLeastOnce, false, e.payload)
                .await
                .unwrap();
        } else {
            client
                .publish(
                    "pdm/v1/north/gw-1/heartbeat",
                    QoS::AtMostOnce,
                    false,
                    b"not json".to_vec(),
                )
                .await
                .unwrap();
        }
    }
    // Wait on the work order itself: the stats also count the birth, which
    // the set-up may have published more than once.
    let events = || {
        let orders = hub.ledger.work_orders().unwrap();
        orders.first().map_or(0, |wo| wo.event_count)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while events() < 1500 {
        let s = hub.stats.snapshot();
        assert!(Instant::now() < deadline, "ingest stalled: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver.abort();
    let wo = &hub.ledger.work_orders().unwrap()[0];
    assert_eq!(wo.event_count, 1500);
    hub.stop().await;
}
