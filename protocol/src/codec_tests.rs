use super::*;
use crate::messages::*;

fn event() -> AnomalyEvent {
    AnomalyEvent {
        event_id: "0190f3c2-6a1b-7cc0-8a51-3d2b9f1e0a11".into(),
        site: "north".into(),
        gateway: "gw-1".into(),
        asset_id: "P-101".into(),
        asset_kind: AssetKind::Pump,
        channel: "de-accel".into(),
        kind: EventKind::Anomaly,
        state: DetectorState::Alarm,
        previous_state: DetectorState::Warning,
        window_start_ms: 1_700_000_000_000,
        window_end_ms: 1_700_000_001_000,
        raised_at_ms: 1_700_000_001_010,
        score: 12.5,
        threshold: 3.0,
        alarm_threshold: 6.0,
        model: ModelRef {
            id: "pump-pca".into(),
            version: "1.0.0".into(),
        },
        top_features: vec![FeatureContribution {
            name: "kurtosis".into(),
            value: 9.1,
            expected: 3.0,
            share: 0.6,
        }],
        detail: None,
    }
}

fn birth() -> Birth {
    Birth {
        site: "north".into(),
        gateway: "gw-1".into(),
        agent_version: "0.1.0".into(),
        started_at_ms: 1,
        ts_ms: 2,
        assets: vec![AssetInfo {
            id: "P-101".into(),
            kind: AssetKind::Pump,
            channels: vec![ChannelInfo {
                id: "de-accel".into(),
                quantity: Quantity::Acceleration,
                unit: "g".into(),
                sample_rate_hz: 5120.0,
            }],
            model: ModelRef {
                id: "pump-pca".into(),
                version: "1.0.0".into(),
            },
        }],
    }
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        site: "north".into(),
        gateway: "gw-1".into(),
        ts_ms: 5,
        uptime_s: 3,
        outbox: Default::default(),
        counters: PipelineCounters::default(),
        assets: vec![AssetStatus {
            model: None,
            id: "P-101".into(),
            state: DetectorState::Normal,
            last_score: Some(0.4),
            threshold: 3.0,
            alarm_threshold: 6.0,
            windows_scored: 10,
            velocity_rms_mm_s: Some(1.7),
            iso_zone: Some(IsoZone::B),
            commissioning: Some(crate::CommissioningStatus {
                phase: crate::CommissioningPhase::Commissioned,
                windows: 120,
                windows_needed: 120,
                completed_at_ms: Some(1_700_000_000_000),
                baseline_score_quantile: Some(3.5),
                feature_scaling: true,
                covariates_learned: vec!["temperature_c".into()],
            }),
        }],
    }
}

#[test]
fn every_message_round_trips_through_its_topic() {
    let messages = [
        Message::Birth(birth()),
        Message::Heartbeat(heartbeat()),
        Message::Event(event()),
        Message::Death(Death {
            site: "north".into(),
            gateway: "gw-1".into(),
            ts_ms: 9,
            reason: DeathReason::ConnectionLost,
        }),
    ];
    for m in messages {
        let env = encode(&m).unwrap();
        let (topic, back) = decode(&env.topic, &env.payload).unwrap();
        assert_eq!(back, m);
        assert_eq!((topic.site.as_str(), topic.gateway.as_str()), m.origin());
    }
}

#[test]
fn event_json_uses_snake_case_states() {
    let env = encode(&Message::Event(event())).unwrap();
    assert_eq!(env.topic, "pdm/v1/north/gw-1/event");
    let v: serde_json::Value = serde_json::from_slice(&env.payload).unwrap();
    assert_eq!(v["state"], "alarm");
    assert_eq!(v["previous_state"], "warning");
    assert_eq!(v["asset_kind"], "pump");
    assert_eq!(v["kind"], "anomaly");
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let mut v = serde_json::to_value(event()).unwrap();
    v["added_in_a_later_agent"] = serde_json::json!({"x": 1});
    let payload = serde_json::to_vec(&v).unwrap();
    assert!(decode("pdm/v1/north/gw-1/event", &payload).is_ok());
}

#[test]
fn garbage_and_wrong_shapes_are_typed_errors() {
    let err = decode("pdm/v1/north/gw-1/event", b"\x00\xffnot json").unwrap_err();
    assert!(
        matches!(err, DecodeError::Json { kind: "event", .. }),
        "{err}"
    );

    // A valid heartbeat is not a valid event.
    let hb = encode(&Message::Heartbeat(heartbeat())).unwrap();
    let err = decode("pdm/v1/north/gw-1/event", &hb.payload).unwrap_err();
    assert!(matches!(err, DecodeError::Json { .. }), "{err}");

    let err = decode("pdm/v1/north/gw-1", b"{}").unwrap_err();
    assert!(matches!(err, DecodeError::Topic { .. }), "{err}");
}

#[test]
fn oversize_payload_is_refused_before_parsing() {
    let payload = vec![b' '; MAX_PAYLOAD_BYTES + 1];
    let err = decode("pdm/v1/north/gw-1/event", &payload).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { .. }), "{err}");
}

#[test]
fn a_message_must_come_from_the_gateway_of_its_topic() {
    let env = encode(&Message::Event(event())).unwrap();
    let err = decode("pdm/v1/north/gw-2/event", &env.payload).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::OriginMismatch {
                field: "gateway",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("gw-1"), "{err}");
}

#[test]
fn semantic_rules_are_enforced_on_decode() {
    type Mutation = Box<dyn Fn(&mut AnomalyEvent)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("non-finite score", Box::new(|e| e.score = f64::NAN)),
        ("negative score", Box::new(|e| e.score = -1.0)),
        ("zero threshold", Box::new(|e| e.threshold = 0.0)),
        ("alarm below warning", Box::new(|e| e.alarm_threshold = 1.0)),
        ("reversed window", Box::new(|e| e.window_end_ms = 0)),
        ("empty id", Box::new(|e| e.event_id.clear())),
        ("bad asset id", Box::new(|e| e.asset_id = "P 101".into())),
        (
            "anomaly in sensor_fault",
            Box::new(|e| e.state = DetectorState::SensorFault),
        ),
        (
            "anomaly in model_fault",
            Box::new(|e| e.state = DetectorState::ModelFault),
        ),
        ("share > 1", Box::new(|e| e.top_features[0].share = 1.5)),
        (
            "too many features",
            Box::new(|e| e.top_features = vec![e.top_features[0].clone(); 17]),
        ),
    ];
    for (name, mutate) in cases {
        let mut e = event();
        mutate(&mut e);
        // NaN cannot be written by serde_json (it becomes null), so build
        // the payload from a Value to also cover a hostile publisher.
        let payload = serde_json::to_vec(&e).unwrap();
        let err = decode("pdm/v1/north/gw-1/event", &payload);
        assert!(err.is_err(), "{name}: accepted");
        assert!(encode(&Message::Event(e)).is_err(), "{name}: encoded");
    }
}

#[test]
fn birth_with_bad_channel_is_refused_with_the_reason() {
    let mut b = birth();
    b.assets[0].channels[0].sample_rate_hz = 0.0;
    let err = encode(&Message::Birth(b)).unwrap_err().to_string();
    assert!(err.contains("sample rate"), "{err}");
    assert!(err.contains("P-101"), "{err}");
}
