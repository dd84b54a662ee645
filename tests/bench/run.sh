#!/usr/bin/env bash
# ticketaid's benchmarks: runs every measurement of SPEC §8 against the fake Ollama
# and prints a Markdown table of the targets beside the measured values.
#
#   tests/bench/run.sh [--smoke] [--only PHASE] [--out DIR] [--build DIR]
#                      [--bench-load PATH] [--ticketaid PATH] [--fake-ollama PATH]
#                      [--fake-mongo PATH]
#
#   --smoke   every mode with tiny counts, in well under a minute: proves that the
#             tools still run (CTest's bench.smoke); targets are not judged.
#   --only    run one phase: startup (start-up and idle sockets), cached, ttft, fast,
#             or mirror (the chat path through daemons with the MongoDB mirror off,
#             on with MongoDB up, and on with MongoDB down, side by side); the report
#             shows that phase alone.
#   --out     keep each mode's JSON results in DIR (default: a temporary directory,
#             removed at the end).
#   --build   the build directory holding the binaries (default: build/ at the root).
#   --fake-mongo  the MongoDB test double of the mirror phase (default:
#             tests/support/mongo/fake_mongo.py, run with /usr/bin/python3 and its bson);
#             without it, or with a daemon built without the mirror, the phase is
#             skipped and the report says why.
#
# Each phase starts a fake Ollama with the reply shape it needs and a fresh daemon
# (tests/bench/bench.toml, port 0, a temporary database), runs bench_load against
# the fake directly and through the daemon, and stops them. Exit status: 0 when every
# target is met (smoke: every mode ran), 3 when a target is missed, 1 when a mode
# failed. Build first:
#   cmake --build build --target bench_load ticketaid fake_ollama
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build
smoke=0
only=""
out_dir=""
bench_load="" ticketaid="" fake_ollama=""
fake_mongo=$root/tests/support/mongo/fake_mongo.py

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --only) only=$2; shift ;;
    --out) out_dir=$2; shift ;;
    --build) build=$2; shift ;;
    --bench-load) bench_load=$2; shift ;;
    --ticketaid) ticketaid=$2; shift ;;
    --fake-ollama) fake_ollama=$2; shift ;;
    --fake-mongo) fake_mongo=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
bench_load=${bench_load:-$build/tests/bench/bench_load}
ticketaid=${ticketaid:-$build/src/ticketaid}
fake_ollama=${fake_ollama:-$build/tests/fake_ollama}
for bin in "$bench_load" "$ticketaid" "$fake_ollama"; do
  if [ ! -x "$bin" ]; then
    echo "run.sh: $bin is missing; build it: cmake --build build --target bench_load ticketaid fake_ollama" >&2
    exit 1
  fi
done
case "$only" in
  "" | startup | cached | ttft | fast | mirror) ;;
  *) echo "run.sh: --only takes startup, cached, ttft, fast or mirror, not $only" >&2; exit 2 ;;
esac
config=$here/bench.toml

# wants PHASE: whether this run includes PHASE (every phase unless --only).
wants() { [ -z "$only" ] || [ "$only" = "$1" ]; }

# 10,000 sockets in the daemon and as many in the load tool (which raises its own).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n "$(cat /proc/sys/fs/nr_open)" 2>/dev/null || true

work=$(mktemp -d "${TMPDIR:-/tmp}/ticketaid-bench.XXXXXX")
results=${out_dir:-$work/results}
mkdir -p "$results"
running=()  # pids of the fakes and daemons this script started

