//! Staged over-the-air rollout of a model version to a fleet of gateways.
//!
//! A bad model pushed to every gateway at once blinds the whole fleet. This
//! module promises engineers that a rollout only reaches more gateways after
//! fewer gateways ran it successfully, that it stops by itself when a wave
//! goes badly, and that they can pause, resume or roll back at any time. It
//! is the pure state machine: no I/O and no clock (`now_ms` is passed in).
//! The hub persists a [`Rollout`] as JSON, feeds it gateway reports and
//! ticks, and carries out the [`Action`]s it returns. It does not know which
//! version a gateway runs: the offer carries `spec.allow_downgrade` and the
//! gateway refuses a downgrade it was not allowed (a `Failed` report).
//!
//! # Planning the waves
//! - Targets are deduplicated keeping the **given order** (first occurrence
//!   wins): the caller orders by preference, and wave 0, the canary, is the
//!   first gateway given. Waves fill in that order.
//! - Wave sizes are cumulative: `Count(n)` is `n` gateways, `Percent(p)` is
//!   `ceil(p % of the targets)`, both clamped to the number of targets.
//! - As written, counts must strictly increase, percentages must strictly
//!   increase, `100%` can only be last, a count is at least 1 and a
//!   percentage 1-100 ([`RolloutSpec::validate`]).
//! - Over the actual targets, a wave covering **fewer** gateways than the
//!   one before is an error; a wave covering **the same number** (rounding
//!   or clamping on a small target: `10%` of 3 gateways is the canary's 1)
//!   adds no one and is skipped, with a log line. The last wave must cover
//!   every target. Wave numbers (`Running { wave }`, log) count the planned
//!   waves ([`Rollout::wave_sizes`]), from 0.
//!
//! # Judging a wave
//! A wave is finished when each of its gateways is `Active` or `Failed`. It
//! **halts** the rollout the moment its failures exceed
//! `max_failure_fraction` of its size, without waiting for the others. It
//! succeeds when finished with failures within the threshold; the next wave
//! is then offered, or the rollout completes after the last. Halting happens
//! when a failure pushes the count over the threshold, so a wave an engineer
//! resumed after a halt (accepting its failures) does not halt again: it
//! runs to its end and the next wave starts. A wave going over the threshold
//! while paused halts too (the halt is the news that matters).
//!
//! # Gateway reports (MQTT redelivers: reports are idempotent)
//! - A gateway moves forward only: offered, downloading, verifying, shadow,
//!   then active or failed. A report for an earlier or the same step, a
//!   download progress not above the one recorded, and any report for a
//!   finished (`Active`, `Failed`), `Waiting` or `RolledBack` gateway are
//!   ignored: a late `Failed` after `Active` does not count, and a gateway
//!   failed by a timeout stays failed if it answers later.
//! - `RolledBack` only counts from a gateway asked to roll back; `Failed`
//!   from such a gateway keeps it `Failed` ("could not roll back: ...").
//! - Reports are recorded whatever the rollout's state (paused, halted).
//!
//! # Time
//! [`Rollout::tick`] fails each gateway not finished more than
//! `gateway_timeout_s` after its offer ("no answer within N s", or "not
//! finished within N s of the offer" once it answered). A gateway asked to
//! roll back that says nothing for `gateway_timeout_s` is failed the same
//! way ("could not roll back: ..."), so a rollback always ends.
//!
//! # Engineers
//! Pause from running (no new wave starts; reports still count). Resume
//! from paused or halted. Roll back from running, paused, halted or
//! completed: every gateway offered and not failed gets a roll-back request
//! (a failed one, even timed out, is not asked); the rollout is rolled back
//! when none is still rolling back. Each of these is logged with who did it.

use std::fmt;

use protocol::package::Version;
use serde::{Deserialize, Serialize};

/// The start of the reason of a gateway that failed to roll back.
const ROLLBACK_FAILED: &str = "could not roll back";

/// A gateway, by site and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GatewayRef {
    pub site: String,
    pub gateway: String,
}

impl fmt::Display for GatewayRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.site, self.gateway)
    }
}

/// One wave's size: a number of gateways, or a percentage of the whole
/// target, CUMULATIVE (waves `[1, "10%", "50%", "100%"]` over 40 gateways =
/// 1, then up to 4 in total, then 20, then 40). Serde: a JSON number (count)
/// or a string like `"10%"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawWave", into = "RawWave")]
pub enum WaveSize {
    Count(u32),
    Percent(u8),
}

impl fmt::Display for WaveSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaveSize::Count(n) => write!(f, "{n}"),
            WaveSize::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl WaveSize {
    fn check(self) -> Result<WaveSize, String> {
        match self {
            WaveSize::Count(0) => Err(format!("wave `0`: {COUNT}")),
            WaveSize::Percent(p) if p == 0 || p > 100 => Err(format!("wave `{self}`: {PERCENT}")),
            _ => Ok(self),
        }
    }

    /// How many gateways the waves up to this one cover, over `total`.
    fn resolve(self, total: usize) -> usize {
        match self {
            WaveSize::Count(n) => total.min(n as usize),
            WaveSize::Percent(p) => total.min((usize::from(p) * total).div_ceil(100)),
        }
    }
}

