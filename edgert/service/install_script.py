"""The ``install.sh`` every bundle carries (kept here, as text, so it ships in the wheel).

``@PIPELINE@`` is replaced by the bundled pipeline's file name.  The script is
checked by shellcheck in tests (tests/service/test_bundle.py).
"""
from __future__ import annotations

INSTALL_SH = r"""#!/usr/bin/env bash
# Install an edgert bundle on this machine (a Jetson, or any Linux box for testing).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PIPELINE="$HERE/@PIPELINE@"
VENV="$HERE/venv"
PYTHON="${PYTHON:-python3}"
SKIP_BUILD=0
SERVICE=1
NO_DEPS=0
EXTRAS=""
SERVICE_ARGS=()

usage() {
    cat <<EOF
Usage: install.sh [--venv DIR] [--skip-build] [--no-service] [--no-deps]
                  [--extras LIST] [--name UNIT] [--user USER] [--help]

Installs the edgert wheel of this bundle into a virtual environment created
with --system-site-packages (so JetPack's TensorRT, OpenCV and GStreamer stay
visible), checks every file against SHA256SUMS, runs 'edgert doctor' and
'edgert build' (TensorRT engines are built here, on the device), validates
the pipeline, and installs the systemd service (root needed).

  --venv DIR      virtual environment to create or reuse (default: $HERE/venv)
  --skip-build    do not build engines now (the service builds them on first start)
  --no-service    do not install the systemd service
  --no-deps       install the wheel without its dependencies (the interpreter
                  already has numpy, pyyaml, pydantic); fully offline
  --extras LIST   wheel extras to install, e.g. ort,metrics
  --name UNIT     systemd unit name (default: edgert-<pipeline name>)
  --user USER     user the service runs as
  --help          show this help
Environment: PYTHON=python3.8 chooses the interpreter for the venv.
EOF
}

die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --venv) [ $# -ge 2 ] || die "--venv needs a folder"; VENV="$2"; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --no-service) SERVICE=0; shift ;;
        --no-deps) NO_DEPS=1; shift ;;
        --extras) [ $# -ge 2 ] || die "--extras needs a list"; EXTRAS="$2"; shift 2 ;;
        --name|--user) [ $# -ge 2 ] || die "$1 needs a value"; SERVICE_ARGS+=("$1" "$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
done

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set PYTHON=...)"
if [ "$SERVICE" = 1 ] && [ "$(id -u)" != 0 ]; then
    die "installing the service needs root: run with sudo, or pass --no-service"
fi

echo "==> checking files against SHA256SUMS"
(cd "$HERE" && sha256sum --quiet --strict -c SHA256SUMS) || die "bundle is corrupt"

shopt -s nullglob
wheels=("$HERE"/wheels/edgert-*.whl)
[ "${#wheels[@]}" -eq 1 ] || die "expected one edgert wheel in $HERE/wheels"
WHEEL="${wheels[0]}"

mkdir -p "$VENV"
VENV="$(cd "$VENV" && pwd)"  # absolute: the systemd unit runs $VENV/bin/python
echo "==> virtual environment $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv --system-site-packages "$VENV"
fi
target="$WHEEL"
[ -z "$EXTRAS" ] || target="${WHEEL}[${EXTRAS}]"
if [ "$NO_DEPS" = 1 ]; then
    "$VENV/bin/python" -m pip install -q --no-index --no-deps --force-reinstall "$target"
else
    # the wheel comes from this bundle; only missing dependencies come from the registry
    "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$WHEEL"
    "$VENV/bin/python" -m pip install -q "$target"
fi
EDGERT=("$VENV/bin/python" -m edgert)

if "${EDGERT[@]}" doctor --help >/dev/null 2>&1; then
    echo "==> edgert doctor"
    "${EDGERT[@]}" doctor || echo "install.sh: doctor reported problems (see above)" >&2
fi
if [ "$SERVICE" = 1 ]; then
    # build into the folders the unit uses (EDGERT_CACHE_DIR there): no rebuild at first start
    export EDGERT_CACHE_DIR=/var/cache/edgert/engines
    export EDGERT_KERNEL_CACHE=/var/cache/edgert/kernels
fi
if [ "$SKIP_BUILD" = 0 ]; then
    if "${EDGERT[@]}" build --help >/dev/null 2>&1; then
        echo "==> edgert build (TensorRT engines for this device)"
        "${EDGERT[@]}" build "$PIPELINE"
    else
        echo "install.sh: this edgert has no 'build' command; engines are built at first run" >&2
    fi
fi
echo "==> edgert validate"
"${EDGERT[@]}" validate "$PIPELINE"
if [ "$SERVICE" = 1 ]; then
    echo "==> edgert service install"
    "${EDGERT[@]}" service install "$PIPELINE" ${SERVICE_ARGS[@]+"${SERVICE_ARGS[@]}"}
fi
echo "==> done: $VENV/bin/edgert run $PIPELINE"
"""
