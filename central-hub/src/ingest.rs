//! Subscribes to every gateway's messages and stores them, then acknowledges.
//!
//! The hub uses a persistent MQTT session with manual acknowledgements: a
//! QoS 1 message is acknowledged only after the ledger has committed its
//! effects to disk, so a hub that dies mid-message gets it again from the
//! broker, and the ledger's deduplication makes the redelivery harmless.
//!
//! A payload that fails validation is logged with the reason, counted and
//! acknowledged (dropping it is the only way to stop its redelivery); it
//! never reaches the store.
//!
//! Every stored event (or redelivered one already stored) is confirmed to
//! its gateway with a receipt (batched while messages queue up): the
//! gateway keeps an event in its outbox until then.
//!
//! Births are not retained by the broker, so a hub that starts after its
//! gateways (or lost its database) would never learn their healthy assets.
//! On every connection the hub therefore asks all gateways for a rebirth,
//! and it asks a single gateway when it hears from one it has no birth for
//! (at most every [`REBIRTH_INTERVAL`] per gateway).
//!
//! The same task sweeps the gateways' liveness (see
//! [`crate::ledger::liveness`]) every few seconds, and drives rollouts
//! ([`crate::ota`]): gateways' fetches and statuses, and every second the
//! offers and rollbacks due.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use protocol::{Command, Message, RebirthRequest, command};
use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, Publish, QoS};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ledger::liveness::LivenessPolicy;
use crate::ledger::{Applied, Ledger};
use crate::ota::OtaDispatcher;

/// Where the broker is and who the hub is to it.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub host: String,
    pub port: u16,
    /// Stable across restarts: the persistent session is keyed by it.
    pub client_id: String,
    pub keep_alive: Duration,
    /// When a silent gateway is offline, and when that becomes a work order.
    pub liveness: LivenessPolicy,
}

/// Ingest counters, shown by the API.
#[derive(Debug, Default)]
pub struct IngestStats {
    received: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    malformed: AtomicU64,
    store_failures: AtomicU64,
    connected: AtomicU64,
}

/// A snapshot of [`IngestStats`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IngestCounters {
    pub received: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub malformed: u64,
    pub store_failures: u64,
    pub broker_connected: bool,
}

impl IngestStats {
    pub fn snapshot(&self) -> IngestCounters {
        IngestCounters {
            received: self.received.load(Relaxed),
            stored: self.stored.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            store_failures: self.store_failures.load(Relaxed),
            broker_connected: self.connected.load(Relaxed) == 1,
        }
    }
}

enum Inbound {
    Connected,
    Publish(Publish),
}

/// Largest packet the hub's MQTT client accepts. Far above any valid
/// message ([`protocol::MAX_PAYLOAD_BYTES`]) so that an oversize payload is
/// received, counted and dropped by validation: a packet over the client's
/// own limit would break the connection, and with a persistent session the
/// broker would redeliver it for ever. Brokers should cap payloads below
/// this (Mosquitto: `message_size_limit`; the embedded broker: 256 KiB).
pub const MAX_INCOMING_PACKET_BYTES: usize = 4 * 1024 * 1024;

/// Capacity of rumqttc's request queue: well above the broker's inflight
/// window (100 unacknowledged messages).
const REQUEST_QUEUE: usize = 1024;

/// How often rollouts are ticked (timeouts judged, offers sent again).
const ROLLOUT_TICK: Duration = Duration::from_secs(1);

/// Least time between two rebirth requests to the same gateway.
pub const REBIRTH_INTERVAL: Duration = Duration::from_secs(30);

/// What to do after handling a message.
struct Handled {
    ack: bool,
    /// (site, gateway) of a sender the hub has no birth for.
    unknown_gateway: Option<(String, String)>,
    /// (site, gateway, event id) of an event now stored.
    receipt: Option<(String, String, String)>,
    /// A fetch or status for the rollouts.
    ota: Option<protocol::ota::OtaMessage>,
}

/// Receipts not yet sent, by (site, gateway).
type Receipts = HashMap<(String, String), Vec<String>>;

