"""``edgert power show|set|restore``: the Jetson's power mode and clocks, by hand.

``set`` changes settings until ``restore`` (or until edgert restores them
after a crash); ``edgert run`` applies a pipeline's ``power:`` section for the
run only.  ``--dry-run`` prints the exact commands and changes nothing; on a
machine that is not a Jetson it shows them for a built-in board (``--board``).
"""
from __future__ import annotations

import argparse
import json
import sys

ORDER = 60


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("power", help="show, set or restore the Jetson power mode and clocks",
                       description=__doc__)
    psub = p.add_subparsers(dest="power_command", metavar="ACTION")
    show = psub.add_parser("show", help="current mode, the board's modes, pending restores")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_show)
    st = psub.add_parser("set", help="set the power mode and/or lock clocks (root)")
    st.add_argument("--nvpmodel", metavar="MODE", help="mode id or name from the board's table")
    st.add_argument("--jetson-clocks", action="store_true",
                    help="pin clocks at the mode's maximum (jetson_clocks, after --store)")
    st.add_argument("--nvidia-smi-clocks", metavar="MEM,GRAPHICS",
                    help="discrete GPU only: application clocks in MHz (nvidia-smi -ac)")
    st.add_argument("--gpu", type=int, default=0, help="discrete GPU index for --nvidia-smi-clocks")
    st.add_argument("--dry-run", action="store_true", help="print the commands, change nothing")
    st.add_argument("--board", help="with --dry-run off a Jetson: the board to show commands for")
    st.set_defaults(func=_set)
    rs = psub.add_parser("restore", help="undo what edgert changed (also used by ExecStopPost)")
    rs.add_argument("--force", action="store_true",
                    help="restore even though the edgert process that changed them still runs")
    rs.set_defaults(func=_restore)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _set(args: argparse.Namespace) -> int:
    from edgert.errors import UsageError
    from edgert.platform.power import PowerController, PowerRequest, parse_smi_clocks
    from edgert.platform.power_state import MANUAL

    req = PowerRequest(nvpmodel=args.nvpmodel, jetson_clocks=args.jetson_clocks,
                       nvidia_smi_clocks=parse_smi_clocks(args.nvidia_smi_clocks)
                       if args.nvidia_smi_clocks else None, gpu_index=args.gpu)
    if req.empty():
        raise UsageError("nothing to set: give --nvpmodel MODE, --jetson-clocks or "
                         "--nvidia-smi-clocks MEM,GRAPHICS")
    ctl = PowerController()
    if args.dry_run:
        sys.stdout.write(ctl.plan(req, MANUAL, board=args.board).render() + "\n")
        return 0
    for note in ctl.apply(req, MANUAL):
        sys.stdout.write(note + "\n")
    sys.stdout.write("'edgert power restore' undoes this\n")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from edgert.platform.power import PowerController

    done = PowerController().restore(force=args.force)
    sys.stdout.write(("\n".join(done) if done else "nothing to restore") + "\n")
    return 0


def _show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from edgert.platform import detect, nvpmodel
    from edgert.platform.power import PowerController

    ctl = PowerController()
    table = ctl.mode_table()
    current = detect.query_power_mode(table) if ctl.is_jetson else None
    data = {
        "is_jetson": ctl.is_jetson,
        "board": ctl.board_name() if ctl.is_jetson else None,
        "current_mode": current,
        "modes": [asdict(m) for m in table.modes] if table else [],
        "default_mode": table.default_id if table else None,
        "pending_restore": [asdict(s) for s in ctl.pending()],
    }
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    if not ctl.is_jetson:
        sys.stdout.write("not a Jetson: no nvpmodel modes (built-in tables for --dry-run: %s)\n"
                         % ", ".join(nvpmodel.builtin_boards()))
    else:
        sys.stdout.write("%s\n" % data["board"])
        cur_id = (current or {}).get("id")
        for m in table.modes if table else []:
            mark = "*" if m.id == cur_id else " "
            dflt = " (default)" if m.id == data["default_mode"] else ""
            sys.stdout.write(" %s %s%s\n" % (mark, m.label(), dflt))
    for s in ctl.pending():
        sys.stdout.write("restore pending (%s, pid %d): run 'edgert power restore'\n"
                         % (s.kind, s.pid))
    return 0
