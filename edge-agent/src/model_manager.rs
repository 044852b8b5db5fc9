//! Models over the air on the gateway: download, verify, shadow, swap,
//! probation, and rollback, so that a gateway always runs a verified model.
//!
//! One rollout at a time, in this order, each step reported to the hub
//! (`pdm/v1/{site}/{gateway}/ota`, kept in the outbox like telemetry):
//!
//! 1. **Download**: the package is fetched in chunks from where the file
//!    `data_dir/ota/{sha256}.part` stands, so it resumes after a reconnect
//!    or a restart; a fetch unanswered for [`FETCH_TIMEOUT`] is sent again.
//! 2. **Verify**: the whole file's SHA-256 must be the offer's; the package
//!    must be signed by a key in `[models] trusted_keys`, every file must
//!    match its hash, the model must load in tract, pass its self-test
//!    vectors, fit each asset running that model (kind, feature profile)
//!    and not be older than what runs unless the engineer allowed a
//!    downgrade. Any refusal ends the rollout here with the reason; nothing
//!    changed on the gateway.
//! 3. **Shadow**: for `shadow_s` the candidate scores every window beside
//!    the active model (agreement and alarm rates are reported); a
//!    candidate that fails on live data is refused.
//! 4. **Swap** between two windows; the previous model is kept in memory.
//! 5. **Probation** for `probation_windows` windows: a model that fails on a
//!    window, or whose share of alarm windows exceeds the previous model's
//!    (measured in shadow) by more than `max_probation_alarm_fraction` (an
//!    alarm storm: a faulty machine alarming under both models is not one),
//!    is swapped out again by the gateway itself, and the rollout is
//!    reported failed with the reason. Only a model that passes is recorded
//!    as installed (`ota/installed/{asset}` in the store, its package in
//!    `data_dir/ota/packages/`), so an agent killed at any point restarts
//!    on a verified model: the installed one or its configured one.
//!
//! The hub's rollback puts the asset's configured model back and forgets
//! the installation (a package installed by an earlier rollout is not
//! restored: the configured model is the one an engineer checked on site).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::ota::{
    Fetch, MAX_CHUNK_BYTES, ModelChunk, ModelOffer, ModelRollback, OtaBody, OtaMessage, OtaPhase,
    OtaStatus, base64_decode,
};
use protocol::package::{self, CommissioningPolicy, VerifyingKey, Version};
use protocol::{AssetKind, Message};
use serde::{Deserialize, Serialize};
use store::{Store, get_json, put_json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::features::FeatureProfile;
use crate::model::AnomalyModel;
use crate::model_package::{self, PackagedModel};
use crate::model_slot::{Instruction, ModelSlot};
use crate::outbox::Outbox;

/// How long a fetch may go unanswered before it is sent again.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const JOB_KEY: &str = "ota/job";

/// What the manager needs to know (from the gateway's config).
#[derive(Debug, Clone)]
pub struct ManagerSettings {
    pub site: String,
    pub gateway: String,
    pub data_dir: PathBuf,
    pub trusted_keys: Vec<VerifyingKey>,
    pub probation_windows: u64,
    pub max_probation_alarm_fraction: f64,
    pub fetch_chunk_bytes: u32,
}

/// An asset whose model the manager may change.
pub struct ManagedAsset {
    pub asset_id: String,
    pub kind: AssetKind,
    pub slot: Arc<ModelSlot>,
    /// The model it runs now.
    pub model: AnomalyModel,
    /// Its configured model (the fallback of last resort).
    pub configured: AnomalyModel,
}

/// What reaches the manager from the link.
#[derive(Debug, Clone)]
pub enum ManagerInput {
    Offer(ModelOffer),
    Chunk(ModelChunk),
    Rollback(ModelRollback),
    /// A (new) connection to the broker: resend what is pending.
    Connected,
}

/// The rollout in hand, as kept in the store (`ota/job`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    offer: ModelOffer,
    /// The last phase reported.
    phase: OtaPhase,
}

/// An installed package (`ota/installed/{asset}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    pub name: String,
    pub version: Version,
    pub sha256: String,
    pub rollout_id: String,
}

fn installed_key(asset: &str) -> String {
    format!("ota/installed/{asset}")
}