/// Runs until `shutdown` is cancelled.
pub async fn run(
    settings: IngestSettings,
    ledger: Ledger,
    stats: Arc<IngestStats>,
    shutdown: CancellationToken,
) {
    let mut options = MqttOptions::new(&settings.client_id, &settings.host, settings.port);
    options
        .set_keep_alive(settings.keep_alive)
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(MAX_INCOMING_PACKET_BYTES, MAX_INCOMING_PACKET_BYTES);
    // Acknowledgements must never be lost: a broker stops sending once its
    // inflight window is full of messages the hub has not acknowledged. So
    // the worker waits for room in rumqttc's request queue to ack. The
    // network task, which drains that queue, must then never wait for the
    // worker: it hands messages over on an unbounded channel, whose length
    // the broker's inflight window bounds (a message it sent is only
    // acknowledged after the worker took it). Measured: with a bounded
    // channel both waited on each other after a backlog of ~1000 events.
    let (client, eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let liveness = settings.liveness;
    let network = tokio::spawn(poll_network(eventloop, tx, settings, stats.clone()));
    let mut rebirth_asked: HashMap<(String, String), Instant> = HashMap::new();
    let mut receipts = Receipts::new();
    // A quarter of the silence limit, between 1 and 15 s.
    let sweep_every =
        (liveness.offline_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(15));
    let mut sweep = tokio::time::interval(sweep_every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ota = OtaDispatcher::default();
    let mut rollout_tick = tokio::time::interval(ROLLOUT_TICK);
    rollout_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let inbound = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = sweep.tick() => {
                let l = ledger.clone();
                match tokio::task::spawn_blocking(move || l.sweep_liveness(now_ms(), &liveness)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!("liveness sweep failed: {e}"),
                    Err(e) => tracing::error!("liveness sweep panicked: {e}"),
                }
                continue;
            }
            _ = rollout_tick.tick() => {
                ota.tick(&ledger, &client).await;
                continue;
            }
            inbound = rx.recv() => match inbound {
                Some(i) => i,
                None => break,
            },
        };
        match inbound {
            Inbound::Connected => {
                let filter = protocol::Topic::subscription_filter();
                if let Err(e) = client.try_subscribe(&filter, QoS::AtLeastOnce) {
                    tracing::error!("cannot subscribe to {filter}: {e}");
                }
                let topic = command::broadcast_topic(Command::Rebirth);
                request_rebirth(&client, topic, "hub connected to the broker");
            }
            Inbound::Publish(publish) => {
                // Storing ends in an fsync: keep it off the async workers.
                let (l, st) = (ledger.clone(), stats.clone());
                let Ok((handled, publish)) = tokio::task::spawn_blocking(move || {
                    let handled = handle(&l, &st, &publish);
                    (handled, publish)
                })
                .await
                else {
                    tracing::error!("message handling panicked; not acknowledging it");
                    continue;
                };
                if handled.ack
                    && let Err(e) = client.ack(&publish).await
                {
                    // The client is gone (shutting down): unacknowledged, it
                    // comes again after a restart and deduplication absorbs it.
                    tracing::warn!("cannot queue the acknowledgement: {e}");
                }
                if let Some(m) = handled.ota {
                    ota.on_message(&ledger, &client, m).await;
                }
                if let Some((site, gateway, id)) = handled.receipt {
                    let batch = receipts.entry((site, gateway)).or_default();
                    batch.push(id);
                    if batch.len() >= protocol::MAX_RECEIPT_IDS {
                        send_receipts(&client, &mut receipts).await;
                    }
                }
                if let Some(origin) = handled.unknown_gateway {
                    let due = rebirth_asked
                        .get(&origin)
                        .is_none_or(|t| t.elapsed() >= REBIRTH_INTERVAL);
                    if due
                        && let Ok(topic) =
                            command::gateway_topic(&origin.0, &origin.1, Command::Rebirth)
                    {
                        tracing::info!(site = %origin.0, gateway = %origin.1, "no birth known for this gateway; asking for one");
                        request_rebirth(&client, topic, "hub has no birth for this gateway");
                        rebirth_asked.insert(origin, Instant::now());
                    }
                }
            }
        }
        // Nothing more waiting: confirm what was stored.
        if !receipts.is_empty() && rx.is_empty() {
            send_receipts(&client, &mut receipts).await;
        }
    }
    let _ = client.disconnect().await;
    let mut network = network;
    if tokio::time::timeout(Duration::from_secs(2), &mut network)
        .await
        .is_err()
    {
        // Still trying to reach a broker that is gone: stop trying.
        network.abort();
    }
}

