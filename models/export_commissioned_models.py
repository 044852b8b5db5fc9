"""Exports the models with nothing to train centrally: `pump-process-anomaly`,
`bearing-anomaly` and `bridge-modal-anomaly`.

Each asset's normal is learned on its gateway when it is commissioned (the
agent's commissioning: every feature's baseline mean and standard deviation,
then thresholds from the baseline's own scores). The graph only scores the
standardised features it is given: the sum of their squares (Hotelling's
T-squared with a diagonal covariance), each feature's square as its
contribution, and 0 (the baseline centre, which the agent maps back to
units) as what it expected. So one file serves every pump of any design;
what is specific to a machine never leaves it.

Why diagonal: on the SKAB development files (see models/README.md), in a
numpy prototype of the same steps without the temperatures, a full
covariance from the 400 baseline rows measured no better (F1 0.852, FAR
7.0 %) than the diagonal (F1 0.851, FAR 5.6 %), and the diagonal needs the
commissioning to learn only a centre and a spread per feature. (With the
temperatures, both were far worse: FAR 30-60 %.)

`bearing-anomaly` is the same idea for raw vibration (profile bearing-v1,
the pump-v2 features over 0.1 s windows), one-sided: the sum of the squared
rises of the standardised features (a bearing quieter than at
commissioning is not failing). The temperature is weighted 0, because a
bearing's temperature drifts with load and ambient over any baseline of
seconds to minutes, and a standardised drift would read as a fault; so is
the skewness, whose sign no defect prefers.

`bridge-modal-anomaly` watches a span's three modal frequencies, one-sided
(only a fall is stiffness loss), each standardised against the line the
span's commissioning fitted on temperature and log excitation level (the
agent's covariates, see edge-agent/src/feature_scaling.rs).

Writes model.onnx and model.json into models/<name>/.
Run: models/.venv/bin/python models/export_commissioned_models.py
"""
import json
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = pathlib.Path(__file__).parent


def graph(name, weights, sides):
    """score = sum(w * d^2), contributions = w * d^2, expected = 0, where d
    is the standardised feature z if its side is 0, and max(side * z, 0) if
    its side is +1 (only a rise counts) or -1 (only a fall counts)."""
    n = len(weights)
    sides = np.array([sides], dtype=np.float32)
    nodes = [
        helper.make_node("Mul", ["features", "sides"], ["signed"]),
        helper.make_node("Relu", ["signed"], ["one_sided"]),
        helper.make_node("Mul", ["features", "two_sided_mask"], ["two_sided"]),
        helper.make_node("Add", ["one_sided", "two_sided"], ["deviation"]),
        helper.make_node("Mul", ["deviation", "deviation"], ["squares"]),
        helper.make_node("Mul", ["squares", "weights"], ["contributions"]),
        helper.make_node("ReduceSum", ["contributions", "feature_axis"], ["score"], keepdims=1),
        helper.make_node("Identity", ["centre"], ["expected"]),
    ]
    g = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, n])],
        [
            helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1]),
            helper.make_tensor_value_info("contributions", TensorProto.FLOAT, [1, n]),
            helper.make_tensor_value_info("expected", TensorProto.FLOAT, [1, n]),
        ],
        [
            numpy_helper.from_array(np.array([weights], dtype=np.float32), "weights"),
            numpy_helper.from_array(sides, "sides"),
            numpy_helper.from_array((1.0 - np.abs(sides)).astype(np.float32), "two_sided_mask"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "feature_axis"),
            numpy_helper.from_array(np.zeros((1, n), dtype=np.float32), "centre"),
        ],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def deviation(v, sides):
    """What the graph squares, in numpy (float32, like the graph)."""
    z, s = np.float32(v), np.float32(sides)
    return np.maximum(s * z, np.float32(0)) + (np.float32(1) - np.abs(s)) * z


