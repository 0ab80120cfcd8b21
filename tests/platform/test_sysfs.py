"""sysfs readers against fixture trees with the JetPack 4, 5 and 6 layouts."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgert.platform import sysfs
from tests.platform.conftest import TREES


@pytest.mark.parametrize("tree, rails, total", [
    # JP5 hwmon: NC channels and channel 7 ("sum of shunt voltages") skipped; no VDD_IN -> sum
    ("agx_orin_jp5", {"VDD_GPU_SOC": 5.072 * 1.744, "VDD_CPU_CV": 5.072 * 0.394,
                      "VIN_SYS_5V0": 5.064 * 0.893, "VDDQ_VDD2_1V8AO": 5.064 * 0.135}, None),
    ("agx_xavier_jp5", {"GPU": 19.144 * 0.152, "CPU": 19.144 * 0.304, "SOC": 19.144 * 0.456,
                        "CV": 0.0, "VDDRQ": 19.144 * 0.076, "SYS5V": 19.144 * 0.228}, None),
    # JP4 iio: in_power<N>_input in mW is used directly
    ("xavier_nx_jp4", {"VDD_IN": 4.472, "VDD_CPU_GPU_CV": 1.142, "VDD_SOC": 1.304}, 4.472),
    # JP6 hwmon with VDD_IN: the board input is the total
    ("orin_nano_jp6", {"VDD_IN": 5.032 * 1.496, "VDD_CPU_GPU_CV": 5.032 * 0.432,
                       "VDD_SOC": 5.032 * 0.440}, 5.032 * 1.496),
])
def test_power_rails(tree, rails, total):
    found = sysfs.find_rails(TREES / tree)
    watts = {r.name: sysfs.read_rail_watts(r) for r in found}
    assert watts.keys() == rails.keys()
    for name, w in rails.items():
        assert watts[name] == pytest.approx(w)
    expected_total = total if total is not None else sum(rails.values())
    assert sysfs.total_watts(watts) == pytest.approx(expected_total)


@pytest.mark.parametrize("tree, load, cur, maxf", [
    ("agx_orin_jp5", 0.873, 1300500000, 1300500000),
    ("agx_xavier_jp5", 0.912, 318750000, 1377000000),
    ("orin_nano_jp6", 0.990, 408000000, 624750000),
])
def test_igpu(tree, load, cur, maxf):
    dev = sysfs.find_igpu(TREES / tree)
    assert dev is not None and dev.name != "15340000.vic"
    g = sysfs.read_igpu(dev)
    assert (g.load, g.freq_hz, g.max_freq_hz) == (pytest.approx(load), cur, maxf)


def test_thermal_zones_skip_unfilled_and_find_passive_trips():
    zones = {z.name: z for z in sysfs.find_thermal_zones(TREES / "agx_orin_jp5")}
    assert sysfs.read_temp(zones["CPU-therm"]) == 45.5
    assert zones["CPU-therm"].throttle_c == 99.0
    assert sysfs.read_temp(zones["CV0-therm"]) is None        # -256 °C: not populated
    assert zones["tj-therm"].throttle_c is None               # active (fan) trips do not count


def test_cpu_ram_emc():
    root = TREES / "agx_orin_jp5"
    assert sysfs.read_cpu_freq(root) == 2201600 * 1000
    used, total = sysfs.read_meminfo(root)
    assert total == 31002592 * 1024 and used == (31002592 - 27525456) * 1024
    assert sysfs.read_emc(root) == (3199000000, 3199000000)
    assert sysfs.read_emc(TREES / "orin_nano_jp6") == (None, None)   # debugfs needs root


def test_cpu_load_from_two_stat_readings(tmp_path: Path):
    (tmp_path / "proc").mkdir()
    stat = tmp_path / "proc/stat"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    first = sysfs.read_cpu_times(tmp_path)
    stat.write_text("cpu  250 0 150 900 0 0 0 0 0 0\n")
    assert sysfs.cpu_load(first, sysfs.read_cpu_times(tmp_path)) == pytest.approx(200 / 300)
    assert sysfs.cpu_load(None, first) is None


def test_read_int_handles_units_and_missing(tmp_path: Path):
    (tmp_path / "a").write_text("32760 ma\n")
    assert sysfs.read_int(tmp_path / "a") == 32760
    assert sysfs.read_int(tmp_path / "missing") is None
