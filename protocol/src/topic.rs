//! The topic scheme: `pdm/v1/{site}/{gateway}/{kind}`.
//!
//! The version is in the topic so that a hub can subscribe to the versions it
//! understands and a broker ACL can be written per site or per gateway. The
//! last segment names the message type, so a subscriber can route without
//! parsing the payload (and can reject a payload that does not match it).

use std::fmt;

use thiserror::Error;

use crate::ids::{IdError, validate_id};

/// First segment of every topic of this product.
pub const ROOT: &str = "pdm";
/// Second segment: the schema version ([`crate::PROTOCOL_VERSION`]).
pub const VERSION_SEGMENT: &str = "v1";

/// Which message a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Birth,
    Heartbeat,
    Event,
    Death,
    /// Models over the air: fetches and rollout status ([`crate::ota`]).
    Ota,
}

impl MessageKind {
    pub const ALL: [MessageKind; 5] = [
        MessageKind::Birth,
        MessageKind::Heartbeat,
        MessageKind::Event,
        MessageKind::Death,
        MessageKind::Ota,
    ];

    /// The topic segment for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Birth => "birth",
            MessageKind::Heartbeat => "heartbeat",
            MessageKind::Event => "event",
            MessageKind::Death => "death",
            MessageKind::Ota => "ota",
        }
    }

    fn parse(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == segment)
    }
}

/// A parsed, validated topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub site: String,
    pub gateway: String,
    pub kind: MessageKind,
}

/// Why a topic string is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopicError {
    #[error("expected 5 segments `pdm/v1/{{site}}/{{gateway}}/{{kind}}`, found {0}")]
    SegmentCount(usize),
    #[error("expected prefix `pdm/v1`, found `{0}`")]
    Prefix(String),
    #[error("unknown message kind `{0}` (expected birth, heartbeat, event, death or ota)")]
    Kind(String),
    #[error(transparent)]
    Id(#[from] IdError),
}

impl Topic {
    /// Builds a topic, validating the site and gateway ids.
    pub fn new(site: &str, gateway: &str, kind: MessageKind) -> Result<Self, TopicError> {
        validate_id("site id", site)?;
        validate_id("gateway id", gateway)?;
        Ok(Topic {
            site: site.to_owned(),
            gateway: gateway.to_owned(),
            kind,
        })
    }

    /// Parses a topic received from the broker.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let segments: Vec<&str> = topic.split('/').collect();
        if segments.len() != 5 {
            return Err(TopicError::SegmentCount(segments.len()));
        }
        if segments[0] != ROOT || segments[1] != VERSION_SEGMENT {
            return Err(TopicError::Prefix(format!(
                "{}/{}",
                segments[0], segments[1]
            )));
        }
        let kind =
            MessageKind::parse(segments[4]).ok_or_else(|| TopicError::Kind(segments[4].into()))?;
        Topic::new(segments[2], segments[3], kind)
    }

    /// The filter a hub subscribes to for every site and gateway.
    pub fn subscription_filter() -> String {
        format!("{ROOT}/{VERSION_SEGMENT}/+/+/+")
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ROOT}/{VERSION_SEGMENT}/{}/{}/{}",
            self.site,
            self.gateway,
            self.kind.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        for kind in MessageKind::ALL {
            let t = Topic::new("north", "gw-1", kind).unwrap();
            let s = t.to_string();
            assert!(s.starts_with("pdm/v1/north/gw-1/"));
            assert_eq!(Topic::parse(&s).unwrap(), t);
        }
    }

    #[test]
    fn refuses_foreign_and_malformed_topics() {
        assert_eq!(
            Topic::parse("pdm/v2/a/b/event"),
            Err(TopicError::Prefix("pdm/v2".into()))
        );
        assert_eq!(Topic::parse("pdm/v1/a/b"), Err(TopicError::SegmentCount(4)));
        assert_eq!(
            Topic::parse("pdm/v1/a/b/telemetry"),
            Err(TopicError::Kind("telemetry".into()))
        );
        assert!(matches!(
            Topic::parse("pdm/v1/a/+/event"),
            Err(TopicError::Id(_))
        ));
    }

    #[test]
    fn subscription_filter_matches_the_scheme() {
        assert_eq!(Topic::subscription_filter(), "pdm/v1/+/+/+");
    }
}
