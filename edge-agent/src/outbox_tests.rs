use store::{FillableStore, SledStore};

use super::*;

fn sled(dir: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(SledStore::open(dir).unwrap())
}

fn big() -> OutboxConfig {
    OutboxConfig::default()
}

/// Pushes a record named `name` (an event's id is its name). Telemetry,
/// which has no id, carries two more payload bytes so that every record of
/// a 2-character name has the same size.
fn push(outbox: &Outbox, class: Class, name: &str, now_ms: u64) -> Pushed {
    let (id, payload) = match class {
        Class::Telemetry => (None, format!("{name}..")),
        _ => (Some(name), name.to_owned()),
    };
    outbox
        .push_raw(class, id, "t/x", payload.as_bytes(), now_ms)
        .unwrap()
}

/// Every record in sending order, by name.
fn drain(outbox: &Outbox) -> Vec<String> {
    let mut cursor = Cursor::default();
    std::iter::from_fn(|| outbox.next(&mut cursor))
        .map(|r| {
            String::from_utf8(r.payload)
                .unwrap()
                .trim_end_matches('.')
                .to_owned()
        })
        .collect()
}

/// The size one record of a 2-character name takes.
fn record_bytes() -> u64 {
    encode(Class::Event, 0, Some("e1"), "t/x", b"e1").len() as u64
}

#[test]
fn events_go_before_telemetry_oldest_first_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let outbox = Outbox::open(sled(dir.path()), big()).unwrap();
        push(&outbox, Class::Telemetry, "h1", 1);
        push(&outbox, Class::Event, "e1", 2);
        push(&outbox, Class::Telemetry, "h2", 3);
        push(&outbox, Class::Alarm, "a1", 4);
        assert_eq!(drain(&outbox), ["e1", "a1", "h1", "h2"]);
        assert_eq!(outbox.depth(), (2, 4));
    }
    // Nothing was acknowledged: after a restart all four are still there,
    // in the same order, and new records number on from the old ones.
    let outbox = Outbox::open(sled(dir.path()), big()).unwrap();
    assert_eq!(drain(&outbox), ["e1", "a1", "h1", "h2"]);
    let Pushed::Kept(seq) = push(&outbox, Class::Event, "e2", 5) else {
        panic!("kept")
    };
    assert_eq!(seq, 5);
    assert_eq!(drain(&outbox), ["e1", "a1", "e2", "h1", "h2"]);
}

#[test]
fn an_event_waits_for_the_hubs_receipt_telemetry_only_for_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(sled(dir.path()), big()).unwrap();
    push(&outbox, Class::Event, "e1", 1);
    push(&outbox, Class::Telemetry, "h1", 2);
    let mut cursor = Cursor::default();
    let sent: Vec<u64> = std::iter::from_fn(|| outbox.next(&mut cursor))
        .map(|r| r.seq)
        .collect();
    assert_eq!(outbox.acknowledge(&sent).unwrap(), 2);
    // The heartbeat is gone; the event is kept, awaiting its receipt, and a
    // new cursor (a new connection, the hub back) sends it again.
    assert_eq!(drain(&outbox), ["e1"]);
    let c = outbox.counters();
    assert_eq!((c.records, c.awaiting_receipt, c.acknowledged), (1, 1, 2));
    assert_eq!(outbox.confirm(&["e1".into(), "unknown".into()]).unwrap(), 1);
    assert!(drain(&outbox).is_empty());
    let c = outbox.counters();
    assert_eq!((c.records, c.awaiting_receipt, c.confirmed), (0, 0, 1));
}

#[test]
fn a_confirmed_record_is_gone_for_good_and_a_cursor_moves_past_what_it_took() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(sled(dir.path()), big()).unwrap();
    for (i, name) in ["e1", "e2", "e3"].into_iter().enumerate() {
        push(&outbox, Class::Event, name, i as u64);
    }
    let mut cursor = Cursor::default();
    let first = outbox.next(&mut cursor).unwrap();
    // A new event while the first is in flight comes after the others.
    push(&outbox, Class::Event, "e4", 9);
    let rest: Vec<u64> = std::iter::from_fn(|| outbox.next(&mut cursor))
        .map(|r| r.seq)
        .collect();
    assert_eq!(rest.len(), 3);
    let ids = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(first.event_id.as_deref(), Some("e1"));
    assert_eq!(outbox.confirm(&ids(&["e1", "e2"])).unwrap(), 2);
    // Confirming again (a repeated receipt) changes nothing.
    assert_eq!(outbox.confirm(&ids(&["e1"])).unwrap(), 0);
    assert_eq!(drain(&outbox), ["e3", "e4"]);
    drop(outbox);
    let outbox = Outbox::open(sled(dir.path()), big()).unwrap();
    assert_eq!(drain(&outbox), ["e3", "e4"]);
    let c = outbox.counters();
    assert_eq!(
        (c.records, c.events, c.accepted, c.acknowledged),
        (2, 2, 0, 0)
    );
}

