"""The seam between an executor and whoever watches it run (systemd, tests).

An executor calls these hooks at fixed points of a run so that supervision
does not need to know how frames move:

* :meth:`RunObserver.on_start` once, before the first frame, with the number
  of inference lanes (threads that call engines; one per engine instance).
* :meth:`RunObserver.on_ready` once, after engines are loaded **and** the first
  batch went through every stage: "the service works", not merely "started".
* :meth:`RunObserver.on_batch_done` from the thread that runs inference
  (``lane``), after each batch; a hung engine therefore stops these calls even
  when the main thread is still alive, which is what a watchdog must detect.
* :meth:`RunObserver.heartbeat` from the same thread when it woke up and
  found nothing queued for it (a camera reconnecting): alive but idle.
* :meth:`RunObserver.on_stop` once, when the run begins shutting down.

Every hook must be cheap and must never raise into the executor.
"""
from __future__ import annotations

from typing import List, Sequence


class RunObserver:
    """No-op base; subclasses override what they need."""

    def on_start(self, lanes: int = 1) -> None:
        """The run starts with ``lanes`` inference threads (numbered from 0)."""

    def on_ready(self) -> None:
        """Engines loaded and the first batch processed end to end."""

    def on_batch_done(self, frames: int, lane: int = 0) -> None:
        """``frames`` frames finished inference on ``lane`` (called on that thread)."""

    def heartbeat(self, lane: int = 0) -> None:
        """Inference thread ``lane`` is alive but had nothing to do."""

    def on_stop(self, reason: str = "") -> None:
        """The run is shutting down (end of streams, signal or error)."""


class Observers(RunObserver):
    """Fans every hook out to several observers, in order."""

    def __init__(self, observers: Sequence[RunObserver] = ()) -> None:
        self.observers: List[RunObserver] = list(observers)

    def on_start(self, lanes: int = 1) -> None:
        for o in self.observers:
            o.on_start(lanes)

    def on_ready(self) -> None:
        for o in self.observers:
            o.on_ready()

    def on_batch_done(self, frames: int, lane: int = 0) -> None:
        for o in self.observers:
            o.on_batch_done(frames, lane)

    def heartbeat(self, lane: int = 0) -> None:
        for o in self.observers:
            o.heartbeat(lane)

    def on_stop(self, reason: str = "") -> None:
        for o in self.observers:
            o.on_stop(reason)


def default_observers() -> Observers:
    """What ``edgert run`` attaches: systemd notification when run as a notify service."""
    from edgert.service.sdnotify import SystemdObserver

    obs = Observers()
    sd = SystemdObserver.from_env()
    if sd is not None:
        obs.observers.append(sd)
    return obs
