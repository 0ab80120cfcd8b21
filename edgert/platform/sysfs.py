"""Readers of the Jetson (and generic Linux) sysfs/procfs files telemetry needs.

Each reader takes the filesystem root, so tests point it at fixture trees laid
out like the real devices (TRT_REFERENCE.md section 8; jetson_stats
``jtop/core/{gpu,power,temperature}.py`` for where the files live):

  GPU       /sys/class/devfreq/<dev>/{cur,min,max}_freq (Hz); <dev>/device/load (per-mille)
            where <dev>/device/of_node/name is gv11b (Xavier) / ga10b (Orin) / gpu
  EMC       /sys/kernel/debug/bpmp/debug/clk/emc/{rate,max_rate} (root only)
  CPU       /proc/stat; /sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq (kHz)
  RAM       /proc/meminfo
  thermal   /sys/class/thermal/thermal_zone*/{type,temp (m°C),trip_point_N_{type,temp}}
  rails     INA3221 under /sys/bus/i2c/devices/*/ (``name`` says ina3221):
            JP5/JP6 hwmon   hwmon/hwmon*/in<N>_label, in<N>_input (mV), curr<N>_input (mA)
            JP4 iio         iio:device*/rail_name_<N>, in_power<N>_input (mW),
                            in_voltage<N>_input (mV), in_current<N>_input (mA)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

IGPU_NAMES = ("gv11b", "ga10b", "gp10b", "gb10b", "gpu")
# Zones a kernel registers but never fills report -256 °C (Orin) or less.
_INVALID_MILLI_C = -100000
_TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")


def read_int(path: Path) -> Optional[int]:
    """Integer content of a sysfs file (``32760 ma`` -> 32760); None if unreadable."""
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    m = re.match(r"-?\d+", text)
    return int(m.group(0)) if m else None


def read_text(path: Path) -> Optional[str]:
    try:
        return path.read_text().replace("\x00", "").strip()
    except (OSError, UnicodeDecodeError):
        return None


# ---- GPU ---------------------------------------------------------------------------
def find_igpu(root: Path) -> Optional[Path]:
    """The integrated GPU's devfreq folder, or None."""
    base = root / "sys/class/devfreq"
    try:
        entries = sorted(base.iterdir())
    except OSError:
        return None
    for entry in entries:
        node = entry / "device" / "of_node"
        name = read_text(node / "name")
        compatible = read_text(node / "compatible") or ""
        if name in IGPU_NAMES or any("nvidia,%s" % n in compatible for n in IGPU_NAMES[:4]):
            return entry
    return None


@dataclass
class GpuReading:
    load: Optional[float]
    """0..1 (sysfs gives per-mille)."""
    freq_hz: Optional[int]
    min_freq_hz: Optional[int]
    max_freq_hz: Optional[int]


def read_igpu(devfreq: Path) -> GpuReading:
    load = read_int(devfreq / "device" / "load")
    return GpuReading(load=None if load is None else load / 1000.0,
                      freq_hz=read_int(devfreq / "cur_freq"),
                      min_freq_hz=read_int(devfreq / "min_freq"),
                      max_freq_hz=read_int(devfreq / "max_freq"))


# ---- EMC, CPU, RAM ---------------------------------------------------------------------
def read_emc(root: Path) -> Tuple[Optional[int], Optional[int]]:
    """(rate, max_rate) in Hz from the BPMP debugfs (None without root)."""
    base = root / "sys/kernel/debug/bpmp/debug/clk/emc"
    return read_int(base / "rate"), read_int(base / "max_rate")


def read_cpu_times(root: Path) -> Optional[Tuple[int, int]]:
    """(busy, total) jiffies from the aggregate ``cpu`` line of /proc/stat."""
    text = read_text(root / "proc/stat")
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("cpu "):
            vals = [int(v) for v in line.split()[1:]]
            idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
            return sum(vals) - idle, sum(vals)
    return None


def cpu_load(prev: Optional[Tuple[int, int]], cur: Optional[Tuple[int, int]]) -> Optional[float]:
    if prev is None or cur is None or cur[1] <= prev[1]:
        return None
    return max(0.0, min(1.0, (cur[0] - prev[0]) / float(cur[1] - prev[1])))


