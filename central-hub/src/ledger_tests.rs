use super::*;
use crate::work_orders::{WorkOrderKind, WorkOrderStatus};
use protocol::{
    AssetInfo, AssetKind, AssetStatus, ChannelInfo, DetectorState, FeatureContribution, ModelRef,
    Quantity,
};
use store::SledStore;

pub(super) fn ledger(dir: &std::path::Path) -> Ledger {
    Ledger::new(Arc::new(SledStore::open(dir).unwrap()))
}

pub(super) fn model() -> ModelRef {
    ModelRef {
        id: "pump-anomaly".into(),
        version: "1.0.0".into(),
    }
}

pub(super) fn birth(started_at_ms: u64) -> Message {
    Message::Birth(Birth {
        site: "north".into(),
        gateway: "gw-1".into(),
        agent_version: "0.1.0".into(),
        started_at_ms,
        ts_ms: started_at_ms,
        assets: ["P-101", "P-102"]
            .iter()
            .map(|id| AssetInfo {
                id: id.to_string(),
                kind: AssetKind::Pump,
                channels: vec![ChannelInfo {
                    id: "accel".into(),
                    quantity: Quantity::Acceleration,
                    unit: "g".into(),
                    sample_rate_hz: 5120.0,
                }],
                model: model(),
            })
            .collect(),
    })
}

pub(super) fn event(id: &str, kind: EventKind, state: DetectorState, score: f64) -> Message {
    Message::Event(AnomalyEvent {
        event_id: id.into(),
        site: "north".into(),
        gateway: "gw-1".into(),
        asset_id: "P-102".into(),
        asset_kind: AssetKind::Pump,
        channel: "accel".into(),
        kind,
        state,
        previous_state: DetectorState::Normal,
        window_start_ms: 0,
        window_end_ms: 1000,
        raised_at_ms: 1001,
        score,
        threshold: 60.0,
        alarm_threshold: 120.0,
        model: model(),
        top_features: vec![FeatureContribution {
            name: "kurtosis".into(),
            value: 9.0,
            expected: 2.0,
            share: 0.7,
        }],
        detail: (kind == EventKind::SensorFault).then(|| "flat-lined".into()),
    })
}

pub(super) fn asset(l: &Ledger, id: &str) -> AssetRecord {
    l.assets()
        .unwrap()
        .into_iter()
        .find(|a| a.id == id)
        .unwrap()
}

#[test]
fn alarm_opens_one_work_order_and_later_events_attach_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    l.apply(&birth(1), 10).unwrap();
    assert_eq!(l.assets().unwrap().len(), 2);

    l.apply(
        &event("e1", EventKind::Anomaly, DetectorState::Warning, 80.0),
        20,
    )
    .unwrap();
    assert!(
        l.work_orders().unwrap().is_empty(),
        "a warning opens nothing"
    );
    assert_eq!(asset(&l, "P-102").state, AssetState::Warning);

    l.apply(
        &event("e2", EventKind::Anomaly, DetectorState::Alarm, 300.0),
        30,
    )
    .unwrap();
    l.apply(
        &event("e3", EventKind::Anomaly, DetectorState::Alarm, 500.0),
        40,
    )
    .unwrap();
    let wos = l.work_orders().unwrap();
    assert_eq!(wos.len(), 1, "{wos:#?}");
    let wo = &wos[0];
    assert_eq!(
        (wo.id.as_str(), wo.asset_id.as_str()),
        ("WO-000001", "P-102")
    );
    assert_eq!(
        (wo.kind, wo.status, wo.event_count),
        (WorkOrderKind::Anomaly, WorkOrderStatus::Open, 2)
    );
    assert_eq!(wo.created_at_ms, 30);
    assert!(wo.reason.contains("pump-anomaly 1.0.0"), "{}", wo.reason);
    assert_eq!(
        l.event("e3").unwrap().unwrap().work_order.as_deref(),
        Some("WO-000001")
    );

    let p102 = asset(&l, "P-102");
    assert_eq!(p102.state, AssetState::Alarm);
    assert!(p102.health < 50.0, "{p102:?}");
    assert_eq!(asset(&l, "P-101").health, 100.0);
}

