//! Nothing lost, nothing doubled: faults injected into real processes on
//! 127.0.0.1 (broker, hub, gateway), against the embedded rumqttd and a
//! real Mosquitto with the shipped configuration. Each test prints
//! `faults: <name> sent=S stored=T lost=L duplicated=D` and requires
//! `lost=0 duplicated=0`.
//!
//! The gateway watches one pump with a bearing fault from the start and
//! raises an event for every window (`reminder_windows = 1`): dozens of
//! events a second, each of which must reach the hub's ledger exactly once.
//! Its simulator runs faster than real time, so minutes of a station's
//! events pass in seconds; the outages themselves are real time.

use std::time::Duration;

use system_tests::faults::{BrokerKind, Rig};

const MINUTE: Duration = Duration::from_secs(60);

fn check(name: &str, kind: BrokerKind, rig: &mut Rig) {
    rig.wait_agent_done(4 * MINUTE);
    let a = rig.account(&format!("{name}-{}", kind.name()), 3 * MINUTE);
    assert_eq!((a.lost, a.duplicated), (0, 0), "{a:?}");
}

/// The broker stops cleanly and comes back while the gateway publishes
/// dozens of events a second.
fn broker_restart_under_load(kind: BrokerKind) {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = Rig::new(kind, dir.path(), 50.0, 1500.0);
    rig.start_agent();
    rig.wait_sent(300, MINUTE);
    rig.broker.down();
    let before = rig.sent().len();
    // The gateway keeps working (and keeping) while the broker is gone.
    rig.wait_sent(before + 100, MINUTE);
    rig.broker.up();
    check("broker_restart_under_load", kind, &mut rig);
    assert!(rig.agent_logs().contains("MQTT connection failed"));
}

/// The broker is down for minutes while the gateway buffers thousands of
/// events (at 20 a second, some two minutes); then the backlog drains while
/// new events keep coming.
fn broker_down_for_minutes(kind: BrokerKind) {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = Rig::new(kind, dir.path(), 20.0, 3400.0);
    rig.start_agent();
    rig.wait_sent(100, MINUTE);
    rig.broker.down();
    let before = rig.sent().len();
    rig.wait_sent(before + 2400, 4 * MINUTE);
    rig.broker.up();
    check("broker_down_for_minutes", kind, &mut rig);
}

/// The gateway is killed (SIGKILL) mid-stream and started again: what it
/// had kept but not yet delivered goes out after the restart.
fn agent_kill9_mid_stream(kind: BrokerKind) {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = Rig::new(kind, dir.path(), 50.0, 1000.0);
    rig.start_agent();
    rig.wait_sent(400, MINUTE);
    rig.kill_agent();
    rig.start_agent();
    check("agent_kill9_mid_stream", kind, &mut rig);
}

/// The hub is killed (SIGKILL) while it ingests and started again: the
/// broker keeps its session, the gateway its unconfirmed events.
fn hub_kill9_mid_ingest(kind: BrokerKind) {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = Rig::new(kind, dir.path(), 50.0, 1500.0);
    rig.start_agent();
    system_tests::wait_until("hub storing events", MINUTE, || {
        Ok((rig.stored()?.len() >= 300).then_some(()))
    });
    rig.kill_hub();
    let before = rig.sent().len();
    rig.wait_sent(before + 200, MINUTE);
    rig.start_hub();
    check("hub_kill9_mid_ingest", kind, &mut rig);
}

#[test]
fn broker_restart_under_load_rumqttd() {
    broker_restart_under_load(BrokerKind::Embedded);
}

#[test]
fn broker_restart_under_load_mosquitto() {
    broker_restart_under_load(BrokerKind::Mosquitto);
}

#[test]
fn broker_down_for_minutes_rumqttd() {
    broker_down_for_minutes(BrokerKind::Embedded);
}

#[test]
fn broker_down_for_minutes_mosquitto() {
    broker_down_for_minutes(BrokerKind::Mosquitto);
}

#[test]
fn agent_kill9_mid_stream_rumqttd() {
    agent_kill9_mid_stream(BrokerKind::Embedded);
}

#[test]
fn agent_kill9_mid_stream_mosquitto() {
    agent_kill9_mid_stream(BrokerKind::Mosquitto);
}

#[test]
fn hub_kill9_mid_ingest_rumqttd() {
    hub_kill9_mid_ingest(BrokerKind::Embedded);
}

#[test]
fn hub_kill9_mid_ingest_mosquitto() {
    hub_kill9_mid_ingest(BrokerKind::Mosquitto);
}
