"""The state file that makes every power change undoable, even after a crash.

Before edgert changes a power mode or clocks it writes what it is about to
change (the previous nvpmodel mode, where ``jetson_clocks --store`` saved the
clocks, the previous nvidia-smi application clocks) with ``pending: true``.
Restoring clears it.  If edgert dies in between (SIGKILL, power loss, OOM), the
next start finds the pending file and restores first; the systemd unit's
``ExecStopPost=edgert power restore`` does the same when the service stops.

Two files exist so that a run's temporary settings nest inside a manual
``edgert power set``: ``session`` (undone when ``edgert run`` exits) and
``manual`` (kept until ``edgert power restore``).
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

from edgert.fsutil import atomic_write_text

log = logging.getLogger("edgert.platform.power")

STATE_VERSION = 1
SYSTEM_STATE_DIR = Path("/var/lib/edgert")
SESSION = "session"
MANUAL = "manual"


def state_dir() -> Path:
    """Folder edgert owns for power state.

    ``EDGERT_STATE_DIR`` wins; root uses /var/lib/edgert (what the systemd unit
    runs as); other users ``$XDG_STATE_HOME/edgert`` (~/.local/state/edgert).
    """
    env = os.environ.get("EDGERT_STATE_DIR")
    if env:
        return Path(env)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return SYSTEM_STATE_DIR
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "edgert"


def state_path(kind: str = SESSION, folder: Optional[Path] = None) -> Path:
    name = "power-state.json" if kind == SESSION else "power-state-manual.json"
    return (folder or state_dir()) / name


def clocks_store_path(kind: str = SESSION, folder: Optional[Path] = None) -> Path:
    """Where ``jetson_clocks --store`` writes (one per state kind)."""
    return (folder or state_dir()) / ("l4t_dfs.conf" if kind == SESSION else "l4t_dfs-manual.conf")


def boot_id() -> str:
    """This boot's id: a pid from another boot says nothing about liveness."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass
class PowerState:
    """What was changed and how to undo it (JSON on disk)."""

    kind: str = SESSION
    pending: bool = True
    backend: str = "cli"
    """``cli`` (nvpmodel/jetson_clocks), ``jtop`` or ``nvidia-smi``."""
    pid: int = 0
    boot_id: str = ""
    created: float = 0.0
    board: str = ""
    previous_mode: Optional[Dict[str, Any]] = None
    """``{"id": 2, "name": "MODE_30W"}``; set only when edgert changed the mode."""
    applied_mode: Optional[Dict[str, Any]] = None
    clocks_store: Optional[str] = None
    """The ``jetson_clocks --store`` file; set only when edgert ran jetson_clocks."""
    previous_jetson_clocks: Optional[bool] = None
    """jtop backend: whether jetson_clocks was on before."""
    nvidia_smi: Optional[Dict[str, Any]] = None
    """``{"index": 0, "previous": "877,1380" or None}``."""
    version: int = STATE_VERSION
    notes: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls, kind: str, backend: str, board: str) -> "PowerState":
        return cls(kind=kind, backend=backend, pid=os.getpid(), boot_id=boot_id(),
                   created=time.time(), board=board)

    def owner_alive(self) -> bool:
        """Whether the process that wrote this state is still running (this boot)."""
        if not self.pid or self.boot_id != boot_id():
            return False
        if self.pid == os.getpid():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def has_changes(self) -> bool:
        return bool(self.previous_mode or self.clocks_store or self.nvidia_smi
                    or self.previous_jetson_clocks is not None)


def load(path: Path) -> Optional[PowerState]:
    """The state at ``path``; None when absent.  A corrupt file is reported and kept."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read power state %s: %s", path, exc)
        return None
    try:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in PowerState.__dataclass_fields__}
        return PowerState(**known)
    except (ValueError, TypeError) as exc:
        log.warning("power state %s is unreadable (%s); delete it after checking the clocks",
                    path, exc)
        return None


def save(path: Path, state: PowerState) -> None:
    atomic_write_text(path, json.dumps(asdict(state), indent=2, sort_keys=True) + "\n")


def clear(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
