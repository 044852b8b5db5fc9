//! `central-hub models ...`: the engineer's tools for model packages.
//!
//! An engineer makes a signing key once (`keygen`), signs each model
//! release into a package (`package`: the model is loaded and self-tested
//! before the key signs it), and can check any package the way a gateway
//! will (`inspect`: signature against trusted keys, every hash, the model
//! loads and passes its self-test).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use edge_agent::model_package;
use protocol::package::{self, CommissioningPolicy, VerifyingKey};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Make an engineer's signing key: OUT.key (secret: keep it off
    /// gateways and out of version control) and OUT.pub (give it to the
    /// hub and the gateways as a trusted key).
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// Replace existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Build and sign a package from a model folder (model.json + ONNX).
    Package {
        /// The model folder.
        #[arg(long)]
        model: PathBuf,
        /// The engineer's secret key file (from `keygen`).
        #[arg(long)]
        key: PathBuf,
        /// Where to write it (default NAME-VERSION.pdmpkg here).
        #[arg(long)]
        out: Option<PathBuf>,
        /// What gateways do with what commissioning learned: `rerun` (learn
        /// each asset's baseline again with this model) or `keep`.
        #[arg(long, default_value = "rerun")]
        commissioning: String,
    },
    /// Upload a package to the hub's model registry (engineer token).
    Upload {
        package: PathBuf,
        /// The hub's address.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        hub: String,
        /// An engineer's bearer token; default the PDM_HUB_TOKEN
        /// environment variable (keeps it out of the shell history).
        #[arg(long)]
        token: Option<String>,
    },
    /// Check a package as a gateway would and print what it contains.
    Inspect {
        package: PathBuf,
        /// A trusted public key (`ed25519:...`) or a file holding one;
        /// repeatable.
        #[arg(long = "trusted-key", required = true)]
        trusted: Vec<String>,
    },
}

pub fn run(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::Keygen { out, force } => keygen(&out, force),
        ModelsCommand::Package {
            model,
            key,
            out,
            commissioning,
        } => {
            let policy = match commissioning.as_str() {
                "rerun" => CommissioningPolicy::Rerun,
                "keep" => CommissioningPolicy::Keep,
                other => bail!("--commissioning must be `rerun` or `keep`, not `{other}`"),
            };
            let text = std::fs::read_to_string(&key)
                .with_context(|| format!("reading the key {}", key.display()))?;
            let key = package::parse_secret_key(&text)
                .with_context(|| format!("key file {}", key.display()))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64;
            let (manifest, bytes) = model_package::package_dir(&model, &key, policy, now)?;
            let out = out.unwrap_or_else(|| {
                PathBuf::from(format!("{}-{}.pdmpkg", manifest.name, manifest.version))
            });
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "packaged {} {} ({} bytes, sha256 {}) signed by {} into {}",
                manifest.name,
                manifest.version,
                bytes.len(),
                package::sha256_hex(&bytes),
                package::key_id(&key.verifying_key()),
                out.display()
            );
            Ok(())
        }
        ModelsCommand::Upload {
            package,
            hub,
            token,
        } => {
            let token = match token {
                Some(t) => t,
                None => std::env::var("PDM_HUB_TOKEN")
                    .context("give --token or set PDM_HUB_TOKEN (an engineer's token)")?,
            };
            upload(&package, &hub, &token)
        }
        ModelsCommand::Inspect { package, trusted } => {
            let keys = trusted
                .iter()
                .map(|t| read_public_key(t))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let bytes = std::fs::read(&package)
                .with_context(|| format!("reading {}", package.display()))?;
            let loaded = model_package::load(&bytes, &keys)
                .with_context(|| format!("package {}", package.display()))?;
            let m = &loaded.package.manifest;
            println!(
                "{} {}: signed by {}, {} files verified, self-test passed",
                m.name,
                m.version,
                loaded.package.key_id,
                m.files.len()
            );
            println!("{}", serde_json::to_string_pretty(m)?);
            Ok(())
        }
    }
}

fn upload(path: &Path, hub: &str, token: &str) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let url = format!("{}/api/models", hub.trim_end_matches('/'));
    let mut response = ureq::post(&url)
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/octet-stream")
        .config()
        .http_status_as_error(false)
        .build()
        .send(&bytes[..])
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response
        .body_mut()
        .read_json()
        .with_context(|| format!("POST {url}: answer {status} is not JSON"))?;
    if status != 201 {
        bail!(
            "the hub refused {} ({status}): {}",
            path.display(),
            body["error"].as_str().unwrap_or("no reason given")
        );
    }
    println!(
        "uploaded {} {} (sha256 {}) to {hub}",
        body["name"].as_str().unwrap_or("?"),
        body["version"].as_str().unwrap_or("?"),
        body["sha256"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// A public key given as text or as a file holding it.
pub fn read_public_key(text_or_path: &str) -> anyhow::Result<VerifyingKey> {
    let text = if text_or_path.starts_with("ed25519:") {
        text_or_path.to_owned()
    } else {
        std::fs::read_to_string(text_or_path)
            .with_context(|| format!("reading the public key {text_or_path}"))?
    };
    Ok(package::parse_public_key(&text)?)
}

fn keygen(out: &Path, force: bool) -> anyhow::Result<()> {
    let secret = out.with_extension("key");
    let public = out.with_extension("pub");
    if !force && (secret.exists() || public.exists()) {
        bail!(
            "{} or {} exists; pass --force to replace them",
            secret.display(),
            public.display()
        );
    }
    let mut seed = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut seed)
        .context("reading random bytes for the key")?;
    let key = package::secret_key_from_seed(seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&secret)
        .with_context(|| format!("writing {}", secret.display()))?;
    writeln!(file, "{}", package::format_secret_key(&key))?;
    std::fs::write(
        &public,
        format!("{}\n", package::format_public_key(&key.verifying_key())),
    )
    .with_context(|| format!("writing {}", public.display()))?;
    println!(
        "key {}: secret {} (keep it safe), public {}",
        package::key_id(&key.verifying_key()),
        secret.display(),
        public.display()
    );
    Ok(())
}
