//! A rollout driven through the hub's API and carried out over MQTT with
//! scripted gateways: the canary gets the offer first and fetches the
//! package in chunks, the next wave starts only after it is active, a
//! failure halts the rollout, and an engineer's rollback reaches the
//! gateway that took the model.

use std::time::{Duration, Instant};

use edge_agent::model_package;
use protocol::ota::{
    Fetch, ModelChunk, ModelOffer, OtaBody, OtaMessage, OtaPhase, OtaStatus, base64_decode,
};
use protocol::package::{self, CommissioningPolicy, SigningKey};
use protocol::{Command, Message, command, encode};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod common;

const OPERATOR: &str = "operator-token-for-the-rollout-test";
const ENGINEER: &str = "engineer-token-for-the-rollout-test";

fn key() -> SigningKey {
    package::secret_key_from_seed([5; 32])
}

/// A gateway played by the test: it says what the test tells it and hands
/// over every command it receives.
struct ScriptedGateway {
    name: String,
    client: AsyncClient,
    commands: mpsc::UnboundedReceiver<Publish>,
}

impl ScriptedGateway {
    async fn connect(port: u16, gateway: &str) -> ScriptedGateway {
        let options = MqttOptions::new(format!("scripted-{gateway}"), "127.0.0.1", port);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, commands) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                match event {
                    Event::Incoming(Packet::Publish(p)) => {
                        let _ = tx.send(p);
                    }
                    Event::Incoming(Packet::SubAck(_)) => {
                        let _ = subscribed_tx.send(());
                    }
                    _ => {}
                }
            }
        });
        for filter in command::gateway_filters("north", gateway) {
            client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        }
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(10), subscribed.recv())
                .await
                .expect("subscribed in time");
        }
        ScriptedGateway {
            name: gateway.into(),
            client,
            commands,
        }
    }

    async fn birth(&self) {
        let asset = format!("P-{}", self.name);
        self.send(common::birth_of(&self.name, &[&asset])).await;
    }

    async fn send(&self, m: Message) {
        let e = encode(&m).unwrap();
        self.client
            .publish(e.topic, QoS::AtLeastOnce, false, e.payload)
            .await
            .unwrap();
    }

    async fn ota(&self, body: OtaBody) {
        self.send(Message::Ota(OtaMessage {
            site: "north".into(),
            gateway: self.name.clone(),
            ts_ms: 1,
            body,
        }))
        .await;
    }

    async fn status(&self, offer: &ModelOffer, phase: OtaPhase) {
        self.ota(OtaBody::Status(OtaStatus {
            rollout_id: offer.rollout_id.clone(),
            name: offer.name.clone(),
            version: offer.version,
            phase,
        }))
        .await;
    }

    /// The next command of kind `want` within `wait` (others are skipped);
    /// `None` if none came.
    async fn next(&mut self, want: Command, wait: Duration) -> Option<Publish> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let p = tokio::time::timeout(left, self.commands.recv())
                .await
                .ok()??;
            if command::parse(&p.topic) == Ok(want) {
                return Some(p);
            }
        }
    }

    /// Downloads the offered package in chunks of `chunk` bytes.
    async fn download(&mut self, offer: &ModelOffer, chunk: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        while (bytes.len() as u64) < offer.size {
            self.ota(OtaBody::Fetch(Fetch {
                rollout_id: offer.rollout_id.clone(),
                sha256: offer.sha256.clone(),
                offset: bytes.len() as u64,
                len: chunk,
            }))
            .await;
            let p = self
                .next(Command::ModelChunk, Duration::from_secs(10))
                .await
                .expect("a chunk for every fetch");
            let c: ModelChunk = serde_json::from_slice(&p.payload).unwrap();
            assert_eq!((c.offset, c.total), (bytes.len() as u64, offer.size));
            bytes.extend(base64_decode(&c.data).unwrap());
        }
        bytes
    }
}

async fn api(
    base: &str,
    method: &'static str,
    path: &str,
    token: &'static str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| (b.to_string().into_bytes(), "application/json"));
    common::request(method, format!("{base}{path}"), Some(token), body).await
}

