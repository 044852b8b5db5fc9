//! `edge-agent replay`: a recording through the whole pipeline, row by row.
//!
//! Evaluation must run what the field runs. Replay reads a recording as
//! fast as possible through the same windowing, sensor checks, features,
//! commissioning, model and detector as `edge-agent run`, and writes one
//! CSV line per window after the commissioning part:
//! `datetime,score,anomaly` (anomaly 1 while the detector is in `warning` or
//! `alarm`; a window the sensor checks refused, or the model could not
//! score, has an empty score and anomaly 0). The first `commission_rows`
//! windows that pass the sensor checks commission the asset, whatever the
//! model ships with; with a data folder, what they taught is stored, and a
//! later replay with no commissioning rows resumes from it (commission on a
//! healthy recording, then replay the faulty ones). Several recordings of
//! one asset (segments, each with its own start time) replay one after the
//! other as its history: windows never span two of them.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};
use protocol::DetectorState;

use crate::commissioning::CommissioningRecord;
use crate::detector::DetectorConfig;
use crate::features::{AssetAnalysis, FeatureProfile};
use crate::model::AnomalyModel;
use crate::pipeline::{AssetIdentity, AssetPipeline, AssetSetup, Outcome};
use crate::sensor_health::SensorHealthConfig;
use crate::source::{SourceConfig, SourcePoll};
use crate::window::{Window, Windower};

/// One recording of the asset and the time of its first sample.
#[derive(Debug, Clone)]
pub struct ReplaySegment {
    pub source: SourceConfig,
    pub start_us: u64,
}

/// What to replay.
pub struct ReplayRequest {
    pub profile: &'static FeatureProfile,
    pub model: AnomalyModel,
    /// The recordings, in time order (at one sample rate).
    pub segments: Vec<ReplaySegment>,
    /// Windows that commission the asset (0: none; resume from `data_dir`
    /// if it holds a record, else the model's own thresholds, which a model
    /// judging standardised features does not have: refused).
    pub commission_rows: u32,
    /// Where commissioning is kept between replays.
    pub data_dir: Option<PathBuf>,
    pub asset_id: String,
    pub analysis: AssetAnalysis,
    pub detector: DetectorConfig,
    /// The recording's sensors (range, believable steps).
    pub sensor_health: SensorHealthConfig,
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReplaySummary {
    pub windows: u64,
    pub baseline_windows: u64,
    pub rows_written: u64,
    pub anomaly_rows: u64,
    pub refused: u64,
    pub model_failures: u64,
    pub gaps: u64,
    /// Start of the first window flagged anomalous, microseconds.
    pub first_anomaly_us: Option<u64>,
    /// The commissioning the rows were judged with, if any.
    pub commissioning: Option<CommissioningRecord>,
}

impl ReplaySummary {
    /// One line for the operator: what was written and how it was judged.
    pub fn describe(&self, output: &std::path::Path) -> String {
        let judged_with = match &self.commissioning {
            Some(c) => format!(
                "commissioning on {} windows (warning {:.4}, alarm {:.4})",
                c.windows, c.threshold, c.alarm_threshold
            ),
            None => "the model's own thresholds".into(),
        };
        format!(
            "wrote {} rows to {} ({} anomalous) after {} baseline windows, judged with {judged_with}; {} windows refused by sensor checks, {} model failures, {} gaps",
            self.rows_written,
            output.display(),
            self.anomaly_rows,
            self.baseline_windows,
            self.refused,
            self.model_failures,
            self.gaps
        )
    }
}

/// One judged window, as an evaluation sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayRow {
    pub start_us: u64,
    /// `None`: refused by the sensor checks or not scored by the model.
    pub score: Option<f64>,
    /// The detector's state after the window.
    pub state: DetectorState,
}

/// Replays `request`'s segments and writes the rows to `out`.
pub fn replay(request: ReplayRequest, out: &mut impl Write) -> Result<ReplaySummary> {
    replay_rows(request, out, |_| {})
}