/// Whether `v`, written before `w`, is of the same kind and not smaller.
fn not_below(v: WaveSize, w: WaveSize) -> bool {
    match (v, w) {
        (WaveSize::Count(a), WaveSize::Count(b)) => a >= b,
        (WaveSize::Percent(a), WaveSize::Percent(b)) => a >= b,
        _ => false,
    }
}

const COUNT: &str = "a count must be a whole number, 1 or more";
const PERCENT: &str = "a percentage must be 1-100";

/// A wave size as written in JSON, before it is checked.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RawWave {
    Count(i64),
    Fraction(f64),
    Text(String),
    /// Anything else, for a clear error rather than serde's "did not match".
    #[serde(skip_serializing)]
    Other(serde::de::IgnoredAny),
}

impl From<WaveSize> for RawWave {
    fn from(w: WaveSize) -> RawWave {
        match w {
            WaveSize::Count(n) => RawWave::Count(n.into()),
            WaveSize::Percent(_) => RawWave::Text(w.to_string()),
        }
    }
}

impl TryFrom<RawWave> for WaveSize {
    type Error = String;
    fn try_from(raw: RawWave) -> Result<WaveSize, String> {
        let text = match raw {
            RawWave::Count(n) => match u32::try_from(n) {
                Ok(n) => return WaveSize::Count(n).check(),
                Err(_) => return Err(format!("wave `{n}`: {COUNT}")),
            },
            RawWave::Fraction(x) => return Err(format!("wave `{x}`: {COUNT}")),
            RawWave::Text(text) => text,
            RawWave::Other(_) => {
                return Err("a wave is a count (1) or a percentage (\"10%\")".into());
            }
        };
        let Some(number) = text.trim().strip_suffix('%') else {
            return Err(format!(
                "wave `{text}`: a percentage ends in `%`; a count is a number"
            ));
        };
        match number.trim().parse::<u8>() {
            Ok(p) => WaveSize::Percent(p).check(),
            Err(_) => Err(format!("wave `{text}`: {PERCENT}")),
        }
    }
}

/// What engineers ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSpec {
    pub model: String,
    pub version: Version,
    /// SHA-256 of the package (what gateways must download).
    pub sha256: String,
    pub waves: Vec<WaveSize>,
    /// A wave fails (and the rollout halts) when failed / gateways-in-wave
    /// > this (0.0..=1.0). Default 0.0: any failure halts.
    #[serde(default)]
    pub max_failure_fraction: f64,
    /// A gateway that has not finished (Active or Failed) this long after
    /// its offer counts as failed ("no answer within N s").
    pub gateway_timeout_s: u64,
    /// An engineer's explicit downgrade.
    #[serde(default)]
    pub allow_downgrade: bool,
}

impl RolloutSpec {
    /// The checks that do not depend on the targets (see the module doc).
    pub fn validate(&self) -> Result<(), RolloutError> {
        if !(0.0..=1.0).contains(&self.max_failure_fraction) {
            return Err(RolloutError::BadThreshold);
        }
        if self.gateway_timeout_s == 0 {
            return Err(RolloutError::BadTimeout);
        }
        if self.waves.is_empty() {
            return Err(RolloutError::NoWaves);
        }
        let bad = |text: String| Err(RolloutError::BadWaves(text));
        for (i, &w) in self.waves.iter().enumerate() {
            w.check().map_err(RolloutError::BadWaves)?;
            let earlier = self.waves[..i].iter().position(|&v| not_below(v, w));
            if let Some(j) = earlier {
                let v = self.waves[j];
                return bad(format!(
                    "wave {i} (`{w}`) is not larger than wave {j} (`{v}`): waves are cumulative"
                ));
            }
            if w == WaveSize::Percent(100) && i + 1 < self.waves.len() {
                return bad(format!(
                    "wave {i} (`100%`) covers every gateway: it must be last"
                ));
            }
        }
        Ok(())
    }
}

/// Where one gateway is (from its reports; the gateway's own words in
/// `reason`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GatewayPhase {
    /// In a later wave.
    Waiting,
    /// Offer sent at `offered_at_ms`, nothing heard yet.
    Offered {
        offered_at_ms: u64,
    },
    Downloading {
        received: u64,
        total: u64,
    },
    Verifying,
    /// Running beside the active model.
    Shadow,
    /// Swapped in and healthy: success.
    Active,
    /// Refused, failed its checks, rolled itself back, or timed out.
    Failed {
        reason: String,
    },
    /// Asked to go back to its previous model (rollout rolled back).
    RollingBack,
    /// Back on its previous model after a rollout rollback.
    RolledBack,
}

