//! A model that scores real windows as NaN never raises an alarm: the
//! detector goes to `model_fault`, one `model_fault` event says why, and
//! every such window is counted as a model failure.
//!
//! The fixture (`fixtures/nan-model`, written by its `make.py`) passes its
//! self-test but sums sqrt(feature - 1), which is NaN for a real pump.

use std::path::Path;

use edge_agent::AnomalyModel;
use edge_agent::pipeline::Outcome;
use protocol::{AssetKind, DetectorState, EventKind};

mod common;

#[test]
fn non_finite_scores_become_one_model_fault_event_never_an_alarm() {
    let model = AnomalyModel::load_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nan-model"),
    )
    .expect("the fixture passes its self-test");
    let mut pipeline = common::pipeline(AssetKind::Pump, model, 5120.0);
    let mut events = Vec::new();
    for window in common::pump_windows(4101, None, 20) {
        let (outcome, event) = pipeline.process(&window);
        match outcome {
            Outcome::ModelFailed(reason) => assert!(reason.contains("not a finite"), "{reason}"),
            other => panic!("window {} was not a model failure: {other:?}", window.seq),
        }
        events.extend(event);
    }
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(
        (e.kind, e.state),
        (EventKind::ModelFault, DetectorState::ModelFault)
    );
    assert_eq!(e.model.id, "nan-model");
    assert!(
        e.detail.as_deref().unwrap_or("").contains("not a finite"),
        "{e:?}"
    );
    assert_eq!(pipeline.status().state, DetectorState::ModelFault);
    // The event is a valid protocol message.
    protocol::encode(&protocol::Message::Event(e.clone())).expect("valid event");
}
