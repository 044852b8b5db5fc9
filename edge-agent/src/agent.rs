//! Wires the lanes of a gateway together and runs them until shutdown.
//!
//! ```text
//!  per asset:  acquisition thread --(bounded, try_send)--> scoring thread --+
//!                 source -> windower        drop+count      pipeline       |
//!                                            when full                      v
//!  heartbeat task ------------------------------------------------> outgoing channel -> link (MQTT)
//! ```
//!
//! Acquisition never waits for scoring: when the scoring lane falls behind a
//! live source, windows are dropped and counted (the heartbeat reports it).
//! Shutdown runs front to back: acquisition stops, scoring drains what it
//! holds, the heartbeat stops, and the link publishes what is queued, says
//! goodbye and disconnects.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use protocol::{AssetInfo, Birth, ChannelInfo, Heartbeat, Message, Quantity};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{AgentConfig, AssetConfig};
use crate::link::{self, LinkSettings};
use crate::model::{AnomalyModel, ModelError};
use crate::pipeline::{AssetIdentity, AssetPipeline, Outcome};
use crate::source::{Pacing, Source, SourceError, now_us};
use crate::telemetry::{AssetBoard, Counters};
use crate::window::{Window, Windower};

/// Windows buffered between acquisition and scoring of one asset.
const WINDOW_QUEUE: usize = 4;
/// Messages buffered between the lanes and the MQTT link.
const OUTGOING_QUEUE: usize = 1024;

/// Why the agent could not start.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("asset {asset}: {source}")]
    Source {
        asset: String,
        #[source]
        source: SourceError,
    },
}

/// An asset with its model loaded and its source opened: ready to run.
pub struct PreparedAsset {
    pub config: AssetConfig,
    model_ref: protocol::ModelRef,
    pipeline: AssetPipeline,
    source: Box<dyn Source>,
}

impl PreparedAsset {
    /// Opens the asset's source and checks the model against it.
    pub fn new(
        config: &AgentConfig,
        asset: &AssetConfig,
        model: AnomalyModel,
    ) -> Result<Self, AgentError> {
        let source =
            asset
                .source
                .open(asset.kind, now_us())
                .map_err(|source| AgentError::Source {
                    asset: asset.id.clone(),
                    source,
                })?;
        let identity = AssetIdentity {
            site: config.site.clone(),
            gateway: config.gateway.clone(),
            asset_id: asset.id.clone(),
            kind: asset.kind,
            vibration_channel: asset.vibration_channel.clone(),
            temperature_channel: asset.temperature_channel.clone(),
        };
        let model_ref = model.model_ref();
        let pipeline = AssetPipeline::new(
            identity,
            model,
            asset.detector.clone(),
            source.sample_rate_hz(),
        )?;
        Ok(PreparedAsset {
            config: asset.clone(),
            model_ref,
            pipeline,
            source,
        })
    }

    fn info(&self, model: protocol::ModelRef) -> AssetInfo {
        let rate = self.source.sample_rate_hz();
        AssetInfo {
            id: self.config.id.clone(),
            kind: self.config.kind,
            channels: vec![
                ChannelInfo {
                    id: self.config.vibration_channel.clone(),
                    quantity: Quantity::Acceleration,
                    unit: "g".into(),
                    sample_rate_hz: rate,
                },
                ChannelInfo {
                    id: self.config.temperature_channel.clone(),
                    quantity: Quantity::Temperature,
                    unit: "degC".into(),
                    sample_rate_hz: 1.0 / crate::source::BLOCK_SECONDS,
                },
            ],
            model,
        }
    }
}

/// Loads every asset's model from its configured folder and opens its source.
pub fn prepare(config: &AgentConfig) -> Result<Vec<PreparedAsset>, AgentError> {
    config
        .assets
        .iter()
        .map(|asset| {
            let model = AnomalyModel::load_dir(&asset.model)?;
            PreparedAsset::new(config, asset, model)
        })
        .collect()
}

/// Runs the agent until `shutdown` is cancelled or every (finite) source has
/// ended. Returns the final counters.
pub async fn run(
    config: AgentConfig,
    assets: Vec<PreparedAsset>,
    shutdown: CancellationToken,
) -> protocol::PipelineCounters {
    let counters = Arc::new(Counters::default());
    let board = Arc::new(AssetBoard::new(
        assets.iter().map(|a| a.pipeline.status()).collect(),
    ));
    let started_at_ms = now_us() / 1000;
    let birth = Birth {
        site: config.site.clone(),
        gateway: config.gateway.clone(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        started_at_ms,
        ts_ms: started_at_ms,
        assets: assets.iter().map(|a| a.info(a.model_ref.clone())).collect(),
    };
    let (out_tx, out_rx) = mpsc::channel(OUTGOING_QUEUE);
    let settings = LinkSettings {
        host: config.mqtt.host.clone(),
        port: config.mqtt.port,
        client_id: config.client_id(),
        keep_alive: Duration::from_secs(config.mqtt.keep_alive_s),
    };
    let link = tokio::spawn(link::run(
        settings,
        birth,
        out_rx,
        counters.clone(),
        shutdown.clone(),
    ));

    let mut threads = Vec::new();
    for (index, asset) in assets.into_iter().enumerate() {
        threads.extend(spawn_lanes(
            index,
            asset,
            out_tx.clone(),
            counters.clone(),
            board.clone(),
            shutdown.clone(),
        ));
    }

    let heartbeat_stop = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat_loop(
        config.clone(),
        started_at_ms,
        out_tx,
        counters.clone(),
        board,
        heartbeat_stop.clone(),
    ));

    // Lanes end when shutdown is requested or their source runs dry.
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
    heartbeat_stop.cancel();
    let _ = heartbeat.await;
    // All senders are gone now: the link drains, says goodbye and returns.
    let _ = link.await;
    counters.snapshot()
}

