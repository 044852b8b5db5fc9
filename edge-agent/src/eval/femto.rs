//! FEMTO-ST PRONOSTIA (see `../shared/data/femto-pronostia/SOURCE.md`): a
//! bearing run from new to failure. The raw data here is Bearing1_1
//! (1800 rpm, 4000 N): 160 of its 2803 snapshots of 0.1 s at 25.6 kHz (every
//! 20th, then the last 20), horizontal and vertical. Each snapshot is one
//! bearing-v1 window, replayed at its own time (10 s x its index), with the
//! bearing's measured temperature at that time.
//!
//! Each axis is one asset: its first `commission_snapshots` snapshots
//! commission it, every later one is judged. There are no labels (the
//! bearing degrades until the end of its record), so the benchmark asks for
//! three figures: that the health index (the hub's formula,
//! [`protocol::health_index`]) trends down over life, how long before the
//! end of life the first warning and the first alarm come, and that nothing
//! is raised in the first half of life.

use std::path::Path;

use anyhow::{Context, Result};
use protocol::{DetectorState, health_index};

use crate::detector::DetectorConfig;
use crate::features::{AssetAnalysis, BEARING_V1};
use crate::model::AnomalyModel;
use crate::replay::{ReplayRequest, ReplayRow, replay_rows};
use crate::sensor_health::SensorHealthConfig;

const SAMPLE_RATE_HZ: f64 = 25_600.0;
const SNAPSHOT_SAMPLES: usize = 2560;
const SNAPSHOT_PERIOD_S: f64 = 10.0;
/// Operating condition 1.
const SHAFT_RPM: f64 = 1800.0;

/// One axis of the bearing, judged over its life.
#[derive(Debug, Clone)]
pub struct FemtoResult {
    pub axis: &'static str,
    /// Snapshot times of the judged windows, seconds from the first.
    pub times_s: Vec<f64>,
    /// Health index after each judged window (`None`: the sensor checks
    /// refused it or the model could not score it).
    pub health: Vec<Option<f64>>,
    pub states: Vec<DetectorState>,
    /// Time of the last snapshot (the end of life).
    pub end_of_life_s: f64,
    /// When the commissioning completed (its last window's end).
    pub commissioned_at_s: f64,
    pub refused: u64,
}

impl FemtoResult {
    fn first(&self, wanted: &[DetectorState]) -> Option<f64> {
        self.times_s
            .iter()
            .zip(&self.states)
            .find(|(_, s)| wanted.contains(s))
            .map(|(t, _)| *t)
    }

    /// First window in `warning` or `alarm`, seconds from the start.
    pub fn first_warning_s(&self) -> Option<f64> {
        self.first(&[DetectorState::Warning, DetectorState::Alarm])
    }

    pub fn first_alarm_s(&self) -> Option<f64> {
        self.first(&[DetectorState::Alarm])
    }

    /// Windows raised (warning or alarm) in the first half of life.
    pub fn raised_in_first_half(&self) -> usize {
        self.times_s
            .iter()
            .zip(&self.states)
            .filter(|(t, s)| {
                **t < self.end_of_life_s / 2.0
                    && matches!(s, DetectorState::Warning | DetectorState::Alarm)
            })
            .count()
    }

    /// Spearman's rank correlation of the health index with time (-1: it
    /// only ever falls).
    pub fn health_trend(&self) -> f64 {
        let (t, h): (Vec<f64>, Vec<f64>) = self
            .times_s
            .iter()
            .zip(&self.health)
            .filter_map(|(t, h)| Some((*t, (*h)?)))
            .unzip();
        spearman(&t, &h)
    }

    /// Mean health index in each quarter of the whole life (the first
    /// holds the commissioning, so fewer judged windows).
    pub fn health_by_quarter(&self) -> [Option<f64>; 4] {
        let mut sums = [(0.0, 0u32); 4];
        for (t, h) in self.times_s.iter().zip(&self.health) {
            if let Some(h) = h {
                let q = ((t / self.end_of_life_s) * 4.0).floor().clamp(0.0, 3.0) as usize;
                sums[q].0 += h;
                sums[q].1 += 1;
            }
        }
        sums.map(|(s, n)| (n > 0).then(|| s / f64::from(n)))
    }
}

