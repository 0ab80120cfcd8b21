"""Platform telemetry: a sampler thread that turns sysfs/NVML readings into metrics.

On a Jetson it reads the files listed in ``edgert.platform.sysfs`` (GPU load and
frequency, EMC, CPU, RAM, thermal zones, INA3221 power rails); on a discrete
GPU, NVML (pynvml) or ``nvidia-smi``; elsewhere CPU/RAM from psutil or /proc.
Every reading becomes an ``edgert_platform_*`` gauge in the run's
:class:`~edgert.runtime.metrics.Metrics`, and :meth:`Sampler.summary` gives
``edgert run`` / ``edgert bench`` mean watts and fps per watt.

Throttling (GPU below its cap while busy, a thermal zone past its passive trip,
or NVML's slowdown reasons) is logged once per episode, not once per sample.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgert.platform import sysfs, tools
from edgert.runtime.metrics import Metrics

log = logging.getLogger("edgert.platform.telemetry")

BUSY_LOAD = 0.5
"""GPU load above which a frequency below the cap counts as throttling."""
FREQ_SLACK = 0.9
# NVML clocks_throttle_reasons bits that mean "slowed down" (not idle/app clocks):
# SW power cap, HW slowdown, SW thermal, HW thermal, HW power brake.
_NVML_SLOWDOWN = 0x4 | 0x8 | 0x20 | 0x40 | 0x80


@dataclass
class Sample:
    """One reading; None where the platform does not expose the value."""

    t: float
    gpu_load: Optional[float] = None
    gpu_freq_hz: Optional[float] = None
    gpu_max_freq_hz: Optional[float] = None
    emc_freq_hz: Optional[float] = None
    cpu_load: Optional[float] = None
    cpu_freq_hz: Optional[float] = None
    ram_used_bytes: Optional[float] = None
    ram_total_bytes: Optional[float] = None
    temps_c: Dict[str, float] = field(default_factory=dict)
    rails_w: Dict[str, float] = field(default_factory=dict)
    total_w: Optional[float] = None
    thermal_tripped: List[str] = field(default_factory=list)
    slowdown: Optional[str] = None
    """A reason the GPU reports for running slow (NVML), when it says one."""


class JetsonReader:
    """Reads a Jetson's sysfs (paths found once, read every sample)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.igpu = sysfs.find_igpu(root)
        self.zones = sysfs.find_thermal_zones(root)
        self.rails = sysfs.find_rails(root)
        self._cpu_prev = sysfs.read_cpu_times(root)

    def read(self) -> Sample:
        s = Sample(t=time.monotonic())
        if self.igpu is not None:
            g = sysfs.read_igpu(self.igpu)
            s.gpu_load, s.gpu_freq_hz, s.gpu_max_freq_hz = g.load, _f(g.freq_hz), _f(g.max_freq_hz)
        s.emc_freq_hz = _f(sysfs.read_emc(self.root)[0])
        cur = sysfs.read_cpu_times(self.root)
        s.cpu_load, self._cpu_prev = sysfs.cpu_load(self._cpu_prev, cur), cur
        s.cpu_freq_hz = sysfs.read_cpu_freq(self.root)
        used, total = sysfs.read_meminfo(self.root)
        s.ram_used_bytes, s.ram_total_bytes = _f(used), _f(total)
        read_zones(self.zones, s)
        for rail in self.rails:
            w = sysfs.read_rail_watts(rail)
            if w is not None:
                s.rails_w[rail.name] = w
        s.total_w = sysfs.total_watts(s.rails_w)
        return s


def read_zones(zones: List[sysfs.ThermalZone], s: Sample) -> None:
    """Temperatures into ``s``, noting zones at or past their passive trip point."""
    for zone in zones:
        t = sysfs.read_temp(zone)
        if t is None:
            continue
        s.temps_c[zone.name] = t
        if zone.throttle_c is not None and t >= zone.throttle_c:
            s.thermal_tripped.append("%s %.1f°C >= %.1f°C" % (zone.name, t, zone.throttle_c))


