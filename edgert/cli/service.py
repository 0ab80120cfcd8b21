"""``edgert service install|uninstall|status|logs``: run a pipeline as a systemd service.

``install`` validates the pipeline, then writes ``/etc/systemd/system/NAME.service``
(atomically) and reloads systemd; ``--dry-run`` prints the unit instead and
``--unit-dir`` writes elsewhere (to inspect or package it).  Enable and start
it with ``sudo systemctl enable --now NAME`` or pass ``--now``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgert.cli.common import add_pipeline_arguments

ORDER = 80


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("service", help="install/uninstall/inspect a systemd service for a pipeline",
                       description=__doc__)
    ssub = p.add_subparsers(dest="service_command", metavar="ACTION")
    ins = ssub.add_parser("install", help="validate the pipeline and write its systemd unit")
    add_pipeline_arguments(ins)
    ins.add_argument("--name", help="unit name (default: edgert-<pipeline name>)")
    ins.add_argument("--user", help="user the service runs as (default: root when the pipeline "
                                    "has a power: section, else the invoking user)")
    ins.add_argument("--unit-dir", type=Path, default=None,
                     help="folder to write the unit to (default: /etc/systemd/system)")
    ins.add_argument("--dry-run", action="store_true", help="print the unit, write nothing")
    ins.add_argument("--now", action="store_true", help="also enable and start it")
    ins.add_argument("--watchdog-sec", type=int, default=30, metavar="S",
                     help="restart when inference makes no progress for S seconds (default 30)")
    ins.add_argument("--start-timeout-sec", type=int, default=3600, metavar="S",
                     help="time allowed for engine builds and the first frame (default 3600)")
    ins.add_argument("--strict", action="store_true",
                     help="ProtectSystem=strict: only the pipeline folder, outputs, "
                          "state and cache are writable")
    ins.add_argument("--no-build", action="store_true", help="no ExecStartPre 'edgert build'")
    ins.set_defaults(func=_install)
    un = ssub.add_parser("uninstall", help="stop, disable and remove a unit")
    un.add_argument("name", metavar="NAME")
    un.add_argument("--unit-dir", type=Path, default=None)
    un.set_defaults(func=_uninstall)
    st = ssub.add_parser("status", help="systemctl status NAME")
    st.add_argument("name", metavar="NAME")
    st.set_defaults(func=_status)
    lg = ssub.add_parser("logs", help="journalctl -u NAME")
    lg.add_argument("name", metavar="NAME")
    lg.add_argument("-n", "--lines", type=int, default=100)
    lg.add_argument("-f", "--follow", action="store_true")
    lg.set_defaults(func=_logs)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _install(args: argparse.Namespace) -> int:
    from edgert.cli.common import load_pipeline_from_args
    from edgert.errors import UsageError
    from edgert.service import systemd

    for flag, value in (("--watchdog-sec", args.watchdog_sec),
                        ("--start-timeout-sec", args.start_timeout_sec)):
        if value < 1:
            raise UsageError("%s: %d is not a duration; give seconds >= 1" % (flag, value))
    cfg = load_pipeline_from_args(args)
    opt = systemd.options_for(cfg, name=args.name, user=args.user, overrides=args.overrides,
                              watchdog_sec=args.watchdog_sec,
                              start_timeout_sec=args.start_timeout_sec,
                              protect_system="strict" if args.strict else "full")
    if args.no_build:
        opt.build_engines = False
    if args.dry_run:
        sys.stdout.write(systemd.render_unit(opt))
        return 0
    unit_dir = args.unit_dir or systemd.SYSTEM_UNIT_DIR
    path = systemd.install_unit(opt, unit_dir, reload=args.unit_dir is None)
    sys.stdout.write("wrote %s\n" % path)
    if args.now:
        systemd.systemctl("enable", "--now", opt.unit_name)
        sys.stdout.write("enabled and started %s\n" % opt.unit_name)
    else:
        sys.stdout.write("start it with: sudo systemctl enable --now %s\n" % opt.unit_name)
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    from edgert.service import systemd

    path = systemd.uninstall_unit(args.name, args.unit_dir or systemd.SYSTEM_UNIT_DIR)
    sys.stdout.write("removed %s\n" % path)
    return 0


def _status(args: argparse.Namespace) -> int:
    from edgert.service import systemd

    return systemd.systemctl("status", "--no-pager", systemd.check_name(args.name) + ".service",
                             check=False)


def _logs(args: argparse.Namespace) -> int:
    from edgert.service import systemd

    return systemd.journalctl(args.name, args.lines, args.follow)
