//! `central-hub demo`: the whole system in one process.
//!
//! An embedded broker, the hub, and three simulated gateways (the real
//! `edge-agent` library, not a mock) watching two pumps at a pump station,
//! two spans of a river bridge and a pump at a second station. Every asset is commissioned on its first 10
//! windows (pumps in about 10 s, spans in about 40 s). One pump develops an
//! outer-race bearing fault after 15 s and one span loses stiffness after
//! 40 s, once its baseline is learned; the other two stay healthy. Within
//! about a minute the queue shows one inspection for each faulty asset and
//! none for the healthy ones.
//!
//! The models are compiled into the binary, so the demo runs from any
//! directory. The demo also makes a signing key for the run, packages the
//! pump model as release [`DEMO_RELEASE`] into the hub's registry, and
//! prints the `central-hub rollout` command that rolls it out to the two
//! pump stations (canary first) over the air.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use edge_agent::{AgentConfig, AnomalyModel, PreparedAsset};
use protocol::AssetKind;
use tokio_util::sync::CancellationToken;

use crate::config::HubConfig;
use crate::hub::{self, HubSettings, RunningHub};
use crate::ingest::IngestSettings;
use protocol::package::{self, CommissioningPolicy};

const PUMP_MANIFEST: &[u8] = include_bytes!("../../models/pump-anomaly/model.json");
const PUMP_ONNX: &[u8] = include_bytes!("../../models/pump-anomaly/model.onnx");
const BRIDGE_MANIFEST: &[u8] = include_bytes!("../../models/bridge-anomaly/model.json");
const BRIDGE_ONNX: &[u8] = include_bytes!("../../models/bridge-anomaly/model.onnx");

/// How often the demo prints a status line.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Options of `central-hub demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub http: SocketAddr,
    /// Stop after this long; `None` runs until Ctrl-C.
    pub run_for: Option<Duration>,
    /// Keep the hub's data here; `None` uses a temporary directory.
    pub data_dir: Option<PathBuf>,
}

/// The simulated fleet's gateway configs. The broker and the key the
/// gateways trust for model packages are filled in at start.
pub fn fleet_configs(broker: SocketAddr, trusted_key: &str) -> Vec<String> {
    let mqtt = format!(
        "[mqtt]\nhost = \"{}\"\nport = {}\n\n[models]\ntrusted_keys = [\"{trusted_key}\"]\nprobation_windows = 10\n",
        broker.ip(),
        broker.port()
    );
    vec![
        format!(
            r#"site = "pumpstation-north"
gateway = "gw-north-1"
heartbeat_interval_s = 5
{mqtt}
[[assets]]
id = "P-101"
kind = "pump"
model = "models/pump-anomaly"
shaft_rpm = 1480
source = {{ type = "sim", seed = 501 }}
commissioning = {{ baseline_windows = 10 }}

[[assets]]
id = "P-102"
kind = "pump"
model = "models/pump-anomaly"
shaft_rpm = 1485
source = {{ type = "sim", seed = 502, fault = {{ kind = "bearing_outer_race", onset_s = 15, ramp_s = 60 }} }}
commissioning = {{ baseline_windows = 10 }}
"#
        ),
        format!(
            r#"site = "aare-bridge"
gateway = "gw-aare-1"
heartbeat_interval_s = 5
{mqtt}
[[assets]]
id = "SPAN-1"
kind = "bridge"
model = "models/bridge-anomaly"
source = {{ type = "sim", seed = 601 }}
commissioning = {{ baseline_windows = 10 }}

[[assets]]
id = "SPAN-2"
kind = "bridge"
model = "models/bridge-anomaly"
source = {{ type = "sim", seed = 602, fault = {{ kind = "stiffness_loss", onset_s = 40, ramp_s = 15 }} }}
commissioning = {{ baseline_windows = 10 }}
"#
        ),
        format!(
            r#"site = "pumpstation-south"
gateway = "gw-south-1"
heartbeat_interval_s = 5
{mqtt}
[[assets]]
id = "P-201"
kind = "pump"
model = "models/pump-anomaly"
shaft_rpm = 1480
source = {{ type = "sim", seed = 701 }}
commissioning = {{ baseline_windows = 10 }}
"#
        ),
    ]
}

