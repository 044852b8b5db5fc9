//! The gateway's configuration file (TOML), validated before anything starts.
//!
//! A gateway is installed once and then left alone on a pole, so a config
//! mistake must be caught at start-up with a message that names the file and
//! the exact problem, not discovered hours later as a silent channel.
//! Relative paths in the file (models, recordings) are resolved against the
//! directory of the config file, so a gateway folder can be moved as a whole.

use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::{AssetKind, validate_id};
use serde::Deserialize;
use thiserror::Error;

use crate::commissioning::CommissioningSpec;
use crate::detector::DetectorConfig;
use crate::features::{AssetAnalysis, BearingGeometry, MachineClass, ZoneLimits};
use crate::sensor_health::SensorHealthConfig;
use crate::source::SourceConfig;

/// The whole agent configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Site the gateway is installed at (a pump station, a bridge).
    pub site: String,
    /// This gateway's id, unique within the fleet.
    pub gateway: String,
    /// Seconds between heartbeats.
    #[serde(default = "default_heartbeat_s")]
    pub heartbeat_interval_s: f64,
    /// Where the agent keeps what must survive a restart (each asset's
    /// commissioning); relative to the config file. Default `data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    pub mqtt: MqttConfig,
    /// Bounds of the durable outbox (see `crate::outbox`).
    #[serde(default)]
    pub outbox: crate::outbox::OutboxConfig,
    /// Models over the air (see `crate::model_manager`).
    #[serde(default)]
    pub models: ModelsConfig,
    pub assets: Vec<AssetConfig>,
}

/// `[models]`: whose model packages this gateway runs, and how a new
/// model must behave after its swap to stay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Engineers' public keys, `ed25519:<64 hex digits>`. Empty: the
    /// gateway refuses models over the air.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Windows a swapped-in model is watched before it is kept.
    #[serde(default = "default_probation_windows")]
    pub probation_windows: u64,
    /// A share of alarm windows on probation that exceeds the previous
    /// model's (in shadow) by more than this is an alarm storm: the gateway
    /// goes back to its previous model.
    #[serde(default = "default_storm_fraction")]
    pub max_probation_alarm_fraction: f64,
    /// Bytes asked for at a time while downloading a package (512 to
    /// 32768; small chunks suit a poor link).
    #[serde(default = "default_fetch_chunk")]
    pub fetch_chunk_bytes: u32,
}

fn default_fetch_chunk() -> u32 {
    protocol::ota::MAX_CHUNK_BYTES
}

fn default_probation_windows() -> u64 {
    20
}

fn default_storm_fraction() -> f64 {
    0.5
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            trusted_keys: Vec::new(),
            probation_windows: default_probation_windows(),
            max_probation_alarm_fraction: default_storm_fraction(),
            fetch_chunk_bytes: default_fetch_chunk(),
        }
    }
}

impl ModelsConfig {
    pub fn keys(&self) -> Result<Vec<protocol::package::VerifyingKey>, String> {
        protocol::package::parse_public_keys(&self.trusted_keys)
    }

    fn validate(&self) -> Result<(), String> {
        self.keys()?;
        if self.probation_windows == 0 {
            return Err("[models] probation_windows must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.max_probation_alarm_fraction) {
            return Err("[models] max_probation_alarm_fraction must be in [0, 1]".into());
        }
        if !(512..=protocol::ota::MAX_CHUNK_BYTES).contains(&self.fetch_chunk_bytes) {
            return Err(format!(
                "[models] fetch_chunk_bytes must be 512 to {}",
                protocol::ota::MAX_CHUNK_BYTES
            ));
        }
        Ok(())
    }
}

/// Where the broker is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// MQTT client id; defaults to the gateway id.
    pub client_id: Option<String>,
    #[serde(default = "default_keep_alive_s")]
    pub keep_alive_s: u64,
    /// Seconds a stopping agent waits for the broker to take (and the hub
    /// to confirm) what its outbox holds; the rest waits on disk for the
    /// next start.
    #[serde(default = "default_drain_timeout_s")]
    pub drain_timeout_s: f64,
}

