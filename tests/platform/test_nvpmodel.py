"""Mode tables and current-mode parsing against NVIDIA's confs and nvpmodel output."""
from __future__ import annotations

import pytest

from edgert.platform import nvpmodel
from tests.platform.conftest import FIXTURES

NVP = FIXTURES / "nvpmodel"


def table(name: str) -> nvpmodel.ModeTable:
    return nvpmodel.parse_conf((NVP / name).read_text(), source=name)


@pytest.mark.parametrize("conf, modes, default, maxn, dla", [
    ("agx_xavier_t194.conf", ["MAXN", "MODE_10W", "MODE_15W", "MODE_30W_ALL", "MODE_30W_6CORE",
                              "MODE_30W_4CORE", "MODE_30W_2CORE", "MODE_15W_DESKTOP"], 7, 0, 2),
    ("xavier_nx_p3668.conf", ["MODE_15W_2CORE", "MODE_15W_4CORE", "MODE_15W_6CORE",
                              "MODE_10W_2CORE", "MODE_10W_4CORE", "MODE_10W_DESKTOP",
                              "MODE_20W_2CORE", "MODE_20W_4CORE", "MODE_20W_6CORE"], 5, None, 2),
    ("agx_orin_p3701_0000.conf", ["MAXN", "MODE_15W", "MODE_30W", "MODE_50W"], 2, 0, 2),
    ("orin_nano_p3767_0003.conf", ["15W", "7W"], 0, None, 0),
])
def test_mode_tables(conf, modes, default, maxn, dla):
    t = table(conf)
    assert [m.name for m in t.modes] == modes
    assert [m.id for m in t.modes] == list(range(len(modes)))
    assert t.default_id == default
    assert (t.max_mode.id if t.max_mode else None) == maxn
    assert t.dla_cores() == dla


@pytest.mark.parametrize("conf, mode_id, gpu_max, emc_max, cores", [
    ("agx_orin_p3701_0000.conf", 0, None, None, 12),      # MAXN: -1 = uncapped
    ("agx_orin_p3701_0000.conf", 1, 408000000, 2133000000, 4),
    ("agx_xavier_t194.conf", 1, 520000000, 1065600000, 2),
    ("xavier_nx_p3668.conf", 8, 1109250000, 1866000000, 6),
    ("orin_nano_p3767_0003.conf", 1, 408000000, 2133000000, 4),
    ("orin_nano_p3767_0003.conf", 0, None, None, 6),       # EMC MAX_FREQ 0 = uncapped
])
def test_mode_caps(conf, mode_id, gpu_max, emc_max, cores):
    m = table(conf).by_id(mode_id)
    assert (m.gpu_max_freq, m.emc_max_freq, m.cpu_online) == (gpu_max, emc_max, cores)


@pytest.mark.parametrize("conf, value, expected", [
    ("agx_orin_p3701_0000.conf", "MAXN", 0),
    ("agx_orin_p3701_0000.conf", "maxn", 0),
    ("agx_orin_p3701_0000.conf", 3, 3),
    ("agx_orin_p3701_0000.conf", "2", 2),
    ("xavier_nx_p3668.conf", "MODE_20W_6CORE", 8),
    ("orin_nano_p3767_0003.conf", "7W", 1),
])
def test_resolve(conf, value, expected):
    assert table(conf).resolve(value).id == expected


@pytest.mark.parametrize("conf, value", [
    ("xavier_nx_p3668.conf", "MAXN"),       # Xavier NX has no MAXN
    ("orin_nano_p3767_0003.conf", "MAXN"),  # neither has the (non-super) Orin Nano
    ("agx_orin_p3701_0000.conf", 7),
    ("agx_orin_p3701_0000.conf", True),
])
def test_resolve_rejects_with_the_valid_modes(conf, value):
    with pytest.raises(ValueError) as err:
        table(conf).resolve(value)
    assert "is not a power mode" in str(err.value)
    assert "0=%s" % table(conf).modes[0].name in str(err.value)


@pytest.mark.parametrize("fixture, name, mode_id", [
    ("query_agx_orin_maxn.txt", "MAXN", 0),
    ("query_agx_xavier_30w_all.txt", "MODE_30W_ALL", 3),
    ("query_xavier_nx_20w_6core.txt", "MODE_20W_6CORE", 8),
    ("query_orin_nano_7w.txt", "7W", 1),
])
def test_parse_query(fixture, name, mode_id):
    assert nvpmodel.parse_query((NVP / fixture).read_text()) == (name, mode_id)


def test_parse_query_without_id_line_and_garbage():
    assert nvpmodel.parse_query("NV Power Mode: MODE_15W\n") == ("MODE_15W", None)
    with pytest.raises(ValueError):
        nvpmodel.parse_query("nvpmodel: command failed\n")


def test_parse_verbose_output():
    t = nvpmodel.parse_verbose((NVP / "verbose_agx_xavier.txt").read_text())
    assert [m.label() for m in t.modes] == ["0=MAXN", "1=MODE_10W", "2=MODE_15W"]
    assert t.default_id == 2
    assert t.by_id(1).gpu_max_freq == 520000000
    assert t.by_id(0).gpu_max_freq is None  # 2147483647 = uncapped
    assert t.dla_cores() is None            # DLA_CORE without a core number: unknown


def test_conf_without_modes_is_an_error():
    with pytest.raises(ValueError, match="POWER_MODEL"):
        nvpmodel.parse_conf("< PARAM TYPE=CLOCK NAME=GPU >\n", source="x.conf")


@pytest.mark.parametrize("output, reboot", [
    (("NVPM WARN: Reboot required for changing to this power mode: 3\n"
      "NVPM WARN: DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:\n"), True),
    ("NVPM ERROR: I can't set this model!\nNVPM ERROR: Need a reboot\nNVPM WARNING: Write YES\n",
     True),  # jetson_stats' emulator wording
    ("", False),
    ("NVPM WARN: fan mode is not set!\n", False),
])
def test_needs_reboot(output, reboot):
    assert nvpmodel.needs_reboot(output) is reboot


@pytest.mark.parametrize("board", nvpmodel.builtin_boards())
def test_builtin_tables_match_the_fixture_confs(board):
    fixture = {"agx-orin": "agx_orin_p3701_0000.conf", "agx-xavier": "agx_xavier_t194.conf",
               "xavier-nx": "xavier_nx_p3668.conf", "orin-nano": "orin_nano_p3767_0003.conf"}[board]
    _, builtin = nvpmodel.builtin_table(board)
    conf = table(fixture)
    assert [m.label() for m in builtin.modes] == [m.label() for m in conf.modes]
    assert builtin.default_id == conf.default_id
