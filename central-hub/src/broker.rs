//! The embedded MQTT broker: rumqttd started in-process.
//!
//! The demo and the tests need a broker without installing one; production
//! points agents and hub at a real broker (Mosquitto, EMQX, ...) instead.
//! rumqttd's `Broker::start` blocks forever and has no shutdown call, so it
//! runs on a thread of its own that ends with the process. It keeps messages
//! in memory only.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};
use thiserror::Error;

/// Largest MQTT payload the embedded broker accepts (protocol messages are
/// at most 64 KiB).
const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("embedded broker: no free port on {host}: {source}")]
    NoPort {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("embedded broker cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("embedded broker did not start on {addr} within {timeout:?}: {reason}")]
    NotListening {
        addr: SocketAddr,
        timeout: Duration,
        reason: String,
    },
}

/// A running embedded broker.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedBroker {
    pub addr: SocketAddr,
}

/// Asks the OS for a free TCP port on `host` (there is a small race until
/// the port is bound again, acceptable on loopback).
pub fn free_port(host: &str) -> std::io::Result<u16> {
    Ok(TcpListener::bind((host, 0))?.local_addr()?.port())
}

/// Starts rumqttd listening on `addr` (port 0: a free port on its host) and
/// waits until it accepts connections.
pub fn start(addr: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
    let mut addr = addr;
    if addr.port() == 0 {
        let host = addr.ip().to_string();
        let port = free_port(&host).map_err(|source| BrokerError::NoPort { host, source })?;
        addr.set_port(port);
    }
    // Fail early and clearly if the address is taken: otherwise the wait
    // below could mistake another server for ours.
    drop(TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?);
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_000,
            max_outgoing_packet_count: 200,
            max_segment_size: 16 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([(
            "v4".to_owned(),
            ServerSettings {
                name: "v4".to_owned(),
                listen: addr,
                tls: None,
                next_connection_delay_ms: 1,
                connections: ConnectionSettings {
                    connection_timeout_ms: 60_000,
                    max_payload_size: MAX_PAYLOAD_BYTES,
                    max_inflight_count: 100,
                    auth: None,
                    external_auth: None,
                    dynamic_filters: true,
                },
            },
        )])),
        ..Config::default()
    };
    let thread = std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!("embedded broker stopped: {e}");
            }
        })
        .expect("spawning a thread");

    let timeout = Duration::from_secs(5);
    let deadline = Instant::now() + timeout;
    loop {
        if answers_mqtt(addr) {
            tracing::info!(%addr, "embedded MQTT broker listening");
            return Ok(EmbeddedBroker { addr });
        }
        if thread.is_finished() || Instant::now() >= deadline {
            return Err(BrokerError::NotListening {
                addr,
                timeout,
                reason: if thread.is_finished() {
                    "the broker thread ended (is the port in use?)".into()
                } else {
                    "no answer".into()
                },
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether an MQTT 3.1.1 broker at `addr` accepts a connection: sends
/// CONNECT, expects CONNACK "accepted", then sends DISCONNECT. (A bare TCP
/// probe would make the broker log an aborted connection.)
pub fn answers_mqtt(addr: SocketAddr) -> bool {
    const CLIENT_ID: &[u8] = b"pdm-readiness-probe";
    let mut connect = vec![0x10, (10 + 2 + CLIENT_ID.len()) as u8];
    connect.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10]);
    connect.extend_from_slice(&[0, CLIENT_ID.len() as u8]);
    connect.extend_from_slice(CLIENT_ID);
    let probe = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        stream.write_all(&connect)?;
        let mut connack = [0u8; 4];
        stream.read_exact(&mut connack)?;
        let accepted = connack == [0x20, 0x02, 0x00, 0x00];
        stream.write_all(&[0xE0, 0x00])?;
        Ok(accepted)
    };
    probe().unwrap_or(false)
}
