//! `central-hub rollout ...`: engineers start and steer rollouts from a
//! terminal, with a progress line per change until the rollout ends.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct HubAccess {
    /// The hub's address.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    hub: String,
    /// An engineer's bearer token; default the PDM_HUB_TOKEN environment
    /// variable.
    #[arg(long, global = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
pub enum RolloutCommand {
    /// Start a rollout of a registered package and follow it.
    Start {
        #[arg(long)]
        model: String,
        #[arg(long)]
        version: String,
        /// Cumulative waves, e.g. `1,10%,50%,100%` (the default).
        #[arg(long)]
        waves: Option<String>,
        /// Only gateways watching assets of this kind (pump, bridge).
        #[arg(long)]
        asset_kind: Option<String>,
        #[arg(long)]
        site: Option<String>,
        /// Only these gateways (site/gateway), canary first; repeatable.
        #[arg(long = "gateway")]
        gateways: Vec<String>,
        /// Halt when more than this fraction of a wave fails (default 0).
        #[arg(long, default_value_t = 0.0)]
        max_failure_fraction: f64,
        /// Seconds each gateway runs the new model in shadow first.
        #[arg(long)]
        shadow_s: Option<u64>,
        /// Seconds a gateway may take before it counts as failed.
        #[arg(long)]
        gateway_timeout_s: Option<u64>,
        /// Allow an older version (an explicit downgrade).
        #[arg(long)]
        allow_downgrade: bool,
        /// Return at once instead of following the rollout.
        #[arg(long)]
        no_wait: bool,
    },
    /// List rollouts.
    List,
    /// Follow a rollout until it ends.
    Watch {
        id: String,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    /// Every gateway that took the new model goes back to its previous one.
    Rollback {
        id: String,
    },
}

struct Hub {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Hub {
    fn new(access: HubAccess) -> anyhow::Result<Hub> {
        let token = match access.token {
            Some(t) => t,
            None => std::env::var("PDM_HUB_TOKEN")
                .context("give --token or set PDM_HUB_TOKEN (an engineer's token)")?,
        };
        Ok(Hub {
            base: access.hub.trim_end_matches('/').to_owned(),
            token,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let mut response = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(body.unwrap_or_else(|| json!({}))),
        }
        .with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        let value: Value = response
            .body_mut()
            .read_json()
            .with_context(|| format!("{method} {url}: answer {status} is not JSON"))?;
        if status >= 400 {
            bail!(
                "the hub answered {status}: {}",
                value["error"].as_str().unwrap_or("no reason given")
            );
        }
        Ok(value)
    }
}

pub fn run(access: HubAccess, command: RolloutCommand) -> anyhow::Result<()> {
    let hub = Hub::new(access)?;
    match command {
        RolloutCommand::Start {
            model,
            version,
            waves,
            asset_kind,
            site,
            gateways,
            max_failure_fraction,
            shadow_s,
            gateway_timeout_s,
            allow_downgrade,
            no_wait,
        } => {
            let waves: Option<Vec<Value>> = waves.map(|w| {
                w.split(',')
                    .map(|s| {
                        let s = s.trim();
                        s.parse::<u64>()
                            .map(Value::from)
                            .unwrap_or_else(|_| Value::from(s))
                    })
                    .collect()
            });
            let mut target = json!({});
            if let Some(k) = asset_kind {
                target["asset_kind"] = k.into();
            }
            if let Some(s) = site {
                target["site"] = s.into();
            }
            if !gateways.is_empty() {
                target["gateways"] = gateways.into();
            }
            let mut request = json!({
                "model": model, "version": version, "target": target,
                "max_failure_fraction": max_failure_fraction,
                "allow_downgrade": allow_downgrade,
            });
            for (field, value) in [
                ("waves", waves.map(Value::from)),
                ("shadow_s", shadow_s.map(Value::from)),
                ("gateway_timeout_s", gateway_timeout_s.map(Value::from)),
            ] {
                if let Some(v) = value {
                    request[field] = v;
                }
            }
            let started = hub.call("POST", "/api/rollouts", Some(request))?;
            let id = started["id"].as_str().unwrap_or("?").to_owned();
            println!(
                "rollout {id}: {} {} to {} gateway(s) in waves of {}",
                started["spec"]["model"].as_str().unwrap_or("?"),
                started["spec"]["version"].as_str().unwrap_or("?"),
                started["gateways"].as_array().map_or(0, Vec::len),
                started["wave_sizes"]
            );
            if no_wait {
                return Ok(());
            }
            watch(&hub, &id)
        }
        RolloutCommand::List => {
            for r in hub
                .call("GET", "/api/rollouts", None)?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!("{}", line(r));
            }
            Ok(())
        }
        RolloutCommand::Watch { id } => watch(&hub, &id),
        RolloutCommand::Pause { id } => act(&hub, &id, "pause"),
        RolloutCommand::Resume { id } => act(&hub, &id, "resume"),
        RolloutCommand::Rollback { id } => act(&hub, &id, "rollback"),
    }
}

fn act(hub: &Hub, id: &str, action: &str) -> anyhow::Result<()> {
    let r = hub.call("POST", &format!("/api/rollouts/{id}/{action}"), None)?;
    println!("{}", line(&r));
    Ok(())
}

/// `R-000001 pump-anomaly 2.1.0 running wave 2/4: active 3, downloading 1, waiting 36`
fn line(r: &Value) -> String {
    let state = r["state"]["state"].as_str().unwrap_or("?");
    let wave = match r["state"]["wave"].as_u64() {
        Some(w) => format!(
            " wave {}/{}",
            w + 1,
            r["wave_sizes"].as_array().map_or(0, Vec::len)
        ),
        None => String::new(),
    };
    let counts: Vec<String> = r["summary"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(phase, n)| format!("{phase} {n}"))
        .collect();
    let mut text = format!(
        "{} {} {} {state}{wave}: {}",
        r["id"].as_str().unwrap_or("?"),
        r["spec"]["model"].as_str().unwrap_or("?"),
        r["spec"]["version"].as_str().unwrap_or("?"),
        counts.join(", ")
    );
    if let Some(reason) = r["state"]["reason"].as_str() {
        text.push_str(&format!(" ({reason})"));
    }
    text
}

/// Prints a line whenever the rollout changes, until it ends; fails if it
/// halted.
fn watch(hub: &Hub, id: &str) -> anyhow::Result<()> {
    let mut last = String::new();
    loop {
        let r = hub.call("GET", &format!("/api/rollouts/{id}"), None)?;
        let now = line(&r);
        if now != last {
            println!("{now}");
            last = now;
        }
        match r["state"]["state"].as_str() {
            Some("completed") | Some("rolled_back") => return Ok(()),
            Some("halted") => bail!("rollout {id} halted: resume or roll it back"),
            _ => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}