cleanup() {
  local pid
  for pid in "${running[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${running[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

say() { echo "== $*" >&2; }

# start NAME COMMAND...: runs COMMAND in the background and waits (10 s at most) for
# the "listening on http://..." line; sets started_pid and started_url.
start() {
  local name=$1
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  started_pid=$!
  running+=("$started_pid")
  started_url=""
  local i
  for ((i = 0; i < 1000; i++)); do
    started_url=$(grep -o 'listening on http://[^ ]*' "$work/$name.out" 2>/dev/null | head -n 1 |
      sed 's/^listening on //' || true)
    if [ -n "$started_url" ]; then return 0; fi
    if ! kill -0 "$started_pid" 2>/dev/null; then
      echo "run.sh: $name exited before listening:" >&2
      cat "$work/$name.err" >&2
      exit 1
    fi
    sleep 0.01
  done
  echo "run.sh: $name did not listen within 10 s" >&2
  exit 1
}

stop() {
  local pid=$1 kept=() p
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${running[@]}"; do
    if [ "$p" != "$pid" ]; then kept+=("$p"); fi
  done
  running=("${kept[@]+"${kept[@]}"}")
}

# A fake Ollama: fake NAME TOKENS DELAY_MS THREADS (sets fake_pid, fake_url).
fake() {
  start "$1" "$fake_ollama" --tokens "$2" --token-delay-ms "$3" --threads "$4"
  fake_pid=$started_pid
  fake_url=$started_url
}

# A fresh daemon on port 0 with bench.toml and its own database, asking fake_url:
# daemon NAME [VAR=VALUE...] (settings given as environment variables).
daemon() {
  local name=$1
  shift
  mkdir -p "$work/$name"
  start "$name" env "$@" "$ticketaid" serve --listen 127.0.0.1:0 --db "$work/$name/ticketaid.db" \
    --ollama-url "$fake_url" --config "$config"
  daemon_pid=$started_pid
  daemon_url=$started_url
}

# measure NAME MODE ARGS...: one bench_load mode, its JSON kept as NAME.json.
measure() {
  local name=$1
  shift
  say "$name: bench_load $*"
  if ! "$bench_load" "$@" >"$results/$name.json" 2>"$work/$name.log"; then
    echo "run.sh: bench_load $1 failed:" >&2
    cat "$work/$name.log" >&2
    rm -f "$results/$name.json"
  fi
}

if [ "$smoke" = 1 ]; then
  warm=0.2 dur=1 hold=0.2
  short_tokens=3 long_tokens=5 fast_tokens=50 cached_tokens=10
  many=4 fast_streams=2 connections=3 sockets=50 startup_runs=1 startup_settle=0.2
  mirror_streams=2 mirror_tokens=3
else
  warm=3 dur=15 hold=5
  short_tokens=5 long_tokens=100 fast_tokens=2000 cached_tokens=200
  many=200 fast_streams=64 connections=50 sockets=10000 startup_runs=10 startup_settle=1
  mirror_streams=20 mirror_tokens=20
fi

started=$(date -u '+%Y-%m-%dT%H:%M:%SZ')
start_load=$(cut -d ' ' -f 1-3 /proc/loadavg)

# --- start-up time and idle memory, then idle sockets on a fresh daemon.
if wants startup || wants cached; then
  fake idle_fake "$cached_tokens" 0 64
fi
if wants startup; then
mkdir -p "$work/startup"
measure startup_bench startup --runs "$startup_runs" --settle "$startup_settle" --log "$work/startup.err" -- \
  "$ticketaid" serve --listen 127.0.0.1:0 --db "$work/startup/bench.db" --ollama-url "$fake_url" \
  --config "$config"
measure startup_default startup --runs "$startup_runs" --settle "$startup_settle" --log "$work/startup.err" -- \
  "$ticketaid" serve --listen 127.0.0.1:0 --db "$work/startup/default.db" --ollama-url "$fake_url"
daemon idle_daemon
sleep "$hold"
measure idle idle --url "$daemon_url" --daemon-pid "$daemon_pid" --ollama-pid "$fake_pid" \
  --sockets "$sockets" --settle "$hold" --hold "$hold"
stop "$daemon_pid"
fi

# --- cached answers on open WebSockets (short answers: about 1 KB of text).
if wants cached; then
daemon cached_daemon
measure cached cached --url "$daemon_url" --connections "$connections" --warmup "$warm" \
  --duration "$dur" --daemon-pid "$daemon_pid" --ollama-pid "$fake_pid"
stop "$daemon_pid"
fi
if wants startup || wants cached; then
  stop "$fake_pid"
fi

# streams NAME STREAMS: the same clients straight to the fake, then through a daemon.
streams() {
  local name=$1 n=$2
  measure "${name}_direct" direct-ttft --ollama "$fake_url" --streams "$n" --warmup "$warm" \
    --duration "$dur" --ollama-pid "$fake_pid"
  daemon "${name}_daemon"
  measure "${name}_ticketaid" ttft --url "$daemon_url" --streams "$n" --warmup "$warm" \
    --duration "$dur" --daemon-pid "$daemon_pid" --ollama-pid "$fake_pid"
  stop "$daemon_pid"
}

# --- time to first token, 20 ms between tokens: 1 stream (short replies, for many
# samples), then 200 streams (100-token replies, 2 s each).
if wants ttft; then
fake ttft1_fake "$short_tokens" 20 64
streams ttft1 1
stop "$fake_pid"
fake ttft200_fake "$long_tokens" 20 $((many * 2 + 64))
streams ttft200 "$many"
# Diagnostic: the same with storage.synchronous = normal (no fsync per commit), to
# show how much of the added time is the durable writes on the way to the first token.
daemon ttft200_normal_daemon TICKETAID_STORAGE_SYNCHRONOUS=normal
measure ttft200_normal_ticketaid ttft --url "$daemon_url" --streams "$many" --warmup "$warm" \
  --duration "$dur" --daemon-pid "$daemon_pid" --ollama-pid "$fake_pid"
stop "$daemon_pid"
stop "$fake_pid"
fi

# --- throughput when Ollama is not the bottleneck: no delay between tokens.
if wants fast; then
fake fast_fake "$fast_tokens" 0 $((fast_streams * 2 + 64))
streams fast "$fast_streams"
stop "$fake_pid"
fi

# --- the chat path with the MongoDB mirror (docs/performance.md): the same streams
# (ttft mode, 20 ms between tokens) through four daemons at once, asking the same
# fake Ollama and measured over the same window: two without the mirror (off and
# off2: how far two identical daemons differ here is the noise floor of the
# comparison); one with the mirror and its MongoDB double up; one with the mirror
# and its own double down from before the daemon starts to its end, so that the
# outbox grows and the syncer retries the whole run. Running them side by side puts
# the other work on this shared machine on all four alike. /ready is kept at the
# end of the mirror runs.
mirror_names=(mirror_off mirror_off2 mirror_up mirror_down)
declare -A mirror_pid mirror_url

# mirror_skip REASON: the phase cannot run here; the report shows REASON.
mirror_skip() {
  say "mirror: skipped: $1"
  printf '{"reason": "%s"}\n' "$1" >"$results/mirror_skipped.json"
}

# fake_mongo NAME: a MongoDB double (sets mongo_pid, mongo_port, control_port).
fake_mongo() {
  local name=$1
  /usr/bin/python3 "$fake_mongo" --port 0 --control-port 0 >"$work/$name.out" \
    2>"$work/$name.err" &
  mongo_pid=$!
  running+=("$mongo_pid")
  local i line=""
  for ((i = 0; i < 1000; i++)); do
    line=$(grep -m 1 '^fake_mongo mongo=' "$work/$name.out" 2>/dev/null || true)
    if [ -n "$line" ]; then break; fi
    if ! kill -0 "$mongo_pid" 2>/dev/null; then break; fi
    sleep 0.01
  done
  if [ -z "$line" ]; then
    echo "run.sh: $fake_mongo did not start:" >&2
    cat "$work/$name.err" >&2
    exit 1
  fi
  mongo_port=$(sed 's/.*mongo=\([0-9]*\).*/\1/' <<<"$line")
  control_port=$(sed 's/.*control=\([0-9]*\).*/\1/' <<<"$line")
}

# fake_mongo_faults CONTROL_PORT JSON: POST /faults to a double.
fake_mongo_faults() {
  curl -fsS -X POST "http://127.0.0.1:$1/faults" -d "$2" >/dev/null
}

# mirror_daemon NAME [VAR=VALUE...]: a fresh daemon for the mirror phase.
mirror_daemon() {
  local name=$1
  shift
  daemon "${name}_daemon" "$@"
  mirror_pid[$name]=$daemon_pid
  mirror_url[$name]=$daemon_url
}

# mirror_ready NAME: keeps the daemon's /ready as NAME_ready.json and prints its mirror.
mirror_ready() {
  local name=$1
  curl -sS "${mirror_url[$name]}/ready" >"$results/${name}_ready.json" || true
  say "$name: mirror at the end: $(/usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1])).get("mirror", {})
print("state %s, outboxDepth %s, rowsSent %s, lastError %s" % (m.get("state"),
      m.get("outboxDepth"), m.get("rowsSent"), m.get("lastError", "-")))' \
    "$results/${name}_ready.json" 2>/dev/null || echo "no /ready answer")"
}

if wants mirror; then
  unset TICKETAID_MONGO_URI  # the mirror-off daemons must not inherit one
  if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import bson' 2>/dev/null; then
    mirror_skip "/usr/bin/python3 with bson (python3-pymongo) is missing"
  elif [ ! -f "$fake_mongo" ]; then
    mirror_skip "the MongoDB double $fake_mongo is missing"
  elif ! command -v curl >/dev/null; then
    mirror_skip "curl is missing"
  elif "$ticketaid" doctor --config "$config" --db "$work/mirror_probe.db" \
    --ollama-url http://127.0.0.1:1 2>&1 | grep -q 'no MongoDB support'; then
    mirror_skip "$ticketaid was built without the MongoDB mirror (libmongoc-dev)"
  else
    fake mirror_fake "$mirror_tokens" 20 $((mirror_streams * 8 + 64))
    fake_mongo mongo_up
    up_mongo_pid=$mongo_pid
    up_uri="mongodb://127.0.0.1:$mongo_port/?replicaSet=rs0"
    fake_mongo mongo_down
    down_mongo_pid=$mongo_pid
    down_uri="mongodb://127.0.0.1:$mongo_port/?replicaSet=rs0"
    fake_mongo_faults "$control_port" '{"down": true}'
    mirror_daemon mirror_off
    mirror_daemon mirror_off2
    mirror_daemon mirror_up TICKETAID_MONGO_URI="$up_uri"
    mirror_daemon mirror_down TICKETAID_MONGO_URI="$down_uri"
    loads=()
    for name in "${mirror_names[@]}"; do
      measure "$name" ttft --url "${mirror_url[$name]}" --streams "$mirror_streams" \
        --warmup "$warm" --duration "$dur" --daemon-pid "${mirror_pid[$name]}" \
        --ollama-pid "$fake_pid" &
      loads+=($!)
    done
    for pid in "${loads[@]}"; do
      wait "$pid"
    done
    mirror_ready mirror_up
    mirror_ready mirror_down
    for name in "${mirror_names[@]}"; do
      stop "${mirror_pid[$name]}"
    done
    # /ready's depth is the syncer's count after its last attempt; the database file
    # holds what was really waiting when the daemon stopped.
    /usr/bin/python3 -c '
import json, sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM mirror_outbox").fetchone()[0]
print(json.dumps({"rows": rows}))' "$work/mirror_down_daemon/ticketaid.db" \
      >"$results/mirror_down_outbox.json" || true
    say "mirror_down: outbox rows in the database after the stop: $(cat "$results/mirror_down_outbox.json")"
    stop "$down_mongo_pid"
    stop "$up_mongo_pid"
    stop "$fake_pid"
  fi
fi

end_load=$(cut -d ' ' -f 1-3 /proc/loadavg)

cpu=$(grep -m 1 'model name' /proc/cpuinfo | sed 's/.*: //')
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
echo "# ticketaid benchmark$([ "$smoke" = 1 ] && echo " (smoke run)")"
echo
echo "- date: $started to $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
echo "- machine: $(nproc) CPUs ($cpu), $mem memory, Linux $(uname -r)"
echo "- load average (1, 5, 15 min): $start_load at the start, $end_load at the end"
echo "- binaries: $ticketaid, $fake_ollama, $bench_load"
echo
status=0
"$bench_load" report --dir "$results" $([ "$smoke" = 1 ] && echo --smoke) \
  ${only:+--only "$only"} || status=$?
if [ -n "$out_dir" ]; then echo; echo "JSON results: $out_dir"; fi
exit "$status"
