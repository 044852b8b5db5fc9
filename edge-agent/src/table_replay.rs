//! Replay of a table of process readings: one row, one verdict.
//!
//! The same steps as a window's in [`crate::pipeline`], on rows: the
//! profile's features, then the same [`Judge`] (the asset's commissioning
//! on its first `commission_rows` good rows, the model, the detector). Written as
//! `datetime,score,anomaly` for every row after the commissioning part,
//! with the row's own time text; a row the feature code refuses (a cell
//! that is not a number) or the model cannot score has an empty score and
//! anomaly 0, and is counted.

use std::io::Write;

use anyhow::{Result, bail};
use protocol::DetectorState;

use crate::commissioning::{Commissioning, CommissioningStore};
use crate::detector::DetectorConfig;
use crate::features::process::{ProcessExtractor, ProcessProfile};
use crate::judge::{Judge, Judgement};
use crate::model::AnomalyModel;
use crate::replay::ReplaySummary;
use crate::table::TableRow;

/// What to replay the rows with.
pub struct TableReplayRequest<'a> {
    pub profile: &'static ProcessProfile,
    pub model: &'a AnomalyModel,
    /// Rows that commission the asset (0: resume from `store`, else the
    /// model's own thresholds).
    pub commission_rows: u32,
    pub store: Option<CommissioningStore>,
    pub asset_id: &'a str,
    pub detector: DetectorConfig,
}

/// Replays `rows`, writing the output lines to `out`; also returns each
/// row's verdict (`None` for the commissioning part).
pub fn replay_table(
    request: TableReplayRequest<'_>,
    rows: &[TableRow],
    out: &mut impl Write,
) -> Result<(ReplaySummary, Vec<Option<bool>>)> {
    let TableReplayRequest {
        profile,
        model,
        commission_rows,
        store,
        asset_id,
        detector,
    } = request;
    let m = model.manifest();
    if m.feature_profile != profile.name || m.features != profile.feature_names() {
        bail!(
            "model {} expects profile {} with features {:?}; this replay computes {} ({:?})",
            model.label(),
            m.feature_profile,
            m.features,
            profile.name,
            profile.feature_names()
        );
    }
    let mut judge = Judge::new(asset_id, profile.name, model.clone(), detector)
        .for_replay(commission_rows, store)?;
    let mut extractor = ProcessExtractor::new(profile);
    let mut summary = ReplaySummary::default();
    let mut verdicts = Vec::with_capacity(rows.len());
    writeln!(out, "datetime,score,anomaly")?;
    for row in rows {
        summary.windows += 1;
        let in_baseline = matches!(judge.commissioning(), Some(Commissioning::Baseline { .. }));
        let score = match extractor.push(&row.values) {
            Err(_) => {
                summary.refused += 1;
                None
            }
            Ok(features) => match judge.judge(&features, crate::source::now_us() / 1000) {
                Judgement::Baseline(failed) => {
                    if let Some(e) = failed {
                        eprintln!("replay: {e}; the baseline starts over");
                    }
                    if let Some(e) = judge.take_unsaved() {
                        bail!("storing the commissioning: {e}");
                    }
                    None
                }
                Judgement::Scored(s, _) => Some(s.score),
                Judgement::ModelFailed(..) => {
                    summary.model_failures += 1;
                    None
                }
            },
        };
        if in_baseline {
            // Refused rows in the baseline lengthen it; none is judged.
            verdicts.push(None);
            summary.baseline_windows += 1;
            continue;
        }
        let anomaly = score.is_some()
            && matches!(judge.state(), DetectorState::Warning | DetectorState::Alarm);
        write!(out, "{},", row.datetime)?;
        if let Some(s) = score {
            write!(out, "{s}")?;
        }
        writeln!(out, ",{}", u8::from(anomaly))?;
        verdicts.push(Some(anomaly));
        summary.rows_written += 1;
        summary.anomaly_rows += u64::from(anomaly);
    }
    out.flush()?;
    summary.commissioning = judge
        .commissioning()
        .and_then(Commissioning::record)
        .cloned();
    Ok((summary, verdicts))
}
