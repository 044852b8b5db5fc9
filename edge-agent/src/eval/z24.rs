//! Z24 bridge, progressive damage test (see
//! `../shared/data/z24-bridge-pdt/SOURCE.md`): one ambient-vibration record
//! of ~655 s at 100 Hz after each stage of damage, on the vertical-dominant
//! reference sensor (column 0, first vertical mode 3.9 Hz).
//!
//! The span is commissioned on the first two reference records (01, 02:
//! the spread between them is the spread any judgement must live with),
//! then every other record present is replayed against that commissioning:
//! the damage stages (pier lowered 20 to 95 mm, ...) and the later
//! reference record 08 (pier lifted back), which is unseen and should look
//! like the baseline. The benchmark has no labels per window, so it
//! reports, per record, the median score and the share of windows above
//! the reference records' median and 75th-percentile scores (the reference
//! spread), beside the share the detector flagged. The records have no
//! temperature channel: a constant reading is given, so the temperature
//! covariate is not learned (the report says so).

use std::path::Path;

use anyhow::{Context, Result};
use protocol::AssetKind;

use crate::commissioning::{CommissioningRecord, quantile};
use crate::detector::DetectorConfig;
use crate::features::{AssetAnalysis, FeatureProfile};
use crate::model::AnomalyModel;
use crate::replay::{ReplayRequest, ReplaySegment, replay, replay_rows};

const SAMPLE_RATE_HZ: f64 = 100.0;
/// The records carry no temperature: this constant reading stands in.
const NO_TEMPERATURE_C: f64 = 10.0;
const REFERENCES: [u32; 2] = [1, 2];
/// One hour between records on the replay's clock: they are separate tests.
const RECORD_SPACING_US: u64 = 3_600_000_000;

/// One record judged against the reference commissioning.
#[derive(Debug, Clone)]
pub struct Z24Result {
    pub scenario: u32,
    pub description: String,
    pub is_reference: bool,
    /// Part of the commissioning (01, 02).
    pub commissioned_on: bool,
    pub windows: u64,
    pub flagged: u64,
    pub scores: Vec<f64>,
}

impl Z24Result {
    pub fn median_score(&self) -> f64 {
        quantile(&self.scores, 0.5)
    }

    /// Share of scored windows above `level`.
    pub fn share_above(&self, level: f64) -> f64 {
        let above = self.scores.iter().filter(|s| **s > level).count();
        above as f64 / self.scores.len().max(1) as f64
    }
}

/// The commissioning and the records judged with it.
#[derive(Debug, Clone)]
pub struct Z24Report {
    pub commissioning: CommissioningRecord,
    pub records: Vec<Z24Result>,
}

