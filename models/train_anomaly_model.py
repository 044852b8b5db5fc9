#!/usr/bin/env python3
"""Train a Gaussian (Mahalanobis) anomaly model and export it as ONNX.

Input: feature CSVs written by `edge-agent features` (the Rust feature code is
the only feature code). Output: a model folder with `model.onnx`, `model.json`
(the manifest the agent checks) and `metrics.json` (what the model card
reports).

The model, in the order the ONNX graph computes it:
  1. scale features (everything but temperature) are log-transformed: levels
     of vibration are multiplicative, a fault multiplies a band's RMS;
  2. standardised with the training mean and standard deviation (z);
  3. the anomaly score is the squared Mahalanobis distance z' M z, with M the
     inverse of the (slightly shrunk) training correlation matrix: healthy
     windows score about the number of features, and a change is caught
     whether it breaks the usual correlations or just moves one feature far
     along them (a PCA residual alone misses the latter);
  4. the explanation: each feature's share of the score is its squared
     standardised deviation from its typical healthy value, relative to the
     other features' (scaled so the contributions add up to the score), and
     what the model "expected" is that typical value (the training mean,
     mapped back to the feature's unit). Operators read "mode1_freq_hz 3.41,
     typically 3.88" directly. (Reconstruction-based contributions of the
     Mahalanobis distance were tried first: they blame features for being
     inconsistent with the others, e.g. a normal temperature "expected" at
     -27 C during an imbalance, which no operator can act on.)

Thresholds come from held-out healthy machines: the warning threshold is the
99.9th percentile of their scores times a margin, the alarm threshold twice
that. They are then checked against held-out faulty machines.
"""

import argparse
import datetime
import hashlib
import json
import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

EPS = 1e-9
# Features that can be negative or whose scale is additive: kept linear.
LINEAR_FEATURES = {"temperature_c"}


def load(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=str)
    if data.ndim == 1:
        data = data[None, :]
    assets = data[:, 0]
    x = data[:, 2:].astype(np.float64)
    return header[2:], assets, x


def transform_mask(names):
    return np.array([n not in LINEAR_FEATURES for n in names])


def to_model_space(x, log_mask):
    return np.where(log_mask, np.log(np.maximum(x, EPS)), x)


class GaussianModel:
    def __init__(self, names, x_train, shrinkage):
        self.names = names
        self.shrinkage = shrinkage
        self.log_mask = transform_mask(names)
        t = to_model_space(x_train, self.log_mask)
        self.mu = t.mean(axis=0)
        self.sigma = t.std(axis=0)
        self.sigma[self.sigma < 1e-6] = 1.0
        z = (t - self.mu) / self.sigma
        corr = np.cov(z, rowvar=False)
        self.precision = np.linalg.inv(corr + shrinkage * np.eye(len(names)))
        self.typical = np.where(self.log_mask, np.exp(self.mu), self.mu)

    def score(self, x):
        t = to_model_space(x, self.log_mask)
        z = (t - self.mu) / self.sigma
        score = np.sum(z * (z @ self.precision), axis=1)
        deviation = z**2
        contributions = deviation / np.maximum(deviation.sum(axis=1, keepdims=True), EPS) * score[:, None]
        expected = np.broadcast_to(self.typical, z.shape)
        return score, contributions, expected

    def to_onnx(self, model_id, version):
        n = len(self.names)
        f32 = lambda a: np.asarray(a, dtype=np.float32)
        init = [
            numpy_helper.from_array(f32([EPS]), "eps"),
            numpy_helper.from_array(self.log_mask.reshape(1, n), "log_mask"),
            numpy_helper.from_array(f32(self.mu.reshape(1, n)), "mu"),
            numpy_helper.from_array(f32(self.sigma.reshape(1, n)), "sigma"),
            numpy_helper.from_array(f32(self.precision), "precision"),
            numpy_helper.from_array(f32(self.typical.reshape(1, n)), "typical"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "feature_axis"),
        ]
        nodes = [
            helper.make_node("Max", ["features", "eps"], ["clamped"]),
            helper.make_node("Log", ["clamped"], ["logged"]),
            helper.make_node("Where", ["log_mask", "logged", "features"], ["t"]),
            helper.make_node("Sub", ["t", "mu"], ["centred"]),
            helper.make_node("Div", ["centred", "sigma"], ["z"]),
            helper.make_node("MatMul", ["z", "precision"], ["mz"]),
            helper.make_node("Mul", ["z", "mz"], ["terms"]),
            helper.make_node("ReduceSum", ["terms", "feature_axis"], ["score"], keepdims=1),
            helper.make_node("Mul", ["z", "z"], ["deviation"]),
            helper.make_node("ReduceSum", ["deviation", "feature_axis"], ["deviation_total"], keepdims=1),
            helper.make_node("Max", ["deviation_total", "eps"], ["deviation_total_safe"]),
            helper.make_node("Div", ["deviation", "deviation_total_safe"], ["share"]),
            helper.make_node("Mul", ["share", "score"], ["contributions"]),
            helper.make_node("Identity", ["typical"], ["expected"]),
        ]
        graph = helper.make_graph(
            nodes,
            f"{model_id}-{version}",
            [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, n])],
            [
                helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1]),
                helper.make_tensor_value_info("contributions", TensorProto.FLOAT, [1, n]),
                helper.make_tensor_value_info("expected", TensorProto.FLOAT, [1, n]),
            ],
            init,
        )
        model = helper.make_model(
            graph,
            producer_name="edge-pdm/models/train_anomaly_model.py",
            opset_imports=[helper.make_opsetid("", 13)],
        )
        model.ir_version = 8
        model.doc_string = f"{model_id} {version}: Gaussian (Mahalanobis) anomaly model"
        onnx.checker.check_model(model)
        return model


