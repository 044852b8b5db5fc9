//! The gateway's MQTT session: birth on every connection, then whatever the
//! lanes hand over, then a death on the way out.
//!
//! Two tasks: the network task polls rumqttc's event loop (which is what
//! actually connects, reconnects and moves bytes) and reports each CONNACK
//! and each command from the hub; the publisher task subscribes to the
//! gateway's command topics and publishes the birth after each CONNACK, the
//! birth again when the hub asks for it (a rebirth request), and every
//! message from the outgoing channel. Keeping them apart matters: a publish
//! waits for room in rumqttc's request queue, which only the polling task
//! frees. Reconnection uses exponential backoff with jitter so that a
//! thousand gateways do not reconnect in lockstep after a broker restart.
//! The broker holds a last-will death message and publishes it if the
//! connection is lost without a goodbye.
//!
//! The session is persistent (clean session off), so rumqttc resends
//! unacknowledged publishes after a reconnect. Shutdown waits at most
//! [`DRAIN_TIMEOUT`] for an unreachable broker, then leaves.
//!
//! Not yet here: a durable outbox. A message handed to rumqttc lives in
//! memory only until the broker's PUBACK, and is lost if the agent stops
//! first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use protocol::{Birth, Command, Death, DeathReason, Message, RebirthRequest, command, encode};
use rumqttc::{AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::telemetry::Counters;

/// Where and who to connect as.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub keep_alive: Duration,
}

/// How long a shutdown may wait for the broker to take what is queued.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the goodbye (death message, DISCONNECT) may take.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);
/// Rebirth requests closer together than this are answered once.
const MIN_REBIRTH_INTERVAL: Duration = Duration::from_secs(1);

/// What the network task reports to the publisher.
enum LinkEvent {
    Connected,
    Command(Command),
}

/// The moment a shutdown stops waiting for the broker: [`DRAIN_TIMEOUT`]
/// after shutdown was requested.
struct DrainDeadline {
    shutdown: CancellationToken,
    at: OnceLock<Instant>,
}

impl DrainDeadline {
    async fn passed(&self) {
        self.shutdown.cancelled().await;
        let at = *self.at.get_or_init(|| Instant::now() + DRAIN_TIMEOUT);
        tokio::time::sleep_until(at).await;
    }
}

/// Runs the session until `outgoing` is closed (or, after `shutdown`, until
/// the drain deadline), then says goodbye and disconnects.
pub async fn run(
    settings: LinkSettings,
    birth: Birth,
    mut outgoing: mpsc::Receiver<Message>,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) {
    let (site, gateway) = (birth.site.clone(), birth.gateway.clone());
    let will = encode(&Message::Death(Death {
        site: site.clone(),
        gateway: gateway.clone(),
        ts_ms: now_ms(),
        reason: DeathReason::ConnectionLost,
    }))
    .expect("ids were validated with the config");
    let mut options = MqttOptions::new(&settings.client_id, &settings.host, settings.port);
    options
        .set_keep_alive(settings.keep_alive)
        // A persistent session: after a reconnect the broker still knows
        // this gateway, and rumqttc resends the publishes it had not seen
        // acknowledged (with a clean session it would drop them).
        .set_clean_session(false)
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
    let (client, eventloop) = AsyncClient::new(options, 64);
    let (events_tx, mut events_rx) = mpsc::channel::<LinkEvent>(16);
    let connected = Arc::new(AtomicBool::new(false));
    let network = tokio::spawn(poll_network(
        eventloop,
        events_tx,
        connected.clone(),
        settings.clone(),
    ));
    let deadline = DrainDeadline {
        shutdown,
        at: OnceLock::new(),
    };

    let mut last_birth: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = deadline.passed() => {
                tracing::warn!("broker unreachable at shutdown; giving up on what is still queued");
                break;
            }
            Some(event) = events_rx.recv() => {
                if let LinkEvent::Connected = event {
                    for filter in command::gateway_filters(&site, &gateway) {
                        if let Err(e) = client.subscribe(&filter, QoS::AtLeastOnce).await {
                            tracing::warn!("cannot subscribe to {filter}: {e}");
                        }
                    }
                } else if last_birth.is_some_and(|t| t.elapsed() < MIN_REBIRTH_INTERVAL) {
                    continue;
                }
                let mut b = birth.clone();
                b.ts_ms = now_ms();
                publish(&client, &Message::Birth(b), &counters, &deadline).await;
                last_birth = Some(Instant::now());
            }
            message = outgoing.recv() => match message {
                Some(m) => publish(&client, &m, &counters, &deadline).await,
                None => break,
            },
        }
    }
    let mut unsent = 0;
    while let Ok(m) = outgoing.try_recv() {
        if matches!(m, Message::Event(_)) {
            unsent += 1;
            counters.add_publish_failure();
        }
    }
    if unsent > 0 {
        tracing::error!("{unsent} event(s) not sent before shutdown (no durable outbox yet)");
    }

    let mut network = network;
    if connected.load(Ordering::Relaxed) {
        let goodbye = async {
            let death = Message::Death(Death {
                site,
                gateway,
                ts_ms: now_ms(),
                reason: DeathReason::Shutdown,
            });
            let envelope = encode(&death).expect("a death message is valid");
            let _ = client
                .publish(envelope.topic, QoS::AtLeastOnce, false, envelope.payload)
                .await;
            let _ = client.disconnect().await;
            let _ = (&mut network).await;
        };
        if tokio::time::timeout(GOODBYE_TIMEOUT, goodbye)
            .await
            .is_err()
        {
            tracing::warn!("broker did not take the goodbye within {GOODBYE_TIMEOUT:?}");
        }
    }
    // Still reconnecting to a broker that is gone: stop trying.
    network.abort();
}