def export(name, version, kind, profile, features, weights, sides, commissioning, purpose):
    out = HERE / name
    out.mkdir(exist_ok=True)
    onnx.save(graph(name, weights, sides), out / "model.onnx")
    n = len(features)
    vectors = [
        [((i * 7) % 5 - 2) * 0.5 for i in range(n)],
        [0.0] * n,
        [10.0] + [0.0] * (n - 1),
        [-3.0] * n,
    ]
    w = np.float32(weights)
    effective = sum(w if side == 0 else w / 2 for w, side in zip(weights, sides))
    # Only used if an asset is not commissioned: about the chi-squared
    # 99.9 % point for that many standardised features, and twice that.
    threshold = round(float(effective + 4.0 * np.sqrt(2.0 * effective)), 2)
    manifest = {
        "model_id": name,
        "version": version,
        "asset_kind": kind,
        "feature_profile": profile,
        "features": features,
        "onnx_file": "model.onnx",
        "threshold": threshold,
        "alarm_threshold": 2 * threshold,
        "self_test": [
            {"input": v, "score": float(np.sum(w * np.square(deviation(v, sides)))), "tolerance": 1e-6}
            for v in vectors
        ],
        "commissioning": commissioning,
        "training": {
            "script": "models/export_commissioned_models.py",
            "data": "none: every asset learns its own baseline at commissioning",
            "purpose": purpose,
        },
    }
    (out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")


PROCESS_FEATURES = ["accel1_rms_g", "accel2_rms_g", "current_a", "pressure_bar", "voltage_v", "flow_l_min"]
BEARING_FEATURES = [
    "accel_rms_g", "accel_peak_g", "crest_factor", "kurtosis", "skewness", "velocity_rms_mm_s",
    "band_10_100hz_rms_g", "band_100_500hz_rms_g", "band_500_1000hz_rms_g", "band_1000_2500hz_rms_g",
    "env_bpfo_g", "env_bpfi_g", "env_bsf_g", "env_ftf_g", "temperature_c",
]


BRIDGE_FEATURES = [
    "accel_rms_g", "accel_peak_g", "crest_factor", "kurtosis", "skewness",
    "band_0.5_3hz_rms_g", "band_3_3.7hz_rms_g", "band_3.7_4.3hz_rms_g", "band_4.3_9hz_rms_g",
    "band_9_11.5hz_rms_g", "band_11.5_20hz_rms_g", "mode1_freq_hz", "mode2_freq_hz", "mode3_freq_hz",
    "temperature_c",
]
BRIDGE_MODES = ["mode1_freq_hz", "mode2_freq_hz", "mode3_freq_hz"]


def main():
    export(
        "pump-process-anomaly", "2.0.0", "pump", "pump-process-v2", PROCESS_FEATURES, [1.0] * 6,
        [0.0] * 6,
        {
            "baseline_windows": 400,
            "feature_scaling": True,
            "scaling_statistic": "mean_std",
            "threshold_quantile": 0.99,
            "threshold_margin": 1.5,
            "alarm_factor": 2.0,
        },
        "pumps watched through their process channels, each asset against its own baseline",
    )
    # A bearing fault adds energy, impulses and defect-frequency modulation:
    # only rises count. A bearing quieter than at commissioning (run-in, a
    # lighter load) is not failing. Skewness has no sign a defect prefers,
    # and temperature drifts with load and ambient: both weighted 0.
    bearing_weights = [0.0 if f in ("skewness", "temperature_c") else 1.0 for f in BEARING_FEATURES]
    export(
        "bearing-anomaly", "1.1.0", "pump", "bearing-v1", BEARING_FEATURES, bearing_weights,
        [1.0] * len(BEARING_FEATURES),
        {
            "baseline_windows": 40,
            "feature_scaling": True,
            "scaling_statistic": "median_mad",
            "threshold_quantile": 0.99,
            "threshold_margin": 1.5,
            "alarm_factor": 2.0,
        },
        "rolling-element bearings from raw vibration, each bearing against its own baseline",
    )
    # A span losing stiffness rings lower: only falls of the modal
    # frequencies count, against what this span showed at this temperature
    # and excitation level during commissioning (the covariates). Levels
    # and shape follow traffic and wind, not the structure: weighted 0.
    export(
        "bridge-modal-anomaly", "1.0.0", "bridge", "bridge-modal-v1", BRIDGE_FEATURES,
        [1.0 if f in BRIDGE_MODES else 0.0 for f in BRIDGE_FEATURES],
        [-1.0 if f in BRIDGE_MODES else 0.0 for f in BRIDGE_FEATURES],
        {
            # A day of 2 s hops: the baseline sees the daily temperature cycle.
            "baseline_windows": 43200,
            "feature_scaling": True,
            "scaling_statistic": "median_mad",
            "threshold_quantile": 0.99,
            "threshold_margin": 1.5,
            "alarm_factor": 2.0,
            "covariates": [
                {"feature": "temperature_c", "min_spread": 1.0},
                {"feature": "accel_rms_g", "log": True, "min_spread": 0.2},
            ],
        },
        "bridge spans from ambient vibration: stiffness loss, each span against its own baseline",
    )


if __name__ == "__main__":
    main()
