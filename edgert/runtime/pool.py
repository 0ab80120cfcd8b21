"""The instance pool: engines of one model and their preallocated batch slots.

``instances: [dla:0, dla:1, gpu]`` gives one engine per device; each engine
gets ``slots_per_instance`` :class:`EngineIO` sets allocated once at start, so
preprocess of the next batch can fill one slot while the engine runs another
and the decoder still reads a third.  A batch is assigned a slot *before* it
is preprocessed (preprocess writes straight into that engine's input memory),
and the slot goes to the least busy instance: an idle instance always wins
over one that is running, which is "first free instance" with fair ties.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

from edgert.engines.base import Engine, EngineIO


@dataclass
class Slot:
    """One in-flight batch position: an engine's IO set plus reusable index arrays."""

    instance: int
    index: int
    capacity: int
    io: Optional[EngineIO]
    input_name: Optional[str]
    source_index: np.ndarray = field(init=False)
    frame_index: np.ndarray = field(init=False)
    pts: np.ndarray = field(init=False)
    capture_time: np.ndarray = field(init=False)
    seq: int = -1  # global batch sequence number while in flight

    def __post_init__(self) -> None:
        self.source_index = np.zeros(self.capacity, np.int32)
        self.frame_index = np.zeros(self.capacity, np.int64)
        self.pts = np.zeros(self.capacity, np.float64)
        self.capture_time = np.zeros(self.capacity, np.float64)

    def tensor_view(self, n: int) -> Optional[np.ndarray]:
        """The engine's own input memory for the first ``n`` items (zero copy)."""
        if self.io is None or self.input_name is None:
            return None
        return self.io.inputs[self.input_name][:n]

    @property
    def nbytes(self) -> int:
        if self.io is None:
            return 0
        arrays = list(self.io.inputs.values()) + list(self.io.outputs.values())
        return int(sum(a.nbytes for a in arrays))


class SlotPool:
    """Free slots across instances; ``acquire`` prefers the least busy instance."""

    def __init__(self, engines: List[Optional[Engine]], capacity: int,
                 slots_per_instance: int) -> None:
        self.engines = engines
        self.capacity = capacity
        self._cond = threading.Condition(threading.Lock())
        self._free: List[List[Slot]] = []
        self._busy = [0] * len(engines)
        self.slots: List[Slot] = []
        for i, eng in enumerate(engines):
            free = []
            for j in range(slots_per_instance):
                io = eng.new_io(capacity) if eng is not None else None
                name = eng.inputs[0].name if eng is not None else None
                slot = Slot(i, j, capacity, io, name)
                free.append(slot)
                self.slots.append(slot)
            self._free.append(free)

    def acquire(self, cancelled: Callable[[], bool]) -> Optional[Slot]:
        """A free slot, waiting as long as needed; None once ``cancelled()``."""
        with self._cond:
            while True:
                if cancelled():
                    return None
                best = -1
                for i, free in enumerate(self._free):
                    if free and (best < 0 or self._busy[i] < self._busy[best]):
                        best = i
                if best >= 0:
                    self._busy[best] += 1
                    return self._free[best].pop()
                self._cond.wait(0.1)

    def release(self, slot: Slot) -> None:
        with self._cond:
            self._busy[slot.instance] -= 1
            self._free[slot.instance].append(slot)
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def bytes_copied(self) -> int:
        """Host<->device bytes the engines report for all slots so far."""
        return int(sum(s.io.bytes_copied for s in self.slots if s.io is not None))
