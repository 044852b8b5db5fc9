use super::*;

const SLA: Sla = Sla {
    p1_hours: 24,
    p2_hours: 72,
    p3_hours: 168,
    p4_hours: 720,
    due_soon_fraction: 0.25,
};

fn terms(criticality: u8) -> Terms<'static> {
    Terms {
        criticality,
        iso_zone: None,
        sla: &SLA,
    }
}

fn event(kind: EventKind, state: DetectorState, score: f64) -> AnomalyEvent {
    AnomalyEvent {
        event_id: format!("e-{score}"),
        site: "north".into(),
        gateway: "gw-1".into(),
        asset_id: "P-102".into(),
        asset_kind: AssetKind::Pump,
        channel: "accel".into(),
        kind,
        state,
        previous_state: DetectorState::Normal,
        window_start_ms: 1_000,
        window_end_ms: 2_000,
        raised_at_ms: 2_001,
        score,
        threshold: 60.0,
        alarm_threshold: 120.0,
        model: ModelRef {
            id: "pump-anomaly".into(),
            version: "1.0.0".into(),
        },
        top_features: vec![FeatureContribution {
            name: "kurtosis".into(),
            value: 9.87,
            expected: 2.0,
            share: 0.62,
        }],
        detail: None,
    }
}

#[test]
fn only_alarms_and_sensor_faults_open_work_orders() {
    assert!(opens(&event(
        EventKind::Anomaly,
        DetectorState::Alarm,
        200.0
    )));
    assert!(!opens(&event(
        EventKind::Anomaly,
        DetectorState::Warning,
        90.0
    )));
    assert!(!opens(&event(
        EventKind::Anomaly,
        DetectorState::Normal,
        1.0
    )));
    assert!(opens(&event(
        EventKind::SensorFault,
        DetectorState::SensorFault,
        0.0
    )));
    assert!(!opens(&event(
        EventKind::SensorFault,
        DetectorState::Normal,
        0.0
    )));
}

#[test]
fn reason_says_what_was_seen_and_by_which_model() {
    let wo = WorkOrder::open(
        "WO-000001".into(),
        &event(EventKind::Anomaly, DetectorState::Alarm, 300.0),
        5,
        terms(3),
    );
    assert_eq!(
        wo.reason,
        "Alarm on pump P-102 (channel accel): anomaly score 300 is 2.5x the alarm level 120 of model pump-anomaly 1.0.0. Driven by: kurtosis 9.87 (normally 2.00, 62 % of the deviation)."
    );
    // risk = criticality 3 x severity 2.5 x persistence 1 = 7.5: P3.
    assert_eq!(
        (wo.risk.risk, wo.priority, wo.status, wo.event_count),
        (7.5, 3, WorkOrderStatus::Open, 1)
    );
    assert_eq!(wo.due_at_ms, 5 + 168 * 3_600_000);
    let mut sensor = event(EventKind::SensorFault, DetectorState::SensorFault, 0.0);
    sensor.detail = Some("flat-lined at 0.01 g".into());
    let wo = WorkOrder::open("WO-000002".into(), &sensor, 5, terms(3));
    assert!(
        wo.reason
            .starts_with("Sensor fault on pump P-102, channel accel: flat-lined at 0.01 g."),
        "{}",
        wo.reason
    );
    assert_eq!((wo.risk.risk, wo.priority), (4.5, 4));
}

#[test]
fn evidence_attaches_raises_priority_and_is_bounded() {
    let mut wo = WorkOrder::open(
        "WO-000001".into(),
        &event(EventKind::Anomaly, DetectorState::Alarm, 130.0),
        1,
        terms(4),
    );
    assert_eq!(wo.priority, 4);
    assert_eq!(wo.due_at_ms, 1 + 720 * 3_600_000);
    wo.attach(
        &event(EventKind::Anomaly, DetectorState::Alarm, 600.0),
        2,
        terms(4),
    );
    // 4 x 5 x 1 = 20: P1, due a day after it was opened.
    assert_eq!((wo.priority, wo.peak_score, wo.risk.risk), (1, 600.0, 20.0));
    assert_eq!(wo.due_at_ms, 1 + 24 * 3_600_000);
    // A calmer reminder does not lower it.
    wo.attach(
        &event(EventKind::Anomaly, DetectorState::Warning, 70.0),
        3,
        terms(4),
    );
    assert_eq!((wo.priority, wo.peak_score), (1, 600.0));
    for i in 0..100 {
        wo.attach(
            &event(EventKind::Anomaly, DetectorState::Alarm, 130.0 + i as f64),
            4,
            terms(4),
        );
    }
    assert_eq!(wo.event_count, 103);
    assert_eq!(wo.evidence.len(), MAX_EVIDENCE);
    assert_eq!(wo.evidence.last().unwrap().score, 229.0);
}

#[test]
fn criticality_and_persistence_weigh_the_priority() {
    // Severity 300 / 120 = 2.5 for both.
    let e = event(EventKind::Anomaly, DetectorState::Alarm, 300.0);
    assert_eq!(WorkOrder::open("WO-1".into(), &e, 0, terms(2)).priority, 3);
    let mut critical = WorkOrder::open("WO-2".into(), &e, 0, terms(5));
    assert_eq!((critical.risk.risk, critical.priority), (12.5, 2));
    // The same evidence a day later: persistence 2, risk 25, P1.
    let mut later = event(EventKind::Anomaly, DetectorState::Alarm, 300.0);
    later.window_end_ms += 86_400_000;
    critical.attach(&later, 86_400_000, terms(5));
    assert_eq!(
        (
            critical.risk.persistence,
            critical.risk.risk,
            critical.priority
        ),
        (2.0, 25.0, 1)
    );
}

#[test]
fn the_lifecycle_allows_only_forward_moves_and_dismissal() {
    use WorkOrderStatus::*;
    let all = [Open, Acknowledged, Scheduled, InProgress, Done, Dismissed];
    let allowed: Vec<(WorkOrderStatus, WorkOrderStatus)> = all
        .iter()
        .flat_map(|&a| all.iter().map(move |&b| (a, b)))
        .filter(|&(a, b)| a.can_become(b))
        .collect();
    assert_eq!(
        allowed,
        [
            (Open, Acknowledged),
            (Open, Scheduled),
            (Open, Dismissed),
            (Acknowledged, Scheduled),
            (Acknowledged, InProgress),
            (Acknowledged, Dismissed),
            (Scheduled, Acknowledged),
            (Scheduled, Scheduled),
            (Scheduled, InProgress),
            (Scheduled, Dismissed),
            (InProgress, Done),
            (InProgress, Dismissed),
        ]
    );
    assert!(!Done.can_become(Open));
}

#[test]
fn numbers_are_written_with_three_significant_digits() {
    assert_eq!(num(0.000123456), "1.23e-4");
    assert_eq!(num(0.0314159), "0.0314");
    assert_eq!(num(4.56789), "4.57");
    assert_eq!(num(125.843), "126");
    assert_eq!(num(11240.58), "11241");
}
