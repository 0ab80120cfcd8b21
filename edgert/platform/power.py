"""Power modes and clock locking that are always undone.

``power_session(cfg)`` is what ``edgert run`` wraps a pipeline in: it sets the
nvpmodel mode and runs ``jetson_clocks`` only when the YAML (or command line)
asks, after recording how to undo it (``power_state``), and restores on exit,
on SIGTERM, and on the next start after a crash.  ``edgert power`` drives the
same :class:`PowerController` by hand.

Order of operations (TRT_REFERENCE.md section 8):
  record: ``nvpmodel -q``; ``jetson_clocks --store <state dir>/l4t_dfs.conf``
  apply:  ``nvpmodel -m <id>`` (answering "no" to a reboot prompt); ``jetson_clocks``
  undo:   ``nvpmodel -m <previous id>``; ``jetson_clocks --restore <file>``
Through jtop.service instead when ``jetson-stats`` is installed and its socket
exists (no root needed then).  On a discrete GPU, application clocks go
through ``nvidia-smi -ac`` only when explicitly asked.

edgert never changes anything on a machine unless asked: with no ``power:``
section and no flag, the only thing a session may do is finish restoring
settings that a crashed run left pending.
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, List, Optional, Union

from edgert.errors import ConfigError, RuntimeFailure, UsageError
from edgert.platform import detect, nvpmodel, power_state, tools
from edgert.platform.power_backends import CliBackend, JtopBackend, SmiBackend, jtop_available
from edgert.platform.power_state import MANUAL, SESSION, PowerState

log = logging.getLogger("edgert.platform.power")

ROOT_HINT = ("run it with sudo, run the pipeline as the systemd unit ('edgert service install'), "
             "or install jetson-stats ('pip install \"edgert[jetson]\"' and "
             "'sudo jtop --install-service') so edgert can switch through jtop.service")


@dataclass
class PowerRequest:
    """What to change: from ``power:`` in the YAML or ``edgert power set`` flags."""

    nvpmodel: Optional[Union[int, str]] = None
    jetson_clocks: bool = False
    nvidia_smi_clocks: Optional[str] = None
    """``MEM,GRAPHICS`` MHz for ``nvidia-smi -ac`` (discrete GPUs only)."""
    gpu_index: int = 0

    @classmethod
    def from_config(cls, cfg: Any) -> "PowerRequest":
        if cfg is None:
            return cls()
        return cls(nvpmodel=cfg.nvpmodel, jetson_clocks=bool(cfg.jetson_clocks))

    def empty(self) -> bool:
        return self.nvpmodel is None and not self.jetson_clocks and not self.nvidia_smi_clocks

    def jetson_part(self) -> bool:
        return self.nvpmodel is not None or self.jetson_clocks


@dataclass
class Plan:
    """The exact steps an apply would take (``--dry-run`` prints this)."""

    board: str
    assumed_board: bool
    backend: str
    record: List[str] = field(default_factory=list)
    apply: List[str] = field(default_factory=list)
    restore: List[str] = field(default_factory=list)
    mode: Optional[nvpmodel.PowerMode] = None
    notes: List[str] = field(default_factory=list)

    def render(self) -> str:
        lines = ["# %s" % n for n in self.notes]
        restore_title = ("restore (on exit, SIGTERM, next start after a crash, "
                         "or 'edgert power restore')")
        for title, steps in (("record the current state", self.record),
                             ("apply", self.apply), (restore_title, self.restore)):
            if steps:
                lines.append("# %s:" % title)
                lines.extend(steps)
        return "\n".join(lines)


def parse_smi_clocks(value: str) -> str:
    """Validate ``MEM,GRAPHICS`` (MHz); returns it normalized."""
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise UsageError("--nvidia-smi-clocks: '%s' is not MEM,GRAPHICS in MHz (e.g. 1593,1410)"
                         % value)
    return ",".join(parts)


class PowerController:
    """Plans, applies and restores power settings on this machine."""

    def __init__(self, root: Optional[Path] = None, state_folder: Optional[Path] = None,
                 euid: Optional[int] = None,
                 system_folder: Path = power_state.SYSTEM_STATE_DIR) -> None:
        self.root = root if root is not None else tools.sysroot()
        self.folder = state_folder or power_state.state_dir()
        self.euid = euid if euid is not None else (os.geteuid() if hasattr(os, "geteuid") else 0)
        # Without root, also look at (never write) what a root edgert left pending there.
        self.system_folder = system_folder if self.euid != 0 and system_folder != self.folder \
            else None
        self._jetson: Optional[bool] = None
        self._table: Optional[nvpmodel.ModeTable] = None

    # ---- what this machine is -------------------------------------------------
    @property
    def is_jetson(self) -> bool:
        if self._jetson is None:
            self._jetson = detect.is_jetson(self.root)
        return self._jetson

    def board_name(self) -> str:
        return detect.read_model(self.root) or "Jetson"

    def mode_table(self) -> Optional[nvpmodel.ModeTable]:
        """The board's modes: its nvpmodel conf, else ``nvpmodel -p --verbose``."""
        if self._table is None and self.is_jetson:
            self._table = nvpmodel.read_conf(self.root)
            if self._table is None:
                res = tools.run(["nvpmodel", "-p", "--verbose"], timeout=15)
                if res is not None and res.ok:
                    with contextlib.suppress(ValueError):
                        self._table = nvpmodel.parse_verbose(res.output)
        return self._table

    def backend(self) -> Union[CliBackend, JtopBackend]:
        return JtopBackend() if jtop_available(self.root) else CliBackend()

    # ---- planning ---------------------------------------------------------------
    def resolve_mode(self, value: Union[int, str], table: Optional[nvpmodel.ModeTable],
                     board: str) -> nvpmodel.PowerMode:
        if table is None:
            raise RuntimeFailure("cannot read this Jetson's power modes (/etc/nvpmodel.conf or "
                                 "'nvpmodel -p --verbose'); check that nvpmodel is installed")
        try:
            return table.resolve(value)
        except ValueError as exc:
            raise UsageError("%s (%s)" % (exc, board)) from None

    def plan(self, req: PowerRequest, kind: str = SESSION,
             board: Optional[str] = None) -> Plan:
        """Steps for ``req``; on a non-Jetson, for a built-in board (``--board``)."""
        if req.nvidia_smi_clocks and not req.jetson_part():
            smi = SmiBackend(req.gpu_index)
            return Plan(board="discrete GPU %d" % req.gpu_index, assumed_board=False,
                        backend="nvidia-smi", record=[smi.query_cmd()],
                        apply=[smi.set_cmd(req.nvidia_smi_clocks)],
                        restore=[smi.set_cmd("MEM,GRAPHICS") + "   # as printed by the "
                                 "query above (-rac instead when it printed [N/A])"])
        notes: List[str] = []
        if self.is_jetson:
            desc, table, assumed = self.board_name(), self.mode_table(), False
            if board:
                notes.append("--board %s ignored: this is a %s" % (board, desc))
        else:
            name = board or nvpmodel.DEFAULT_BOARD
            try:
                desc, table = nvpmodel.builtin_table(name)
            except KeyError:
                raise UsageError("--board: unknown board '%s'; known: %s"
                                 % (name, ", ".join(nvpmodel.builtin_boards()))) from None
            assumed = True
            notes.append("not a Jetson: showing what would run on a %s%s" % (
                desc, "" if board else " (pick another with --board %s)"
                % "|".join(nvpmodel.builtin_boards())))
        backend = self.backend() if self.is_jetson else CliBackend()
        mode = self.resolve_mode(req.nvpmodel, table, desc) if req.nvpmodel is not None else None
        store = str(power_state.clocks_store_path(kind, self.folder))
        plan = Plan(board=desc, assumed_board=assumed, backend=backend.name, mode=mode, notes=notes)
        current = None
        if mode is not None and self.is_jetson and isinstance(backend, CliBackend):
            current = detect.query_power_mode(table)   # read-only: nvpmodel -q
        backend.fill_plan(plan, mode, req.jetson_clocks, store, current)
        return plan

    # ---- applying -----------------------------------------------------------------
    def check_can_change(self, req: PowerRequest) -> None:
        """Refuse, in one line, what cannot or must not happen here."""
        if req.jetson_part() and not self.is_jetson:
            raise RuntimeFailure("not a Jetson: power modes and jetson_clocks exist only on "
                                 "Jetson (use --dry-run to see the commands)")
        if req.nvidia_smi_clocks and self.is_jetson:
            raise UsageError("--nvidia-smi-clocks is for discrete GPUs; on a Jetson use "
                             "--nvpmodel and --jetson-clocks")
        if req.jetson_part() and self.euid != 0 and not jtop_available(self.root):
            raise RuntimeFailure("changing the power mode needs root: " + ROOT_HINT)
        if req.nvidia_smi_clocks and self.euid != 0:
            raise RuntimeFailure("setting application clocks needs root: run it with sudo")

    def apply(self, req: PowerRequest, kind: str = SESSION) -> List[str]:
        """Record, then change.  Returns notes for the user (e.g. reboot needed)."""
        self.check_can_change(req)
        self.recover(kind)
        path = power_state.state_path(kind, self.folder)
        try:
            if req.nvidia_smi_clocks:
                smi = SmiBackend(req.gpu_index)
                state = PowerState.new(kind, "nvidia-smi", "discrete GPU %d" % req.gpu_index)
                return smi.apply(state, path, req.nvidia_smi_clocks)
            backend = self.backend()
            table = self.mode_table()
            mode = (self.resolve_mode(req.nvpmodel, table, self.board_name())
                    if req.nvpmodel is not None else None)
            state = PowerState.new(kind, backend.name, self.board_name())
            store = power_state.clocks_store_path(kind, self.folder)
            return backend.apply(state, path, mode, req.jetson_clocks, store, table)
        except RuntimeFailure:
            self._undo_after_failure(path)
            raise

    def _undo_after_failure(self, path: Path) -> None:
        state = power_state.load(path)
        if state is not None and state.has_changes():
            log.warning("power change failed part-way; restoring what was changed")
            with contextlib.suppress(RuntimeFailure):
                self._restore_state(state, path)

    # ---- restoring -------------------------------------------------------------------
    def recover(self, kind: str = SESSION) -> List[str]:
        """Restore a pending state left by a process that is gone (crash recovery)."""
        path = power_state.state_path(kind, self.folder)
        state = power_state.load(path)
        if state is None or not state.pending:
            return []
        if state.owner_alive() and state.pid != os.getpid():
            raise RuntimeFailure("power settings are held by another edgert (pid %d); stop it, "
                                 "or run 'edgert power restore --force'" % state.pid)
        log.warning("restoring power settings left pending by pid %d (it did not exit cleanly)",
                    state.pid)
        return self._restore_state(state, path)

    def restore(self, force: bool = False, kinds: tuple = (SESSION, MANUAL)) -> List[str]:
        """Undo pending states (a live run's only with ``force``).  Returns what was done."""
        done: List[str] = []
        for kind in kinds:
            path = power_state.state_path(kind, self.folder)
            state = power_state.load(path)
            if state is None or not state.pending:
                continue
            if state.owner_alive() and state.pid != os.getpid() and not force:
                raise RuntimeFailure("pid %d (still running) owns these power settings; it "
                                     "restores them when it exits (use --force to restore now)"
                                     % state.pid)
            done.extend(self._restore_state(state, path))
        self._report_system_pending(kinds, fatal=not done)
        return done

    def pending(self) -> List[PowerState]:
        """Pending states here and, without root, in the system folder."""
        found = []
        folders = [self.folder] + ([self.system_folder] if self.system_folder else [])
        for folder in folders:
            for kind in (SESSION, MANUAL):
                state = power_state.load(power_state.state_path(kind, folder))
                if state is not None and state.pending:
                    found.append(state)
        return found

    def _report_system_pending(self, kinds: tuple, fatal: bool) -> None:
        """Without root, name root's pending restore instead of saying "nothing to restore"."""
        if self.system_folder is None:
            return
        for kind in kinds:
            path = power_state.state_path(kind, self.system_folder)
            state = power_state.load(path)
            if state is not None and state.pending and state.has_changes():
                msg = ("power settings changed by edgert as root are pending in %s: "
                       "run 'sudo edgert power restore'" % path)
                if fatal:
                    raise RuntimeFailure(msg)
                log.warning("%s", msg)

    def _restore_state(self, state: PowerState, path: Path) -> List[str]:
        if state.has_changes() and self.euid != 0 and state.backend != "jtop":
            raise RuntimeFailure("restoring the power settings in %s needs root: run 'sudo edgert "
                                 "power restore'" % path)
        if state.backend == "nvidia-smi":
            done = SmiBackend(int((state.nvidia_smi or {}).get("index", 0))).restore(state)
        elif state.backend == "jtop":
            done = JtopBackend().restore(state)
        else:
            done = CliBackend().restore(state)
        power_state.clear(path)
        return done


