//! The wire contract between edge agents and the central hub.
//!
//! Agents and the hub are deployed and upgraded separately, often months
//! apart, so everything they say to each other is defined here once: the
//! topic scheme ([`topic`]), the message types ([`messages`]) and the rules a
//! message must satisfy before anyone acts on it ([`codec`]). This crate does
//! no I/O; it turns bytes into validated values or into a typed
//! [`DecodeError`] that says what was wrong, so that a bad payload is a value
//! to count and drop, never a crash.
//!
//! Messages are JSON: gateways publish a few messages a second at most, and an
//! operator debugging a site with `mosquitto_sub` should be able to read them.

pub mod codec;
pub mod command;
pub mod health;
pub mod ids;
pub mod messages;
pub mod ota;
pub mod package;
pub mod topic;

pub use codec::{DecodeError, Envelope, MAX_PAYLOAD_BYTES, decode, encode};
pub use command::{Command, MAX_RECEIPT_IDS, RebirthRequest, Receipt};
pub use health::health_index;
pub use ids::{IdError, validate_id};
pub use messages::{
    AnomalyEvent, AssetInfo, AssetKind, AssetStatus, Birth, ChannelInfo, CommissioningPhase,
    CommissioningStatus, Death, DeathReason, DetectorState, EventKind, FeatureContribution,
    Heartbeat, IsoZone, Message, ModelRef, OutboxCounters, PipelineCounters, Quantity,
};
pub use topic::{MessageKind, Topic, TopicError};

/// Version of the message schema; it is also the `v1` segment of every topic.
pub const PROTOCOL_VERSION: u32 = 1;
