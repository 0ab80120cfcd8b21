"""nvpmodel power-mode tables: parsing the board's conf and ``nvpmodel`` output.

A Jetson's power modes are defined in ``/etc/nvpmodel.conf`` (a link to the
board's ``/etc/nvpmodel/nvpmodel_*.conf``) as ``< POWER_MODEL ID=n NAME=x >``
blocks, with ``< PM_CONFIG DEFAULT=n >`` naming the default.  The ids differ
per module (MAXN is 0 on AGX Xavier and AGX Orin; Xavier NX and Orin Nano have
no MAXN at all), so a mode asked for by name is always resolved against the
table of the board edgert runs on, never against a hard-coded list.

Every function here parses text; nothing runs a command, so all of it is
tested against real conf files and command outputs (tests/platform/fixtures).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

# ARG_VAL -1 means INT_MAX in nvpmodel confs ("no cap").
_NO_CAP = -1
_MODEL_RE = re.compile(r"^<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>")
_PARAM_RE = re.compile(r"^<\s*PARAM\s+TYPE=(\S+)\s+NAME=(\S+?)\s*>")
_DEFAULT_RE = re.compile(r"^<\s*PM_CONFIG\s+DEFAULT=(\d+)\s*>")
_VERB_MODEL_RE = re.compile(r"POWER_MODEL:\s*ID=(\d+)\s+NAME=(\S+)")
_VERB_DEFAULT_RE = re.compile(r"PM_CONFIG:\s*DEFAULT=\S*?\((\d+)\)")
_QUERY_RE = re.compile(r"NV Power Mode:\s*(\S+)")
_DLA_CORE_RE = re.compile(r"^DLA(\d+)_CORE$")


@dataclass(frozen=True)
class PowerMode:
    """One ``POWER_MODEL`` block: id, name and the caps edgert cares about."""

    id: int
    name: str
    gpu_max_freq: Optional[int] = None
    """GPU MAX_FREQ in Hz (None: not capped, i.e. the GPU's own maximum)."""
    emc_max_freq: Optional[int] = None
    """EMC MAX_FREQ in Hz (None or 0: not capped)."""
    cpu_online: Optional[int] = None
    """How many CPU cores the mode keeps online."""

    def label(self) -> str:
        return "%d=%s" % (self.id, self.name)


@dataclass
class ModeTable:
    """A board's power modes, as parsed from its nvpmodel conf."""

    modes: List[PowerMode]
    default_id: Optional[int] = None
    params: List[str] = field(default_factory=list)
    """Names of the ``PARAM`` sections (e.g. ``DLA0_CORE``); used to count DLA cores."""
    source: str = ""

    def by_id(self, mode_id: int) -> Optional[PowerMode]:
        for m in self.modes:
            if m.id == mode_id:
                return m
        return None

    def by_name(self, name: str) -> Optional[PowerMode]:
        for m in self.modes:
            if m.name.upper() == name.strip().upper():
                return m
        return None

    def resolve(self, value: Union[int, str]) -> PowerMode:
        """The mode for an id (``0``, ``"0"``) or a name (``MAXN``, case-insensitive).

        Raises ValueError with a message that lists the valid modes, so the
        caller can wrap it in a ConfigError or UsageError.
        """
        mode: Optional[PowerMode] = None
        if isinstance(value, int) and not isinstance(value, bool):
            mode = self.by_id(value)
        elif isinstance(value, str):
            text = value.strip()
            mode = self.by_id(int(text)) if text.isdigit() else self.by_name(text)
        if mode is None:
            raise ValueError("'%s' is not a power mode of this board; modes: %s"
                             % (value, self.describe()))
        return mode

    def describe(self) -> str:
        return ", ".join(m.label() for m in self.modes)

    @property
    def max_mode(self) -> Optional[PowerMode]:
        """The mode named MAXN (or MAXN_SUPER), if the board has one."""
        for m in self.modes:
            if m.name.upper().startswith("MAXN"):
                return m
        return None

    def dla_cores(self) -> Optional[int]:
        """DLA cores the conf caps (``DLA0_CORE``, ``DLA1_CORE``); None if unknown.

        Orin Nano confs have no DLA section at all, which is the point: it has
        no DLA.  Older Xavier confs with only ``NAFLL_DLA`` give no count.
        """
        cores = {int(m.group(1)) for p in self.params for m in [_DLA_CORE_RE.match(p)] if m}
        if cores:
            return len(cores)
        if any("DLA" in p for p in self.params):
            return None
        return 0 if self.params else None


def _int_or_cap(text: str) -> Optional[int]:
    try:
        v = int(text)
    except ValueError:
        return None
    return None if v in (_NO_CAP, 2147483647) else v


def parse_conf(text: str, source: str = "") -> ModeTable:
    """Parse an ``nvpmodel.conf``.  Raises ValueError when it defines no mode."""
    modes: List[PowerMode] = []
    params: List[str] = []
    default_id: Optional[int] = None
    current: Optional[Dict[str, object]] = None

    def close() -> None:
        if current is not None:
            modes.append(PowerMode(**current))  # type: ignore[arg-type]

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _MODEL_RE.match(line)
        if m:
            close()
            current = {"id": int(m.group(1)), "name": m.group(2), "cpu_online": 0}
            continue
        p = _PARAM_RE.match(line)
        if p:
            close()
            current = None
            params.append(p.group(2))
            continue
        d = _DEFAULT_RE.match(line)
        if d:
            close()
            current = None
            default_id = int(d.group(1))
            continue
        if current is not None:
            _apply_setting(current, line.split())
    close()
    if not modes:
        raise ValueError("no '< POWER_MODEL ID=.. NAME=.. >' section in %s"
                         % (source or "the conf"))
    return ModeTable(modes=modes, default_id=default_id, params=params, source=source)


def _apply_setting(mode: Dict[str, object], parts: List[str]) -> None:
    if len(parts) < 3:
        return
    param, arg, val = parts[0], parts[1], parts[2]
    if param == "GPU" and arg == "MAX_FREQ":
        mode["gpu_max_freq"] = _int_or_cap(val)
    elif param == "EMC" and arg == "MAX_FREQ":
        cap = _int_or_cap(val)
        mode["emc_max_freq"] = cap if cap else None
    elif param == "CPU_ONLINE" and val == "1":
        mode["cpu_online"] = int(str(mode.get("cpu_online") or 0)) + 1


def parse_verbose(text: str) -> ModeTable:
    """Parse ``nvpmodel -p --verbose`` output (``NVPM VERB: POWER_MODEL: ID=0 NAME=MAXN``)."""
    modes: List[PowerMode] = []
    params: List[str] = []
    current: Optional[Dict[str, object]] = None
    default_id: Optional[int] = None
    for raw in text.splitlines():
        line = raw.split("NVPM VERB:", 1)[-1].strip()
        m = _VERB_MODEL_RE.search(line)
        if m:
            if current is not None:
                modes.append(PowerMode(**current))  # type: ignore[arg-type]
            current = {"id": int(m.group(1)), "name": m.group(2), "cpu_online": 0}
            continue
        d = _VERB_DEFAULT_RE.search(line)
        if d:
            default_id = int(d.group(1))
            continue
        p = re.match(r"PARAM TYPE=\S+ NAME=(\S+)", line)
        if p:
            params.append(p.group(1))
            continue
        if current is not None:
            _apply_setting(current, line.split())
    if current is not None:
        modes.append(PowerMode(**current))  # type: ignore[arg-type]
    if not modes:
        raise ValueError("no POWER_MODEL lines in nvpmodel output")
    return ModeTable(modes=modes, default_id=default_id, params=params,
                     source="nvpmodel -p --verbose")


def parse_query(text: str) -> Tuple[str, Optional[int]]:
    """Parse ``nvpmodel -q``: ``NV Power Mode: MAXN`` then the id on the next line.

    Warning lines (``NVPM WARN: fan mode is not set!``) may come first.
    Raises ValueError when the output has no ``NV Power Mode:`` line.
    """
    lines = [ln.strip() for ln in text.splitlines()]
    for i, line in enumerate(lines):
        m = _QUERY_RE.search(line)
        if m:
            mode_id: Optional[int] = None
            for nxt in lines[i + 1:]:
                if nxt.isdigit():
                    mode_id = int(nxt)
                    break
                if nxt:
                    break
            return m.group(1), mode_id
    raise ValueError("unexpected 'nvpmodel -q' output: %r" % text.strip()[:200])


def needs_reboot(output: str) -> bool:
    """Whether ``nvpmodel -m`` refused to switch without a reboot.

    nvpmodel prints a reboot prompt (and waits for YES on stdin) when a mode
    changes something that only applies at boot; edgert answers no and reports it.
    """
    low = output.lower()
    return "reboot" in low and ("yes" in low or "required" in low or "need" in low)


def read_conf(root: Path) -> Optional[ModeTable]:
    """The table of the board under ``root`` (``/etc/nvpmodel.conf``), or None."""
    path = root / "etc" / "nvpmodel.conf"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    try:
        return parse_conf(text, source=str(path))
    except ValueError:
        return None


# Built-in tables, used only to show what would run on a board edgert is not on
# (``edgert power set --dry-run`` on a workstation).  Copied from NVIDIA's conf
# files as published in LineageOS/android_device_nvidia_galen (t194, t194_p3668)
# and LineageOS/android_device_nvidia_concord (p3701_0000, p3767_0003).
_BUILTIN: Dict[str, Tuple[str, Tuple[str, ...], int]] = {
    "agx-orin": ("Jetson AGX Orin (p3701-0000)",
                 ("MAXN", "MODE_15W", "MODE_30W", "MODE_50W"), 2),
    "agx-xavier": ("Jetson AGX Xavier (t194)",
                   ("MAXN", "MODE_10W", "MODE_15W", "MODE_30W_ALL", "MODE_30W_6CORE",
                    "MODE_30W_4CORE", "MODE_30W_2CORE", "MODE_15W_DESKTOP"), 7),
    "xavier-nx": ("Jetson Xavier NX (t194 p3668)",
                  ("MODE_15W_2CORE", "MODE_15W_4CORE", "MODE_15W_6CORE", "MODE_10W_2CORE",
                   "MODE_10W_4CORE", "MODE_10W_DESKTOP", "MODE_20W_2CORE", "MODE_20W_4CORE",
                   "MODE_20W_6CORE"), 5),
    "orin-nano": ("Jetson Orin Nano 8GB (p3767-0003)", ("15W", "7W"), 0),
}
DEFAULT_BOARD = "agx-orin"


def builtin_boards() -> List[str]:
    return sorted(_BUILTIN)


def builtin_table(board: str) -> Tuple[str, ModeTable]:
    """(description, table) of a built-in board; KeyError for an unknown one."""
    desc, names, default = _BUILTIN[board]
    modes = [PowerMode(id=i, name=n) for i, n in enumerate(names)]
    return desc, ModeTable(modes=modes, default_id=default, source="built-in:" + board)