class HostReader:
    """CPU/RAM of any machine (psutil when installed, else /proc), plus a discrete GPU."""

    def __init__(self, root: Path, gpu_index: Optional[int] = 0) -> None:
        self.root = root
        self._cpu_prev = sysfs.read_cpu_times(root)
        self.zones = sysfs.find_thermal_zones(root)   # Linux thermal zones, where exposed
        self.gpu = NvidiaSmiGpu(gpu_index) if gpu_index is not None else None
        try:
            import psutil  # type: ignore[import-untyped]

            self._psutil: Any = psutil
            psutil.cpu_percent(None)
        except ImportError:
            self._psutil = None

    def read(self) -> Sample:
        s = Sample(t=time.monotonic())
        if self._psutil is not None:
            s.cpu_load = self._psutil.cpu_percent(None) / 100.0
            vm = self._psutil.virtual_memory()
            s.ram_used_bytes, s.ram_total_bytes = float(vm.total - vm.available), float(vm.total)
        else:
            cur = sysfs.read_cpu_times(self.root)
            s.cpu_load, self._cpu_prev = sysfs.cpu_load(self._cpu_prev, cur), cur
            used, total = sysfs.read_meminfo(self.root)
            s.ram_used_bytes, s.ram_total_bytes = _f(used), _f(total)
        s.cpu_freq_hz = sysfs.read_cpu_freq(self.root)
        read_zones(self.zones, s)
        if self.gpu is not None and not self.gpu.read_into(s):
            self.gpu = None  # no GPU / driver: stop asking
        return s


SMI_SAMPLE = ("utilization.gpu,clocks.gr,clocks.max.gr,power.draw,temperature.gpu,"
              "clocks_throttle_reasons.active")


def parse_smi_sample(line: str) -> Dict[str, Optional[float]]:
    """One ``nvidia-smi --query-gpu=SMI_SAMPLE --format=csv,noheader,nounits`` row."""
    keys = ("load_pct", "freq_mhz", "max_freq_mhz", "watts", "temp_c", "reasons")
    cells = [c.strip() for c in line.strip().split(",")]
    out: Dict[str, Optional[float]] = {}
    for key, cell in zip(keys, cells):
        try:
            out[key] = float(int(cell, 16)) if key == "reasons" else float(cell)
        except ValueError:
            out[key] = None
    return out


def apply_smi_sample(s: Sample, v: Dict[str, Optional[float]]) -> None:
    load = v.get("load_pct")
    s.gpu_load = None if load is None else load / 100.0
    s.gpu_freq_hz = _mhz(v.get("freq_mhz"))
    s.gpu_max_freq_hz = _mhz(v.get("max_freq_mhz"))
    if v.get("watts") is not None:
        s.rails_w["GPU"] = float(v["watts"])  # type: ignore[arg-type]
        s.total_w = s.rails_w["GPU"]
    if v.get("temp_c") is not None:
        s.temps_c["GPU"] = float(v["temp_c"])  # type: ignore[arg-type]
    reasons = int(v.get("reasons") or 0)
    if reasons & _NVML_SLOWDOWN:
        s.slowdown = "GPU clocks_throttle_reasons 0x%x" % reasons


class NvidiaSmiGpu:
    """A discrete GPU read through NVML when importable, else one nvidia-smi call."""

    def __init__(self, index: int) -> None:
        self.index = index
        self._nvml: Any = None
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:  # noqa: BLE001 - not installed or no driver: use nvidia-smi
            self._nvml = None

    def read_into(self, s: Sample) -> bool:
        if self._nvml is not None:
            return self._read_nvml(s)
        res = tools.run(["nvidia-smi", "-i", str(self.index), "--query-gpu=" + SMI_SAMPLE,
                         "--format=csv,noheader,nounits"], timeout=10)
        if res is None or not res.ok or not res.output.strip():
            return False
        apply_smi_sample(s, parse_smi_sample(res.output.splitlines()[0]))
        return True

    def _read_nvml(self, s: Sample) -> bool:
        nv, h = self._nvml, self._handle
        try:
            v: Dict[str, Optional[float]] = {
                "load_pct": float(nv.nvmlDeviceGetUtilizationRates(h).gpu),
                "freq_mhz": float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_GRAPHICS)),
                "max_freq_mhz": float(nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_GRAPHICS)),
                "watts": nv.nvmlDeviceGetPowerUsage(h) / 1000.0,
                "temp_c": float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
                "reasons": float(nv.nvmlDeviceGetCurrentClocksThrottleReasons(h)),
            }
        except Exception as exc:  # noqa: BLE001 - a vanished GPU ends GPU telemetry
            log.warning("NVML read failed: %s", exc)
            return False
        apply_smi_sample(s, v)
        return True


