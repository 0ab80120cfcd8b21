#!/usr/bin/env bash
# Build the edgert wheel and aarch64 JetPack container images on an x86 machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
TAG="edgert"
JETPACK="all"
OUTPUT="--load"
WHEEL_ONLY=0
DRY_RUN=0

usage() {
    cat <<USAGE
Usage: scripts/cross-build.sh [--jetpack 5|6|all] [--tag NAME] [--push] [--wheel-only]
                              [--dry-run] [--help]

Builds dist/edgert-*.whl, then one linux/arm64 image per JetPack release with
docker buildx and QEMU (docker/Dockerfile.l4t):
  JetPack 5 / L4T r35 -> NAME:r35 (base nvcr.io/nvidia/l4t-jetpack:r35.4.1)
  JetPack 6 / L4T r36 -> NAME:r36 (base nvcr.io/nvidia/l4t-jetpack:r36.3.0)

  --jetpack V    5, 6 or all (default all)
  --tag NAME     image name (default edgert)
  --push         push to the registry in NAME instead of loading into docker
  --wheel-only   build the wheel and stop
  --dry-run      print the commands instead of running them
  --help         show this help
Environment: PYTHON (default python3) builds the wheel.
TensorRT engines are never built here: they are device specific and are built
on the Jetson by 'edgert build' (install.sh and the systemd unit run it).
USAGE
}

die() { echo "cross-build.sh: $*" >&2; exit 1; }

run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --jetpack) [ $# -ge 2 ] || die "--jetpack needs 5, 6 or all"; JETPACK="$2"; shift 2 ;;
        --tag) [ $# -ge 2 ] || die "--tag needs a name"; TAG="$2"; shift 2 ;;
        --push) OUTPUT="--push"; shift ;;
        --wheel-only) WHEEL_ONLY=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
done

case "$JETPACK" in
    5) releases=("r35 nvcr.io/nvidia/l4t-jetpack:r35.4.1") ;;
    6) releases=("r36 nvcr.io/nvidia/l4t-jetpack:r36.3.0") ;;
    all) releases=("r35 nvcr.io/nvidia/l4t-jetpack:r35.4.1"
                   "r36 nvcr.io/nvidia/l4t-jetpack:r36.3.0") ;;
    *) die "--jetpack: '$JETPACK' is not 5, 6 or all" ;;
esac

echo "==> wheel"
run rm -rf "$ROOT/dist"
run "$PYTHON" -m pip wheel --no-deps -q -w "$ROOT/dist" "$ROOT"
[ "$WHEEL_ONLY" = 1 ] && exit 0

if [ "$DRY_RUN" = 0 ]; then
    command -v docker >/dev/null 2>&1 || die "docker not found (needed for the images)"
    docker buildx version >/dev/null 2>&1 || die "docker buildx not available"
fi
if [ "$DRY_RUN" = 1 ] || [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    echo "==> QEMU for arm64 (binfmt_misc)"
    run docker run --privileged --rm tonistiigi/binfmt --install arm64
fi

for rel in "${releases[@]}"; do
    l4t="${rel%% *}"
    base="${rel#* }"
    echo "==> $TAG:$l4t from $base"
    run docker buildx build --platform linux/arm64 \
        --build-arg "L4T_BASE=$base" \
        -f "$ROOT/docker/Dockerfile.l4t" -t "$TAG:$l4t" "$OUTPUT" "$ROOT"
done
