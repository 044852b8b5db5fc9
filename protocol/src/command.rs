//! Commands from the hub to gateways.
//!
//! Gateway messages travel on five-segment topics, which the hub subscribes
//! to with `pdm/v1/+/+/+`. Commands use topics of other lengths, so the hub
//! never receives its own commands:
//!
//! - `pdm/v1/cmd/{command}` goes to every gateway;
//! - `pdm/v1/{site}/{gateway}/cmd/{command}` goes to one gateway.
//!
//! - `rebirth`: "publish your birth again". The hub sends it to everyone
//!   when it connects (it may have started after the gateways, or lost its
//!   database) and to one gateway when it hears from a gateway it has no
//!   birth for, as Sparkplug B does with its rebirth request. A gateway also
//!   takes it as "the hub is (back) here" and sends again every event the
//!   hub has not confirmed.
//! - `receipt` ([`Receipt`]): "these events are stored". A gateway keeps
//!   each event in its outbox until the hub's receipt names it, so an event
//!   a broker accepted and then lost (a broker without persistence that
//!   restarted) is sent again.

use serde::{Deserialize, Serialize};

use crate::ids::validate_id;
use crate::topic::{ROOT, TopicError, VERSION_SEGMENT};

/// What the hub asks of a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Publish the birth message again.
    Rebirth,
    /// The hub stored these events.
    Receipt,
    /// Install this model package ([`crate::ota::ModelOffer`]).
    ModelOffer,
    /// Bytes of a package ([`crate::ota::ModelChunk`]).
    ModelChunk,
    /// Go back to the previous model ([`crate::ota::ModelRollback`]).
    ModelRollback,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Rebirth => "rebirth",
            Command::Receipt => "receipt",
            Command::ModelOffer => "model-offer",
            Command::ModelChunk => "model-chunk",
            Command::ModelRollback => "model-rollback",
        }
    }

    fn parse(segment: &str) -> Result<Self, TopicError> {
        match segment {
            "rebirth" => Ok(Command::Rebirth),
            "receipt" => Ok(Command::Receipt),
            "model-offer" => Ok(Command::ModelOffer),
            "model-chunk" => Ok(Command::ModelChunk),
            "model-rollback" => Ok(Command::ModelRollback),
            other => Err(TopicError::Kind(other.to_owned())),
        }
    }
}

/// The payload of a rebirth request: why it was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebirthRequest {
    pub ts_ms: u64,
    pub reason: String,
}

/// The payload of a receipt: events the hub has stored (or already had).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub event_ids: Vec<String>,
}

/// Most event ids in one receipt (about 40 bytes each).
pub const MAX_RECEIPT_IDS: usize = 256;

/// Topic of a command to every gateway.
pub fn broadcast_topic(command: Command) -> String {
    format!("{ROOT}/{VERSION_SEGMENT}/cmd/{}", command.as_str())
}

/// Topic of a command to one gateway.
pub fn gateway_topic(site: &str, gateway: &str, command: Command) -> Result<String, TopicError> {
    validate_id("site id", site)?;
    validate_id("gateway id", gateway)?;
    Ok(format!(
        "{ROOT}/{VERSION_SEGMENT}/{site}/{gateway}/cmd/{}",
        command.as_str()
    ))
}

/// The filters a gateway subscribes to for its commands.
pub fn gateway_filters(site: &str, gateway: &str) -> [String; 2] {
    [
        format!("{ROOT}/{VERSION_SEGMENT}/cmd/+"),
        format!("{ROOT}/{VERSION_SEGMENT}/{site}/{gateway}/cmd/+"),
    ]
}

/// Parses a command topic (either form).
pub fn parse(topic: &str) -> Result<Command, TopicError> {
    let s: Vec<&str> = topic.split('/').collect();
    if s.len() < 2 || s[0] != ROOT || s[1] != VERSION_SEGMENT {
        return Err(TopicError::Prefix(
            s.iter().take(2).copied().collect::<Vec<_>>().join("/"),
        ));
    }
    match s.len() {
        4 if s[2] == "cmd" => Command::parse(s[3]),
        6 if s[4] == "cmd" => Command::parse(s[5]),
        n => Err(TopicError::SegmentCount(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::Topic;

    #[test]
    fn both_forms_round_trip_and_never_match_the_hub_filter() {
        let broadcast = broadcast_topic(Command::Rebirth);
        let one = gateway_topic("north", "gw-1", Command::Rebirth).unwrap();
        assert_eq!(broadcast, "pdm/v1/cmd/rebirth");
        assert_eq!(one, "pdm/v1/north/gw-1/cmd/rebirth");
        for t in [&broadcast, &one] {
            assert_eq!(parse(t), Ok(Command::Rebirth));
            // The hub's filter pdm/v1/+/+/+ matches exactly 5 segments.
            assert_ne!(t.split('/').count(), 5);
            assert!(Topic::parse(t).is_err());
        }
        let filters = gateway_filters("north", "gw-1");
        assert_eq!(filters, ["pdm/v1/cmd/+", "pdm/v1/north/gw-1/cmd/+"]);
        let receipt = gateway_topic("north", "gw-1", Command::Receipt).unwrap();
        assert_eq!(receipt, "pdm/v1/north/gw-1/cmd/receipt");
        assert_eq!(parse(&receipt), Ok(Command::Receipt));
    }

    #[test]
    fn unknown_commands_and_foreign_topics_are_refused() {
        assert_eq!(
            parse("pdm/v1/cmd/reboot"),
            Err(TopicError::Kind("reboot".into()))
        );
        assert!(parse("pdm/v2/cmd/rebirth").is_err());
        assert!(parse("pdm/v1/north/gw-1/event").is_err());
        assert!(gateway_topic("north", "gw/1", Command::Rebirth).is_err());
    }
}
