//! `edge-agent eval`: a public benchmark's own protocol, run through replay.
//!
//! The figures in `models/README.md` come from here, so they measure the
//! code the field runs (features, commissioning, model, detector), not a
//! notebook's copy of it.
//!
//! SKAB, outlier detection (see `../shared/data/skab/SOURCE.md`): in every
//! anomalous file the first 400 rows commission the asset and the rest are
//! judged; F1, false alarm rate and missed alarm rate are computed over all
//! judged rows of all files together.
//!
//! CWRU (see `../shared/data/cwru-bearing/SOURCE.md`), per sample rate: the
//! first half of the healthy record commissions the bearing, then its
//! unseen second half must raise nothing and every fault record must be
//! flagged. The 12 kHz faults are paired with the healthy record decimated
//! to 12 kHz, never with the 48 kHz one (the SOURCE's sample-rate note).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::detector::DetectorConfig;
use crate::features::process::PUMP_PROCESS_V1;
use crate::model::AnomalyModel;
use crate::table::{TableFormat, read_table};
use crate::table_replay::{TableReplayRequest, replay_table};

/// Counts of a binary classification, positive = anomalous.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Confusion {
    pub true_positive: u64,
    pub false_positive: u64,
    pub true_negative: u64,
    pub false_negative: u64,
}

impl Confusion {
    pub fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.true_positive += 1,
            (true, false) => self.false_positive += 1,
            (false, false) => self.true_negative += 1,
            (false, true) => self.false_negative += 1,
        }
    }

    pub fn merge(&mut self, other: Confusion) {
        self.true_positive += other.true_positive;
        self.false_positive += other.false_positive;
        self.true_negative += other.true_negative;
        self.false_negative += other.false_negative;
    }

    pub fn rows(&self) -> u64 {
        self.true_positive + self.false_positive + self.true_negative + self.false_negative
    }

    /// Harmonic mean of precision and recall (0 when there is neither).
    pub fn f1(&self) -> f64 {
        let tp = self.true_positive as f64;
        let denominator = 2.0 * tp + self.false_positive as f64 + self.false_negative as f64;
        if denominator == 0.0 {
            0.0
        } else {
            2.0 * tp / denominator
        }
    }

    /// Share of normal rows flagged.
    pub fn false_alarm_rate(&self) -> f64 {
        ratio(
            self.false_positive,
            self.false_positive + self.true_negative,
        )
    }

    /// Share of anomalous rows missed.
    pub fn missed_alarm_rate(&self) -> f64 {
        ratio(
            self.false_negative,
            self.false_negative + self.true_positive,
        )
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// One SKAB file's result.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub path: PathBuf,
    pub confusion: Confusion,
    /// Rows not judged beyond the commissioning part (refused rows in it
    /// lengthen it).
    pub baseline_rows: u64,
}

/// Runs the SKAB protocol over every labelled CSV under `data` (the
/// anomaly-free run, which has no test part, is left out).
pub fn skab(data: &Path, model: &AnomalyModel, commission_rows: u32) -> Result<Vec<FileResult>> {
    let mut files = Vec::new();
    collect_csv(data, &mut files)?;
    files.retain(|p| !p.components().any(|c| c.as_os_str() == "anomaly-free"));
    // Natural order: valve1/2.csv before valve1/10.csv.
    files.sort_by_key(|p| {
        let stem: Option<u64> = p.file_stem().and_then(|s| s.to_str()?.parse().ok());
        (p.parent().map(Path::to_owned), stem, p.clone())
    });
    anyhow::ensure!(!files.is_empty(), "no CSV files under {}", data.display());
    let mut results = Vec::new();
    for path in files {
        let rows = read_table(&path, &TableFormat::Skab, &PUMP_PROCESS_V1)?;
        let request = TableReplayRequest {
            profile: &PUMP_PROCESS_V1,
            model,
            commission_rows,
            store: None,
            asset_id: "skab",
            detector: DetectorConfig::default(),
        };
        let (summary, verdicts) = replay_table(request, &rows, &mut std::io::sink())
            .with_context(|| format!("replaying {}", path.display()))?;
        let mut confusion = Confusion::default();
        for (verdict, row) in verdicts.iter().zip(&rows) {
            if let (Some(predicted), Some(label)) = (verdict, row.label) {
                confusion.add(*predicted, label == 1);
            }
        }
        eprintln!(
            "{}: {} rows judged, F1 {:.3}, FAR {:.1} %, MAR {:.1} %",
            path.display(),
            confusion.rows(),
            confusion.f1(),
            100.0 * confusion.false_alarm_rate(),
            100.0 * confusion.missed_alarm_rate()
        );
        results.push(FileResult {
            path,
            confusion,
            baseline_rows: summary.baseline_windows,
        });
    }
    Ok(results)
}

