//! Where the model manager and an asset's scoring lane meet.
//!
//! The scoring lane owns its pipeline and never waits for anyone; the model
//! manager (a task of its own) must still be able to run a candidate model
//! beside the active one, swap it in, and swap it out again. So each asset
//! has a slot: the manager leaves instructions in it, and the lane, between
//! two windows, carries them out and leaves back what it saw (how often the
//! candidate agreed with the active model in shadow; how the new model
//! behaved on probation after a swap). A swap happens between two windows,
//! never inside one: the asset is always judged by exactly one model.

use std::sync::Mutex;

use crate::model::AnomalyModel;

/// What the manager asks of a lane.
#[derive(Debug, Clone)]
pub enum Instruction {
    /// Score every window with this model too, and count.
    Shadow(AnomalyModel),
    /// Judge with this model from the next window on, keeping (`true`) or
    /// not the asset's commissioning.
    Swap {
        model: AnomalyModel,
        keep_commissioning: bool,
    },
}

/// How a candidate compared with the active model, window by window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ShadowStats {
    pub windows: u64,
    /// Windows on which both said alarm, or both did not.
    pub agreed: u64,
    pub alarms_new: u64,
    pub alarms_active: u64,
    /// Windows the candidate could not score (errors, non-finite scores).
    pub failures: u64,
}

impl ShadowStats {
    pub fn agreement(&self) -> f64 {
        ratio(self.agreed, self.windows)
    }

    pub fn alarm_rate_new(&self) -> f64 {
        ratio(self.alarms_new, self.windows)
    }

    pub fn alarm_rate_active(&self) -> f64 {
        ratio(self.alarms_active, self.windows)
    }
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// How a model behaved since it was swapped in.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Probation {
    pub windows: u64,
    /// Windows the model could not score (errors, non-finite scores).
    pub failures: u64,
    /// Windows scored at or above the alarm level.
    pub alarms: u64,
}

#[derive(Debug, Default)]
struct Inner {
    pending: Option<Instruction>,
    shadow: Option<(AnomalyModel, ShadowStats)>,
    /// Since the last swap (reset by each swap).
    probation: Option<Probation>,
}

/// One asset's slot.
#[derive(Debug, Default)]
pub struct ModelSlot {
    inner: Mutex<Inner>,
}

impl ModelSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The manager: leave an instruction (replacing one not yet taken).
    pub fn instruct(&self, instruction: Instruction) {
        self.lock().pending = Some(instruction);
    }

    /// The manager: stop any shadow run and return its figures.
    pub fn end_shadow(&self) -> Option<ShadowStats> {
        self.lock().shadow.take().map(|(_, s)| s)
    }

    /// The manager: the shadow figures so far.
    pub fn shadow_stats(&self) -> Option<ShadowStats> {
        self.lock().shadow.as_ref().map(|(_, s)| *s)
    }

    /// The manager: the probation figures since the last swap.
    pub fn probation(&self) -> Option<Probation> {
        self.lock().probation
    }

    /// The lane, before a window: the swap to make, if one is due (a
    /// shadow instruction is taken in at once).
    pub fn take_swap(&self) -> Option<(AnomalyModel, bool)> {
        let mut inner = self.lock();
        match inner.pending.take()? {
            Instruction::Shadow(model) => {
                inner.shadow = Some((model, ShadowStats::default()));
                None
            }
            Instruction::Swap {
                model,
                keep_commissioning,
            } => {
                inner.shadow = None;
                inner.probation = Some(Probation::default());
                Some((model, keep_commissioning))
            }
        }
    }

    /// The lane, after a window scored by the active model with `features`
    /// (as the active model saw them): the shadow model scores them too.
    pub fn shadow_window(&self, features: &[f64], active_alarm: bool) {
        let mut inner = self.lock();
        let Some((model, stats)) = inner.shadow.as_mut() else {
            return;
        };
        stats.windows += 1;
        stats.alarms_active += u64::from(active_alarm);
        match model.score(features) {
            Ok(s) if s.score.is_finite() => {
                let alarm = s.score >= model.manifest().alarm_threshold;
                stats.alarms_new += u64::from(alarm);
                stats.agreed += u64::from(alarm == active_alarm);
            }
            _ => stats.failures += 1,
        }
    }

    /// The lane, after each window judged since a swap.
    pub fn probation_window(&self, failed: bool, alarm: bool) {
        if let Some(p) = self.lock().probation.as_mut() {
            p.windows += 1;
            p.failures += u64::from(failed);
            p.alarms += u64::from(alarm);
        }
    }

    /// The manager: probation is over (passed or not).
    pub fn end_probation(&self) {
        self.lock().probation = None;
    }
}
