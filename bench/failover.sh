#!/usr/bin/env bash
# Failover time under load, on a local cluster (scripts/walproposer-cluster) (3 safekeepers, two
# PostgreSQL nodes). Each round: pgbench commits on the primary (a script
# that inserts (round, client, n) rows, n counting each client's
# transactions); every process of the primary is killed with SIGKILL;
# `walproposer-cluster failover` (pg_walproposer_sync, catch-up, pg_ctl promote, first
# confirmed COMMIT); the acknowledged transactions are checked on the new
# primary; `walproposer-cluster rejoin` makes the old primary the standby. Prints, per round
# and as median and max, the time from the decision (the start of `walproposer-cluster
# failover`) to the first confirmed COMMIT on the new primary (when `walproposer-cluster
# failover` returns), and the acknowledged transactions lost (must be 0;
# counted from pgbench's per-transaction log, client side).
#
#   bench/failover.sh [--patroni] [--smoke] [--rounds N] [--clients N] [--load SEC] [--dir DIR]
#
# Default: 20 rounds, 4 clients, 3 s of load before each kill. --smoke: 2
# rounds, 2 clients, 1 s (used by the test run). Target: median < 5 s, 0 lost.
#
# --patroni: the cluster runs under Patroni and etcd (walproposer-cluster
# init --ha patroni). Each round kills the leader's Patroni and every process
# of its PostgreSQL with SIGKILL; Patroni alone promotes the replica (through
# walproposer-patroni pre-promote); the time is from the kill to the first
# COMMIT the new leader confirms, and the target is Patroni's own detection
# time (ttl, printed) + 5 s. The killed node's Patroni is then started again
# and the round ends when it streams as a replica of the new leader.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
bench_reexec_unprivileged "$0" "$@"

ROUNDS=20
CLIENTS=4
LOAD=3
DIR=""
SMOKE=0
PATRONI=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --smoke) SMOKE=1 ROUNDS=2 CLIENTS=2 LOAD=1 ;;
    --patroni) PATRONI=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --load) LOAD=$2; shift ;;
    --dir) DIR=$2; shift ;;
    -h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--patroni] [--smoke] [--rounds N] [--clients N] [--load SEC] [--dir DIR]" >&2; exit 2 ;;
  esac
  shift
done
bench_check_installed
CLUSTER_TOOL=$HERE/../scripts/walproposer-cluster
[[ -x $CLUSTER_TOOL ]] || CLUSTER_TOOL=$BINDIR/walproposer-cluster
[[ -x $CLUSTER_TOOL ]] || { echo "bench: walproposer-cluster not found (make install)" >&2; exit 1; }
export WP_CLUSTER_SAFEKEEPER=$SAFEKEEPER
[[ -n ${WP_BIN_DIR:-} && -x $WP_BIN_DIR/pg_walproposer_sync ]] && export WP_CLUSTER_SYNC=$WP_BIN_DIR/pg_walproposer_sync
[[ -n ${WP_BIN_DIR:-} && -x $WP_BIN_DIR/pg_walproposer_restore ]] && export WP_CLUSTER_RESTORE=$WP_BIN_DIR/pg_walproposer_restore
[[ -n $DIR ]] || DIR=$(mktemp -d /tmp/wp-failover.XXXXXX)
CLUSTER=$DIR/cluster
WORKDIR=$DIR/work
rm -rf "$CLUSTER" "$WORKDIR"
mkdir -p "$WORKDIR"
BENCH_PID=""
cleanup() {
  [[ -n $BENCH_PID ]] && kill "$BENCH_PID" 2>/dev/null
  "$CLUSTER_TOOL" destroy --dir "$CLUSTER" >/dev/null 2>&1 || true
  [[ -n ${WP_BENCH_COPY:-} ]] && rm -rf "$WP_BENCH_COPY"
  return 0
}
trap cleanup EXIT

