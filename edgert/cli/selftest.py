"""``edgert selftest [--json FILE]``: prove TensorRT works on this device, in a report to paste.

Builds a tiny generated model (1x1 convolution + ReLU) on the GPU and on each
DLA core in FP16 and INT8, runs it, compares with a NumPy reference, checks
that engine buffers are zero-copy on an integrated GPU, and reads the power
mode.  Without TensorRT it says how to get it, in one line, and exits 1.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

ORDER = 17
log = logging.getLogger("edgert.cli.selftest")

SHAPE = (1, 3, 16, 16)
WEIGHTS = np.array([[0.5, -0.25, 0.125], [0.1, 0.2, 0.3], [-0.3, 0.6, 0.1], [1.0, 0.0, -1.0]],
                   np.float32)
TOLERANCE = {"fp16": 0.01, "int8": 0.08}  # max |error| relative to the output range


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("selftest", help="build and run a tiny engine on GPU and each DLA core",
                       description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write JSON here")
    p.set_defaults(func=run)


def write_model(path: Path) -> Path:
    onnx = __import__("edgert._lazy", fromlist=["require"]).require("onnx", "edgert selftest")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["c"], name="conv"),
         helper.make_node("Relu", ["c"], ["out"], name="relu")], "selftest",
        [helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, 4, 16, 16])],
        initializer=[numpy_helper.from_array(WEIGHTS.reshape(4, 3, 1, 1), "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def reference(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.einsum("oc,nchw->nohw", WEIGHTS, x), 0.0).astype(np.float32)


def _calibration(specs: Any, feats: Any, tmp: Path) -> Any:
    from edgert.engines.tensorrt.calibrator import CalibrationFeed, cache_header, make_calibrator

    rng = np.random.default_rng(1)
    batches = iter([{"images": rng.random(SHAPE, dtype=np.float32)} for _ in range(8)])
    feed = CalibrationFeed(specs, batches, tmp / "selftest.calib",
                           cache_header(feats.calibration_header_version, "entropy"), total=8)
    feed.calibrator = make_calibrator(feed, "entropy")
    return feed


def check_one(device: str, precision: str, onnx: Path, feats: Any, tmp: Path) -> Dict[str, Any]:
    """Build, run and compare one (device, precision); never raises for user-level failures."""
    from edgert import cuda
    from edgert.engines.tensorrt.builder import BuildRequest, build, make_logger
    from edgert.engines.tensorrt.runtime import TrtEngine
    from edgert.errors import EdgertError

    res: Dict[str, Any] = {"device": device, "precision": precision}
    try:
        req = BuildRequest(name="selftest", onnx=onnx, device=device, precision=precision,
                           batch=1, has_calibration=True)
        built = build(req, feats, lambda specs: _calibration(specs, feats, tmp))
        eng = TrtEngine(built.plan, device, make_logger([]))
        io = eng.new_io(1)
        x = np.random.default_rng(2).random(SHAPE, dtype=np.float32)
        io.inputs["images"][...] = x
        eng.run(io, 1)
        want = reference(x)
        err = float(np.abs(io.outputs["out"] - want).max()) / max(float(want.max()), 1e-6)
        res.update(build_s=round(built.seconds, 2), rel_error=round(err, 5),
                   fallback=built.fallback_layers, bytes_copied=io.bytes_copied,
                   zero_copy=cuda.is_integrated() and io.bytes_copied == 0,
                   ok=err <= TOLERANCE[precision])
        eng.close()
    except EdgertError as exc:
        res.update(ok=False, error=str(exc))
    return res


def _devices(feats: Any) -> List[str]:
    import tensorrt as trt

    from edgert.engines.tensorrt.builder import make_logger

    cores = int(trt.Builder(make_logger([])).num_DLA_cores) if feats.dla_release else 0
    return ["gpu"] + ["dla:%d" % i for i in range(cores)]


def environment(feats: Any) -> Dict[str, Any]:
    from edgert import cuda
    from edgert.platform.detect import detect

    info = detect().to_dict()
    major, minor = cuda.compute_capability()
    return {"tensorrt": feats.version, "gpu": cuda.device_name(),
            "compute_capability": "%d.%d" % (major, minor), "integrated": cuda.is_integrated(),
            "cuda_backend": cuda.backend_name(), "python": platform.python_version(),
            "model": info.get("model"), "l4t": info.get("l4t"), "jetpack": info.get("jetpack"),
            "power_mode": info.get("power_mode"), "dla_cores": info.get("dla_cores")}


def run_checks(feats: Any) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    env = environment(feats)
    results = []
    with tempfile.TemporaryDirectory(prefix="edgert-selftest-") as tmp:
        onnx = write_model(Path(tmp) / "selftest.onnx")
        for device in _devices(feats):
            for precision in ("fp16", "int8"):
                results.append(check_one(device, precision, onnx, feats, Path(tmp)))
    return env, results


def format_report(env: Dict[str, Any], results: List[Dict[str, Any]]) -> str:
    lines = ["edgert selftest"] + ["  %-18s %s" % (k + ":", v) for k, v in env.items()]
    for r in results:
        what = "%s %s" % (r["device"], r["precision"])
        if "error" in r:
            lines.append("FAIL %-12s %s" % (what, r["error"]))
            continue
        lines.append("%s %-12s build %.1fs, max rel. error %.4f (limit %.2f), %s" % (
            "PASS" if r["ok"] else "FAIL", what, r["build_s"], r["rel_error"],
            TOLERANCE[r["precision"]],
            "zero-copy" if r["zero_copy"] else "%d bytes copied" % r["bytes_copied"]))
    bad = sum(1 for r in results if not r["ok"])
    lines.append("selftest: %d passed, %d failed" % (len(results) - bad, bad))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from edgert.engines.tensorrt.compat import load
    from edgert.engines.tensorrt.loader import _require_gpu
    from edgert.fsutil import atomic_write_text

    _, feats = load("edgert selftest")
    _require_gpu()
    env, results = run_checks(feats)
    print(format_report(env, results))
    if args.json is not None:
        atomic_write_text(args.json, json.dumps({"environment": env, "results": results},
                                                indent=2, default=str) + "\n")
    return 0 if all(r["ok"] for r in results) else 1