impl GatewayPhase {
    /// The name used in JSON and in [`Rollout::summary`].
    pub fn name(&self) -> &'static str {
        match self {
            GatewayPhase::Waiting => "waiting",
            GatewayPhase::Offered { .. } => "offered",
            GatewayPhase::Downloading { .. } => "downloading",
            GatewayPhase::Verifying => "verifying",
            GatewayPhase::Shadow => "shadow",
            GatewayPhase::Active => "active",
            GatewayPhase::Failed { .. } => "failed",
            GatewayPhase::RollingBack => "rolling_back",
            GatewayPhase::RolledBack => "rolled_back",
        }
    }

    /// Order of the in-flight phases (offered, not finished), 0 for others.
    fn step(&self) -> u8 {
        match self {
            GatewayPhase::Offered { .. } => 1,
            GatewayPhase::Downloading { .. } => 2,
            GatewayPhase::Verifying => 3,
            GatewayPhase::Shadow => 4,
            _ => 0,
        }
    }

    fn in_flight(&self) -> bool {
        self.step() > 0
    }

    fn finished(&self) -> bool {
        matches!(self, GatewayPhase::Active | GatewayPhase::Failed { .. })
    }

    fn failed(&self) -> bool {
        matches!(self, GatewayPhase::Failed { .. })
    }
}

/// What a gateway reports about this rollout (the hub decodes the MQTT
/// message into this).
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayReport {
    Downloading { received: u64, total: u64 },
    Verifying,
    Shadow,
    Active,
    Failed { reason: String },
    RolledBack,
}

/// Where the rollout is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RolloutState {
    /// Wave `wave` (0-based) is in progress.
    Running {
        wave: usize,
    },
    Paused {
        wave: usize,
    },
    /// Stopped by itself; `reason` in words ("wave 2: 3 of 4 gateways failed
    /// (75 %), more than the 25 % allowed").
    Halted {
        wave: usize,
        reason: String,
    },
    Completed,
    RollingBack,
    RolledBack,
}

impl RolloutState {
    /// The name used in JSON and in [`RolloutError::NotAllowed`].
    pub fn name(&self) -> &'static str {
        match self {
            RolloutState::Running { .. } => "running",
            RolloutState::Paused { .. } => "paused",
            RolloutState::Halted { .. } => "halted",
            RolloutState::Completed => "completed",
            RolloutState::RollingBack => "rolling_back",
            RolloutState::RolledBack => "rolled_back",
        }
    }

    /// The wave of a rollout still going wave by wave.
    fn wave(&self) -> Option<usize> {
        match self {
            RolloutState::Running { wave }
            | RolloutState::Paused { wave }
            | RolloutState::Halted { wave, .. } => Some(*wave),
            _ => None,
        }
    }
}

/// One gateway's part in the rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayProgress {
    pub gateway: GatewayRef,
    pub wave: usize,
    pub phase: GatewayPhase,
    pub updated_at_ms: u64,
    /// When the offer was sent (the timeout runs from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_at_ms: Option<u64>,
}

/// A rollout, as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub id: String,
    pub spec: RolloutSpec,
    pub state: RolloutState,
    pub gateways: Vec<GatewayProgress>,
    /// How many gateways each wave holds (not cumulative), after resolving
    /// sizes.
    pub wave_sizes: Vec<usize>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// What happened, in words, oldest first.
    pub log: Vec<LogLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub at_ms: u64,
    pub text: String,
}

/// What the I/O side must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Offer { gateway: GatewayRef },
    RollBack { gateway: GatewayRef },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RolloutError {
    #[error("a rollout needs at least one target gateway")]
    NoGateways,
    #[error("a rollout needs at least one wave")]
    NoWaves,
    #[error("waves: {0}")]
    BadWaves(String),
    #[error("max_failure_fraction must be a number from 0.0 to 1.0")]
    BadThreshold,
    #[error("gateway_timeout_s must be at least 1")]
    BadTimeout,
    #[error("gateway {0} is not part of this rollout")]
    UnknownGateway(GatewayRef),
    #[error("cannot {action} a rollout that is {state}")]
    NotAllowed {
        state: &'static str,
        action: &'static str,
    },
}

/// Resolves the waves over `total` targets: the planned sizes (not
/// cumulative) and the spec's waves skipped for adding no gateway.
fn plan(waves: &[WaveSize], total: usize) -> Result<(Vec<usize>, Vec<usize>), RolloutError> {
    let (mut sizes, mut skipped, mut covered, mut prev) = (vec![], vec![], 0, None);
    for (i, &w) in waves.iter().enumerate() {
        let upto = w.resolve(total);
        if let Some((j, p)) = prev.filter(|_| upto < covered) {
            return Err(RolloutError::BadWaves(format!(
                "wave {i} (`{w}`) covers {upto} of the {total} gateways, fewer than the \
                 {covered} of wave {j} (`{p}`): waves are cumulative"
            )));
        }
        if upto == covered {
            skipped.push(i);
            continue;
        }
        sizes.push(upto - covered);
        (covered, prev) = (upto, Some((i, w)));
    }
    if covered < total {
        let last = waves.last().map(ToString::to_string).unwrap_or_default();
        return Err(RolloutError::BadWaves(format!(
            "the last wave (`{last}`) covers {covered} of the {total} gateways: \
             it must cover them all (end with \"100%\")"
        )));
    }
    Ok((sizes, skipped))
}

#[path = "rollout_machine.rs"]
mod machine;

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
