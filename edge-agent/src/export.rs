//! `edge-agent features`: the feature vectors a training script learns from.
//!
//! Runs each asset's source as fast as possible through the same windowing,
//! sensor checks and [`FeatureExtractor`] as the live agent and writes one
//! CSV row per window. No model is involved, so the first model of a new
//! profile can be trained from it.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::config::{AgentConfig, AssetConfig};
use crate::features::{FeatureExtractor, FeatureProfile};
use crate::sensor_check::check_window;
use crate::source::now_us;
use crate::window::Windower;

/// What an export wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
    pub refused_windows: u64,
    pub gaps: u64,
}

/// Exports `seconds` of signal (or the whole recording, if shorter) of the
/// selected assets (all if `only` is empty) to `output`.
pub fn export_features(
    config: &AgentConfig,
    only: &[String],
    seconds: f64,
    output: &Path,
) -> Result<ExportSummary> {
    let assets: Vec<&AssetConfig> = config
        .assets
        .iter()
        .filter(|a| only.is_empty() || only.contains(&a.id))
        .collect();
    if let Some(missing) = only
        .iter()
        .find(|id| !config.assets.iter().any(|a| &a.id == *id))
    {
        anyhow::bail!("asset `{missing}` is not in the config");
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
        let s = export_asset(asset, profile, seconds, &mut out)?;
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
    profile: &'static FeatureProfile,
    seconds: f64,
    out: &mut impl Write,
) -> Result<ExportSummary> {
    let mut source = asset
        .source
        .open(asset.kind, now_us())
        .with_context(|| format!("asset {}", asset.id))?;
    let rate = source.sample_rate_hz();
    profile
        .check_sample_rate(rate)
        .map_err(|e| anyhow::anyhow!("asset {}: {e}", asset.id))?;
    let (len, hop) = profile.window_samples(rate);
    let mut windower = Windower::new(len, hop, rate);
    let mut extractor = FeatureExtractor::new(profile, rate);
    let mut summary = ExportSummary::default();
    let total_samples = (seconds * rate) as u64;
    let mut samples = 0u64;
    let mut next_progress = 0.1;
    while samples < total_samples {
        let Some(block) = source.next_block()? else {
            break;
        };
        samples += block.vibration.len() as u64;
        for window in windower.push(block) {
            if check_window(&window).is_err() {
                summary.refused_windows += 1;
                continue;
            }
            let features = extractor.extract(&window);
            write!(out, "{},{}", asset.id, window.start_us / 1000)?;
            for f in features {
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