/// The package installed for `asset`, loaded and verified again, if any
/// (a package that no longer verifies is ignored with a warning).
pub fn installed_model(
    store: &dyn Store,
    data_dir: &std::path::Path,
    trusted: &[VerifyingKey],
    asset: &str,
) -> Option<AnomalyModel> {
    let record: Installed = get_json(store, &installed_key(asset)).ok()??;
    let path = packages_dir(data_dir).join(format!("{}.pdmpkg", record.sha256));
    let loaded = std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| model_package::load(&b, trusted).map_err(|e| e.to_string()));
    match loaded {
        Ok(p) => {
            tracing::info!(asset, model = %p.label(), "running the model installed over the air");
            Some(p.model)
        }
        Err(e) => {
            tracing::warn!(
                asset,
                "installed package {} unusable, running the configured model: {e}",
                path.display()
            );
            None
        }
    }
}

fn packages_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("ota").join("packages")
}

enum Stage {
    Idle,
    Downloading {
        last_fetch: Instant,
    },
    Shadow {
        until: Instant,
        package: Box<PackagedModel>,
        assets: Vec<usize>,
    },
    Probation {
        package: Box<PackagedModel>,
        assets: Vec<usize>,
        previous: Vec<AnomalyModel>,
        /// Each asset's alarm rate under the previous model, in shadow.
        alarm_rate_before: Vec<f64>,
    },
}

struct Manager {
    settings: ManagerSettings,
    assets: Vec<ManagedAsset>,
    outbox: Arc<Outbox>,
    store: Arc<dyn Store>,
    job: Option<Job>,
    stage: Stage,
}

/// Runs until `shutdown`.
pub async fn run(
    settings: ManagerSettings,
    assets: Vec<ManagedAsset>,
    outbox: Arc<Outbox>,
    store: Arc<dyn Store>,
    mut inputs: mpsc::UnboundedReceiver<ManagerInput>,
    shutdown: CancellationToken,
) {
    let job: Option<Job> = get_json(store.as_ref(), JOB_KEY).ok().flatten();
    let mut m = Manager {
        settings,
        assets,
        outbox,
        store,
        job,
        stage: Stage::Idle,
    };
    m.resume();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => m.tick(),
            input = inputs.recv() => match input {
                Some(i) => m.input(i),
                None => return,
            },
        }
    }
}

fn now_ms() -> u64 {
    crate::source::now_us() / 1000
}

impl Manager {
    fn partial(&self, sha: &str) -> PathBuf {
        self.settings
            .data_dir
            .join("ota")
            .join(format!("{sha}.part"))
    }

    fn send(&self, body: OtaBody) {
        let message = Message::Ota(OtaMessage {
            site: self.settings.site.clone(),
            gateway: self.settings.gateway.clone(),
            ts_ms: now_ms(),
            body,
        });
        if let Err(e) = self.outbox.push(&message, now_ms()) {
            tracing::warn!("OTA message not kept: {e}");
        }
    }

    /// Reports `phase` for the job in hand and remembers it.
    fn report(&mut self, phase: OtaPhase) {
        let Some(job) = self.job.as_mut() else { return };
        job.phase = phase.clone();
        let status = OtaStatus {
            rollout_id: job.offer.rollout_id.clone(),
            name: job.offer.name.clone(),
            version: job.offer.version,
            phase,
        };
        if let Err(e) = self.store.commit(vec![put_json(JOB_KEY, &*job)]) {
            tracing::warn!("rollout state not kept: {e}");
        }
        tracing::info!(rollout = %status.rollout_id, model = %format!("{} {}", status.name, status.version), phase = ?status.phase, "model rollout");
        self.send(OtaBody::Status(status));
    }

    fn fail(&mut self, reason: String) {
        tracing::warn!("model rollout refused: {reason}");
        if let Some(job) = &self.job {
            let _ = std::fs::remove_file(self.partial(&job.offer.sha256));
        }
        self.stage = Stage::Idle;
        self.report(OtaPhase::Failed { reason });
    }

    /// After a restart: a download goes on from where it stood; a job past
    /// its download starts again from verification (nothing was installed
    /// unless it had passed probation).
    fn resume(&mut self) {
        let Some(job) = self.job.clone() else { return };
        match job.phase {
            OtaPhase::Failed { .. } | OtaPhase::Active | OtaPhase::RolledBack => {
                // Finished: say so again (the hub may not have heard).
                self.report(job.phase);
            }
            _ => self.fetch_next(),
        }
    }

