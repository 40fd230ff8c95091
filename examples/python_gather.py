#!/usr/bin/env python3
"""Scatter-gather from Python: one request to EVERY online mqttapp server
(group members included), one line per server, like `mqttapp ask --all`.
Needs only paho-mqtt and cbor2 (`make setup`).

    python3 examples/python_gather.py calc "1+1"     # g1 2 / g2 2 / solo 2
    python3 examples/python_gather.py echo hello     # <server-id> hello, per server
    python3 examples/python_gather.py --replies 1 calc 2+2

What it does (docs/PROTOCOL.md, "Requests for every server"):
  * reads the retained statuses on <prefix>/v1/status/+ to learn which
    servers are online and offer the operation (the ones to wait for);
  * subscribes to its own response topic, then publishes the request ONCE
    to <prefix>/v1/all/req/<op>: every server subscribes there without a
    shared group, so each member of a group gets its own copy;
  * counts each server once, by the `mqttapp-server-id` user property of
    its reply, whatever arrives twice;
  * stops when every online server answered, after --replies N servers,
    or at --wait seconds.

Exit codes follow `mqttapp ask --all`: 0 every server answered (1 if one
answered with an error), 9 some did not, 6 none did (or none is online),
3 cannot connect.
"""

import argparse
import os
import queue
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

SERVER_ID = "mqttapp-server-id"
STATUS_SETTLE = 0.3  # seconds without a new retained status: all are in


def new_client(client_id):
    """An MQTT 5 client with paho-mqtt 2.x, or 1.6 (Debian 12's package)."""
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                           protocol=mqtt.MQTTv5)
    return mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Send one request to every mqttapp server.")
    p.add_argument("--broker", default=os.environ.get("MQTTAPP_BROKER", "mqtt://localhost:1883"))
    p.add_argument("--prefix", default=os.environ.get("MQTTAPP_PREFIX", "mqttapp"))
    p.add_argument("--wait", type=float, default=float(os.environ.get("MQTTAPP_TIMEOUT", "5")))
    p.add_argument("--replies", type=int, default=0, help="stop after N servers (0: all)")
    p.add_argument("op", choices=["calc", "echo"])
    p.add_argument("words", nargs="+")
    return p.parse_args(argv)


def server_id(msg):
    for key, value in getattr(msg.properties, "UserProperty", []) or []:
        if key == SERVER_ID:
            return value
    return None


def main(argv):
    args = parse_args(argv)
    text = " ".join(args.words)
    request = {"expr": text} if args.op == "calc" else {"text": text}
    client_id = f"py-gather-{uuid.uuid4().hex[:12]}"
    response_topic = f"{args.prefix}/v1/resp/{client_id}"
    status_prefix = f"{args.prefix}/v1/status/"
    inbox = queue.Queue()
    url = urlsplit(args.broker if "://" in args.broker else "mqtt://" + args.broker)
    client = new_client(client_id)
    if url.scheme in ("mqtts", "ssl"):
        client.tls_set()
    client.on_message = lambda _c, _u, msg: inbox.put(msg)
    try:
        client.connect(url.hostname or "localhost", url.port or 1883, keepalive=20)
    except OSError as e:
        sys.stderr.write(f"error: cannot connect to {args.broker} ({e})\n")
        return 3
    client.loop_start()
    client.subscribe([(status_prefix + "+", 1), (response_topic, 1)])

    # 1. Who is online with this operation (retained statuses).
    online = set()
    settle_until = time.monotonic() + 2.0
    while time.monotonic() < settle_until:
        try:
            msg = inbox.get(timeout=STATUS_SETTLE)
        except queue.Empty:
            break
        if msg.topic.startswith(status_prefix) and msg.payload:
            try:
                status = cbor2.loads(msg.payload)
            except Exception:
                continue
            if status.get("state") == "online" and args.op in status.get("ops", []):
                online.add(msg.topic[len(status_prefix):])
    if not online:
        sys.stderr.write(f"error: no server online for {args.op} under {status_prefix}\n")
        return 6

    # 2. One request for all of them.
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = response_topic
    props.CorrelationData = os.urandom(16)
    props.ContentType = "application/cbor"
    props.MessageExpiryInterval = max(1, int(args.wait + 0.999))
    topic = f"{args.prefix}/v1/all/req/{args.op}"
    client.publish(topic, cbor2.dumps(request), qos=1, properties=props).wait_for_publish(timeout=5)

    # 3. Gather: each server once.
    answers = {}
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        if args.replies and len(answers) >= args.replies:
            break
        if not args.replies and online <= answers.keys():
            break
        try:
            msg = inbox.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if getattr(msg.properties, "CorrelationData", None) != props.CorrelationData:
            continue
        sid = server_id(msg)
        if sid is None or sid in answers:
            continue  # no id, or that server was counted already
        reply = cbor2.loads(msg.payload)
        answers[sid] = reply
        if "ok" in reply:
            print(f"{sid} {reply['ok']}", flush=True)
        else:
            err = reply["err"]
            print(f"{sid} error: {err['code']}: {err['message']}", flush=True)
    client.loop_stop()
    client.disconnect()

    if not answers:
        sys.stderr.write(f"error: no server answered within {args.wait}s\n")
        return 6
    if not args.replies:
        for sid in sorted(online - answers.keys()):
            sys.stderr.write(f"error: no answer from {sid} within {args.wait}s\n")
    complete = len(answers) >= args.replies if args.replies else online <= answers.keys()
    if not complete:
        return 9
    return 1 if any("err" in r for r in answers.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
