//! Wires the lanes of a gateway together and runs them until shutdown.
//!
//! ```text
//!  per asset:  acquisition thread --(bounded, try_send)--> scoring thread --+
//!                 source -> windower        drop+count      pipeline       |
//!                                            when full                      v
//!  heartbeat task ---------------------------------------------------> outbox (sled) -> link (MQTT)
//! ```
//!
//! Acquisition never waits for scoring: when the scoring lane falls behind a
//! live source, windows are dropped and counted (the heartbeat reports it).
//! Events and heartbeats are committed to the durable [`Outbox`] before
//! anything publishes them; the link deletes each on the broker's PUBACK.
//! Shutdown runs front to back: acquisition stops, scoring drains what it
//! holds, the heartbeat stops, and the link publishes what the outbox holds
//! (for at most a few seconds; the rest waits on disk for the next start),
//! says goodbye and disconnects.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use protocol::{AssetInfo, Birth, ChannelInfo, Heartbeat, Message, Quantity};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::commissioning::CommissioningStore;
use crate::config::{AgentConfig, AssetConfig};
pub use crate::event_sink::EventSink;
use crate::link::{self, LinkSettings};
use crate::model::{AnomalyModel, ModelError};
use crate::model_manager::{self, ManagedAsset, ManagerSettings};
use crate::model_slot::ModelSlot;
use crate::outbox::Outbox;
use crate::pipeline::{AssetPipeline, AssetSetup};
use crate::source::{Pacing, Source, SourceError, SourcePoll, now_us};
use crate::telemetry::{AssetBoard, Counters};
use crate::window::{Window, Windower};

/// Windows buffered between acquisition and scoring of one asset.
const WINDOW_QUEUE: usize = 4;

/// Why the agent could not start.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("data folder {path}: {source}")]
    Store {
        path: std::path::PathBuf,
        #[source]
        source: store::StoreError,
    },
    #[error("outbox in {path}: {source}")]
    Outbox {
        path: std::path::PathBuf,
        #[source]
        source: store::StoreError,
    },
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
    recipe: PipelineRecipe,
    /// The model it runs, and the one its config names.
    model: AnomalyModel,
    configured: AnomalyModel,
}

impl PreparedAsset {
    /// The asset's status line before anything was scored.
    pub fn status(&self) -> protocol::AssetStatus {
        self.pipeline.status()
    }

    /// Opens the asset's source and checks the model against it.
    pub fn new(
        config: &AgentConfig,
        asset: &AssetConfig,
        model: AnomalyModel,
    ) -> Result<Self, AgentError> {
        let setup = AssetSetup::from_config(config, asset);
        let source = asset
            .source
            .open(asset.kind, now_us(), &setup.analysis)
            .map_err(|source| AgentError::Source {
                asset: asset.id.clone(),
                source,
            })?;
        let recipe = PipelineRecipe {
            setup,
            rate: source.sample_rate_hz(),
            commissioning: asset.commissioning.clone(),
            store: None,
        };
        Ok(PreparedAsset {
            config: asset.clone(),
            model_ref: model.model_ref(),
            pipeline: recipe.build(model.clone())?,
            source,
            recipe,
            configured: model.clone(),
            model,
        })
    }

    /// Keeps the asset's commissioning in `store` and resumes from what it
    /// holds (see [`AssetPipeline::with_commissioning_store`]).
    pub fn with_commissioning_store(mut self, store: CommissioningStore) -> Self {
        self.pipeline = self.pipeline.with_commissioning_store(store.clone());
        self.recipe.store = Some(store);
        self
    }

