"""The agent (edgehub-agent): deployments from a local file and from the $edgeAgent
twin, modules as supervised processes with back-off, the SDK environment, runtime
status in the reported properties, and the last good deployment across restarts
while the uplink is down. Real processes only: the simulator, edgehub-run with
mosquitto + plugin + every daemon, an Azure IoT Node.js SDK module, a paho module."""
import json
import os
import shutil
import time

import pytest

from edgehub_harness import EDGE_ID, ROOT, sim_patch_desired, sim_reported_log, sim_twin, wait_until

SAMPLE = os.path.join(ROOT, "tests", "modules", "sample-module", "index.cjs")
SINK = os.path.join(ROOT, "tests", "modules", "sink", "sink.py")
AGENT = f"{EDGE_ID}/$edgeAgent"
ROUTE = 'FROM /messages/modules/sample/outputs/out1 INTO BrokeredEndpoint("/modules/sink/inputs/in1")'


def system():
    return {
        "runtime": {"type": "process", "settings": {}},
        "systemModules": {
            "edgeAgent": {"type": "process", "settings": {}},
            "edgeHub": {"type": "process", "status": "running", "restartPolicy": "always", "settings": {},
                        "env": {"UpstreamProtocol": {"value": "Mqtt"}}},
        },
    }


def module(path, args=(), policy="always", status="running", env=None):
    m = {"type": "process", "status": status, "restartPolicy": policy,
         "settings": {"path": path, "args": list(args)}}
    if env:
        m["env"] = {k: {"value": v} for k, v in env.items()}
    return m


def manifest(modules, schema="1.1"):
    return {"schemaVersion": schema, **system(), "modules": modules}


def deploy(hub, workdir, doc, check=True):
    path = os.path.join(workdir, f"deploy-{time.monotonic_ns()}.json")
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return hub.hubctl("deploy", path, check=check)


def modules_by_name(hub):
    return {m["name"]: m for m in hub.hubctl_json("modules")["modules"]}


def sink_lines(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def add_modules(sim, *names):
    for n in names:
        sim.add_identity(EDGE_ID, n)


def test_offline_modules_route_backoff_and_cached_deployment(sim, make_hub, workdir):
    add_modules(sim, "sample", "sink", "crash")
    hub = make_hub(routes={"sampleToSink": ROUTE}).start()
    wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["synced"], 20, what="scope sync")
    sim.cut()

    from edgehub_harness import module_output_dir
    out = os.path.join(module_output_dir(os.path.join(workdir, "out")), "sink.jsonl")
    doc = manifest({
        "sample": module("/usr/bin/node", [SAMPLE], env={"INTERVAL_MS": "200"}),
        "sink": module("/usr/bin/python3", [SINK, out]),
        "crash": module("/bin/sh", ["-c", "exit 3"], policy="on-failure"),
    })
    p = deploy(hub, workdir, doc)
    assert "local file" in p.stdout

    # The Node SDK module connects with its environment; its output reaches the sink through the route.
    wait_until(lambda: len(sink_lines(out)) >= 3, 45, interval=0.3, what="messages from sample at sink")
    got = sink_lines(out)
    assert got[0]["input"] == "in1"
    assert json.loads(got[0]["payload"])["from"] == "sample"
    assert '"module":"sample","event":"twin"' in hub.log.text()

    # The crashing module is restarted with back-off (1 s, 2 s, 4 s...), not in a fork storm.
    t0 = time.monotonic()
    wait_until(lambda: modules_by_name(hub)["crash"]["restartCount"] >= 2, 15, interval=0.2, what="two restarts")
    time.sleep(2)
    crash = modules_by_name(hub)["crash"]
    assert crash["exitCode"] == 3
    assert crash["runtimeStatus"] in ("backoff", "running")
    assert crash["restartCount"] <= 2 + int(time.monotonic() - t0) // 2
    assert crash["backoffMs"] >= 2000
    assert "exited with code 3" in crash["statusDescription"]
    text = hub.hubctl("modules").stdout
    assert "crash" in text and "sample" in text and "running" in text

    # The runtime status was reported while offline: twin-sync holds it for the cloud.
    twin = hub.hubctl_json("twins", "show", AGENT)
    assert twin["pending"] >= 1
    assert twin["reported"]["modules"]["sample"]["runtimeStatus"] == "running"
    assert twin["reported"]["modules"]["crash"]["exitCode"] == 3

    # A refused deployment keeps the running one.
    pids = {n: m["pid"] for n, m in modules_by_name(hub).items() if n != "crash"}
    p = deploy(hub, workdir, manifest({"x": module("/nonexistent/module")}), check=False)
    assert p.returncode == 4
    assert "module 'x': executable '/nonexistent/module': No such file or directory" in p.stderr
    dep = hub.hubctl_json("deployment")
    assert dep["last"]["code"] == 400 and "nonexistent" in dep["last"]["description"]
    assert {n: m["pid"] for n, m in modules_by_name(hub).items() if n != "crash"} == pids

    # Restart the whole hub with the uplink still down: the saved deployment runs again.
    hub.stop()
    os.unlink(out)
    hub.start()
    dep = hub.hubctl_json("deployment")
    assert dep["applied"]["source"] == "file" and dep["applied"]["modules"] == 3
    # ... and still says why the last one was refused.
    assert dep["last"]["code"] == 400 and "nonexistent" in dep["last"]["description"]
    wait_until(lambda: len(sink_lines(out)) >= 3, 45, interval=0.3, what="messages at sink after the restart")

    # Back online: the queued reported status reaches the cloud.
    sim.restore()
    wait_until(lambda: "sample" in (sim_twin(sim, AGENT)["reported"].get("modules") or {}), 60, interval=0.5,
               what="the agent's reported status in the cloud")
    reported = sim_twin(sim, AGENT)["reported"]["modules"]
    assert reported["sink"]["runtimeStatus"] == "running"
    assert reported["crash"]["exitCode"] == 3

    # The cloud calls the SDK module's direct method through the gateway.
    def ping():
        r = sim.call("POST", f"/methods/{EDGE_ID}/sample", {"methodName": "ping", "payload": {"x": 1},
                                                          "responseTimeoutInSeconds": 5}, expect=(200, 404, 504))
        return r if r and r.get("status") == 200 else None
    r = wait_until(ping, 60, interval=1, what="the sample module to answer ping")
    assert r["payload"] == {"pong": {"x": 1}, "module": "sample"}