#[test]
fn a_redelivered_event_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    let alarm = event("e1", EventKind::Anomaly, DetectorState::Alarm, 300.0);
    assert_eq!(l.apply(&alarm, 10).unwrap(), Applied::Stored);
    let before = (l.work_orders().unwrap(), l.assets().unwrap());
    assert_eq!(l.apply(&alarm, 99).unwrap(), Applied::Duplicate);
    assert_eq!((l.work_orders().unwrap(), l.assets().unwrap()), before);
}

#[test]
fn a_sensor_fault_gets_its_own_work_order_kind() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    l.apply(
        &event("a", EventKind::Anomaly, DetectorState::Alarm, 300.0),
        1,
    )
    .unwrap();
    l.apply(
        &event("s", EventKind::SensorFault, DetectorState::SensorFault, 0.0),
        2,
    )
    .unwrap();
    l.apply(
        &event("r", EventKind::SensorFault, DetectorState::Normal, 0.0),
        3,
    )
    .unwrap();
    let wos = l.work_orders().unwrap();
    let kinds: Vec<(WorkOrderKind, u64)> = wos.iter().map(|w| (w.kind, w.event_count)).collect();
    assert_eq!(
        kinds,
        [(WorkOrderKind::Anomaly, 1), (WorkOrderKind::SensorFault, 2)]
    );
    // Criticality 3 (not registered) x severity 1.5 = 4.5: P4.
    assert_eq!(wos[1].priority, 4);
    assert_eq!(asset(&l, "P-102").state, AssetState::Normal);
}

#[test]
fn a_model_fault_gets_its_own_work_order_for_an_engineer() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    l.apply(
        &event("m", EventKind::ModelFault, DetectorState::ModelFault, 0.0),
        1,
    )
    .unwrap();
    assert_eq!(asset(&l, "P-102").state, AssetState::ModelFault);
    l.apply(
        &event("r", EventKind::ModelFault, DetectorState::Normal, 0.0),
        2,
    )
    .unwrap();
    let wos = l.work_orders().unwrap();
    assert_eq!(wos.len(), 1, "{wos:?}");
    assert_eq!(
        (wos[0].kind, wos[0].event_count, wos[0].priority),
        (WorkOrderKind::ModelFault, 2, 3)
    );
    assert!(
        wos[0].reason.contains("Model fault on pump P-102"),
        "{}",
        wos[0].reason
    );
    assert_eq!(asset(&l, "P-102").state, AssetState::Normal);
}

#[test]
fn death_marks_assets_offline_and_birth_brings_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    l.apply(&birth(1), 1).unwrap();
    l.apply(
        &event("e", EventKind::Anomaly, DetectorState::Alarm, 300.0),
        2,
    )
    .unwrap();
    let death = Message::Death(Death {
        site: "north".into(),
        gateway: "gw-1".into(),
        ts_ms: 3,
        reason: DeathReason::ConnectionLost,
    });
    l.apply(&death, 3).unwrap();
    assert!(
        l.assets()
            .unwrap()
            .iter()
            .all(|a| a.state == AssetState::Offline)
    );
    assert!(!l.gateways().unwrap()[0].online);

    // Back online with the last known state, health included, until the
    // gateway reports again.
    let before = asset(&l, "P-102").health;
    l.apply(&birth(7), 4).unwrap();
    assert_eq!(asset(&l, "P-102").state, AssetState::Alarm);
    assert_eq!(asset(&l, "P-102").health, before);
    assert!(l.gateways().unwrap()[0].online);
}

#[test]
fn the_same_asset_id_at_two_sites_is_two_assets() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    let at = |site: &str, id: &str| {
        let Message::Event(mut e) = event(id, EventKind::Anomaly, DetectorState::Alarm, 300.0)
        else {
            unreachable!()
        };
        e.site = site.into();
        Message::Event(e)
    };
    l.apply(&at("north", "e1"), 1).unwrap();
    l.apply(&at("south", "e2"), 2).unwrap();
    let sites: Vec<(String, String)> = l
        .assets()
        .unwrap()
        .into_iter()
        .map(|a| (a.site, a.id))
        .collect();
    assert_eq!(
        sites,
        [
            ("north".into(), "P-102".into()),
            ("south".into(), "P-102".into())
        ]
    );
    let orders: Vec<(String, u64)> = l
        .work_orders()
        .unwrap()
        .into_iter()
        .map(|w| (w.site, w.event_count))
        .collect();
    assert_eq!(orders, [("north".into(), 1), ("south".into(), 1)]);
}

