#!/usr/bin/env bash
# Re-trains the shipped models from scratch, deterministically:
#   1. exports feature vectors from the simulators with `edge-agent features`
#      (the agent's own feature code; the seeds are in models/training/*.toml),
#   2. fits each model with train_anomaly_model.py in a venv with pinned packages,
#   3. writes model.onnx, model.json and metrics.json into models/<model>/.
# Usage: models/train.sh [pump|bridge]...   (default: both); takes about 2 minutes
# after the agent is built.
set -euo pipefail
cd "$(dirname "$0")/.."
models=("${@:-pump bridge}")
read -r -a models <<< "${models[*]}"

if [ ! -x models/.venv/bin/python ]; then
  python3 -m venv models/.venv
fi
models/.venv/bin/pip install --quiet -r models/requirements.txt
# EDGE_AGENT=path/to/edge-agent skips the release build (e.g. to use a debug
# build you already have; the features are the same).
agent=${EDGE_AGENT:-}
if [ -z "$agent" ]; then
  cargo build --release --locked -p edge-agent
  agent=target/release/edge-agent
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export_features() { # config seconds output
  "$agent" features --config "models/training/$1.toml" --seconds "$2" --output "$work/$1.csv" >&2
}

for m in "${models[@]}"; do
  case "$m" in
    pump)
      export_features pump-train 1200
      export_features pump-holdout 1200
      export_features pump-faults 900
      models/.venv/bin/python models/train_anomaly_model.py \
        --train "$work/pump-train.csv" --holdout "$work/pump-holdout.csv" --faults "$work/pump-faults.csv" \
        --fault-onset-s 60 --full-severity-s 360 --window-hop-s 1 \
        --model-id pump-anomaly --version 2.0.0 --asset-kind pump --profile pump-v2 \
        --out models/pump-anomaly
      ;;
    bridge)
      export_features bridge-train 7200
      export_features bridge-holdout 7200
      export_features bridge-faults 3600
      models/.venv/bin/python models/train_anomaly_model.py \
        --train "$work/bridge-train.csv" --holdout "$work/bridge-holdout.csv" --faults "$work/bridge-faults.csv" \
        --fault-onset-s 600 --full-severity-s 1800 --window-hop-s 2 \
        --model-id bridge-anomaly --version 2.0.0 --asset-kind bridge --profile bridge-v2 \
        --out models/bridge-anomaly
      ;;
    *) echo "unknown model '$m' (expected pump or bridge)" >&2; exit 2 ;;
  esac
done
