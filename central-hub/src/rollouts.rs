//! Rollouts as the hub keeps them: created from an engineer's request,
//! changed by gateways' reports, ticks and engineers' actions, each change
//! one commit under the ledger's writer lock (part of the ledger, a child
//! module). The rules themselves are in [`crate::rollout`]; what is sent to
//! gateways is decided by [`crate::ota`] from the state kept here.

use protocol::AssetKind;
use protocol::package::Version;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Ledger;
use crate::assets::AssetRecord;
use crate::rollout::{GatewayRef, Rollout, RolloutError, RolloutSpec, WaveSize};
use store::{StoreError, get_json, put_json, scan_json};

const ROLLOUT_SEQUENCE: &str = "seq/rollout";

/// Which gateways a rollout is for: all filters that are given must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutTarget {
    /// Gateways watching at least one asset of this kind.
    #[serde(default)]
    pub asset_kind: Option<AssetKind>,
    #[serde(default)]
    pub site: Option<String>,
    /// These gateways (`site/gateway`), in this order (the first is the
    /// canary).
    #[serde(default)]
    pub gateways: Option<Vec<String>>,
}

/// What an engineer asks for (`POST /api/rollouts`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    pub model: String,
    pub version: Version,
    #[serde(default)]
    pub target: RolloutTarget,
    /// Default `[1, "10%", "50%", "100%"]`.
    #[serde(default)]
    pub waves: Option<Vec<WaveSize>>,
    #[serde(default)]
    pub max_failure_fraction: f64,
    /// Default 1800 s.
    #[serde(default)]
    pub gateway_timeout_s: Option<u64>,
    /// Seconds each gateway runs the new model in shadow before it swaps
    /// (default 300).
    #[serde(default)]
    pub shadow_s: Option<u64>,
    #[serde(default)]
    pub allow_downgrade: bool,
}

/// A rollout as stored (key `rollout/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRollout {
    #[serde(flatten)]
    pub rollout: Rollout,
    pub target: RolloutTarget,
    pub shadow_s: u64,
    pub package_size: u64,
    pub created_by: String,
    /// The latest shadow figures each gateway reported (`site/gateway`):
    /// windows compared, agreement with the active model, alarm rates.
    #[serde(default)]
    pub shadow: std::collections::BTreeMap<String, ShadowFigures>,
}

/// How a candidate compared with the active model on a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShadowFigures {
    pub windows: u64,
    pub agreement: f64,
    pub alarm_rate_new: f64,
    pub alarm_rate_active: f64,
}

#[derive(Debug, Error)]
pub enum RolloutRequestError {
    #[error("no model {0} in the registry: upload its package first")]
    UnknownModel(String),
    #[error("no rollout `{0}`")]
    NotFound(String),
    #[error("no known gateway matches the target {0}")]
    NoGateways(String),
    #[error("gateway `{0}` is not known to the hub (expected site/gateway)")]
    UnknownGateway(String),
    #[error(transparent)]
    Rollout(#[from] RolloutError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StoredRollout {
    pub fn key(id: &str) -> String {
        format!("rollout/{id}")
    }
}

impl Ledger {
    pub fn rollouts(&self) -> Result<Vec<StoredRollout>, StoreError> {
        scan_json(&*self.store, "rollout/")
    }

    pub fn rollout(&self, id: &str) -> Result<Option<StoredRollout>, StoreError> {
        get_json(&*self.store, &StoredRollout::key(id))
    }

    /// The gateways a target names, canary first.
    fn resolve(&self, target: &RolloutTarget) -> Result<Vec<GatewayRef>, RolloutRequestError> {
        let gateways = self.gateways()?;
        if let Some(list) = &target.gateways {
            return list
                .iter()
                .map(|name| {
                    let (site, gw) = name.split_once('/').unwrap_or(("", name));
                    gateways
                        .iter()
                        .find(|g| g.site == site && g.id == gw)
                        .filter(|g| target.site.as_deref().is_none_or(|s| s == g.site))
                        .map(|g| GatewayRef {
                            site: g.site.clone(),
                            gateway: g.id.clone(),
                        })
                        .ok_or_else(|| RolloutRequestError::UnknownGateway(name.clone()))
                })
                .collect();
        }
        let assets: Vec<AssetRecord> = self.assets()?;
        let mut refs: Vec<GatewayRef> = gateways
            .iter()
            .filter(|g| target.site.as_deref().is_none_or(|s| s == g.site))
            .filter(|g| {
                target.asset_kind.is_none_or(|k| {
                    assets
                        .iter()
                        .any(|a| a.site == g.site && a.gateway == g.id && a.kind == k)
                })
            })
            .map(|g| GatewayRef {
                site: g.site.clone(),
                gateway: g.id.clone(),
            })
            .collect();
        refs.sort();
        if refs.is_empty() {
            return Err(RolloutRequestError::NoGateways(
                serde_json::to_string(target).unwrap_or_default(),
            ));
        }
        Ok(refs)
    }

    /// Starts a rollout of a registered package.
    pub fn start_rollout(
        &self,
        request: RolloutRequest,
        who: &str,
        now_ms: u64,
    ) -> Result<StoredRollout, RolloutRequestError> {
        let _writer = self.write_lock();
        let record = self
            .model(&request.model, request.version)?
            .ok_or_else(|| {
                RolloutRequestError::UnknownModel(format!("{} {}", request.model, request.version))
            })?;
        let targets = self.resolve(&request.target)?;
        let spec = RolloutSpec {
            model: record.name.clone(),
            version: record.version,
            sha256: record.sha256.clone(),
            waves: request.waves.clone().unwrap_or_else(|| {
                vec![
                    WaveSize::Count(1),
                    WaveSize::Percent(10),
                    WaveSize::Percent(50),
                    WaveSize::Percent(100),
                ]
            }),
            max_failure_fraction: request.max_failure_fraction,
            gateway_timeout_s: request.gateway_timeout_s.unwrap_or(1800),
            allow_downgrade: request.allow_downgrade,
        };
        let n = get_json::<u64>(&*self.store, ROLLOUT_SEQUENCE)?.unwrap_or(0) + 1;
        let id = format!("R-{n:06}");
        let (rollout, _) = Rollout::start(id, spec, targets, now_ms)?;
        let stored = StoredRollout {
            rollout,
            target: request.target,
            shadow_s: request.shadow_s.unwrap_or(300),
            package_size: record.size,
            created_by: who.to_owned(),
            shadow: Default::default(),
        };
        self.store.commit(vec![
            put_json(ROLLOUT_SEQUENCE, &n),
            put_json(StoredRollout::key(&stored.rollout.id), &stored),
        ])?;
        tracing::info!(rollout = %stored.rollout.id, model = %record.name, version = %record.version, gateways = stored.rollout.gateways.len(), who, "rollout started");
        Ok(stored)
    }

    /// Changes a rollout in one commit: `change` may refuse (nothing is
    /// written then).
    pub fn update_rollout<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut StoredRollout) -> Result<T, RolloutError>,
    ) -> Result<(StoredRollout, T), RolloutRequestError> {
        let _writer = self.write_lock();
        let mut stored = self
            .rollout(id)?
            .ok_or_else(|| RolloutRequestError::NotFound(id.to_owned()))?;
        let before = stored.clone();
        let out = change(&mut stored)?;
        if stored != before {
            self.store
                .commit(vec![put_json(StoredRollout::key(id), &stored)])?;
        }
        Ok((stored, out))
    }
}
