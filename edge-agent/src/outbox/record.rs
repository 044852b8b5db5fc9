//! One outbox record as stored: what it is ([`Class`]), and its bytes.
//!
//! The format: magic `OB1`, class (1 byte), enqueue time (ms, LE u64),
//! topic length (LE u16), topic, event id length (1 byte, 0 for none),
//! event id, payload, CRC-32 of all before it (LE). The checksum is what
//! tells a torn write or garbage from a record.

use protocol::{DetectorState, Message};
use serde::{Deserialize, Serialize};

pub(super) const MAGIC: &[u8; 3] = b"OB1";
/// Magic, class, enqueue time, topic length.
pub(super) const HEADER: usize = 3 + 1 + 8 + 2;
pub(super) const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// How important a record is; drops take the least important first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Class {
    /// Heartbeats: the next one says as much.
    Telemetry = 0,
    /// Detector transitions other than into alarm; sensor and model faults.
    Event = 1,
    /// Transitions into alarm.
    Alarm = 2,
}

impl Class {
    /// The class a message is kept as; `None` for what is never kept (a
    /// birth or death only means something on the connection it is sent on).
    pub fn of(message: &Message) -> Option<Class> {
        match message {
            Message::Event(e) if e.state == DetectorState::Alarm => Some(Class::Alarm),
            Message::Event(_) => Some(Class::Event),
            // A model rollout's fetches and statuses: telemetry (the hub
            // asks again, and the next status says more).
            Message::Heartbeat(_) | Message::Ota(_) => Some(Class::Telemetry),
            _ => None,
        }
    }

    fn from_byte(b: u8) -> Option<Class> {
        [Class::Telemetry, Class::Event, Class::Alarm]
            .into_iter()
            .find(|c| *c as u8 == b)
    }
}

/// One kept record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub seq: u64,
    pub class: Class,
    pub enqueued_ms: u64,
    /// Events: the id a hub receipt names.
    pub event_id: Option<String>,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// The stored form: magic, class, enqueue time (ms, LE), topic length (LE),
/// topic, event id length (1 byte, 0 for none), event id, payload, CRC-32 of
/// all before it (LE).
pub(super) fn encode(
    class: Class,
    enqueued_ms: u64,
    event_id: Option<&str>,
    topic: &str,
    payload: &[u8],
) -> Vec<u8> {
    let id = event_id.unwrap_or_default();
    let mut v = Vec::with_capacity(HEADER + topic.len() + 1 + id.len() + payload.len() + 4);
    v.extend_from_slice(MAGIC);
    v.push(class as u8);
    v.extend_from_slice(&enqueued_ms.to_le_bytes());
    v.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    v.extend_from_slice(topic.as_bytes());
    v.push(id.len() as u8);
    v.extend_from_slice(id.as_bytes());
    v.extend_from_slice(payload);
    v.extend_from_slice(&CRC.checksum(&v).to_le_bytes());
    v
}

pub(super) fn decode(seq: u64, bytes: &[u8]) -> Result<Record, String> {
    if bytes.len() < HEADER + 4 {
        return Err(format!("{} bytes is shorter than any record", bytes.len()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    if CRC.checksum(body) != stored {
        return Err("checksum mismatch (torn or overwritten)".into());
    }
    if &body[..3] != MAGIC {
        return Err("not an outbox record (bad magic)".into());
    }
    let class = Class::from_byte(body[3]).ok_or_else(|| format!("unknown class {}", body[3]))?;
    let enqueued_ms = u64::from_le_bytes(body[4..12].try_into().expect("8 bytes"));
    let topic_len = u16::from_le_bytes(body[12..14].try_into().expect("2 bytes")) as usize;
    let rest = &body[HEADER..];
    if topic_len > rest.len() {
        return Err(format!("topic length {topic_len} beyond the record"));
    }
    let text = |b: &[u8], what: &str| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| format!("{what} is not UTF-8"))
    };
    let topic = text(&rest[..topic_len], "topic")?;
    let rest = &rest[topic_len..];
    let id_len = *rest.first().ok_or("no event id length")? as usize;
    if 1 + id_len > rest.len() {
        return Err(format!("event id length {id_len} beyond the record"));
    }
    let event_id = text(&rest[1..1 + id_len], "event id")?;
    if (class == Class::Telemetry) != event_id.is_empty() {
        return Err("event id does not fit the class".into());
    }
    Ok(Record {
        seq,
        class,
        enqueued_ms,
        event_id: (!event_id.is_empty()).then_some(event_id),
        topic,
        payload: rest[1 + id_len..].to_vec(),
    })
}
