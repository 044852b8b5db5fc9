//! SKAB, outlier detection (see `../shared/data/skab/SOURCE.md`): in every
//! anomalous file the first 400 rows commission the asset and the rest are
//! judged; F1, false alarm rate and missed alarm rate are computed over all
//! judged rows of all files together.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Confusion;
use crate::detector::DetectorConfig;
use crate::features::process::ProcessProfile;
use crate::model::AnomalyModel;
use crate::table::{TableFormat, read_table};
use crate::table_replay::{TableReplayRequest, replay_table};

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
    let feature_profile = &model.manifest().feature_profile;
    let profile = ProcessProfile::by_name(feature_profile).with_context(|| {
        format!(
            "model {} reads feature profile {feature_profile}, not a process profile: SKAB is a table of process readings",
            model.label()
        )
    })?;
    let mut results = Vec::new();
    for path in files {
        let rows = read_table(&path, &TableFormat::Skab, profile)?;
        let request = TableReplayRequest {
            profile,
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