def validate_power_config(cfg: Any, table: Optional[nvpmodel.ModeTable], board: str = "",
                          file: Optional[str] = None) -> Optional[nvpmodel.PowerMode]:
    """Check ``power.nvpmodel`` against the board's table (None: cannot check here)."""
    if cfg is None or getattr(cfg, "nvpmodel", None) is None or table is None:
        return None
    try:
        return table.resolve(cfg.nvpmodel)
    except ValueError as exc:
        msg = str(exc) + ((" (%s)" % board) if board else "")
        raise ConfigError(msg, key_path="power.nvpmodel", file=file) from None


def check_power_section(cfg: Any, locs: Any, root: Optional[Path] = None) -> None:
    """Graph-pass check of ``power:`` (``locs``: the loader's Locations).

    On a Jetson ``power.nvpmodel`` must name a mode of this board's table; off
    a Jetson nothing can be checked (the same YAML is developed on a laptop).
    """
    if cfg is None or getattr(cfg, "nvpmodel", None) is None:
        return
    root = root if root is not None else tools.sysroot()
    if not detect.is_jetson(root):
        return
    table = nvpmodel.read_conf(root)
    if table is None:
        return
    try:
        table.resolve(cfg.nvpmodel)
    except ValueError as exc:
        board = detect.read_model(root) or "this Jetson"
        raise locs.error("%s (%s)" % (exc, board), ("power", "nvpmodel")) from None


