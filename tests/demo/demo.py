"""The edgehub demo: an Azure SDK child device keeps sending through an
uplink cut; the hub stores, then drains in order when the link returns.

Run by ./run-demo (which builds first). Uses the integration harness: the
same simulator, PKI and runner the tests use.
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from edgehub_harness import (EDGE_ID, HUB_NAME, ROOT, Hub, Pki, Simulator,  # noqa: E402
                             hub_owned_dir, module_output_dir, telemetry_payloads, wait_until)

DEMO_DIR = os.path.join(ROOT, ".demo")


def say(text):
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def show(hub, *args):
    print(f"$ hubctl {' '.join(args)}", flush=True)
    p = hub.hubctl(*args, check=False)
    print((p.stdout + p.stderr).rstrip(), flush=True)


class AzureDevice:
    """tests/demo/azure-device.cjs: the Azure IoT Node.js SDK, connected through the gateway."""

    def __init__(self, hub, device_id, key, interval_ms=100):
        cs = (f"HostName={HUB_NAME};DeviceId={device_id};SharedAccessKey={key};"
              f"GatewayHostName=localhost:{hub.tls_port}")
        script = os.path.join(os.path.dirname(__file__), "azure-device.cjs")
        self.proc = subprocess.Popen(["node", script, cs, hub.pki.ca_cert, str(interval_ms)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.acked = 0
        self.errors = []
        self.connected = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev["event"] == "connected":
                self.connected.set()
            elif ev["event"] == "acked":
                self.acked = ev["n"] + 1
            elif ev["event"] in ("error", "fatal"):
                self.errors.append(ev)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


ROUTES = {
    "upstream": "FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream",
    "sampleToSink": 'FROM /messages/modules/sample/outputs/out1 INTO BrokeredEndpoint("/modules/sink/inputs/in1")',
}


def modules_offline(hub, sim):
    """The agent runs a deployment with the uplink down: an Azure IoT Node.js SDK module
    (tests/modules/sample-module) whose output a route takes to a second module's input."""
    say("Offline again: the agent runs a deployment of two modules; a route takes one's output to the other;\n"
        "its edgeHub storageFolder moves the message store (a checked copy) to another folder")
    sim.cut()
    # Each module runs as its own user: the sink writes where any of them may; hub-store (the hub's user) gets a disk.
    out = os.path.join(module_output_dir(os.path.join(DEMO_DIR, "out")), "sink.jsonl")
    disk = hub_owned_dir(os.path.join(DEMO_DIR, "disks"))
    proc = lambda path, args: {"type": "process", "status": "running", "restartPolicy": "always",  # noqa: E731
                               "settings": {"path": path, "args": args}}
    manifest = {
        "schemaVersion": "1.1",
        "runtime": {"type": "process", "settings": {}},
        "systemModules": {"edgeAgent": {"type": "process", "settings": {}},
                          "edgeHub": {"type": "process", "status": "running", "restartPolicy": "always",
                                      "settings": {},
                                      "env": {"storageFolder": {"value": os.path.join(disk, "bigger-disk")}}}},
        "modules": {
            "sample": proc("/usr/bin/node", [os.path.join(ROOT, "tests", "modules", "sample-module", "index.cjs")]),
            "sink": proc("/usr/bin/python3", [os.path.join(ROOT, "tests", "modules", "sink", "sink.py"), out]),
        },
    }
    path = os.path.join(DEMO_DIR, "deployment.json")
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
    show(hub, "deploy", path)

    def received():
        try:
            with open(out) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
    wait_until(lambda: len(received()) >= 5, 60, interval=0.5, what="the sink module to receive 5 messages")
    show(hub, "modules")
    show(hub, "routes")
    show(hub, "status")
    got = received()
    print(f"sink received {len(got)} messages from the sample module on input "
          f"'{got[0]['input']}', with the uplink down")
    # Each module is its own user and holds no key: its SDK had the agent's workload API sign its token.
    for m in hub.hubctl_json("modules")["modules"]:
        with open(f"/proc/{m['pid']}/status") as f:
            uid = next(line.split()[1] for line in f if line.startswith("Uid:"))
        with open(f"/proc/{m['pid']}/environ", "rb") as f:
            env = f.read().decode(errors="replace").split("\0")
        workload = next((e for e in env if e.startswith("IOTEDGE_WORKLOADURI=")), None)
        if not workload or any("SharedAccessKey" in e for e in env):
            raise SystemExit(f"demo FAILED: module {m['name']} has no workload API or holds a key")
        print(f"module {m['name']} runs as uid {uid}, {workload}, no key in its environment")
    sim.restore()


