"""What ``edgert run`` / ``edgert bench`` wrap a pipeline in: power settings + telemetry.

One context manager so the commands stay thin: it applies ``power:`` (and
always restores, see :func:`edgert.platform.power.power_session`), samples
telemetry into the run's Metrics for the whole run, and gives the one-line
summary (power mode, mean watts, fps per watt) printed at the end.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Dict, Iterator, List, Optional

from edgert.platform import detect
from edgert.platform.power import PowerController, power_session
from edgert.platform.telemetry import Sampler, format_summary, make_reader
from edgert.runtime.metrics import Metrics

log = logging.getLogger("edgert.platform.session")


class PlatformSession:
    """Handle yielded by :func:`platform_session`."""

    def __init__(self, notes: List[str], sampler: Sampler) -> None:
        self.notes = notes
        """What the power step reported (reboot needed, dry-run commands, skipped)."""
        self.sampler = sampler

    def summary(self) -> Dict[str, Any]:
        return self.sampler.summary()

    def summary_line(self, fps: Optional[float] = None) -> Optional[str]:
        """The end-of-run line; None where there is nothing platform-specific to say
        (no power mode, no readable power draw, no throttling: a laptop)."""
        s = self.summary()
        if not (s.get("power_mode") or s.get("mean_watts") or s.get("throttle_episodes")):
            return None
        return format_summary(s, fps)


def current_mode_name(ctl: PowerController) -> Optional[str]:
    """The nvpmodel mode now in force (``nvpmodel -q``, read-only); None off a Jetson."""
    if not ctl.is_jetson:
        return None
    mode = detect.query_power_mode(ctl.mode_table())
    return mode.get("name") if mode else None


@contextlib.contextmanager
def platform_session(power_config: Any, metrics: Metrics, dry_run: bool = False,
                     period_s: float = 1.0,
                     controller: Optional[PowerController] = None) -> Iterator[PlatformSession]:
    """Apply ``power:``, sample telemetry every ``period_s``, restore on the way out."""
    ctl = controller or PowerController()
    with power_session(power_config, dry_run=dry_run, controller=ctl) as notes:
        sampler = Sampler(metrics, period_s=period_s, reader=make_reader(ctl.root),
                          power_mode=current_mode_name(ctl))
        with sampler:
            yield PlatformSession(notes, sampler)


__all__ = ["PlatformSession", "platform_session", "current_mode_name"]
