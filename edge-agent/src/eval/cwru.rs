//! CWRU (see `../shared/data/cwru-bearing/SOURCE.md`), per sample rate: the
//! first half of the healthy record commissions the bearing, then its
//! unseen second half must raise nothing and every fault record must be
//! flagged. The 12 kHz faults are paired with the healthy record decimated
//! to 12 kHz, never with the 48 kHz one (the SOURCE's sample-rate note).

use std::path::Path;

use anyhow::{Context, Result};

use crate::detector::DetectorConfig;
use crate::model::AnomalyModel;

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

    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("cwru_subset.json")).context("reading cwru_subset.json")?,
    )
    .context("parsing cwru_subset.json")?;
    let files = meta["files"]
        .as_array()
        .context("no `files` in cwru_subset.json")?;
    let scratch = super::Scratch::new("cwru")?;
    let work = &scratch.0;
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
                segments: vec![super::f32le_segment(path, rate, (1, 0), 40.0, 0)],
                commission_rows: commission,
                data_dir: Some(store.to_owned()),
                asset_id: "cwru-de".into(),
                analysis: analysis(f),
                detector: DetectorConfig::default(),
                sensor_health: Default::default(),
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
