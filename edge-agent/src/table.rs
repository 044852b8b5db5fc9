//! Tables of process readings (one row per reading time), for replay.
//!
//! Process historians and test rigs export CSV with a time column and one
//! column per channel. [`read_table`] maps the columns a
//! [`ProcessProfile`] needs, in its order, keeps the time text as written
//! (so replay output lines up with the file's own labels) and, if present,
//! the file's anomaly label. A cell that is not a number becomes NaN: the
//! row is refused by the feature code and counted, the rest of the file is
//! kept. A missing column or an unreadable file is an error naming it.

use std::path::{Path, PathBuf};

use crate::features::process::ProcessProfile;

/// How a table file is laid out.
#[derive(Debug, Clone, PartialEq)]
pub enum TableFormat {
    /// The SKAB benchmark's CSV: `;`-separated, `datetime`, the rig's
    /// channel names, and an `anomaly` label.
    Skab,
    /// Any CSV with a header: the time column, the profile's channels in
    /// profile order, an optional 0/1 label column.
    Csv {
        separator: char,
        time_column: String,
        columns: Vec<String>,
        label_column: Option<String>,
    },
}

/// SKAB's columns for [`crate::features::process::PUMP_PROCESS_V1`], in its
/// feature order.
pub const SKAB_PUMP_COLUMNS: [&str; 6] = [
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Voltage",
    "Volume Flow RateRMS",
];

/// One row as read.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    pub datetime: String,
    /// Readings in profile order (NaN where a cell was not a number).
    pub values: Vec<f64>,
    /// The file's label, if it has one (1: anomalous).
    pub label: Option<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: no column `{column}` in the header")]
    MissingColumn { path: PathBuf, column: String },
    #[error("{path}: {reason}")]
    Layout { path: PathBuf, reason: String },
}

/// Reads `path` for `profile`.
pub fn read_table(
    path: &Path,
    format: &TableFormat,
    profile: &ProcessProfile,
) -> Result<Vec<TableRow>, TableError> {
    let text = std::fs::read_to_string(path).map_err(|e| TableError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let (separator, time_column, columns, label_column) = match format {
        TableFormat::Skab => (
            ';',
            "datetime".to_owned(),
            SKAB_PUMP_COLUMNS.map(String::from).to_vec(),
            Some("anomaly".to_owned()),
        ),
        TableFormat::Csv {
            separator,
            time_column,
            columns,
            label_column,
        } => (
            *separator,
            time_column.clone(),
            columns.clone(),
            label_column.clone(),
        ),
    };
    if columns.len() != profile.features.len() {
        return Err(TableError::Layout {
            path: path.to_owned(),
            reason: format!(
                "{} columns given for the {} channels of profile {} ({})",
                columns.len(),
                profile.features.len(),
                profile.name,
                profile.features.join(", ")
            ),
        });
    }
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split(separator)
        .map(str::trim)
        .collect();
    let index = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| TableError::MissingColumn {
                path: path.to_owned(),
                column: name.to_owned(),
            })
    };
    let time = index(&time_column)?;
    let value_at = columns
        .iter()
        .map(|c| index(c))
        .collect::<Result<Vec<_>, _>>()?;
    let label = label_column.as_deref().map(index).transpose()?;
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split(separator).map(str::trim).collect();
            let number = |i: usize| {
                cells
                    .get(i)
                    .and_then(|c| c.parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            };
            TableRow {
                datetime: cells.get(time).copied().unwrap_or_default().to_owned(),
                values: value_at.iter().map(|&i| number(i)).collect(),
                label: label.map(number).map(|v| u8::from(v >= 0.5)),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::process::PUMP_PROCESS_V1;

    #[test]
    fn skab_rows_map_the_rig_channels_in_profile_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.csv");
        std::fs::write(
            &path,
            "datetime;Accelerometer1RMS;Accelerometer2RMS;Current;Pressure;Temperature;Thermocouple;Voltage;Volume Flow RateRMS;anomaly;changepoint\n\
             2020-03-09 10:14:33;0.026;0.040;1.33;0.054;79.3;26.0;233.0;32.0;0.0;0.0\n\
             2020-03-09 10:14:34;0.027;oops;1.35;0.382;79.5;26.0;236.0;32.0;1.0;0.0\n",
        )
        .unwrap();
        let rows = read_table(&path, &TableFormat::Skab, &PUMP_PROCESS_V1).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].datetime, "2020-03-09 10:14:33");
        assert_eq!(rows[0].values, [0.026, 0.040, 1.33, 0.054, 233.0, 32.0]);
        assert_eq!((rows[0].label, rows[1].label), (Some(0), Some(1)));
        assert!(
            rows[1].values[1].is_nan(),
            "a bad cell is NaN, the row kept"
        );
    }

    #[test]
    fn a_missing_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "time,a,b\n1,2,3\n").unwrap();
        let format = TableFormat::Csv {
            separator: ',',
            time_column: "time".into(),
            columns: ["a", "b", "c", "d", "e", "f"].map(String::from).to_vec(),
            label_column: None,
        };
        let err = read_table(&path, &format, &PUMP_PROCESS_V1).unwrap_err();
        assert!(err.to_string().contains("no column `c`"), "{err}");
    }
}
