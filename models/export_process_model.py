"""Exports `pump-process-anomaly`: a model with nothing to train centrally.

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

Writes model.onnx and model.json into models/pump-process-anomaly/.
Run: models/.venv/bin/python models/export_process_model.py
"""
import json
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = pathlib.Path(__file__).parent / "pump-process-anomaly"
FEATURES = ["accel1_rms_g", "accel2_rms_g", "current_a", "pressure_bar", "voltage_v", "flow_l_min"]
N = len(FEATURES)


def graph():
    nodes = [
        helper.make_node("Mul", ["features", "features"], ["contributions"]),
        helper.make_node("ReduceSum", ["contributions", "feature_axis"], ["score"], keepdims=1),
        helper.make_node("Identity", ["centre"], ["expected"]),
    ]
    g = helper.make_graph(
        nodes,
        "pump-process-anomaly",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, N])],
        [
            helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1]),
            helper.make_tensor_value_info("contributions", TensorProto.FLOAT, [1, N]),
            helper.make_tensor_value_info("expected", TensorProto.FLOAT, [1, N]),
        ],
        [
            numpy_helper.from_array(np.array([1], dtype=np.int64), "feature_axis"),
            numpy_helper.from_array(np.zeros((1, N), dtype=np.float32), "centre"),
        ],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    OUT.mkdir(exist_ok=True)
    onnx.save(graph(), OUT / "model.onnx")
    vectors = [[1.0, -2.0, 0.5, 0.0, 3.0, -0.25], [0.0] * N, [10.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    manifest = {
        "model_id": "pump-process-anomaly",
        "version": "1.0.0",
        "asset_kind": "pump",
        "feature_profile": "pump-process-v1",
        "features": FEATURES,
        "onnx_file": "model.onnx",
        # Only used if an asset is not commissioned: the chi-squared 99.9 %
        # point for 6 standardised features, and twice that.
        "threshold": 22.46,
        "alarm_threshold": 44.92,
        "self_test": [
            {"input": v, "score": float(np.sum(np.square(np.float32(v)))), "tolerance": 1e-6}
            for v in vectors
        ],
        "commissioning": {
            "baseline_windows": 400,
            "feature_scaling": True,
            "scaling_statistic": "mean_std",
            "threshold_quantile": 0.99,
            "threshold_margin": 1.5,
            "alarm_factor": 2.0,
        },
        "training": {
            "script": "models/export_process_model.py",
            "data": "none: every asset learns its own baseline at commissioning",
        },
    }
    (OUT / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
