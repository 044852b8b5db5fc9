//! Frames from a sensor node, over a serial line or a TCP or Unix stream.
//!
//! A node (see the `firmware` crate) streams COBS-framed, CRC-checked
//! frames: one channel's samples in raw counts with their scale, a
//! per-channel sequence number and the node's clock. This source connects
//! (and reconnects, with backoff) to the node's link, decodes the byte
//! stream with the firmware's own decoder, and hands the frames to a
//! [`FrameAssembler`] (units, clock mapping, sequence gaps: see
//! `frames.rs`). Damaged frames (garbage, CRC) are counted and skipped; the
//! decoder resynchronises at the next frame delimiter.
//!
//! While the link is down or quiet, `poll` answers `Idle` within a fraction
//! of a second, so the acquisition lane can report the silence.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use firmware::codec::FrameDecoder;
use serde::Deserialize;

use super::frames::{FrameAssembler, FrameSelection, LinkCounters};
use super::{Pacing, Source, SourceError, SourcePoll};

/// How long one read waits before `poll` answers `Idle`.
const READ_TIMEOUT: Duration = Duration::from_millis(200);

/// `[assets.source]` with `type = "node"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeLinkConfig {
    /// `tcp://host:port`, `unix:///path/to/socket` or `serial:///dev/ttyUSB0`.
    pub connect: String,
    /// Serial line speed (serial links only).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// The node whose frames are used (others on the link are ignored).
    pub node_id: u16,
    /// The accelerometer axis analysed (the node's channel id; 2 = Z).
    #[serde(default = "default_vibration_channel")]
    pub vibration_channel_id: u8,
    #[serde(default = "default_temperature_channel")]
    pub temperature_channel_id: u8,
    /// Vibration sample rate the node is configured for; frames at another
    /// rate are refused (the feature plans are sized for this one).
    pub sample_rate_hz: f64,
}

fn default_baud() -> u32 {
    921_600
}
fn default_vibration_channel() -> u8 {
    firmware::sensor::channel::ACCEL_Z
}
fn default_temperature_channel() -> u8 {
    firmware::sensor::channel::TEMPERATURE
}

/// Where the node link is.
#[derive(Debug, Clone, PartialEq)]
enum Endpoint {
    Tcp(String),
    Unix(String),
    Serial(String),
}

impl NodeLinkConfig {
    fn endpoint(&self) -> Result<Endpoint, String> {
        let (scheme, rest) = self.connect.split_once("://").ok_or_else(|| {
            format!(
                "source.connect = `{}` needs a scheme: tcp://, unix:// or serial://",
                self.connect
            )
        })?;
        if rest.is_empty() {
            return Err(format!(
                "source.connect = `{}` has no address",
                self.connect
            ));
        }
        match scheme {
            "tcp" => Ok(Endpoint::Tcp(rest.to_owned())),
            "unix" => Ok(Endpoint::Unix(rest.to_owned())),
            "serial" => Ok(Endpoint::Serial(rest.to_owned())),
            other => Err(format!(
                "source.connect scheme `{other}` is not one of tcp, unix, serial"
            )),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        self.endpoint()?;
        super::check_sample_rate(self.sample_rate_hz)?;
        if self.vibration_channel_id == self.temperature_channel_id {
            return Err(
                "source.vibration_channel_id and temperature_channel_id must differ".into(),
            );
        }
        Ok(())
    }
}

pub struct NodeLink {
    config: NodeLinkConfig,
    endpoint: Endpoint,
    stream: Option<Box<dyn Read + Send>>,
    next_attempt: Instant,
    backoff: Duration,
    decoder: FrameDecoder,
    frames: FrameAssembler,
}

impl NodeLink {
    pub fn open(config: &NodeLinkConfig) -> Result<Self, SourceError> {
        let endpoint = config
            .endpoint()
            .map_err(|message| SourceError::Recording {
                path: config.connect.clone(),
                message,
            })?;
        Ok(NodeLink {
            config: config.clone(),
            endpoint,
            stream: None,
            next_attempt: Instant::now(),
            backoff: Duration::from_millis(100),
            decoder: FrameDecoder::new(),
            frames: FrameAssembler::new(FrameSelection {
                node_id: config.node_id,
                vibration_channel_id: config.vibration_channel_id,
                temperature_channel_id: config.temperature_channel_id,
                sample_rate_hz: config.sample_rate_hz,
            }),
        })
    }

