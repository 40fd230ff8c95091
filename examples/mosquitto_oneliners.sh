#!/usr/bin/env bash
# Talking to `mqttapp serve` with nothing but the Mosquitto command-line
# clients (Debian: mosquitto-clients). The server answers in the request's
# encoding: text/plain in, text/plain out; application/json in, JSON out.
#
#   examples/mosquitto_oneliners.sh
#
# Broker and prefix come from MQTTAPP_BROKER (mqtt://host:port) and
# MQTTAPP_PREFIX, defaults mqtt://localhost:1883 and mqttapp. Each
# one-liner is printed, run, and its output checked.
set -euo pipefail

broker=${MQTTAPP_BROKER:-mqtt://localhost:1883}
P=${MQTTAPP_PREFIX:-mqttapp}
hostport=${broker#*://}
hostport=${hostport%%/*}
H=${hostport%:*}
PORT=1883
[[ $hostport == *:* ]] && PORT=${hostport##*:}
ID=oneliners-$$
R=$P/v1/resp/$ID # our response topic
failures=0

# Prints a command so that it can be copied into a shell.
show() {
    local word line=""
    for word in "$@"; do
        if [[ $word =~ ^[A-Za-z0-9_./:=,+-]+$ ]]; then
            line+="$word "
        else
            line+="'${word//\'/\'\\\'\'}' "
        fi
    done
    printf '$ %s\n' "${line% }"
}

# run EXPECTED CMD...: prints the command, runs it, checks its output.
run() {
    local expected=$1
    shift
    show "$@"
    local out
    out=$("$@")
    printf '%s\n' "$out"
    if [[ $out != *"$expected"* ]]; then
        echo "  ^ expected: $expected" >&2
        failures=$((failures + 1))
    fi
}

# mosquitto_rr subscribes to -e, publishes with Response Topic = -e, prints
# the first reply and exits (-W: give up after 10 s).
RR=(mosquitto_rr -V 5 -h "$H" -p "$PORT" -e "$R" -W 10)

echo "# calc as plain text: the payload is the expression, the reply the number"
run 14 "${RR[@]}" -t "$P/v1/req/calc" -D publish content-type text/plain -m '2+3*4'

echo "# calc as JSON: the same map as CBOR clients send, the reply a JSON object"
run '{"ok":3.5}' "${RR[@]}" -t "$P/v1/req/calc" -D publish content-type application/json -m '{"expr":"7/2"}'

echo "# errors come back in kind too: text, then JSON with the stable code"
run 'error: math: division by zero' "${RR[@]}" -t "$P/v1/req/calc" -D publish content-type text/plain -m '1/0'
run '"code":"parse"' "${RR[@]}" -t "$P/v1/req/calc" -D publish content-type application/json -m '{"expr":"2+"}'

echo "# echo, with Correlation Data: the server copies it into the reply (%D)"
run 'olá from mosquitto_rr [correlation req-42, text/plain]' \
    "${RR[@]}" -t "$P/v1/req/echo" -D publish content-type text/plain -D publish correlation-data req-42 \
    -F '%p [correlation %D, %C]' -m 'olá from mosquitto_rr'

echo "# edit has no text form: send JSON (append a line, then show the file)"
run '"rev":' "${RR[@]}" -t "$P/v1/req/edit" -D publish content-type application/json \
    -m '{"action":"append","text":"added by mosquitto_rr"}'
run 'added by mosquitto_rr' "${RR[@]}" -t "$P/v1/req/edit" -m '{"action":"show"}'

echo "# mosquitto_sub: which servers are online? (retained status, CBOR shown as hex)"
run "$P/v1/status/" mosquitto_sub -V 5 -h "$H" -p "$PORT" -t "$P/v1/status/+" -C 1 -W 10 -F '%t %x'

echo "# mosquitto_sub + mosquitto_pub, the request/reply by hand: create a session"
echo "# for our response topic (-E: exit once subscribed), publish the request"
echo "# with its properties, then collect the reply queued in the session"
run '' mosquitto_sub -V 5 -h "$H" -p "$PORT" -q 1 -c -i "$ID" -x 60 -t "$R" -E
run '' mosquitto_pub -V 5 -h "$H" -p "$PORT" -q 1 -t "$P/v1/req/calc" -m 'sqrt(2)^2' \
    -D publish response-topic "$R" -D publish correlation-data by-hand -D publish content-type text/plain
run '2.0000000000000004 (correlation by-hand)' \
    mosquitto_sub -V 5 -h "$H" -p "$PORT" -q 1 -c -i "$ID" -x 0 -t "$R" -C 1 -W 10 -F '%p (correlation %D)'

if [ "$failures" -ne 0 ]; then
    echo "$failures one-liner(s) did not give the expected output" >&2
    exit 1
fi
echo "# all one-liners answered as expected"
