use std::time::Duration;

use protocol::{
    AssetStatus, Death, DeathReason, DetectorState, EventKind, Heartbeat, Message, OutboxCounters,
    PipelineCounters,
};

use super::super::tests::{asset, birth, event, ledger};
use super::*;
use crate::assets::AssetState;

const SECOND: u64 = 1000;

fn policy() -> LivenessPolicy {
    LivenessPolicy {
        offline_after: Duration::from_secs(60),
        work_order_after: Duration::from_secs(600),
    }
}

fn heartbeat(ts_ms: u64, p102: DetectorState, dropped_alarms: u64) -> Message {
    Message::Heartbeat(Heartbeat {
        site: "north".into(),
        gateway: "gw-1".into(),
        ts_ms,
        uptime_s: 1,
        counters: PipelineCounters::default(),
        assets: vec![AssetStatus {
            model: None,
            id: "P-102".into(),
            state: p102,
            last_score: Some(10.0),
            threshold: 60.0,
            alarm_threshold: 120.0,
            windows_scored: 1,
            velocity_rms_mm_s: None,
            iso_zone: None,
            commissioning: None,
        }],
        outbox: OutboxCounters {
            dropped_alarms,
            ..Default::default()
        },
    })
}

fn gateway_offline_orders(l: &Ledger) -> Vec<WorkOrder> {
    l.work_orders()
        .unwrap()
        .into_iter()
        .filter(|w| w.kind == WorkOrderKind::GatewayOffline)
        .collect()
}

#[test]
fn a_silent_gateway_goes_offline_then_becomes_one_work_order_closed_on_its_return() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    let t0 = 1_000_000;
    l.apply(&birth(1), t0).unwrap();
    l.apply(&heartbeat(2, DetectorState::Normal, 0), t0)
        .unwrap();
    // Within the silence limit nothing changes.
    assert_eq!(
        l.sweep_liveness(t0 + 60 * SECOND, &policy()).unwrap(),
        Sweep::default()
    );
    assert!(l.gateways().unwrap()[0].online);
    // Past it: offline, and so are its assets; no work order yet.
    let sweep = l.sweep_liveness(t0 + 61 * SECOND, &policy()).unwrap();
    assert_eq!(sweep.went_silent, ["gw-1"]);
    let g = &l.gateways().unwrap()[0];
    assert_eq!(
        (g.online, g.offline_cause.as_deref()),
        (false, Some("silent"))
    );
    assert!(
        l.assets()
            .unwrap()
            .iter()
            .all(|a| a.state == AssetState::Offline)
    );
    assert!(gateway_offline_orders(&l).is_empty());
    // Ten minutes after it was last heard: one work order, once.
    let later = t0 + 601 * SECOND;
    assert_eq!(
        l.sweep_liveness(later, &policy())
            .unwrap()
            .work_orders
            .len(),
        1
    );
    assert_eq!(
        l.sweep_liveness(later + SECOND, &policy()).unwrap(),
        Sweep::default()
    );
    let [wo] = &gateway_offline_orders(&l)[..] else {
        panic!("one work order")
    };
    assert_eq!(
        (wo.asset_id.as_str(), wo.priority, wo.status),
        ("gw-1", 3, WorkOrderStatus::Open)
    );
    assert!(
        wo.reason.starts_with("Gateway gw-1 at site north offline (silent) for 10 min: its 2 asset(s) (P-101, P-102) are not watched."),
        "{}",
        wo.reason
    );
    // Its next heartbeat closes it and brings the assets back.
    l.apply(
        &heartbeat(700 * SECOND, DetectorState::Warning, 0),
        later + 60 * SECOND,
    )
    .unwrap();
    let wo = &gateway_offline_orders(&l)[0];
    assert_eq!(wo.status, WorkOrderStatus::Done);
    assert_eq!(
        wo.resolution.as_deref(),
        Some("Gateway back online after 11 min offline; closed by the hub.")
    );
    assert!(l.gateways().unwrap()[0].online);
    assert_eq!(asset(&l, "P-102").state, AssetState::Warning);
    // A second long outage is a second work order.
    let again = later + 60 * SECOND + 700 * SECOND;
    l.sweep_liveness(again, &policy()).unwrap();
    assert_eq!(gateway_offline_orders(&l).len(), 2);
}

#[test]
fn a_lost_connection_names_its_cause_on_the_work_order() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    l.apply(&birth(1), 0).unwrap();
    let death = Message::Death(Death {
        site: "north".into(),
        gateway: "gw-1".into(),
        ts_ms: 5,
        reason: DeathReason::ConnectionLost,
    });
    l.apply(&death, 5 * SECOND).unwrap();
    assert_eq!(
        l.sweep_liveness(600 * SECOND, &policy()).unwrap(),
        Sweep::default()
    );
    let sweep = l.sweep_liveness(606 * SECOND, &policy()).unwrap();
    assert_eq!((sweep.went_silent.len(), sweep.work_orders.len()), (0, 1));
    assert!(
        gateway_offline_orders(&l)[0]
            .reason
            .contains("offline (connection lost)")
    );
    // A birth is a return too.
    l.apply(&birth(700), 700 * SECOND).unwrap();
    assert_eq!(gateway_offline_orders(&l)[0].status, WorkOrderStatus::Done);
}

#[test]
fn reports_replayed_after_an_outage_do_not_set_the_state_back() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    l.apply(&birth(1), 0).unwrap();
    // The event (raised at 1001) and a newer heartbeat arrive; then older
    // ones from the gateway's outbox.
    l.apply(
        &event("e1", EventKind::Anomaly, DetectorState::Alarm, 300.0),
        10,
    )
    .unwrap();
    l.apply(&heartbeat(2000, DetectorState::Alarm, 3), 11)
        .unwrap();
    l.apply(&heartbeat(500, DetectorState::Normal, 0), 12)
        .unwrap();
    assert_eq!(asset(&l, "P-102").state, AssetState::Alarm);
    let g = &l.gateways().unwrap()[0];
    assert_eq!(
        g.outbox.as_ref().unwrap().dropped_alarms,
        3,
        "the newer counters stay"
    );
    assert_eq!(
        g.last_seen_ms, 12,
        "a replayed heartbeat still proves the gateway is there"
    );
    let mut old = event("e0", EventKind::Anomaly, DetectorState::Warning, 80.0);
    if let Message::Event(e) = &mut old {
        e.raised_at_ms = 900;
    }
    l.apply(&old, 13).unwrap();
    assert!(l.event("e0").unwrap().is_some(), "kept as evidence");
    assert_eq!(asset(&l, "P-102").state, AssetState::Alarm);
    // A new run of the agent (its clock may differ) starts the marks over.
    l.apply(&birth(50), 14).unwrap();
    l.apply(&heartbeat(100, DetectorState::Normal, 0), 15)
        .unwrap();
    assert_eq!(asset(&l, "P-102").state, AssetState::Normal);
}
