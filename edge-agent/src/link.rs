//! The gateway's MQTT session: birth on every connection, then the outbox's
//! records, then a death on the way out.
//!
//! Every record the hub must get is already on disk in the [`Outbox`]; the
//! link publishes it and reports the broker's PUBACK to the outbox, which
//! then deletes a heartbeat; an event stays until the hub's receipt names
//! it. So the link never needs rumqttc's in-memory session state: each
//! connection is a fresh rumqttc client whose requests map one to one, in
//! order, onto its `Outgoing::Publish(pkid)` events, and from a packet id to
//! its record. Each connection starts from the oldest record kept, so what
//! a lost connection (or a restarted broker) swallowed is sent again, and
//! so is everything unconfirmed when the hub announces itself (its rebirth
//! request) or when an event's receipt is overdue ([`RECEIPT_PATIENCE`]
//! after the broker took it, doubling up to half an hour while none come). The hub deduplicates by event id. At most
//! [`WINDOW`] records are in flight.
//!
//! Two tasks per connection: the network task polls rumqttc's event loop
//! (which connects and moves bytes) and reports each CONNACK, PUBACK and
//! hub command; the publisher (this module's [`run`]) subscribes to the
//! gateway's command topics and publishes the birth after each CONNACK and
//! when the hub asks for it, then the outbox's records. Keeping them apart
//! matters: a publish waits for room in rumqttc's request queue, which only
//! the polling task frees. Reconnection uses exponential backoff with jitter
//! so that a thousand gateways do not reconnect in lockstep after a broker
//! restart. The broker holds a last-will death message and publishes it if
//! the connection is lost without a goodbye. The MQTT session is persistent
//! (clean session off), so commands the hub sent while the gateway was
//! away are delivered when it is back.
//!
//! Shutdown waits at most `mqtt.drain_timeout_s` (5 s) for the outbox to
//! empty; what is left stays on disk and is sent after the next start.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use protocol::{
    Birth, Command, Death, DeathReason, Message, RebirthRequest, Receipt, command, encode,
};
use rumqttc::{AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::model_manager::ManagerInput;
use crate::outbox::{Class, Cursor, Outbox};

mod backoff;
use crate::telemetry::Counters;
use backoff::Backoff;

/// Where and who to connect as.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub keep_alive: Duration,
    /// How long a shutdown may wait for the outbox to empty.
    pub drain_timeout: Duration,
    /// Where model commands from the hub go (the model manager), if the
    /// gateway takes models over the air.
    pub model_commands: Option<mpsc::UnboundedSender<ManagerInput>>,
}

/// How long the goodbye (death message, DISCONNECT) may take.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);
/// Rebirth requests closer together than this are answered once.
const MIN_REBIRTH_INTERVAL: Duration = Duration::from_secs(1);
/// Outbox records published and not yet acknowledged, at most.
pub const WINDOW: usize = 32;
/// How long events may await the hub's receipt before they are sent again
/// (then twice as long, up to [`MAX_RECEIPT_PATIENCE`]).
pub const RECEIPT_PATIENCE: Duration = Duration::from_secs(60);
const MAX_RECEIPT_PATIENCE: Duration = Duration::from_secs(1800);

/// What the network task reports to the publisher.
enum LinkEvent {
    Connected {
        session_present: bool,
    },
    /// The hub asked for the birth (and is there to receive events).
    Rebirth,
}

/// Why a connection ended.
enum SessionEnd {
    /// Said goodbye (or gave up at the drain deadline): stop.
    Done,
    /// Lost or never made: try again after a backoff.
    Lost(String),
}

/// The moment a shutdown stops waiting for the broker: the drain timeout
/// after `finish` was cancelled.
struct DrainDeadline {
    finish: CancellationToken,
    timeout: Duration,
    at: OnceLock<Instant>,
}

impl DrainDeadline {
    async fn passed(&self) {
        self.finish.cancelled().await;
        let at = *self.at.get_or_init(|| Instant::now() + self.timeout);
        tokio::time::sleep_until(at).await;
    }

    fn finishing(&self) -> bool {
        self.finish.is_cancelled()
    }
}

/// A publish handed to one connection's rumqttc client: an outbox record
/// (and whether it is an event), or `None` for a birth or death.
type Handed = Option<(u64, bool)>;

/// Maps one connection's packet ids to outbox records. rumqttc takes
/// requests in order and reports each publish's packet id as it sends it,
/// so the n-th `Outgoing::Publish` is the n-th publish handed over.
#[derive(Debug, Default)]
struct Tracker {
    handed: VecDeque<Handed>,
    in_flight: HashMap<u16, Handed>,
}

