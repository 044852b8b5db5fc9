//! The SKAB benchmark's own protocol through `edge-agent eval skab` (the
//! command that produces the figures in models/README.md): every labelled
//! file commissions the asset on its first 400 rows and is judged on the
//! rest. Skipped when the data set is absent.
//!
//! The bounds are what the results table promises with margin, so a change
//! that makes detection worse fails here: better than the published best
//! F1 (0.78, Conv-AE) with a false alarm rate under 10 %.

use std::process::Command;

use system_tests::{bin, repo_root, shared_data};

#[test]
fn skab_through_the_agents_own_pipeline_beats_the_published_best() {
    let Some(dir) = shared_data("skab") else {
        return;
    };
    let out = Command::new(bin("edge-agent"))
        .args(["eval", "skab", "--data"])
        .arg(&dir)
        .arg("--model")
        .arg(repo_root().join("models/pump-process-anomaly"))
        .env("RUST_LOG", "off")
        .output()
        .expect("edge-agent runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    let figure = |name: &str| -> f64 {
        last.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {last}"))
            .parse()
            .unwrap()
    };
    assert!(last.starts_with("skab: "), "{last}");
    assert!(figure("files") >= 1.0 && figure("rows") >= 100.0, "{last}");
    assert!(figure("f1") > 0.78, "{last}");
    assert!(figure("far") < 0.10, "{last}");
}
