//! The transitions of a [`Rollout`]: the rules are in the parent module's
//! doc; this file only keeps each file short.

use std::collections::{BTreeMap, HashSet};

use super::{
    Action, GatewayPhase, GatewayProgress, GatewayRef, GatewayReport, LogLine, ROLLBACK_FAILED,
    Rollout, RolloutError, RolloutSpec, RolloutState, plan,
};

impl GatewayPhase {
    /// The phase after `report`, or None when the report is ignored.
    fn after(&self, report: GatewayReport) -> Option<GatewayPhase> {
        use GatewayPhase as P;
        use GatewayReport as R;
        let step = self.step();
        let (phase, rank) = match (self, report) {
            (P::RollingBack, R::RolledBack) => return Some(P::RolledBack),
            (P::RollingBack, R::Failed { reason }) => {
                return Some(P::Failed {
                    reason: format!("{ROLLBACK_FAILED}: {reason}"),
                });
            }
            (P::Downloading { received: had, .. }, R::Downloading { received, .. })
                if received <= *had =>
            {
                return None;
            }
            (_, R::Downloading { received, total }) => (P::Downloading { received, total }, 2),
            (_, R::Verifying) => (P::Verifying, 3),
            (_, R::Shadow) => (P::Shadow, 4),
            (_, R::Active) => (P::Active, 5),
            (_, R::Failed { reason }) => (P::Failed { reason }, 5),
            (_, R::RolledBack) => return None,
        };
        // Forward only; more download progress is forward too.
        (step > 0 && (rank > step || rank == 2 && step == 2)).then_some(phase)
    }
}

impl Rollout {
    /// Plans the waves over `targets` (see the module doc) and starts wave
    /// 0: returns the Offers for it.
    pub fn start(
        id: String,
        spec: RolloutSpec,
        targets: Vec<GatewayRef>,
        now_ms: u64,
    ) -> Result<(Rollout, Vec<Action>), RolloutError> {
        spec.validate()?;
        let mut seen = HashSet::new();
        let targets: Vec<GatewayRef> = targets
            .into_iter()
            .filter(|t| seen.insert(t.clone()))
            .collect();
        if targets.is_empty() {
            return Err(RolloutError::NoGateways);
        }
        let (wave_sizes, skipped) = plan(&spec.waves, targets.len())?;
        let waves = wave_sizes.iter().enumerate().flat_map(|(w, &n)| vec![w; n]);
        let progress = |(gateway, wave)| GatewayProgress {
            gateway,
            wave,
            phase: GatewayPhase::Waiting,
            updated_at_ms: now_ms,
            offered_at_ms: None,
        };
        let gateways: Vec<_> = targets.into_iter().zip(waves).map(progress).collect();
        let sizes: Vec<String> = wave_sizes.iter().map(usize::to_string).collect();
        let (count, sizes) = (gateways_(gateways.len()), sizes.join(", "));
        let (model, version, waves) = (&spec.model, spec.version, wave_sizes.len());
        let created =
            format!("created: `{model}` {version} to {count} in {waves} waves of {sizes}");
        let skipped: Vec<String> = skipped
            .iter()
            .map(|&i| format!("{i} (`{}`)", spec.waves[i]))
            .collect();
        let state = RolloutState::Running { wave: 0 };
        let (created_at_ms, updated_at_ms, log) = (now_ms, now_ms, vec![]);
        let mut rollout = Rollout {
            id,
            spec,
            state,
            gateways,
            wave_sizes,
            created_at_ms,
            updated_at_ms,
            log,
        };
        rollout.note(now_ms, created);
        if !skipped.is_empty() {
            rollout.note(
                now_ms,
                format!("waves {} add no gateway: skipped", skipped.join(", ")),
            );
        }
        let actions = rollout.start_wave(0, now_ms);
        Ok((rollout, actions))
    }

    /// A gateway's report (see the module doc for which are ignored). May
    /// finish the wave: the next wave starts (Offers) or the rollout halts.
    pub fn report(
        &mut self,
        gateway: &GatewayRef,
        report: GatewayReport,
        now_ms: u64,
    ) -> Result<Vec<Action>, RolloutError> {
        let Some(i) = self.gateways.iter().position(|g| &g.gateway == gateway) else {
            return Err(RolloutError::UnknownGateway(gateway.clone()));
        };
        let wave = self.gateways[i].wave;
        let failed_before = self.failed_in(wave);
        let Some(phase) = self.gateways[i].phase.after(report) else {
            return Ok(vec![]);
        };
        if let GatewayPhase::Failed { reason } = &phase {
            self.note(now_ms, format!("{gateway} failed: {reason}"));
        }
        let g = &mut self.gateways[i];
        (g.phase, g.updated_at_ms, self.updated_at_ms) = (phase, now_ms, now_ms);
        Ok(self.settle(wave, failed_before, now_ms))
    }