def test_online_deployment_from_twin_applied_and_reported(sim, make_hub, workdir):
    add_modules(sim, "a", "b", "c")
    hub = make_hub().start()
    wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["synced"], 20, what="scope sync")

    sleep = "/bin/sleep"
    sim_patch_desired(sim, AGENT, manifest({"a": module(sleep, ["1000"]), "b": module(sleep, ["1001"])}))
    wait_until(lambda: {"a", "b"} <= {n for n, m in modules_by_name(hub).items() if m["runtimeStatus"] == "running"},
               90, interval=0.5, what="a and b running from the twin")
    v1 = sim_twin(sim, AGENT)["desired"]["$version"]
    wait_until(lambda: sim_twin(sim, AGENT)["reported"].get("lastDesiredVersion") == v1, 30, interval=0.5,
               what="lastDesiredVersion reported")
    rep = sim_twin(sim, AGENT)["reported"]
    assert rep["lastDesiredStatus"]["code"] == 200
    assert rep["modules"]["a"]["runtimeStatus"] == "running"
    before = modules_by_name(hub)

    # Remove a, change b, add c; all in one new deployment.
    sim_patch_desired(sim, AGENT, {"modules": {"a": None, "b": module(sleep, ["1002"]), "c": module(sleep, ["1003"])}})
    v2 = sim_twin(sim, AGENT)["desired"]["$version"]

    def applied():
        ms = modules_by_name(hub)
        return ("a" not in ms and ms.get("c", {}).get("runtimeStatus") == "running"
                and ms.get("b", {}).get("runtimeStatus") == "running" and ms["b"]["pid"] != before["b"]["pid"])
    wait_until(applied, 90, interval=0.5, what="the second deployment applied")
    wait_until(lambda: sim_twin(sim, AGENT)["reported"].get("lastDesiredVersion") == v2, 30, interval=0.5,
               what="the second deployment reported")
    rep = sim_twin(sim, AGENT)["reported"]
    assert "a" not in rep["modules"]
    assert set(rep["modules"]) == {"b", "c"}
    assert hub.hubctl_json("deployment")["applied"]["source"] == "twin"

    # A docker module: refused whole, named; the running modules stay.
    pids = {n: m["pid"] for n, m in modules_by_name(hub).items()}
    sim_patch_desired(sim, AGENT, {"modules": {"d": {"type": "docker", "status": "running", "restartPolicy": "always",
                                                     "settings": {"image": "mcr.microsoft.com/x"}}}})
    v3 = sim_twin(sim, AGENT)["desired"]["$version"]
    wait_until(lambda: sim_twin(sim, AGENT)["reported"].get("lastDesiredVersion") == v3, 90, interval=0.5,
               what="the refusal reported")
    status = sim_twin(sim, AGENT)["reported"]["lastDesiredStatus"]
    assert status["code"] == 400
    assert "module 'd' is of type docker" in status["description"]
    assert {n: m["pid"] for n, m in modules_by_name(hub).items()} == pids
    assert any(p["identity"] == AGENT for p in sim_reported_log(sim, AGENT))


def with_storage_folder(doc, folder):
    if folder is not None:
        doc["systemModules"]["edgeHub"]["env"]["storageFolder"] = {"value": folder}
    return doc