impl Tracker {
    fn sent(&mut self, pkid: u16) {
        if self.in_flight.contains_key(&pkid) {
            return; // a resend of the same packet
        }
        if let Some(h) = self.handed.pop_front() {
            self.in_flight.insert(pkid, h);
        }
    }

    fn acknowledged(&mut self, pkid: u16) -> Handed {
        self.in_flight.remove(&pkid).flatten()
    }

    fn outstanding(&self) -> usize {
        self.handed.len() + self.in_flight.len()
    }
}

type SharedTracker = Arc<Mutex<Tracker>>;

fn lock(t: &SharedTracker) -> std::sync::MutexGuard<'_, Tracker> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the link until `finish` is cancelled and the outbox is empty (or
/// the drain timeout later), then says goodbye and disconnects.
pub async fn run(
    settings: LinkSettings,
    birth: Birth,
    outbox: Arc<Outbox>,
    counters: Arc<Counters>,
    finish: CancellationToken,
) {
    let deadline = DrainDeadline {
        finish,
        timeout: settings.drain_timeout,
        at: OnceLock::new(),
    };
    let (acks_tx, acks_rx) = mpsc::unbounded_channel();
    let acker = tokio::spawn(settle(outbox.clone(), acks_rx));
    let mut backoff = Backoff::default();
    let link = Link {
        settings: &settings,
        birth: &birth,
        outbox: &outbox,
        counters: &counters,
        deadline: &deadline,
        acks: &acks_tx,
    };
    loop {
        match link.session(&mut backoff).await {
            SessionEnd::Done => break,
            SessionEnd::Lost(reason) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    broker = %format!("{}:{}", settings.host, settings.port),
                    "MQTT connection failed: {reason}; retrying in {delay:?}"
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = deadline.passed() => {
                        tracing::warn!("broker unreachable at shutdown; what is kept stays in the outbox");
                        break;
                    }
                }
            }
        }
    }
    drop(acks_tx);
    let _ = acker.await;
    let (events, all) = outbox.depth();
    if all > 0 {
        tracing::warn!(
            records = all,
            events,
            "records stay in the outbox and are sent after the next start"
        );
    }
}

/// What the broker or the hub said about records.
enum Settled {
    /// The broker's PUBACK for this record.
    Acknowledged(u64),
    /// The hub's receipt for these events.
    Receipt(Vec<String>),
}

/// Tells the outbox what was acknowledged and confirmed, in batches.
async fn settle(outbox: Arc<Outbox>, mut settled: mpsc::UnboundedReceiver<Settled>) {
    while let Some(first) = settled.recv().await {
        let (mut acked, mut confirmed) = (Vec::new(), Vec::new());
        let mut next = Some(first);
        while let Some(s) = next {
            match s {
                Settled::Acknowledged(seq) => acked.push(seq),
                Settled::Receipt(ids) => confirmed.extend(ids),
            }
            next = settled.try_recv().ok();
        }
        let outbox = outbox.clone();
        let done = tokio::task::spawn_blocking(move || {
            outbox.acknowledge(&acked)?;
            outbox.confirm(&confirmed)
        })
        .await;
        if let Ok(Err(e)) = done {
            // The records stay and are sent again later: duplicates the hub
            // absorbs, never a hole.
            tracing::warn!("cannot settle outbox records: {e}");
        }
    }
}

/// What every connection of the link shares.
struct Link<'a> {
    settings: &'a LinkSettings,
    birth: &'a Birth,
    outbox: &'a Arc<Outbox>,
    counters: &'a Arc<Counters>,
    deadline: &'a DrainDeadline,
    acks: &'a mpsc::UnboundedSender<Settled>,
}

