"""What edgert is running on: a Jetson (which module, L4T, JetPack) or not.

Each fact comes from one small function that takes the filesystem root, so the
tests point them at fixture trees copied from real devices.  Sources (see
TRT_REFERENCE.md section 9): the device-tree model and compatible strings,
``tegra_chip_id`` (or ``soc0/soc_id`` on newer kernels), ``/etc/nv_tegra_release``
(or ``dpkg-query nvidia-l4t-core``), the nvpmodel conf, and on a workstation
``/proc/cpuinfo`` and NVML / nvidia-smi.
"""
from __future__ import annotations

import logging
import platform as _pyplatform
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgert.platform import nvpmodel, tools

log = logging.getLogger("edgert.platform.detect")

# tegra_chip_id -> (name, family, CUDA compute capability)  [TRT_REFERENCE 9]
CHIPS: Dict[int, Tuple[str, str, str]] = {
    0x21: ("T210", "Nano/TX1", "5.3"),
    0x18: ("T186", "TX2", "6.2"),
    0x19: ("T194", "Xavier", "7.2"),
    0x23: ("T234", "Orin", "8.7"),
}

# L4T release -> JetPack  [TRT_REFERENCE 9, from jetson_stats NVIDIA_JETPACK]
L4T_TO_JETPACK: Dict[str, str] = {
    "32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3",
    "32.7.4": "4.6.4", "32.7.5": "4.6.5", "35.1.0": "5.0.2",
    "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3",
    "35.6.0": "5.1.4", "35.6.1": "5.1.5", "35.6.2": "5.1.5", "35.6.3": "5.1.5",
    "35.6.4": "5.1.6", "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2",
    "36.4.4": "6.2.1", "36.4.7": "6.2.1", "36.5.0": "6.2.2",
}

# Module part numbers (device-tree compatible) -> DLA cores, for when neither
# TensorRT nor the nvpmodel conf answers.  Orin NX 8GB has one DLA, Orin Nano none.
_DLA_BY_MODULE = (("p3767-0003", 0), ("p3767-0004", 0), ("p3767-0005", 0),
                  ("p3767-0001", 1), ("p3767-0000", 2), ("p3701", 2), ("p3668", 2),
                  ("p2888", 2), ("tegra194", 2))

_RELEASE_RE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")


@dataclass
class DeviceInfo:
    """Everything ``edgert info`` reports; ``to_dict`` is its JSON."""

    is_jetson: bool
    machine: str
    python: str
    model: Optional[str] = None
    module: Optional[str] = None
    chip: Optional[str] = None
    chip_family: Optional[str] = None
    compute_capability: Optional[str] = None
    l4t: Optional[str] = None
    jetpack: Optional[str] = None
    cuda: Optional[str] = None
    dla_cores: Optional[int] = None
    power_mode: Optional[Dict[str, Any]] = None
    power_modes: Optional[List[str]] = None
    cpu: Optional[str] = None
    gpus: List[Dict[str, Any]] = field(default_factory=list)
    versions: Dict[str, Optional[str]] = field(default_factory=dict)
    opencv_gstreamer: Optional[bool] = None
    opencv_path: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def read_model(root: Path) -> Optional[str]:
    """Device-tree model (``NVIDIA Jetson AGX Orin Developer Kit``), NUL stripped."""
    for rel in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        text = _read(root / rel)
        if text:
            return text.replace("\x00", "").strip() or None
    return None


def read_compatible(root: Path) -> List[str]:
    """Device-tree compatible strings (``nvidia,p3737-0000+p3701-0000``, ``nvidia,tegra234``)."""
    for rel in ("proc/device-tree/compatible", "sys/firmware/devicetree/base/compatible"):
        text = _read(root / rel)
        if text:
            return [s.strip() for s in text.split("\x00") if s.strip()]
    return []


def parse_soc_id(text: str) -> Optional[int]:
    """``35`` or, from the SMCCC soc driver, ``jep106:036b:0023`` -> 35."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    m = re.match(r"jep106:[0-9a-fA-F]+:([0-9a-fA-F]+)$", text)
    return int(m.group(1), 16) if m else None


def read_chip_id(root: Path) -> Optional[int]:
    """``tegra_chip_id`` (25 = T194, 35 = T234), else ``/sys/devices/soc0/soc_id``."""
    text = _read(root / "sys/module/tegra_fuse/parameters/tegra_chip_id")
    if text and text.strip().isdigit():
        return int(text.strip())
    text = _read(root / "sys/devices/soc0/soc_id")
    return parse_soc_id(text) if text else None


def parse_nv_tegra_release(text: str) -> Optional[str]:
    """``# R35 (release), REVISION: 3.1, ...`` -> ``35.3.1``."""
    m = _RELEASE_RE.search(text)
    if not m:
        return None
    rev = m.group(2)
    if rev.count(".") == 0:
        rev += ".0"
    return "%s.%s" % (m.group(1), rev)


