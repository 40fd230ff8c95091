#!/usr/bin/env python3
"""A Python client for mqttapp, speaking the wire protocol (docs/PROTOCOL.md)
with nothing but paho-mqtt and cbor2 (`pip install paho-mqtt cbor2`, or
`make setup`).

    python3 examples/python_client.py calc "2+3*4"            # 14
    python3 examples/python_client.py calc "2^100"            # 1267650600228229401496703205376
    python3 examples/python_client.py echo hello world        # hello world
    python3 examples/python_client.py edit --line 3 new text  # notes.txt: rev 1, 3 lines
    python3 examples/python_client.py edit --show             # the file

What it does, as every client of the protocol must:
  * connects with MQTT 5 and subscribes to its own response topic,
    <prefix>/v1/resp/<client-id>, BEFORE publishing;
  * publishes the request as a CBOR map to <prefix>/v1/req/<op> with QoS 1
    and the properties Response Topic, Correlation Data, Content Type
    (application/cbor) and Message Expiry (the timeout);
  * puts 128 random bits (os.urandom) into the Correlation Data, so nobody
    who reads the request topics can guess the next request's key;
  * waits for the one reply whose Correlation Data matches, re-sending the
    same request (same correlation data) when none came, backing off (1, 2,
    4 s ... between copies): the server applies a replayed edit only once;
  * treats a `busy` error as not final: the server refused it without
    applying it, so it waits (100 ms, doubling, with jitter) and sends the
    same request again;
  * prints {"ok": value} as plain text, {"err": {...}} on stderr.

Broker and prefix come from --broker/--prefix or MQTTAPP_BROKER and
MQTTAPP_PREFIX, like mqttapp itself. Exit codes follow `mqttapp ask`:
0 ok, 1 error reply, 2 usage, 3 cannot connect, 4 refused, 5 timeout.
"""

import argparse
import os
import queue
import random
import sys
import time
import uuid
from urllib.parse import urlsplit

try:
    import cbor2
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
except ImportError as e:
    sys.exit(f"error: {e} - run `make setup` (or: pip install paho-mqtt cbor2)")


def new_client(client_id):
    """An MQTT 5 client with paho-mqtt 2.x, or 1.6 (Debian 12's package)."""
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                           protocol=mqtt.MQTTv5)
    return mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Send one request to mqttapp serve.")
    p.add_argument("--broker", default=os.environ.get("MQTTAPP_BROKER", "mqtt://localhost:1883"))
    p.add_argument("--prefix", default=os.environ.get("MQTTAPP_PREFIX", "mqttapp"))
    p.add_argument("--timeout", type=float, default=float(os.environ.get("MQTTAPP_TIMEOUT", "5")))
    ops = p.add_subparsers(dest="op", required=True)
    ops.add_parser("calc").add_argument("words", nargs="+")
    ops.add_parser("echo").add_argument("words", nargs="+")
    edit = ops.add_parser("edit")
    edit.add_argument("--line", type=int)
    action = edit.add_mutually_exclusive_group()
    for name in ("insert", "append", "delete", "show"):
        action.add_argument(f"--{name}", dest="action", action="store_const", const=name)
    edit.add_argument("--file")
    edit.add_argument("--expect-rev", type=int)
    edit.add_argument("words", nargs="*")
    return p.parse_args(argv)


def request_map(args):
    """The request map of docs/PROTOCOL.md for the parsed command line."""
    text = " ".join(args.words)
    if args.op == "calc":
        return {"expr": text}
    if args.op == "echo":
        return {"text": text}
    req = {"action": args.action or "replace"}
    for key, value in (("line", args.line), ("file", args.file), ("expect_rev", args.expect_rev)):
        if value is not None:
            req[key] = value
    if args.words:
        req["text"] = text
    return req