fn spawn_lanes(
    index: usize,
    asset: PreparedAsset,
    outgoing: mpsc::Sender<Message>,
    counters: Arc<Counters>,
    board: Arc<AssetBoard>,
    shutdown: CancellationToken,
) -> [JoinHandle<()>; 2] {
    let (tx, rx) = mpsc::channel::<Window>(WINDOW_QUEUE);
    let PreparedAsset {
        config,
        pipeline,
        source,
        ..
    } = asset;
    let name = config.id.clone();
    let acquisition = {
        let counters = counters.clone();
        let profile = pipeline.profile();
        std::thread::Builder::new()
            .name(format!("acquire-{name}"))
            .spawn(move || acquisition_lane(source, profile, tx, counters, shutdown))
            .expect("spawning a thread")
    };
    let scoring = std::thread::Builder::new()
        .name(format!("score-{name}"))
        .spawn(move || scoring_lane(index, pipeline, rx, outgoing, counters, board))
        .expect("spawning a thread");
    [acquisition, scoring]
}

/// Reads the source, cuts windows and hands them over without ever waiting
/// for a live source's consumer.
fn acquisition_lane(
    mut source: Box<dyn Source>,
    profile: &'static crate::features::FeatureProfile,
    windows: mpsc::Sender<Window>,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) {
    let rate = source.sample_rate_hz();
    let (len, hop) = profile.window_samples(rate);
    let mut windower = Windower::new(len, hop, rate);
    let pacing = source.pacing();
    let started = Instant::now();
    let mut signal_seconds = 0.0;
    while !shutdown.is_cancelled() {
        let block = match source.next_block() {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                tracing::error!("source stopped: {e}");
                break;
            }
        };
        signal_seconds += block.vibration.len() as f64 / rate;
        if let Pacing::Live { speed } = pacing {
            // A simulator or a replay stands in for a sensor: release each
            // block when a sensor would have delivered it.
            let due = started + Duration::from_secs_f64(signal_seconds / speed);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let gaps_before = windower.gaps();
        let ready = windower.push(block);
        counters.add_gaps(windower.gaps() - gaps_before);
        for window in ready {
            let handed_over = match pacing {
                Pacing::Live { .. } => match windows.try_send(window) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        counters.add_window_dropped();
                        true
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                },
                Pacing::AsFastAsPossible => windows.blocking_send(window).is_ok(),
            };
            if !handed_over {
                return;
            }
        }
    }
}

/// Scores windows and passes events on; ends when acquisition has ended and
/// every window handed over has been scored.
fn scoring_lane(
    index: usize,
    mut pipeline: AssetPipeline,
    mut windows: mpsc::Receiver<Window>,
    outgoing: mpsc::Sender<Message>,
    counters: Arc<Counters>,
    board: Arc<AssetBoard>,
) {
    let asset = pipeline.identity().asset_id.clone();
    while let Some(window) = windows.blocking_recv() {
        let (outcome, event) = pipeline.process(&window);
        match outcome {
            Outcome::Scored(_) => counters.add_window_scored(),
            Outcome::Refused(fault) => {
                counters.add_window_rejected();
                tracing::debug!(%asset, "window {} refused: {}", window.seq, fault.reason);
            }
            Outcome::ModelFailed(reason) => {
                counters.add_model_failure();
                tracing::warn!(%asset, "window {} not scored: {reason}", window.seq);
            }
        }
        board.update(index, pipeline.status());
        if let Some(event) = event {
            counters.add_event_raised();
            tracing::info!(
                %asset,
                state = event.state.as_str(),
                from = event.previous_state.as_str(),
                score = event.score,
                "detector event"
            );
            if outgoing.blocking_send(Message::Event(event)).is_err() {
                tracing::error!(%asset, "link is gone; event not sent");
                counters.add_publish_failure();
            }
        }
    }
}

async fn heartbeat_loop(
    config: AgentConfig,
    started_at_ms: u64,
    outgoing: mpsc::Sender<Message>,
    counters: Arc<Counters>,
    board: Arc<AssetBoard>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(config.heartbeat_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now_ms = now_us() / 1000;
        let heartbeat = Heartbeat {
            site: config.site.clone(),
            gateway: config.gateway.clone(),
            ts_ms: now_ms,
            uptime_s: now_ms.saturating_sub(started_at_ms) / 1000,
            counters: counters.snapshot(),
            assets: board.snapshot(),
        };
        // A heartbeat that cannot be queued is stale by the next one.
        if outgoing.try_send(Message::Heartbeat(heartbeat)).is_err() {
            tracing::debug!("outgoing queue full; heartbeat skipped");
        }
    }
}
