"""``edgert doctor``: turn what detection found into checks a user can act on.

Each check says what is wrong and the exact fix; the ones here are the
problems Jetson users hit most (TensorRT bindings missing from a venv, pip's
OpenCV hiding JetPack's GStreamer build, jtop.service down, a benchmark run in
a low power mode, clocks left locked by a crashed run).
"""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from edgert.platform import nvpmodel
from edgert.platform.detect import DeviceInfo

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    status: str
    title: str
    fix: str = ""

    def render(self) -> str:
        fix = ("\n       fix: " + self.fix) if self.fix else ""
        return "[%s] %s%s" % (self.status.upper(), self.title, fix)


def jetpack_tensorrt_paths(root: Path) -> List[str]:
    """Where JetPack's python3-libnvinfer puts the bindings (system Python only)."""
    pattern = str(root / "usr/lib/python3*/dist-packages/tensorrt")
    return sorted(glob.glob(pattern))


def jetpack_opencv_paths(root: Path) -> List[str]:
    return sorted(glob.glob(str(root / "usr/lib/python3*/dist-packages/cv2")))


def check_tensorrt(info: DeviceInfo, root: Path) -> Check:
    if info.versions.get("tensorrt"):
        return Check(OK, "TensorRT %s importable" % info.versions["tensorrt"])
    if not info.is_jetson:
        return Check(OK, "TensorRT not installed: the onnxruntime backend runs models here")
    where = jetpack_tensorrt_paths(root)
    if where:
        return Check(FAIL, "TensorRT Python bindings not importable from this interpreter: JetPack "
                     "installs them for /usr/bin/python3 only (%s)" % where[0],
                     "create the venv with --system-site-packages "
                     "(python3 -m venv --system-site-packages .venv)")
    return Check(FAIL, "TensorRT Python bindings are not installed",
                 "sudo apt install python3-libnvinfer (part of JetPack's nvidia-tensorrt)")


def check_cuda_bindings(info: DeviceInfo) -> Optional[Check]:
    if not info.is_jetson and not info.gpus:
        return None
    cp = info.versions.get("cuda-python")
    if cp and info.cuda and cp.split(".")[0] != info.cuda.split(".")[0]:
        return Check(WARN, "cuda-python %s does not match this Jetson's CUDA %s" % (cp, info.cuda),
                     "pip install 'cuda-python>=%s,<%d'" % (info.cuda.split(".")[0],
                                                            int(info.cuda.split(".")[0]) + 1))
    if info.versions.get("cuda-python") or info.versions.get("pycuda"):
        if info.versions.get("cuda-python"):
            which = "cuda-python %s" % info.versions["cuda-python"]
        else:
            which = "pycuda %s" % info.versions["pycuda"]
        return Check(OK, "CUDA from Python: " + which)
    return Check(WARN, "neither cuda-python nor pycuda is installed: the TensorRT backend cannot "
                 "move buffers", "pip install 'edgert[trt]' (cuda-python matching the CUDA %s)"
                 % (info.cuda or "release"))


def check_opencv(info: DeviceInfo, root: Path) -> List[Check]:
    version = info.versions.get("opencv")
    if not version:
        return [Check(WARN, "OpenCV is not importable: video sources and sinks need it",
                      "on a Jetson: sudo apt install python3-opencv (and a venv with "
                      "--system-site-packages); elsewhere pip install 'edgert[ort]'")]
    checks = []
    jetpack_cv = jetpack_opencv_paths(root)
    path = info.opencv_path or ""
    if info.is_jetson and jetpack_cv and "dist-packages" not in path:
        checks.append(Check(FAIL, "pip's OpenCV (%s) shadows JetPack's GStreamer-enabled OpenCV "
                            "in %s" % (path, jetpack_cv[0]),
                            "pip uninstall opencv-python opencv-python-headless"))
    if info.is_jetson and info.opencv_gstreamer is False:
        checks.append(Check(WARN, "OpenCV %s was built without GStreamer: csi:// cameras and "
                            "hardware video decoding are unavailable" % version,
                            "use JetPack's python3-opencv (venv with --system-site-packages)"))
    if not checks:
        gst = {True: "with", False: "without", None: "GStreamer unknown,"}[info.opencv_gstreamer]
        checks.append(Check(OK, "OpenCV %s (%s GStreamer)" % (version, gst)))
    return checks


def check_jtop(info: DeviceInfo, root: Path) -> Optional[Check]:
    if not info.is_jetson or not info.versions.get("jetson-stats"):
        return None
    if (root / "run/jtop.sock").exists():
        return Check(OK, "jtop.service is running (power control without root)")
    return Check(WARN, "jetson-stats is installed but jtop.service is not running",
                 "sudo systemctl restart jtop.service (or sudo jtop --install-service)")


def check_power_mode(info: DeviceInfo, table: Optional[nvpmodel.ModeTable]) -> Optional[Check]:
    if not info.is_jetson:
        return None
    if info.power_mode is None:
        return Check(WARN, "cannot read the power mode ('nvpmodel -q' failed or is missing)",
                     "check that nvidia-l4t-tools is installed")
    best = table.max_mode if table is not None else None
    name = info.power_mode.get("name")
    if best is not None and name != best.name:
        return Check(WARN, "power mode is %s, not %s: benchmarks will not show the board's peak"
                     % (name, best.name),
                     "power: {nvpmodel: %s, jetson_clocks: true} in the YAML, or "
                     "'sudo edgert power set --nvpmodel %s --jetson-clocks'"
                     % (best.name, best.name))
    return Check(OK, "power mode %s" % name)


def check_pending_restore(pending: List[object]) -> Optional[Check]:
    if not pending:
        return None
    pids = ", ".join(str(getattr(s, "pid", "?")) for s in pending)
    return Check(WARN, "power settings changed by edgert are still in effect (pid %s)" % pids,
                 "sudo edgert power restore")


def run_checks(info: DeviceInfo, root: Path, table: Optional[nvpmodel.ModeTable],
               pending: List[object]) -> List[Check]:
    checks: List[Optional[Check]] = [
        Check(OK, "%s%s" % (info.model or "not a Jetson (%s)" % (info.cpu or info.machine),
                            (", L4T %s / JetPack %s" % (info.l4t, info.jetpack or "?"))
                            if info.l4t else "")),
        check_tensorrt(info, root), check_cuda_bindings(info),
    ]
    checks.extend(check_opencv(info, root))
    checks.extend([check_jtop(info, root), check_power_mode(info, table),
                   check_pending_restore(pending)])
    return [c for c in checks if c is not None]
