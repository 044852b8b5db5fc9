//! Carries rollouts out over MQTT: offers, package bytes, rollbacks, and
//! the gateways' answers.
//!
//! The state of every rollout is kept by the ledger ([`crate::ledger::rollouts`]);
//! what is sent follows from it, not from a queue of actions, so nothing is
//! lost when the hub restarts or a message is dropped: a gateway whose
//! phase is `offered` gets the offer again every [`RESEND_EVERY`] until it
//! answers, one that is `rolling_back` gets the rollback again until it
//! reports it is back. Gateways fetch the package in chunks, from where
//! their download stands, so a download resumes after any reconnect; the
//! hub answers each fetch from its registry (chunks are QoS 0: a lost one
//! is fetched again).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::ota::{
    Fetch, ModelChunk, ModelOffer, ModelRollback, OtaBody, OtaMessage, OtaPhase, OtaStatus,
    base64_encode,
};
use protocol::{Command, command};
use rumqttc::{AsyncClient, QoS};

use crate::ledger::Ledger;
use crate::ledger::rollouts::{ShadowFigures, StoredRollout};
use crate::rollout::{GatewayPhase, GatewayRef, GatewayReport};

/// How often an unanswered offer or rollback is sent again.
pub const RESEND_EVERY: Duration = Duration::from_secs(15);

/// What the ingest task keeps between messages to drive rollouts.
#[derive(Default)]
pub struct OtaDispatcher {
    /// When each (rollout, gateway, command) was last sent.
    last_sent: HashMap<(String, GatewayRef, Command), Instant>,
    /// Package bytes by SHA-256, read from the registry once.
    packages: HashMap<String, Arc<Vec<u8>>>,
}

fn report_of(phase: &OtaPhase) -> GatewayReport {
    match phase {
        OtaPhase::Downloading { received, total } => GatewayReport::Downloading {
            received: *received,
            total: *total,
        },
        OtaPhase::Verifying => GatewayReport::Verifying,
        OtaPhase::Shadow { .. } => GatewayReport::Shadow,
        OtaPhase::Active => GatewayReport::Active,
        OtaPhase::Failed { reason } => GatewayReport::Failed {
            reason: reason.clone(),
        },
        OtaPhase::RolledBack => GatewayReport::RolledBack,
    }
}

impl OtaDispatcher {
    /// A gateway's fetch or status.
    pub async fn on_message(&mut self, ledger: &Ledger, client: &AsyncClient, m: OtaMessage) {
        let gateway = GatewayRef {
            site: m.site.clone(),
            gateway: m.gateway.clone(),
        };
        match m.body {
            OtaBody::Fetch(f) => self.serve(ledger, client, &gateway, f).await,
            OtaBody::Status(status) => Self::record(ledger, &gateway, status).await,
        }
    }

    async fn record(ledger: &Ledger, gateway: &GatewayRef, status: OtaStatus) {
        let l = ledger.clone();
        let gw = gateway.clone();
        let id = status.rollout_id.clone();
        let report = report_of(&status.phase);
        let figures = match status.phase {
            OtaPhase::Shadow {
                windows,
                agreement,
                alarm_rate_new,
                alarm_rate_active,
            } => Some(ShadowFigures {
                windows,
                agreement,
                alarm_rate_new,
                alarm_rate_active,
            }),
            _ => None,
        };
        let done = tokio::task::spawn_blocking(move || {
            l.update_rollout(&id, |r| {
                let actions = r.rollout.report(&gw, report, now_ms())?;
                if let Some(f) = figures {
                    r.shadow.insert(format!("{}/{}", gw.site, gw.gateway), f);
                }
                Ok(actions)
            })
        })
        .await;
        match done {
            Ok(Ok(_)) => {
                tracing::info!(rollout = %status.rollout_id, site = %gateway.site, gateway = %gateway.gateway, phase = ?status.phase, "rollout status")
            }
            Ok(Err(e)) => {
                tracing::warn!(rollout = %status.rollout_id, site = %gateway.site, gateway = %gateway.gateway, "rollout status not applied: {e}")
            }
            Err(e) => tracing::error!("rollout status handling panicked: {e}"),
        }
    }

