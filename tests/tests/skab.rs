//! The SKAB benchmark's own protocol through `edge-agent eval skab` (the
//! command that produces the figures in models/README.md): every labelled
//! file commissions the asset on its first 400 rows and is judged on the
//! rest. Skipped when the data set is absent.
//!
//! The bounds are what the results table promises with margin, so a change
//! that makes detection worse fails here: better than the published best
//! F1 (0.78, Conv-AE) with a false alarm rate under 10 %.

use system_tests::{figure, run_eval, shared_data};

#[test]
fn skab_through_the_agents_own_pipeline_beats_the_published_best() {
    let Some(dir) = shared_data("skab") else {
        return;
    };
    let stdout = run_eval("skab", &dir, "pump-process-anomaly");
    let last = stdout.lines().last().unwrap_or_default();
    let number = |name: &str| -> f64 { figure(last, name).parse().unwrap() };
    assert!(last.starts_with("skab: "), "{last}");
    assert!(number("files") >= 1.0 && number("rows") >= 100.0, "{last}");
    assert!(number("f1") > 0.78, "{last}");
    assert!(number("far") < 0.10, "{last}");
}
