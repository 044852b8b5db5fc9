//! Encoding and validated decoding of messages.
//!
//! `decode` is the only way the hub turns bytes into a [`Message`]: it checks
//! the topic, the size, the JSON shape, that the body's site and gateway match
//! the topic's, and the semantic rules of each message (finite scores,
//! ordered timestamps, valid ids). Whatever fails becomes a [`DecodeError`]
//! whose message is fit for a log line.

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::ids::{IdError, validate_id};
use crate::messages::{
    AnomalyEvent, AssetInfo, Birth, DetectorState, EventKind, FeatureContribution, Heartbeat,
    Message,
};
use crate::topic::{MessageKind, Topic, TopicError};

/// Largest payload accepted. Real messages are a few kilobytes at most.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Most features an event may carry as its explanation.
pub const MAX_TOP_FEATURES: usize = 16;
/// Most assets one gateway may announce.
pub const MAX_ASSETS_PER_GATEWAY: usize = 256;
/// Longest event id.
pub const MAX_EVENT_ID_LEN: usize = 128;

/// A message ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Why a received payload was refused.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("topic `{topic}` is not a pdm/v1 topic: {reason}")]
    Topic { topic: String, reason: TopicError },
    #[error("{kind} payload of {size} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes")]
    TooLarge { kind: &'static str, size: usize },
    #[error("{kind} payload is not valid JSON for its type: {source}")]
    Json {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{kind} names {field} `{body}` but was published under `{topic}`")]
    OriginMismatch {
        kind: &'static str,
        field: &'static str,
        body: String,
        topic: String,
    },
    #[error("invalid {kind}: {reason}")]
    Invalid { kind: &'static str, reason: String },
}

impl From<(&'static str, IdError)> for DecodeError {
    fn from((kind, e): (&'static str, IdError)) -> Self {
        DecodeError::Invalid {
            kind,
            reason: e.to_string(),
        }
    }
}

/// Serialises a message onto its topic. Fails only if the message's own
/// site or gateway id is invalid, or if the message would not pass
/// [`decode`] (a gateway must never publish what a hub will refuse).
pub fn encode(message: &Message) -> Result<Envelope, DecodeError> {
    validate(message)?;
    let (site, gateway) = message.origin();
    let kind = kind_of(message);
    let topic = Topic::new(site, gateway, kind).map_err(|reason| DecodeError::Topic {
        topic: format!("pdm/v1/{site}/{gateway}/{}", kind.as_str()),
        reason,
    })?;
    let payload = match message {
        Message::Birth(m) => to_json(m),
        Message::Heartbeat(m) => to_json(m),
        Message::Event(m) => to_json(m),
        Message::Death(m) => to_json(m),
        Message::Ota(m) => to_json(m),
    };
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge {
            kind: kind.as_str(),
            size: payload.len(),
        });
    }
    Ok(Envelope {
        topic: topic.to_string(),
        payload,
    })
}

/// Parses and validates a message received on `topic`.
pub fn decode(topic: &str, payload: &[u8]) -> Result<(Topic, Message), DecodeError> {
    let parsed = Topic::parse(topic).map_err(|reason| DecodeError::Topic {
        topic: topic.to_owned(),
        reason,
    })?;
    let kind = parsed.kind.as_str();
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge {
            kind,
            size: payload.len(),
        });
    }
    let message = match parsed.kind {
        MessageKind::Birth => Message::Birth(from_json(kind, payload)?),
        MessageKind::Heartbeat => Message::Heartbeat(from_json(kind, payload)?),
        MessageKind::Event => Message::Event(from_json(kind, payload)?),
        MessageKind::Death => Message::Death(from_json(kind, payload)?),
        MessageKind::Ota => Message::Ota(from_json(kind, payload)?),
    };
    let (site, gateway) = message.origin();
    if site != parsed.site {
        return Err(mismatch(kind, "site", site, topic));
    }
    if gateway != parsed.gateway {
        return Err(mismatch(kind, "gateway", gateway, topic));
    }
    validate(&message)?;
    Ok((parsed, message))
}

fn kind_of(message: &Message) -> MessageKind {
    match message {
        Message::Birth(_) => MessageKind::Birth,
        Message::Heartbeat(_) => MessageKind::Heartbeat,
        Message::Event(_) => MessageKind::Event,
        Message::Death(_) => MessageKind::Death,
        Message::Ota(_) => MessageKind::Ota,
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain structs of strings and numbers cannot fail; a
    // non-finite f64 would be written as `null` and refused by `validate`.
    serde_json::to_vec(value).expect("protocol messages always serialise")
}

fn from_json<T: DeserializeOwned>(kind: &'static str, payload: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(payload).map_err(|source| DecodeError::Json { kind, source })
}

fn mismatch(kind: &'static str, field: &'static str, body: &str, topic: &str) -> DecodeError {
    DecodeError::OriginMismatch {
        kind,
        field,
        body: body.to_owned(),
        topic: topic.to_owned(),
    }
}

fn invalid(kind: &'static str, reason: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        kind,
        reason: reason.into(),
    }
}