def parse_dpkg_l4t(text: str) -> Optional[str]:
    """``nvidia-l4t-core\\t36.4.3-20250107174145`` -> ``36.4.3``."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("nvidia-l4t-core"):
            return parts[1].split("-")[0] or None
    return None


def read_l4t(root: Path) -> Optional[str]:
    """L4T release from ``/etc/nv_tegra_release``; dpkg-query on the live system."""
    text = _read(root / "etc/nv_tegra_release")
    if text:
        found = parse_nv_tegra_release(text)
        if found:
            return found
    if str(root) == "/":
        res = tools.run(["dpkg-query", "--show", "nvidia-l4t-core"], timeout=10)
        if res is not None and res.ok:
            return parse_dpkg_l4t(res.output)
    return None


def jetpack_for(l4t: Optional[str]) -> Optional[str]:
    """JetPack release of an L4T release (None when the table does not know it)."""
    if not l4t:
        return None
    if l4t in L4T_TO_JETPACK:
        return L4T_TO_JETPACK[l4t]
    major = l4t.split(".")[0]
    return {"38": "7.0", "39": "7.2"}.get(major)


def read_cuda_version(root: Path) -> Optional[str]:
    """CUDA toolkit version from ``/usr/local/cuda/version.json`` or ``version.txt``."""
    text = _read(root / "usr/local/cuda/version.json")
    if text:
        m = re.search(r'"cuda"\s*:\s*\{[^}]*"version"\s*:\s*"([\d.]+)"', text)
        if m:
            return m.group(1)
    text = _read(root / "usr/local/cuda/version.txt")
    if text:
        m = re.search(r"CUDA Version\s+([\d.]+)", text)
        if m:
            return m.group(1)
    return None


def is_jetson(root: Path) -> bool:
    """A Tegra device tree, a Tegra chip id, or an L4T release file."""
    if any(c.startswith("nvidia,tegra") for c in read_compatible(root)):
        return True
    if (root / "etc/nv_tegra_release").is_file():
        return True
    return read_chip_id(root) in CHIPS and (root / "sys/module/tegra_fuse").is_dir()


def module_part(compatible: List[str]) -> Optional[str]:
    """The module part number (``p3701-0000``) from the compatible strings."""
    for c in compatible:
        m = re.search(r"(p3701-\d{4}|p3767-\d{4}|p3668-\d{4}|p2888-\d{4}|p3668|p2888)", c)
        if m:
            return m.group(1)
    return None


def dla_cores(root: Path, table: Optional[nvpmodel.ModeTable]) -> Optional[int]:
    """DLA cores: TensorRT when importable, else the nvpmodel conf, else the module."""
    try:
        import tensorrt as trt  # type: ignore[import-not-found,unused-ignore]  # stubs/ may be absent

        builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
        return int(builder.num_DLA_cores)
    except Exception as exc:  # noqa: BLE001 - not installed, or no GPU: fall through
        log.debug("DLA count from TensorRT unavailable: %s", exc)
    if table is not None:
        n = table.dla_cores()
        if n is not None:
            return n
    joined = " ".join(read_compatible(root))
    for key, count in _DLA_BY_MODULE:
        if key in joined:
            return count
    return None


def query_power_mode(table: Optional[nvpmodel.ModeTable]) -> Optional[Dict[str, Any]]:
    """Current mode from ``nvpmodel -q`` (no root needed); None without nvpmodel."""
    res = tools.run(["nvpmodel", "-q"], timeout=15)
    if res is None or not res.ok:
        return None
    try:
        name, mode_id = nvpmodel.parse_query(res.output)
    except ValueError as exc:
        log.warning("%s", exc)
        return None
    if mode_id is None and table is not None:
        found = table.by_name(name)
        mode_id = found.id if found else None
    return {"id": mode_id, "name": name}


# Python packages whose versions ``edgert info`` reports: (label, import name, dists)
_PACKAGES = (
    ("tensorrt", "tensorrt", ("tensorrt", "tensorrt-cu12", "tensorrt-lean")),
    ("cuda-python", None, ("cuda-python", "cuda-bindings")),
    ("pycuda", None, ("pycuda",)),
    ("onnxruntime", None, ("onnxruntime", "onnxruntime-gpu")),
    ("numpy", None, ("numpy",)),
    ("jetson-stats", None, ("jetson-stats",)),
)


def _dist_version(names: Tuple[str, ...]) -> Optional[str]:
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def package_versions() -> Dict[str, Optional[str]]:
    """Installed versions (None when absent).

    JetPack's TensorRT bindings come from a Debian package that may carry no
    pip metadata, so ``tensorrt`` is imported when its metadata is missing.
    """
    out: Dict[str, Optional[str]] = {}
    for label, module, dists in _PACKAGES:
        version = _dist_version(dists)
        if version is None and module:
            try:
                version = str(__import__(module).__version__)
            except Exception:  # noqa: BLE001 - absent or broken install
                version = None
        out[label] = version
    return out


def parse_gstreamer(build_info: str) -> Optional[bool]:
    """Whether ``cv2.getBuildInformation()`` says ``GStreamer: YES``."""
    m = re.search(r"^\s*GStreamer:\s*(\S+)", build_info, re.MULTILINE)
    return None if m is None else m.group(1).upper() == "YES"


def opencv_info() -> Tuple[Optional[str], Optional[bool], Optional[str]]:
    """(version, built with GStreamer, file the module came from)."""
    try:
        import cv2
    except Exception:  # noqa: BLE001 - absent or broken install
        return None, None, None
    return (str(getattr(cv2, "__version__", "?")),
            parse_gstreamer(cv2.getBuildInformation()),
            getattr(cv2, "__file__", None))


def parse_cpuinfo(text: str) -> Optional[str]:
    """CPU model from /proc/cpuinfo (``model name`` on x86, ``Model``/``Hardware`` on ARM)."""
    for key in ("model name", "Model", "Hardware"):
        m = re.search(r"^%s\s*:\s*(.+)$" % re.escape(key), text, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return None


SMI_QUERY = "name,driver_version,memory.total,clocks.max.graphics,clocks.max.memory"


def parse_smi_gpus(text: str) -> List[Dict[str, Any]]:
    """``nvidia-smi --query-gpu=SMI_QUERY --format=csv,noheader,nounits`` rows."""
    gpus: List[Dict[str, Any]] = []
    for idx, line in enumerate(ln for ln in text.splitlines() if ln.strip()):
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 5:
            continue
        gpus.append({"index": idx, "name": cells[0], "driver": cells[1],
                     "memory_mib": _num(cells[2]), "max_graphics_mhz": _num(cells[3]),
                     "max_memory_mhz": _num(cells[4]), "source": "nvidia-smi"})
    return gpus


def _num(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def discrete_gpus() -> List[Dict[str, Any]]:
    """Discrete NVIDIA GPUs via NVML (pynvml / nvidia-ml-py), else nvidia-smi."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            return _nvml_gpus(pynvml)
        except Exception as exc:  # noqa: BLE001 - no driver: fall back to nvidia-smi
            log.debug("NVML unavailable: %s", exc)
    res = tools.run(["nvidia-smi", "--query-gpu=" + SMI_QUERY, "--format=csv,noheader,nounits"],
                    timeout=15)
    return parse_smi_gpus(res.output) if res is not None and res.ok else []