#[test]
fn when_full_telemetry_goes_first_then_events_and_never_alarms_for_less() {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig {
        max_bytes: 4 * record_bytes(),
        ..big()
    };
    let outbox = Outbox::open(sled(dir.path()), config).unwrap();
    push(&outbox, Class::Telemetry, "h1", 1);
    push(&outbox, Class::Event, "e1", 2);
    push(&outbox, Class::Telemetry, "h2", 3);
    push(&outbox, Class::Alarm, "a1", 4);
    // Full. An event makes room by dropping the oldest telemetry.
    assert!(matches!(
        push(&outbox, Class::Event, "e2", 5),
        Pushed::Kept(_)
    ));
    assert_eq!(drain(&outbox), ["e1", "a1", "e2", "h2"]);
    // An alarm: the last telemetry goes.
    push(&outbox, Class::Alarm, "a2", 6);
    assert_eq!(drain(&outbox), ["e1", "a1", "e2", "a2"]);
    // Telemetry cannot push out an event: it is dropped itself.
    assert_eq!(push(&outbox, Class::Telemetry, "h3", 7), Pushed::Dropped);
    // An alarm pushes out the oldest non-alarm event before any alarm.
    push(&outbox, Class::Alarm, "a3", 8);
    assert_eq!(drain(&outbox), ["a1", "e2", "a2", "a3"]);
    push(&outbox, Class::Alarm, "a4", 9);
    assert_eq!(drain(&outbox), ["a1", "a2", "a3", "a4"]);
    // An event cannot push out an alarm; an alarm pushes out the oldest.
    assert_eq!(push(&outbox, Class::Event, "e3", 10), Pushed::Dropped);
    push(&outbox, Class::Alarm, "a5", 11);
    assert_eq!(drain(&outbox), ["a2", "a3", "a4", "a5"]);
    let c = outbox.counters();
    assert_eq!(
        (c.dropped_telemetry, c.dropped_events, c.dropped_alarms),
        (3, 3, 1),
        "{c:?}"
    );
    assert_eq!(c.bytes, 4 * record_bytes());
}

#[test]
fn records_older_than_the_age_bound_expire_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = OutboxConfig {
        max_age_s: 60,
        ..big()
    };
    let outbox = Outbox::open(sled(dir.path()), config).unwrap();
    push(&outbox, Class::Alarm, "a1", 1_000);
    push(&outbox, Class::Telemetry, "h1", 30_000);
    push(&outbox, Class::Event, "e1", 61_001);
    // At 61.001 s, a1 (1 s) is 60.001 s old.
    assert_eq!(drain(&outbox), ["e1", "h1"]);
    let c = outbox.counters();
    assert_eq!((c.expired, c.dropped_alarms), (1, 0));
}

#[test]
fn torn_and_garbage_records_are_skipped_counted_and_hide_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = sled(dir.path());
    let outbox = Outbox::open(store.clone(), big()).unwrap();
    for (i, name) in ["e1", "e2", "e3", "e4"].into_iter().enumerate() {
        push(&outbox, Class::Event, name, i as u64);
    }
    drop(outbox);
    let torn = store.get(&key(2)).unwrap().unwrap();
    store
        .commit(vec![
            Write::Put(key(2), torn[..torn.len() - 3].to_vec()),
            Write::Put(key(3), b"\x00garbage bytes\xff".to_vec()),
            Write::Put(format!("{PREFIX}not-a-number"), b"x".to_vec()),
        ])
        .unwrap();
    let outbox = Outbox::open(store.clone(), big()).unwrap();
    assert_eq!(drain(&outbox), ["e1", "e4"]);
    assert_eq!(outbox.counters().corrupt, 3);
    assert!(store.scan_prefix(PREFIX).unwrap().len() == 2, "deleted");
    // Damage found while sending is handled the same way.
    let one = encode(Class::Event, 0, Some("e1"), "t/x", b"e1");
    let mut flipped = one.clone();
    flipped[HEADER + 4] ^= 0x20;
    store.commit(vec![Write::Put(key(1), flipped)]).unwrap();
    assert_eq!(drain(&outbox), ["e4"]);
    assert_eq!(outbox.counters().corrupt, 4);
}

#[test]
fn a_full_disk_loses_only_the_new_record_counts_it_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FillableStore::new(SledStore::open(dir.path()).unwrap()));
    let outbox = Outbox::open(store.clone(), big()).unwrap();
    push(&outbox, Class::Alarm, "a1", 1);
    store.set_full(true);
    let err = outbox
        .push_raw(Class::Alarm, Some("a2"), "t/x", b"a2", 2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("No space left on device"), "{err}");
    // A receipt that cannot be written leaves the record to be sent again
    // (a duplicate the hub absorbs), never a hole.
    assert!(outbox.confirm(&["a1".to_string()]).is_err());
    let c = outbox.counters();
    assert_eq!((c.write_failures, c.dropped_alarms, c.records), (1, 1, 1));
    store.set_full(false);
    push(&outbox, Class::Alarm, "a3", 3);
    assert_eq!(drain(&outbox), ["a1", "a3"]);
}

#[test]
fn messages_are_classed_by_what_they_say() {
    use protocol::{Heartbeat, PipelineCounters};
    let heartbeat = Message::Heartbeat(Heartbeat {
        site: "s".into(),
        gateway: "g".into(),
        ts_ms: 1,
        uptime_s: 1,
        counters: PipelineCounters::default(),
        assets: vec![],
        outbox: Default::default(),
    });
    assert_eq!(Class::of(&heartbeat), Some(Class::Telemetry));
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(sled(dir.path()), big()).unwrap();
    assert!(matches!(
        outbox.push(&heartbeat, 1).unwrap(),
        Pushed::Kept(1)
    ));
    let mut cursor = Cursor::default();
    let record = outbox.next(&mut cursor).unwrap();
    assert_eq!(record.topic, protocol::encode(&heartbeat).unwrap().topic);
    assert_eq!(
        protocol::decode(&record.topic, &record.payload).unwrap().1,
        heartbeat
    );
}

#[test]
fn bounds_too_small_for_one_event_are_refused() {
    let bad = OutboxConfig {
        max_bytes: 1000,
        ..big()
    };
    assert!(bad.validate().unwrap_err().contains("outbox.max_bytes"));
    assert!(big().validate().is_ok());
}
