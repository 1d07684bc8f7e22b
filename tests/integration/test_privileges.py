"""Least privilege: daemons run as the hub's user, every socket checks its peer, and a module,
each its own user, reaches only what is its own (a hostile module deployed with hubctl deploy)."""
import json
import os
import pwd
import stat
import subprocess

from edgehub_harness import EDGE_ID, ROOT, hub_ids, module_output_dir, wait_until

HOSTILE = os.path.join(ROOT, "tests", "modules", "hostile", "hostile.py")
SINK = os.path.join(ROOT, "tests", "modules", "sink", "sink.py")


def proc_ids(pid):
    ids = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapAmb", "NoNewPrivs"):
                ids[k] = v.split()
    return ids


def process_module(path, args, **settings):
    return {"type": "process", "status": "running", "restartPolicy": "always",
            "settings": {"path": path, "args": list(args), **settings}}


def deploy(hub, workdir, modules):
    doc = {"schemaVersion": "1.1",
           "runtime": {"type": "process", "settings": {}},
           "systemModules": {"edgeAgent": {"type": "process", "settings": {}},
                             "edgeHub": {"type": "process", "status": "running", "restartPolicy": "always",
                                         "settings": {}}},
           "modules": modules}
    path = os.path.join(workdir, "deployment.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return hub.hubctl("deploy", path)


def test_daemons_run_as_the_hub_user_and_sockets_check_their_peer(make_hub, workdir):
    hub = make_hub().start()
    uid, gid = hub_ids()
    broker = pwd.getpwnam("mosquitto")
    for name in ("auth-cache", "hub-store", "method-router", "twin-sync", "agent"):
        ids = proc_ids(hub.child_pid(name))
        assert ids["Uid"] == [str(uid)] * 4 and ids["Gid"] == [str(gid)] * 4, (name, ids)
        # The broker's group, to reach broker.sock; nothing else of root's.
        assert str(broker.pw_gid) in ids["Groups"], (name, ids)
        expected = 0 if name != "agent" else (1 << 0) | (1 << 5) | (1 << 6) | (1 << 7)  # CHOWN KILL SETGID SETUID
        assert int(ids["CapEff"][0], 16) == expected, (name, ids)
    assert proc_ids(hub.child_pid("mosquitto"))["Uid"][0] == str(broker.pw_uid)

    # File modes as edgehub-run leaves them.
    def mode(p):
        st = os.lstat(p)
        return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
    assert mode(hub.runtime) == (0o1771, uid, broker.pw_gid)
    assert mode(os.path.join(hub.runtime, "broker.sock"))[0] & 0o007 == 0
    assert mode(os.path.join(hub.runtime, "notify.sock"))[:2] == (0o600, uid)
    assert mode(os.path.join(hub.runtime, "plugin-config.yaml"))[:2] == (0o600, broker.pw_uid)
    assert mode(hub.storage) == (0o750, uid, broker.pw_gid)
    assert mode(hub.config_path) == (0o640, 0, gid)

    # A local user outside access.read_group/admin_group: refused with a clear line, exit 6.
    nobody = pwd.getpwnam("nobody")

    def as_nobody(*args):
        exe = os.path.join(os.environ.get("EDGEHUB_BUILD", os.path.join(ROOT, "build")), "hubctl", "hubctl")
        # hubctl reads the config (root:edgehub 0640): give it a readable copy, as a user's own would be.
        copy = os.path.join(workdir, "nobody-config.yaml")
        with open(hub.config_path) as src, open(copy, "w") as dst:
            dst.write(src.read().replace(hub.edgehub_key, "AAAAAAAAAAAAAAAAAAAAAA=="))
        os.chmod(copy, 0o644)
        return subprocess.run([exe, "--config", copy, *args], capture_output=True, text=True, timeout=20,
                              user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
    for args in (("status",), ("modules",), ("twins",), ("sync",), ("methods", "invoke", "child", "m")):
        p = as_nobody(*args)
        assert p.returncode == 6, (args, p.returncode, p.stderr)
        assert "permission denied: uid %d" % nobody.pw_uid in p.stderr, (args, p.stderr)
    # The daemons keep serving everyone else.
    assert hub.hubctl("status").returncode == 0


def test_hostile_module_reaches_only_what_is_its_own(sim, make_hub, workdir):
    for m in ("hostile", "sink"):
        sim.add_identity(EDGE_ID, m)
    hub = make_hub(routes={"toSink": 'FROM /messages/modules/hostile/outputs/out1 '
                                     'INTO BrokeredEndpoint("/modules/sink/inputs/in1")'}).start()
    wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["synced"], 20, what="scope sync")

    out = module_output_dir(os.path.join(workdir, "out"))
    sink_out = os.path.join(out, "sink.jsonl")
    probes = {"config": hub.config_path, "server_key": hub.pki.key, "storage": hub.storage,
              "runtime": hub.runtime, "modules_dir": hub.storage + "-modules", "sibling": "sink",
              "sibling_cmd": SINK}
    deploy(hub, workdir, {
        "sink": process_module("/usr/bin/python3", [SINK, sink_out]),
        "hostile": process_module("/usr/bin/python3", [HOSTILE, out, json.dumps(probes)]),
    })

    report_path = os.path.join(out, "hostile.json")
    wait_until(lambda: os.path.exists(report_path), 60, interval=0.3, what="the hostile module's report")
    with open(report_path) as f:
        report = json.load(f)
    allowed = {k: v for k, v in report.items() if not v["refused"]}
    assert not allowed, json.dumps(allowed, indent=1)
    for name in ("read config", "read server key", "read the store", "broker.sock",
                 "join the internal listener as $edgehub/", "agent: deploy", "auth-cache: $edgeHub's key",
                 "read a sibling's environment", "workload: sign for a sibling", "a key in our own environment"):
        assert name in report, name
    assert "permission denied" in report["agent: deploy"]["how"]
    assert "may sign only for itself" in report["workload: sign for a sibling"]["how"]

    # Each module is its own user; no key in either environment (root reads /proc here).
    modules = hub.hubctl_json("modules")["modules"]
    pids = {m["name"]: m["pid"] for m in modules}
    uids = {n: proc_ids(p)["Uid"][0] for n, p in pids.items()}
    assert len(set(uids.values())) == 2 and str(hub_ids()[0]) not in uids.values(), uids
    keys = [i["primaryKey"] for i in sim.call("GET", "/identities")["identities"]
            if i.get("moduleId") in ("hostile", "sink", "$edgeHub")]
    for name, pid in pids.items():
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().decode(errors="replace")
        assert "IOTEDGE_WORKLOADURI=unix://" in env and "SharedAccessKey" not in env, name
        assert not any(k in env for k in keys), name
        ids = proc_ids(pid)
        assert int(ids["CapPrm"][0], 16) == 0 and int(ids["CapAmb"][0], 16) == 0 and ids["NoNewPrivs"] == ["1"], ids

    # Its legitimate traffic still works: a route to another module, its twin, a direct method.
    wait_until(lambda: os.path.exists(sink_out) and "legitimate" in open(sink_out).read(), 30, interval=0.3,
               what="the hostile module's output at the sink")
    wait_until(lambda: os.path.exists(os.path.join(out, "hostile-twin.json")), 20, interval=0.3,
               what="the twin answer")
    with open(os.path.join(out, "hostile-twin.json")) as f:
        assert json.load(f)["status"] == "204"
    p = hub.hubctl("--json", "methods", "invoke", f"{EDGE_ID}/hostile", "ping")
    assert json.loads(p.stdout)["payload"] == {"pong": True}, p.stdout

    # Nothing was deployed by the module: the deployment is still the one hubctl gave.
    assert {m["name"] for m in hub.hubctl_json("modules")["modules"]} == {"hostile", "sink"}


def test_connection_string_is_an_explicit_opt_in(sim, make_hub, workdir):
    sim.add_identity(EDGE_ID, "legacy")
    hub = make_hub().start()
    wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["synced"], 20, what="scope sync")
    deploy(hub, workdir, {"legacy": process_module("/bin/sleep", ["1000"], connectionString=True)})
    pid = hub.hubctl_json("modules")["modules"][0]["pid"]
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = f.read().decode(errors="replace")
    assert "EdgeHubConnectionString=" in env and "SharedAccessKey=" in env
    assert "IOTEDGE_WORKLOADURI" not in env