/// Waits until the rollout's JSON satisfies `check`.
async fn wait_rollout(base: &str, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, r) = api(base, "GET", &format!("/api/rollouts/{id}"), OPERATOR, None).await;
        if check(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {r:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn phase_of<'a>(r: &'a Value, gateway: &str) -> &'a str {
    r["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gateway"]["gateway"] == gateway)
        .and_then(|g| g["phase"]["state"].as_str())
        .unwrap_or("?")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_goes_wave_by_wave_halts_on_failure_and_rolls_back() {
    let broker = central_hub::broker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = broker.addr.port();
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_with_signer(OPERATOR, ENGINEER, &key());
    let hub = common::start_hub(dir.path(), config, port).await;
    let base = format!("http://{}", hub.http_addr);
    let mut gw1 = ScriptedGateway::connect(port, "gw-1").await;
    let mut gw2 = ScriptedGateway::connect(port, "gw-2").await;
    // A birth sent before the hub's subscription is in place is lost (the
    // scripted gateways do not answer rebirth requests): send until stored.
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub.ledger.gateways().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "births not stored");
        for g in [&gw1, &gw2] {
            g.birth().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/pump-anomaly");
    let (_, bytes) = model_package::package_dir(
        std::path::Path::new(models),
        &key(),
        CommissioningPolicy::Keep,
        1,
    )
    .unwrap();
    let (status, _) = common::request(
        "POST",
        format!("{base}/api/models"),
        Some(ENGINEER),
        Some((bytes.clone(), "application/octet-stream")),
    )
    .await;
    assert_eq!(status, 201);

    let request = json!({
        "model": "pump-anomaly", "version": "2.0.0",
        "target": {"asset_kind": "pump"}, "waves": [1, "100%"], "shadow_s": 5,
    });
    let (status, _) = api(
        &base,
        "POST",
        "/api/rollouts",
        OPERATOR,
        Some(request.clone()),
    )
    .await;
    assert_eq!(status, 403, "operators do not start rollouts");
    let mut unknown = request.clone();
    unknown["version"] = "9.9.9".into();
    let (status, body) = api(&base, "POST", "/api/rollouts", ENGINEER, Some(unknown)).await;
    assert_eq!(status, 422);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("upload its package"),
        "{body}"
    );
    let mut bad_waves = request.clone();
    bad_waves["waves"] = json!(["50%", "10%"]);
    let (status, body) = api(&base, "POST", "/api/rollouts", ENGINEER, Some(bad_waves)).await;
    assert_eq!(status, 422, "{body}");

    let (status, started) = api(&base, "POST", "/api/rollouts", ENGINEER, Some(request)).await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(started["wave_sizes"], json!([1, 1]));

    // The canary (gw-1, first in order) gets the offer; gw-2 does not yet.
    let p = gw1
        .next(Command::ModelOffer, Duration::from_secs(10))
        .await
        .expect("the canary's offer");
    let offer: ModelOffer = serde_json::from_slice(&p.payload).unwrap();
    assert_eq!(
        (offer.sha256.as_str(), offer.size, offer.shadow_s),
        (package::sha256_hex(&bytes).as_str(), bytes.len() as u64, 5)
    );
    let got = gw1.download(&offer, 1000).await;
    assert_eq!(got, bytes, "the chunks reassemble the package");
    assert!(package::open(&got, &[key().verifying_key()]).is_ok());
    gw1.status(
        &offer,
        OtaPhase::Downloading {
            received: got.len() as u64,
            total: got.len() as u64,
        },
    )
    .await;
    gw1.status(&offer, OtaPhase::Verifying).await;
    gw1.status(
        &offer,
        OtaPhase::Shadow {
            windows: 10,
            agreement: 1.0,
            alarm_rate_new: 0.0,
            alarm_rate_active: 0.0,
        },
    )
    .await;
    wait_rollout(&base, &id, "the canary in shadow", |r| {
        phase_of(r, "gw-1") == "shadow"
    })
    .await;
    assert!(
        gw2.next(Command::ModelOffer, Duration::from_millis(300))
            .await
            .is_none(),
        "wave 2 was offered before the canary succeeded"
    );
    gw1.status(&offer, OtaPhase::Active).await;

    // Wave 2: gw-2 fails its checks; nothing is allowed to fail: halted.
    let p = gw2
        .next(Command::ModelOffer, Duration::from_secs(10))
        .await
        .expect("wave 2's offer after the canary succeeded");
    let offer2: ModelOffer = serde_json::from_slice(&p.payload).unwrap();
    assert_eq!(offer2.rollout_id, id);
    gw2.status(
        &offer2,
        OtaPhase::Failed {
            reason: "self-test 0 failed".into(),
        },
    )
    .await;
    let halted = wait_rollout(&base, &id, "the halt", |r| r["state"]["state"] == "halted").await;
    assert!(
        halted["state"]["reason"]
            .as_str()
            .unwrap()
            .contains("1 of 1"),
        "{halted:#}"
    );
    assert_eq!(phase_of(&halted, "gw-1"), "active");
    let failed = halted["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gateway"]["gateway"] == "gw-2")
        .unwrap();
    assert_eq!(failed["phase"]["reason"], "self-test 0 failed");

    // The engineer rolls back: the gateway that took the model is asked.
    let (status, _) = api(
        &base,
        "POST",
        &format!("/api/rollouts/{id}/rollback"),
        OPERATOR,
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, r) = api(
        &base,
        "POST",
        &format!("/api/rollouts/{id}/rollback"),
        ENGINEER,
        None,
    )
    .await;
    assert_eq!(
        (status, r["state"]["state"].as_str()),
        (200, Some("rolling_back")),
        "{r:#}"
    );
    gw1.next(Command::ModelRollback, Duration::from_secs(10))
        .await
        .expect("the rollback reaches the gateway that took the model");
    gw1.status(&offer, OtaPhase::RolledBack).await;
    wait_rollout(&base, &id, "rolled back", |r| {
        r["state"]["state"] == "rolled_back"
    })
    .await;
    let (status, _) = api(
        &base,
        "POST",
        &format!("/api/rollouts/{id}/pause"),
        ENGINEER,
        None,
    )
    .await;
    assert_eq!(status, 409, "a finished rollout cannot be paused");
    hub.stop().await;
}
