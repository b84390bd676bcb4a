#!/bin/sh
# Safekeeper ingest benchmark: pushes WAL through START_WAL_PUSH in 128 kB
# appends (fsync on) and compares with plain pwrite+fdatasync of the same
# sizes on the same disk, in the same run. Prints both and the ratio.
#
#   bench/safekeeper_ingest.sh [--smoke] [--dir DIR] [--bytes N] [--zero-fill-segments]
#
# --smoke: 32 MB, a few seconds. Default: 512 MB. DIR (default: a new
# directory under /tmp) must be on the disk to measure.
set -eu
cd "$(dirname "$0")/.."
BYTES=$((512 * 1024 * 1024))
DIR=""
SKFLAGS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) BYTES=$((32 * 1024 * 1024)) ;;
        --dir) DIR="$2"; shift ;;
        --bytes) BYTES="$2"; shift ;;
        --zero-fill-segments) SKFLAGS="--zero-fill-segments" ;;
        *) echo "usage: $0 [--smoke] [--dir DIR] [--bytes N] [--zero-fill-segments]" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$DIR" ] || DIR=$(mktemp -d /tmp/sk_bench.XXXXXX)
mkdir -p "$DIR"
# Binaries: from the test workspace (WP_BIN_DIR, set by scripts/run-tests) or
# from this checkout's build (built by `make` when missing).
if [ -n "${WP_BIN_DIR:-}" ]; then
    SAFEKEEPER=$WP_BIN_DIR/safekeeper
    CLIENT=$WP_BIN_DIR/safekeeper_ingest
else
    make -s build/safekeeper build/bench/safekeeper_ingest >/dev/null
    SAFEKEEPER=build/safekeeper
    CLIENT=build/bench/safekeeper_ingest
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$SAFEKEEPER" -D "$DIR/sk" --id 1 --listen-pg 127.0.0.1:$PORT --listen-http 127.0.0.1:$HPORT \
    --log-level warn $SKFLAGS >"$DIR/safekeeper.log" 2>&1 &
SK_PID=$!
trap 'kill $SK_PID 2>/dev/null || true; wait $SK_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT)).close()" 2>/dev/null && break
    sleep 0.05
done
echo "disk: $(df -h "$DIR" | awk 'NR==2 {print $1, $6}')  fs: $(stat -f -c %T "$DIR")"
"$CLIENT" --port "$PORT" --bytes "$BYTES" --baseline-dir "$DIR"
