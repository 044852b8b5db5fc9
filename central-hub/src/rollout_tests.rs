use std::collections::BTreeMap;

use super::*;
use GatewayReport as R;

const T0: u64 = 1_000_000;

fn gw(i: usize) -> GatewayRef {
    let (site, gateway) = (format!("site-{}", i % 3), format!("gw-{i:02}"));
    GatewayRef { site, gateway }
}

fn targets(n: usize) -> Vec<GatewayRef> {
    (0..n).map(gw).collect()
}

fn c(n: u32) -> WaveSize {
    WaveSize::Count(n)
}

fn p(n: u8) -> WaveSize {
    WaveSize::Percent(n)
}

fn spec(waves: Vec<WaveSize>, max_failure_fraction: f64) -> RolloutSpec {
    let (model, version) = ("pump-bearing".into(), Version::parse("1.3.0").unwrap());
    let (sha256, gateway_timeout_s, allow_downgrade) = ("ab".repeat(32), 60, false);
    RolloutSpec {
        model,
        version,
        sha256,
        waves,
        max_failure_fraction,
        gateway_timeout_s,
        allow_downgrade,
    }
}

fn start(n: usize, waves: Vec<WaveSize>, max: f64) -> (Rollout, Vec<Action>) {
    Rollout::start("r1".into(), spec(waves, max), targets(n), T0).unwrap()
}

fn offers(actions: &[Action]) -> Vec<GatewayRef> {
    let offer = |a: &Action| match a {
        Action::Offer { gateway } => Some(gateway.clone()),
        Action::RollBack { .. } => None,
    };
    actions.iter().filter_map(offer).collect()
}

fn in_wave(r: &Rollout, wave: usize) -> Vec<GatewayRef> {
    let gws = r.gateways.iter().filter(|g| g.wave == wave);
    gws.map(|g| g.gateway.clone()).collect()
}

fn waiting(r: &Rollout, wave: usize) -> bool {
    in_wave(r, wave)
        .iter()
        .all(|g| phase(r, g) == GatewayPhase::Waiting)
}

fn phase(r: &Rollout, g: &GatewayRef) -> GatewayPhase {
    let progress = r.gateways.iter().find(|p| &p.gateway == g);
    progress.unwrap().phase.clone()
}

fn failed(reason: &str) -> GatewayReport {
    R::Failed {
        reason: reason.into(),
    }
}

fn reason(reason: &str) -> GatewayPhase {
    GatewayPhase::Failed {
        reason: reason.into(),
    }
}

fn dl(received: u64) -> GatewayReport {
    R::Downloading {
        received,
        total: 100,
    }
}

fn halted(r: &Rollout, wave: usize) -> bool {
    matches!(r.state, RolloutState::Halted { wave: w, .. } if w == wave)
}

/// One report, which must be accepted or ignored (not an error).
fn rep(r: &mut Rollout, g: &GatewayRef, report: GatewayReport, now: u64) -> Vec<Action> {
    r.report(g, report, now).unwrap()
}

/// Asserts that each of `lines` is (part of) a log line.
fn logs(r: &Rollout, lines: &[&str]) {
    for line in lines {
        assert!(
            r.log.iter().any(|l| l.text.contains(line)),
            "no `{line}` in {:?}",
            r.log
        );
    }
}

fn not_allowed(state: &'static str, action: &'static str) -> RolloutError {
    RolloutError::NotAllowed { state, action }
}

/// Reports `report` for each of `gws`; returns all the actions.
fn report_all(r: &mut Rollout, gws: &[GatewayRef], report: GatewayReport, now: u64) -> Vec<Action> {
    let mut actions = vec![];
    for g in gws {
        actions.extend(rep(r, g, report.clone(), now));
    }
    actions
}

#[test]
fn waves_resolve_cumulatively_and_the_canary_is_the_first_target() {
    let (r, actions) = start(40, vec![c(1), p(10), p(50), p(100)], 0.0);
    assert_eq!(r.wave_sizes, vec![1, 3, 16, 20]);
    assert_eq!(offers(&actions), vec![gw(0)]);
    assert_eq!(in_wave(&r, 1), vec![gw(1), gw(2), gw(3)]);
    assert_eq!(in_wave(&r, 3).len(), 20);
    assert_eq!(r.state, RolloutState::Running { wave: 0 });
    logs(&r, &["to 40 gateways in 4 waves of 1, 3, 16, 20"]);
}

