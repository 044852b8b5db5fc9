//! The messages a gateway publishes.
//!
//! Four kinds, one per topic kind: a **birth** when the gateway (re)connects,
//! saying which assets and channels it watches with which model; a periodic
//! **heartbeat** with pipeline counters and each asset's detector state; an
//! **event** whenever a detector changes state (and periodically while in
//! alarm), carrying its evidence; and a **death**, either published on a
//! clean shutdown or left with the broker as the MQTT last will.
//!
//! Times are milliseconds since the Unix epoch (UTC) in fields ending `_ms`.
//! Unknown fields are ignored on decode so that a newer agent can add fields
//! without breaking an older hub within the same topic version.

use serde::{Deserialize, Serialize};

/// The kind of asset a gateway watches; it selects the feature profile and
/// the model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// A rotating machine: centrifugal pump and its motor bearings.
    Pump,
    /// A bridge span watched for changes of its structural dynamics.
    Bridge,
}

impl AssetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Pump => "pump",
            AssetKind::Bridge => "bridge",
        }
    }
}

/// What a detector concludes about an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum DetectorState {
    Normal,
    Warning,
    Alarm,
    /// The input cannot be trusted (NaN, flat-lined, missing); no verdict on
    /// the asset itself.
    SensorFault,
    /// The model cannot score this asset (an inference error, a non-finite
    /// score); no verdict on the asset itself.
    ModelFault,
}

impl DetectorState {
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorState::Normal => "normal",
            DetectorState::Warning => "warning",
            DetectorState::Alarm => "alarm",
            DetectorState::SensorFault => "sensor_fault",
            DetectorState::ModelFault => "model_fault",
        }
    }
}

/// Why an event was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The model's anomaly score moved the detector between normal, warning
    /// and alarm.
    Anomaly,
    /// The sensor channel went bad or recovered; says nothing about the asset.
    SensorFault,
    /// The model failed to score the asset's windows, or scores them again;
    /// says nothing about the asset (but while it lasts, nothing watches it).
    ModelFault,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Anomaly => "anomaly",
            EventKind::SensorFault => "sensor_fault",
            EventKind::ModelFault => "model_fault",
        }
    }
}

/// Vibration severity zone after ISO 10816 (A best, D worst) of a rotating
/// machine's velocity RMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IsoZone {
    A,
    B,
    C,
    D,
}

/// Physical quantity measured by a sensor channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    Acceleration,
    Temperature,
}

/// Identifies a model build exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub id: String,
    pub version: String,
}

/// One sensor channel of an asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub id: String,
    pub quantity: Quantity,
    /// Unit of the values, e.g. `g` or `degC`.
    pub unit: String,
    pub sample_rate_hz: f64,
}

/// An asset as announced in a birth message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetInfo {
    pub id: String,
    pub kind: AssetKind,
    pub channels: Vec<ChannelInfo>,
    pub model: ModelRef,
}

/// Published on every (re)connection, retained by nobody: the hub stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Birth {
    pub site: String,
    pub gateway: String,
    pub agent_version: String,
    /// When this agent process started.
    pub started_at_ms: u64,
    pub ts_ms: u64,
    pub assets: Vec<AssetInfo>,
}

/// Per-asset line of a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetStatus {
    pub id: String,
    pub state: DetectorState,
    /// Anomaly score of the latest scored window, if any.
    pub last_score: Option<f64>,
    /// Score at which the detector starts counting towards `warning`.
    pub threshold: f64,
    /// Score at which the detector starts counting towards `alarm`.
    pub alarm_threshold: f64,
    pub windows_scored: u64,
    /// Velocity RMS (10-1000 Hz) of the latest window, rotating machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub velocity_rms_mm_s: Option<f64>,
    /// ISO 10816 zone of that velocity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso_zone: Option<IsoZone>,
    /// Where the asset's commissioning stands, for models that commission
    /// each asset (absent for models that use their shipped thresholds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commissioning: Option<CommissioningStatus>,
    /// The model judging the asset now (absent from agents before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
}

/// Phase of an asset's commissioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommissioningPhase {
    /// Collecting the baseline: windows are checked and featured but raise
    /// no anomaly (the asset's normal is not known yet).
    Baseline,
    /// The baseline was learned; the asset is watched with its parameters.
    Commissioned,
}

/// An asset's commissioning as reported in heartbeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommissioningStatus {
    pub phase: CommissioningPhase,
    /// Baseline windows collected so far (all of them once commissioned).
    pub windows: u64,
    /// Baseline windows the model asks for.
    pub windows_needed: u64,
    /// When the baseline was learned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at_ms: Option<u64>,
    /// The baseline's score at the model's threshold quantile, from which
    /// the thresholds were set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_score_quantile: Option<f64>,
    /// Whether feature scaling was learned from the baseline.
    #[serde(default)]
    pub feature_scaling: bool,
    /// The covariates whose influence the baseline taught (e.g.
    /// `temperature_c`); a covariate the baseline did not vary is absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covariates_learned: Vec<String>,
}