/// Runs the protocol on both axes of Bearing1_1.
pub fn femto(
    data: &Path,
    model: &AnomalyModel,
    commission_snapshots: u32,
) -> Result<Vec<FemtoResult>> {
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("femto_subset.json")).context("reading femto_subset.json")?,
    )
    .context("parsing femto_subset.json")?;
    let indices: Vec<u64> = meta["bearing1_1"]["raw_snapshot_indices"]
        .as_array()
        .context("no bearing1_1.raw_snapshot_indices in femto_subset.json")?
        .iter()
        .map(|v| v.as_u64().context("a snapshot index is not a number"))
        .collect::<Result<_>>()?;
    let raw = std::fs::read(data.join("Bearing1_1_acc_subset.bin"))
        .context("reading Bearing1_1_acc_subset.bin")?;
    let snapshot_bytes = SNAPSHOT_SAMPLES * 2 * 4;
    anyhow::ensure!(
        raw.len() == indices.len() * snapshot_bytes,
        "Bearing1_1_acc_subset.bin holds {} bytes, expected {} snapshots of {snapshot_bytes}",
        raw.len(),
        indices.len()
    );
    let temperatures = temperature_by_time(&data.join("femto_learning_temperature_per_file.csv"))?;
    let scratch = super::Scratch::new("femto")?;
    let mut segments = Vec::with_capacity(indices.len());
    for (k, index) in indices.iter().enumerate() {
        let path = scratch.0.join(format!("snapshot-{index:05}.f32"));
        std::fs::write(&path, &raw[k * snapshot_bytes..(k + 1) * snapshot_bytes])?;
        let t = *index as f64 * SNAPSHOT_PERIOD_S;
        segments.push((path, t, temperature_at(&temperatures, t)));
    }
    let end_of_life_s = segments.last().map_or(0.0, |s| s.1);
    let mut results = Vec::new();
    for (channel, axis) in [(0, "horizontal"), (1, "vertical")] {
        let request = ReplayRequest {
            profile: &BEARING_V1,
            model: model.clone(),
            segments: segments
                .iter()
                .map(|(path, t, temp)| {
                    super::f32le_segment(
                        path,
                        SAMPLE_RATE_HZ,
                        (2, channel),
                        *temp,
                        (t * 1e6) as u64,
                    )
                })
                .collect(),
            commission_rows: commission_snapshots,
            data_dir: None,
            asset_id: format!("femto-bearing1_1-{axis}"),
            analysis: AssetAnalysis {
                shaft_hz: SHAFT_RPM / 60.0,
                ..AssetAnalysis::default()
            },
            detector: DetectorConfig::default(),
            sensor_health: rig_sensors(),
        };
        let mut rows: Vec<ReplayRow> = Vec::new();
        let summary = replay_rows(request, &mut std::io::sink(), |r| rows.push(*r))?;
        let record = summary.commissioning.with_context(|| {
            format!(
                "{axis}: the first {commission_snapshots} snapshots did not commission the bearing ({} refused)",
                summary.refused
            )
        })?;
        results.push(FemtoResult {
            axis,
            times_s: rows.iter().map(|r| r.start_us as f64 / 1e6).collect(),
            health: rows
                .iter()
                .map(|r| health_index(r.state, r.score, record.threshold, record.alarm_threshold))
                .collect(),
            states: rows.iter().map(|r| r.state).collect(),
            end_of_life_s,
            // Replay stamps a commissioning with its last window's end.
            commissioned_at_s: record.completed_at_ms as f64 / 1000.0,
            refused: summary.refused,
        });
    }
    Ok(results)
}

/// The rig's sensors, not the gateway's defaults: the accelerometers read
/// +/-50 g (the test stops at 20 g, and impacts near the end reach 48 g),
/// the bearing's temperature probe is an RTD that passes 150 C near the end,
/// and successive snapshots here are up to 200 s apart, over which the
/// bearing warms by more than the default 5 C step.
fn rig_sensors() -> SensorHealthConfig {
    SensorHealthConfig {
        accel_range_g: 50.0,
        temperature_range_c: (-50.0, 250.0),
        max_temperature_step_c: 20.0,
        ..SensorHealthConfig::default()
    }
}

