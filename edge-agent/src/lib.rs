//! The gateway daemon of the predictive-maintenance system.
//!
//! A gateway watches a few assets. For each asset, an acquisition lane reads
//! a [`source`] and cuts [`window`]s; a scoring lane runs each window through
//! the [`sensor_health`] checks, the [`features`] of the asset's profile, the ONNX
//! [`model`] and the [`detector`]; detector state changes become events that
//! the [`link`] publishes over MQTT with births, heartbeats and a last will.
//! [`agent`] wires the lanes; [`pipeline`] is the scoring logic shared by the
//! live agent, the feature export used for training, and the tests.

pub mod agent;
pub mod bench;
pub mod commissioning;
pub mod config;
pub mod detector;
pub mod eval;
pub mod event_sink;
pub mod export;
pub mod feature_scaling;
pub mod features;
pub mod judge;
pub mod link;
pub mod model;
pub mod model_manager;
pub mod model_package;
pub mod model_slot;
pub mod node_sim;
pub mod outbox;
pub mod pipeline;
pub mod replay;
pub mod replay_cli;
pub mod sensor_health;
pub mod source;
pub mod table;
pub mod table_replay;
pub mod telemetry;
pub mod window;

pub use agent::{AgentError, PreparedAsset, open_outbox, open_store, prepare, run};
pub use config::{AgentConfig, ConfigError};
pub use model::{AnomalyModel, ModelError};
