#!/usr/bin/env bash
# Ask mqttapp one calculation per input line, and handle every exit code
# `mqttapp ask` documents. A template for scripts that must not give up on
# a hiccup, nor retry forever what cannot work.
#
#   printf '2+3*4\n1/0\n7/2\n' | examples/ask_loop.sh
#   examples/ask_loop.sh < expressions.txt
#
# Settings: MQTTAPP (the binary, default `mqttapp` on PATH), ASK_RETRIES
# (default 3), ASK_BACKOFF (first pause in seconds, doubled each retry,
# default 1); broker, prefix, timeout... come from MQTTAPP_* as usual.
#
# Exit code: 0 all answered, 1 some expressions were refused or timed out,
# else the mqttapp code that stopped the loop (2, 3, 4, 6, 7).
set -u

MQTTAPP=${MQTTAPP:-mqttapp}
RETRIES=${ASK_RETRIES:-3}
BACKOFF=${ASK_BACKOFF:-1}
ok=0
failed=0
errfile=$(mktemp)
trap 'rm -f "$errfile"' EXIT

stop() { # code message
    echo "stopping: $2" >&2
    sed 's/^/  /' "$errfile" >&2
    echo "$ok answered, $failed failed before stopping" >&2
    exit "$1"
}

while IFS= read -r expr || [ -n "$expr" ]; do
    [ -z "$expr" ] && continue
    attempt=1
    pause=$BACKOFF
    while :; do
        result=$("$MQTTAPP" ask calc "$expr" 2>"$errfile")
        code=$?
        case $code in
        0) # the answer is on stdout
            echo "$expr = $result"
            ok=$((ok + 1))
            break ;;
        1) # the server answered with an error (parse, math, limit...): the
           # expression is wrong, asking again gives the same answer
            echo "$expr: refused: $(head -1 "$errfile")"
            failed=$((failed + 1))
            break ;;
        2) stop 2 "usage or configuration error - fix the settings" ;;
        4) stop 4 "the broker refused our credentials - fix --username/MQTTAPP_PASSWORD" ;;
        7) stop 7 "TLS failed - fix --ca-file or the broker's certificate" ;;
        3 | 5 | 6) # broker unreachable, no reply in time, no server online:
                   # these pass. Re-asking is safe: the server applies a
                   # replayed request once.
            if [ "$attempt" -ge "$RETRIES" ]; then
                case $code in
                3) stop 3 "the broker stays unreachable" ;;
                6) stop 6 "no server came online" ;;
                5) echo "$expr: no reply after $attempt tries"
                   failed=$((failed + 1))
                   break ;;
                esac
            fi
            echo "$expr: exit $code, retrying in ${pause}s ($attempt/$RETRIES)" >&2
            sleep "$pause"
            attempt=$((attempt + 1))
            pause=$((pause * 2)) ;;
        *) stop "$code" "unexpected exit code $code" ;;
        esac
    done
done

echo "$ok answered, $failed failed" >&2
[ "$failed" -eq 0 ]
