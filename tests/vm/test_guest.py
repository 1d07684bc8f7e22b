"""The installed package under a real systemd (PID 1 in a KVM guest), its real units and
sandboxes: start and stop of edgehub.target, a device through the forwarded 8883, method-router
on 443, the watchdog restarting a frozen daemon, the journal's levels, systemd-analyze security
on the live system, a module under the agent's sandbox, a storageFolder move under
ReadWritePaths=, and a reboot with the uplink cut. The tests run in order on one guest."""
import json
import os
import re
import socket
import ssl
import subprocess
import time

from conftest import UNITS, Gateway, status_json, wait_scope_synced, wait_units_active
from edgehub_harness import EDGE_ID, HUB_NAME, ROOT, Device, telemetry_payloads, wait_until

SERVICES = " ".join(u + ".service" for u in UNITS)
SDK_DEVICE = os.path.join(ROOT, "tests", "demo", "azure-device.cjs")


def connected_device(guest, sim, device_id, key, timeout=60):
    """A paho device on the host, through the forward to the guest's 8883."""
    def connect():
        d = Device(Gateway(guest), device_id, key)
        if d.connect(timeout=5) == 0:
            return d
        d.close()
        return None
    return wait_until(connect, timeout, interval=1, what=f"{device_id} to connect through the forward")


def add_device(guest, sim, device_id):
    """A child device in the simulator, and in auth-cache's scope (synced now, not in an hour)."""
    key = sim.add_child(device_id)["primaryKey"]
    guest.wait(f"hubctl sync >/dev/null; hubctl devices | grep -qw '{device_id}'", 60,
               f"{device_id} in the cached scope", interval=1)
    return key


def wait_arrived(sim, device_id, payloads, timeout=60):
    wait_until(lambda: set(payloads) <= set(telemetry_payloads(sim, device_id)), timeout, interval=0.5,
               what=f"{len(payloads)} messages of {device_id} at the simulator")
    got = [p for p in telemetry_payloads(sim, device_id) if p in set(payloads)]
    first = list(dict.fromkeys(got))  # first arrivals (a redelivery may repeat one)
    assert first == list(payloads), f"out of order: {first}"


def show(guest, unit, *props):
    text = guest.out(f"systemctl show {unit} " + " ".join(f"-p {p}" for p in props))
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_01_start_target_every_unit_active(guest, sim):
    guest.run("systemctl start edgehub.target", timeout=90)
    wait_units_active(guest)
    print(guest.out("systemctl --no-pager list-units 'edgehub*'"))
    wait_scope_synced(guest)
    # Still active, never restarted (a unit failing before READY=1 may flicker through active).
    for u in UNITS:
        p = show(guest, u + ".service", "ActiveState", "NRestarts")
        assert p == {"ActiveState": "active", "NRestarts": "0"}, (u, p)


def test_02_device_sends_through_the_forward(guest, sim):
    key = add_device(guest, sim, "vm-dev-1")
    d = connected_device(guest, sim, "vm-dev-1", key)
    payloads = [f"vm-hello-{i}" for i in range(10)]
    for p in payloads:
        assert d.send(p), f"{p} not acknowledged"
    d.close()
    wait_arrived(sim, "vm-dev-1", payloads)


def test_02_azure_sdk_device_sends_through_the_forward(guest, sim):
    """A device no one here wrote: the Azure IoT Node.js SDK, its default options, the forwarded 8883."""
    key = add_device(guest, sim, "vm-sdk")
    cs = f"HostName={HUB_NAME};DeviceId=vm-sdk;SharedAccessKey={key};GatewayHostName=localhost:{guest.tls_port}"
    p = subprocess.run(["node", SDK_DEVICE, cs, guest.ca_file, "20", "15"], capture_output=True, text=True,
                       timeout=120)
    events = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0 and {"event": "done", "acked": 15} in events, p.stdout + p.stderr
    wait_until(lambda: len(sim.telemetry("vm-sdk")["records"]) >= 15, 60, interval=0.5,
               what="the SDK device's 15 messages at the simulator")
    seqs = [json.loads(r["payload"])["seq"] for r in sim.telemetry("vm-sdk")["records"]]
    assert list(dict.fromkeys(seqs)) == list(range(15)), seqs