/// The results as printed: the total beside the published leaderboard,
/// ending with one comparable line.
pub fn skab_report(results: &[FileResult], model: &AnomalyModel) -> String {
    let mut total = Confusion::default();
    for r in results {
        total.merge(r.confusion);
    }
    let baseline: u64 = results.iter().map(|r| r.baseline_rows).sum();
    format!(
        "SKAB outlier detection, {} files, {} rows judged ({baseline} commissioning rows), model {}\n\
         | detector | F1 | FAR | MAR |\n\
         | --- | --- | --- | --- |\n\
         | this ({}) | {:.3} | {:.2} % | {:.2} % |\n\
         | Conv-AE (published best) | 0.78 | 13.55 % | 28.02 % |\n\
         | MSET (published) | 0.78 | 39.73 % | 14.13 % |\n\
         | T-squared+Q PCA (published) | 0.76 | 26.62 % | 24.92 % |\n\
         skab: files={} rows={} f1={:.3} far={:.4} mar={:.4}\n",
        results.len(),
        total.rows(),
        model.label(),
        model.label(),
        total.f1(),
        100.0 * total.false_alarm_rate(),
        100.0 * total.missed_alarm_rate(),
        results.len(),
        total.rows(),
        total.f1(),
        total.false_alarm_rate(),
        total.missed_alarm_rate()
    )
}

/// One CWRU record judged against its rate's commissioning.
#[derive(Debug, Clone)]
pub struct CwruResult {
    pub file: String,
    pub sample_rate_hz: f64,
    /// `normal (unseen half)` or the record's fault.
    pub label: String,
    pub windows: u64,
    pub flagged: u64,
    /// Seconds into the record of the first flagged window.
    pub first_flag_s: Option<f64>,
}

impl CwruResult {
    pub fn is_fault(&self) -> bool {
        !self.label.starts_with("normal")
    }
}