#[test]
fn targets_are_deduplicated_in_the_given_order() {
    let given = vec![gw(5), gw(1), gw(5), gw(3), gw(1)];
    let (r, actions) =
        Rollout::start("r".into(), spec(vec![c(1), p(100)], 0.0), given, T0).unwrap();
    let order: Vec<_> = r.gateways.iter().map(|g| g.gateway.clone()).collect();
    assert_eq!(order, vec![gw(5), gw(1), gw(3)]);
    assert_eq!(offers(&actions), vec![gw(5)]);
}

#[test]
fn waves_adding_no_gateway_on_a_small_target_are_skipped() {
    // 10% of 3 is 1 (the canary's), 50% is 2.
    let (r, _) = start(3, vec![c(1), p(10), p(50), p(100)], 0.0);
    assert_eq!(r.wave_sizes, vec![1, 1, 1]);
    logs(&r, &["waves 1 (`10%`) add no gateway"]);
    let (r, _) = start(1, vec![c(1), p(10), p(50), p(100)], 0.0);
    assert_eq!(r.wave_sizes, vec![1]);
    let (r, _) = start(5, vec![c(2), c(10), p(100)], 0.0);
    assert_eq!(r.wave_sizes, vec![2, 3]);
}

#[test]
fn bad_specs_and_targets_are_refused_with_reasons() {
    let err = |waves: Vec<WaveSize>, n: usize| {
        let e = Rollout::start("r".into(), spec(waves, 0.0), targets(n), T0).unwrap_err();
        e.to_string()
    };
    let e = err(vec![c(10), p(10), p(100)], 40);
    assert!(
        e.contains("wave 1 (`10%`) covers 4 of the 40 gateways, fewer than the 10"),
        "{e}"
    );
    let e = err(vec![c(1), p(50)], 40);
    assert!(
        e.contains("the last wave (`50%`) covers 20 of the 40"),
        "{e}"
    );
    let e = err(vec![c(5), c(5), p(100)], 40);
    assert!(
        e.contains("wave 1 (`5`) is not larger than wave 0 (`5`)"),
        "{e}"
    );
    let e = err(vec![p(50), c(30), p(10), p(100)], 40);
    assert!(
        e.contains("wave 2 (`10%`) is not larger than wave 0 (`50%`)"),
        "{e}"
    );
    assert!(err(vec![p(100), c(50)], 40).contains("it must be last"));
    assert!(err(vec![c(0), p(100)], 4).contains("1 or more"));
    assert!(err(vec![p(150)], 4).contains("wave `150%`: a percentage must be 1-100"));
    assert_eq!(err(vec![], 4), RolloutError::NoWaves.to_string());
    assert_eq!(err(vec![p(100)], 0), RolloutError::NoGateways.to_string());
    for bad in [1.5, -0.1, f64::NAN] {
        let e = Rollout::start("r".into(), spec(vec![p(100)], bad), targets(2), T0);
        assert_eq!(e.unwrap_err(), RolloutError::BadThreshold);
    }
    let mut s = spec(vec![p(100)], 0.0);
    s.gateway_timeout_s = 0;
    assert_eq!(s.validate(), Err(RolloutError::BadTimeout));
}

