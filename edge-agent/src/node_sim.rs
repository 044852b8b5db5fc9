//! `edge-agent node-sim`: a sensor node on a TCP port, without hardware.
//!
//! It runs the node's real sampling loop (`firmware::sampling::Sampler`)
//! over a simulated ADXL355 and TMP117 fed by the pump or bridge simulator,
//! and writes the frames, byte-stuffed as on the node's UART, to whoever is
//! connected. A gateway configured with `type = "node"` and
//! `connect = "tcp://..."` reads it like a serial-to-TCP bridge. Useful to
//! try the node link and, in the system tests, to exercise the whole chain
//! firmware loop -> frame codec -> node link -> pipeline -> hub.
//!
//! The simulated node keeps running whether or not a gateway is connected
//! (frames sent to nobody are dropped, as on a UART), and may run faster
//! than real time (`speed`), its clock included. Its FIFO is deeper than the
//! real part's, so a busy host does not make it overrun.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use firmware::sampling::{Sampler, SamplerConfig};
use firmware::sensor::FrameSink;
use protocol::AssetKind;

use crate::features::AssetAnalysis;
use crate::source::sim_sensors::simulated_sensors;
use crate::source::{FaultConfig, SimConfig, SourceConfig};

/// What to simulate and where to serve it.
#[derive(Debug, Clone)]
pub struct NodeSimOptions {
    pub listen: SocketAddr,
    pub kind: AssetKind,
    pub node_id: u16,
    pub seed: u64,
    pub sample_rate_hz: f64,
    /// Simulated seconds per wall-clock second.
    pub speed: f64,
    pub range_g: f64,
    pub fault: Option<FaultConfig>,
    /// Stop after this long (wall clock); `None`: run until killed.
    pub run_for: Option<Duration>,
}

/// The connected gateway, if any; frames sent to nobody are dropped.
struct TcpSink {
    listener: TcpListener,
    client: Option<TcpStream>,
}

impl TcpSink {
    fn accept_waiting(&mut self) {
        if let Ok((stream, peer)) = self.listener.accept() {
            eprintln!("node-sim: gateway connected from {peer}");
            let _ = stream.set_nodelay(true);
            // A new client replaces an old one, as a serial line would.
            self.client = Some(stream);
        }
    }
}

impl FrameSink for TcpSink {
    type Error = std::convert::Infallible;

    fn send(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        if let Some(client) = &mut self.client
            && client.write_all(bytes).is_err()
        {
            eprintln!("node-sim: gateway disconnected");
            self.client = None;
        }
        Ok(())
    }
}

/// Serves the simulated node until `run_for` has passed (or for ever).
pub fn serve(options: &NodeSimOptions) -> Result<()> {
    let source = SourceConfig::Sim(SimConfig {
        seed: options.seed,
        speed: 0.0,
        sample_rate_hz: Some(options.sample_rate_hz),
        duration_s: None,
        fault: options.fault.clone(),
    })
    .open(options.kind, 0, &AssetAnalysis::default())?;
    // A FIFO far deeper than the ADXL355's 32 sets: a simulated node on a
    // busy host must not overrun because the host was slow to schedule it.
    let (accel, thermo) = simulated_sensors(source, options.range_g, options.speed, 1 << 16);
    let clock = accel.sample_clock();
    let watermark = 8;
    let mut sampler = Sampler::new(
        accel,
        thermo,
        clock,
        SamplerConfig {
            node_id: options.node_id,
            samples_per_frame: 128,
            fifo_watermark_sets: watermark,
            temperature_period_us: 250_000,
        },
    )
    .map_err(|e| anyhow::anyhow!("sampling loop: {e}"))?;
    let listener = TcpListener::bind(options.listen)
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    listener.set_nonblocking(true)?;
    println!(
        "node-sim: node {} ({} at {} Hz) listening on {}",
        options.node_id,
        options.kind.as_str(),
        options.sample_rate_hz,
        listener.local_addr()?
    );
    let mut sink = TcpSink {
        listener,
        client: None,
    };
    // Poll about twice per watermark's worth of samples.
    let pause = Duration::from_secs_f64(
        (0.5 * watermark as f64 / (options.sample_rate_hz * options.speed)).clamp(1e-4, 0.05),
    );
    let started = Instant::now();
    while options.run_for.is_none_or(|d| started.elapsed() < d) {
        sink.accept_waiting();
        if let Err(e) = sampler.poll(&mut sink) {
            eprintln!("node-sim: sampling failed: {e:?}");
        }
        std::thread::sleep(pause);
    }
    Ok(())
}
