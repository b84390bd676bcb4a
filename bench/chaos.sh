#!/usr/bin/env bash
# Long chaos runs: N fault schedules on the real cluster (test/chaos/chaos.pl
# through `scripts/run-tests chaos`), then a summary table of the fault kinds
# injected, the acknowledged transactions checked and the failures.
#
#   bench/chaos.sh [--schedules N] [--seconds S] [--seed SEED] [--smoke]
#
# Needs root (nftables rules and a tmpfs, prepared by scripts/run-tests;
# PostgreSQL itself runs as the `postgres` user). Default: 200 schedules of
# 10 s of faults each. --smoke: 1 schedule (the test run's chaos layer runs
# the real smoke; the bench layer skips this script). Results go to
# docs/reliability.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SCHEDULES=200
SECONDS_PER=10
SEED=$(( $(date +%s) % 1000000 ))
while [[ $# -gt 0 ]]; do
  case $1 in
    --schedules) SCHEDULES=$2; shift ;;
    --seconds) SECONDS_PER=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --smoke) SCHEDULES=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/chaos.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $SCHEDULES =~ ^[1-9][0-9]*$ ]] || { echo "bench/chaos.sh: --schedules must be a positive integer" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "bench/chaos.sh: run as root (nftables, tmpfs); PostgreSQL runs as postgres" >&2; exit 2; }

LOG=$(mktemp /tmp/wp-chaos.XXXXXX.log)
echo "bench/chaos.sh: $SCHEDULES schedules of ${SECONDS_PER}s, first seed $SEED (log $LOG)"
start=$(date +%s)
set +e
WP_CHAOS_SCHEDULES=$SCHEDULES WP_CHAOS_SECONDS=$SECONDS_PER WP_CHAOS_SEED=$SEED \
  WP_LIMIT_CHAOS=$(( SCHEDULES * (SECONDS_PER + 60) + 300 )) PROVE_FLAGS=-v \
  "$HERE/../scripts/run-tests" chaos >"$LOG" 2>&1
rc=$?
set -e
elapsed=$(( $(date +%s) - start ))

acked=$(sed -nE 's/.*all ([0-9]+) acknowledged transactions are on the primary.*/\1/p' "$LOG" | awk '{s+=$1} END {print s+0}')
failed=$(grep -cE '^not ok' "$LOG" || true)
ran=$(grep -cE 'the primary confirms commits after healing' "$LOG" || true)
kinds=$(grep -m1 -E '^# fault kinds:' "$LOG" | sed 's/^# fault kinds: //')
echo
echo "| schedules | first seed | fault time per schedule | wall time | acknowledged transactions checked | failed checks |"
echo "|---|---|---|---|---|---|"
echo "| $ran of $SCHEDULES | $SEED | ${SECONDS_PER} s | ${elapsed} s | $acked | $failed |"
echo
echo "faults injected: ${kinds:-none recorded}"
grep -E '^not ok' "$LOG" | head -20 || true
grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOG" | tail -1
exit $rc
