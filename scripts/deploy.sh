#!/usr/bin/env bash
# Copy an edgert bundle to a Jetson over ssh, install it, start the service, show its status.
set -euo pipefail

REMOTE_DIR="edgert-bundles"
VENV=""
NAME=""
INSTALL_ARGS=()
SSH_OPTS=()
DRY_RUN=0

usage() {
    cat <<USAGE
Usage: scripts/deploy.sh [options] HOST BUNDLE.tar.gz

Copies BUNDLE (made by 'edgert bundle PIPELINE -o BUNDLE.tar.gz') to HOST
(user@host, as for ssh) with rsync or scp, unpacks it, runs its install.sh
with sudo (venv, wheel, edgert doctor, edgert build, systemd unit), enables
and starts the service and prints its status and last log lines.

  --remote-dir DIR  where bundles are unpacked on HOST (default ~/edgert-bundles)
  --venv DIR        absolute venv folder on HOST (default: venv/ inside the unpacked bundle)
  --name UNIT       systemd unit name (default: edgert-<bundle name>)
  --user USER       user the service runs as (default: install.sh's choice)
  --skip-build      do not build engines during install (the service builds them)
  -o OPTION         extra ssh option, e.g. -o Port=2222 (repeatable)
  --dry-run         print the commands instead of running them
  --help            show this help
USAGE
}

die() { echo "deploy.sh: $*" >&2; exit 1; }

run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

positional=()
while [ $# -gt 0 ]; do
    case "$1" in
        --remote-dir) [ $# -ge 2 ] || die "--remote-dir needs a folder"; REMOTE_DIR="$2"; shift 2 ;;
        --venv) [ $# -ge 2 ] || die "--venv needs a folder"; VENV="$2"; shift 2 ;;
        --name) [ $# -ge 2 ] || die "--name needs a unit name"; NAME="$2"; shift 2 ;;
        --user) [ $# -ge 2 ] || die "--user needs a user"; INSTALL_ARGS+=(--user "$2"); shift 2 ;;
        --skip-build) INSTALL_ARGS+=(--skip-build); shift ;;
        -o) [ $# -ge 2 ] || die "-o needs an ssh option"; SSH_OPTS+=(-o "$2"); shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option '$1'" ;;
        *) positional+=("$1"); shift ;;
    esac
done
[ "${#positional[@]}" -eq 2 ] || { usage >&2; die "need HOST and BUNDLE.tar.gz"; }
HOST="${positional[0]}"
BUNDLE="${positional[1]}"
[ -f "$BUNDLE" ] || die "$BUNDLE: no such file"
case "$BUNDLE" in
    *.tar.gz) BASE="$(basename "$BUNDLE" .tar.gz)" ;;
    *.tgz) BASE="$(basename "$BUNDLE" .tgz)" ;;
    *) die "$BUNDLE: expected a .tar.gz made by 'edgert bundle'" ;;
esac
# the bundle's top folder, as 'edgert bundle' names it
TOP="$(tar tzf "$BUNDLE" | awk -F/ 'NR == 1 { print $1 }')"
[ -n "$TOP" ] || die "$BUNDLE: empty archive"
if [ -z "$NAME" ]; then
    NAME="edgert-$(printf '%s' "$BASE" | tr -c 'A-Za-z0-9_.-' '-')"
fi
[ -z "$VENV" ] || INSTALL_ARGS+=(--venv "$VENV")

remote() {
    run ssh ${SSH_OPTS[@]+"${SSH_OPTS[@]}"} "$HOST" "$@"
}

echo "==> copying $BUNDLE to $HOST:$REMOTE_DIR/"
remote mkdir -p "$REMOTE_DIR"
if command -v rsync >/dev/null 2>&1; then
    run rsync -t --partial -e "ssh ${SSH_OPTS[*]}" "$BUNDLE" "$HOST:$REMOTE_DIR/"
else
    run scp ${SSH_OPTS[@]+"${SSH_OPTS[@]}"} "$BUNDLE" "$HOST:$REMOTE_DIR/"
fi

echo "==> installing on $HOST"
quoted_args=""
for a in ${INSTALL_ARGS[@]+"${INSTALL_ARGS[@]}"} --name "$NAME"; do
    quoted_args+=" $(printf '%q' "$a")"
done
remote "set -e; cd $(printf '%q' "$REMOTE_DIR") && rm -rf $(printf '%q' "$TOP") \
    && tar xzf $(printf '%q' "$(basename "$BUNDLE")") && sudo ./$(printf '%q' "$TOP")/install.sh$quoted_args"

echo "==> starting $NAME"
remote sudo systemctl enable --now "$NAME.service"
# a notify service is 'active' only after READY=1 (first frame processed)
remote "sleep 5; systemctl status --no-pager $(printf '%q' "$NAME.service") || true; \
    journalctl -u $(printf '%q' "$NAME.service") -n 20 --no-pager || true"
