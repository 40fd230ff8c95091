#!/usr/bin/env bash
# A local rmqtt cluster on loopback, configured from config/rmqtt/.
#
#   scripts/cluster.sh install   rmqttd into .tools/rmqtt (unless found)
#   scripts/cluster.sh path      print the rmqttd that would be used
#   scripts/cluster.sh start     start NODES nodes (default 2), wait until joined
#   scripts/cluster.sh stop      stop them
#
# rmqttd is taken from $RMQTTD, then PATH, then .tools/rmqtt/bin/rmqttd.
# Node N: MQTT 127.0.0.1:1884N, node gRPC 1536N, HTTP API 1606N; state and
# logs in run/cluster/nodeN; PERSIST=1 keeps sessions and retained messages
# there in sled.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-2}
RMQTT_VERSION=0.24.0
TOOLS=$PWD/.tools/rmqtt
STATE=$PWD/run/cluster
PLUGINS="rmqtt-acl rmqtt-cluster-broadcast rmqtt-http-api rmqtt-retainer"
# PERSIST=1: sessions and retained messages in sled under run/cluster/nodeN
# (rmqtt-session-storage, rmqtt-retainer-sled.toml.in), to survive a restart.
PERSIST=${PERSIST:-0}

find_rmqttd() {
	if [ -n "${RMQTTD:-}" ]; then
		[ -x "$RMQTTD" ] || { echo "RMQTTD=$RMQTTD is not an executable" >&2; return 1; }
		echo "$RMQTTD"
	elif command -v rmqttd >/dev/null; then
		command -v rmqttd
	elif [ -x "$TOOLS/bin/rmqttd" ]; then
		echo "$TOOLS/bin/rmqttd"
	else
		return 1
	fi
}

install() {
	if bin=$(find_rmqttd 2>/dev/null); then
		echo "rmqttd: $bin"
		return
	fi
	command -v protoc >/dev/null || {
		echo "installing: protobuf-compiler (rmqttd's build needs protoc)"
		local sudo=""
		[ "$(id -u)" = 0 ] || sudo=sudo
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq protobuf-compiler >/dev/null
	}
	echo "building rmqttd $RMQTT_VERSION into $TOOLS (about 20 minutes on 2 cores)"
	cargo install --locked --quiet "rmqttd@$RMQTT_VERSION" --root "$TOOLS"
	echo "rmqttd: $TOOLS/bin/rmqttd"
}

fill() { # template node
	local n=$1 dir=$STATE/node$1 peers="" i
	for i in $(seq "$NODES"); do
		peers="$peers${peers:+, }\"$i@127.0.0.1:1536$i\""
	done
	sed -e "s|@N@|$n|g" -e "s|@DIR@|$dir|g" -e "s|@MQTT_PORT@|1884$n|g" \
		-e "s|@GRPC_PORT@|1536$n|g" -e "s|@HTTP_PORT@|1606$n|g" -e "s|@PEERS@|$peers|g"
}

running_nodes() { # http port -> number of nodes it reports running
	curl -fsS --max-time 2 "http://127.0.0.1:$1/api/v1/brokers" 2>/dev/null \
		| python3 -c 'import json,sys; print(sum(1 for n in json.load(sys.stdin) if isinstance(n, dict) and n.get("running") is True))' 2>/dev/null \
		|| echo 0
}

start() {
	local bin n
	bin=$(find_rmqttd) || { echo "rmqttd not found: run 'make cluster-install' or set RMQTTD=path" >&2; exit 1; }
	[ "$NODES" -ge 1 ] && [ "$NODES" -le 9 ] || { echo "NODES must be 1-9" >&2; exit 1; }
	for n in $(seq "$NODES"); do
		local dir=$STATE/node$n
		if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
			echo "node $n already running (pid $(cat "$dir/pid"))"
			continue
		fi
		mkdir -p "$dir/plugins" "$dir/log"
		fill "$n" <config/rmqtt/node.toml.in >"$dir/rmqtt.toml"
		for p in $PLUGINS; do fill "$n" <"config/rmqtt/$p.toml.in" >"$dir/plugins/$p.toml"; done
		if [ "$PERSIST" = 1 ]; then
			sed -i 's|"rmqtt-shared-subscription"\]|"rmqtt-shared-subscription", "rmqtt-session-storage"]|' "$dir/rmqtt.toml"
			fill "$n" <config/rmqtt/rmqtt-retainer-sled.toml.in >"$dir/plugins/rmqtt-retainer.toml"
			fill "$n" <config/rmqtt/rmqtt-session-storage.toml.in >"$dir/plugins/rmqtt-session-storage.toml"
		fi
		(cd "$dir" && exec "$bin" -f "$dir/rmqtt.toml" </dev/null >"$dir/log/stdout.log" 2>&1) &
		echo $! >"$dir/pid"
	done
	for _ in $(seq 300); do
		local joined=1
		for n in $(seq "$NODES"); do
			[ "$(running_nodes "1606$n")" = "$NODES" ] || joined=0
		done
		if [ $joined = 1 ]; then
			echo "rmqtt cluster of $NODES nodes joined ($bin):"
			for n in $(seq "$NODES"); do
				echo "  node $n: mqtt://127.0.0.1:1884$n  (HTTP API http://127.0.0.1:1606$n, log run/cluster/node$n/log)"
			done
			echo "e.g. MQTTAPP_BROKER=mqtt://127.0.0.1:18841 mqttapp serve; MQTTAPP_BROKER=mqtt://127.0.0.1:18842 mqttapp ask calc 1+2"
			return
		fi
		sleep 0.2
	done
	echo "the cluster did not join within 60 s; logs in $STATE/node*/log" >&2
	exit 1
}

stop() {
	local pidfile
	for pidfile in "$STATE"/node*/pid; do
		[ -f "$pidfile" ] || continue
		if kill "$(cat "$pidfile")" 2>/dev/null; then
			echo "stopped $(basename "$(dirname "$pidfile")")"
		fi
		rm -f "$pidfile"
	done
}

case "${1:-}" in
install) install ;;
path) find_rmqttd || { echo "rmqttd not found" >&2; exit 1; } ;;
start) start ;;
stop) stop ;;
*) echo "usage: $0 install|path|start|stop" >&2; exit 2 ;;
esac