    fn input(&mut self, input: ManagerInput) {
        match input {
            ManagerInput::Offer(offer) => self.offer(offer),
            ManagerInput::Chunk(chunk) => self.chunk(chunk),
            ManagerInput::Rollback(r) => self.rollback(r),
            ManagerInput::Connected => {
                if let Some(job) = self.job.clone() {
                    self.report(job.phase);
                    if matches!(self.stage, Stage::Downloading { .. }) {
                        self.fetch_next();
                    }
                }
            }
        }
    }

    fn offer(&mut self, offer: ModelOffer) {
        if let Some(job) = &self.job {
            if job.offer.rollout_id == offer.rollout_id {
                // The hub sends offers again until it hears: say where we are.
                let phase = job.phase.clone();
                self.report(phase);
                return;
            }
            if !matches!(self.stage, Stage::Idle) {
                // Refuse only the newcomer: the job in hand goes on.
                let busy = format!("busy with rollout {}", job.offer.rollout_id);
                self.send(OtaBody::Status(OtaStatus {
                    rollout_id: offer.rollout_id,
                    name: offer.name,
                    version: offer.version,
                    phase: OtaPhase::Failed { reason: busy },
                }));
                return;
            }
        }
        self.job = Some(Job {
            offer: offer.clone(),
            phase: OtaPhase::Downloading {
                received: 0,
                total: offer.size,
            },
        });
        if self.settings.trusted_keys.is_empty() {
            return self.fail(
                "this gateway trusts no signing key ([models] trusted_keys is empty)".into(),
            );
        }
        if offer.size > package::MAX_PACKAGE_BYTES as u64 {
            return self.fail(format!(
                "package of {} bytes is over the {} accepted",
                offer.size,
                package::MAX_PACKAGE_BYTES
            ));
        }
        self.fetch_next();
    }

    fn have(&self, sha: &str) -> u64 {
        std::fs::metadata(self.partial(sha)).map_or(0, |m| m.len())
    }

    /// Asks for the next chunk, or verifies a complete download.
    fn fetch_next(&mut self) {
        let Some(job) = self.job.clone() else { return };
        let have = self.have(&job.offer.sha256);
        if have >= job.offer.size {
            return self.verify();
        }
        self.stage = Stage::Downloading {
            last_fetch: Instant::now(),
        };
        let chunk = self.settings.fetch_chunk_bytes.clamp(1, MAX_CHUNK_BYTES);
        let len = (job.offer.size - have).min(u64::from(chunk)) as u32;
        tracing::info!(rollout = %job.offer.rollout_id, "fetching {len} bytes of the package from byte {have} of {}", job.offer.size);
        self.send(OtaBody::Fetch(Fetch {
            rollout_id: job.offer.rollout_id.clone(),
            sha256: job.offer.sha256.clone(),
            offset: have,
            len,
        }));
    }

