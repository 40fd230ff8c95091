#!/usr/bin/env bash
# Group throughput and losses on one Mosquitto and on the rmqtt cluster
# (`make bench-cluster`): 1, 2 and 4 members of one group (on the cluster,
# spread over the nodes, the bench on the last node), then 3 members with
# one killed (kill -9) mid-run. Prints a Markdown table: requests/s, lost,
# duplicate replies, and edits applied (the file's revision count against
# the edits sent: more means an edit applied twice).
#
# Needs target/release/mqttapp (or MQTTAPP_BIN), mosquitto and rmqttd (scripts/cluster.sh
# path). COUNT (default 20000) requests per run, CONNECTIONS (4), WINDOW (64).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-20000}
CONNECTIONS=${CONNECTIONS:-4}
WINDOW=${WINDOW:-64}
OPS="calc=8,edit=2"
BIN=${MQTTAPP_BIN:-$PWD/target/release/mqttapp}
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
WORK=$(mktemp -d /tmp/mqttapp-bench-groups.XXXXXX)
MEMBERS=()
MOSQ_PID=""
CLUSTER_STARTED=""

cleanup() {
	for pid in "${MEMBERS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
	[ -z "$MOSQ_PID" ] || kill "$MOSQ_PID" 2>/dev/null || true
	[ -z "$CLUSTER_STARTED" ] || scripts/cluster.sh stop >/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 not listening" >&2; exit 1; }

port=$(free_port)
cat >"$WORK/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
max_inflight_messages 1000
max_queued_messages 200000
max_queued_bytes 0
log_dest file $WORK/mosquitto.log
log_type error
user $(id -un)
EOF
"$MOSQUITTO" -c "$WORK/mosquitto.conf" 2>/dev/null & MOSQ_PID=$!
wait_port "$port"
MOSQ_URL=mqtt://127.0.0.1:$port

CLUSTER=1
if ! scripts/cluster.sh path >/dev/null 2>&1; then
	echo "rmqttd not found (make cluster-install, or RMQTTD=path): Mosquitto only" >&2; CLUSTER=0
elif ! (exec 3<>/dev/tcp/127.0.0.1/18841) 2>/dev/null; then
	NODES=2 scripts/cluster.sh start >/dev/null; CLUSTER_STARTED=1
fi
NODE_URLS=(mqtt://127.0.0.1:18841 mqtt://127.0.0.1:18842)

run=0
LAST_RPS=1000
# measure BROKER-NAME MEMBERS KILL URL... : one bench run; prints a table row.
measure() {
	local name=$1 n=$2 kill=$3; shift 3
	local urls=("$@") prefix data i url log
	run=$((run + 1))
	prefix="bg$$-$run"; data=$WORK/data-$run
	MEMBERS=()
	for i in $(seq "$n"); do
		url=${urls[$(( (i - 1) % ${#urls[@]} ))]}
		log=$WORK/serve-$run-$i.log
		MQTTAPP_BROKER=$url MQTTAPP_PREFIX=$prefix "$BIN" serve --data-dir "$data" \
			--server-id "$prefix-m$i" --group g >"$log" 2>&1 &
		MEMBERS+=($!)
		for _ in $(seq 200); do grep -qs serving "$log" && break; sleep 0.05; done
	done
	local bench_url=${urls[$(( ${#urls[@]} - 1 ))]}
	MQTTAPP_BROKER=$bench_url MQTTAPP_PREFIX=$prefix MQTTAPP_TIMEOUT=10 "$BIN" bench --json \
		--ops "$OPS" --connections "$CONNECTIONS" --window "$WINDOW" --count "$COUNT" \
		>"$WORK/bench-$run.json" 2>"$WORK/bench-$run.err" & local bench=$!
	if [ "$kill" = 1 ]; then
		# A third into the run, judged by the previous run's rate.
		sleep "$(python3 -c "print(max(0.5, $COUNT / max($LAST_RPS, 1) / 3))")"
		kill -9 "${MEMBERS[1]}" 2>/dev/null || true
	fi
	wait "$bench" || true
	local rev
	rev=$(MQTTAPP_BROKER=$bench_url MQTTAPP_PREFIX=$prefix "$BIN" ask --json edit --show --file bench.txt \
		| python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"]["rev"])' 2>/dev/null || echo "?")
	for pid in "${MEMBERS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${MEMBERS[@]}"; do wait "$pid" 2>/dev/null || true; done
	MEMBERS=()
	LAST_RPS=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["throughput_rps"]))' "$WORK/bench-$run.json" 2>/dev/null || echo 1000)
	python3 - "$WORK/bench-$run.json" "$name" "$n" "$kill" "$rev" "$COUNT" <<'PY'
import json, sys
path, name, n, kill, rev, count = sys.argv[1:]
try:
    r = json.load(open(path))
except Exception:
    print(f"| {name} | {n} | {'yes' if kill == '1' else 'no'} | bench failed | | | | |")
    sys.exit()
edits = int(count) // 10 * 2
print(f"| {name} | {n} | {'1 of 3 kill -9' if kill == '1' else 'no'} | {r['throughput_rps']:.0f} "
      f"| {r['lost']} | {r['duplicates']} | {r['resent']} | {rev} of {edits} |")
PY
}

echo "COUNT=$COUNT CONNECTIONS=$CONNECTIONS WINDOW=$WINDOW OPS=$OPS, $(nproc) cores, $(date -u +%F)"
echo
echo "| broker | members | crash | requests/s | lost | duplicate replies | re-sent | edits applied |"
echo "|---|---|---|---|---|---|---|---|"
for n in 1 2 4; do measure "Mosquitto" "$n" 0 "$MOSQ_URL"; done
measure "Mosquitto" 3 1 "$MOSQ_URL"
[ "$CLUSTER" = 1 ] || exit 0
for n in 1 2 4; do measure "rmqtt, 2 nodes" "$n" 0 "${NODE_URLS[@]}"; done
measure "rmqtt, 2 nodes" 3 1 "${NODE_URLS[@]}"
