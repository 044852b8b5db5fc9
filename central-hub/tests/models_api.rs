//! The model registry through the API: engineers upload signed packages,
//! which the hub verifies as a gateway would; bad packages are refused with
//! their reason and change nothing.

use edge_agent::model_package;
use protocol::package::{self, CommissioningPolicy, SigningKey};

mod common;

const OPERATOR: &str = "operator-token-for-the-models-test";
const ENGINEER: &str = "engineer-token-for-the-models-test";

fn key(seed: u8) -> SigningKey {
    package::secret_key_from_seed([seed; 32])
}

/// The shipped pump model, packaged at `created_at_ms` (other times make
/// other bytes).
fn pump_package(signer: &SigningKey, created_at_ms: u64) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/pump-anomaly");
    model_package::package_dir(
        std::path::Path::new(dir),
        signer,
        CommissioningPolicy::Rerun,
        created_at_ms,
    )
    .unwrap()
    .1
}

async fn upload(api: &str, token: &'static str, bytes: Vec<u8>) -> (u16, serde_json::Value) {
    common::request(
        "POST",
        format!("{api}/api/models"),
        Some(token),
        Some((bytes, "application/octet-stream")),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn engineers_upload_verified_packages_and_bad_ones_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_with_signer(OPERATOR, ENGINEER, &key(1));
    let hub = common::start_hub_without_broker(dir.path(), config).await;
    let api = format!("http://{}", hub.http_addr);
    let good = pump_package(&key(1), 7);

    let (status, body) = upload(&api, OPERATOR, good.clone()).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = upload(&api, ENGINEER, pump_package(&key(2), 7)).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not trusted here"),
        "{body}"
    );
    let mut tampered = good.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let (status, body) = upload(&api, ENGINEER, tampered).await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("SHA-256"),
        "{body}"
    );
    let (status, body) = upload(&api, ENGINEER, good[..good.len() / 2].to_vec()).await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("truncated"),
        "{body}"
    );
    let (status, _) = upload(&api, ENGINEER, vec![0u8; package::MAX_PACKAGE_BYTES + 1]).await;
    assert_eq!(status, 413);
    let (_, list) = common::request("GET", format!("{api}/api/models"), Some(OPERATOR), None).await;
    assert_eq!(
        list,
        serde_json::json!([]),
        "a refused upload left something"
    );

    let (status, record) = upload(&api, ENGINEER, good.clone()).await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(
        (record["name"].as_str(), record["version"].as_str()),
        (Some("pump-anomaly"), Some("2.0.0"))
    );
    assert_eq!(record["sha256"], package::sha256_hex(&good));
    assert_eq!(record["uploaded_by"], "erik");
    // The same bytes again change nothing; other bytes under that version
    // are refused.
    let (status, again) = upload(&api, ENGINEER, good.clone()).await;
    assert_eq!((status, &again), (201, &record));
    let (status, body) = upload(&api, ENGINEER, pump_package(&key(1), 8)).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("new version"),
        "{body}"
    );

    let (_, list) = common::request("GET", format!("{api}/api/models"), Some(OPERATOR), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let downloaded = tokio::task::spawn_blocking({
        let url = format!("{api}/api/models/pump-anomaly/2.0.0/package");
        move || {
            ureq::get(&url)
                .header("Authorization", format!("Bearer {OPERATOR}"))
                .call()
                .unwrap()
                .body_mut()
                .read_to_vec()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(downloaded, good);
    let (status, _) = common::request(
        "GET",
        format!("{api}/api/models/pump-anomaly/9.0.0"),
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, 404);
    hub.stop().await;
}
