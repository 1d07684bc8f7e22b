#!/usr/bin/python3
"""A hostile module: tries every way into the hub a module should not have, then behaves.

    hostile.py OUT_DIR PROBES_JSON

PROBES_JSON names what to try (the test knows the hub's paths):
{"config", "server_key", "storage", "runtime", "modules_dir", "sibling"}.
Each attempt is written to OUT_DIR/hostile.json as
{"name": {"refused": bool, "how": "..."}}; then the module connects as
itself (its token signed by the workload API), reports a twin property,
sends on output out1 and answers the direct method "ping", as a module may.
"""
import base64
import errno
import json
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sink"))
import sink  # noqa: E402  (the workload API client and the MQTT setup)

# proto/ipc/wire.h
KEY_REQUEST, AUTH_REQUEST, STORE_REQUEST, CONTROL_REQUEST, CONFIG_APPLY_REQUEST = 3, 1, 5, 9, 11
STATUS, ERROR, CLIENT_ID, USERNAME, PASSWORD, IDENTITY, PAYLOAD, COMMAND, ARGUMENT, JSON = 1, 2, 3, 4, 5, 6, 9, 12, 13, 14

results = {}


def record(name, refused, how):
    results[name] = {"refused": bool(refused), "how": str(how)[:300]}


def frame(msg_type, fields):
    body = struct.pack(">H", msg_type)
    for tag, value in fields:
        value = value.encode() if isinstance(value, str) else value
        body += struct.pack(">HI", tag, len(value)) + value
    return struct.pack(">I", len(body)) + body


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def call(path, msg_type, fields):
    """(status, error text) of one request on a hub socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(frame(msg_type, fields))
        (length,) = struct.unpack(">I", recv_exact(s, 4))
        body = recv_exact(s, length)
    off, status, error = 2, None, ""
    while off + 6 <= len(body):
        tag, n = struct.unpack(">HI", body[off:off + 6])
        value = body[off + 6:off + 6 + n]
        off += 6 + n
        if tag == STATUS:
            (status,) = struct.unpack(">I", value)
        elif tag == ERROR:
            error = value.decode(errors="replace")
    return status, error


def try_request(name, path, msg_type, fields):
    try:
        status, error = call(path, msg_type, fields)
        record(name, status == errno.EACCES and error.startswith("permission denied"), f"status {status}: {error}")
    except OSError as e:
        record(name, e.errno in (errno.EACCES, errno.EPERM), f"{type(e).__name__}: {e}")


def try_os(name, action):
    try:
        got = action()
        record(name, False, f"allowed: {got!r}"[:300])
    except OSError as e:
        record(name, e.errno in (errno.EACCES, errno.EPERM), f"{type(e).__name__}: {e}")


def read(path):
    with open(path, "rb") as f:
        return f.read(64)


def try_connect(name, path, kind=socket.SOCK_STREAM):
    def go():
        with socket.socket(socket.AF_UNIX, kind) as s:
            s.connect(path)
            return "connected"
    try_os(name, go)


def mqtt_string(s):
    return struct.pack(">H", len(s)) + s.encode()


def try_mqtt_as_daemon(name, path):
    """Join the internal listener as a daemon does: MQTT 3.1.1 CONNECT with a $edgehub/ username."""
    body = mqtt_string("MQTT") + bytes([4, 0x82]) + struct.pack(">H", 30)
    body += mqtt_string("$edgehub-hostile") + mqtt_string("$edgehub/hostile")
    packet = bytes([0x10, len(body)]) + body

    def go():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
            s.sendall(packet)
            return f"CONNACK {recv_exact(s, 4).hex()}"
    try_os(name, go)


def workload_status(name, method, path, body=None, expect=403):
    try:
        status, reply = sink.workload(method, path, body)
        record(name, status == expect and "message" in (reply or {}) and "digest" not in (reply or {}),
               f"{status} {reply}")
    except OSError as e:
        record(name, False, f"{type(e).__name__}: {e}")


def sibling_pid(sibling):
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if sibling.encode() in f.read():
                    return int(pid)
        except OSError:
            pass
    return None


def attack(p):
    run = p["runtime"]
    try_os("read config", lambda: read(p["config"]))
    try_os("read server key", lambda: read(p["server_key"]))
    try_os("list storage", lambda: os.listdir(p["storage"]))
    try_os("read the store", lambda: os.listdir(os.path.join(p["storage"], "messages")))
    try_os("write in the runtime folder", lambda: open(os.path.join(run, "planted.sock"), "w").close())
    try_os("enter a sibling's folder", lambda: os.listdir(os.path.join(p["modules_dir"], p["sibling"])))

    data = base64.b64encode(b"x").decode()
    try_request("auth-cache: $edgeHub's key", os.path.join(run, "auth-cache.sock"), KEY_REQUEST,
                [(IDENTITY, f"{os.environ['IOTEDGE_DEVICEID']}/$edgeHub")])
    try_request("auth-cache: a credential check", os.path.join(run, "auth-cache.sock"), AUTH_REQUEST,
                [(CLIENT_ID, "child"), (USERNAME, "h/child/?api-version=2021-04-12"), (PASSWORD, "x")])
    try_request("auth-cache: sync", os.path.join(run, "auth-cache.sock"), CONTROL_REQUEST, [(COMMAND, "sync")])
    try_request("hub-store: inject telemetry", os.path.join(run, "hub-store.sock"), STORE_REQUEST,
                [(IDENTITY, "child"), (PAYLOAD, "forged")])
    try_request("hub-store: apply configuration", os.path.join(run, "hub-store.sock"), CONFIG_APPLY_REQUEST,
                [(JSON, '{"$version": 1, "routes": {}}')])
    try_request("hub-store: status", os.path.join(run, "hub-store.sock"), CONTROL_REQUEST, [(COMMAND, "status")])
    try_request("agent: deploy", os.path.join(run, "agent.sock"), CONTROL_REQUEST,
                [(COMMAND, "deploy"), (ARGUMENT, '{"schemaVersion": "1.1", "modules": {}}')])
    try_request("agent: modules", os.path.join(run, "agent.sock"), CONTROL_REQUEST, [(COMMAND, "modules")])
    try_request("method-router: invoke", os.path.join(run, "method-router.sock"), CONTROL_REQUEST,
                [(COMMAND, "invoke"), (ARGUMENT, "child"), (JSON, '{"methodName": "reboot"}')])
    try_request("twin-sync: twins", os.path.join(run, "twin-sync.sock"), CONTROL_REQUEST, [(COMMAND, "twins")])
    try_connect("broker.sock", os.path.join(run, "broker.sock"))
    try_mqtt_as_daemon("join the internal listener as $edgehub/", os.path.join(run, "broker.sock"))
    try_connect("notify.sock", os.path.join(run, "notify.sock"), socket.SOCK_DGRAM)

    module, genid = os.environ["IOTEDGE_MODULEID"], os.environ["IOTEDGE_MODULEGENERATIONID"]
    sign = {"keyId": "primary", "algo": "HMACSHA256", "data": data}
    workload_status("workload: sign for a sibling", "POST",
                    f"/modules/{p['sibling']}/genid/{genid}/sign?api-version=2019-01-30", sign)
    workload_status("workload: sign for $edgeHub", "POST",
                    f"/modules/$edgeHub/genid/{genid}/sign?api-version=2019-01-30", sign)
    workload_status("workload: another generation", "POST",
                    f"/modules/{module}/genid/0000/sign?api-version=2019-01-30", sign)
    workload_status("workload: malformed", "POST", f"/modules/{module}/genid/{genid}/sign?api-version=2019-01-30",
                    {"keyId": "primary", "algo": "HMACSHA1", "data": data}, expect=400)

    pid = sibling_pid(p["sibling_cmd"])
    if pid is None:
        record("find the sibling", False, "no sibling process found")
    else:
        try_os("read a sibling's environment", lambda: read(f"/proc/{pid}/environ"))
        try_os("signal a sibling", lambda: os.kill(pid, 0))
        try_os("read a sibling's memory", lambda: read(f"/proc/{pid}/mem"))

    leaked = [k for k, v in os.environ.items() if "SharedAccessKey" in v or k == "EdgeHubConnectionString"]
    record("a key in our own environment", not leaked, f"variables with a key: {leaked}")
    record("our own uid is not the hub's", os.getuid() != 0 and os.getuid() == os.geteuid(), f"uid {os.getuid()}")


def behave(out_dir):
    """The legitimate part: twin, output, method, as the module itself."""
    device, module, client, host, port = sink.make_client()
    state = {"twin": None}

    def on_connect(c, userdata, flags, rc):
        c.subscribe("$iothub/methods/POST/#", qos=0)
        c.subscribe("$iothub/twin/res/#", qos=0)
        c.publish("$iothub/twin/PATCH/properties/reported/?$rid=7", json.dumps({"hostile": "behaves"}), qos=0)
        c.publish(f"devices/{device}/modules/{module}/messages/events/%24.on=out1", "legitimate", qos=1)
        print(json.dumps({"module": module, "event": "connected", "rc": rc}), flush=True)

    def on_message(c, userdata, msg):
        if msg.topic.startswith("$iothub/methods/POST/"):
            rid = msg.topic.split("$rid=", 1)[1]
            c.publish(f"$iothub/methods/res/200/?$rid={rid}", json.dumps({"pong": True}), qos=0)
        elif msg.topic.startswith("$iothub/twin/res/"):
            state["twin"] = msg.topic.split("/")[3]
            with open(os.path.join(out_dir, "hostile-twin.json"), "w") as f:
                json.dump({"status": state["twin"]}, f)

    client.on_connect = on_connect
    client.on_message = on_message
    signal.signal(signal.SIGTERM, lambda *a: (client.disconnect(), sys.exit(0)))
    client.connect(host, port, keepalive=30)
    client.loop_forever(retry_first_connection=True)


def main():
    out_dir, probes = sys.argv[1], json.loads(sys.argv[2])
    # The sibling must be up for the /proc attempts.
    deadline = time.monotonic() + 20
    while sibling_pid(probes["sibling_cmd"]) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    attack(probes)
    tmp = os.path.join(out_dir, "hostile.json.tmp")
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    os.rename(tmp, os.path.join(out_dir, "hostile.json"))
    behave(out_dir)


if __name__ == "__main__":
    main()
