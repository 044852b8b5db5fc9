//! Random report sequences against the wave invariants (a property test
//! with a tiny LCG: no dependencies).

use std::collections::{BTreeMap, HashSet};

use super::*;

/// A tiny deterministic generator: no dependencies.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn random_report(rng: &mut Lcg) -> GatewayReport {
    match rng.below(8) {
        0 => dl(rng.below(100) as u64),
        1 => R::Verifying,
        2 => R::Shadow,
        3 => failed("boom"),
        4 => R::RolledBack,
        _ => R::Active,
    }
}

/// Checks one step: `before` the call, `r` after, `actions` it returned,
/// whether the call was `resume`; `accepted`: waves resumed after a halt.
fn check_step(
    before: &Rollout,
    r: &Rollout,
    actions: &[Action],
    resumed: bool,
    accepted: &HashSet<usize>,
) {
    let of = |wave: usize| r.gateways.iter().filter(move |g| g.wave == wave);
    for g in offers(actions) {
        let was = before.gateways.iter().find(|p| p.gateway == g).unwrap();
        assert_eq!(
            was.phase,
            GatewayPhase::Waiting,
            "offer to {g}, not waiting"
        );
        let RolloutState::Running { wave } = r.state else {
            panic!("offer when {:?}", r.state)
        };
        assert_eq!(was.wave, wave);
        let from_running = matches!(before.state, RolloutState::Running { .. });
        assert!(from_running || resumed, "offer from {:?}", before.state);
        if let Some(prev) = wave.checked_sub(1) {
            assert!(
                of(prev).all(|p| p.phase.finished()),
                "wave {wave} before {prev} finished"
            );
            let fails = of(prev).filter(|p| p.phase.failed()).count();
            let passed = fails as f64 / r.wave_sizes[prev] as f64 <= r.spec.max_failure_fraction;
            assert!(
                passed || accepted.contains(&prev),
                "wave {prev} failed, not accepted"
            );
        }
    }
    if matches!(r.state, RolloutState::Halted { .. }) {
        assert!(offers(actions).is_empty(), "a halted rollout offered");
    }
    if let Some(wave) = r.state.wave() {
        assert!(
            r.gateways
                .iter()
                .all(|g| g.wave == wave || !g.phase.in_flight())
        );
        assert!(
            r.gateways
                .iter()
                .all(|g| g.wave <= wave || g.phase == GatewayPhase::Waiting)
        );
    }
    if r.state == RolloutState::Completed {
        assert!(r.gateways.iter().all(|g| g.phase.finished()));
    }
}

#[test]
fn random_report_sequences_keep_the_wave_invariants() {
    let plans = [
        vec![c(1), p(10), p(50), p(100)],
        vec![c(1), p(100)],
        vec![c(2), c(5), p(100)],
        vec![p(25), p(50), p(75), p(100)],
        vec![p(100)],
    ];
    let mut rng = Lcg(7);
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for run in 0..300 {
        let (n, max) = (1 + rng.below(30), [0.0, 0.25, 0.5, 1.0][rng.below(4)]);
        let spec = spec(plans[run % plans.len()].clone(), max);
        let (mut r, actions) = Rollout::start(format!("r{run}"), spec, targets(n), T0).unwrap();
        assert_eq!(r.wave_sizes.iter().sum::<usize>(), n);
        assert!(r.wave_sizes.iter().all(|&s| s > 0));
        assert_eq!(offers(&actions).len(), r.wave_sizes[0]);
        let (mut now, mut accepted) = (T0, HashSet::new());
        let mut offered: HashSet<GatewayRef> = offers(&actions).into_iter().collect();
        for _ in 0..200 {
            let (before, mut resumed) = (r.clone(), false);
            now += rng.below(5_000) as u64;
            let actions = match rng.below(100) {
                0..=74 => {
                    let busy = |g: &&GatewayProgress| {
                        g.phase.in_flight() || g.phase == GatewayPhase::RollingBack
                    };
                    let busy: Vec<_> = r.gateways.iter().filter(busy).collect();
                    let g = match busy.len() {
                        0 => &r.gateways[rng.below(n)],
                        _ if rng.below(5) == 0 => &r.gateways[rng.below(n)],
                        k => busy[rng.below(k)],
                    };
                    let gateway = g.gateway.clone();
                    rep(&mut r, &gateway, random_report(&mut rng), now)
                }
                75..=86 => r.tick(now + rng.below(2) as u64 * 60_000),
                87..=91 => r.pause("p", now).map(|()| vec![]).unwrap_or_default(),
                92..=97 => {
                    if let RolloutState::Halted { wave, .. } = r.state {
                        accepted.insert(wave);
                        *seen.entry("resumed a halt").or_insert(0) += 1;
                    }
                    resumed = true;
                    r.resume("p", now).unwrap_or_default()
                }
                _ => r.roll_back("p", now).unwrap_or_default(),
            };
            check_step(&before, &r, &actions, resumed, &accepted);
            for g in offers(&actions) {
                assert!(offered.insert(g.clone()), "{g} offered twice");
            }
            *seen.entry(r.state.name()).or_insert(0) += 1;
        }
    }
    let states = [
        "completed",
        "halted",
        "paused",
        "rolled_back",
        "running",
        "resumed a halt",
    ];
    for state in states {
        assert!(
            seen.get(state).is_some_and(|&n| n > 0),
            "never {state}: {seen:?}"
        );
    }
}
