"""Direct methods through the gateway (method-router): a module calls a child
device over HTTPS (as the Azure module SDKs do) and over MQTT, with the uplink
cut the whole time; and the cloud calls a child through the gateway."""
import http.client
import json
import os
import ssl
import subprocess
import time
import urllib.parse

import pytest

from edgehub_harness import EDGE_ID, HUB_NAME, ROOT, Device, sas_token, wait_until

MODULE = "filter"
CALLER = f"{EDGE_ID}/{MODULE}"


def https_invoke(hub, target, body, key=None, caller=CALLER, headers=None, timeout=60, source_address=None):
    """POST /twins/{target}/methods on the gateway: (status, parsed body)."""
    ctx = ssl.create_default_context(cafile=hub.pki.ca_cert)
    conn = http.client.HTTPSConnection("localhost", hub.methods_port, context=ctx, timeout=timeout,
                                       source_address=source_address)
    d, _, m = target.partition("/")
    path = f"/twins/{urllib.parse.quote(d, safe='')}" + (f"/modules/{urllib.parse.quote(m, safe='')}" if m else "")
    path += "/methods?api-version=2021-04-12"
    h = {"Content-Type": "application/json", "x-ms-edge-moduleId": caller}
    if key:
        d_, _, m_ = caller.partition("/")
        h["Authorization"] = sas_token(f"{HUB_NAME}/devices/{d_}/modules/{m_}", key)
    h.update(headers or {})
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    conn.request("POST", path, body=data, headers=h)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, json.loads(raw) if raw else None


class Offline:
    """A hub with a synced scope and the uplink cut: a module and a child device connected."""

    def __init__(self, sim, make_hub, silent=False):
        self.child = sim.add_child("child-1")
        sim.add_child("child-absent")
        self.late = sim.add_child("child-late")
        self.mod = sim.add_identity(EDGE_ID, MODULE)
        self.other = sim.add_identity("child-1", "helper")  # a module, but not of the edge device
        self.hub = make_hub().start()
        wait_until(lambda: self.hub.hubctl_json("status")["auth_cache"]["synced"], 20, what="scope sync")
        # Before method-router joins the bus a call is 503 and an MQTT request reaches nobody: the daemons
        # join the broker in any order after it starts.
        self.hub.log.wait_for("method-router: <6>Connected to the local broker", 15)
        sim.cut()
        self.device = Device(self.hub, "child-1", self.child["primaryKey"])
        assert self.device.connect() == 0
        self.calls = []

        def handler(name, payload):
            self.calls.append((name, payload))
            if name == "silent":
                return None
            return 200 if name != "fail" else 500, json.dumps({"echo": name, "got": json.loads(payload)})

        assert self.device.answer_methods(handler)
        self.module = Device(self.hub, EDGE_ID, self.mod["primaryKey"], module_id=MODULE)
        assert self.module.connect() == 0

    def close(self):
        self.device.close()
        self.module.close()


@pytest.fixture
def offline(sim, make_hub):
    o = Offline(sim, make_hub)
    yield o
    o.close()


def test_https_invoke_child_offline(offline):
    key = offline.mod["primaryKey"]
    status, body = https_invoke(offline.hub, "child-1", {"methodName": "reboot", "payload": {"delay": 3},
                                                         "responseTimeoutInSeconds": 10}, key)
    assert status == 200, body
    assert body == {"status": 200, "payload": {"echo": "reboot", "got": {"delay": 3}}}
    # the device's own status passes through; a missing payload is null
    status, body = https_invoke(offline.hub, "child-1", {"methodName": "fail"}, key)
    assert status == 200 and body == {"status": 500, "payload": {"echo": "fail", "got": None}}