class ThrottleDetector:
    """Turns samples into throttling episodes: one log line at the start and end."""

    def __init__(self, expected_gpu_freq_hz: Optional[float] = None) -> None:
        self.expected = expected_gpu_freq_hz
        self.active: Optional[str] = None
        self.episodes = 0
        self._since = 0.0

    def reason(self, s: Sample) -> Optional[str]:
        if s.thermal_tripped:
            return "thermal trip: " + ", ".join(s.thermal_tripped)
        if s.slowdown:
            return s.slowdown
        cap = max(filter(None, (s.gpu_max_freq_hz, self.expected)), default=None)
        if cap and s.gpu_load is not None and s.gpu_freq_hz is not None \
                and s.gpu_load >= BUSY_LOAD and s.gpu_freq_hz < FREQ_SLACK * cap:
            return "GPU at %.0f MHz under %.0f%% load, below its %.0f MHz cap" % (
                s.gpu_freq_hz / 1e6, s.gpu_load * 100, cap / 1e6)
        return None

    def update(self, s: Sample) -> Optional[str]:
        """Returns the reason when a new episode starts."""
        why = self.reason(s)
        if why and self.active is None:
            self.active, self._since = why, s.t
            self.episodes += 1
            log.warning("throttling: %s", why)
            return why
        if why is None and self.active is not None:
            log.info("throttling ended after %.0f s", s.t - self._since)
            self.active = None
        return None


def _f(v: Optional[float]) -> Optional[float]:
    return None if v is None else float(v)


def _mhz(v: Optional[float]) -> Optional[float]:
    return None if v is None else v * 1e6


def make_reader(root: Optional[Path] = None, gpu_index: Optional[int] = 0) -> Any:
    from edgert.platform.detect import is_jetson

    root = root if root is not None else tools.sysroot()
    return JetsonReader(root) if is_jetson(root) else HostReader(root, gpu_index)


