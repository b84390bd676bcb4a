# Shared helpers of the PostgreSQL benchmarks (sourced, not run).
#
# Each benchmark compares, in one run on one disk, three setups of the same
# PostgreSQL 15 primary:
#   local   commits wait for the local fsync only
#   pgsync  PostgreSQL's own quorum commit: synchronous_standby_names =
#           'ANY 2 (r1,r2,r3)' with three `pg_receivewal --synchronous --slot`
#   wp      walproposer: synchronous_standby_names = 'walproposer' with three
#           safekeepers
# All processes run as the invoking user; started as root, the benchmark
# re-executes itself as the `postgres` user from a copy of bench/.
# WP_SK_FLAGS: extra safekeeper flags for experiments (e.g. --zero-fill-segments).
# WP_BENCH_SETUPS: the setups pgbench_quorum.sh and bulk_wal.sh run (default
# "local pgsync wp"; with fewer, they print each setup's numbers and no ratios).

bench_reexec_unprivileged() { # "$0" "$@"
  [[ $(id -u) -eq 0 ]] || return 0
  local user=${WP_TEST_USER:-postgres} self=$1
  shift
  id "$user" >/dev/null 2>&1 || { echo "bench: user $user does not exist (run scripts/setup)" >&2; exit 1; }
  local copy
  copy=$(mktemp -d /tmp/wp-bench.XXXXXX)
  cp -r "$(dirname "$self")" "$copy/bench"
  # walproposer-cluster, for the benchmarks that run a local cluster (failover.sh).
  if [[ -f $(dirname "$self")/../scripts/walproposer-cluster ]]; then
    mkdir -p "$copy/scripts"
    cp "$(dirname "$self")/../scripts/walproposer-cluster" "$copy/scripts/"
  fi
  # The Patroni template and hook, for failover.sh --patroni.
  [[ -d $(dirname "$self")/../integrations ]] && cp -r "$(dirname "$self")/../integrations" "$copy/"
  chown -R "$user" "$copy"
  cd /
  exec runuser -u "$user" -- env WP_BENCH_COPY="$copy" "$copy/bench/$(basename "$self")" "$@"
}

BINDIR=$(pg_config --bindir 2>/dev/null || true)
[[ -x $BINDIR/initdb ]] || BINDIR=/usr/lib/postgresql/15/bin
SAFEKEEPER=${WP_BIN_DIR:+$WP_BIN_DIR/safekeeper}
[[ -x ${SAFEKEEPER:-} ]] || SAFEKEEPER=$BINDIR/safekeeper

bench_check_installed() {
  [[ -x $BINDIR/initdb ]] || { echo "bench: PostgreSQL 15 not found; run scripts/setup" >&2; exit 1; }
  [[ -x $SAFEKEEPER ]] || { echo "bench: safekeeper not found at $SAFEKEEPER; run make install" >&2; exit 1; }
  [[ -f $(pg_config --pkglibdir)/walproposer.so ]] || { echo "bench: walproposer.so is not installed; run make install" >&2; exit 1; }
}

BENCH_PIDS=()
BENCH_NODES=()
bench_cleanup() {
  local d p
  for d in "${BENCH_NODES[@]}"; do
    "$BINDIR/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
  done
  for p in "${BENCH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${BENCH_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  BENCH_PIDS=()
  BENCH_NODES=()
}