#[test]
fn heartbeat_updates_health_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    l.apply(&birth(1), 1).unwrap();
    let hb = Message::Heartbeat(Heartbeat {
        site: "north".into(),
        gateway: "gw-1".into(),
        ts_ms: 2,
        uptime_s: 1,
        outbox: Default::default(),
        counters: PipelineCounters {
            windows_scored: 42,
            ..Default::default()
        },
        assets: vec![AssetStatus {
            model: None,
            id: "P-101".into(),
            state: DetectorState::Normal,
            last_score: Some(30.0),
            threshold: 60.0,
            alarm_threshold: 120.0,
            windows_scored: 42,
            velocity_rms_mm_s: Some(2.1),
            iso_zone: Some(protocol::IsoZone::B),
            commissioning: None,
        }],
    });
    l.apply(&hb, 2).unwrap();
    let p101 = asset(&l, "P-101");
    assert_eq!(p101.health, 90.0);
    assert_eq!(
        (p101.velocity_rms_mm_s, p101.iso_zone),
        (Some(2.1), Some(protocol::IsoZone::B))
    );
    assert_eq!(
        l.gateways().unwrap()[0]
            .counters
            .as_ref()
            .unwrap()
            .windows_scored,
        42
    );
}

#[test]
fn state_survives_a_restart_of_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    {
        let l = ledger(dir.path());
        l.apply(&birth(1), 1).unwrap();
        l.apply(
            &event("e", EventKind::Anomaly, DetectorState::Alarm, 300.0),
            2,
        )
        .unwrap();
    }
    let l = ledger(dir.path());
    assert_eq!(l.work_orders().unwrap().len(), 1);
    // The sequence continues: the next work order does not reuse an id.
    l.apply(
        &event("s", EventKind::SensorFault, DetectorState::SensorFault, 0.0),
        3,
    )
    .unwrap();
    let ids: Vec<String> = l.work_orders().unwrap().into_iter().map(|w| w.id).collect();
    assert_eq!(ids, ["WO-000001", "WO-000002"]);
    assert_eq!(
        l.apply(
            &event("e", EventKind::Anomaly, DetectorState::Alarm, 300.0),
            4
        )
        .unwrap(),
        Applied::Duplicate
    );
}

fn heartbeat(ts_ms: u64, state: DetectorState, score: f64, zone: protocol::IsoZone) -> Message {
    Message::Heartbeat(Heartbeat {
        site: "north".into(),
        gateway: "gw-1".into(),
        ts_ms,
        uptime_s: 1,
        outbox: Default::default(),
        counters: Default::default(),
        assets: vec![AssetStatus {
            model: None,
            id: "P-101".into(),
            state,
            last_score: Some(score),
            threshold: 60.0,
            alarm_threshold: 120.0,
            windows_scored: 1,
            velocity_rms_mm_s: Some(5.0),
            iso_zone: Some(zone),
            commissioning: None,
        }],
    })
}

#[test]
fn health_history_keeps_a_point_per_interval_and_every_change_of_state() {
    use protocol::IsoZone;
    let dir = tempfile::tempdir().unwrap();
    let l = ledger(dir.path());
    l.apply(&birth(1), 1).unwrap();
    let min = 60_000;
    for (t, state, score, zone) in [
        (10 * min, DetectorState::Normal, 30.0, IsoZone::B),
        (10 * min + 1_000, DetectorState::Normal, 31.0, IsoZone::B),
        (11 * min, DetectorState::Normal, 30.0, IsoZone::C),
        (11 * min + 2_000, DetectorState::Warning, 90.0, IsoZone::C),
        (11 * min + 3_000, DetectorState::Warning, 91.0, IsoZone::C),
    ] {
        l.apply(&heartbeat(t, state, score, zone), t).unwrap();
    }
    let points: Vec<(u64, f64, AssetState)> = l
        .health_history("north", "P-101", 0)
        .unwrap()
        .into_iter()
        .map(|p| (p.at_ms, p.health, p.state))
        .collect();
    // Warning at 90 between 60 and 120 would be 64.5; zone C caps it at 60.
    assert_eq!(
        points,
        [
            (10 * min, 90.0, AssetState::Normal),
            (11 * min, 60.0, AssetState::Normal),
            (11 * min + 2_000, 60.0, AssetState::Warning),
        ]
    );
    assert_eq!(
        l.health_history("north", "P-101", 11 * min).unwrap().len(),
        2
    );
}
