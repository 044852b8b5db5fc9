//! Replays a headerless float32 little-endian recording.
//!
//! Public vibration data sets (CWRU, FEMTO, Z24) come as raw arrays of
//! samples with the rate and the unit in a side file; this source reads such
//! a file (one channel, or one column of an interleaved multi-channel file)
//! and supplies a constant temperature, which such recordings lack but
//! every feature profile uses.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use serde::Deserialize;

use super::{BLOCK_SECONDS, Block, Pacing, Source, SourceError, SourcePoll};

/// `[assets.source]` with `type = "f32le"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplayConfig {
    pub path: PathBuf,
    pub sample_rate_hz: f64,
    /// Interleaved channels in the file (default 1).
    #[serde(default = "one")]
    pub channels: usize,
    /// Which of them is the vibration channel (0-based, default 0).
    #[serde(default)]
    pub channel: usize,
    /// Multiplies every sample (e.g. 1/9.80665 to turn m/s^2 into g).
    #[serde(default = "unit")]
    pub scale: f64,
    /// The temperature reported with every block, degrees C.
    pub temperature_c: f64,
    /// Seconds of signal per wall-clock second; 0 means as fast as possible.
    #[serde(default)]
    pub speed: f64,
}

fn one() -> usize {
    1
}
fn unit() -> f64 {
    1.0
}

impl RawReplayConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        super::check_sample_rate(self.sample_rate_hz)?;
        if self.channels == 0 || self.channel >= self.channels {
            return Err(format!(
                "source.channel = {} must be below source.channels = {}",
                self.channel, self.channels
            ));
        }
        if !(self.scale.is_finite() && self.scale != 0.0) {
            return Err(format!(
                "source.scale = {} must be a non-zero number",
                self.scale
            ));
        }
        super::check_speed(self.speed)?;
        Ok(())
    }
}

pub struct RawReplay {
    config: RawReplayConfig,
    reader: BufReader<File>,
    start_us: u64,
    sample: u64,
}

impl RawReplay {
    pub fn open(config: &RawReplayConfig, start_us: u64) -> Result<Self, SourceError> {
        let file = File::open(&config.path).map_err(|source| SourceError::Io {
            path: config.path.display().to_string(),
            source,
        })?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        let frame = 4 * config.channels as u64;
        if bytes % frame != 0 {
            tracing::warn!(
                path = %config.path.display(),
                "file size {bytes} is not a multiple of {frame} bytes; the trailing partial sample is ignored"
            );
        }
        Ok(RawReplay {
            config: config.clone(),
            reader: BufReader::new(file),
            start_us,
            sample: 0,
        })
    }
}

impl Source for RawReplay {
    fn sample_rate_hz(&self) -> f64 {
        self.config.sample_rate_hz
    }

    fn pacing(&self) -> Pacing {
        Pacing::from_speed(self.config.speed)
    }

    fn poll(&mut self) -> Result<SourcePoll, SourceError> {
        let n = ((self.config.sample_rate_hz * BLOCK_SECONDS).round() as usize).max(1);
        let width = 4 * self.config.channels;
        let mut raw = vec![0u8; n * width];
        let mut filled = 0;
        while filled < raw.len() {
            match self.reader.read(&mut raw[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(SourceError::Io {
                        path: self.config.path.display().to_string(),
                        source,
                    });
                }
            }
        }
        let samples = filled / width;
        if samples == 0 {
            return Ok(SourcePoll::End);
        }
        let offset = 4 * self.config.channel;
        let vibration = (0..samples)
            .map(|i| {
                let at = i * width + offset;
                let v = f32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
                (v as f64 * self.config.scale) as f32
            })
            .collect();
        let start_us =
            self.start_us + (self.sample as f64 * 1e6 / self.config.sample_rate_hz) as u64;
        self.sample += samples as u64;
        Ok(SourcePoll::Block(Block {
            start_us,
            vibration,
            temperature: vec![self.config.temperature_c as f32],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_column_of_an_interleaved_file_with_scale_and_temperature() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        // Two channels, 10 frames: channel 1 holds 100 + i.
        let bytes: Vec<u8> = (0..10)
            .flat_map(|i| [i as f32, 100.0 + i as f32])
            .flat_map(f32::to_le_bytes)
            .collect();
        std::fs::write(&path, bytes).unwrap();
        let config = RawReplayConfig {
            path,
            sample_rate_hz: 16.0,
            channels: 2,
            channel: 1,
            scale: 0.5,
            temperature_c: 21.5,
            speed: 0.0,
        };
        let mut src = RawReplay::open(&config, 1_000).unwrap();
        // 16 Hz x 0.25 s = 4 samples per block.
        let b = src.poll().unwrap().block();
        assert_eq!(b.vibration, vec![50.0, 50.5, 51.0, 51.5]);
        assert_eq!(
            (b.start_us, b.temperature.as_slice()),
            (1_000, &[21.5f32][..])
        );
        assert_eq!(src.poll().unwrap().block().start_us, 251_000);
        assert_eq!(src.poll().unwrap().block().vibration.len(), 2);
        assert_eq!(src.poll().unwrap(), SourcePoll::End);
    }

    #[test]
    fn bad_channel_selection_is_refused() {
        let mut c = RawReplayConfig {
            path: "x".into(),
            sample_rate_hz: 1.0,
            channels: 2,
            channel: 2,
            scale: 1.0,
            temperature_c: 20.0,
            speed: 0.0,
        };
        assert!(c.validate().unwrap_err().contains("source.channel = 2"));
        c.channel = 1;
        assert!(c.validate().is_ok());
    }
}