    async fn serve(&mut self, ledger: &Ledger, client: &AsyncClient, gw: &GatewayRef, f: Fetch) {
        let bytes = match self.packages.get(&f.sha256) {
            Some(b) => b.clone(),
            None => match ledger.model_package(&f.sha256) {
                Ok(Some(b)) => {
                    let b = Arc::new(b);
                    self.packages.insert(f.sha256.clone(), b.clone());
                    b
                }
                Ok(None) => {
                    tracing::warn!(site = %gw.site, gateway = %gw.gateway, sha256 = %f.sha256, "fetch of a package the registry does not hold");
                    return;
                }
                Err(e) => {
                    tracing::error!("cannot read a package from the registry: {e}");
                    return;
                }
            },
        };
        let start = (f.offset as usize).min(bytes.len());
        let end = start.saturating_add(f.len as usize).min(bytes.len());
        let chunk = ModelChunk {
            sha256: f.sha256,
            offset: start as u64,
            total: bytes.len() as u64,
            data: base64_encode(&bytes[start..end]),
        };
        let Ok(topic) = command::gateway_topic(&gw.site, &gw.gateway, Command::ModelChunk) else {
            return;
        };
        let payload = serde_json::to_vec(&chunk).expect("a chunk serialises");
        if let Err(e) = client.publish(topic, QoS::AtMostOnce, false, payload).await {
            tracing::warn!("cannot queue a package chunk: {e}");
        }
    }

    /// Time passes: rollouts judge timeouts, and unanswered offers and
    /// rollbacks are sent (again).
    pub async fn tick(&mut self, ledger: &Ledger, client: &AsyncClient) {
        let l = ledger.clone();
        let live = tokio::task::spawn_blocking(move || -> Vec<StoredRollout> {
            let now = now_ms();
            let ids: Vec<String> = match l.rollouts() {
                Ok(all) => all
                    .into_iter()
                    .filter(|r| r.rollout.is_live())
                    .map(|r| r.rollout.id)
                    .collect(),
                Err(e) => {
                    tracing::error!("cannot read rollouts: {e}");
                    return Vec::new();
                }
            };
            ids.iter()
                .filter_map(
                    |id| match l.update_rollout(id, |r| Ok(r.rollout.tick(now))) {
                        Ok((stored, _)) => Some(stored),
                        Err(e) => {
                            tracing::error!(rollout = %id, "rollout tick failed: {e}");
                            None
                        }
                    },
                )
                .collect()
        })
        .await
        .unwrap_or_default();
        for stored in live {
            self.send_due(&stored, client).await;
        }
    }

    async fn send_due(&mut self, stored: &StoredRollout, client: &AsyncClient) {
        let r = &stored.rollout;
        for g in &r.gateways {
            let command = match g.phase {
                GatewayPhase::Offered { .. } => Command::ModelOffer,
                GatewayPhase::RollingBack => Command::ModelRollback,
                _ => continue,
            };
            let key = (r.id.clone(), g.gateway.clone(), command);
            if self
                .last_sent
                .get(&key)
                .is_some_and(|t| t.elapsed() < RESEND_EVERY)
            {
                continue;
            }
            let payload = match command {
                Command::ModelOffer => serde_json::to_vec(&ModelOffer {
                    rollout_id: r.id.clone(),
                    name: r.spec.model.clone(),
                    version: r.spec.version,
                    sha256: r.spec.sha256.clone(),
                    size: stored.package_size,
                    shadow_s: stored.shadow_s,
                    allow_downgrade: r.spec.allow_downgrade,
                }),
                _ => serde_json::to_vec(&ModelRollback {
                    rollout_id: r.id.clone(),
                    name: r.spec.model.clone(),
                }),
            }
            .expect("commands serialise");
            let Ok(topic) = command::gateway_topic(&g.gateway.site, &g.gateway.gateway, command)
            else {
                continue;
            };
            match client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
            {
                Ok(()) => {
                    tracing::info!(rollout = %r.id, site = %g.gateway.site, gateway = %g.gateway.gateway, "{} sent", command.as_str());
                    self.last_sent.insert(key, Instant::now());
                }
                Err(e) => tracing::warn!("cannot queue {}: {e}", command.as_str()),
            }
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