/// [`replay`], also handing every written row to `on_row`.
pub fn replay_rows(
    request: ReplayRequest,
    out: &mut impl Write,
    mut on_row: impl FnMut(&ReplayRow),
) -> Result<ReplaySummary> {
    let kind = request.profile.asset_kind;
    let open = |segment: &ReplaySegment| {
        segment
            .source
            .open(kind, segment.start_us, &request.analysis)
            .context("opening the recording")
    };
    let first = request
        .segments
        .first()
        .context("nothing to replay: no recording given")?;
    // The first recording, opened once: it sets the asset's rate.
    let mut opened_first = Some(open(first)?);
    let rate = opened_first.as_ref().map_or(0.0, |s| s.sample_rate_hz());
    let setup = AssetSetup {
        identity: AssetIdentity {
            site: "replay".into(),
            gateway: "replay".into(),
            asset_id: request.asset_id.clone(),
            kind,
            vibration_channel: "vibration".into(),
            temperature_channel: "temperature".into(),
        },
        detector: request.detector.clone(),
        sensor_health: request.sensor_health.clone(),
        analysis: request.analysis.clone(),
    };
    let pipeline = AssetPipeline::new(setup, request.model.clone(), rate)?;
    let store = match &request.data_dir {
        Some(dir) => Some(crate::agent::open_store_at(dir)?),
        None => None,
    };
    let mut pipeline = pipeline.for_replay(request.commission_rows, store)?;
    let (len, hop) = request.profile.window_samples(rate);
    let mut summary = ReplaySummary::default();
    writeln!(out, "datetime,score,anomaly")?;
    for (i, segment) in request.segments.iter().enumerate() {
        let mut source = match opened_first.take() {
            Some(source) => source,
            None => open(segment).with_context(|| format!("recording {}", i + 1))?,
        };
        anyhow::ensure!(
            source.sample_rate_hz() == rate,
            "recording {} is sampled at {} Hz, the first at {rate} Hz: one asset, one rate",
            i + 1,
            source.sample_rate_hz()
        );
        let mut windower = Windower::new(len, hop, rate);
        loop {
            let block = match source.poll()? {
                SourcePoll::Block(b) => b,
                SourcePoll::Idle => continue,
                SourcePoll::End => break,
            };
            for window in windower.push(block) {
                judge(&mut pipeline, &window, &mut summary, out, &mut on_row)?;
            }
        }
        summary.gaps += windower.gaps();
    }
    out.flush()?;
    summary.commissioning = pipeline.commissioning().and_then(|c| c.record()).cloned();
    Ok(summary)
}

/// One window through the pipeline, counted, and written if judged.
fn judge(
    pipeline: &mut AssetPipeline,
    window: &Window,
    summary: &mut ReplaySummary,
    out: &mut impl Write,
    on_row: &mut impl FnMut(&ReplayRow),
) -> Result<()> {
    summary.windows += 1;
    let (outcome, _event) = pipeline.process(window);
    let score = match outcome {
        Outcome::Baseline(failed) => {
            summary.baseline_windows += 1;
            if let Some(e) = failed {
                eprintln!("replay: {e}; the baseline starts over");
            }
            if let Some(e) = pipeline.take_unsaved_commissioning() {
                anyhow::bail!("storing the commissioning: {e}");
            }
            return Ok(());
        }
        Outcome::Scored(s) => Some(s.score),
        Outcome::Refused(_) => {
            summary.refused += 1;
            None
        }
        Outcome::ModelFailed(_) => {
            summary.model_failures += 1;
            None
        }
    };
    let anomaly = matches!(
        pipeline.state(),
        DetectorState::Warning | DetectorState::Alarm
    ) && score.is_some();
    let at = UNIX_EPOCH + Duration::from_micros(window.start_us);
    write!(out, "{},", humantime::format_rfc3339_millis(at))?;
    if let Some(s) = score {
        write!(out, "{s}")?;
    }
    writeln!(out, ",{}", u8::from(anomaly))?;
    summary.rows_written += 1;
    summary.anomaly_rows += u64::from(anomaly);
    if anomaly && summary.first_anomaly_us.is_none() {
        summary.first_anomaly_us = Some(window.start_us);
    }
    on_row(&ReplayRow {
        start_us: window.start_us,
        score,
        state: pipeline.state(),
    });
    Ok(())
}
