"""The three ways edgert changes power settings, each able to undo itself.

``CliBackend`` runs nvpmodel and jetson_clocks (root), ``JtopBackend`` asks
jtop.service (members of the ``jtop`` group, no root), ``SmiBackend`` sets a
discrete GPU's application clocks.  Each records what it is about to change in
the :class:`PowerState` file *before* changing it.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, List, Optional

from edgert._lazy import available, require
from edgert.errors import RuntimeFailure
from edgert.platform import nvpmodel, power_state, tools
from edgert.platform.power_state import PowerState

log = logging.getLogger("edgert.platform.power")

REBOOT_NOTE = ("power mode %s needs a reboot to take effect; edgert did not reboot: run "
               "'sudo nvpmodel -m %d' and reboot to use it")


def jtop_available(root: Path) -> bool:
    """jetson-stats installed and jtop.service listening on /run/jtop.sock."""
    return (root / "run" / "jtop.sock").exists() and available("jtop")


def _run(argv: List[str], stdin_text: str = "", timeout: float = 60.0) -> tools.Result:
    res = tools.run(argv, timeout=timeout, stdin_text=stdin_text)
    if res is None:
        raise RuntimeFailure("%s not found (looked on PATH and in /usr/sbin, /usr/bin); it ships "
                             "with JetPack's nvidia-l4t-tools / the NVIDIA driver" % argv[0])
    log.info("ran %s (exit %d)", tools.quote(argv), res.returncode)
    return res


def _fail(res: tools.Result) -> RuntimeFailure:
    last = res.output.strip().splitlines()[-1] if res.output.strip() else "no output"
    return RuntimeFailure("'%s' failed (exit %d): %s"
                          % (tools.quote(res.argv), res.returncode, last))


class CliBackend:
    """nvpmodel + jetson_clocks command-line tools."""

    name = "cli"

    def fill_plan(self, plan: Any, mode: Optional[nvpmodel.PowerMode], clocks: bool,
                  store: str, current: Optional[dict] = None) -> None:
        """``current``: the mode ``nvpmodel -q`` reports now (a Jetson's dry run)."""
        if mode is not None:
            plan.record.append("nvpmodel -q")
            if current and current.get("id") == mode.id:
                plan.notes.append("already in power mode %s: nvpmodel is not run" % mode.label())
            else:
                plan.apply.append("nvpmodel -m %d   # %s" % (mode.id, mode.name))
                plan.restore.append("nvpmodel -m %d   # %s, the current mode" % (
                    current["id"], current["name"]) if current and current.get("id") is not None
                    else "nvpmodel -m <id printed by 'nvpmodel -q' above>")
        if clocks:
            plan.record.append(tools.quote(["jetson_clocks", "--store", store]))
            plan.apply.append("jetson_clocks")
            plan.restore.append(tools.quote(["jetson_clocks", "--restore", store]))

    def current_mode(self) -> dict:
        res = _run(["nvpmodel", "-q"], timeout=15)
        if not res.ok:
            raise _fail(res)
        try:
            name, mode_id = nvpmodel.parse_query(res.output)
        except ValueError as exc:
            raise RuntimeFailure(str(exc)) from None
        return {"id": mode_id, "name": name}

    def apply(self, state: PowerState, path: Path, mode: Optional[nvpmodel.PowerMode],
              clocks: bool, store: Path, table: Optional[nvpmodel.ModeTable]) -> List[str]:
        notes: List[str] = []
        if mode is not None:
            prev = self.current_mode()
            if prev["id"] is None and table is not None:
                found = table.by_name(prev["name"])
                prev["id"] = found.id if found else None
            if prev["id"] == mode.id:
                notes.append("already in power mode %s" % mode.label())
                mode = None
            elif prev["id"] is None:
                raise RuntimeFailure("cannot tell the current power mode id from 'nvpmodel -q' "
                                     "(%s); not changing it" % prev["name"])
            else:
                state.previous_mode, state.applied_mode = prev, {"id": mode.id, "name": mode.name}
        if clocks:
            store.parent.mkdir(parents=True, exist_ok=True)
            res = _run(["jetson_clocks", "--store", str(store)])
            if not res.ok:
                raise _fail(res)
            state.clocks_store = str(store)
        power_state.save(path, state)  # everything needed to undo, before any change
        if mode is not None:
            notes.extend(self._set_mode(state, path, mode))
        if clocks:
            res = _run(["jetson_clocks"])
            if not res.ok:
                raise _fail(res)
            notes.append("clocks locked at the mode's maximum (jetson_clocks)")
        return notes

    def _set_mode(self, state: PowerState, path: Path, mode: nvpmodel.PowerMode) -> List[str]:
        res = _run(["nvpmodel", "-m", str(mode.id)], stdin_text="NO\n")
        if nvpmodel.needs_reboot(res.output):
            state.previous_mode = state.applied_mode = None
            state.notes["reboot"] = mode.label()
            power_state.save(path, state)
            return [REBOOT_NOTE % (mode.label(), mode.id)]
        if not res.ok:
            raise _fail(res)
        return ["power mode set to %s" % mode.label()]

    def restore(self, state: PowerState) -> List[str]:
        done: List[str] = []
        errors: List[str] = []
        prev = state.previous_mode
        if prev and prev.get("id") is not None:
            res = _run(["nvpmodel", "-m", str(prev["id"])], stdin_text="NO\n")
            if nvpmodel.needs_reboot(res.output):
                done.append(REBOOT_NOTE % ("%s=%s" % (prev["id"], prev.get("name")), prev["id"]))
            elif res.ok:
                done.append("power mode back to %s=%s" % (prev["id"], prev.get("name")))
            else:
                errors.append(str(_fail(res)))
        if state.clocks_store:
            if not Path(state.clocks_store).is_file():
                log.warning("%s is gone; clocks return to the mode's defaults at the next reboot",
                            state.clocks_store)
            else:
                res = _run(["jetson_clocks", "--restore", state.clocks_store])
                if res.ok:
                    done.append("clocks restored from %s" % state.clocks_store)
                else:
                    errors.append(str(_fail(res)))
        if errors:
            raise RuntimeFailure("; ".join(errors) + " (the restore stays pending)")
        return done


class JtopBackend:
    """jetson-stats' jtop.service: the documented ``jtop`` client API (TRT_REFERENCE 8).

    Not exercised here (no Jetson, no jtop.service); written to the documented
    properties ``nvpmodel``, ``jetson_clocks`` and ``ok()``.
    """

    name = "jtop"
    WAIT_S = 15.0

    def fill_plan(self, plan: Any, mode: Optional[nvpmodel.PowerMode], clocks: bool,
                  store: str, current: Optional[dict] = None) -> None:
        plan.record.append("jtop: read nvpmodel and jetson_clocks")
        if mode is not None:
            plan.apply.append("jtop: nvpmodel = %d   # %s" % (mode.id, mode.name))
            plan.restore.append("jtop: nvpmodel = <previous id>")
        if clocks:
            plan.apply.append("jtop: jetson_clocks = True")
            plan.restore.append("jtop: jetson_clocks = <previous state>")

    def _client(self) -> Any:
        return require("jtop", "switching power modes through jtop.service").jtop()

    def apply(self, state: PowerState, path: Path, mode: Optional[nvpmodel.PowerMode],
              clocks: bool, store: Path, table: Optional[nvpmodel.ModeTable]) -> List[str]:
        notes: List[str] = []
        with self._client() as j:
            if mode is not None and j.nvpmodel.id != mode.id:
                state.previous_mode = {"id": j.nvpmodel.id, "name": j.nvpmodel.name}
                state.applied_mode = {"id": mode.id, "name": mode.name}
            if clocks:
                state.previous_jetson_clocks = bool(j.jetson_clocks)
            power_state.save(path, state)
            if state.applied_mode is not None and mode is not None:
                j.nvpmodel = mode.id
                self._wait(j, lambda: j.nvpmodel.id == mode.id, "power mode %s" % mode.label())
                notes.append("power mode set to %s (jtop)" % mode.label())
            if clocks:
                j.jetson_clocks = True
                notes.append("clocks locked at the mode's maximum (jtop)")
        return notes

    def _wait(self, j: Any, cond: Any, what: str) -> None:
        deadline = time.monotonic() + self.WAIT_S
        while j.ok() and time.monotonic() < deadline:
            if cond():
                return
        raise RuntimeFailure("jtop.service did not apply %s within %.0f s (a mode that needs a "
                             "reboot is not forced: use 'sudo nvpmodel')" % (what, self.WAIT_S))

    def restore(self, state: PowerState) -> List[str]:
        done: List[str] = []
        with self._client() as j:
            if state.previous_jetson_clocks is not None:
                j.jetson_clocks = bool(state.previous_jetson_clocks)
                done.append("jetson_clocks back to %s (jtop)" % state.previous_jetson_clocks)
            prev = state.previous_mode
            if prev and prev.get("id") is not None:
                j.nvpmodel = int(prev["id"])
                self._wait(j, lambda: j.nvpmodel.id == int(prev["id"]), "the previous mode")
                done.append("power mode back to %s=%s (jtop)" % (prev["id"], prev.get("name")))
        return done


class SmiBackend:
    """Application clocks of a discrete GPU (``nvidia-smi -ac``), only on explicit request."""

    name = "nvidia-smi"
    QUERY = "clocks.applications.memory,clocks.applications.graphics"

    def __init__(self, index: int = 0) -> None:
        self.index = index

    def query_cmd(self) -> str:
        return tools.quote(self._query_argv())

    def _query_argv(self) -> List[str]:
        return ["nvidia-smi", "-i", str(self.index), "--query-gpu=" + self.QUERY,
                "--format=csv,noheader,nounits"]

    def set_cmd(self, clocks: str) -> str:
        return tools.quote(["nvidia-smi", "-i", str(self.index), "-ac", clocks])

    @staticmethod
    def parse_query(text: str) -> Optional[str]:
        """``877, 1380`` -> ``877,1380``; None for ``[N/A]`` or junk."""
        parts = [p.strip() for p in text.strip().splitlines()[0].split(",")] if text.strip() else []
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            return ",".join(parts)
        return None

    def apply(self, state: PowerState, path: Path, clocks: str) -> List[str]:
        res = _run(self._query_argv(), timeout=15)
        if not res.ok:
            raise _fail(res)
        state.nvidia_smi = {"index": self.index, "previous": self.parse_query(res.output)}
        power_state.save(path, state)
        res = _run(["nvidia-smi", "-i", str(self.index), "-ac", clocks])
        if not res.ok:
            raise _fail(res)
        return ["GPU %d application clocks set to %s MHz (memory,graphics)" % (self.index, clocks)]

    def restore(self, state: PowerState) -> List[str]:
        previous = (state.nvidia_smi or {}).get("previous")
        argv = (["nvidia-smi", "-i", str(self.index), "-ac", previous] if previous
                else ["nvidia-smi", "-i", str(self.index), "-rac"])
        res = _run(argv)
        if not res.ok:
            raise RuntimeFailure(str(_fail(res)) + " (the restore stays pending)")
        return ["GPU %d application clocks restored" % self.index]