/// Counters of the agent's pipeline since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineCounters {
    /// Windows cut from the sample streams (scored, dropped, refused or
    /// taken into a commissioning baseline).
    #[serde(default)]
    pub windows_acquired: u64,
    /// Windows that were scored by a model.
    pub windows_scored: u64,
    /// Windows dropped because scoring fell behind acquisition.
    pub windows_dropped: u64,
    /// Windows refused by sensor checks (NaN, flat line, ...).
    pub windows_rejected: u64,
    /// Windows that went into an asset's commissioning baseline (not
    /// judged).
    #[serde(default)]
    pub windows_baseline: u64,
    /// Windows the model failed on (inference error, non-finite score).
    #[serde(default)]
    pub model_failures: u64,
    /// Gaps in the sample stream (samples lost between blocks).
    pub gaps: u64,
    /// Received sensor-node frames that failed to decode (garbage, CRC).
    #[serde(default)]
    pub frame_errors: u64,
    /// Jumps in sensor-node sequence numbers (frames lost on the way).
    #[serde(default)]
    pub sequence_gaps: u64,
    pub events_raised: u64,
    pub events_published: u64,
    pub publish_failures: u64,
}

/// Periodic proof of life with the pipeline's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub site: String,
    pub gateway: String,
    pub ts_ms: u64,
    pub uptime_s: u64,
    pub counters: PipelineCounters,
    pub assets: Vec<AssetStatus>,
    /// The gateway's durable outbox (absent from agents before it).
    #[serde(default)]
    pub outbox: OutboxCounters,
}

/// The gateway's durable outbox: what it holds and what it had to drop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboxCounters {
    /// Records kept, waiting for the broker's acknowledgement.
    pub records: u64,
    /// Of which events (the rest is telemetry).
    pub events: u64,
    /// Bytes they take on disk.
    pub bytes: u64,
    /// Records kept since the agent started.
    pub accepted: u64,
    /// Records acknowledged by the broker since the start (telemetry is
    /// then deleted; an event waits for the hub's receipt).
    pub acknowledged: u64,
    /// Events the broker acknowledged whose receipt from the hub is still
    /// awaited (kept, and sent again when the hub reconnects).
    pub awaiting_receipt: u64,
    /// Events the hub's receipts confirmed (and deleted) since the start.
    pub confirmed: u64,
    /// Records dropped for room, by class (the newcomer included when the
    /// outbox was full of more important records).
    pub dropped_telemetry: u64,
    pub dropped_events: u64,
    pub dropped_alarms: u64,
    /// Records dropped for age.
    pub expired: u64,
    /// Unreadable records skipped (torn writes, garbage).
    pub corrupt: u64,
    /// Records that could not be written (disk full, I/O error): lost.
    pub write_failures: u64,
}

/// One feature's share of an anomaly score: the explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureContribution {
    pub name: String,
    /// Value measured in the window, in the feature's unit.
    pub value: f64,
    /// Value the model considers normal for this feature (for the shipped
    /// models, its typical healthy value), in the same unit.
    pub expected: f64,
    /// This feature's part (0 to 1) of the window's deviation from normal
    /// as the model explains it; for the shipped models, its squared
    /// standardised distance from its typical value over the sum of all
    /// features'. The shares of all features add up to 1.
    pub share: f64,
}

/// A detector state change (or an alarm reminder) with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyEvent {
    /// Stable unique id: a redelivered event has the same id.
    pub event_id: String,
    pub site: String,
    pub gateway: String,
    pub asset_id: String,
    pub asset_kind: AssetKind,
    /// The sensor channel the evidence comes from.
    pub channel: String,
    pub kind: EventKind,
    pub state: DetectorState,
    pub previous_state: DetectorState,
    pub window_start_ms: u64,
    pub window_end_ms: u64,
    pub raised_at_ms: u64,
    pub score: f64,
    pub threshold: f64,
    pub alarm_threshold: f64,
    pub model: ModelRef,
    /// Features that contributed most to the score, largest first.
    pub top_features: Vec<FeatureContribution>,
    /// Human-readable detail, e.g. why a sensor was judged faulty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why a gateway went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeathReason {
    /// The agent stopped on purpose and said so.
    Shutdown,
    /// Published by the broker as the last will: the connection was lost.
    ConnectionLost,
}

/// The end of a gateway's session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Death {
    pub site: String,
    pub gateway: String,
    /// For a last will this is when the will was registered, not when the
    /// connection was lost: the hub uses its own receive time.
    pub ts_ms: u64,
    pub reason: DeathReason,
}

/// Any message of the protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Birth(Birth),
    Heartbeat(Heartbeat),
    Event(AnomalyEvent),
    Death(Death),
    Ota(crate::ota::OtaMessage),
}

impl Message {
    /// The (site, gateway) the message claims to come from.
    pub fn origin(&self) -> (&str, &str) {
        match self {
            Message::Birth(m) => (&m.site, &m.gateway),
            Message::Heartbeat(m) => (&m.site, &m.gateway),
            Message::Event(m) => (&m.site, &m.gateway),
            Message::Death(m) => (&m.site, &m.gateway),
            Message::Ota(m) => (&m.site, &m.gateway),
        }
    }
}
