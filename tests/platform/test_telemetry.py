"""Telemetry sampler: metrics, throttling episodes and the run summary."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest

from edgert.platform import telemetry
from edgert.runtime.metrics import Metrics
from tests.platform.conftest import TREES


def test_jetson_sample_becomes_metrics():
    m = Metrics()
    sampler = telemetry.Sampler(m, reader=telemetry.JetsonReader(TREES / "agx_orin_jp5"),
                                power_mode="MAXN")
    s = sampler.sample_once()
    snap = m.snapshot()
    assert snap.gauge("edgert_platform_gpu_load_ratio") == pytest.approx(0.873)
    assert snap.gauge("edgert_platform_gpu_freq_hz") == 1300500000
    assert snap.gauge("edgert_platform_emc_freq_hz") == 3199000000
    assert snap.gauge("edgert_platform_temperature_celsius", zone="GPU-therm") == 47.25
    assert snap.gauge("edgert_platform_temperature_celsius", zone="CV0-therm") is None
    assert snap.gauge("edgert_platform_power_watts", rail="VDD_GPU_SOC") == pytest.approx(8.845568)
    assert snap.gauge("edgert_platform_power_watts_total") == pytest.approx(s.total_w)
    assert snap.gauge("edgert_platform_ram_total_bytes") == 31002592 * 1024
    assert snap.gauge("edgert_platform_throttled") == 0.0
    summary = sampler.summary()
    assert summary["samples"] == 1 and summary["power_mode"] == "MAXN"
    assert summary["mean_watts"] == pytest.approx(s.total_w)
    assert summary["max_temp_zone"] == "tj-therm"


def test_thermal_trip_is_one_episode_logged_once(tmp_path: Path, caplog):
    root = tmp_path / "nano"
    shutil.copytree(str(TREES / "orin_nano_jp6"), str(root))
    m = Metrics()
    sampler = telemetry.Sampler(m, reader=telemetry.JetsonReader(root))
    with caplog.at_level(logging.INFO, logger="edgert.platform.telemetry"):
        for _ in range(3):
            sampler.sample_once()
        (root / "sys/class/thermal/thermal_zone1/temp").write_text("60000\n")   # cooled down
        (root / "sys/class/devfreq/17000000.gpu/cur_freq").write_text("624750000\n")
        sampler.sample_once()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["throttling: thermal trip: gpu-thermal 101.5°C >= 99.0°C"]
    assert any("throttling ended" in r.getMessage() for r in caplog.records)
    assert sampler.summary()["throttle_episodes"] == 1
    assert m.snapshot().gauge("edgert_platform_throttled") == 0.0


@pytest.mark.parametrize("load, freq, cap, expected_cap, throttled", [
    (0.9, 400e6, 624.75e6, None, True),       # busy and far below the mode's cap
    (0.2, 400e6, 624.75e6, None, False),      # idle: DVFS is supposed to lower clocks
    (0.9, 600e6, 624.75e6, None, False),      # within 10 %
    (0.9, 600e6, 600e6, 1300.5e6, True),      # jetson_clocks locked 1300 MHz, GPU lower
    (None, 400e6, 624.75e6, None, False),     # load unknown
])
def test_frequency_throttle_rule(load, freq, cap, expected_cap, throttled):
    det = telemetry.ThrottleDetector(expected_gpu_freq_hz=expected_cap)
    s = telemetry.Sample(t=0.0, gpu_load=load, gpu_freq_hz=freq, gpu_max_freq_hz=cap)
    assert (det.reason(s) is not None) is throttled


def test_nvidia_smi_sample_parsing():
    v = telemetry.parse_smi_sample("97, 1755, 1980, 612.40, 71, 0x0000000000000020\n")
    s = telemetry.Sample(t=0.0)
    telemetry.apply_smi_sample(s, v)
    assert (s.gpu_load, s.gpu_freq_hz, s.gpu_max_freq_hz) == (0.97, 1755e6, 1980e6)
    assert s.total_w == pytest.approx(612.4) and s.temps_c == {"GPU": 71.0}
    assert s.slowdown == "GPU clocks_throttle_reasons 0x20"          # SW thermal slowdown
    idle = telemetry.Sample(t=0.0)
    telemetry.apply_smi_sample(idle, telemetry.parse_smi_sample("0, 345, 1980, [N/A], 30, 0x1"))
    assert idle.slowdown is None and idle.total_w is None


def test_host_reader_and_thread_on_this_machine():
    """Off a Jetson: CPU/RAM via psutil (or /proc); the thread samples until stopped."""
    m = Metrics()
    reader = telemetry.HostReader(Path("/"), gpu_index=None)
    deadline = time.monotonic() + 60
    with telemetry.Sampler(m, period_s=0.05, reader=reader) as sampler:
        while sampler.summary()["samples"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert sampler.summary()["samples"] >= 2
    snap = m.snapshot()
    assert snap.gauge("edgert_platform_ram_total_bytes") > 0
    assert 0.0 <= snap.gauge("edgert_platform_cpu_load_ratio") <= 1.0
    assert sampler.summary()["mean_watts"] is None


@pytest.mark.parametrize("fps, watts, expected", [
    (120.0, 30.0, 4.0), (120.0, None, None), (120.0, 0.0, None), (None, 10.0, None),
])
def test_fps_per_watt(fps, watts, expected):
    assert telemetry.fps_per_watt(fps, watts) == expected


def test_period_must_be_positive():
    with pytest.raises(ValueError, match="period_s"):
        telemetry.Sampler(Metrics(), period_s=0, reader=telemetry.HostReader(Path("/"), None))


@pytest.mark.parametrize("summary, fps, expected", [
    ({"power_mode": "MAXN", "mean_watts": 20.0, "peak_watts": 25.0, "mean_gpu_load": 0.871,
      "max_temp_c": 61.5, "max_temp_zone": "GPU-therm", "throttle_episodes": 0}, 100.0,
     "platform: power mode MAXN, 20.0 W mean (25.0 W peak), 5.00 fps/W, GPU 87 %, "
     "max 61.5 °C (GPU-therm)"),
    ({"power_mode": None, "mean_watts": None, "mean_gpu_load": None, "max_temp_c": None,
      "throttle_episodes": 2}, 100.0,
     "platform: power draw not readable here, throttled 2 time(s)"),
])
def test_format_summary(summary, fps, expected):
    assert telemetry.format_summary(summary, fps) == expected


def test_host_reader_reads_linux_thermal_zones():
    """A workstation/container exposing /sys/class/thermal gets temperatures too."""
    s = telemetry.HostReader(TREES / "agx_xavier_jp5", gpu_index=None).read()
    assert s.temps_c == {"CPU-therm": 41.0, "GPU-therm": 40.5, "PMIC-Die": 100.0}
    assert s.ram_total_bytes and s.cpu_freq_hz == 2265600 * 1000
