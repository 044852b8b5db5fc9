//! What `edge-agent replay` does with its arguments: picks the profile, the
//! model and the replay (sample streams or tables) and says in one line
//! what it wrote.

use std::path::PathBuf;

use anyhow::{Context, Result};
use protocol::AssetKind;

use crate::features::process::{PROCESS_PROFILES, ProcessProfile};
use crate::features::{AssetAnalysis, FeatureProfile, PROFILES};
use crate::model::AnomalyModel;
use crate::source::SourceConfig;
use crate::table::{TableFormat, read_table};

/// The recording to replay.
pub enum ReplayInput {
    /// A sample stream (f32le, per-sample CSV), for a window profile.
    Samples(SourceConfig),
    /// A table of process readings, for a process profile.
    Table { path: PathBuf, format: TableFormat },
}

/// `edge-agent replay`'s arguments.
pub struct ReplayCommand {
    pub profile: String,
    pub commission_rows: u32,
    pub model: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    /// Time of the first sample (sample streams), RFC 3339.
    pub start: String,
    pub shaft_rpm: Option<f64>,
    pub output: PathBuf,
    pub input: ReplayInput,
}

/// Runs the replay; returns the line to print.
pub fn run(cmd: ReplayCommand) -> Result<String> {
    let file = || {
        std::fs::File::create(&cmd.output)
            .map(std::io::BufWriter::new)
            .with_context(|| format!("cannot create {}", cmd.output.display()))
    };
    if let Some(profile) = ProcessProfile::by_name(&cmd.profile) {
        let ReplayInput::Table { path, format } = &cmd.input else {
            anyhow::bail!(
                "profile {} reads tables of process readings: give --format skab or --format table",
                profile.name
            );
        };
        let model = load_model(&cmd.model, "models/pump-process-anomaly")?;
        let rows = read_table(path, format, profile)?;
        let store = cmd
            .data_dir
            .as_deref()
            .map(crate::agent::open_store_at)
            .transpose()?;
        let request = crate::table_replay::TableReplayRequest {
            profile,
            model: &model,
            commission_rows: cmd.commission_rows,
            store,
            asset_id: "replay",
            detector: Default::default(),
        };
        let (summary, _) = crate::table_replay::replay_table(request, &rows, &mut file()?)?;
        return Ok(summary.describe(&cmd.output));
    }
    let profile = FeatureProfile::by_name(&cmd.profile).with_context(|| {
        let known: Vec<&str> = PROFILES
            .iter()
            .map(|p| p.name)
            .chain(PROCESS_PROFILES.iter().map(|p| p.name))
            .collect();
        format!(
            "--profile {}: unknown; known: {}",
            cmd.profile,
            known.join(", ")
        )
    })?;
    let ReplayInput::Samples(source) = cmd.input else {
        anyhow::bail!(
            "profile {} reads sample streams: give --format f32le or --format csv",
            profile.name
        );
    };
    // The shipped model computed on this profile.
    let default_model = match (profile.name, profile.asset_kind) {
        ("bearing-v1", _) => "models/bearing-anomaly",
        ("bridge-modal-v1", _) => "models/bridge-modal-anomaly",
        (_, AssetKind::Pump) => "models/pump-anomaly",
        (_, AssetKind::Bridge) => "models/bridge-anomaly",
    };
    let model = load_model(&cmd.model, default_model)?;
    let start = humantime::parse_rfc3339(&cmd.start)
        .with_context(|| format!("--start {}: not an RFC 3339 time", cmd.start))?;
    let start_us = start
        .duration_since(std::time::UNIX_EPOCH)
        .context("--start is before 1970")?
        .as_micros() as u64;
    let mut analysis = AssetAnalysis::default();
    if let Some(rpm) = cmd.shaft_rpm {
        anyhow::ensure!(rpm > 0.0, "--shaft-rpm {rpm} must be positive");
        analysis.shaft_hz = rpm / 60.0;
    }
    let request = crate::replay::ReplayRequest {
        profile,
        model,
        segments: vec![crate::replay::ReplaySegment { source, start_us }],
        commission_rows: cmd.commission_rows,
        data_dir: cmd.data_dir.clone(),
        asset_id: "replay".into(),
        analysis,
        detector: Default::default(),
        sensor_health: Default::default(),
    };
    let summary = crate::replay::replay(request, &mut file()?)?;
    Ok(summary.describe(&cmd.output))
}

fn load_model(given: &Option<PathBuf>, default: &str) -> Result<AnomalyModel> {
    let dir = given.clone().unwrap_or_else(|| PathBuf::from(default));
    Ok(AnomalyModel::load_dir(&dir)?)
}
