//! Replays a CSV recording as if it came from the sensors.
//!
//! The file has a header row and one row per vibration sample; the config
//! names the vibration column and the temperature column (every feature
//! profile uses temperature; an empty cell means no reading in that row, and
//! a window needs at least one reading, or one carried over from before). The sample rate is given in the
//! config because recordings rarely carry a usable clock. A cell that is not
//! a number becomes NaN, is logged with its line number and counted: the
//! window containing it is then refused by the sensor checks instead of the
//! whole replay stopping.

use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::PathBuf;

use serde::Deserialize;

use super::{BLOCK_SECONDS, Block, Pacing, Source, SourceError, SourcePoll};

/// `[assets.source]` with `type = "csv"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvReplayConfig {
    pub path: PathBuf,
    pub sample_rate_hz: f64,
    pub vibration_column: String,
    pub temperature_column: String,
    /// Seconds of signal per wall-clock second; 0 means as fast as possible.
    #[serde(default)]
    pub speed: f64,
    /// Field separator, `,` unless given.
    #[serde(default = "default_separator")]
    pub separator: char,
}

fn default_separator() -> char {
    ','
}

impl CsvReplayConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        super::check_sample_rate(self.sample_rate_hz)?;
        super::check_speed(self.speed)?;
        Ok(())
    }
}

pub struct CsvReplay {
    config: CsvReplayConfig,
    lines: Lines<BufReader<File>>,
    line_no: usize,
    vibration_col: usize,
    temperature_col: usize,
    start_us: u64,
    sample: u64,
    bad_cells: u64,
}

impl CsvReplay {
    pub fn open(config: &CsvReplayConfig, start_us: u64) -> Result<Self, SourceError> {
        let path = config.path.display().to_string();
        let file = File::open(&config.path).map_err(|source| SourceError::Io {
            path: path.clone(),
            source,
        })?;
        let mut lines = BufReader::new(file).lines();
        let header = match lines.next() {
            Some(Ok(h)) => h,
            Some(Err(source)) => return Err(SourceError::Io { path, source }),
            None => {
                return Err(SourceError::Recording {
                    path,
                    message: "file is empty (a header row is required)".into(),
                });
            }
        };
        let columns: Vec<&str> = header.split(config.separator).map(str::trim).collect();
        let find = |name: &str| {
            columns
                .iter()
                .position(|c| *c == name)
                .ok_or_else(|| SourceError::Recording {
                    path: path.clone(),
                    message: format!("no column `{name}` in header {columns:?}"),
                })
        };
        let vibration_col = find(&config.vibration_column)?;
        let temperature_col = find(&config.temperature_column)?;
        Ok(CsvReplay {
            config: config.clone(),
            lines,
            line_no: 1,
            vibration_col,
            temperature_col,
            start_us,
            sample: 0,
            bad_cells: 0,
        })
    }

    /// Cells that were not numbers so far.
    pub fn bad_cells(&self) -> u64 {
        self.bad_cells
    }

    fn cell(&mut self, fields: &[&str], col: usize, what: &str) -> Option<f32> {
        let raw = fields.get(col).map(|s| s.trim()).unwrap_or("");
        if raw.is_empty() {
            return None;
        }
        match raw.parse::<f32>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.bad_cells += 1;
                tracing::warn!(
                    path = %self.config.path.display(),
                    line = self.line_no,
                    "{what} cell `{raw}` is not a number; sample replaced by NaN"
                );
                Some(f32::NAN)
            }
        }
    }
}

impl Source for CsvReplay {
    fn sample_rate_hz(&self) -> f64 {
        self.config.sample_rate_hz
    }

    fn pacing(&self) -> Pacing {
        Pacing::from_speed(self.config.speed)
    }

    fn poll(&mut self) -> Result<SourcePoll, SourceError> {
        let n = ((self.config.sample_rate_hz * BLOCK_SECONDS).round() as usize).max(1);
        let start_us =
            self.start_us + (self.sample as f64 * 1e6 / self.config.sample_rate_hz) as u64;
        let mut vibration = Vec::with_capacity(n);
        let mut temperature = Vec::new();
        while vibration.len() < n {
            let line = match self.lines.next() {
                Some(Ok(line)) => line,
                Some(Err(source)) => {
                    return Err(SourceError::Io {
                        path: self.config.path.display().to_string(),
                        source,
                    });
                }
                None => break,
            };
            self.line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(self.config.separator).collect();
            let v = self
                .cell(&fields, self.vibration_col, "vibration")
                .unwrap_or(f32::NAN);
            vibration.push(v);
            if let Some(t) = self.cell(&fields, self.temperature_col, "temperature") {
                temperature.push(t);
            }
        }
        if vibration.is_empty() {
            return Ok(SourcePoll::End);
        }
        self.sample += vibration.len() as u64;
        Ok(SourcePoll::Block(Block {
            start_us,
            vibration,
            temperature,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    fn config(path: PathBuf) -> CsvReplayConfig {
        CsvReplayConfig {
            path,
            sample_rate_hz: 8.0,
            vibration_column: "accel_g".into(),
            temperature_column: "temp_c".into(),
            speed: 0.0,
            separator: ',',
        }
    }

    #[test]
    fn replays_rows_in_blocks_with_time_stamps() {
        let mut body = String::from("time_s,accel_g,temp_c\n");
        for i in 0..5 {
            body += &format!(
                "{},{}.5,{}\n",
                i as f64 / 8.0,
                i,
                if i == 0 { "20.0" } else { "" }
            );
        }
        let f = write(&body);
        let mut src = CsvReplay::open(&config(f.path().into()), 1_000_000).unwrap();
        // 8 Hz x 0.25 s = 2 samples per block.
        let b1 = src.poll().unwrap().block();
        assert_eq!(b1.vibration, vec![0.5, 1.5]);
        assert_eq!(b1.temperature, vec![20.0]);
        assert_eq!(b1.start_us, 1_000_000);
        let b2 = src.poll().unwrap().block();
        assert_eq!(b2.start_us, 1_250_000);
        assert!(b2.temperature.is_empty());
        let b3 = src.poll().unwrap().block();
        assert_eq!(b3.vibration, vec![4.5]);
        assert_eq!(src.poll().unwrap(), SourcePoll::End);
    }

    #[test]
    fn a_bad_cell_becomes_nan_and_is_counted() {
        let f = write("accel_g,temp_c\n1.0,20\nbanana,20\n3.0,20\n");
        let mut src = CsvReplay::open(&config(f.path().into()), 0).unwrap();
        let b = src.poll().unwrap().block();
        assert_eq!(b.vibration[0], 1.0);
        assert!(b.vibration[1].is_nan());
        assert_eq!(src.bad_cells(), 1);
        let b = src.poll().unwrap().block();
        assert_eq!(b.vibration, vec![3.0]);
    }

    #[test]
    fn missing_column_is_named_in_the_error() {
        let f = write("a,b\n1,2\n");
        let err = CsvReplay::open(&config(f.path().into()), 0)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("accel_g"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");
    }
}