/// One watched asset with its sensor source and model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    pub id: String,
    pub kind: AssetKind,
    /// Folder holding `model.json` and the ONNX file it names.
    pub model: PathBuf,
    #[serde(default = "default_vibration_channel")]
    pub vibration_channel: String,
    #[serde(default = "default_temperature_channel")]
    pub temperature_channel: String,
    pub source: SourceConfig,
    #[serde(default)]
    pub detector: DetectorConfig,
    #[serde(default)]
    pub sensor_health: SensorHealthConfig,
    /// Rotating machines: nominal shaft speed (default 1480 rpm).
    pub shaft_rpm: Option<f64>,
    /// Rotating machines: the monitored bearing (default: a 6309).
    pub bearing: Option<BearingGeometry>,
    /// Rotating machines: band demodulated for the envelope spectrum, Hz
    /// (default: 20-80 % of Nyquist).
    pub envelope_band_hz: Option<[f64; 2]>,
    /// Rotating machines: ISO 10816 machine class (default II) ...
    pub iso_class: Option<MachineClass>,
    /// ... or explicit A/B, B/C, C/D limits in mm/s.
    pub iso_zone_limits_mm_s: Option<ZoneLimits>,
    /// Structures: where each of the first three modes is sought, Hz.
    pub mode_search_hz: Option<Vec<[f64; 2]>>,
    /// Commission this asset on its first windows (also when its model
    /// does not ask for it), or change the model's baseline length.
    pub commissioning: Option<AssetCommissioning>,
}

/// `[assets.commissioning]`: the asset's baseline, over the model's
/// commissioning (or the replay defaults if the model has none).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetCommissioning {
    pub baseline_windows: u32,
    pub threshold_quantile: Option<f64>,
    pub threshold_margin: Option<f64>,
    pub alarm_factor: Option<f64>,
}

impl AssetCommissioning {
    /// The spec this asset is commissioned with, given its model's.
    pub fn spec(&self, model: Option<&CommissioningSpec>) -> CommissioningSpec {
        let base = CommissioningSpec::for_baseline(model, self.baseline_windows);
        CommissioningSpec {
            threshold_quantile: self.threshold_quantile.unwrap_or(base.threshold_quantile),
            threshold_margin: self.threshold_margin.unwrap_or(base.threshold_margin),
            alarm_factor: self.alarm_factor.unwrap_or(base.alarm_factor),
            ..base
        }
    }
}

/// A config file that cannot be used, with the file named.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("config file {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_heartbeat_s() -> f64 {
    30.0
}
fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    1883
}
fn default_keep_alive_s() -> u64 {
    30
}
fn default_drain_timeout_s() -> f64 {
    5.0
}
fn default_vibration_channel() -> String {
    "accel".into()
}
fn default_temperature_channel() -> String {
    "temp".into()
}

impl AgentConfig {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            ConfigError::Invalid { reason, .. } => ConfigError::Invalid {
                path: path.to_owned(),
                reason,
            },
            other => other,
        })
    }

    /// Parses and validates config text; relative paths are resolved
    /// against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, ConfigError> {
        let mut config: AgentConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            // toml's message spans several lines (it quotes the line); the
            // first line plus the location is what an operator needs.
            message: one_line(&e.to_string()),
        })?;
        config.validate().map_err(|reason| ConfigError::Invalid {
            path: PathBuf::new(),
            reason,
        })?;
        config.data_dir = resolve(base_dir, &config.data_dir);
        for asset in &mut config.assets {
            asset.model = resolve(base_dir, &asset.model);
            asset.source.resolve_paths(base_dir);
        }
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        validate_id("site id", &self.site).map_err(|e| e.to_string())?;
        validate_id("gateway id", &self.gateway).map_err(|e| e.to_string())?;
        if !(self.heartbeat_interval_s.is_finite() && self.heartbeat_interval_s >= 0.1) {
            return Err(format!(
                "heartbeat_interval_s = {} must be at least 0.1",
                self.heartbeat_interval_s
            ));
        }
        if self.mqtt.host.trim().is_empty() {
            return Err("mqtt.host is empty".into());
        }
        if let Some(id) = &self.mqtt.client_id {
            validate_id("mqtt.client_id", id).map_err(|e| e.to_string())?;
        }
        if !(5..=u64::from(u16::MAX)).contains(&self.mqtt.keep_alive_s) {
            return Err(format!(
                "mqtt.keep_alive_s = {} must be within 5..65535",
                self.mqtt.keep_alive_s
            ));
        }
        if !(self.mqtt.drain_timeout_s.is_finite()
            && (0.0..=3600.0).contains(&self.mqtt.drain_timeout_s))
        {
            return Err(format!(
                "mqtt.drain_timeout_s = {} must be within 0..3600",
                self.mqtt.drain_timeout_s
            ));
        }
        self.outbox.validate()?;
        self.models.validate()?;
        if self.assets.is_empty() {
            return Err("no [[assets]]: a gateway must watch at least one asset".into());
        }
        let mut seen = std::collections::HashSet::new();
        for asset in &self.assets {
            let ctx = |e: String| format!("asset `{}`: {e}", asset.id);
            validate_id("asset id", &asset.id).map_err(|e| e.to_string())?;
            if !seen.insert(asset.id.as_str()) {
                return Err(format!("asset id `{}` appears twice", asset.id));
            }
            validate_id("vibration_channel", &asset.vibration_channel)
                .map_err(|e| ctx(e.to_string()))?;
            validate_id("temperature_channel", &asset.temperature_channel)
                .map_err(|e| ctx(e.to_string()))?;
            asset.source.validate(asset.kind).map_err(ctx)?;
            asset.detector.validate().map_err(ctx)?;
            asset.sensor_health.validate().map_err(ctx)?;
            asset.validate_analysis().map_err(ctx)?;
            if let Some(c) = &asset.commissioning {
                c.spec(None).validate().map_err(ctx)?;
            }
        }
        Ok(())
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_interval_s)
    }

    pub fn client_id(&self) -> String {
        self.mqtt
            .client_id
            .clone()
            .unwrap_or_else(|| self.gateway.clone())
    }
}