class Sampler:
    """Background thread sampling every ``period_s`` into ``metrics``.

    ``with Sampler(metrics) as s: ...`` then ``s.summary()``.
    """

    def __init__(self, metrics: Metrics, period_s: float = 1.0, reader: Any = None,
                 power_mode: Optional[str] = None,
                 expected_gpu_freq_hz: Optional[float] = None) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be > 0, got %r" % period_s)
        self.metrics = metrics
        self.period_s = period_s
        self.reader = reader if reader is not None else make_reader()
        self.power_mode = power_mode
        self.throttle = ThrottleDetector(expected_gpu_freq_hz)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._acc = _Accumulator()
        self._lock = threading.Lock()

    def start(self) -> "Sampler":
        self._thread = threading.Thread(target=self._loop, name="edgert-telemetry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * self.period_s + 5)
            self._thread = None

    def __enter__(self) -> "Sampler":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception:  # noqa: BLE001 - telemetry must never stop a pipeline
                log.exception("telemetry sample failed")
            self._stop.wait(self.period_s)

    def sample_once(self) -> Sample:
        """Read, publish and account one sample (the thread calls this)."""
        s = self.reader.read()
        self.throttle.update(s)
        publish(self.metrics, s, throttled=self.throttle.active is not None,
                episodes=self.throttle.episodes)
        with self._lock:
            self._acc.add(s)
        return s

    def summary(self) -> Dict[str, Any]:
        with self._lock:
            out = self._acc.result()
        out["power_mode"] = self.power_mode
        out["throttle_episodes"] = self.throttle.episodes
        return out


class _Accumulator:
    def __init__(self) -> None:
        self.n = 0
        self.watts: List[float] = []
        self.gpu_loads: List[float] = []
        self.max_temp: Optional[Tuple[str, float]] = None

    def add(self, s: Sample) -> None:
        self.n += 1
        if s.total_w is not None:
            self.watts.append(s.total_w)
        if s.gpu_load is not None:
            self.gpu_loads.append(s.gpu_load)
        for name, t in s.temps_c.items():
            if self.max_temp is None or t > self.max_temp[1]:
                self.max_temp = (name, t)

    def result(self) -> Dict[str, Any]:
        return {
            "samples": self.n,
            "mean_watts": _mean(self.watts),
            "peak_watts": max(self.watts) if self.watts else None,
            "mean_gpu_load": _mean(self.gpu_loads),
            "max_temp_c": self.max_temp[1] if self.max_temp else None,
            "max_temp_zone": self.max_temp[0] if self.max_temp else None,
        }


def _mean(vals: List[float]) -> Optional[float]:
    return sum(vals) / len(vals) if vals else None


def fps_per_watt(fps: Optional[float], watts: Optional[float]) -> Optional[float]:
    """Frames per second per watt; None when the power draw is not readable."""
    if fps is None or not watts or watts <= 0:
        return None
    return fps / watts


def publish(metrics: Metrics, s: Sample, throttled: bool = False, episodes: int = 0) -> None:
    """Write one sample as ``edgert_platform_*`` gauges (absent values are skipped)."""
    scalar = (("gpu_load_ratio", s.gpu_load), ("gpu_freq_hz", s.gpu_freq_hz),
              ("gpu_max_freq_hz", s.gpu_max_freq_hz), ("emc_freq_hz", s.emc_freq_hz),
              ("cpu_load_ratio", s.cpu_load), ("cpu_freq_hz", s.cpu_freq_hz),
              ("ram_used_bytes", s.ram_used_bytes), ("ram_total_bytes", s.ram_total_bytes),
              ("power_watts_total", s.total_w))
    for name, value in scalar:
        if value is not None:
            metrics.set("edgert_platform_" + name, value)
    for zone, t in s.temps_c.items():
        metrics.set("edgert_platform_temperature_celsius", t, zone=zone)
    for rail, w in s.rails_w.items():
        metrics.set("edgert_platform_power_watts", w, rail=rail)
    metrics.set("edgert_platform_throttled", 1.0 if throttled else 0.0)
    metrics.set("edgert_platform_throttle_episodes", float(episodes))


def format_summary(summary: Dict[str, Any], fps: Optional[float] = None) -> str:
    """One line for the end of ``edgert run`` / ``edgert bench``.

    ``power: MAXN, 23.4 W mean (31.0 W peak), 5.13 fps/W, GPU 87 %, max 61.5 °C (GPU-therm)``
    """
    parts = ["power mode %s" % summary["power_mode"]] if summary.get("power_mode") else []
    watts = summary.get("mean_watts")
    if watts is not None:
        parts.append("%.1f W mean (%.1f W peak)" % (watts, summary.get("peak_watts") or watts))
        per_watt = fps_per_watt(fps, watts)
        if per_watt is not None:
            parts.append("%.2f fps/W" % per_watt)
    else:
        parts.append("power draw not readable here")
    if summary.get("mean_gpu_load") is not None:
        parts.append("GPU %.0f %%" % (summary["mean_gpu_load"] * 100))
    if summary.get("max_temp_c") is not None:
        parts.append("max %.1f °C (%s)" % (summary["max_temp_c"], summary.get("max_temp_zone")))
    if summary.get("throttle_episodes"):
        parts.append("throttled %d time(s)" % summary["throttle_episodes"])
    return "platform: " + ", ".join(parts)
