"""A client no one here wrote: the Azure IoT Node.js SDK (azure-iot-device +
azure-iot-device-mqtt) as a child device, through the gateway over TLS, while
the uplink is down."""
import json
import os
import subprocess

from edgehub_harness import HUB_NAME, ROOT, telemetry_payloads, wait_until

DEVICE = os.path.join(ROOT, "tests", "demo", "azure-device.cjs")


def test_azure_sdk_device_offline_then_delivered(sim, make_hub):
    child = sim.add_child("sdk-dev")
    hub = make_hub().start()
    wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["synced"], 20, what="scope sync")
    sim.cut()

    cs = (f"HostName={HUB_NAME};DeviceId=sdk-dev;SharedAccessKey={child['primaryKey']};"
          f"GatewayHostName=localhost:{hub.tls_port}")
    p = subprocess.run(["node", DEVICE, cs, hub.pki.ca_cert, "10", "20"],
                       capture_output=True, text=True, timeout=90)
    events = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0, p.stdout + p.stderr
    assert {"event": "done", "acked": 20} in events
    assert telemetry_payloads(sim, "sdk-dev") == []
    assert hub.upstream_queue()["messages"] == 20

    sim.restore()
    hub.wait_drained(30)
    records = sim.telemetry("sdk-dev")["records"]
    assert [json.loads(r["payload"])["seq"] for r in records] == list(range(20))
    # the SDK's system properties survive the store-and-forward
    assert records[0]["properties"]["$.mid"] == "demo-0"
    assert records[0]["properties"]["seq"] == "0"