def show(value):
    """Prints an ok value the way `mqttapp ask` does."""
    if isinstance(value, dict):  # an edit result
        if "content" in value:
            print(f"{value['file']}: rev {value['rev']}, {value['lines']} lines", file=sys.stderr)
            print(value["content"], end="")
            if "next" in value:  # servers page large files (docs/PROTOCOL.md)
                print(f"(one page; the file goes on at line {value['next']}: send the request "
                      f"again with \"line\": {value['next']})", file=sys.stderr)
        else:
            print(f"{value['file']}: rev {value['rev']}, {value['lines']} lines")
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        print(int(value))
    elif isinstance(value, int):
        # Integers past 64 bits arrive as CBOR bignums (tags 2 and 3), which
        # cbor2 turns into Python ints. They have up to 10,000 digits, and
        # Python 3.11+ refuses to print more than 4,300 unless told.
        if hasattr(sys, "set_int_max_str_digits"):
            sys.set_int_max_str_digits(0)
        print(value)
    else:
        print(value)


def connect(args, client_id, replies):
    url = urlsplit(args.broker if "://" in args.broker else "mqtt://" + args.broker)
    client = new_client(client_id)
    if url.scheme in ("mqtts", "ssl"):
        client.tls_set()
    client.on_message = lambda _c, _u, msg: replies.put(msg)
    try:
        client.connect(url.hostname or "localhost", url.port or 1883, keepalive=20)
    except OSError as e:
        sys.stderr.write(f"error: cannot connect to {args.broker} ({e}) - is a broker running? "
                         "try `make broker`\n")
        sys.exit(3)
    return client


def wait_connected(client, deadline):
    """Runs the network loop until CONNACK; exits 4 when refused."""
    while not client.is_connected() and time.monotonic() < deadline:
        rc = client.loop(timeout=0.1)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            sys.stderr.write(f"error: the broker refused the connection ({mqtt.error_string(rc)})\n")
            sys.exit(4)
    if not client.is_connected():
        sys.stderr.write("error: no CONNACK from the broker - check --broker\n")
        sys.exit(3)


def main(argv):
    args = parse_args(argv)
    client_id = f"py-{uuid.uuid4().hex[:12]}"
    response_topic = f"{args.prefix}/v1/resp/{client_id}"
    replies = queue.Queue()
    client = connect(args, client_id, replies)
    deadline = time.monotonic() + args.timeout
    wait_connected(client, deadline)
    client.loop_start()
    # Subscribe first: the broker handles one connection's packets in
    # order, so the subscription exists before the request is routed.
    client.subscribe(response_topic, qos=1)
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = response_topic
    props.CorrelationData = os.urandom(16)
    props.ContentType = "application/cbor"
    props.MessageExpiryInterval = int(args.timeout) + 1
    payload = cbor2.dumps(request_map(args))
    topic = f"{args.prefix}/v1/req/{args.op}"
    gap = 1.0  # before the next copy when no reply came; doubles each time
    busy_pause = 0.1  # before the next copy after a `busy` reply; doubles
    while time.monotonic() < deadline:
        client.publish(topic, payload, qos=1, properties=props).wait_for_publish(timeout=2)
        resend_at = min(time.monotonic() + gap, deadline)
        gap *= 2
        while time.monotonic() < resend_at:
            try:
                msg = replies.get(timeout=max(0.01, resend_at - time.monotonic()))
            except queue.Empty:
                break
            if getattr(msg.properties, "CorrelationData", None) != props.CorrelationData:
                continue  # a late reply to someone else's (or an earlier) request
            reply = cbor2.loads(msg.payload)
            if reply.get("err", {}).get("code") == "busy":
                # Refused at capacity, not applied: back off and send again.
                time.sleep(min(busy_pause * random.uniform(0.5, 1.0), max(0.0, deadline - time.monotonic())))
                busy_pause = min(busy_pause * 2, 2.0)
                break
            client.loop_stop()
            client.disconnect()
            if "ok" in reply:
                show(reply["ok"])
                return 0
            err = reply["err"]
            at = f" (at character {err['at']})" if "at" in err else ""
            sys.stderr.write(f"error: {err['code']}: {err['message']}{at}\n")
            return 1
    sys.stderr.write(f"error: no reply within {args.timeout}s - is `mqttapp serve` running "
                     f"with --prefix {args.prefix}?\n")
    return 5


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