    /// Runs the model installed over the air for this asset, if one was
    /// (see [`crate::model_manager`]), instead of the configured one; a
    /// package that no longer verifies or fits is skipped with a warning.
    pub fn with_installed_model(
        mut self,
        config: &AgentConfig,
        store: &CommissioningStore,
    ) -> Self {
        let Ok(keys) = config.models.keys() else {
            return self;
        };
        if keys.is_empty() {
            return self;
        }
        let store_ref = store.store();
        let Some(model) = crate::model_manager::installed_model(
            store_ref.as_ref(),
            &config.data_dir,
            &keys,
            &self.config.id,
        ) else {
            return self;
        };
        match self.recipe.build(model.clone()) {
            Ok(pipeline) => {
                self.model_ref = model.model_ref();
                self.pipeline = pipeline;
                self.model = model;
            }
            Err(e) => {
                tracing::warn!(asset = %self.config.id, "installed model does not fit, running the configured one: {e}")
            }
        }
        self
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
/// A folder that several assets name is loaded once and shared (the plan,
/// and the run states, of which there are only as many as run at once).
pub fn prepare(config: &AgentConfig) -> Result<Vec<PreparedAsset>, AgentError> {
    let mut loaded: HashMap<&Path, AnomalyModel> = HashMap::new();
    config
        .assets
        .iter()
        .map(|asset| {
            let model = match loaded.get(asset.model.as_path()) {
                Some(model) => model.clone(),
                None => {
                    let model = AnomalyModel::load_dir(&asset.model)?;
                    loaded.insert(&asset.model, model.clone());
                    model
                }
            };
            PreparedAsset::new(config, asset, model)
        })
        .collect()
}

/// Opens the gateway's store in its data folder (created if missing).
pub fn open_store(config: &AgentConfig) -> Result<CommissioningStore, AgentError> {
    open_store_at(&config.data_dir)
}

/// Opens (creating it if missing) the agent's store in `dir`.
pub fn open_store_at(dir: &Path) -> Result<CommissioningStore, AgentError> {
    let fail = |source| AgentError::Store {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(store::StoreError::Backend(e.to_string())))?;
    let store = store::SledStore::open(dir).map_err(fail)?;
    Ok(CommissioningStore::new(Arc::new(store)))
}

/// Opens the durable outbox kept in the gateway's store (see
/// [`open_store`]); unreadable records are skipped and counted.
pub fn open_outbox(
    config: &AgentConfig,
    store: &CommissioningStore,
) -> Result<Arc<Outbox>, AgentError> {
    Outbox::open(store.store(), config.outbox.clone())
        .map(Arc::new)
        .map_err(|source| AgentError::Outbox {
            path: config.data_dir.clone(),
            source,
        })
}

/// Runs the agent until `shutdown` is cancelled or every (finite) source has
/// ended, keeping events in `outbox` (see [`open_outbox`]). Returns the
/// final counters.
pub async fn run(
    config: AgentConfig,
    assets: Vec<PreparedAsset>,
    outbox: Arc<Outbox>,
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
    let slots: Vec<Arc<ModelSlot>> = assets.iter().map(|_| Arc::default()).collect();
    let trusted_keys = config.models.keys().unwrap_or_default();
    let (model_tx, model_rx) = mpsc::unbounded_channel();
    let manager_stop = CancellationToken::new();
    let manager = (!trusted_keys.is_empty()).then(|| {
        let managed = assets
            .iter()
            .zip(&slots)
            .map(|(a, slot)| ManagedAsset {
                asset_id: a.config.id.clone(),
                kind: a.config.kind,
                slot: slot.clone(),
                model: a.model.clone(),
                configured: a.configured.clone(),
            })
            .collect();
        let settings = ManagerSettings {
            site: config.site.clone(),
            gateway: config.gateway.clone(),
            data_dir: config.data_dir.clone(),
            trusted_keys,
            probation_windows: config.models.probation_windows,
            max_probation_alarm_fraction: config.models.max_probation_alarm_fraction,
            fetch_chunk_bytes: config.models.fetch_chunk_bytes,
        };
        tokio::spawn(model_manager::run(
            settings,
            managed,
            outbox.clone(),
            outbox.store(),
            model_rx,
            manager_stop.clone(),
        ))
    });
    let settings = LinkSettings {
        host: config.mqtt.host.clone(),
        port: config.mqtt.port,
        client_id: config.client_id(),
        keep_alive: Duration::from_secs(config.mqtt.keep_alive_s),
        drain_timeout: Duration::from_secs_f64(config.mqtt.drain_timeout_s),
        model_commands: manager.is_some().then_some(model_tx),
    };
    let link_finish = CancellationToken::new();
    let link = tokio::spawn(link::run(
        settings,
        birth,
        outbox.clone(),
        counters.clone(),
        link_finish.clone(),
    ));

    let lanes = Lanes::start_with_slots(
        assets,
        slots,
        outbox.clone(),
        counters.clone(),
        board.clone(),
        shutdown.clone(),
    );

    let heartbeat_stop = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat_loop(
        config.clone(),
        started_at_ms,
        outbox,
        counters.clone(),
        board,
        heartbeat_stop.clone(),
    ));

    // Lanes end when shutdown is requested or their source runs dry.
    let _ = tokio::task::spawn_blocking(move || lanes.join()).await;
    manager_stop.cancel();
    if let Some(m) = manager {
        let _ = m.await;
    }
    heartbeat_stop.cancel();
    let _ = heartbeat.await;
    // Nothing more is kept: the link drains the outbox, says goodbye and
    // returns.
    link_finish.cancel();
    let _ = link.await;
    counters.snapshot()
}

/// The running lanes of a gateway's assets.
pub struct Lanes {
    threads: Vec<JoinHandle<()>>,
}

impl Lanes {
    /// Starts an acquisition and a scoring thread per asset; events go to
    /// `events`, counters and status lines to `counters` and `board`
    /// (which must have one line per asset, in order).
    pub fn start(
        assets: Vec<PreparedAsset>,
        events: impl Into<EventSink>,
        counters: Arc<Counters>,
        board: Arc<AssetBoard>,
        shutdown: CancellationToken,
    ) -> Lanes {
        let slots = assets.iter().map(|_| Arc::default()).collect();
        Self::start_with_slots(assets, slots, events, counters, board, shutdown)
    }