def test_03_method_router_serves_443(guest, sim):
    listening = guest.out("ss -Hltnp 'sport = :443'")
    print(listening)
    assert "edgehub-method" in listening, f"nothing of method-router on 443: {listening!r}\n" + \
        guest.out("journalctl -b -u edgehub-method-router --no-pager | tail -n 20")
    # TLS with the gateway's certificate, through the host's forward to the guest's 443.
    ctx = ssl.create_default_context(cafile=guest.ca_file)
    with socket.create_connection(("127.0.0.1", guest.methods_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"POST /twins/x/methods?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            answer = s.recv(200).decode(errors="replace")
    print("method-router on 443:", answer.splitlines()[0])
    assert re.match(r"HTTP/1\.[01] [1-5][0-9][0-9] ", answer), answer


def test_04_watchdog_restarts_a_frozen_daemon_nothing_lost(guest, sim):
    key = add_device(guest, sim, "vm-wd")
    d = connected_device(guest, sim, "vm-wd", key)
    sim.cut()
    before = [f"wd-before-{i}" for i in range(20)]
    for p in before:
        assert d.send(p), f"{p} not acknowledged"
    unit = "edgehub-hub-store.service"
    props = show(guest, unit, "MainPID", "NRestarts", "WatchdogUSec")
    pid, restarts = int(props["MainPID"]), int(props["NRestarts"])
    watchdog = int(props["WatchdogUSec"].rstrip("s")) if props["WatchdogUSec"].rstrip("s").isdigit() else None
    print(f"hub-store pid {pid}, WatchdogSec={props['WatchdogUSec']}: SIGSTOP")
    t0 = time.monotonic()
    guest.run(f"kill -STOP {pid}")
    guest.wait(f"[ \"$(systemctl show -p MainPID --value {unit})\" != {pid} ] && "
               f"[ \"$(systemctl show -p MainPID --value {unit})\" != 0 ] && systemctl is-active --quiet {unit}",
               90, "systemd to restart the frozen hub-store", interval=1)
    took = time.monotonic() - t0
    after = show(guest, unit, "NRestarts")
    print(f"hub-store restarted by systemd {took:.0f}s after SIGSTOP (WatchdogSec {props['WatchdogUSec']})")
    assert int(after["NRestarts"]) == restarts + 1
    journal = guest.out(f"journalctl -b -u {unit} --no-pager | grep -i watchdog || true")
    print(journal.strip())
    assert "Watchdog timeout" in journal, journal
    del watchdog
    wait_units_active(guest)
    more = [f"wd-after-{i}" for i in range(5)]
    for p in more:
        wait_until(lambda: d.send(p, timeout=5), 30, interval=0.5, what=f"{p} acknowledged")
    d.close()
    sim.restore()
    wait_arrived(sim, "vm-wd", before + more, timeout=90)


def test_05_journal_shows_the_levels(guest, sim):
    # A device's malformed reported patch: twin-sync refuses it (400) with a warning of its own.
    key = add_device(guest, sim, "vm-warn")
    d = connected_device(guest, sim, "vm-warn", key)
    d.client.publish("$iothub/twin/PATCH/properties/reported/?$rid=bad-1", b"not json", qos=1).wait_for_publish(10)
    d.close()
    guest.wait("journalctl -b -u edgehub-twin-sync -p warning --no-pager | grep -q 'Refusing a reported patch'", 30,
               "twin-sync's warning in the journal", interval=1)
    text = guest.out("journalctl -b -u 'edgehub*' -p warning --no-pager -o json")
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    shown = guest.out("journalctl -b -u 'edgehub*' -p warning --no-pager | tail -n 15")
    print(shown)
    assert entries, "no warning in the edgehub units' journal after a link cut and a watchdog kill"
    assert all(int(e["PRIORITY"]) <= 4 for e in entries)
    ours = [e for e in entries if e.get("SYSLOG_IDENTIFIER", "").startswith("edgehub")]
    assert ours, "no warning logged by an edgehub daemon itself"
    info = guest.out("journalctl -b -u edgehub-hub-store -o json --no-pager")
    prios = {int(json.loads(line)["PRIORITY"]) for line in info.splitlines() if line.startswith("{")}
    print("hub-store journal priorities:", sorted(prios))
    assert 6 in prios and min(prios) <= 4, prios


def test_06_systemd_analyze_security_live(guest, sim):
    scores = {}
    for u in UNITS:
        text = guest.out(f"systemd-analyze security --no-pager {u}.service | tail -n 1")
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\S+)", text)
        assert m, text
        scores[u] = (float(m.group(1)), m.group(2))
    for u, (s, word) in scores.items():
        print(f"systemd-analyze security (live): {u}.service {s} {word}")
    assert all(s <= 2.0 for s, _ in scores.values()), scores


def deploy(guest, doc):
    guest.put("deployment.json", json.dumps(doc))
    return guest.run("cp /host/files/deployment.json /run/deployment.json && hubctl deploy /run/deployment.json")


def manifest(modules, storage_folder=None):
    hub = {"type": "process", "status": "running", "restartPolicy": "always", "settings": {},
           "env": {"UpstreamProtocol": {"value": "Mqtt"}}}
    if storage_folder:
        hub["env"]["storageFolder"] = {"value": storage_folder}
    return {"schemaVersion": "1.1", "runtime": {"type": "process", "settings": {}},
            "systemModules": {"edgeAgent": {"type": "process", "settings": {}}, "edgeHub": hub},
            "modules": modules}


PROBE = ("echo \"probe: uid=$(id -un) $(grep NoNewPrivs /proc/self/status | tr -s '\\t' ' ') "
         "$(grep CapEff /proc/self/status | tr -s '\\t' ' ')\"; "
         "if touch /usr/probe 2>/dev/null; then echo 'probe: /usr writable'; else echo 'probe: /usr read-only'; fi; "
         "exec sleep 1001")
SLEEPER = {"probe": {"type": "process", "status": "running", "restartPolicy": "always",
                     "settings": {"path": "/bin/sh", "args": ["-c", PROBE]}}}


def test_07_agent_runs_a_module_in_its_sandbox(guest, sim):
    sim.add_identity(EDGE_ID, module_id="probe")
    guest.wait("hubctl sync >/dev/null; hubctl devices | grep -q 'edge-1/probe'", 60,
               "the module identity in the cached scope", interval=1)
    deploy(guest, manifest(SLEEPER))
    pid = guest.wait("pgrep -x -f 'sleep 1001'", 30, "the probe module to run").split()[0]
    cgroup = guest.out(f"cat /proc/{pid}/cgroup")
    owner = int(guest.out(f"stat -c %u /proc/{pid}").strip())
    said = guest.wait("journalctl -b -u edgehub-agent --no-pager | grep 'probe:'", 20, "the probe's output")
    print(said.strip())
    print("probe module cgroup:", cgroup.strip(), "user:", owner)
    assert "edgehub-agent.service" in cgroup
    # Its own uid from agent.module_uids (620000-629999 by default), not the hub's.
    hub_uid = int(guest.out("id -u edgehub").strip())
    assert owner != hub_uid and 620000 <= owner <= 629999, owner
    assert "NoNewPrivs: 1" in said and "CapEff: 0000000000000000" in said
    assert "probe: /usr read-only" in said


def test_08_storage_folder_move_under_read_write_paths(guest, sim):
    """An operator's data disk outside /var/lib/edgehub: granted to hub-store with ReadWritePaths=."""
    key = add_device(guest, sim, "vm-mover")
    guest.run("install -d -o edgehub -g edgehub -m 0750 /srv/edgehub-data && "
              "mkdir -p /etc/systemd/system/edgehub-hub-store.service.d && "
              "printf '[Service]\\nReadWritePaths=/srv/edgehub-data\\n' "
              ">/etc/systemd/system/edgehub-hub-store.service.d/data.conf && "
              "systemctl daemon-reload && systemctl restart edgehub-hub-store.service")
    wait_units_active(guest)
    d = connected_device(guest, sim, "vm-mover", key)
    sim.cut()
    payloads = [f"mv-{i}" for i in range(15)]
    for p in payloads:
        assert d.send(p)
    d.close()
    deploy(guest, manifest(SLEEPER, storage_folder="/srv/edgehub-data/store"))
    moved = "/srv/edgehub-data/store/messages"

    def store():
        return status_json(guest)["hub_store"]["store"]
    wait_until(lambda: store()["dir"] == moved and "moving_to" not in store(), 60, interval=0.5,
               what="the store moved to the data disk")
    print("store after the move:", store())
    assert guest.run("test -d /srv/edgehub-data/store/messages && ! test -e /var/lib/edgehub/messages",
                     check=False)[0] == 0, guest.out("ls -la /srv/edgehub-data/store /var/lib/edgehub")
    sim.restore()
    wait_arrived(sim, "vm-mover", payloads)
    # Back under storage.dir for the tests that follow (the power cuts read /var/lib/edgehub).
    deploy(guest, manifest(SLEEPER))
    wait_until(lambda: store()["dir"] == "/var/lib/edgehub/messages" and "moving_to" not in store(), 60,
               interval=0.5, what="the store back under storage.dir")


def test_09_stop_leaves_no_unit_failed(guest, sim):
    guest.run("systemctl stop edgehub.target", timeout=90)
    states = guest.out(f"systemctl show {SERVICES} -p Id -p ActiveState -p Result -p ExecMainStatus")
    print(states)
    failed = guest.out("systemctl --no-pager list-units --failed 'edgehub*' --no-legend")
    assert not failed.strip(), failed
    for block in states.strip().split("\n\n"):
        p = dict(line.split("=", 1) for line in block.splitlines())
        assert p["ActiveState"] == "inactive" and p["Result"] == "success", p
        assert p["ExecMainStatus"] == "0", p


def test_10_reboot_with_the_uplink_cut(guest, sim):
    """Enabled at boot; the scope cached before the reboot lets a device in while the link is down."""
    guest.run("systemctl enable edgehub.target && systemctl start edgehub.target", timeout=90)
    wait_units_active(guest)
    key = add_device(guest, sim, "vm-reboot")
    sim.cut()
    old = guest.boot_id
    guest.reboot()
    assert guest.boot_id != old
    wait_units_active(guest, timeout=90)
    print(guest.out("systemctl --no-pager list-units 'edgehub*' --no-legend"))
    d = connected_device(guest, sim, "vm-reboot", key)
    payloads = [f"rb-{i}" for i in range(5)]
    for p in payloads:
        assert d.send(p)
    d.close()
    assert not set(payloads) & set(telemetry_payloads(sim, "vm-reboot")), "the link was cut"
    sim.restore()
    wait_arrived(sim, "vm-reboot", payloads)