def read_cpu_freq(root: Path) -> Optional[float]:
    """Mean current frequency of the online cores, Hz."""
    freqs = []
    for f in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
        v = read_int(f)
        if v:
            freqs.append(v * 1000)
    return sum(freqs) / len(freqs) if freqs else None


def read_meminfo(root: Path) -> Tuple[Optional[int], Optional[int]]:
    """(used, total) bytes; used = MemTotal - MemAvailable (the GPU shares it on Jetson)."""
    text = read_text(root / "proc/meminfo") or ""
    vals: Dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"(\w+):\s+(\d+)\s*kB", line)
        if m:
            vals[m.group(1)] = int(m.group(2)) * 1024
    total, avail = vals.get("MemTotal"), vals.get("MemAvailable")
    if total is None or avail is None:
        return None, total
    return total - avail, total


# ---- thermal ---------------------------------------------------------------------------
@dataclass
class ThermalZone:
    name: str
    temp_path: Path
    throttle_c: Optional[float]
    """Lowest passive/hot trip point: above it the kernel throttles."""


def find_thermal_zones(root: Path) -> List[ThermalZone]:
    zones = []
    for zdir in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        name = read_text(zdir / "type")
        if not name:
            continue
        trips = []
        for tfile in zdir.glob("trip_point_*_type"):
            if read_text(tfile) in ("passive", "hot"):
                t = read_int(zdir / tfile.name.replace("_type", "_temp"))
                if t is not None and t > 0:
                    trips.append(t / 1000.0)
        zones.append(ThermalZone(name, zdir / "temp", min(trips) if trips else None))
    return zones


def read_temp(zone: ThermalZone) -> Optional[float]:
    v = read_int(zone.temp_path)
    if v is None or v <= _INVALID_MILLI_C:
        return None
    return v / 1000.0


# ---- power rails -----------------------------------------------------------------------------
@dataclass
class Rail:
    name: str
    volt: Optional[Path]
    curr: Optional[Path]
    power: Optional[Path] = None


def find_rails(root: Path) -> List[Rail]:
    """Every INA3221 channel, named by its label; NC and 'sum of shunt' channels skipped."""
    rails: List[Rail] = []
    for dev in sorted((root / "sys/bus/i2c/devices").glob("*")):
        if "ina3221" not in (read_text(dev / "name") or ""):
            continue
        for hw in sorted(dev.glob("hwmon/hwmon*")):
            rails.extend(_hwmon_rails(hw))
        for iio in sorted(dev.glob("iio:device*")):
            rails.extend(_iio_rails(iio))
    return rails


def _hwmon_rails(hw: Path) -> List[Rail]:
    out = []
    for label in sorted(hw.glob("in*_label")):
        num = label.name[2:].split("_")[0]
        name = read_text(label) or ""
        if not num.isdigit() or num == "7" or not name or name.startswith("NC") \
                or "sum of shunt" in name:
            continue
        out.append(Rail(name, hw / ("in%s_input" % num), hw / ("curr%s_input" % num)))
    return out


def _iio_rails(iio: Path) -> List[Rail]:
    out = []
    for label in sorted(iio.glob("rail_name_*")):
        num = label.name[len("rail_name_"):]
        name = read_text(label) or ""
        if not name or name.startswith("NC"):
            continue
        out.append(Rail(name, iio / ("in_voltage%s_input" % num),
                        iio / ("in_current%s_input" % num), iio / ("in_power%s_input" % num)))
    return out


def read_rail_watts(rail: Rail) -> Optional[float]:
    if rail.power is not None:
        mw = read_int(rail.power)
        if mw is not None:
            return mw / 1000.0
    mv = read_int(rail.volt) if rail.volt else None
    ma = read_int(rail.curr) if rail.curr else None
    if mv is None or ma is None:
        return None
    return mv * ma / 1e6


def total_watts(rails: Dict[str, float]) -> Optional[float]:
    """Board input power: VDD_IN / POM_5V_IN when measured, else the sum of the rails."""
    for name in _TOTAL_RAILS:
        if name in rails:
            return rails[name]
    return sum(rails.values()) if rails else None
