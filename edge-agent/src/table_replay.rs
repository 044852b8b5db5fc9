//! Replay of a table of process readings: one row, one verdict.
//!
//! The same steps as a window's in [`crate::pipeline`], on rows: the
//! profile's features, the asset's commissioning (its first
//! `commission_rows` good rows), the model, the detector. Written as
//! `datetime,score,anomaly` for every row after the commissioning part,
//! with the row's own time text; a row the feature code refuses (a cell
//! that is not a number) or the model cannot score has an empty score and
//! anomaly 0, and is counted.

use std::io::Write;

use anyhow::{Context, Result, bail};
use protocol::DetectorState;

use crate::commissioning::{Commissioning, CommissioningSpec, CommissioningStore};
use crate::detector::{Detector, DetectorConfig};
use crate::features::process::{ProcessExtractor, ProcessProfile};
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
    let mut detector = Detector::new(detector, m.threshold, m.alarm_threshold);
    let mut commissioning = None;
    if commission_rows > 0 {
        let spec = CommissioningSpec::for_baseline(m.commissioning.as_ref(), commission_rows);
        spec.validate()
            .map_err(|e| anyhow::anyhow!("--commission-rows: {e}"))?;
        if let Some(store) = &store {
            store.forget(asset_id)?;
        }
        commissioning = Some(Commissioning::start(spec, &m.features));
    } else if let Some(store) = &store
        && let Some(record) = store.load(asset_id)?
        && record.model == model.model_ref()
        && record.feature_profile == profile.name
    {
        detector.set_thresholds(record.threshold, record.alarm_threshold);
        commissioning = Some(Commissioning::Done(Box::new(record)));
    }
    let mut extractor = ProcessExtractor::new(profile);
    let mut summary = ReplaySummary::default();
    let mut verdicts = Vec::with_capacity(rows.len());
    writeln!(out, "datetime,score,anomaly")?;
    for row in rows {
        summary.windows += 1;
        let features = extractor.push(&row.values);
        if let Some(c @ Commissioning::Baseline { .. }) = &mut commissioning {
            verdicts.push(None);
            summary.baseline_windows += 1;
            let Ok(features) = features else {
                summary.refused += 1;
                continue;
            };
            if c.collect(&features) {
                let identity = (asset_id, model.model_ref(), profile.name);
                let now_ms = crate::source::now_us() / 1000;
                let learned = c.finish(identity, now_ms, |x| {
                    model.score(x).map(|s| s.score).map_err(|e| e.to_string())
                });
                match learned {
                    Ok(record) => {
                        detector.set_thresholds(record.threshold, record.alarm_threshold);
                        if let Some(store) = &store {
                            store.save(record).context("storing the commissioning")?;
                        }
                    }
                    Err(e) => eprintln!("replay: {e}; the baseline starts over"),
                }
            }
            continue;
        }
        let scaling = commissioning
            .as_ref()
            .and_then(Commissioning::record)
            .and_then(|r| r.scaling.as_ref());
        let score = match features {
            Err(_) => {
                summary.refused += 1;
                None
            }
            Ok(f) => {
                let input = match scaling {
                    Some(s) => s.apply(&f),
                    None => f,
                };
                match model.score(&input) {
                    Ok(s) => {
                        detector.observe_score(s.score);
                        Some(s.score)
                    }
                    Err(_) => {
                        summary.model_failures += 1;
                        detector.observe_model_fault();
                        None
                    }
                }
            }
        };
        let anomaly = score.is_some()
            && matches!(
                detector.state(),
                DetectorState::Warning | DetectorState::Alarm
            );
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
    summary.commissioning = commissioning
        .as_ref()
        .and_then(Commissioning::record)
        .cloned();
    Ok((summary, verdicts))
}