CHOSEN_PORTS=" "
# free_port VAR: sets VAR to a loopback port nobody listens on and not chosen
# before in this run (no subshell, so the choice is remembered). Ports come
# from below the kernel's ephemeral range: the local end of an outgoing
# connection holds its port too, a connect probe cannot see that, and a
# server told to listen there would fail with "Address already in use".
free_port() {
  local -n chosen_port=$1
  local p tries=0 lo=20000 hi=32767 eph_lo eph_hi
  if read -r eph_lo eph_hi 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range && ((eph_lo > lo + 1000)); then
    ((eph_lo - 1 < hi)) && hi=$((eph_lo - 1))
  fi
  while ((tries < 500)); do
    p=$((lo + RANDOM % (hi - lo + 1)))
    tries=$((tries + 1))
    [[ $CHOSEN_PORTS == *" $p "* ]] && continue
    (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    CHOSEN_PORTS+="$p "
    chosen_port=$p
    return 0
  done
  echo "no free port on 127.0.0.1" >&2
  return 1
}

wait_for() { # seconds command...
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# psql to the primary: sql "SQL"
sql() { "$BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PGPORT_PRIMARY" -d postgres -c "$1"; }

lsn_to_int() { echo $(((16#${1%/*} << 32) | 16#${1#*/})); }

# bench_start_primary DIR MODE: a fresh primary configured for MODE
# (local|pgsync|wp); sets PGPORT_PRIMARY and SOCKDIR.
bench_start_primary() {
  local dir=$1 mode=$2
  SOCKDIR=$dir/run
  mkdir -p "$SOCKDIR"
  free_port PGPORT_PRIMARY
  "$BINDIR/initdb" -D "$dir/data" -U "$(id -un)" --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; return 1; }
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT_PRIMARY
unix_socket_directories = '$SOCKDIR'
shared_buffers = '512MB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
wal_level = replica
synchronous_commit = on
fsync = on
EOF
  case $mode in
    local) ;;
    pgsync) echo "synchronous_standby_names = 'ANY 2 (r1, r2, r3)'" >>"$dir/data/postgresql.conf" ;;
    wp)
      local list="" i pg http
      for i in 1 2 3; do
        free_port pg
        free_port http
        mkdir -p "$dir/sk$i"
        "$SAFEKEEPER" -D "$dir/sk$i" --id "$i" --auth trust ${WP_SK_FLAGS:-} --listen-pg "127.0.0.1:$pg" --listen-http "127.0.0.1:$http" \
          >"$dir/sk$i.log" 2>&1 &
        BENCH_PIDS+=($!)
        wait_for 10 curl -sf -o /dev/null "http://127.0.0.1:$http/v1/status" ||
          { echo "bench: safekeeper $i did not start (log $dir/sk$i.log)" >&2; return 1; }
        list+="${list:+,}127.0.0.1:$pg"
      done
      cat >>"$dir/data/postgresql.conf" <<EOF
shared_preload_libraries = 'walproposer'
synchronous_standby_names = 'walproposer'
walproposer.safekeepers = '$list'
EOF
      ;;
  esac
  "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
    { tail "$dir/postgres.log" >&2; return 1; }
  BENCH_NODES+=("$dir/data")
  case $mode in
    pgsync)
      local r
      for r in r1 r2 r3; do
        mkdir -p "$dir/$r"
        "$BINDIR/pg_receivewal" -h "$SOCKDIR" -p "$PGPORT_PRIMARY" --slot="$r" --create-slot >/dev/null 2>&1 ||
          { echo "bench: could not create slot $r" >&2; return 1; }
        # Over TCP, as the proposer reaches the safekeepers: a replica on
        # another machine has no Unix socket, and loopback TCP costs both
        # ends more CPU per message than a Unix socket does.
        "$BINDIR/pg_receivewal" -d "host=127.0.0.1 port=$PGPORT_PRIMARY application_name=$r" \
          --slot="$r" --synchronous --no-loop -D "$dir/$r" >"$dir/$r.log" 2>&1 &
        BENCH_PIDS+=($!)
      done
      wait_for 30 bash -c "[[ \$('$BINDIR/psql' -XAtq -h '$SOCKDIR' -p $PGPORT_PRIMARY -d postgres -c \"SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'\") == 3 ]]" ||
        { echo "bench: pg_receivewal did not become a quorum standby" >&2; return 1; }
      ;;
    wp)
      sql "CREATE EXTENSION walproposer" >/dev/null
      wait_for 30 bash -c "[[ \$('$BINDIR/psql' -XAtq -h '$SOCKDIR' -p $PGPORT_PRIMARY -d postgres -c 'SELECT state FROM walproposer_status') == elected ]]" ||
        { echo "bench: walproposer was not elected (log $dir/postgres.log)" >&2; return 1; }
      ;;
  esac
}

bench_describe_machine() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), disk $(df --output=source,fstype "${1:-/tmp}" | awk 'NR==2 {print $1 " (" $2 ")"}'), $(date -u '+%Y-%m-%d')"
}