    /// Time passes: fails the gateways past their timeout (module doc), then
    /// judges the wave like after a report.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        let (wave, secs) = (self.state.wave(), self.spec.gateway_timeout_s);
        if wave.is_none() && self.state != RolloutState::RollingBack {
            return vec![];
        }
        let failed_before = wave.map_or(0, |w| self.failed_in(w));
        let late = |since: u64| now_ms.saturating_sub(since) > secs.saturating_mul(1000);
        let mut names = vec![];
        for g in &mut self.gateways {
            let offered = g.offered_at_ms.unwrap_or(g.updated_at_ms);
            let reason = match &g.phase {
                GatewayPhase::RollingBack if late(g.updated_at_ms) => {
                    format!("{ROLLBACK_FAILED}: no answer within {secs} s")
                }
                GatewayPhase::Offered { offered_at_ms } if late(*offered_at_ms) => {
                    format!("no answer within {secs} s")
                }
                p if p.in_flight() && late(offered) => {
                    format!(
                        "not finished within {secs} s of the offer (was {})",
                        p.name()
                    )
                }
                _ => continue,
            };
            (g.phase, g.updated_at_ms) = (GatewayPhase::Failed { reason }, now_ms);
            names.push(g.gateway.to_string());
        }
        if names.is_empty() {
            return vec![];
        }
        let more = names.len().saturating_sub(10);
        names.truncate(10);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        self.note(
            now_ms,
            format!("timed out after {secs} s: {}{more}", names.join(", ")),
        );
        self.settle(wave.unwrap_or(0), failed_before, now_ms)
    }

    /// Stops new waves from starting. Only when running.
    pub fn pause(&mut self, who: &str, now_ms: u64) -> Result<(), RolloutError> {
        let RolloutState::Running { wave } = self.state else {
            return Err(self.not_allowed("pause"));
        };
        self.state = RolloutState::Paused { wave };
        self.note(now_ms, format!("paused by {who}"));
        Ok(())
    }

    /// Goes on from paused or halted (accepting the halted wave's failures):
    /// the next wave starts if the current one is done.
    pub fn resume(&mut self, who: &str, now_ms: u64) -> Result<Vec<Action>, RolloutError> {
        let (wave, failed) = match self.state {
            RolloutState::Paused { wave } => (wave, None),
            RolloutState::Halted { wave, .. } => (wave, Some(self.failed_in(wave))),
            _ => return Err(self.not_allowed("resume")),
        };
        let text = match failed {
            Some(n) => format!(
                "resumed by {who}, accepting {} failed in wave {wave}",
                gateways_(n)
            ),
            None => format!("resumed by {who}"),
        };
        self.state = RolloutState::Running { wave };
        self.note(now_ms, text);
        Ok(self.settle(wave, self.failed_in(wave), now_ms))
    }

    /// Asks every gateway offered and not failed to go back to its previous
    /// model. From running, paused, halted or completed.
    pub fn roll_back(&mut self, who: &str, now_ms: u64) -> Result<Vec<Action>, RolloutError> {
        if self.state.wave().is_none() && self.state != RolloutState::Completed {
            return Err(self.not_allowed("roll back"));
        }
        let mut actions = vec![];
        for g in &mut self.gateways {
            if g.phase.in_flight() || g.phase == GatewayPhase::Active {
                (g.phase, g.updated_at_ms) = (GatewayPhase::RollingBack, now_ms);
                actions.push(Action::RollBack {
                    gateway: g.gateway.clone(),
                });
            }
        }
        self.state = RolloutState::RollingBack;
        let asked = gateways_(actions.len());
        self.note(
            now_ms,
            format!("rolled back by {who}: {asked} asked to return to their previous model"),
        );
        self.settle(0, 0, now_ms);
        Ok(actions)
    }

    /// Counts per phase name (phases with no gateway left out), e.g.
    /// `{"active": 3, "failed": 1, "waiting": 36}`.
    pub fn summary(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for g in &self.gateways {
            *counts.entry(g.phase.name()).or_insert(0) += 1;
        }
        counts
    }

    /// Whether it still needs ticks/reports: running, paused with gateways
    /// in flight, rolling back.
    pub fn is_live(&self) -> bool {
        match self.state {
            RolloutState::Running { .. } | RolloutState::RollingBack => true,
            RolloutState::Paused { .. } => self.gateways.iter().any(|g| g.phase.in_flight()),
            _ => false,
        }
    }

    fn not_allowed(&self, action: &'static str) -> RolloutError {
        RolloutError::NotAllowed {
            state: self.state.name(),
            action,
        }
    }

    fn note(&mut self, at_ms: u64, text: String) {
        self.log.push(LogLine { at_ms, text });
        self.updated_at_ms = at_ms;
    }

    /// How many gateways (of `wave`, or all) are in a phase `is` accepts.
    fn count(&self, wave: Option<usize>, is: impl Fn(&GatewayPhase) -> bool) -> usize {
        let in_wave = |g: &&GatewayProgress| wave.is_none_or(|w| g.wave == w);
        self.gateways
            .iter()
            .filter(in_wave)
            .filter(|g| is(&g.phase))
            .count()
    }

    fn failed_in(&self, wave: usize) -> usize {
        self.count(Some(wave), GatewayPhase::failed)
    }

    fn too_many(&self, failed: usize, size: usize) -> bool {
        size > 0 && failed as f64 / size as f64 > self.spec.max_failure_fraction
    }

    /// After gateways of `wave` changed: halt, start the next wave,
    /// complete, or end a rollback.
    fn settle(&mut self, wave: usize, failed_before: usize, now_ms: u64) -> Vec<Action> {
        let running = match self.state {
            RolloutState::RollingBack => {
                self.end_roll_back(now_ms);
                return vec![];
            }
            RolloutState::Running { wave: w } if w == wave => true,
            RolloutState::Paused { wave: w } if w == wave => false,
            _ => return vec![],
        };
        let (failed, size) = (self.failed_in(wave), self.count(Some(wave), |_| true));
        let allowed = percent(self.spec.max_failure_fraction);
        if !self.too_many(failed_before, size) && self.too_many(failed, size) {
            let (of, share) = (gateways_(size), percent(failed as f64 / size as f64));
            let reason = format!(
                "wave {wave}: {failed} of {of} failed ({share} %), more than the {allowed} % allowed"
            );
            self.note(now_ms, format!("halted: {reason}"));
            self.state = RolloutState::Halted { wave, reason };
            return vec![];
        }
        if !running || self.count(Some(wave), |p| !p.finished()) > 0 {
            return vec![];
        }
        let verdict = match failed {
            _ if self.too_many(failed, size) => {
                format!("done with {failed} failed, accepted by an engineer")
            }
            0 => "succeeded".to_string(),
            _ => format!("succeeded with {failed} failed (within the {allowed} % allowed)"),
        };
        let (active, of) = (size - failed, gateways_(size));
        self.note(
            now_ms,
            format!("wave {wave} {verdict}: {active} of {of} active"),
        );
        let next = wave + 1;
        if next < self.wave_sizes.len() {
            self.state = RolloutState::Running { wave: next };
            let mut actions = self.start_wave(next, now_ms);
            actions.extend(self.settle(next, 0, now_ms)); // an empty wave is done at once
            return actions;
        }
        self.state = RolloutState::Completed;
        let active = self.count(None, |p| *p == GatewayPhase::Active);
        let of = gateways_(self.gateways.len());
        self.note(now_ms, format!("completed: {active} of {of} active"));
        vec![]
    }

    fn end_roll_back(&mut self, now_ms: u64) {
        if self.count(None, |p| *p == GatewayPhase::RollingBack) > 0 {
            return;
        }
        let back = gateways_(self.count(None, |p| *p == GatewayPhase::RolledBack));
        let stuck = self.count(
            None,
            |p| matches!(p, GatewayPhase::Failed { reason } if reason.starts_with(ROLLBACK_FAILED)),
        );
        self.state = RolloutState::RolledBack;
        let text = format!(
            "rolled back: {back} back on their previous model, {stuck} could not roll back"
        );
        self.note(now_ms, text);
    }

    fn start_wave(&mut self, wave: usize, now_ms: u64) -> Vec<Action> {
        let mut actions = vec![];
        for g in self.gateways.iter_mut().filter(|g| g.wave == wave) {
            if g.phase == GatewayPhase::Waiting {
                g.phase = GatewayPhase::Offered {
                    offered_at_ms: now_ms,
                };
                (g.updated_at_ms, g.offered_at_ms) = (now_ms, Some(now_ms));
                actions.push(Action::Offer {
                    gateway: g.gateway.clone(),
                });
            }
        }
        let offered = gateways_(actions.len());
        self.note(now_ms, format!("wave {wave} started: offered to {offered}"));
        actions
    }
}

/// "1 gateway", "3 gateways".
fn gateways_(n: usize) -> String {
    format!("{n} gateway{}", if n == 1 { "" } else { "s" })
}

/// A fraction as a percentage with at most one decimal: "25", "33.3".
fn percent(fraction: f64) -> String {
    let p = (fraction * 1000.0).round() / 10.0;
    if p.fract().abs() < 1e-9 {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}