class _SignalRestore:
    """SIGTERM/SIGHUP -> unwind the ``with`` block so the finally clause restores.

    A handler the application installed first is chained (it is expected to stop
    the pipeline, which leaves the block); otherwise the signal becomes SystemExit.
    """

    SIGNALS = ("SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self._previous: dict = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.debug("not the main thread: SIGTERM restore relies on the caller")
            return
        for name in self.SIGNALS:
            sig = getattr(signal, name, None)
            # an ignored signal (SIGHUP under nohup) stays ignored
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        prev = self._previous.get(signum)
        if callable(prev):
            prev(signum, frame)
            return
        raise SystemExit(128 + signum)

    def uninstall(self) -> None:
        for sig, prev in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
        self._previous.clear()


@contextlib.contextmanager
def power_session(power_config: Any, dry_run: bool = False,
                  controller: Optional[PowerController] = None) -> Iterator[List[str]]:
    """Apply ``power:`` for the duration of a run; always restore afterwards.

    Yields notes for the user (reboot needed, the dry-run commands).  With no
    power settings it changes nothing, but still restores a crashed run's
    leftovers when it can; off a Jetson a ``power:`` section is skipped with a
    warning, so the same YAML runs on a laptop.
    """
    req = PowerRequest.from_config(power_config)
    ctl = controller or PowerController()
    if dry_run:
        notes = [] if req.empty() else ctl.plan(req).render().splitlines()
        for line in notes:
            log.info("power (dry run): %s", line)
        yield notes
        return
    _recover_quietly(ctl)
    if req.empty():
        yield []
        return
    if req.jetson_part() and not ctl.is_jetson:
        # The same pipeline runs on a laptop: its power section simply does not apply there.
        note = "power: section ignored: not a Jetson (nothing was changed)"
        log.warning("%s", note)
        yield [note]
        return
    restore = getattr(power_config, "restore_on_exit", True)
    kind = SESSION if restore else MANUAL
    notes = ctl.apply(req, kind)
    if not restore:
        log.info("power settings stay after this run ('edgert power restore' undoes them)")
        yield notes
        return
    yield from _restoring(ctl, notes)


def _restoring(ctl: PowerController, notes: List[str]) -> Iterator[List[str]]:
    guard = _SignalRestore()
    done = threading.Event()

    def restore_once() -> None:
        if not done.is_set():
            done.set()
            try:
                for line in ctl.restore(kinds=(SESSION,)):
                    log.info("power restored: %s", line)
            except RuntimeFailure as exc:
                log.error("%s", exc)

    atexit.register(restore_once)
    guard.install()
    try:
        yield notes
    finally:
        guard.uninstall()
        restore_once()
        atexit.unregister(restore_once)


def _recover_quietly(ctl: PowerController) -> None:
    try:
        for line in ctl.recover(SESSION):
            log.info("power restored: %s", line)
    except RuntimeFailure as exc:
        log.warning("%s", exc)