# ------------------------------------------------------------ CPU accounting
# CPU time per process group, from /proc (ticks of CLK_TCK), so each
# benchmark can say what a committed transaction costs whom:
#   walsender      the primary's walsenders (setup pgsync; none in wp)
#   proposer       the walproposer background worker
#   backends       client backends, alive or exited (the postmaster's
#                  reaped-children time holds the exited ones)
#   postgres       the postmaster and its other processes (checkpointer,
#                  WAL writer, ...)
#   pg_receivewal  the three receivers (setup pgsync)
#   safekeeper     the three safekeepers, all their threads (setup wp)
#   machine        every CPU's busy time (/proc/stat), the load generator
#                  included
CLK_TCK=$(getconf CLK_TCK)

# bench_cpu_sample DATADIR: prints "GROUP TICKS" lines for the setup whose
# primary runs in DATADIR (BENCH_PIDS are its other processes).
bench_cpu_sample() {
  local pm pid line ppid ticks cmd group comm b
  pm=$(head -1 "$1/postmaster.pid")
  local -a f
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    read -r line 2>/dev/null <"/proc/$pid/stat" || continue
    read -ra f <<<"${line##*) }"
    ppid=${f[1]}
    ticks=$((f[11] + f[12]))
    if [[ $pid == "$pm" ]]; then
      echo "postgres $ticks"
      echo "backends $((f[13] + f[14]))"
    elif [[ $ppid == "$pm" ]]; then
      cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
      case $cmd in
        *walsender*) group=walsender ;;
        *walproposer*) group=proposer ;;
        *"[local]"* | *127.0.0.1*) group=backends ;;
        *) group=postgres ;;
      esac
      echo "$group $ticks"
    else
      for b in "${BENCH_PIDS[@]}"; do
        [[ $b == "$pid" ]] || continue
        comm=${line#*(}
        echo "${comm%%)*} $ticks"
      done
    fi
  done
  awk '$1 == "cpu" {print "machine", $2 + $3 + $4 + $7 + $8}' /proc/stat
}

# bench_wait_clients_gone DATADIR: waits (up to 10 s) until the primary has
# no client backend left, so that the ones a benchmark client just closed
# are reaped and counted in the postmaster's children time.
bench_wait_clients_gone() {
  local pm pid deadline=$((SECONDS + 10)) busy
  pm=$(head -1 "$1/postmaster.pid")
  while ((SECONDS < deadline)); do
    busy=0
    for pid in $(cat "/proc/$pm/task/$pm/children" 2>/dev/null); do
      case $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") in
        *"[local]"* | *127.0.0.1* | "") busy=1 ;;
      esac
    done
    ((busy)) || return 0
    sleep 0.1
  done
}

# bench_label MODE: the name of setup MODE in the benchmarks' tables.
bench_label() {
  case $1 in
    local) echo "(a) local fsync only" ;;
    pgsync) echo "(b) PostgreSQL ANY 2 of 3 pg_receivewal" ;;
    wp) echo "(c) walproposer, 3 safekeepers" ;;
  esac
}

# bench_cpu_sum ARRAY MODE FORMAT GROUP...: prints, with printf FORMAT, the
# sum of ARRAY[MODE,GROUP] (an associative array named ARRAY) over the groups.
bench_cpu_sum() {
  local -n values=$1
  local mode=$2 format=$3 g sum=0
  shift 3
  for g in "$@"; do sum=$(awk -v a="$sum" -v b="${values[$mode,$g]}" 'BEGIN {printf "%.6f", a + b}'); done
  awk -v s="$sum" -v f="$format" 'BEGIN {printf f, s}'
}

# bench_cpu_seconds BEFORE AFTER GROUP...: CPU seconds the groups used
# between two samples (files written by bench_cpu_sample).
bench_cpu_seconds() {
  local before=$1 after=$2
  shift 2
  awk -v groups=" $* " -v hz="$CLK_TCK" '
    index(groups, " " $1 " ") == 0 { next }
    FNR == NR { sum -= $2; next }
    { sum += $2 }
    END { printf "%.3f", sum / hz }' "$before" "$after"
}
