#!/usr/bin/env bash
# Many timelines on one safekeeper (targets in docs/benchmarks.md, "Scale of
# timelines"):
#
#   bench/many_timelines.sh [--smoke] [--timelines N] [--busy K] [--seconds S]
#                           [--open-files N] [--dir DIR]
#
# 1. Starts a safekeeper with an open-file limit of 1024 (soft and hard: the
#    daemon cannot raise it; --open-files changes it, e.g. to compare with a
#    build that needs more) and creates N timelines (default 10,000) as a
#    proposer does, each with 5 kB of WAL, 8 connections at a time; every
#    creation must succeed.
# 2. Measures its resident memory (VmRSS) and the disk the timelines hold
#    (du of the data directory).
# 3. Restarts it and measures how long until GET /v1/status answers, with
#    every timeline loaded.
# 4. Streams to K more timelines at once (default 10), one append of 400
#    bytes in flight each (a single-client commit), for S seconds (default
#    15), and the same on a second, empty safekeeper with only those K:
#    the append latencies are compared.
# Prints one table with the targets. --smoke: 300 timelines, 3 busy, 3 s.
# DIR (default: a new directory under /tmp) must be on the disk to measure.
# Needs no PostgreSQL; runs as the invoking user.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [[ -z ${WP_BIN_DIR:-} ]]; then
  make -s -C "$HERE/.." build/safekeeper build/bench/many_timelines >/dev/null
  WP_BIN_DIR=$HERE/../build
fi
source "$HERE/lib.sh"
SAFEKEEPER=$WP_BIN_DIR/safekeeper
CLIENT=$WP_BIN_DIR/many_timelines
[[ -x $CLIENT ]] || CLIENT=$WP_BIN_DIR/bench/many_timelines

TIMELINES=10000
BUSY=10
SECONDS_BUSY=15
OPEN_FILES=1024
DIR=""
usage() {
  echo "usage: $0 [--smoke] [--timelines N] [--busy K] [--seconds S] [--open-files N] [--dir DIR]" >&2
  exit 2
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) TIMELINES=300; BUSY=3; SECONDS_BUSY=3 ;;
    --timelines) TIMELINES="${2:?}"; shift ;;
    --busy) BUSY="${2:?}"; shift ;;
    --seconds) SECONDS_BUSY="${2:?}"; shift ;;
    --open-files) OPEN_FILES="${2:?}"; shift ;;
    --dir) DIR="${2:?}"; shift ;;
    *) usage ;;
  esac
  shift
done
[[ -x $SAFEKEEPER ]] || { echo "bench: safekeeper not found at $SAFEKEEPER" >&2; exit 1; }
[[ -x $CLIENT ]] || { echo "bench: many_timelines client not found at $CLIENT" >&2; exit 1; }
[[ -n $DIR ]] || DIR=$(mktemp -d /tmp/sk_many.XXXXXX)
mkdir -p "$DIR"

SK_PID=""
stop_safekeeper() {
  [[ -n $SK_PID ]] || return 0
  kill -TERM "$SK_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while kill -0 "$SK_PID" 2>/dev/null; do
    ((SECONDS < deadline)) || { kill -KILL "$SK_PID" 2>/dev/null || true; break; }
    sleep 0.05
  done
  wait "$SK_PID" 2>/dev/null || true
  SK_PID=""
}
trap 'stop_safekeeper; rm -rf "$DIR/a" "$DIR/b"' EXIT

# start_safekeeper DATA_DIR: a safekeeper limited to OPEN_FILES open files on
# PORT/HPORT (chosen once per data directory), in the background.
start_safekeeper() {
  local data=$1
  (ulimit -n "$OPEN_FILES" && exec "$SAFEKEEPER" -D "$data" --id 1 --auth trust --listen-pg "127.0.0.1:$PORT" \
    --listen-http "127.0.0.1:$HPORT" --log-level warn ${WP_SK_FLAGS:-}) >>"$data.log" 2>&1 &
  SK_PID=$!
}
status_answers() { curl -sf -m 2 "http://127.0.0.1:$HPORT/v1/status" >"$DIR/status.json" 2>/dev/null; }
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$SK_PID/status"; }
nofile_limit() { awk '/^Max open files/ {print $4}' "/proc/$SK_PID/limits"; }

echo "disk: $(df -h "$DIR" | awk 'NR==2 {print $1, $6}')  fs: $(stat -f -c %T "$DIR")  cores: $(nproc)"