#[test]
fn wave_size_serde_both_forms_and_clear_errors() {
    let waves: Vec<WaveSize> = serde_json::from_str(r#"[1, "10%", " 50 %", "100%"]"#).unwrap();
    assert_eq!(waves, vec![c(1), p(10), p(50), p(100)]);
    let json = serde_json::to_string(&waves).unwrap();
    assert_eq!(json, r#"[1,"10%","50%","100%"]"#);
    let bad = |json: &str| {
        serde_json::from_str::<WaveSize>(json)
            .unwrap_err()
            .to_string()
    };
    assert!(bad(r#""150%""#).contains("wave `150%`: a percentage must be 1-100"));
    assert!(bad(r#""0%""#).contains("wave `0%`: a percentage must be 1-100"));
    assert!(bad(r#""12.5%""#).contains("wave `12.5%`: a percentage must be 1-100"));
    assert!(bad(r#""10""#).contains("wave `10`: a percentage ends in `%`"));
    assert!(bad("0").contains("wave `0`: a count must be a whole number, 1 or more"));
    assert!(bad("-3").contains("wave `-3`: a count must be"));
    assert!(bad("2.5").contains("wave `2.5`: a count must be a whole number"));
    assert!(bad("true").contains("a wave is a count (1) or a percentage"));
}

#[test]
fn spec_json_has_defaults_and_refuses_unknown_fields() {
    let json = r#"{"model": "m", "version": "2.0.1", "sha256": "00", "waves": [1, "100%"],
                   "gateway_timeout_s": 600}"#;
    let s: RolloutSpec = serde_json::from_str(json).unwrap();
    assert_eq!((s.max_failure_fraction, s.allow_downgrade), (0.0, false));
    assert_eq!(s.version.to_string(), "2.0.1");
    let typo = json.replace("\"waves\"", "\"wave\"");
    assert!(serde_json::from_str::<RolloutSpec>(&typo).is_err());
}

#[test]
fn happy_path_offers_each_wave_after_the_previous_succeeds() {
    let (mut r, actions) = start(10, vec![c(1), p(50), p(100)], 0.0);
    assert_eq!(r.wave_sizes, vec![1, 4, 5]);
    let canary = offers(&actions);
    assert!(matches!(
        phase(&r, &gw(0)),
        GatewayPhase::Offered { offered_at_ms: T0 }
    ));
    for step in [dl(10), R::Verifying, R::Shadow] {
        assert_eq!(report_all(&mut r, &canary, step, T0 + 1), vec![]);
    }
    assert_eq!(phase(&r, &gw(0)), GatewayPhase::Shadow);
    assert!(waiting(&r, 1));
    let wave1 = offers(&report_all(&mut r, &canary, R::Active, T0 + 2));
    assert_eq!(wave1, in_wave(&r, 1));
    assert_eq!(r.state, RolloutState::Running { wave: 1 });
    let (last, first) = wave1.split_last().unwrap();
    assert!(report_all(&mut r, first, R::Active, T0 + 3).is_empty());
    assert!(waiting(&r, 2));
    let wave2 = offers(&rep(&mut r, last, R::Active, T0 + 4));
    assert_eq!(wave2, in_wave(&r, 2));
    assert!(report_all(&mut r, &wave2, R::Active, T0 + 5).is_empty());
    assert_eq!(r.state, RolloutState::Completed);
    assert!(!r.is_live());
    assert_eq!(r.summary(), BTreeMap::from([("active", 10)]));
    logs(
        &r,
        &[
            "wave 0 started: offered to 1 gateway",
            "wave 0 succeeded: 1 of 1 gateway active",
            "wave 1 started: offered to 4 gateways",
            "wave 2 succeeded: 5 of 5 gateways active",
            "completed: 10 of 10 gateways active",
        ],
    );
    assert_eq!(r.updated_at_ms, T0 + 5);
}

#[test]
fn threshold_quarter_one_of_four_passes_two_halts() {
    let (mut r, a) = start(12, vec![c(4), c(8), p(100)], 0.25);
    let wave0 = offers(&a);
    rep(&mut r, &wave0[0], failed("checksum mismatch"), T0);
    let next = report_all(&mut r, &wave0[1..], R::Active, T0);
    assert_eq!(offers(&next), in_wave(&r, 1));
    logs(
        &r,
        &[
            "wave 0 succeeded with 1 failed (within the 25 % allowed): 3 of 4",
            "site-0/gw-00 failed: checksum mismatch",
        ],
    );
    let wave1 = offers(&next);
    rep(&mut r, &wave1[0], failed("refused"), T0 + 1);
    assert_eq!(r.state, RolloutState::Running { wave: 1 });
    rep(&mut r, &wave1[1], failed("refused"), T0 + 1);
    let reason = "wave 1: 2 of 4 gateways failed (50 %), more than the 25 % allowed".into();
    assert_eq!(r.state, RolloutState::Halted { wave: 1, reason });
}

#[test]
fn any_failure_halts_by_default() {
    let (mut r, a) = start(5, vec![c(1), p(100)], 0.0);
    assert!(rep(&mut r, &offers(&a)[0], failed("self-test"), T0).is_empty());
    let reason = "wave 0: 1 of 1 gateway failed (100 %), more than the 0 % allowed".into();
    assert_eq!(r.state, RolloutState::Halted { wave: 0, reason });
    assert!(!r.is_live());
    // Nothing to roll back: the only offered gateway failed.
    assert!(r.roll_back("ana", T0 + 1).unwrap().is_empty());
    assert_eq!(r.state, RolloutState::RolledBack);
}

#[test]
fn halt_is_early_resume_accepts_and_roll_back_reaches_every_offered_gateway() {
    let (mut r, a) = start(13, vec![c(1), c(5), p(100)], 0.25);
    let wave1 = offers(&rep(&mut r, &offers(&a)[0], R::Active, T0));
    assert_eq!(wave1.len(), 4);
    report_all(&mut r, &wave1[..2], failed("disk full"), T0 + 1);
    assert!(halted(&r, 1), "halts with 2 of 4 still in flight");
    logs(&r, &["halted: wave 1: 2 of 4 gateways failed (50 %)"]);
    // The others finish, time passes: still no offer.
    assert!(report_all(&mut r, &wave1[2..], R::Active, T0 + 2).is_empty());
    assert!(r.tick(T0 + 1_000_000).is_empty());
    assert!(halted(&r, 1) && waiting(&r, 2));
    let err = r.pause("ana", T0 + 3).unwrap_err();
    assert_eq!(err, not_allowed("halted", "pause"));
    assert_eq!(err.to_string(), "cannot pause a rollout that is halted");
    let wave2 = offers(&r.resume("ana", T0 + 4).unwrap());
    assert_eq!(wave2, in_wave(&r, 2));
    logs(
        &r,
        &[
            "resumed by ana, accepting 2 gateways failed in wave 1",
            "wave 1 done with 2 failed, accepted by an engineer",
        ],
    );
    // Roll back: canary, 2 active of wave 1, 8 offered of wave 2.
    rep(&mut r, &wave2[0], R::Verifying, T0 + 5);
    let back = r.roll_back("bo", T0 + 6).unwrap();
    assert!(offers(&back).is_empty());
    assert_eq!((back.len(), &r.state), (11, &RolloutState::RollingBack));
    assert!(r.is_live());
    logs(&r, &["rolled back by bo: 11 gateways asked"]);
    let summary = BTreeMap::from([("failed", 2), ("rolling_back", 11)]);
    assert_eq!(r.summary(), summary);
    let asked: Vec<GatewayRef> = back
        .into_iter()
        .map(|a| match a {
            Action::RollBack { gateway } => gateway,
            Action::Offer { .. } => unreachable!(),
        })
        .collect();
    let (stuck, rest) = asked.split_last().unwrap();
    // A stale report changes nothing while rolling back.
    rep(&mut r, &rest[0], R::Active, T0 + 7);
    assert_eq!(phase(&r, &rest[0]), GatewayPhase::RollingBack);
    report_all(&mut r, rest, R::RolledBack, T0 + 7);
    assert_eq!(r.state, RolloutState::RollingBack);
    rep(&mut r, stuck, failed("old model missing"), T0 + 8);
    let why = reason("could not roll back: old model missing");
    assert_eq!(phase(&r, stuck), why);
    assert_eq!(r.state, RolloutState::RolledBack);
    logs(
        &r,
        &["rolled back: 10 gateways back on their previous model, 1 could not"],
    );
    assert!(!r.is_live());
    let err = r.roll_back("bo", T0 + 9).unwrap_err();
    let text = "cannot roll back a rollout that is rolled_back";
    assert_eq!(err.to_string(), text);
}

#[test]
fn resumed_wave_still_in_flight_does_not_halt_again() {
    let (mut r, a) = start(8, vec![c(4), p(100)], 0.0);
    let wave0 = offers(&a);
    rep(&mut r, &wave0[0], failed("x"), T0);
    assert!(halted(&r, 0));
    assert!(r.resume("ana", T0 + 1).unwrap().is_empty());
    assert_eq!(r.state, RolloutState::Running { wave: 0 });
    rep(&mut r, &wave0[1], failed("y"), T0 + 2);
    rep(&mut r, &wave0[2], R::Active, T0 + 2);
    assert_eq!(r.state, RolloutState::Running { wave: 0 });
    let next = rep(&mut r, &wave0[3], R::Active, T0 + 3);
    assert_eq!(offers(&next), in_wave(&r, 1));
}

#[test]
fn tick_fails_gateways_past_their_timeout_from_the_offer() {
    let (mut r, a) = start(6, vec![c(2), p(100)], 0.5);
    let wave0 = offers(&a);
    rep(&mut r, &wave0[1], dl(1), T0 + 50_000);
    assert!(
        r.tick(T0 + 60_000).is_empty(),
        "not late at exactly the timeout"
    );
    assert_eq!(r.state, RolloutState::Running { wave: 0 });
    assert!(r.tick(T0 + 60_001).is_empty());
    assert_eq!(phase(&r, &wave0[0]), reason("no answer within 60 s"));
    let slow = reason("not finished within 60 s of the offer (was downloading)");
    assert_eq!(phase(&r, &wave0[1]), slow);
    logs(&r, &["timed out after 60 s: site-0/gw-00, site-1/gw-01"]);
    assert!(halted(&r, 0));
}

#[test]
fn rollback_without_answer_times_out() {
    let (mut r, a) = start(3, vec![c(1), p(100)], 0.0);
    let wave1 = rep(&mut r, &offers(&a)[0], R::Active, T0);
    rep(&mut r, &offers(&wave1)[0], dl(5), T0 + 1);
    assert_eq!(r.roll_back("ana", T0 + 10).unwrap().len(), 3);
    rep(&mut r, &offers(&wave1)[0], R::RolledBack, T0 + 20);
    r.tick(T0 + 10 + 60_000);
    assert_eq!(r.state, RolloutState::RollingBack);
    r.tick(T0 + 10 + 60_001);
    assert_eq!(r.state, RolloutState::RolledBack);
    let summary = BTreeMap::from([("failed", 2), ("rolled_back", 1)]);
    assert_eq!(r.summary(), summary);
    logs(
        &r,
        &["1 gateway back on their previous model, 2 could not roll back"],
    );
}

#[test]
fn pause_stops_the_next_wave_and_resume_starts_it() {
    let (mut r, a) = start(4, vec![c(1), p(100)], 0.0);
    r.pause("ana", T0 + 1).unwrap();
    assert_eq!(r.state, RolloutState::Paused { wave: 0 });
    assert!(r.is_live(), "the canary is still in flight");
    let err = r.pause("ana", T0 + 1).unwrap_err();
    assert_eq!(err, not_allowed("paused", "pause"));
    assert!(rep(&mut r, &offers(&a)[0], R::Active, T0 + 2).is_empty());
    assert_eq!(phase(&r, &gw(0)), GatewayPhase::Active);
    assert!(!r.is_live(), "paused with nothing in flight");
    assert!(waiting(&r, 1));
    let next = r.resume("bo", T0 + 3).unwrap();
    assert_eq!(offers(&next), in_wave(&r, 1));
    assert_eq!(r.state, RolloutState::Running { wave: 1 });
    logs(&r, &["paused by ana", "resumed by bo"]);
    let err = r.resume("bo", T0 + 4).unwrap_err();
    assert_eq!(err.to_string(), "cannot resume a rollout that is running");
}

#[test]
fn a_paused_wave_going_over_the_threshold_halts() {
    let (mut r, a) = start(4, vec![c(1), p(100)], 0.0);
    r.pause("ana", T0 + 1).unwrap();
    rep(&mut r, &offers(&a)[0], failed("no space"), T0 + 2);
    assert!(halted(&r, 0));
}

#[test]
fn duplicate_and_stale_reports_change_nothing() {
    let (mut r, a) = start(4, vec![c(2), p(100)], 0.0);
    let (g0, g1) = (offers(&a)[0].clone(), offers(&a)[1].clone());
    rep(&mut r, &g0, dl(50), T0 + 1);
    let before = r.clone();
    rep(&mut r, &g0, dl(20), T0 + 2);
    rep(&mut r, &g0, dl(50), T0 + 2);
    assert_eq!(r, before, "old or repeated progress");
    rep(&mut r, &g0, R::Shadow, T0 + 3);
    rep(&mut r, &g0, R::Verifying, T0 + 4);
    assert_eq!(phase(&r, &g0), GatewayPhase::Shadow);
    rep(&mut r, &g0, R::Active, T0 + 5);
    let before = r.clone();
    for stale in [dl(99), R::Active, failed("late"), R::RolledBack] {
        assert!(rep(&mut r, &g0, stale, T0 + 6).is_empty());
    }
    // A gateway of a later wave, not offered yet, is not moved by a report.
    rep(&mut r, &gw(3), R::Active, T0 + 6);
    assert_eq!(r, before);
    let next = rep(&mut r, &g1, R::Active, T0 + 7);
    assert_eq!(offers(&next).len(), 2);
    assert!(rep(&mut r, &g1, R::Active, T0 + 8).is_empty());
    let stranger = GatewayRef {
        site: "nowhere".into(),
        gateway: "gw-x".into(),
    };
    let err = r.report(&stranger, R::Active, T0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "gateway nowhere/gw-x is not part of this rollout"
    );
}

#[test]
fn a_rollout_survives_a_json_round_trip() {
    let (mut r, a) = start(40, vec![c(1), p(10), p(50), p(100)], 0.5);
    rep(&mut r, &offers(&a)[0], R::Active, T0);
    rep(&mut r, &gw(1), dl(3), T0);
    rep(&mut r, &gw(2), failed("refused: older version"), T0);
    let json = serde_json::to_string(&r).unwrap();
    let back: Rollout = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["state"],
        serde_json::json!({"state": "running", "wave": 1})
    );
    assert_eq!(
        value["spec"]["waves"],
        serde_json::json!([1, "10%", "50%", "100%"])
    );
    assert_eq!(value["gateways"][2]["phase"]["state"], "failed");
    assert_eq!(value["spec"]["version"], "1.3.0");
}

#[path = "rollout_prop_tests.rs"]
mod prop;