/// The demo's asset registry: what the utility knows about the four assets.
pub const DEMO_REGISTRY: &str = r#"# The demo fleet's asset registry (criticality 1-5: consequence of failure).
[[assets]]
site = "pumpstation-north"
id = "P-101"
kind = "pump"
location = "Pump hall, bay 1 (duty pump)"
criticality = 3
gateway = "gw-north-1"
channels = ["accel", "temp"]

[[assets]]
site = "pumpstation-north"
id = "P-102"
kind = "pump"
location = "Pump hall, bay 2 (duty pump, no standby)"
criticality = 4
gateway = "gw-north-1"
channels = ["accel", "temp"]

[[assets]]
site = "pumpstation-south"
id = "P-201"
kind = "pump"
location = "Booster pump (one of two)"
criticality = 2
gateway = "gw-south-1"
channels = ["accel", "temp"]

[[assets]]
site = "aare-bridge"
id = "SPAN-1"
kind = "bridge"
location = "North approach span"
criticality = 4
gateway = "gw-aare-1"
channels = ["accel"]

[[assets]]
site = "aare-bridge"
id = "SPAN-2"
kind = "bridge"
location = "Main river span (carries the water main)"
criticality = 5
gateway = "gw-aare-1"
channels = ["accel"]
"#;

/// The demo's crews and a short health history interval (so trends show
/// within minutes).
pub const DEMO_CONFIG: &str = r#"registry = "assets.toml"
history_interval_s = 5

[[crews]]
id = "mech-a"
name = "Mechanical crew A"
skills = ["mechanical"]
daily_capacity = 3
working_days = ["mon", "tue", "wed", "thu", "fri", "sat"]

[[crews]]
id = "struct-a"
name = "Structural crew"
skills = ["structural"]
daily_capacity = 2

[[crews]]
id = "inst-a"
name = "Instrumentation crew"
skills = ["instrumentation", "mechanical"]
daily_capacity = 4
"#;

/// The version of the demo's model release.
pub const DEMO_RELEASE: &str = "2.0.1";

/// A fresh ed25519 key for this demo run, kept beside the hub's data
/// (`demo-engineer.key` / `.pub`) so the user can sign packages with it.
fn demo_signing_key(data_dir: &Path) -> Result<package::SigningKey> {
    let mut seed = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut seed)?;
    let key = package::secret_key_from_seed(seed);
    std::fs::write(
        data_dir.join("demo-engineer.key"),
        package::format_secret_key(&key) + "\n",
    )?;
    std::fs::write(
        data_dir.join("demo-engineer.pub"),
        package::format_public_key(&key.verifying_key()) + "\n",
    )?;
    Ok(key)
}