# 1-2. Create N idle timelines.
free_port PORT
free_port HPORT
start_safekeeper "$DIR/a"
wait_for 30 status_answers || { echo "bench: safekeeper did not start" >&2; cat "$DIR/a.log" >&2; exit 1; }
LIMIT=$(nofile_limit)
"$CLIENT" create --port "$PORT" --first 0 --count "$TIMELINES" --threads 8 --wal-bytes 5000 | tee "$DIR/create.out"
CREATED=$(awk '/^result: created / {print $3}' "$DIR/create.out")
FAILED=$(awk '/^result: create_failed / {print $3}' "$DIR/create.out")
RSS_IDLE=$(rss_mb)
sync
DISK_MB=$(du -sk "$DIR/a" | awk '{printf "%.0f", $1 / 1024}')
APPARENT_MB=$(du -sk --apparent-size "$DIR/a" | awk '{printf "%.0f", $1 / 1024}')

# 3. Restart: time until /v1/status answers, and check every timeline is there.
stop_safekeeper
T0=$(date +%s.%N)
start_safekeeper "$DIR/a"
wait_for 120 status_answers || { echo "bench: safekeeper did not come back" >&2; tail "$DIR/a.log" >&2; exit 1; }
READY_S=$(echo "$(date +%s.%N) - $T0" | bc -l)
LOADED=$(grep -o '"timelines":[0-9]*' "$DIR/status.json" | cut -d: -f2)
RSS_RESTARTED=$(rss_mb)

# 4. Busy timelines next to the idle ones, then alone on an empty safekeeper.
"$CLIENT" latency --port "$PORT" --first "$TIMELINES" --count "$BUSY" --seconds "$SECONDS_BUSY" | tee "$DIR/busy_many.out"
RSS_BUSY=$(rss_mb)
stop_safekeeper
free_port PORT
free_port HPORT
start_safekeeper "$DIR/b"
wait_for 30 status_answers || { echo "bench: second safekeeper did not start" >&2; exit 1; }
"$CLIENT" latency --port "$PORT" --first 0 --count "$BUSY" --seconds "$SECONDS_BUSY" | tee "$DIR/busy_few.out"
stop_safekeeper

lat() { awk -v k="result: latency_$2" 'index($0, k " ") == 1 {print $3}' "$1"; }
MANY_MEAN=$(lat "$DIR/busy_many.out" mean_ms)
FEW_MEAN=$(lat "$DIR/busy_few.out" mean_ms)
MANY_P50=$(lat "$DIR/busy_many.out" p50_ms)
FEW_P50=$(lat "$DIR/busy_few.out" p50_ms)
RATIO=$(echo "$MANY_MEAN / $FEW_MEAN" | bc -l)

verdict() { if [[ $(echo "$1" | bc -l) -eq 1 ]]; then echo met; else echo MISSED; fi; }
echo
echo "$TIMELINES idle timelines (5 kB of WAL each) + $BUSY busy, open-file limit $LIMIT"
printf '%-52s %12s %10s %s\n' "measure" "value" "target" "verdict"
printf '%-52s %12s %10s %s\n' "timelines created (failed)" "$CREATED ($FAILED)" "all" \
  "$([[ $FAILED == 0 && $CREATED == "$TIMELINES" ]] && echo met || echo MISSED)"
printf '%-52s %12s %10s %s\n' "resident memory, MB (after creation)" "$RSS_IDLE" "< 100" "$(verdict "$RSS_IDLE < 100")"
printf '%-52s %12s %10s %s\n' "resident memory, MB (restarted, then busy)" "$RSS_RESTARTED / $RSS_BUSY" "< 100" \
  "$(verdict "$RSS_BUSY < 100")"
printf '%-52s %12s %10s %s\n' "disk held, MB (apparent size $APPARENT_MB MB)" "$DISK_MB" "< 2048" "$(verdict "$DISK_MB < 2048")"
printf '%-52s %12.2f %10s %s\n' "ready after restart, s ($LOADED timelines loaded)" "$READY_S" "< 5" \
  "$([[ $LOADED == "$TIMELINES" ]] && verdict "$READY_S < 5" || echo MISSED)"
printf '%-52s %12s %10s\n' "busy append latency, mean ms: many / alone" "$MANY_MEAN / $FEW_MEAN" ""
printf '%-52s %12s %10s\n' "busy append latency, p50 ms: many / alone" "$MANY_P50 / $FEW_P50" ""
printf '%-52s %12.3f %10s %s\n' "busy latency ratio (mean, many / alone)" "$RATIO" "<= 1.10" "$(verdict "$RATIO <= 1.10")"
[[ $FAILED == 0 && $LOADED == "$TIMELINES" ]]