/// Publishes one message. Heartbeats never wait for room in rumqttc's
/// queue (a stale heartbeat is worthless); other messages wait, but not
/// past the shutdown's drain deadline.
async fn publish(
    client: &AsyncClient,
    message: &Message,
    counters: &Counters,
    deadline: &DrainDeadline,
) {
    let is_event = matches!(message, Message::Event(_));
    let envelope = match encode(message) {
        Ok(e) => e,
        Err(e) => {
            // A bug, not a field condition: never publish what a hub refuses.
            tracing::error!("refusing to publish an invalid message: {e}");
            counters.add_publish_failure();
            return;
        }
    };
    if let Message::Heartbeat(_) = message {
        if client
            .try_publish(envelope.topic, QoS::AtLeastOnce, false, envelope.payload)
            .is_err()
        {
            tracing::debug!("MQTT queue full (broker unreachable?); heartbeat skipped");
        }
        return;
    }
    let sent = tokio::select! {
        r = client.publish(envelope.topic, QoS::AtLeastOnce, false, envelope.payload) => r,
        _ = deadline.passed() => {
            counters.add_publish_failure();
            return;
        }
    };
    match sent {
        Ok(()) if is_event => counters.add_event_published(),
        Ok(()) => {}
        Err(e) => {
            tracing::warn!("MQTT client refused a publish: {e}");
            counters.add_publish_failure();
        }
    }
}

async fn poll_network(
    mut eventloop: rumqttc::EventLoop,
    events: mpsc::Sender<LinkEvent>,
    connected: Arc<AtomicBool>,
    settings: LinkSettings,
) {
    let mut backoff = Backoff::default();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!(
                    broker = %format!("{}:{}", settings.host, settings.port),
                    client_id = %settings.client_id,
                    "connected to broker"
                );
                backoff.reset();
                connected.store(true, Ordering::Relaxed);
                // Never block here: the publisher may be waiting for this task
                // to drain rumqttc's queue. A full channel already holds a birth.
                let _ = events.try_send(LinkEvent::Connected);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => match command::parse(&p.topic) {
                Ok(cmd) => {
                    let reason = serde_json::from_slice::<RebirthRequest>(&p.payload)
                        .map(|r| r.reason)
                        .unwrap_or_else(|_| "no readable reason".into());
                    tracing::info!(command = cmd.as_str(), %reason, "command from the hub");
                    let _ = events.try_send(LinkEvent::Command(cmd));
                }
                Err(e) => {
                    tracing::warn!(topic = %p.topic, "ignored message on a command topic: {e}")
                }
            },
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => return,
            Err(e) => {
                connected.store(false, Ordering::Relaxed);
                let delay = backoff.next_delay();
                tracing::warn!(
                    broker = %format!("{}:{}", settings.host, settings.port),
                    "MQTT connection failed: {e}; retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Exponential backoff from 0.5 s to 30 s with +/-20 % jitter.
#[derive(Debug, Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next_delay(&mut self) -> Duration {
        let base = (0.5 * 2f64.powi(self.attempt.min(6) as i32)).min(30.0);
        self.attempt += 1;
        // Jitter from the clock's nanoseconds: good enough to de-synchronise
        // a fleet, and needs no RNG state.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = 0.8 + 0.4 * (nanos % 1000) as f64 / 1000.0;
        Duration::from_secs_f64(base * jitter)
    }
}

fn now_ms() -> u64 {
    crate::source::now_us() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_resets() {
        let mut b = Backoff::default();
        let first = b.next_delay();
        assert!((0.4..=0.6).contains(&first.as_secs_f64()), "{first:?}");
        let mut last = first;
        for _ in 0..20 {
            last = b.next_delay();
        }
        assert!((24.0..=36.0).contains(&last.as_secs_f64()), "{last:?}");
        b.reset();
        assert!(b.next_delay() < Duration::from_secs(1));
    }
}