/// Runs the CWRU protocol with a bearing-v1 model over the records present
/// in `data` (records listed in its metadata but absent are kept back).
pub fn cwru(data: &Path, model: &AnomalyModel) -> Result<Vec<CwruResult>> {
    use crate::features::{AssetAnalysis, BEARING_V1, BearingGeometry};
    use crate::replay::{ReplayRequest, replay};
    use crate::source::{RawReplayConfig, SourceConfig};

    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("cwru_subset.json")).context("reading cwru_subset.json")?,
    )
    .context("parsing cwru_subset.json")?;
    let files = meta["files"]
        .as_array()
        .context("no `files` in cwru_subset.json")?;
    let work = std::env::temp_dir().join(format!("edge-agent-cwru-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = (|| {
        let mut results = Vec::new();
        for rate in [48_000.0, 12_000.0] {
            let at_rate: Vec<&serde_json::Value> = files
                .iter()
                .filter(|f| f["sample_rate_hz"].as_f64() == Some(rate))
                .filter(|f| data.join(f["file"].as_str().unwrap_or_default()).is_file())
                .collect();
            let normal = at_rate
                .iter()
                .find(|f| f["label"] == "normal")
                .with_context(|| format!("no healthy record at {rate} Hz"))?;
            let analysis = |f: &serde_json::Value| AssetAnalysis {
                shaft_hz: f["rpm_recorded"].as_f64().unwrap_or(1796.0) / 60.0,
                bearing: BearingGeometry::SKF_6205,
                // Where the rig's bearing rings (SOURCE.md: 2-5 kHz).
                envelope_band_hz: Some((2_000.0, 5_000.0)),
                ..AssetAnalysis::default()
            };
            let run = |path: &Path, f: &serde_json::Value, commission: u32, store: &Path| {
                let request = ReplayRequest {
                    profile: &BEARING_V1,
                    model: model.clone(),
                    source: SourceConfig::F32le(RawReplayConfig {
                        path: path.to_owned(),
                        sample_rate_hz: rate,
                        channels: 1,
                        channel: 0,
                        scale: 1.0,
                        temperature_c: 40.0,
                        speed: 0.0,
                    }),
                    commission_rows: commission,
                    start_us: 0,
                    data_dir: Some(store.to_owned()),
                    asset_id: "cwru-de".into(),
                    analysis: analysis(f),
                    detector: DetectorConfig::default(),
                };
                replay(request, &mut std::io::sink())
            };
            // Halve the healthy record: commission on the first half.
            let name = normal["file"].as_str().unwrap_or_default();
            let bytes = std::fs::read(data.join(name))?;
            let half = bytes.len() / 8 * 4;
            let (first, second) = (work.join("first.f32"), work.join("second.f32"));
            std::fs::write(&first, &bytes[..half])?;
            std::fs::write(&second, &bytes[half..])?;
            let (len, hop) = BEARING_V1.window_samples(rate);
            let windows = ((half / 4).saturating_sub(len) / hop + 1) as u32;
            let store = work.join(format!("store-{rate}"));
            let commissioned = run(&first, normal, windows, &store)?;
            anyhow::ensure!(
                commissioned.commissioning.is_some(),
                "{name}: the first half did not complete a baseline of {windows} windows ({} refused)",
                commissioned.refused
            );
            let judge = |label: String, file: &str, path: &Path, f: &serde_json::Value| {
                let s = run(path, f, 0, &store)?;
                anyhow::Ok(CwruResult {
                    file: file.to_owned(),
                    sample_rate_hz: rate,
                    label,
                    windows: s.rows_written,
                    flagged: s.anomaly_rows,
                    first_flag_s: s.first_anomaly_us.map(|us| us as f64 / 1e6),
                })
            };
            results.push(judge("normal (unseen half)".into(), name, &second, normal)?);
            for f in at_rate.iter().filter(|f| f["label"] != "normal") {
                let file = f["file"].as_str().unwrap_or_default();
                let label = format!(
                    "{} {}\"",
                    f["fault_location"].as_str().unwrap_or("fault"),
                    f["fault_diameter_in"].as_f64().unwrap_or(0.0)
                );
                results.push(judge(label, file, &data.join(file), f)?);
            }
        }
        Ok(results)
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// The CWRU results as printed, ending with one comparable line.
pub fn cwru_report(results: &[CwruResult], model: &AnomalyModel) -> String {
    let mut text = format!(
        "CWRU drive-end bearing, model {}: commissioned on the first half of the healthy record at each rate\n\
         | record | rate | condition | windows | flagged | first flag |\n\
         | --- | --- | --- | --- | --- | --- |\n",
        model.label()
    );
    for r in results {
        text += &format!(
            "| {} | {} kHz | {} | {} | {} | {} |\n",
            r.file,
            r.sample_rate_hz / 1000.0,
            r.label,
            r.windows,
            r.flagged,
            r.first_flag_s
                .map_or("none".into(), |s| format!("{s:.2} s"))
        );
    }
    let faults: Vec<&CwruResult> = results.iter().filter(|r| r.is_fault()).collect();
    let alarmed = faults.iter().filter(|r| r.flagged > 0).count();
    let healthy_flagged: u64 = results
        .iter()
        .filter(|r| !r.is_fault())
        .map(|r| r.flagged)
        .sum();
    let healthy_windows: u64 = results
        .iter()
        .filter(|r| !r.is_fault())
        .map(|r| r.windows)
        .sum();
    text += &format!(
        "cwru: faults_flagged={alarmed}/{} healthy_windows_flagged={healthy_flagged}/{healthy_windows}\n",
        faults.len()
    );
    text
}

fn collect_csv(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_csv(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "csv") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rates_follow_their_definitions() {
        let mut c = Confusion::default();
        for (p, a, n) in [
            (true, true, 6),
            (true, false, 1),
            (false, false, 9),
            (false, true, 4),
        ] {
            for _ in 0..n {
                c.add(p, a);
            }
        }
        // Precision 6/7, recall 6/10: F1 = 12 / (12 + 1 + 4).
        assert!((c.f1() - 12.0 / 17.0).abs() < 1e-12);
        assert!((c.false_alarm_rate() - 0.1).abs() < 1e-12);
        assert!((c.missed_alarm_rate() - 0.4).abs() < 1e-12);
        assert_eq!(c.rows(), 20);
        assert_eq!(Confusion::default().f1(), 0.0);
    }
}
