"""``edgert doctor``: checks with fixes (TensorRT in the venv, OpenCV/GStreamer, power mode)."""
from __future__ import annotations

import argparse
import sys

ORDER = 56


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check this machine and say how to fix what is wrong",
                       description=__doc__)
    p.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from edgert.platform import tools
    from edgert.platform.detect import detect
    from edgert.platform.doctor import FAIL, run_checks
    from edgert.platform.power import PowerController

    root = tools.sysroot()
    info = detect(root)
    ctl = PowerController(root)
    checks = run_checks(info, root, ctl.mode_table(), list(ctl.pending()))
    for c in checks:
        sys.stdout.write(c.render() + "\n")
    return 1 if any(c.status == FAIL for c in checks) else 0