    pub fn counters(&self) -> LinkCounters {
        self.frames.counters
    }

    fn connect(&self) -> std::io::Result<Box<dyn Read + Send>> {
        match &self.endpoint {
            Endpoint::Tcp(addr) => {
                let addr = addr
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| std::io::Error::other("no address"))?;
                let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                s.set_read_timeout(Some(READ_TIMEOUT))?;
                Ok(Box::new(s))
            }
            Endpoint::Unix(path) => {
                let s = UnixStream::connect(path)?;
                s.set_read_timeout(Some(READ_TIMEOUT))?;
                Ok(Box::new(s))
            }
            Endpoint::Serial(path) => {
                let port = serialport::new(path, self.config.baud)
                    .timeout(READ_TIMEOUT)
                    .open()
                    .map_err(std::io::Error::other)?;
                Ok(Box::new(port))
            }
        }
    }

    /// Drops the connection; the next poll reconnects after a backoff.
    fn disconnect(&mut self, why: &str) {
        tracing::warn!(link = %self.config.connect, "node link lost: {why}; reconnecting in {:?}", self.backoff);
        self.stream = None;
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(10));
        // A new connection may come from a rebooted node: new clock, new
        // sequence numbers, and a partial frame in the decoder is garbage.
        self.frames.restart();
        self.decoder = FrameDecoder::new();
    }
}

impl Source for NodeLink {
    fn sample_rate_hz(&self) -> f64 {
        self.config.sample_rate_hz
    }

    fn pacing(&self) -> Pacing {
        // Frames arrive at the node's pace: a live source.
        Pacing::Live {
            speed: f64::INFINITY,
        }
    }

    fn frame_errors(&self) -> u64 {
        self.frames.counters.frame_errors
    }

    fn sequence_gaps(&self) -> u64 {
        self.frames.counters.sequence_gaps
    }

    fn poll(&mut self) -> Result<SourcePoll, SourceError> {
        if let Some(block) = self.frames.next_block() {
            return Ok(SourcePoll::Block(block));
        }
        if self.stream.is_none() {
            if Instant::now() < self.next_attempt {
                std::thread::sleep(READ_TIMEOUT.min(self.next_attempt - Instant::now()));
                return Ok(SourcePoll::Idle);
            }
            match self.connect() {
                Ok(s) => {
                    tracing::info!(link = %self.config.connect, "node link connected");
                    self.frames.counters.reconnects += 1;
                    self.backoff = Duration::from_millis(100);
                    self.stream = Some(s);
                }
                Err(e) => {
                    self.disconnect(&e.to_string());
                    return Ok(SourcePoll::Idle);
                }
            }
        }
        let mut buf = [0u8; 4096];
        let read = self.stream.as_mut().map(|s| s.read(&mut buf));
        match read {
            Some(Ok(0)) => self.disconnect("closed by the node"),
            Some(Ok(n)) => {
                for result in self.decoder.feed(&buf[..n]) {
                    match result {
                        Ok(frame) => self.frames.accept(frame),
                        Err(e) => {
                            self.frames.damaged();
                            tracing::debug!(link = %self.config.connect, "damaged frame skipped: {e}");
                        }
                    }
                }
            }
            Some(Err(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Some(Err(e)) => self.disconnect(&e.to_string()),
            None => {}
        }
        Ok(match self.frames.next_block() {
            Some(block) => SourcePoll::Block(block),
            None => SourcePoll::Idle,
        })
    }
}

#[cfg(test)]
#[path = "node_link_tests.rs"]
mod tests;