impl Link<'_> {
    fn options(&self) -> MqttOptions {
        let s = self.settings;
        let will = encode(&Message::Death(Death {
            site: self.birth.site.clone(),
            gateway: self.birth.gateway.clone(),
            ts_ms: now_ms(),
            reason: DeathReason::ConnectionLost,
        }))
        .expect("ids were validated with the config");
        let mut options = MqttOptions::new(&s.client_id, &s.host, s.port);
        options
            .set_keep_alive(s.keep_alive)
            // A persistent session: the broker keeps this gateway's command
            // subscriptions, and what the hub sent meanwhile, across
            // reconnects.
            .set_clean_session(false)
            // Packet ids cycle through this many: far more than the window,
            // so one is rarely still in flight when it comes round again.
            .set_inflight(100)
            .set_max_packet_size(
                protocol::MAX_PAYLOAD_BYTES + 1024,
                protocol::MAX_PAYLOAD_BYTES + 1024,
            )
            .set_last_will(LastWill::new(
                will.topic,
                will.payload,
                QoS::AtLeastOnce,
                false,
            ));
        options
    }

    /// One connection, from connecting to its loss or the goodbye.
    async fn session(&self, backoff: &mut Backoff) -> SessionEnd {
        let (client, eventloop) = AsyncClient::new(self.options(), 16);
        let tracker = SharedTracker::default();
        let (events_tx, mut events_rx) = mpsc::channel::<LinkEvent>(16);
        let mut network = tokio::spawn(poll_network(
            eventloop,
            events_tx,
            tracker.clone(),
            self.acks.clone(),
            self.counters.clone(),
            self.settings.model_commands.clone(),
        ));
        let mut connected = false;
        let mut cursor = Cursor::default();
        let mut last_birth: Option<Instant> = None;
        let mut patience = RECEIPT_PATIENCE;
        let mut resend_at = Instant::now() + patience / 4;
        loop {
            if connected {
                while lock(&tracker).outstanding() < WINDOW {
                    let Some(record) = self.outbox.next(&mut cursor) else {
                        break;
                    };
                    let handed = Some((record.seq, record.class != Class::Telemetry));
                    let publish = (record.topic, record.payload);
                    if let Err(end) = self
                        .hand(&client, &tracker, handed, publish, &mut network)
                        .await
                    {
                        return end;
                    }
                }
                let drained = self.outbox.depth().1 == 0 && lock(&tracker).outstanding() == 0;
                if self.deadline.finishing() && drained {
                    return self.goodbye(&client, &tracker, network).await;
                }
            }
            tokio::select! {
                end = &mut network => return ended(end),
                _ = tokio::time::sleep_until(resend_at) => {
                    match self.outbox.longest_unconfirmed() {
                        Some(waited) if waited >= patience => {
                            tracing::warn!(
                                events = self.outbox.counters().awaiting_receipt,
                                "events unconfirmed by the hub for {waited:?}; sending them again"
                            );
                            cursor = Cursor::default();
                            patience = (patience * 2).min(MAX_RECEIPT_PATIENCE);
                        }
                        Some(_) => {}
                        None => patience = RECEIPT_PATIENCE,
                    }
                    resend_at = Instant::now() + patience / 4;
                }
                Some(event) = events_rx.recv() => {
                    if let LinkEvent::Connected { session_present } = event {
                        tracing::info!(
                            broker = %format!("{}:{}", self.settings.host, self.settings.port),
                            client_id = %self.settings.client_id,
                            session_present,
                            records = self.outbox.depth().1,
                            "connected to broker"
                        );
                        backoff.reset();
                        connected = true;
                        for filter in command::gateway_filters(&self.birth.site, &self.birth.gateway) {
                            if let Err(e) = client.subscribe(&filter, QoS::AtLeastOnce).await {
                                tracing::warn!("cannot subscribe to {filter}: {e}");
                            }
                        }
                    } else {
                        // The hub is (back) here: whatever it has not
                        // confirmed, it may never have received.
                        cursor = Cursor::default();
                        if last_birth.is_some_and(|t| t.elapsed() < MIN_REBIRTH_INTERVAL) {
                            continue;
                        }
                    }
                    let mut b = self.birth.clone();
                    b.ts_ms = now_ms();
                    let birth = encode(&Message::Birth(b)).expect("a birth is valid");
                    let publish = (birth.topic, birth.payload);
                    if let Err(end) = self.hand(&client, &tracker, None, publish, &mut network).await {
                        return end;
                    }
                    last_birth = Some(Instant::now());
                }
                _ = self.outbox.changed() => {}
                _ = self.deadline.finish.cancelled(), if !self.deadline.finishing() => {}
                _ = self.deadline.passed() => {
                    tracing::warn!(
                        records = self.outbox.depth().1,
                        "outbox not drained before the shutdown deadline"
                    );
                    if connected {
                        return self.goodbye(&client, &tracker, network).await;
                    }
                    network.abort();
                    return SessionEnd::Done;
                }
            }
        }
    }

    /// Hands one publish to rumqttc, noting it in the tracker first (the
    /// network task matches it to its packet id).
    async fn hand(
        &self,
        client: &AsyncClient,
        tracker: &SharedTracker,
        handed: Handed,
        (topic, payload): (String, Vec<u8>),
        network: &mut JoinHandle<SessionEnd>,
    ) -> Result<(), SessionEnd> {
        lock(tracker).handed.push_back(handed);
        tokio::select! {
            r = client.publish(topic, QoS::AtLeastOnce, false, payload) => {
                r.map_err(|e| SessionEnd::Lost(format!("MQTT client refused a publish: {e}")))
            }
            end = network => Err(ended(end)),
        }
    }

    /// Publishes the death, disconnects and waits (briefly) for the broker.
    async fn goodbye(
        &self,
        client: &AsyncClient,
        tracker: &SharedTracker,
        mut network: JoinHandle<SessionEnd>,
    ) -> SessionEnd {
        let death = Message::Death(Death {
            site: self.birth.site.clone(),
            gateway: self.birth.gateway.clone(),
            ts_ms: now_ms(),
            reason: DeathReason::Shutdown,
        });
        let envelope = encode(&death).expect("a death message is valid");
        let bye = async {
            let publish = (envelope.topic, envelope.payload);
            if self
                .hand(client, tracker, None, publish, &mut network)
                .await
                .is_ok()
            {
                let _ = client.disconnect().await;
                let _ = (&mut network).await;
            }
        };
        if tokio::time::timeout(GOODBYE_TIMEOUT, bye).await.is_err() {
            tracing::warn!("broker did not take the goodbye within {GOODBYE_TIMEOUT:?}");
        }
        network.abort();
        SessionEnd::Done
    }
}