    fn chunk(&mut self, chunk: ModelChunk) {
        let Some(job) = self.job.clone() else { return };
        if chunk.sha256 != job.offer.sha256 || !matches!(self.stage, Stage::Downloading { .. }) {
            return;
        }
        let have = self.have(&job.offer.sha256);
        if chunk.offset != have {
            return; // a duplicate or a late answer: ask again on the timeout
        }
        let Some(bytes) = base64_decode(&chunk.data) else {
            tracing::warn!("unreadable package chunk ignored");
            return;
        };
        if chunk.total != job.offer.size || have + bytes.len() as u64 > job.offer.size {
            return self.fail(format!(
                "the hub sent {} bytes at {} of a {}-byte package offered as {} bytes",
                bytes.len(),
                chunk.offset,
                chunk.total,
                job.offer.size
            ));
        }
        let path = self.partial(&job.offer.sha256);
        let written = std::fs::create_dir_all(path.parent().expect("in ota/")).and_then(|()| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(&bytes)?;
            f.sync_data()
        });
        if let Err(e) = written {
            return self.fail(format!(
                "cannot write the download to {}: {e}",
                path.display()
            ));
        }
        let received = have + bytes.len() as u64;
        self.report(OtaPhase::Downloading {
            received,
            total: job.offer.size,
        });
        self.fetch_next();
    }

    fn verify(&mut self) {
        let Some(job) = self.job.clone() else { return };
        self.report(OtaPhase::Verifying);
        let offer = &job.offer;
        let bytes = match std::fs::read(self.partial(&offer.sha256)) {
            Ok(b) => b,
            Err(e) => return self.fail(format!("cannot read the download: {e}")),
        };
        if package::sha256_hex(&bytes) != offer.sha256 {
            return self.fail("the download's SHA-256 is not the offer's".into());
        }
        let packaged = match model_package::load(&bytes, &self.settings.trusted_keys) {
            Ok(p) => p,
            Err(e) => return self.fail(e.to_string()),
        };
        let m = &packaged.package.manifest;
        if m.name != offer.name || m.version != offer.version {
            return self.fail(format!(
                "the package is {} {}, the offer said {} {}",
                m.name, m.version, offer.name, offer.version
            ));
        }
        let targets: Vec<usize> = (0..self.assets.len())
            .filter(|&i| self.assets[i].model.manifest().model_id == m.name)
            .collect();
        if targets.is_empty() {
            return self.fail(format!("no asset of this gateway runs model {}", m.name));
        }
        for &i in &targets {
            let a = &self.assets[i];
            let Some(profile) = FeatureProfile::by_name(&m.feature_profile) else {
                return self.fail(format!(
                    "this agent cannot compute feature profile {}",
                    m.feature_profile
                ));
            };
            let running = Version::parse(&a.model.manifest().version).ok();
            if let Err(e) = packaged.check_for(a.kind, profile, running, offer.allow_downgrade) {
                return self.fail(format!("asset {}: {e}", a.asset_id));
            }
        }
        for &i in &targets {
            self.assets[i]
                .slot
                .instruct(Instruction::Shadow(packaged.model.clone()));
        }
        self.stage = Stage::Shadow {
            until: Instant::now() + Duration::from_secs(offer.shadow_s),
            package: Box::new(packaged),
            assets: targets,
        };
        self.report(OtaPhase::Shadow {
            windows: 0,
            agreement: 1.0,
            alarm_rate_new: 0.0,
            alarm_rate_active: 0.0,
        });
    }

    fn tick(&mut self) {
        match &self.stage {
            Stage::Idle => {}
            Stage::Downloading { last_fetch } => {
                if last_fetch.elapsed() >= FETCH_TIMEOUT {
                    self.fetch_next();
                }
            }
            Stage::Shadow { until, .. } => {
                if Instant::now() >= *until {
                    self.end_shadow();
                }
            }
            Stage::Probation { .. } => self.judge_probation(),
        }
    }

    fn end_shadow(&mut self) {
        let Stage::Shadow {
            package, assets, ..
        } = std::mem::replace(&mut self.stage, Stage::Idle)
        else {
            return;
        };
        let mut total = crate::model_slot::ShadowStats::default();
        let mut alarm_rate_before = Vec::new();
        for &i in &assets {
            let stats = self.assets[i].slot.end_shadow();
            alarm_rate_before.push(stats.map_or(0.0, |s| s.alarm_rate_active()));
            if let Some(s) = stats {
                total.windows += s.windows;
                total.agreed += s.agreed;
                total.alarms_new += s.alarms_new;
                total.alarms_active += s.alarms_active;
                total.failures += s.failures;
            }
        }
        self.report(OtaPhase::Shadow {
            windows: total.windows,
            agreement: total.agreement(),
            alarm_rate_new: total.alarm_rate_new(),
            alarm_rate_active: total.alarm_rate_active(),
        });
        if total.failures > 0 {
            return self.fail(format!(
                "in shadow the new model could not score {} of {} windows",
                total.failures, total.windows
            ));
        }
        let keep = package.package.manifest.commissioning == CommissioningPolicy::Keep;
        let mut previous = Vec::new();
        for &i in &assets {
            let a = &mut self.assets[i];
            previous.push(std::mem::replace(&mut a.model, package.model.clone()));
            a.slot.instruct(Instruction::Swap {
                model: package.model.clone(),
                keep_commissioning: keep,
            });
        }
        tracing::info!(model = %package.label(), "swapped in; on probation");
        self.stage = Stage::Probation {
            package,
            assets,
            previous,
            alarm_rate_before,
        };
    }

    fn judge_probation(&mut self) {
        let Stage::Probation {
            assets,
            alarm_rate_before,
            ..
        } = &self.stage
        else {
            return;
        };
        let limit = self.settings.probation_windows;
        let mut done = true;
        let mut why = None;
        for (&i, &before) in assets.iter().zip(alarm_rate_before) {
            let a = &self.assets[i];
            let p = a.slot.probation().unwrap_or_default();
            if p.failures > 0 {
                why = Some(format!(
                    "asset {}: the new model failed on {} of {} windows after the swap",
                    a.asset_id, p.failures, p.windows
                ));
            } else if p.windows > 0
                && p.windows >= limit
                && p.alarms as f64 / p.windows as f64 - before
                    > self.settings.max_probation_alarm_fraction
            {
                why = Some(format!(
                    "asset {}: alarm storm after the swap ({} alarms in {} windows; {:.0} % under the previous model)",
                    a.asset_id,
                    p.alarms,
                    p.windows,
                    100.0 * before
                ));
            }
            done &= p.windows >= limit;
        }
        if let Some(reason) = why {
            self.swap_back();
            return self.fail(format!("rolled back by the gateway: {reason}"));
        }
        if done {
            self.install();
        }
    }

    /// Puts the previous models back (after a failed probation).
    fn swap_back(&mut self) {
        let Stage::Probation {
            assets, previous, ..
        } = std::mem::replace(&mut self.stage, Stage::Idle)
        else {
            return;
        };
        for (&i, model) in assets.iter().zip(previous) {
            self.restore(i, model);
        }
    }

    fn restore(&mut self, i: usize, model: AnomalyModel) {
        let a = &mut self.assets[i];
        a.slot.end_probation();
        a.slot.instruct(Instruction::Swap {
            model: model.clone(),
            keep_commissioning: false,
        });
        a.model = model;
    }

    /// Probation passed: record the installation and report success.
    fn install(&mut self) {
        let Stage::Probation {
            package,
            assets,
            previous,
            ..
        } = std::mem::replace(&mut self.stage, Stage::Idle)
        else {
            return;
        };
        let Some(job) = self.job.clone() else { return };
        let dir = packages_dir(&self.settings.data_dir);
        let target = dir.join(format!("{}.pdmpkg", job.offer.sha256));
        let moved = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::rename(self.partial(&job.offer.sha256), &target));
        if let Err(e) = moved {
            for (&i, model) in assets.iter().zip(previous) {
                self.restore(i, model);
            }
            return self.fail(format!("cannot keep the package: {e}"));
        }
        let record = Installed {
            name: package.package.manifest.name.clone(),
            version: package.package.manifest.version,
            sha256: job.offer.sha256.clone(),
            rollout_id: job.offer.rollout_id.clone(),
        };
        let writes = assets
            .iter()
            .map(|&i| {
                self.assets[i].slot.end_probation();
                put_json(installed_key(&self.assets[i].asset_id), &record)
            })
            .collect();
        if let Err(e) = self.store.commit(writes) {
            tracing::warn!(
                "installation not recorded (the next start runs the previous model): {e}"
            );
        }
        self.report(OtaPhase::Active);
    }

    /// The hub's rollback: the configured model again, installation
    /// forgotten.
    fn rollback(&mut self, r: ModelRollback) {
        let Some(job) = self.job.clone() else { return };
        if job.offer.rollout_id != r.rollout_id {
            return;
        }
        if matches!(job.phase, OtaPhase::RolledBack) {
            return self.report(OtaPhase::RolledBack);
        }
        if let Stage::Shadow { assets, .. } = &self.stage {
            for &i in assets {
                self.assets[i].slot.end_shadow();
            }
        }
        self.stage = Stage::Idle;
        let mut writes = Vec::new();
        for i in 0..self.assets.len() {
            if self.assets[i].model.manifest().model_id != job.offer.name {
                continue;
            }
            let configured = self.assets[i].configured.clone();
            if self.assets[i].model.model_ref() != configured.model_ref() {
                self.restore(i, configured);
            }
            writes.push(store::Write::Delete(installed_key(
                &self.assets[i].asset_id,
            )));
        }
        if let Err(e) = self.store.commit(writes) {
            tracing::warn!("rollback not recorded: {e}");
        }
        let _ = std::fs::remove_file(self.partial(&job.offer.sha256));
        self.report(OtaPhase::RolledBack);
    }
}