impl AssetConfig {
    fn validate_analysis(&self) -> Result<(), String> {
        let machine_only = [
            ("shaft_rpm", self.shaft_rpm.is_some()),
            ("bearing", self.bearing.is_some()),
            ("envelope_band_hz", self.envelope_band_hz.is_some()),
            ("iso_class", self.iso_class.is_some()),
            ("iso_zone_limits_mm_s", self.iso_zone_limits_mm_s.is_some()),
        ];
        match self.kind {
            AssetKind::Bridge => {
                if let Some((name, _)) = machine_only.iter().find(|(_, set)| *set) {
                    return Err(format!(
                        "`{name}` applies to rotating machines, not to a bridge"
                    ));
                }
            }
            AssetKind::Pump => {
                if self.mode_search_hz.is_some() {
                    return Err("`mode_search_hz` applies to bridges, not to a pump".into());
                }
            }
        }
        if let Some(rpm) = self.shaft_rpm
            && !(rpm.is_finite() && (60.0..=60_000.0).contains(&rpm))
        {
            return Err(format!("shaft_rpm = {rpm} must be within 60..60000"));
        }
        if let Some(b) = &self.bearing {
            b.validate()?;
        }
        if let Some([lo, hi]) = self.envelope_band_hz
            && !(lo > 0.0 && lo < hi && hi.is_finite())
        {
            return Err(format!(
                "envelope_band_hz = [{lo}, {hi}] must satisfy 0 < lo < hi"
            ));
        }
        if self.iso_class.is_some() && self.iso_zone_limits_mm_s.is_some() {
            return Err("give either iso_class or iso_zone_limits_mm_s, not both".into());
        }
        if let Some(bands) = &self.mode_search_hz {
            if bands.len() != 3 {
                return Err(format!(
                    "mode_search_hz needs 3 bands (modes 1-3), found {}",
                    bands.len()
                ));
            }
            if let Some([lo, hi]) = bands.iter().find(|[lo, hi]| !(*lo > 0.0 && lo < hi)) {
                return Err(format!(
                    "mode_search_hz band [{lo}, {hi}] must satisfy 0 < lo < hi"
                ));
            }
        }
        Ok(())
    }

    /// What the asset's features depend on, defaults filled in.
    pub fn analysis(&self) -> AssetAnalysis {
        let defaults = AssetAnalysis::default();
        AssetAnalysis {
            shaft_hz: self.shaft_rpm.map_or(defaults.shaft_hz, |rpm| rpm / 60.0),
            bearing: self.bearing.unwrap_or(defaults.bearing),
            envelope_band_hz: self.envelope_band_hz.map(|[lo, hi]| (lo, hi)),
            mode_search_hz: self
                .mode_search_hz
                .as_ref()
                .map_or(defaults.mode_search_hz, |b| {
                    b.iter().map(|[lo, hi]| (*lo, *hi)).collect()
                }),
            iso_limits: self
                .iso_zone_limits_mm_s
                .or(self.iso_class.map(MachineClass::limits))
                .unwrap_or(defaults.iso_limits),
        }
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

pub(crate) fn resolve_in_place(base: &Path, p: &mut PathBuf) {
    *p = resolve(base, p);
}

fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message.lines().map(str::trim).collect();
    // toml: "TOML parse error at line 3, column 7\n  |\n3 | ...\n  |   ^\nmessage"
    let location = lines.first().copied().unwrap_or_default();
    let reason = lines.last().copied().unwrap_or_default();
    if location == reason {
        location.to_owned()
    } else {
        format!("{location}: {reason}")
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
