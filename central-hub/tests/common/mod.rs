//! What a scripted gateway at site `north` (gateway `gw-1`, pumps with one
//! accelerometer on model pump-anomaly 1.0.0) says, for the hub's tests.

#![allow(dead_code)] // each test binary uses its own part

use protocol::*;

pub fn model() -> ModelRef {
    ModelRef {
        id: "pump-anomaly".into(),
        version: "1.0.0".into(),
    }
}

/// The birth of `gw-1` watching these pumps.
pub fn birth(pumps: &[&str]) -> Message {
    birth_of("gw-1", pumps)
}

/// The birth of `gateway` (at site north) watching these pumps.
pub fn birth_of(gateway: &str, pumps: &[&str]) -> Message {
    Message::Birth(Birth {
        site: "north".into(),
        gateway: gateway.into(),
        agent_version: "test".into(),
        started_at_ms: 1,
        ts_ms: 1,
        assets: pumps
            .iter()
            .map(|id| AssetInfo {
                id: id.to_string(),
                kind: AssetKind::Pump,
                channels: vec![ChannelInfo {
                    id: "accel".into(),
                    quantity: Quantity::Acceleration,
                    unit: "g".into(),
                    sample_rate_hz: 5120.0,
                }],
                model: model(),
            })
            .collect(),
    })
}

/// An event about `asset` (thresholds 60 and 120; a sensor fault says
/// "flat-lined").
pub fn event(id: &str, asset: &str, kind: EventKind, state: DetectorState, score: f64) -> Message {
    Message::Event(AnomalyEvent {
        event_id: id.into(),
        site: "north".into(),
        gateway: "gw-1".into(),
        asset_id: asset.into(),
        asset_kind: AssetKind::Pump,
        channel: "accel".into(),
        kind,
        state,
        previous_state: DetectorState::Warning,
        window_start_ms: 1_000,
        window_end_ms: 2_000,
        raised_at_ms: 2_000,
        score,
        threshold: 60.0,
        alarm_threshold: 120.0,
        model: model(),
        top_features: vec![FeatureContribution {
            name: "kurtosis".into(),
            value: 8.0,
            expected: 2.0,
            share: 0.8,
        }],
        detail: (kind == EventKind::SensorFault).then(|| "flat-lined".into()),
    })
}

/// Starts a hub with `config`, its database in `dir`, its API on a free
/// loopback port, and an MQTT address nothing listens on: tests that use
/// it apply messages to the ledger directly.
pub async fn start_hub_without_broker(
    dir: &std::path::Path,
    config: central_hub::config::HubConfig,
) -> central_hub::hub::RunningHub {
    start_hub(dir, config, 9).await
}

/// Starts a hub with `config` against the broker on 127.0.0.1:`port`.
pub async fn start_hub(
    dir: &std::path::Path,
    config: central_hub::config::HubConfig,
    port: u16,
) -> central_hub::hub::RunningHub {
    central_hub::hub::start(central_hub::hub::HubSettings {
        mqtt: central_hub::ingest::IngestSettings {
            host: "127.0.0.1".into(),
            port,
            client_id: "hub-api-test".into(),
            keep_alive: std::time::Duration::from_secs(30),
            liveness: Default::default(),
        },
        http: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("hub"),
        config,
    })
    .await
    .unwrap()
}

/// One HTTP request; `body` is (bytes, content type). Answers the status
/// and the body as JSON (or as a JSON string if it is not JSON).
pub async fn request(
    method: &'static str,
    url: String,
    token: Option<&'static str>,
    body: Option<(Vec<u8>, &'static str)>,
) -> (u16, serde_json::Value) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = match body {
            Some((bytes, content_type)) => agent
                .run(
                    req.header("Content-Type", content_type)
                        .body(bytes)
                        .unwrap(),
                )
                .unwrap(),
            None => agent.run(req.body(()).unwrap()).unwrap(),
        };
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(128 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    })
    .await
    .unwrap()
}

/// A hub config with operator `olga` and engineer `erik` (these tokens)
/// that trusts model packages signed by `signer`.
pub fn config_with_signer(
    operator_token: &str,
    engineer_token: &str,
    signer: &protocol::package::SigningKey,
) -> central_hub::config::HubConfig {
    use central_hub::auth::{Role, User};
    let user = |name: &str, role, token: &str| User {
        name: name.into(),
        role,
        token: token.into(),
    };
    central_hub::config::HubConfig {
        users: vec![
            user("olga", Role::Operator, operator_token),
            user("erik", Role::Engineer, engineer_token),
        ],
        models: central_hub::config::ModelsConfig {
            trusted_keys: vec![protocol::package::format_public_key(
                &signer.verifying_key(),
            )],
        },
        ..central_hub::config::HubConfig::default()
    }
}
