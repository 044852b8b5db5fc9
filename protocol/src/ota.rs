//! Models over the air: what the hub and a gateway say to each other
//! during a rollout.
//!
//! Everything travels over the same broker as the gateway's other
//! messages, so a gateway needs no other connection than the one it has:
//!
//! - hub to gateway, commands on `pdm/v1/{site}/{gateway}/cmd/...`:
//!   `model-offer` ([`ModelOffer`]: "install this package"),
//!   `model-chunk` ([`ModelChunk`]: bytes of it, as asked),
//!   `model-rollback` ([`ModelRollback`]: "go back to your previous model");
//! - gateway to hub, on `pdm/v1/{site}/{gateway}/ota` ([`OtaMessage`]):
//!   `fetch` (a range of the package, from where its download stands, so
//!   a download resumes after any reconnect or restart) and `status` (where
//!   the gateway is with a rollout: downloading, verifying, shadow, active,
//!   failed or rolled back, with its reason in words).
//!
//! The package itself is verified by the gateway ([`crate::package`]);
//! nothing here is trusted for more than routing.

use serde::{Deserialize, Serialize};

use crate::package::Version;

/// Largest chunk a gateway may ask for (its base64 stays well under
/// [`crate::MAX_PAYLOAD_BYTES`]).
pub const MAX_CHUNK_BYTES: u32 = 32 * 1024;
/// Longest reason text in a status.
pub const MAX_REASON_CHARS: usize = 1000;

/// "Install this package" (hub to one gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelOffer {
    pub rollout_id: String,
    pub name: String,
    pub version: Version,
    /// SHA-256 of the whole package (the download's identity).
    pub sha256: String,
    pub size: u64,
    /// Seconds to run the new model in shadow beside the active one
    /// before swapping.
    pub shadow_s: u64,
    /// An engineer's explicit downgrade.
    pub allow_downgrade: bool,
}

/// Bytes of a package (hub to one gateway), base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelChunk {
    pub sha256: String,
    pub offset: u64,
    pub total: u64,
    pub data: String,
}

/// "Go back to the model you ran before this rollout" (hub to one gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRollback {
    pub rollout_id: String,
    /// The model the rollout installed.
    pub name: String,
}

/// Where a gateway is with a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum OtaPhase {
    Downloading {
        received: u64,
        total: u64,
    },
    Verifying,
    /// Running beside the active model; the figures so far.
    Shadow {
        windows: u64,
        agreement: f64,
        alarm_rate_new: f64,
        alarm_rate_active: f64,
    },
    /// Swapped in and passed its probation.
    Active,
    /// Refused or failed; nothing changed on the gateway (or it went back).
    Failed {
        reason: String,
    },
    /// Back on the previous model, as the hub asked.
    RolledBack,
}

/// What a gateway says about a rollout. (Not `deny_unknown_fields`: serde
/// cannot combine it with the flattened phase; the phase's own fields are
/// checked by its tag.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtaStatus {
    pub rollout_id: String,
    pub name: String,
    pub version: Version,
    #[serde(flatten)]
    pub phase: OtaPhase,
}

/// A request for `len` bytes of the package `sha256` from `offset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fetch {
    pub rollout_id: String,
    pub sha256: String,
    pub offset: u64,
    pub len: u32,
}

/// A gateway's message about models (topic kind `ota`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtaMessage {
    pub site: String,
    pub gateway: String,
    pub ts_ms: u64,
    pub body: OtaBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OtaBody {
    Fetch(Fetch),
    Status(OtaStatus),
}

/// Checks what serde cannot: sizes and text lengths.
pub fn validate(m: &OtaMessage) -> Result<(), String> {
    match &m.body {
        OtaBody::Fetch(f) => {
            if f.len == 0 || f.len > MAX_CHUNK_BYTES {
                return Err(format!(
                    "fetch of {} bytes; 1 to {MAX_CHUNK_BYTES} may be asked at once",
                    f.len
                ));
            }
            check_sha(&f.sha256)
        }
        OtaBody::Status(s) => match &s.phase {
            OtaPhase::Failed { reason } if reason.chars().count() > MAX_REASON_CHARS => {
                Err(format!("reason longer than {MAX_REASON_CHARS} characters"))
            }
            OtaPhase::Downloading { received, total } if received > total => {
                Err(format!("downloading {received} of {total} bytes"))
            }
            OtaPhase::Shadow {
                agreement,
                alarm_rate_new,
                alarm_rate_active,
                ..
            } if ![agreement, alarm_rate_new, alarm_rate_active]
                .iter()
                .all(|x| (0.0..=1.0).contains(*x)) =>
            {
                Err("shadow figures must be fractions in [0, 1]".into())
            }
            _ => Ok(()),
        },
    }
}

fn check_sha(s: &str) -> Result<(), String> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(format!("`{s}` is not a SHA-256 in lower-case hex"))
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding required); `None` if it is not.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| B64.iter().position(|&x| x == c).map(|p| p as u32);
    let mut out = Vec::with_capacity(t.len() / 4 * 3);
    for (i, quad) in t.chunks(4).enumerate() {
        let last = i == t.len() / 4 - 1;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for n in 0..40usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64_encode(&bytes);
            assert_eq!(base64_decode(&text).unwrap(), bytes, "{n}");
        }
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
        assert_eq!(base64_encode(b"M"), "TQ==");
        for bad in ["TWF", "TW=u", "T===", "TQ==TQ==", "TW!u"] {
            assert!(base64_decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn messages_keep_their_shape_and_bad_ones_are_named() {
        let status = OtaMessage {
            site: "north".into(),
            gateway: "gw-1".into(),
            ts_ms: 5,
            body: OtaBody::Status(OtaStatus {
                rollout_id: "R-000001".into(),
                name: "pump-anomaly".into(),
                version: Version::parse("2.1.0").unwrap(),
                phase: OtaPhase::Failed {
                    reason: "self-test 0 failed".into(),
                },
            }),
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["body"]["type"], "status");
        assert_eq!(json["body"]["phase"], "failed");
        assert_eq!(json["body"]["reason"], "self-test 0 failed");
        let back: OtaMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, status);
        assert!(validate(&status).is_ok());

        let fetch = |len, sha: &str| OtaMessage {
            body: OtaBody::Fetch(Fetch {
                rollout_id: "R-1".into(),
                sha256: sha.into(),
                offset: 0,
                len,
            }),
            ..status.clone()
        };
        let sha = "a".repeat(64);
        assert!(validate(&fetch(1024, &sha)).is_ok());
        assert!(
            validate(&fetch(MAX_CHUNK_BYTES + 1, &sha))
                .unwrap_err()
                .contains("at once")
        );
        assert!(validate(&fetch(10, "ABC")).unwrap_err().contains("SHA-256"));
    }
}