def test_https_errors(offline):
    key = offline.mod["primaryKey"]
    hub = offline.hub
    # in scope but not connected
    status, body = https_invoke(hub, "child-absent", {"methodName": "x"}, key)
    assert status == 404 and body["errorCode"] == "DeviceNotOnline", body
    assert "not connected" in body["message"]
    # a module id with '$', percent-encoded in the path as the SDKs do: in scope, not connected
    status, body = https_invoke(hub, f"{EDGE_ID}/$edgeAgent", {"methodName": "x"}, key)
    assert status == 404 and body["errorCode"] == "DeviceNotOnline", body
    assert f"'{EDGE_ID}/$edgeAgent'" in body["message"], body
    # not in scope at all
    status, body = https_invoke(hub, "nobody", {"methodName": "x"}, key)
    assert status == 404 and body["errorCode"] == "DeviceNotFound", body
    # bad JSON, odd names, bad timeouts
    status, body = https_invoke(hub, "child-1", b'{"methodName": ', key)
    assert status == 400 and "not a JSON object" in body["message"], body
    for name in ("a/b", "", "with space", "$x", "a#", "caf\u00e9", "n" * 129):
        status, body = https_invoke(hub, "child-1", {"methodName": name}, key)
        assert status == 400, (name, body)
        assert "methodName must be 1 to 128 printable US-ASCII characters" in body["message"], body
    status, body = https_invoke(hub, "child-1", {"payload": 1}, key)
    assert status == 400 and "methodName is required" in body["message"]
    status, body = https_invoke(hub, "child-1", {"methodName": "x", "responseTimeoutInSeconds": 1}, key)
    assert status == 400 and "between 5 and 300" in body["message"]
    # payload over 128 KiB
    status, body = https_invoke(hub, "child-1", {"methodName": "x", "payload": "y" * (128 * 1024)}, key)
    assert status in (400, 413), body
    # authentication: no token, a wrong key, a caller header that is not the token's identity
    status, body = https_invoke(hub, "child-1", {"methodName": "x"})
    assert status == 401, body
    status, body = https_invoke(hub, "child-1", {"methodName": "x"}, offline.child["primaryKey"])
    assert status == 401, body
    status, body = https_invoke(hub, "child-1", {"methodName": "x"}, key, headers={"x-ms-edge-moduleId": "child-1"})
    assert status == 401, body
    # authenticated, but a module of another device: only the edge device's modules may call
    status, body = https_invoke(hub, "child-1", {"methodName": "x"}, offline.other["primaryKey"], caller="child-1/helper")
    assert status == 403 and body["errorCode"] == "IotHubUnauthorizedAccess", body
    # unknown routes
    ctx = ssl.create_default_context(cafile=hub.pki.ca_cert)
    conn = http.client.HTTPSConnection("localhost", hub.methods_port, context=ctx, timeout=10)
    conn.request("GET", "/twins/child-1/methods")
    assert conn.getresponse().status == 405
    conn.close()
    # the device saw none of these
    assert offline.calls == []


def test_silent_device_times_out(offline):
    t0 = time.monotonic()
    status, body = https_invoke(offline.hub, "child-1", {"methodName": "silent", "responseTimeoutInSeconds": 5},
                                offline.mod["primaryKey"])
    elapsed = time.monotonic() - t0
    assert status == 504 and body["errorCode"] == "GatewayTimeout", body
    assert 4.5 < elapsed < 10, elapsed
    # a late answer matches nothing and does no harm
    status, body = https_invoke(offline.hub, "child-1", {"methodName": "ping"}, offline.mod["primaryKey"])
    assert status == 200, body


def mqtt_invoke(module, target, body, rid, timeout=15):
    topic = f"$iothub/methods/invoke/{target}/?$rid={rid}"
    module.client.publish(topic, body if isinstance(body, (bytes, str)) else json.dumps(body), qos=1)
    prefix = "$iothub/methods/invoke/res/"

    def answer():
        for t, p in module.received(prefix):
            if t.endswith(f"/?$rid={rid}"):
                return int(t[len(prefix):].split("/")[0]), json.loads(p)
        return None
    return wait_until(answer, timeout, what=f"an answer to rid {rid}")


def test_mqtt_invoke_form(offline):
    m = offline.module
    assert m.subscribe("$iothub/methods/invoke/res/#")
    status, body = mqtt_invoke(m, "child-1", {"methodName": "add", "payload": [1, 2]}, "r1")
    assert status == 200 and body == {"status": 200, "payload": {"echo": "add", "got": [1, 2]}}, body
    status, body = mqtt_invoke(m, "child-absent", {"methodName": "x"}, "r2")
    assert status == 404 and body["errorCode"] == "DeviceNotOnline", body
    status, body = mqtt_invoke(m, "child-1", b"not json", "r3")
    assert status == 400 and body["errorCode"] == "ArgumentInvalid", body
    status, body = mqtt_invoke(m, "child-1", {"methodName": "a/b"}, "r4")
    assert status == 400 and "methodName" in body["message"], body
    # only modules of the edge device call methods (as in IoT Edge): a leaf device may not, not even a module
    m.answer_methods(lambda name, payload: (200, b'"from the module"'))
    offline.device.subscribe("$iothub/methods/invoke/res/#")
    status, body = mqtt_invoke(offline.device, CALLER, {"methodName": "hello"}, "d1")
    assert status == 403 and body["errorCode"] == "IotHubUnauthorizedAccess", body
    assert f"only modules of edge device '{EDGE_ID}'" in body["message"] and "'child-1'" in body["message"], body
    status, body = mqtt_invoke(offline.device, "child-1", {"methodName": "self"}, "d2")
    assert status == 403, body
    assert [name for name, _ in offline.calls] == ["add"], offline.calls