cluster_tool() { "$CLUSTER_TOOL" "$@" --dir "$CLUSTER"; }
primary_env() { eval "$(cluster_tool env | head -1)"; }
psql_primary() { "$BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -d postgres -c "$1"; }
now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((10#$t / 1000)); }
fmt_ms() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# SIGKILL of the postmaster and every process it started, at once (each
# child is its own process group leader), as a machine crash would.
kill9_primary() {
  local data=$1 pm pids
  pm=$(head -1 "$data/postmaster.pid")
  pids="$pm $(ps -o pid= --ppid "$pm" | tr '\n' ' ')"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  local p
  for p in $pids; do
    wait_for 30 bash -c "! kill -0 $p 2>/dev/null" || { echo "bench: pid $p survived SIGKILL" >&2; return 1; }
  done
}

HA_ARGS=()
((PATRONI)) && HA_ARGS=(--ha patroni)
echo "failover under pgbench load$( ((PATRONI)) && echo ', decided by Patroni'): $ROUNDS rounds, $CLIENTS clients, ${LOAD}s of load before each kill"
bench_describe_machine "$DIR"
cluster_tool init "${HA_ARGS[@]}" >"$WORKDIR/init.log" 2>&1 || { cat "$WORKDIR/init.log" >&2; exit 1; }
cluster_tool start >"$WORKDIR/start.log" 2>&1 || { cat "$WORKDIR/start.log" >&2; exit 1; }
primary_env
psql_primary "CREATE TABLE fo_acked (round int, client int, n int, PRIMARY KEY (round, client, n))"
cat >"$WORKDIR/txn.sql" <<'SQL'
\set n :n + 1
INSERT INTO fo_acked VALUES (:round, :client_id, :n);
SQL

TIMES=()
LOST_TOTAL=0
ACKED_TOTAL=0
FAILED=0

# Acknowledged transactions of round $1 (pgbench's per-transaction log,
# client_id first; client c's rows are n = 1..K_c) against the primary of
# the moment: sets ACKED and LOST.
count_lost() {
  local r=$1 c have
  ACKED=0 LOST=0
  declare -A K=()
  if compgen -G "$WORKDIR/txn_log*" >/dev/null; then
    while read -r c k; do K[$c]=$k; done < <(cat "$WORKDIR"/txn_log* | awk '{k[$1]++} END {for (c in k) print c, k[c]}')
  fi
  for c in "${!K[@]}"; do
    have=$(psql_primary "SELECT count(*) FROM fo_acked WHERE round = $r AND client = $c AND n <= ${K[$c]}")
    ACKED=$((ACKED + K[$c]))
    LOST=$((LOST + K[$c] - have))
  done
}

start_load() { # round
  rm -f "$WORKDIR"/txn_log*
  (cd "$WORKDIR" && exec "$BINDIR/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -T 600 -f txn.sql -D round="$1" -D n=0 \
    -l --log-prefix=txn_log -h "$PGHOST" -p "$PGPORT" postgres >"$WORKDIR/pgbench.$1.log" 2>&1) &
  BENCH_PID=$!
}

end_load() {
  wait_for 60 bash -c "! kill -0 $BENCH_PID 2>/dev/null" || { echo "bench: pgbench did not end after the kill" >&2; exit 1; }
  wait "$BENCH_PID" 2>/dev/null || true
  BENCH_PID=""
}

# The last lines: median and max of TIMES, what was lost; the exit status.
summary() { # what-was-timed target
  echo
  if ((${#TIMES[@]} > 0)); then
    read -r median max < <(printf '%s\n' "${TIMES[@]}" | sort -n | awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2); print m, v[NR]}')
    echo "failovers: ${#TIMES[@]} of $ROUNDS; $1: median $(fmt_ms "$median") s, max $(fmt_ms "$max") s ($2)"
  fi
  echo "acknowledged transactions: $ACKED_TOTAL, lost: $LOST_TOTAL (must be 0)"
  ((SMOKE)) && echo "(smoke mode: the times are not meaningful)"
  ((FAILED == 0 && LOST_TOTAL == 0 && ${#TIMES[@]} == ROUNDS))
}

# Patroni mode: the node that is the primary now ('' if none).
ha_primary() { cluster_tool env 2>/dev/null | sed -nE 's/^# primary: ([a-z0-9]+) port.*/\1/p'; }
# A COMMIT on NODE that the quorum confirmed (no warning, no error).
confirmed_on() { # port
  local out
  out=$(timeout 5 "$BINDIR/psql" -XAtq -h "$CLUSTER/run" -p "$1" -d postgres -c "SELECT txid_current()" 2>&1) &&
    [[ $out =~ ^[0-9]+$ ]]
}
node_port() { sed -nE "s/^PG_PORT_$1=([0-9]+)$/\1/p" "$CLUSTER/cluster.conf"; }

if ((PATRONI)); then
  TTL=$(sed -nE 's/^    ttl: ([0-9]+)$/\1/p' "$CLUSTER/patroni/pg1.yml")
  echo "Patroni: $(sed -nE 's/^    (ttl|loop_wait|retry_timeout): ([0-9]+)$/\1 \2 s/p' "$CLUSTER/patroni/pg1.yml" | paste -sd, -); target: first confirmed COMMIT within ttl + 5 = $((TTL + 5)) s of the kill"
  for ((r = 1; r <= ROUNDS; r++)); do
    primary_env
    old=$(ha_primary)
    [[ -n $old ]] || { echo "round $r: no primary" >&2; FAILED=$((FAILED + 1)); break; }
    new=pg1
    [[ $old == pg1 ]] && new=pg2
    start_load "$r"
    sleep "$LOAD"
    kill -KILL "$(cat "$CLUSTER/run/patroni-$old.pid")" 2>/dev/null || true
    kill9_primary "$CLUSTER/$old"
    t0=$(now_ms)
    port=$(node_port "$new")
    deadline=$((SECONDS + 3 * TTL + 60))
    until confirmed_on "$port"; do
      ((SECONDS < deadline)) || break
      sleep 0.05
    done
    t=$(($(now_ms) - t0))
    end_load
    if ! confirmed_on "$port"; then
      echo "round $r: $new confirmed no COMMIT within $((3 * TTL + 60)) s of the kill (logs: $CLUSTER/logs/patroni-$new.log)"
      tail -n 20 "$CLUSTER/logs/patroni-$new.log" | sed 's/^/    /'
      FAILED=$((FAILED + 1))
      break
    fi
    TIMES+=("$t")
    primary_env
    count_lost "$r"
    ACKED_TOTAL=$((ACKED_TOTAL + ACKED))
    LOST_TOTAL=$((LOST_TOTAL + LOST))
    hook=$(grep -a 'walproposer-patroni: step 3/3' "$CLUSTER/logs/patroni-$new.log" | tail -1 | sed -nE 's/.*\(([0-9]+) s\)$/\1/p')
    t_rejoin=$(now_ms)
    cluster_tool start >"$WORKDIR/start.$r.log" 2>&1 || { echo "round $r: the restart of $old FAILED:"; sed 's/^/    /' "$WORKDIR/start.$r.log"; FAILED=$((FAILED + 1)); break; }
    printf 'round %2d: %s -> %s  first confirmed COMMIT %s s after the kill (pre_promote %s s)  acknowledged %d, lost %d  rejoin %s s\n' \
      "$r" "$old" "$new" "$(fmt_ms "$t")" "${hook:-?}" "$ACKED" "$LOST" "$(fmt_ms $(($(now_ms) - t_rejoin)))"
  done
  summary "leader killed to first confirmed COMMIT" "ttl $TTL s; target: under $((TTL + 5)) s"
  exit
fi

for ((r = 1; r <= ROUNDS; r++)); do
  primary_env
  state_primary=$(sed -n 's/^PRIMARY=//p' "$CLUSTER/cluster.state")
  start_load "$r"
  sleep "$LOAD"
  kill9_primary "$CLUSTER/$state_primary"
  t0=$(now_ms)
  if ! cluster_tool failover >"$WORKDIR/failover.$r.log" 2>&1; then
    t=$(($(now_ms) - t0))
    echo "round $r: walproposer-cluster failover FAILED after $(fmt_ms "$t") s:"
    sed 's/^/    /' "$WORKDIR/failover.$r.log"
    FAILED=$((FAILED + 1))
    break
  fi
  t=$(($(now_ms) - t0))
  TIMES+=("$t")
  end_load
  primary_env
  count_lost "$r"
  acked=$ACKED lost=$LOST
  ACKED_TOTAL=$((ACKED_TOTAL + acked))
  LOST_TOTAL=$((LOST_TOTAL + lost))
  steps=$(sed -nE 's/^walproposer-cluster: \[([0-9])\/5\]   done in ([0-9.]+) s.*/\2/p' "$WORKDIR/failover.$r.log" | paste -sd/ -)
  t_rejoin=$(now_ms)
  cluster_tool rejoin >"$WORKDIR/rejoin.$r.log" 2>&1 || { echo "round $r: walproposer-cluster rejoin FAILED:"; sed 's/^/    /' "$WORKDIR/rejoin.$r.log"; FAILED=$((FAILED + 1)); break; }
  printf 'round %2d: %s -> %s  failover %s s (steps %s)  acknowledged %d, lost %d  rejoin %s s\n' "$r" \
    "$state_primary" "$(sed -n 's/^PRIMARY=//p' "$CLUSTER/cluster.state")" "$(fmt_ms "$t")" "$steps" "$acked" "$lost" \
    "$(fmt_ms $(($(now_ms) - t_rejoin)))"
done

summary "decision to first confirmed COMMIT" "target: median < 5 s"