def per_asset_alarm_rate(scores, assets, threshold):
    return {a: float(np.mean(scores[assets == a] >= threshold)) for a in np.unique(assets)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--holdout", required=True)
    ap.add_argument("--faults", required=True)
    ap.add_argument("--fault-onset-s", type=float, required=True, help="first window with a fault present")
    ap.add_argument("--full-severity-s", type=float, required=True, help="time the fault reaches full severity")
    ap.add_argument("--window-hop-s", type=float, required=True)
    ap.add_argument("--model-id", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--asset-kind", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--shrinkage", type=float, default=0.01, help="ridge added to the correlation matrix")
    ap.add_argument("--margin", type=float, default=1.5, help="warning threshold = margin x holdout p99.9")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    names, _, x_train = load(args.train)
    h_names, h_assets, x_hold = load(args.holdout)
    f_names, f_assets, x_fault = load(args.faults)
    if not (names == h_names == f_names):
        sys.exit("feature columns differ between the CSVs")

    model = GaussianModel(names, x_train, args.shrinkage)
    train_scores, _, _ = model.score(x_train)
    hold_scores, _, _ = model.score(x_hold)
    threshold = float(args.margin * np.quantile(hold_scores, 0.999))
    alarm_threshold = 2.0 * threshold

    # Faulty machines: windows are in time order per asset, hop apart.
    fault_report = {}
    for a in np.unique(f_assets):
        s, _, _ = model.score(x_fault[f_assets == a])
        t = np.arange(len(s)) * args.window_hop_s
        before = s[t < args.fault_onset_s]
        full = s[t >= args.full_severity_s]
        above = np.nonzero((s >= alarm_threshold) & (t >= args.fault_onset_s))[0]
        fault_report[a] = {
            "windows_before_onset_at_or_above_warning": float(np.mean(before >= threshold)) if len(before) else None,
            "windows_at_full_severity_at_or_above_alarm": float(np.mean(full >= alarm_threshold)),
            "first_alarm_level_window_s_after_onset": float(t[above[0]] - args.fault_onset_s) if len(above) else None,
            "median_score_at_full_severity": float(np.median(full)),
        }

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_bytes = model.to_onnx(args.model_id, args.version).SerializeToString()
    (out / "model.onnx").write_bytes(onnx_bytes)

    # Cross-check the exported graph against numpy with onnxruntime.
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    check = np.vstack([x_hold[:: max(1, len(x_hold) // 50)], x_fault[-20:]])
    worst = 0.0
    for row in check:
        ort_score = session.run(None, {"features": row[None, :].astype(np.float32)})[0][0, 0]
        np_score = model.score(row[None, :])[0][0]
        worst = max(worst, abs(ort_score - np_score) / max(np_score, 1e-6))
    if worst > 1e-3:
        sys.exit(f"onnxruntime and numpy disagree: relative difference {worst}")

    # Self-test vectors: the agent reproduces these scores at load time.
    picks = [x_hold[0], x_hold[len(x_hold) // 2], x_fault[-1]]
    self_test = [
        {"input": [float(v) for v in row], "score": float(model.score(row[None, :])[0][0]), "tolerance": 1e-3}
        for row in picks
    ]
    manifest = {
        "model_id": args.model_id,
        "version": args.version,
        "asset_kind": args.asset_kind,
        "feature_profile": args.profile,
        "features": names,
        "onnx_file": "model.onnx",
        "threshold": threshold,
        "alarm_threshold": alarm_threshold,
        "self_test": self_test,
        "training": {
            "method": "squared Mahalanobis distance of standardised, log-scaled features; explained by each feature's standardised deviation from its typical value",
            "shrinkage": args.shrinkage,
            "train_windows": int(len(x_train)),
            # Of the feature values only: the export's time column is wall-clock.
            "train_features_sha256": hashlib.sha256(x_train.tobytes()).hexdigest(),
            "script": "models/train_anomaly_model.py",
            "trained_at": datetime.date.today().isoformat(),
        },
    }
    (out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    metrics = {
        "features": len(names),
        "train_windows": int(len(x_train)),
        "holdout_windows": int(len(x_hold)),
        "threshold": threshold,
        "alarm_threshold": alarm_threshold,
        "train_score_p99": float(np.quantile(train_scores, 0.99)),
        "holdout_score_p99_9": float(np.quantile(hold_scores, 0.999)),
        "holdout_windows_at_or_above_warning": per_asset_alarm_rate(hold_scores, h_assets, threshold),
        "holdout_windows_at_or_above_alarm": per_asset_alarm_rate(hold_scores, h_assets, alarm_threshold),
        "faults": fault_report,
        "onnxruntime_max_relative_difference": worst,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