/// `(start s, mean C)` of each one-minute temperature file of Bearing1_1.
fn temperature_by_time(csv: &Path) -> Result<Vec<(f64, f64)>> {
    let text =
        std::fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.first() != Some(&"Bearing1_1") {
            continue;
        }
        let number = |i: usize| -> Result<f64> {
            cells.get(i).and_then(|c| c.parse().ok()).with_context(|| {
                format!(
                    "{} line {}: column {i} is not a number",
                    csv.display(),
                    n + 1
                )
            })
        };
        out.push((number(2)?, number(3)?));
    }
    anyhow::ensure!(!out.is_empty(), "{}: no Bearing1_1 rows", csv.display());
    Ok(out)
}

/// The latest file's mean at `t` (the first file's before it starts).
fn temperature_at(files: &[(f64, f64)], t: f64) -> f64 {
    files
        .iter()
        .take_while(|(start, _)| *start <= t)
        .last()
        .unwrap_or(&files[0])
        .1
}

/// Spearman's rank correlation (ties get their mean rank); NaN with fewer
/// than two points or no spread.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let (rx, ry) = (ranks(x), ranks(y));
    let n = rx.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    sxy / (sxx * syy).sqrt()
}

fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut out = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = mean_rank;
        }
        i = j + 1;
    }
    out
}

/// The results as printed, ending with one comparable line per axis.
pub fn femto_report(results: &[FemtoResult], model: &AnomalyModel) -> String {
    let hours = |s: f64| s / 3600.0;
    let before_end = |r: &FemtoResult, t: Option<f64>| {
        t.map_or("none".into(), |t| {
            format!("{:.2} h before the end", hours(r.end_of_life_s - t))
        })
    };
    let mut text = format!(
        "FEMTO PRONOSTIA Bearing1_1 (1800 rpm, 4000 N), model {}: 160 snapshots over {:.2} h of life\n\
         | axis | commissioned until | health by quarter of life | trend (Spearman) | first warning | first alarm | raised in first half |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
        model.label(),
        results.first().map_or(0.0, |r| hours(r.end_of_life_s))
    );
    for r in results {
        let quarters: Vec<String> = r
            .health_by_quarter()
            .iter()
            .map(|q| q.map_or("-".into(), |h| format!("{h:.0}")))
            .collect();
        text += &format!(
            "| {} | {:.2} h | {} | {:.2} | {} | {} | {} |\n",
            r.axis,
            hours(r.commissioned_at_s),
            quarters.join(" / "),
            r.health_trend(),
            before_end(r, r.first_warning_s()),
            before_end(r, r.first_alarm_s()),
            r.raised_in_first_half()
        );
    }
    for r in results {
        let lead = |t: Option<f64>| t.map_or(-1.0, |t| hours(r.end_of_life_s - t));
        text += &format!(
            "femto: axis={} trend={:.3} warning_lead_h={:.2} alarm_lead_h={:.2} raised_first_half={} refused={}\n",
            r.axis,
            r.health_trend(),
            lead(r.first_warning_s()),
            lead(r.first_alarm_s()),
            r.raised_in_first_half(),
            r.refused
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_reads_monotone_trends_and_ties() {
        let t = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((spearman(&t, &[9.0, 7.0, 7.0, 3.0, 1.0]) + 1.0).abs() < 0.03);
        assert_eq!(spearman(&t, &[1.0, 4.0, 9.0, 16.0, 25.0]), 1.0);
        assert_eq!(ranks(&[3.0, 1.0, 3.0]), vec![2.5, 1.0, 2.5]);
        assert!(spearman(&[1.0], &[1.0]).is_nan());
    }

    #[test]
    fn temperature_follows_the_latest_file() {
        let files = [(68.0, 73.0), (128.0, 78.0)];
        assert_eq!(temperature_at(&files, 0.0), 73.0);
        assert_eq!(temperature_at(&files, 100.0), 73.0);
        assert_eq!(temperature_at(&files, 128.0), 78.0);
    }
}
