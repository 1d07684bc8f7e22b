"""A daemon that is down or restarting never locks a device out: an Azure IoT
Node.js SDK device (unmodified, default retry policy) that has to reconnect
during the outage gets an answer the SDK retries, reconnects once the daemon is
back, every sendEvent() resolves, and every message it was told was sent
arrives in the cloud, in order.

The outage is a SIGSTOP (the daemon's socket accepts but nobody answers, as
while it starts or hangs) ended by a SIGKILL, after which edgehub-run restarts
it as systemd would.

Why the device is connected first: azure-iot-device-mqtt fails client.open()
for good on any error of its very first connection ("Failure on first
connection", whatever the broker said), so no answer of ours can help there.
Every later connection's error goes through the retry policy, which retries a
connection closed without a CONNACK (NotConnectedError) and never retries
"not authorized" (UnauthorizedError): the difference this test sees."""
import json
import os
import signal
import subprocess

import pytest

from edgehub_harness import HUB_NAME, ROOT, Device, LogPump, new_key, wait_until

DEVICE = os.path.join(ROOT, "tests", "demo", "azure-device.cjs")
COUNT = 30

# What the hub's log says once the device met each outage.
OUTAGE_MARK = {
    # mosquitto is killed too, so the device must connect again while auth-cache is away
    "edgehub-auth-cache": "Client '{dev}' not admitted: auth-cache unavailable",
    # telemetry goes to the ingest log: the device keeps getting PUBACKs while hub-store is away
    "edgehub-hub-store": None,
}


def sdk_events(pump):
    with pump.lock:
        return [json.loads(line) for line in pump.lines if line.startswith("{")]


@pytest.mark.parametrize("daemon", sorted(OUTAGE_MARK))
def test_sdk_device_reconnecting_during_an_outage_is_not_locked_out(sim, make_hub, daemon):
    dev = "outage-" + daemon.split("-", 1)[1]
    child = sim.add_child(dev)
    probe_id = dev + "-probe"
    probe_key = sim.add_child(probe_id)["primaryKey"]
    hub = make_hub().start()
    wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["synced"], 20, what="scope sync")

    cs = (f"HostName={HUB_NAME};DeviceId={dev};SharedAccessKey={child['primaryKey']};"
          f"GatewayHostName=localhost:{hub.tls_port}")
    node = subprocess.Popen(["node", DEVICE, cs, hub.pki.ca_cert, "100", str(COUNT)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = LogPump(node.stdout, dev)
    victim = None
    try:
        wait_until(lambda: sum(e["event"] == "acked" for e in sdk_events(out)) >= 3, 30,
                   what=f"the device to send: {out.text()}")
        victim = hub.child_pid(daemon)
        assert victim, f"no running {daemon}"
        os.kill(victim, signal.SIGSTOP)
        if daemon == "edgehub-auth-cache":
            hub.kill9("mosquitto")
        try:
            if OUTAGE_MARK[daemon]:
                hub.log.wait_for(OUTAGE_MARK[daemon].format(dev=dev), timeout=30)
            else:
                before = sum(e["event"] == "acked" for e in sdk_events(out))
                wait_until(lambda: sum(e["event"] == "acked" for e in sdk_events(out)) >= before + 3, 30,
                           what=f"PUBACKs while {daemon} is stopped: {out.text()}")
            if daemon == "edgehub-auth-cache":
                # On the wire: no CONNACK at all (paho sees the close), where there used to be 5.
                probe = Device(hub, probe_id, probe_key)
                assert probe.connect(timeout=10) is None
                probe.close()
        finally:
            # Whatever happened, end the outage: the runner restarts the daemon.
            os.kill(victim, signal.SIGKILL)
        assert node.poll() is None, f"the SDK gave up during the outage: {out.text()}"
        wait_until(lambda: hub.child_pid(daemon) not in (None, victim), 20, what=f"{daemon} restarted")
        node.wait(180)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()

    events = sdk_events(out)
    assert node.returncode == 0, out.text()
    # The SDK's retry policy carried every sendEvent() across the outage: none failed.
    assert not [e for e in events if e["event"] in ("error", "fatal")], out.text()
    assert {"event": "done", "acked": COUNT} in events, out.text()
    acked = [e["n"] for e in events if e["event"] == "acked"]
    assert acked == list(range(COUNT))
    # Never "not authorised": the credentials were right all along.
    assert f"Client '{dev}' refused" not in hub.log.text()
    # ... which stays the answer to credentials that are wrong, and only to those.
    assert Device(hub, probe_id, new_key()).connect() == 5
    good = Device(hub, probe_id, probe_key)
    assert good.connect() == 0
    good.close()

    def arrived():
        seqs = [json.loads(r["payload"])["seq"] for r in sim.telemetry(dev)["records"]]
        return seqs if set(acked) <= set(seqs) else None
    seqs = wait_until(arrived, 60, interval=0.2, what="every acknowledged message in the cloud")
    first_seen = list(dict.fromkeys(seqs))  # one in flight when the connection dropped may come twice
    assert first_seen == list(range(COUNT)), seqs