def test_hubctl_methods_invoke(offline):
    hub = offline.hub
    p = hub.hubctl("--json", "methods", "invoke", "child-1", "ping", "--payload", '{"n": 1}')
    assert json.loads(p.stdout) == {"status": 200, "payload": {"echo": "ping", "got": {"n": 1}}}
    p = hub.hubctl("methods", "invoke", "child-1", "ping")
    assert "200" in p.stdout, p.stdout
    p = hub.hubctl("methods", "invoke", "child-absent", "ping", check=False)
    assert p.returncode == 5 and "not connected" in p.stderr, (p.returncode, p.stderr)
    p = hub.hubctl("methods", "invoke", "child-1", "a/b", check=False)
    assert p.returncode != 0 and "methodName" in p.stderr, p.stderr


def test_cloud_invokes_child_through_gateway(sim, make_hub):
    child = sim.add_child("child-c")
    hub = make_hub().start()
    wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["synced"], 20, what="scope sync")
    dev = Device(hub, "child-c", child["primaryKey"])
    assert dev.connect() == 0
    assert dev.answer_methods(lambda name, payload: (201, json.dumps({"cloud": name, "got": json.loads(payload)})))
    try:
        # hub-store opens the child's upstream link once it is connected; the cloud sees it subscribed
        def call():
            status, body = sim.invoke_method("child-c", "light", {"on": True}, timeout=5)
            return (status, body) if status == 200 else None
        status, body = wait_until(call, 30, interval=0.5, what="the cloud's call to reach child-c")
        assert body == {"status": 201, "payload": {"cloud": "light", "got": {"on": True}}}
    finally:
        dev.close()


SDK_INVOKE = os.path.join(ROOT, "tests", "integration", "azure-invoke.cjs")


def sdk_invoke(hub, mod_key, target, method, payload):
    cs = f"HostName={HUB_NAME};DeviceId={EDGE_ID};ModuleId={MODULE};SharedAccessKey={mod_key};GatewayHostName=localhost"
    p = subprocess.run(["node", SDK_INVOKE, cs, hub.pki.ca_cert, str(hub.methods_port), target, method,
                        json.dumps(payload)], capture_output=True, text=True, timeout=60)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0 and lines, p.stdout + p.stderr
    return lines[-1]


def test_azure_sdk_module_invokes_child(offline):
    out = sdk_invoke(offline.hub, offline.mod["primaryKey"], "child-1", "reboot", {"delay": 1})
    assert out == {"result": {"status": 200, "payload": {"echo": "reboot", "got": {"delay": 1}}}}, out
    # errors come back in IoT Hub's shape, which the SDK turns into its own error classes
    out = sdk_invoke(offline.hub, offline.mod["primaryKey"], "nobody", "reboot", None)
    assert out["status"] == 404 and out["name"] == "DeviceNotFoundError", out
    assert "not a device or module in this gateway's scope" in out["error"], out


def test_connect_timeout_waits_for_the_target(offline):
    """connectTimeoutInSeconds: a target that is not connected yet is called once it subscribes."""
    late = offline.late
    m = offline.module
    assert m.subscribe("$iothub/methods/invoke/res/#")
    m.client.publish("$iothub/methods/invoke/child-late/?$rid=late1",
                     json.dumps({"methodName": "wake", "connectTimeoutInSeconds": 20}), qos=1)
    time.sleep(1)
    assert m.received("$iothub/methods/invoke/res/") == []
    dev = Device(offline.hub, "child-late", late["primaryKey"])
    assert dev.connect() == 0
    try:
        dev.answer_methods(lambda name, payload: (200, b'{"awake": true}'))
        prefix = "$iothub/methods/invoke/res/"
        got = wait_until(lambda: m.received(prefix), 15, what="the answer after the target connected")
        topic, payload = got[0]
        assert topic == prefix + "200/?$rid=late1", topic
        assert json.loads(payload) == {"status": 200, "payload": {"awake": True}}
    finally:
        dev.close()