    /// [`Lanes::start`], each asset's scoring lane taking instructions from
    /// its slot (see [`crate::model_slot`]).
    pub fn start_with_slots(
        assets: Vec<PreparedAsset>,
        slots: Vec<Arc<ModelSlot>>,
        events: impl Into<EventSink>,
        counters: Arc<Counters>,
        board: Arc<AssetBoard>,
        shutdown: CancellationToken,
    ) -> Lanes {
        let outgoing = events.into();
        let mut threads = Vec::new();
        for (index, (asset, slot)) in assets.into_iter().zip(slots).enumerate() {
            threads.extend(spawn_lanes(
                index,
                asset,
                slot,
                outgoing.clone(),
                counters.clone(),
                board.clone(),
                shutdown.clone(),
            ));
        }
        Lanes { threads }
    }

    /// Waits until every lane has ended (shutdown, or sources exhausted and
    /// every handed-over window scored).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// What the acquisition lane hands the scoring lane.
enum LaneMsg {
    Window(Window),
    /// No data at all for this many seconds.
    Silent(f64),
}

fn spawn_lanes(
    index: usize,
    asset: PreparedAsset,
    slot: Arc<ModelSlot>,
    outgoing: EventSink,
    counters: Arc<Counters>,
    board: Arc<AssetBoard>,
    shutdown: CancellationToken,
) -> [JoinHandle<()>; 2] {
    let (tx, rx) = mpsc::channel::<LaneMsg>(WINDOW_QUEUE);
    let PreparedAsset {
        config,
        pipeline,
        source,
        recipe,
        ..
    } = asset;
    let name = config.id.clone();
    let acquisition = {
        let counters = counters.clone();
        let profile = pipeline.profile();
        let silence_s = pipeline.silence_limit_s();
        std::thread::Builder::new()
            .name(format!("acquire-{name}"))
            .spawn(move || acquisition_lane(source, profile, silence_s, tx, counters, shutdown))
            .expect("spawning a thread")
    };
    let scoring = std::thread::Builder::new()
        .name(format!("score-{name}"))
        .spawn(move || {
            let lane = ScoringLane {
                index,
                recipe,
                slot,
                outgoing,
                counters,
                board,
            };
            lane.run(pipeline, rx)
        })
        .expect("spawning a thread");
    [acquisition, scoring]
}

/// Reads the source, cuts windows and hands them over without ever waiting
/// for a live source's consumer; notices when the source falls silent.
fn acquisition_lane(
    mut source: Box<dyn Source>,
    profile: &'static crate::features::FeatureProfile,
    silence_s: f64,
    lane: mpsc::Sender<LaneMsg>,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) {
    let rate = source.sample_rate_hz();
    let (len, hop) = profile.window_samples(rate);
    let mut windower = Windower::new(len, hop, rate);
    let pacing = source.pacing();
    let started = Instant::now();
    let mut signal_seconds = 0.0;
    let mut last_data = Instant::now();
    let mut silence_reported = false;
    let (mut frame_errors, mut sequence_gaps) = (0, 0);
    while !shutdown.is_cancelled() {
        let polled = source.poll();
        let errors = source.frame_errors();
        counters.add_frame_errors(errors - frame_errors);
        frame_errors = errors;
        let gaps = source.sequence_gaps();
        counters.add_sequence_gaps(gaps - sequence_gaps);
        sequence_gaps = gaps;
        let block = match polled {
            Ok(SourcePoll::Block(b)) => b,
            Ok(SourcePoll::Idle) => {
                let quiet = last_data.elapsed().as_secs_f64();
                if quiet >= silence_s && !silence_reported {
                    silence_reported = true;
                    if hand_over(&lane, LaneMsg::Silent(quiet), pacing, &counters).is_err() {
                        return;
                    }
                }
                continue;
            }
            Ok(SourcePoll::End) => break,
            Err(e) => {
                tracing::error!("source stopped: {e}");
                break;
            }
        };
        last_data = Instant::now();
        silence_reported = false;
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
            counters.add_window_acquired();
            if hand_over(&lane, LaneMsg::Window(window), pacing, &counters).is_err() {
                return;
            }
        }
    }
}

/// Passes a message to the scoring lane: a live source never waits (a full
/// queue drops the window and counts it); a recording waits. `Err` when the
/// scoring lane is gone.
fn hand_over(
    lane: &mpsc::Sender<LaneMsg>,
    msg: LaneMsg,
    pacing: Pacing,
    counters: &Counters,
) -> Result<(), ()> {
    match pacing {
        Pacing::Live { .. } => match lane.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                counters.add_window_dropped();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
        },
        Pacing::AsFastAsPossible => lane.blocking_send(msg).map_err(|_| ()),
    }
}

#[path = "scoring_lane.rs"]
mod scoring_lane;
use scoring_lane::{PipelineRecipe, ScoringLane};

async fn heartbeat_loop(
    config: AgentConfig,
    started_at_ms: u64,
    outbox: Arc<Outbox>,
    counters: Arc<Counters>,
    board: Arc<AssetBoard>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(config.heartbeat_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // On the way out, one last heartbeat carries the final counters.
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.cancelled() => true,
        };
        let now_ms = now_us() / 1000;
        let heartbeat = Heartbeat {
            site: config.site.clone(),
            gateway: config.gateway.clone(),
            ts_ms: now_ms,
            uptime_s: now_ms.saturating_sub(started_at_ms) / 1000,
            counters: counters.snapshot(),
            assets: board.snapshot(),
            outbox: outbox.counters(),
        };
        // Kept like an event (a commit, so off the async threads), but as
        // telemetry: the first thing dropped when the outbox is full.
        let kept = outbox.clone();
        let pushed =
            tokio::task::spawn_blocking(move || kept.push(&Message::Heartbeat(heartbeat), now_ms))
                .await;
        if let Ok(Err(e)) = pushed {
            tracing::warn!("heartbeat not kept: {e}");
        }
        if last {
            return;
        }
    }
}
