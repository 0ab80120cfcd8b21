"""Jetson detection on fixture trees laid out like real devices."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgert.platform import detect
from tests.platform.conftest import TREES


@pytest.mark.parametrize("tree, model, module, chip, cc, l4t, jetpack, dla, cuda", [
    ("agx_orin_jp5", "NVIDIA Jetson AGX Orin Developer Kit", "p3701-0000", "T234", "8.7",
     "35.3.1", "5.1.1", 2, "11.4.315"),
    ("agx_xavier_jp5", "Jetson-AGX", None, "T194", "7.2", "35.4.1", "5.1.2", 2, None),
    ("xavier_nx_jp4", "NVIDIA Jetson Xavier NX Developer Kit", "p3668-0000", "T194", "7.2",
     "32.7.1", "4.6.1", 2, None),
    ("orin_nano_jp6", "NVIDIA Jetson Orin Nano Developer Kit", "p3767-0003", "T234", "8.7",
     "36.4.3", "6.2", 0, "12.6.68"),
])
def test_detect_fixture_trees(tree, model, module, chip, cc, l4t, jetpack, dla, cuda):
    info = detect.detect(TREES / tree, query_tools=False)
    assert info.is_jetson
    assert (info.model, info.module) == (model, module)
    assert (info.chip, info.compute_capability) == (chip, cc)
    assert (info.l4t, info.jetpack, info.dla_cores, info.cuda) == (l4t, jetpack, dla, cuda)
    assert info.power_modes and info.power_modes[0].startswith("0=")
    json.dumps(info.to_dict())  # what `edgert info --json` prints


def test_not_a_jetson(tmp_path: Path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n")
    info = detect.detect(tmp_path, query_tools=False)
    assert not info.is_jetson and info.cpu == "AMD EPYC 7B13"
    assert info.chip is None and info.l4t is None


@pytest.mark.parametrize("text, expected", [
    ("# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, EABI: aarch64, DATE: x",
     "35.3.1"),
    ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64", "36.4.3"),
    ("# R32 (release), REVISION: 7, GCID: 1", "32.7.0"),
    ("garbage", None),
])
def test_parse_nv_tegra_release(text, expected):
    assert detect.parse_nv_tegra_release(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("nvidia-l4t-core\t35.3.1-20230319081403\n", "35.3.1"),
    ("nvidia-l4t-core\t36.4.3-20250107174145\n", "36.4.3"),
    ("dpkg-query: no packages found matching nvidia-l4t-core\n", None),
])
def test_parse_dpkg_l4t(text, expected):
    assert detect.parse_dpkg_l4t(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("35\n", 35), ("25", 25), ("jep106:036b:0023", 35), ("jep106:036b:0019\n", 25), ("x", None),
])
def test_parse_soc_id(text, expected):
    assert detect.parse_soc_id(text) == expected


@pytest.mark.parametrize("l4t, jetpack", [
    ("35.2.1", "5.1"), ("35.6.2", "5.1.5"), ("36.4.7", "6.2.1"), ("38.2.1", "7.0"),
    ("35.9.9", None), (None, None),
])
def test_jetpack_for(l4t, jetpack):
    assert detect.jetpack_for(l4t) == jetpack


def test_dla_cores_falls_back_to_the_module(tmp_path: Path):
    dt = tmp_path / "proc/device-tree"
    dt.mkdir(parents=True)
    (dt / "compatible").write_bytes(b"nvidia,p3768-0000+p3767-0001\x00nvidia,tegra234\x00")
    assert detect.dla_cores(tmp_path, None) == 1  # Orin NX 8GB: one DLA core


@pytest.mark.parametrize("info, expected", [
    ("  Video I/O:\n    GStreamer:                   YES (1.16.3)\n", True),
    ("  Video I/O:\n    GStreamer:                   NO\n", False),
    ("no such section", None),
])
def test_parse_gstreamer(info, expected):
    assert detect.parse_gstreamer(info) is expected


def test_parse_smi_gpus():
    rows = detect.parse_smi_gpus("NVIDIA H200, 570.124.06, 143771, 1980, 3201\n")
    assert rows == [{"index": 0, "name": "NVIDIA H200", "driver": "570.124.06",
                     "memory_mib": 143771.0, "max_graphics_mhz": 1980.0,
                     "max_memory_mhz": 3201.0, "source": "nvidia-smi"}]

