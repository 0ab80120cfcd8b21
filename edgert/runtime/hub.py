"""Per-stream bounded frame queues, their drop policies and frame accounting.

Every source thread puts frames here; the batchers take them out across
streams.  One condition variable guards all streams so a batcher can wait for
"a frame on any stream" without polling.  Each stream keeps exact counters:
``frames_in == frames_out + frames_dropped`` holds for every stream once a run
has drained, and the counters are mirrored into :class:`Metrics` as they move.

Policies (``runtime.drop_policy``):
  * ``block``: the reader waits for room, nothing is lost (files).
  * ``drop_oldest``: on a full queue the oldest frame is evicted and counted as
    dropped once it is stale (older than the engine's batch time; a burst of
    fresh frames is absorbed up to ``BURST`` x depth), so a live camera's
    latency stays bounded when the engine falls behind and nothing is lost to a
    reconnect burst; when
    a batch is formed, frames that waited longer than the engine's batch time
    are skipped in favour of newer ones (see ``_skip_stale_locked``).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Sequence, Tuple

from edgert.runtime.metrics import Metrics
from edgert.sources.base import Frame

BLOCK = "block"
DROP_OLDEST = "drop_oldest"
BURST = 4  # a full drop_oldest queue absorbs fresh frames up to BURST x depth


@dataclass
class StreamState:
    """One stream's queue and counters (guarded by the hub's lock)."""

    name: str
    policy: str
    depth: int
    queue: Deque[Frame] = field(default_factory=deque)
    frames_in: int = 0
    frames_out: int = 0
    frames_dropped: int = 0
    ended: bool = False
    error: Optional[str] = None
    first_out: Optional[float] = None
    last_out: Optional[float] = None


class FrameHub:
    """The bounded queues between source readers and batchers."""

    def __init__(self, names: Sequence[str], policies: Sequence[str], depth: int,
                 metrics: Metrics) -> None:
        self._cond = threading.Condition(threading.Lock())
        self.streams: List[StreamState] = [
            StreamState(n, p, depth) for n, p in zip(names, policies)
        ]
        self.metrics = metrics
        self._closed = False  # set on abort: readers stop waiting, nothing new is accepted
        self.stale_after_s = float("inf")  # see _skip_stale_locked; the runtime updates it
        self._rr = 0  # round-robin start so no stream is favoured when batches are short

    # ------------------------------------------------------------ readers
    def put(self, idx: int, frame: Frame) -> bool:
        """Queue a frame (already counted in); False when the hub was closed."""
        s = self.streams[idx]
        with self._cond:
            s.frames_in += 1
            self.metrics.inc("edgert_frames_in_total", source=s.name)
            while len(s.queue) >= s.depth and not self._closed:
                if s.policy == DROP_OLDEST:
                    if self._evict_locked(s, frame.capture_time):
                        self._dropped_locked(s, 1)
                    break
                self._cond.wait(0.1)
            if self._closed:
                self._dropped_locked(s, 1)
                return False
            s.queue.append(frame)
            self.metrics.set("edgert_queue_depth", len(s.queue), source=s.name)
            self._cond.notify_all()
        return True

    def _evict_locked(self, s: StreamState, now: float) -> bool:
        """drop_oldest on a full queue: evict the oldest frame if it is stale.

        Stale means older than the engine's recent batch time (``stale_after_s``):
        the engine really is behind.  A burst of fresh frames (a camera
        reconnecting or flushing its buffer) is absorbed instead, up to
        ``BURST`` times the depth, so it loses nothing; memory stays bounded.
        """
        if len(s.queue) < BURST * s.depth and now - s.queue[0].capture_time <= self.stale_after_s:
            return False
        s.queue.popleft()
        return True

    def end(self, idx: int, error: Optional[str] = None) -> None:
        """The stream has no more frames (its end, a failure or a stop request)."""
        s = self.streams[idx]
        with self._cond:
            s.ended = True
            if error and s.error is None:
                s.error = error
            self._cond.notify_all()

    # ------------------------------------------------------------ batchers
    def take(self, max_items: int, timeout_s: float, stop_wait: threading.Event
             ) -> Optional[List[Tuple[int, Frame]]]:
        """Up to ``max_items`` frames across streams, oldest first per stream.

        Waits for a first frame, then up to ``timeout_s`` for the batch to
        fill.  Returns None when every stream has ended and drained (or the
        hub is closed); ``stop_wait`` cuts the fill wait short at shutdown.
        """
        out: List[Tuple[int, Frame]] = []
        with self._cond:
            while not out:
                if self._closed:
                    return None
                self._skip_stale_locked(max_items)
                self._take_locked(out, max_items)
                if out:
                    break
                if all(s.ended for s in self.streams):
                    return None
                self._cond.wait(0.1)
            deadline = time.monotonic() + timeout_s
            while len(out) < max_items and not self._closed and not stop_wait.is_set():
                left = deadline - time.monotonic()
                if left <= 0 or all(s.ended and not s.queue for s in self.streams):
                    break
                self._cond.wait(left)
                self._take_locked(out, max_items)
            self._cond.notify_all()  # blocked readers have room now
        return out

    def _skip_stale_locked(self, max_items: int) -> None:
        """Skip stale frames of drop_oldest (live) streams when a batch is formed.

        A frame is stale when it has waited longer than ``stale_after_s`` (the
        engine's recent batch time, set by the runtime) while newer frames of its
        stream wait behind it: the engine is behind that stream, so only the
        newest frames this batch takes from it are kept and latency stays bounded
        under overload.  A stream the engine keeps up with has no stale frames,
        and a burst of fresh frames (a camera reconnecting) loses nothing here.
        """
        active = sum(1 for s in self.streams if s.queue)
        if not active or self.stale_after_s == float("inf"):
            return
        share = -(-max_items // active)
        now = time.monotonic()
        for s in self.streams:
            if s.policy != DROP_OLDEST:
                continue
            stale = 0
            while len(s.queue) > share and now - s.queue[0].capture_time > self.stale_after_s:
                s.queue.popleft()
                stale += 1
            if stale:
                self._dropped_locked(s, stale)

    def _take_locked(self, out: List[Tuple[int, Frame]], max_items: int) -> None:
        """Strict round robin: one frame per stream per turn, resuming where the last take ended."""
        n = len(self.streams)
        idle = 0
        while len(out) < max_items and idle < n:
            idx = self._rr
            self._rr = (idx + 1) % n
            s = self.streams[idx]
            if s.queue:
                out.append((idx, s.queue.popleft()))
                self.metrics.set("edgert_queue_depth", len(s.queue), source=s.name)
                idle = 0
            else:
                idle += 1

    # ------------------------------------------------------------ accounting
    def delivered(self, idx: int, count: int, now: float) -> None:
        s = self.streams[idx]
        with self._cond:
            s.frames_out += count
            if s.first_out is None:
                s.first_out = now
            s.last_out = now
        self.metrics.inc("edgert_frames_out_total", float(count), source=s.name)

    def dropped(self, idx: int, count: int) -> None:
        with self._cond:
            self._dropped_locked(self.streams[idx], count)

    def _dropped_locked(self, s: StreamState, count: int) -> None:
        s.frames_dropped += count
        self.metrics.inc("edgert_frames_dropped_total", float(count), source=s.name)

    def close(self) -> None:
        """Abort: wake everyone, refuse new frames, count queued ones as dropped."""
        with self._cond:
            self._closed = True
            for s in self.streams:
                if s.queue:
                    self._dropped_locked(s, len(s.queue))
                    s.queue.clear()
                    self.metrics.set("edgert_queue_depth", 0, source=s.name)
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def counts(self) -> Dict[str, Tuple[int, int, int]]:
        with self._cond:
            return {s.name: (s.frames_in, s.frames_out, s.frames_dropped) for s in self.streams}