fn ended(end: Result<SessionEnd, tokio::task::JoinError>) -> SessionEnd {
    end.unwrap_or_else(|e| SessionEnd::Lost(format!("network task failed: {e}")))
}

async fn poll_network(
    mut eventloop: rumqttc::EventLoop,
    events: mpsc::Sender<LinkEvent>,
    tracker: SharedTracker,
    acks: mpsc::UnboundedSender<Settled>,
    counters: Arc<Counters>,
    models: Option<mpsc::UnboundedSender<ManagerInput>>,
) -> SessionEnd {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                // Never block here: the publisher may be waiting for this task
                // to drain rumqttc's queue.
                let _ = events.try_send(LinkEvent::Connected {
                    session_present: ack.session_present,
                });
                if let Some(m) = &models {
                    let _ = m.send(ManagerInput::Connected);
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => lock(&tracker).sent(pkid),
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some((seq, event)) = lock(&tracker).acknowledged(ack.pkid) {
                    if event {
                        counters.add_event_published();
                    }
                    let _ = acks.send(Settled::Acknowledged(seq));
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => match command::parse(&p.topic) {
                Ok(Command::Receipt) => match serde_json::from_slice::<Receipt>(&p.payload) {
                    Ok(r) => {
                        let _ = acks.send(Settled::Receipt(r.event_ids));
                    }
                    Err(e) => tracing::warn!(topic = %p.topic, "unreadable receipt ignored: {e}"),
                },
                Ok(Command::Rebirth) => {
                    let reason = serde_json::from_slice::<RebirthRequest>(&p.payload)
                        .map(|r| r.reason)
                        .unwrap_or_else(|_| "no readable reason".into());
                    tracing::info!(%reason, "rebirth requested by the hub");
                    let _ = events.try_send(LinkEvent::Rebirth);
                }
                Ok(c @ (Command::ModelOffer | Command::ModelChunk | Command::ModelRollback)) => {
                    match (&models, model_input(c, &p.payload)) {
                        (Some(m), Ok(input)) => {
                            let _ = m.send(input);
                        }
                        (None, _) => tracing::warn!(
                            command = c.as_str(),
                            "ignored: this gateway takes no models over the air ([models] trusted_keys is empty)"
                        ),
                        (_, Err(e)) => {
                            tracing::warn!(
                                command = c.as_str(),
                                "unreadable model command ignored: {e}"
                            )
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(topic = %p.topic, "ignored message on a command topic: {e}")
                }
            },
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return SessionEnd::Done,
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => return SessionEnd::Done,
            Err(e) => return SessionEnd::Lost(e.to_string()),
        }
    }
}

fn now_ms() -> u64 {
    crate::source::now_us() / 1000
}

/// A model command's payload, decoded.
fn model_input(c: Command, payload: &[u8]) -> Result<ManagerInput, serde_json::Error> {
    Ok(match c {
        Command::ModelOffer => ManagerInput::Offer(serde_json::from_slice(payload)?),
        Command::ModelChunk => ManagerInput::Chunk(serde_json::from_slice(payload)?),
        _ => ManagerInput::Rollback(serde_json::from_slice(payload)?),
    })
}