def _nvml_gpus(nv: Any) -> List[Dict[str, Any]]:
    nv.nvmlInit()
    try:
        gpus = []
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            name = nv.nvmlDeviceGetName(h)
            major, minor = nv.nvmlDeviceGetCudaComputeCapability(h)
            gpus.append({
                "index": i, "name": name.decode() if isinstance(name, bytes) else name,
                "memory_mib": nv.nvmlDeviceGetMemoryInfo(h).total / 2 ** 20,
                "compute_capability": "%d.%d" % (major, minor),
                "max_graphics_mhz": nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_GRAPHICS),
                "max_memory_mhz": nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_MEM),
                "source": "nvml",
            })
        return gpus
    finally:
        nv.nvmlShutdown()


def detect(root: Optional[Path] = None, query_tools: bool = True) -> DeviceInfo:
    """Describe this machine.  ``query_tools=False`` reads files only (no nvpmodel/nvidia-smi)."""
    root = root if root is not None else tools.sysroot()
    info = DeviceInfo(is_jetson=is_jetson(root), machine=_pyplatform.machine(),
                      python=sys.version.split()[0])
    info.versions = package_versions()
    cv_version, info.opencv_gstreamer, info.opencv_path = opencv_info()
    info.versions["opencv"] = cv_version
    info.cpu = parse_cpuinfo(_read(root / "proc/cpuinfo") or "")
    if info.is_jetson:
        _fill_jetson(info, root, query_tools)
    elif query_tools:
        info.gpus = discrete_gpus()
    return info


def _fill_jetson(info: DeviceInfo, root: Path, query_tools: bool) -> None:
    info.model = read_model(root)
    info.module = module_part(read_compatible(root))
    chip_id = read_chip_id(root)
    if chip_id in CHIPS:
        info.chip, info.chip_family, info.compute_capability = CHIPS[chip_id]
    info.l4t = read_l4t(root)
    info.jetpack = jetpack_for(info.l4t)
    info.cuda = read_cuda_version(root)
    table = nvpmodel.read_conf(root)
    info.dla_cores = dla_cores(root, table)
    if table is not None:
        info.power_modes = [m.label() for m in table.modes]
    if query_tools:
        info.power_mode = query_power_mode(table)