/// Packages the shipped pump model as version [`DEMO_RELEASE`] (same graph,
/// commissioning kept), signs it with the demo key and puts it in the hub's
/// registry, as an engineer would with `central-hub models package` and
/// `upload`. Returns `name version`.
fn publish_demo_release(
    hub: &RunningHub,
    key: &package::SigningKey,
    data_dir: &Path,
) -> Result<String> {
    let dir = data_dir
        .join("models")
        .join(format!("pump-anomaly-{DEMO_RELEASE}"));
    std::fs::create_dir_all(&dir)?;
    let mut manifest: serde_json::Value = serde_json::from_slice(PUMP_MANIFEST)?;
    manifest["version"] = DEMO_RELEASE.into();
    std::fs::write(
        dir.join("model.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    std::fs::write(dir.join("model.onnx"), PUMP_ONNX)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let (m, bytes) =
        edge_agent::model_package::package_dir(&dir, key, CommissioningPolicy::Keep, now)?;
    let engineer = crate::audit::Actor {
        name: "demo-engineer".into(),
        role: "engineer".into(),
    };
    hub.ledger
        .add_model(&bytes, &[key.verifying_key()], &engineer, now)
        .context("putting the demo release in the registry")?;
    Ok(format!("{} {}", m.name, m.version))
}

/// The shipped models, from the bytes compiled into this binary.
pub fn embedded_model(kind: AssetKind) -> Result<AnomalyModel> {
    let (manifest, onnx, dir) = match kind {
        AssetKind::Pump => (PUMP_MANIFEST, PUMP_ONNX, "models/pump-anomaly"),
        AssetKind::Bridge => (BRIDGE_MANIFEST, BRIDGE_ONNX, "models/bridge-anomaly"),
    };
    Ok(AnomalyModel::from_bytes(manifest, onnx, Path::new(dir))?)
}

/// Prepares a gateway of the fleet with the embedded models.
pub fn prepare_gateway(toml: &str) -> Result<(AgentConfig, Vec<PreparedAsset>)> {
    let config = AgentConfig::parse(toml, Path::new("."))?;
    let assets = config
        .assets
        .iter()
        .map(|asset| {
            let model = embedded_model(asset.kind)?;
            Ok(PreparedAsset::new(&config, asset, model)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((config, assets))
}

/// Runs the demo until Ctrl-C or `run_for`.
pub async fn run(options: DemoOptions, ctrl_c: CancellationToken) -> Result<()> {
    let broker = crate::broker::start("127.0.0.1:0".parse()?)?;
    let temp;
    let data_dir = match &options.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("pdm-demo-").tempdir()?;
            temp.path().to_owned()
        }
    };
    std::fs::create_dir_all(&data_dir)?;
    std::fs::write(data_dir.join("assets.toml"), DEMO_REGISTRY)?;
    std::fs::write(data_dir.join("hub.toml"), DEMO_CONFIG)?;
    let mut config = HubConfig::load(&data_dir.join("hub.toml"))?;
    let users = config.ensure_users()?;
    // A signing key for this demo run: the hub and the gateways trust it.
    let key = demo_signing_key(&data_dir)?;
    let public = package::format_public_key(&key.verifying_key());
    config.models.trusted_keys = vec![public.clone()];
    let hub = hub::start(HubSettings {
        mqtt: IngestSettings {
            host: broker.addr.ip().to_string(),
            port: broker.addr.port(),
            client_id: "central-hub-demo".into(),
            keep_alive: Duration::from_secs(30),
            liveness: Default::default(),
        },
        http: options.http,
        data_dir: data_dir.clone(),
        config,
    })
    .await
    .context("starting the hub")?;

    let agents_stop = CancellationToken::new();
    let mut agents = Vec::new();
    let release = publish_demo_release(&hub, &key, &data_dir)?;
    for toml in fleet_configs(broker.addr, &public) {
        let (mut config, assets) = prepare_gateway(&toml)?;
        // Each gateway's commissioning, beside the hub's data.
        config.data_dir = data_dir.join("agents").join(&config.gateway);
        let store = edge_agent::open_store(&config)?;
        let outbox = edge_agent::open_outbox(&config, &store)?;
        let assets = assets
            .into_iter()
            .map(|a| a.with_commissioning_store(store.clone()))
            .collect();
        agents.push(tokio::spawn(edge_agent::run(
            config,
            assets,
            outbox,
            agents_stop.clone(),
        )));
    }

    let url = format!("http://{}", hub.http_addr);
    println!("Predictive-maintenance demo");
    println!("  operators' queue:  {url}/");
    println!("  API:               {url}/api/work-orders  {url}/api/assets");
    println!(
        "  MQTT broker:       mqtt://{} (embedded rumqttd)",
        broker.addr
    );
    println!("  hub data:          {}", data_dir.display());
    for u in &users {
        println!("{} token: {}", u.role.as_str(), u.token);
    }
    if let Some(op) = users.first() {
        println!(
            "  open the queue signed in as operator: {url}/#token={}",
            op.token
        );
    }
    println!("  pumpstation-north: P-101 healthy; P-102 bearing outer-race fault from 15 s");
    println!("  aare-bridge:       SPAN-1 healthy; SPAN-2 stiffness loss from 40 s");
    println!("  pumpstation-south: P-201 healthy");
    println!("  every asset learns its baseline first (pumps ~10 s, spans ~40 s)");
    println!("  expect a work order for P-102 and SPAN-2 within about a minute; Ctrl-C stops.");
    let engineer = users
        .iter()
        .find(|u| u.role == crate::auth::Role::Engineer)
        .map_or("<engineer token>", |u| u.token.as_str());
    println!(
        "  model release:     {release} is in the registry (signed with {}); roll it out to the two pump stations, canary first, with",
        data_dir.join("demo-engineer.key").display()
    );
    println!(
        "    PDM_HUB_TOKEN={engineer} cargo run --release -p central-hub -- rollout --hub {url} start --model pump-anomaly --version {DEMO_RELEASE} --asset-kind pump --waves 1,100% --shadow-s 20"
    );
    println!("    and watch its waves under Rollouts on the page.");

    let started = Instant::now();
    let mut progress = tokio::time::interval(PROGRESS_EVERY);
    progress.tick().await;
    loop {
        let deadline = async {
            match options.run_for {
                Some(d) => tokio::time::sleep_until((started + d).into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctrl_c.cancelled() => break,
            _ = deadline => break,
            _ = progress.tick() => print_status(&hub, started.elapsed()),
        }
    }

    println!("stopping: agents say goodbye, then the hub");
    agents_stop.cancel();
    for agent in agents {
        let _ = agent.await;
    }
    // Let the hub store the goodbyes that are still on their way.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline
        && hub
            .ledger
            .gateways()
            .unwrap_or_default()
            .iter()
            .any(|g| g.online)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    print_status(&hub, started.elapsed());
    hub.stop().await;
    Ok(())
}

fn print_status(hub: &RunningHub, elapsed: Duration) {
    let assets = hub.ledger.assets().unwrap_or_default();
    let orders = hub.ledger.work_orders().unwrap_or_default();
    let assets: Vec<String> = assets
        .iter()
        .map(|a| format!("{} {:?} {:.0}", a.id, a.state, a.health))
        .collect();
    let open: Vec<String> = orders
        .iter()
        .filter(|w| w.status.is_open())
        .map(|w| {
            format!(
                "{} {} P{} {}",
                w.id,
                w.asset_id,
                w.priority,
                w.status.as_str()
            )
        })
        .collect();
    println!(
        "[{:>4} s] assets: {} | open work orders: {}",
        elapsed.as_secs(),
        assets.join(", "),
        if open.is_empty() {
            "none".into()
        } else {
            open.join(", ")
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_agent::source::SourceConfig;

    fn trusted() -> String {
        package::format_public_key(&package::secret_key_from_seed([1; 32]).verifying_key())
    }

    #[test]
    fn fleet_configs_are_valid_and_models_fit() {
        let configs = fleet_configs("127.0.0.1:1883".parse().unwrap(), &trusted());
        let mut faulty = Vec::new();
        let mut counts = Vec::new();
        for toml in &configs {
            let (config, assets) = prepare_gateway(toml).unwrap();
            assert!(!config.models.trusted_keys.is_empty());
            counts.push(assets.len());
            for a in &config.assets {
                if let SourceConfig::Sim(sim) = &a.source
                    && sim.fault.is_some()
                {
                    faulty.push(a.id.clone());
                }
            }
        }
        assert_eq!(faulty, ["P-102", "SPAN-2"]);
        assert_eq!(counts, [2, 2, 1]);
    }

    #[test]
    fn the_demo_config_and_registry_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("assets.toml"), DEMO_REGISTRY).unwrap();
        std::fs::write(dir.path().join("hub.toml"), DEMO_CONFIG).unwrap();
        let config = HubConfig::load(&dir.path().join("hub.toml")).unwrap();
        assert_eq!(config.crews.len(), 3);
        let registry = crate::registry::load(&config.registry.unwrap()).unwrap();
        let span2 = registry.iter().find(|r| r.id == "SPAN-2").unwrap();
        assert_eq!(span2.criticality, 5);
    }
}