def store_status(hub):
    return hub.hubctl_json("status")["hub_store"]["store"]


def test_storage_folder_moves_the_store_offline_losing_nothing(sim, make_hub, workdir):
    """edgeHub's storageFolder moves the message store (a copy checked whole, then the switch) while
    messages wait in it; a folder that cannot hold it refuses the deployment whole; the store is
    found there after a restart; everything reaches the cloud in order once the uplink returns."""
    from edgehub_harness import Device, telemetry_payloads
    key = sim.add_child("mover")["primaryKey"]
    hub = make_hub().start()
    wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["synced"], 20, what="scope sync")
    sim.cut()
    d = Device(hub, "mover", key)
    assert d.connect() == 0
    for i in range(40):
        assert d.send(f"m-{i}")
    default_dir = os.path.join(hub.storage, "messages")
    assert store_status(hub)["dir"] == default_dir and store_status(hub)["messages"] == 40

    from edgehub_harness import hub_owned_dir
    # A disk given to the hub: hub-store runs as the hub's user, not root.
    disks = hub_owned_dir(os.path.join(workdir, "disks"))
    sd = os.path.join(disks, "sd card")
    sleeper = {"s": module("/bin/sleep", ["1000"])}
    deploy(hub, workdir, with_storage_folder(manifest(sleeper), sd))
    moved = os.path.join(sd, "messages")
    wait_until(lambda: store_status(hub)["dir"] == moved and "moving_to" not in store_status(hub), 20,
               interval=0.2, what="the store moved")
    assert store_status(hub)["messages"] == 40
    assert not os.path.exists(default_dir), "the old folder is deleted once the copy holds everything"
    assert "moving to" not in hub.hubctl("status").stdout and moved in hub.hubctl("status").stdout
    assert hub.hubctl_json("deployment")["last"]["code"] == 200
    assert f"Message store moved to '{moved}': 40 message(s)" in hub.log.text()

    # Folders that cannot hold it: the deployment is refused whole, the store and the modules stay.
    afile = os.path.join(workdir, "a-file")
    open(afile, "w").close()
    taken = os.path.join(disks, "taken")
    os.makedirs(os.path.join(taken, "messages"))
    open(os.path.join(taken, "messages", "CURRENT"), "w").close()
    hub_owned_dir(taken)
    pid = modules_by_name(hub)["s"]["pid"]
    for folder, reason in ((os.path.join(afile, "x"), "Not a directory"),
                           (taken, "exists already and is not an empty folder"),
                           ("relative/dir", "not an absolute, normalized path"),
                           (sd + "/../elsewhere", "not an absolute, normalized path")):
        p = deploy(hub, workdir, with_storage_folder(manifest({"t": module("/bin/sleep", ["1001"])}), folder),
                   check=False)
        assert p.returncode == 4, p.stderr
        assert "systemModules.edgeHub.env.storageFolder: " in p.stderr and reason in p.stderr, p.stderr
        assert hub.hubctl_json("deployment")["last"]["code"] == 400
    assert set(modules_by_name(hub)) == {"s"} and modules_by_name(hub)["s"]["pid"] == pid
    assert store_status(hub)["dir"] == moved and store_status(hub)["messages"] == 40

    # A restart (still offline) opens the store where it went.
    for i in range(40, 50):
        assert d.send(f"m-{i}")
    d.close()
    hub.stop()
    hub.start()
    assert store_status(hub)["dir"] == moved and store_status(hub)["messages"] == 50

    # A crash after a copy was made but before the switch was recorded: the next start redoes the move
    # from the whole old folder (the agent then asks for the deployment's folder again, and it moves back).
    hub.stop()
    again = os.path.join(disks, "sd2", "messages")
    shutil.copytree(moved, again)
    hub_owned_dir(os.path.join(disks, "sd2"))
    with open(os.path.join(hub.storage, "store-location.json"), "w") as f:
        json.dump({"dir": moved, "wanted": again}, f)
    hub.start()
    assert f"Message store moved to '{again}': 50 message(s)" in hub.log.text()
    wait_until(lambda: store_status(hub)["dir"] == moved, 20, interval=0.2, what="the deployment's folder again")
    assert store_status(hub)["messages"] == 50 and not os.path.exists(again)

    # A deployment without storageFolder puts it back under storage.dir.
    deploy(hub, workdir, manifest(sleeper))
    wait_until(lambda: store_status(hub)["dir"] == default_dir, 20, interval=0.2, what="the store moved back")
    assert store_status(hub)["messages"] == 50 and not os.path.exists(moved)

    sim.restore()
    wait_until(lambda: len(set(telemetry_payloads(sim, "mover"))) == 50, 60, interval=0.3,
               what="every stored message upstream")
    got = telemetry_payloads(sim, "mover")
    assert [p for k, p in enumerate(got) if p not in got[:k]] == [f"m-{i}" for i in range(50)]