/// Runs the protocol over the records present in `data`.
pub fn z24(data: &Path, model: &AnomalyModel) -> Result<Z24Report> {
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("z24_pdt_subset.json")).context("reading z24_pdt_subset.json")?,
    )
    .context("parsing z24_pdt_subset.json")?;
    let scenarios: Vec<(u32, String, bool, std::path::PathBuf)> = meta["scenarios"]
        .as_array()
        .context("no `scenarios` in z24_pdt_subset.json")?
        .iter()
        .filter_map(|s| {
            let path = data.join(s["file"].as_str()?);
            Some((
                s["scenario"].as_u64()? as u32,
                s["description"].as_str().unwrap_or_default().to_owned(),
                s["label"] == "reference",
                path,
            ))
        })
        .filter(|s| s.3.is_file())
        .collect();
    let segment = |scenario: u32, path: &Path| ReplaySegment {
        start_us: u64::from(scenario) * RECORD_SPACING_US,
        ..super::f32le_segment(path, SAMPLE_RATE_HZ, (2, 0), NO_TEMPERATURE_C, 0)
    };
    let references: Vec<ReplaySegment> = REFERENCES
        .iter()
        .map(|n| {
            let s = scenarios.iter().find(|s| s.0 == *n).with_context(|| {
                format!("reference record {n:02} is missing from {}", data.display())
            })?;
            Ok(segment(s.0, &s.3))
        })
        .collect::<Result<_>>()?;
    let profile = FeatureProfile::for_model(AssetKind::Bridge, &model.manifest().feature_profile);
    let scratch = super::Scratch::new("z24")?;
    let request = |segments: Vec<ReplaySegment>, commission_rows: u32| ReplayRequest {
        profile,
        model: model.clone(),
        segments,
        commission_rows,
        data_dir: Some(scratch.0.clone()),
        asset_id: "z24-span".into(),
        analysis: AssetAnalysis::default(),
        detector: DetectorConfig::default(),
        sensor_health: Default::default(),
    };
    // Every window of both reference records is baseline.
    let (len, hop) = profile.window_samples(SAMPLE_RATE_HZ);
    let mut baseline = 0u32;
    for r in REFERENCES {
        let s = scenarios.iter().find(|s| s.0 == r).expect("checked above");
        let samples = std::fs::metadata(&s.3)?.len() as usize / 8;
        anyhow::ensure!(
            samples >= len,
            "reference record {r:02} holds {samples} samples, less than one window of {len}"
        );
        baseline += ((samples - len) / hop + 1) as u32;
    }
    let commissioned = replay(request(references, baseline), &mut std::io::sink())?;
    let commissioning = commissioned.commissioning.with_context(|| {
        format!(
            "the reference records did not complete a baseline of {baseline} windows ({} refused)",
            commissioned.refused
        )
    })?;
    let mut records = Vec::new();
    for (scenario, description, is_reference, path) in &scenarios {
        let mut scores = Vec::new();
        let summary = replay_rows(
            request(vec![segment(*scenario, path)], 0),
            &mut std::io::sink(),
            |row| scores.extend(row.score),
        )?;
        records.push(Z24Result {
            scenario: *scenario,
            description: description.clone(),
            is_reference: *is_reference,
            commissioned_on: REFERENCES.contains(scenario),
            windows: summary.rows_written,
            flagged: summary.anomaly_rows,
            scores,
        });
    }
    Ok(Z24Report {
        commissioning,
        records,
    })
}

/// The results as printed, ending with one comparable line per record.
pub fn z24_report(report: &Z24Report, model: &AnomalyModel) -> String {
    let c = &report.commissioning;
    let covariates: Vec<String> = c
        .scaling
        .iter()
        .flat_map(|s| &s.covariates)
        .map(|v| {
            format!(
                "{} {}",
                v.spec.feature,
                match (&v.collinear_with, v.learned) {
                    (_, true) => format!("learned (baseline spread {:.3})", v.spread),
                    (Some(other), false) => format!("not learned (moved with {other})"),
                    (None, false) => format!(
                        "not learned (baseline spread {:.3} < {})",
                        v.spread, v.spec.min_spread
                    ),
                }
            )
        })
        .collect();
    let reference: Vec<f64> = report
        .records
        .iter()
        .filter(|r| r.commissioned_on)
        .flat_map(|r| r.scores.iter().copied())
        .collect();
    let (median, upper) = (quantile(&reference, 0.5), quantile(&reference, 0.75));
    let mut text = format!(
        "Z24 progressive damage test, vertical reference sensor, model {}: commissioned on records 01 and 02 ({} windows); \
         reference scores: median {median:.2}, 75th percentile {upper:.2}; warning {:.2}, alarm {:.2}; covariates: {}\n\
         | record | scenario | windows | median score | above reference median | above reference 75th pct | flagged |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
        model.label(),
        c.windows,
        c.threshold,
        c.alarm_threshold,
        if covariates.is_empty() {
            "none".into()
        } else {
            covariates.join(", ")
        }
    );
    for r in &report.records {
        let role = match (r.commissioned_on, r.is_reference) {
            (true, _) => " (reference, commissioning)",
            (false, true) => " (reference, unseen)",
            (false, false) => "",
        };
        text += &format!(
            "| {:02} | {}{role} | {} | {:.2} | {:.0} % | {:.0} % | {:.1} % |\n",
            r.scenario,
            r.description,
            r.windows,
            r.median_score(),
            100.0 * r.share_above(median),
            100.0 * r.share_above(upper),
            100.0 * r.flagged as f64 / r.windows.max(1) as f64
        );
    }
    for r in &report.records {
        text += &format!(
            "z24: record={:02} reference={} median_score={:.3} above_median={:.3} above_q75={:.3} flagged={}/{}\n",
            r.scenario,
            r.is_reference,
            r.median_score(),
            r.share_above(median),
            r.share_above(upper),
            r.flagged,
            r.windows
        );
    }
    text
}