/// Publishes the pending receipts, one message per gateway.
async fn send_receipts(client: &AsyncClient, receipts: &mut Receipts) {
    for ((site, gateway), event_ids) in receipts.drain() {
        let Ok(topic) = command::gateway_topic(&site, &gateway, Command::Receipt) else {
            continue;
        };
        let n = event_ids.len();
        let payload =
            serde_json::to_vec(&protocol::Receipt { event_ids }).expect("a receipt serialises");
        // At most once: a receipt must never hold up acknowledgements (a
        // QoS 1 one would take a slot of the client's inflight window, and
        // a full window stops the acknowledgements queued behind it). A
        // lost receipt costs a resend that is recognised and confirmed.
        if let Err(e) = client.publish(topic, QoS::AtMostOnce, false, payload).await {
            // The gateway sends those events again later; they are
            // recognised and confirmed then.
            tracing::warn!(%site, %gateway, "cannot queue a receipt for {n} event(s): {e}");
        }
    }
}

fn request_rebirth(client: &AsyncClient, topic: String, reason: &str) {
    let request = RebirthRequest {
        ts_ms: now_ms(),
        reason: reason.to_owned(),
    };
    let payload = serde_json::to_vec(&request).expect("a rebirth request serialises");
    if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
        tracing::warn!("cannot request a rebirth: {e}");
    }
}

/// Validates and stores one message.
fn handle(ledger: &Ledger, stats: &IngestStats, publish: &Publish) -> Handled {
    stats.received.fetch_add(1, Relaxed);
    let message = match protocol::decode(&publish.topic, &publish.payload) {
        Ok((_, m)) => m,
        Err(e) => {
            stats.malformed.fetch_add(1, Relaxed);
            tracing::warn!(topic = %publish.topic, bytes = publish.payload.len(), "dropped malformed message: {e}");
            return Handled {
                ack: true,
                unknown_gateway: None,
                receipt: None,
                ota: None,
            };
        }
    };
    let ack = match ledger.apply(&message, now_ms()) {
        Ok(Applied::Stored) => {
            stats.stored.fetch_add(1, Relaxed);
            true
        }
        Ok(Applied::Duplicate) => {
            stats.duplicates.fetch_add(1, Relaxed);
            tracing::debug!(topic = %publish.topic, "duplicate event ignored");
            true
        }
        Err(e) => {
            // Not acknowledged: the broker redelivers it after a reconnect.
            stats.store_failures.fetch_add(1, Relaxed);
            tracing::error!(topic = %publish.topic, "could not store message, not acknowledging it: {e}");
            false
        }
    };
    let (site, gateway) = message.origin();
    let needs_birth = matches!(message, Message::Heartbeat(_) | Message::Event(_))
        && !ledger.knows_gateway(site, gateway);
    let receipt = match &message {
        Message::Event(e) if ack => Some((site.to_owned(), gateway.to_owned(), e.event_id.clone())),
        _ => None,
    };
    let unknown_gateway = needs_birth.then(|| (site.to_owned(), gateway.to_owned()));
    let ota = match message {
        Message::Ota(m) => Some(m),
        _ => None,
    };
    Handled {
        ack,
        unknown_gateway,
        receipt,
        ota,
    }
}

async fn poll_network(
    mut eventloop: rumqttc::EventLoop,
    inbound: mpsc::UnboundedSender<Inbound>,
    settings: IngestSettings,
    stats: Arc<IngestStats>,
) {
    let broker = format!("{}:{}", settings.host, settings.port);
    let mut delay = Duration::from_millis(250);
    loop {
        let next = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                tracing::info!(%broker, session_present = ack.session_present, "hub connected to broker");
                stats.connected.store(1, Relaxed);
                delay = Duration::from_millis(250);
                Some(Inbound::Connected)
            }
            Ok(Event::Incoming(Packet::Publish(p))) => Some(Inbound::Publish(p)),
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => None,
            Err(ConnectionError::RequestsDone) => return,
            Err(e) => {
                stats.connected.store(0, Relaxed);
                let wait = jittered(delay);
                tracing::warn!(%broker, "hub MQTT connection failed: {e}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(Duration::from_secs(10));
                None
            }
        };
        if let Some(i) = next
            && inbound.send(i).is_err()
        {
            return;
        }
    }
}

/// `delay` +/-20 %, from the clock's nanoseconds: enough to keep hubs (and
/// their broker) from retrying in lockstep.
fn jittered(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    delay.mul_f64(0.8 + 0.4 * (nanos % 1000) as f64 / 1000.0)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
