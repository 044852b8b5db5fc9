//! Where the scoring lanes put the events they raise: the durable outbox in
//! the running agent, or a channel for benchmarks and tests that read the
//! events themselves. Either way a failure is logged and counted, never
//! fatal: a lane that cannot keep an event goes on judging its asset.

use std::sync::Arc;

use protocol::{AnomalyEvent, Message};
use tokio::sync::mpsc;

use crate::outbox::{Outbox, Pushed};
use crate::source::now_us;
use crate::telemetry::Counters;

/// Where the scoring lanes put events.
#[derive(Clone)]
pub enum EventSink {
    /// The durable outbox (the running agent).
    Outbox(Arc<Outbox>),
    /// A channel (benchmarks and tests that read the events themselves).
    Channel(mpsc::Sender<Message>),
}

impl From<mpsc::Sender<Message>> for EventSink {
    fn from(tx: mpsc::Sender<Message>) -> Self {
        EventSink::Channel(tx)
    }
}

impl From<Arc<Outbox>> for EventSink {
    fn from(outbox: Arc<Outbox>) -> Self {
        EventSink::Outbox(outbox)
    }
}

impl EventSink {
    /// Keeps (outbox) or hands over (channel) one event; a failure is
    /// logged and counted, never fatal.
    pub(crate) fn deliver(&self, event: AnomalyEvent, counters: &Counters) {
        let asset = event.asset_id.clone();
        let id = event.event_id.clone();
        let message = Message::Event(event);
        match self {
            EventSink::Outbox(outbox) => match outbox.push(&message, now_us() / 1000) {
                Ok(Pushed::Kept(seq)) => {
                    tracing::debug!(%asset, seq, "event {id} kept in the outbox");
                }
                Ok(Pushed::Dropped) => counters.add_publish_failure(),
                Err(e) => {
                    tracing::error!(%asset, "event lost: {e}");
                    counters.add_publish_failure();
                }
            },
            EventSink::Channel(tx) => {
                if tx.blocking_send(message).is_err() {
                    tracing::error!(%asset, "event channel closed; event not handed over");
                    counters.add_publish_failure();
                }
            }
        }
    }
}