def main():
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    os.makedirs(DEMO_DIR)
    os.chmod(DEMO_DIR, 0o755)

    say("Starting the IoT Hub simulator (MQTT over TLS, HTTPS scope API) with an edge and two child devices")
    pki = Pki(os.path.join(DEMO_DIR, "pki"))
    sim = Simulator(DEMO_DIR, pki).start()
    hub = device = None
    try:
        edgehub_key = sim.add_edge()
        thermostat = sim.add_child("thermostat-1")
        sim.add_child("pump-7")
        for m in ("sample", "sink"):
            sim.add_identity(EDGE_ID, m)

        say("Starting the hub: edgehub-run -> auth-cache, hub-store, mosquitto + edgehub plugin")
        hub = Hub(os.path.join(DEMO_DIR, "hub"), pki, sim, edgehub_key, routes=ROUTES)
        hub.start()
        print(f"config: {hub.config_path}")
        wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["synced"], 20, what="the first scope sync")
        show(hub, "status")
        show(hub, "devices")

        say("A child device using the Azure IoT Node.js SDK connects through the gateway and sends telemetry")
        device = AzureDevice(hub, "thermostat-1", thermostat["primaryKey"])
        if not device.connected.wait(30):
            raise SystemExit(f"the Azure SDK device did not connect: {device.errors}")
        time.sleep(3)
        print(f"device: {device.acked} messages acknowledged; cloud received {sim.count()['total']}")

        say("Cutting the uplink: the gateway is offline")
        sim.cut()
        cut_at = device.acked
        for _ in range(5):
            time.sleep(1.5)
            print(f"device: {device.acked} acknowledged (still sending), cloud has {sim.count()['total']}")
        show(hub, "status")
        show(hub, "queues")

        say("Restoring the uplink: the backlog drains in order")
        sim.restore()
        restored = time.monotonic()
        for _ in range(40):
            show(hub, "queues")
            if hub.upstream_queue()["messages"] == 0 and time.monotonic() - restored > 1:
                break
            time.sleep(0.5)

        device.stop()
        sent = device.acked
        wait_until(lambda: hub.upstream_queue()["messages"] == 0, 30, what="the queue to drain")
        got = telemetry_payloads(sim, "thermostat-1")
        seqs = [json.loads(p)["seq"] for p in got]
        unique = sorted(set(seqs))
        in_order = all(a <= b for a, b in zip(seqs, seqs[1:]))
        say("Result")
        print(f"device acknowledged: {sent}; messages during the outage: {sent - cut_at}")
        print(f"cloud received: {len(seqs)} ({len(unique)} distinct), in order: {in_order}")
        missing = set(range(sent)) - set(unique)
        print(f"missing: {sorted(missing) if missing else 'none'}")
        show(hub, "status")
        if missing or not in_order:
            raise SystemExit("demo FAILED: messages lost or out of order")
        print("nothing acknowledged was lost, and the order held")

        modules_offline(hub, sim)
        print("\ndemo OK")
    finally:
        if device and device.proc.poll() is None:
            device.stop()
        if hub:
            hub.stop()
        sim.stop()


if __name__ == "__main__":
    main()
