//! `edge-agent features`: the feature vectors a training script learns from.
//!
//! Runs an asset's source (or a recording given on the command line in its
//! place) as fast as possible through the same windowing, sensor-health
//! checks and [`FeatureExtractor`] as the live agent and writes one CSV row
//! per window. No model is involved, so the first model of a new profile can
//! be trained from it.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::config::{AgentConfig, AssetConfig};
use crate::features::{FeatureExtractor, FeatureProfile};
use crate::sensor_health::SensorHealth;
use crate::source::{SourceConfig, SourcePoll, now_us};
use crate::window::Windower;

/// What an export wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
    pub refused_windows: u64,
    pub gaps: u64,
}

/// Which assets to export, and from what.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    /// Asset ids (all if empty).
    pub assets: Vec<String>,
    /// Seconds of signal per asset (the whole recording if shorter).
    pub seconds: f64,
    /// A recording to read instead of the asset's configured source
    /// (exactly one asset must then be selected).
    pub input: Option<SourceConfig>,
}

/// Exports feature vectors to `output` as CSV.
pub fn export_features(
    config: &AgentConfig,
    request: &ExportRequest,
    output: &Path,
) -> Result<ExportSummary> {
    if let Some(missing) = request
        .assets
        .iter()
        .find(|id| !config.assets.iter().any(|a| &a.id == *id))
    {
        anyhow::bail!("asset `{missing}` is not in the config");
    }
    let assets: Vec<&AssetConfig> = config
        .assets
        .iter()
        .filter(|a| request.assets.is_empty() || request.assets.contains(&a.id))
        .collect();
    if request.input.is_some() && assets.len() != 1 {
        anyhow::bail!(
            "--input replaces one asset's source: select exactly one asset with --asset (the config has {})",
            assets.len()
        );
    }
    let kinds: std::collections::HashSet<_> = assets.iter().map(|a| a.kind).collect();
    if kinds.len() != 1 {
        anyhow::bail!(
            "export assets of one kind at a time (one feature profile per file); select them with --asset"
        );
    }
    let profile = FeatureProfile::for_kind(assets[0].kind);
    let file = std::fs::File::create(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(
        out,
        "asset_id,window_start_ms,{}",
        profile.feature_names().join(",")
    )?;
    let mut summary = ExportSummary::default();
    for asset in assets {
        let source = request.input.as_ref().unwrap_or(&asset.source);
        let s = export_asset(asset, source, profile, request.seconds, &mut out)?;
        eprintln!(
            "{}: {} windows, {} refused by sensor checks, {} gaps",
            asset.id, s.rows, s.refused_windows, s.gaps
        );
        summary.rows += s.rows;
        summary.refused_windows += s.refused_windows;
        summary.gaps += s.gaps;
    }
    out.flush()?;
    Ok(summary)
}

fn export_asset(
    asset: &AssetConfig,
    source: &SourceConfig,
    profile: &'static FeatureProfile,
    seconds: f64,
    out: &mut impl Write,
) -> Result<ExportSummary> {
    let analysis = asset.analysis();
    let mut source = source
        .open(asset.kind, now_us(), &analysis)
        .with_context(|| format!("asset {}", asset.id))?;
    let rate = source.sample_rate_hz();
    profile
        .check_sample_rate(rate)
        .map_err(|e| anyhow::anyhow!("asset {}: {e}", asset.id))?;
    let (len, hop) = profile.window_samples(rate);
    let mut windower = Windower::new(len, hop, rate);
    let mut health = SensorHealth::new(asset.sensor_health.clone());
    let mut extractor = FeatureExtractor::new(profile, rate, analysis);
    let mut summary = ExportSummary::default();
    let total_samples = (seconds * rate) as u64;
    let mut samples = 0u64;
    let mut next_progress = 0.1;
    while samples < total_samples {
        let block = match source.poll()? {
            SourcePoll::Block(b) => b,
            SourcePoll::Idle => continue,
            SourcePoll::End => break,
        };
        samples += block.vibration.len() as u64;
        for window in windower.push(block) {
            let clip = health.clip_level_g();
            let checked =
                extractor.extract_checked(&window, clip, &mut |s| health.check_scanned(&window, s));
            let Ok(features) = checked else {
                summary.refused_windows += 1;
                continue;
            };
            write!(out, "{},{}", asset.id, window.start_us / 1000)?;
            for f in features.values {
                write!(out, ",{f}")?;
            }
            writeln!(out)?;
            summary.rows += 1;
        }
        let done = samples as f64 / total_samples as f64;
        if done >= next_progress {
            eprintln!(
                "{}: {:.0} % of {seconds} s",
                asset.id,
                done.min(1.0) * 100.0
            );
            next_progress += 0.1;
        }
    }
    summary.gaps = windower.gaps();
    Ok(summary)
}