/// The semantic rules of each message.
pub fn validate(message: &Message) -> Result<(), DecodeError> {
    let (site, gateway) = message.origin();
    let kind = kind_of(message).as_str();
    validate_id("site id", site).map_err(|e| (kind, e))?;
    validate_id("gateway id", gateway).map_err(|e| (kind, e))?;
    match message {
        Message::Birth(m) => validate_birth(m),
        Message::Heartbeat(m) => validate_heartbeat(m),
        Message::Event(m) => validate_event(m),
        Message::Death(_) => Ok(()),
        Message::Ota(m) => crate::ota::validate(m).map_err(|reason| invalid(kind, reason)),
    }
}

fn validate_birth(m: &Birth) -> Result<(), DecodeError> {
    const K: &str = "birth";
    if m.assets.len() > MAX_ASSETS_PER_GATEWAY {
        return Err(invalid(
            K,
            format!(
                "{} assets, at most {MAX_ASSETS_PER_GATEWAY}",
                m.assets.len()
            ),
        ));
    }
    for asset in &m.assets {
        validate_asset(asset)?;
    }
    Ok(())
}

fn validate_asset(a: &AssetInfo) -> Result<(), DecodeError> {
    const K: &str = "birth";
    validate_id("asset id", &a.id).map_err(|e| (K, e))?;
    validate_id("model id", &a.model.id).map_err(|e| (K, e))?;
    if a.channels.is_empty() {
        return Err(invalid(K, format!("asset `{}` has no channels", a.id)));
    }
    for c in &a.channels {
        validate_id("channel id", &c.id).map_err(|e| (K, e))?;
        if !(c.sample_rate_hz.is_finite() && c.sample_rate_hz > 0.0) {
            return Err(invalid(
                K,
                format!(
                    "channel `{}` of asset `{}` has sample rate {} Hz",
                    c.id, a.id, c.sample_rate_hz
                ),
            ));
        }
    }
    Ok(())
}

fn validate_heartbeat(m: &Heartbeat) -> Result<(), DecodeError> {
    const K: &str = "heartbeat";
    if m.assets.len() > MAX_ASSETS_PER_GATEWAY {
        return Err(invalid(K, format!("{} assets", m.assets.len())));
    }
    for a in &m.assets {
        validate_id("asset id", &a.id).map_err(|e| (K, e))?;
        if let Some(score) = a.last_score {
            check_score(K, "last_score", score)?;
        }
        check_thresholds(K, a.threshold, a.alarm_threshold)?;
    }
    Ok(())
}

fn validate_event(m: &AnomalyEvent) -> Result<(), DecodeError> {
    const K: &str = "event";
    if m.event_id.is_empty() || m.event_id.len() > MAX_EVENT_ID_LEN {
        return Err(invalid(
            K,
            format!("event id must be 1 to {MAX_EVENT_ID_LEN} characters"),
        ));
    }
    validate_id("asset id", &m.asset_id).map_err(|e| (K, e))?;
    validate_id("channel id", &m.channel).map_err(|e| (K, e))?;
    validate_id("model id", &m.model.id).map_err(|e| (K, e))?;
    if m.window_end_ms < m.window_start_ms {
        return Err(invalid(
            K,
            format!(
                "window ends ({}) before it starts ({})",
                m.window_end_ms, m.window_start_ms
            ),
        ));
    }
    check_score(K, "score", m.score)?;
    check_thresholds(K, m.threshold, m.alarm_threshold)?;
    if m.kind == EventKind::Anomaly
        && matches!(
            m.state,
            DetectorState::SensorFault | DetectorState::ModelFault
        )
    {
        return Err(invalid(
            K,
            format!("an anomaly event cannot carry state {}", m.state.as_str()),
        ));
    }
    if m.top_features.len() > MAX_TOP_FEATURES {
        return Err(invalid(
            K,
            format!(
                "{} top features, at most {MAX_TOP_FEATURES}",
                m.top_features.len()
            ),
        ));
    }
    for f in &m.top_features {
        validate_contribution(f)?;
    }
    Ok(())
}

fn validate_contribution(f: &FeatureContribution) -> Result<(), DecodeError> {
    const K: &str = "event";
    if f.name.is_empty() || f.name.len() > 64 {
        return Err(invalid(K, "feature name must be 1 to 64 characters"));
    }
    if !(f.value.is_finite() && f.expected.is_finite()) {
        return Err(invalid(
            K,
            format!("feature `{}` has a non-finite value", f.name),
        ));
    }
    if !(0.0..=1.0).contains(&f.share) {
        return Err(invalid(
            K,
            format!("feature `{}` has share {} outside 0..1", f.name, f.share),
        ));
    }
    Ok(())
}

fn check_score(kind: &'static str, field: &str, score: f64) -> Result<(), DecodeError> {
    if score.is_finite() && score >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            kind,
            format!("{field} {score} is not a finite non-negative number"),
        ))
    }
}

fn check_thresholds(kind: &'static str, warning: f64, alarm: f64) -> Result<(), DecodeError> {
    if warning.is_finite() && warning > 0.0 && alarm.is_finite() && alarm >= warning {
        Ok(())
    } else {
        Err(invalid(
            kind,
            format!("thresholds must satisfy 0 < warning <= alarm, found {warning} and {alarm}"),
        ))
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
