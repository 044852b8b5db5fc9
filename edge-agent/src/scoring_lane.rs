//! The scoring lane of one asset, and how its pipeline is (re)built.
//!
//! Part of [`crate::agent`]: the lane takes windows from the acquisition
//! lane, scores them, and passes events on; between two windows it carries
//! out what the model manager left in the asset's slot (a shadow model to
//! run beside, a model to swap in), rebuilding the pipeline from its recipe.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{EventSink, LaneMsg};
use crate::commissioning::CommissioningStore;
use crate::model::{AnomalyModel, ModelError};
use crate::model_slot::ModelSlot;
use crate::pipeline::{AssetPipeline, AssetSetup, Outcome};
use crate::source::now_us;
use crate::telemetry::{AssetBoard, Counters};
use crate::window::Window;

/// How an asset's pipeline is built for a model: at start, and again when
/// the model manager swaps a model in or out.
#[derive(Clone)]
pub(super) struct PipelineRecipe {
    pub(super) setup: AssetSetup,
    pub(super) rate: f64,
    pub(super) commissioning: Option<crate::config::AssetCommissioning>,
    pub(super) store: Option<CommissioningStore>,
}

impl PipelineRecipe {
    pub(super) fn build(&self, model: AnomalyModel) -> Result<AssetPipeline, ModelError> {
        let spec = self
            .commissioning
            .as_ref()
            .map(|c| c.spec(model.manifest().commissioning.as_ref()));
        let mut pipeline = AssetPipeline::new(self.setup.clone(), model, self.rate)?;
        if let Some(spec) = spec {
            pipeline = pipeline.with_commissioning_spec(spec);
        }
        if let Some(store) = &self.store {
            pipeline = pipeline.with_commissioning_store(store.clone());
        }
        Ok(pipeline)
    }

    /// Builds the pipeline for `model`; with `keep_commissioning`, what
    /// the asset's commissioning learned carries over to it.
    fn rebuild(
        &self,
        model: AnomalyModel,
        keep_commissioning: bool,
    ) -> Result<AssetPipeline, ModelError> {
        let asset = &self.setup.identity.asset_id;
        if keep_commissioning && let Some(store) = &self.store {
            match store.load(asset) {
                Ok(Some(mut record)) => {
                    record.model = model.model_ref();
                    if let Err(e) = store.save(&record) {
                        tracing::warn!(%asset, "commissioning not carried over to the new model: {e}");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%asset, "commissioning unreadable: {e}"),
            }
        }
        self.build(model)
    }
}

/// The scoring lane of one asset.
pub(super) struct ScoringLane {
    pub(super) index: usize,
    pub(super) recipe: PipelineRecipe,
    pub(super) slot: Arc<ModelSlot>,
    pub(super) outgoing: EventSink,
    pub(super) counters: Arc<Counters>,
    pub(super) board: Arc<AssetBoard>,
}

impl ScoringLane {
    /// Scores windows and passes events on; ends when acquisition has ended
    /// and every window handed over has been scored. Between two windows it
    /// carries out what the model manager asked (see [`crate::model_slot`]).
    pub(super) fn run(self, mut pipeline: AssetPipeline, mut lane: mpsc::Receiver<LaneMsg>) {
        let asset = pipeline.identity().asset_id.clone();
        while let Some(msg) = lane.blocking_recv() {
            if let Some((model, keep)) = self.slot.take_swap() {
                let label = model.label();
                match self.recipe.rebuild(model, keep) {
                    Ok(p) => {
                        tracing::info!(%asset, model = %label, "model swapped in");
                        pipeline = p;
                    }
                    Err(e) => {
                        // Verified to fit before the swap; if it does not,
                        // probation sees the failure and swaps back.
                        tracing::error!(%asset, "model swap failed: {e}");
                        self.slot.probation_window(true, false);
                    }
                }
            }
            let event = match msg {
                LaneMsg::Silent(seconds) => {
                    tracing::warn!(%asset, "no data for {seconds:.1} s");
                    pipeline.silence(seconds, now_us())
                }
                LaneMsg::Window(window) => self.score(&mut pipeline, &window, &asset),
            };
            self.board.update(self.index, pipeline.status());
            if let Some(event) = event {
                self.counters.add_event_raised();
                tracing::info!(
                    %asset,
                    state = event.state.as_str(),
                    from = event.previous_state.as_str(),
                    score = event.score,
                    "detector event"
                );
                self.outgoing.deliver(event, &self.counters);
            }
        }
    }

    fn score(
        &self,
        pipeline: &mut AssetPipeline,
        window: &Window,
        asset: &str,
    ) -> Option<protocol::AnomalyEvent> {
        let (outcome, event) = pipeline.process(window);
        let counters = &self.counters;
        match &outcome {
            Outcome::Scored(scored) => {
                counters.add_window_scored();
                // Window by window: at or above the alarm level in force.
                let alarm = scored.score >= pipeline.status().alarm_threshold;
                if let Some(input) = pipeline.last_model_input() {
                    self.slot.shadow_window(&input, alarm);
                }
                self.slot.probation_window(!scored.score.is_finite(), alarm);
            }
            Outcome::Refused(fault) => {
                counters.add_window_rejected();
                tracing::debug!(%asset, "window {} refused: {}", window.seq, fault.reason);
            }
            Outcome::ModelFailed(reason) => {
                counters.add_model_failure();
                self.slot.probation_window(true, false);
                tracing::warn!(%asset, "window {} not scored: {reason}", window.seq);
            }
            Outcome::Baseline(_) => counters.add_window_baseline(),
        }
        event
    }
}
