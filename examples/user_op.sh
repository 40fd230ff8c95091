#!/bin/sh
# A user-defined operation written as a shell script: counts the words of
# its input. The server runs it directly (no shell of its own), with the
# request's input on stdin and an empty environment except PATH, LANG and
# the MQTTAPP_* variables describing the request; what it prints on
# stdout is the reply, and exiting non-zero is the error "failed" with the
# end of what it printed on stderr.
#
#   mqttapp serve --exec "wc=$PWD/examples/user_op.sh"
#   mqttapp ask wc the quick brown fox        # 4 words
#   echo 'run wc a b c' | mqttapp ask --batch  # 3 words
#
# MQTTAPP_OP (the operation's name), MQTTAPP_CORRELATION (the request's
# correlation data in hex), MQTTAPP_SERVER_ID and MQTTAPP_PROP_<KEY> (the
# client's MQTT 5 user properties) are set; nothing else of the server's.
set -eu

input=$(cat)
if [ -z "$input" ]; then
    echo "${MQTTAPP_OP:-wc}: nothing to count - send some text" >&2
    exit 1
fi
words=$(printf '%s\n' "$input" | wc -w | tr -d ' ')
if [ "$words" = 1 ]; then
    echo "1 word"
else
    echo "$words words"
fi
