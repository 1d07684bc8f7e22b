"""Twins through the hub: GET online and offline, reported patches queued durably
and pushed in order, desired changes reconciled as one minimal patch."""
import json
import os
import subprocess
import time

from edgehub_harness import (BusWatcher, Device, TwinClient, sim_patch_desired, sim_reported_log, sim_twin,
                             wait_until)


def compose(first, second):
    """Merge-patch composition with nulls kept, as twin-sync merges pending patches."""
    out = dict(first)
    for k, v in second.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = compose(out[k], v)
        else:
            out[k] = v
    return out


def twin_sync_on_bus(hub):
    p = hub.hubctl("--json", "twins", check=False)
    return p.returncode == 0 and json.loads(p.stdout)["bus_connected"]


def connect_twin(hub, device_id, key, desired=True):
    # A twin request the plugin relays before twin-sync has joined the bus reaches nobody (MQTT keeps
    # nothing for a topic without subscribers): the SDKs time out and ask again, a test would fail.
    wait_until(lambda: twin_sync_on_bus(hub), 15, what="twin-sync on the bus")
    d = Device(hub, device_id, key)
    assert d.connect() == 0
    t = TwinClient(d)
    t.subscribe(desired=desired)
    return d, t


def test_online_get_and_reported_reach_the_cloud(sim, make_hub):
    key = sim.add_child("tw-1")["primaryKey"]
    sim_patch_desired(sim, "tw-1", {"mode": "fast"})
    hub = make_hub().start()
    # Online means twin-sync has heard of a link up: until then a link that failed its first try
    # (a slow simulator) makes the hub offline, and an offline GET is answered from the cache.
    wait_until(lambda: hub.hubctl_json("twins")["links_up"] > 0, 20, what="an upstream link")
    d, t = connect_twin(hub, "tw-1", key, desired=False)
    status, _, body = t.get()
    assert status == 200
    assert body["desired"] == {"mode": "fast", "$version": 2}
    status, version, _ = t.report({"temp": 21, "nested": {"a": 1}})
    assert status == 204 and version >= 1
    wait_until(lambda: len(sim_reported_log(sim, "tw-1")) == 1, 15, what="the reported patch upstream")
    assert sim_twin(sim, "tw-1")["reported"]["temp"] == 21
    d.close()


def test_offline_reported_patches_survive_restarts_and_arrive_in_order(sim, make_hub):
    key = sim.add_child("tw-off")["primaryKey"]
    hub = make_hub().start()
    d, t = connect_twin(hub, "tw-off", key, desired=False)
    assert t.report({"boot": 1})[0] == 204
    wait_until(lambda: len(sim_reported_log(sim, "tw-off")) == 1, 15, what="the online patch upstream")

    sim.cut()
    patches = [{"seq": i, "gone": i} for i in range(5)] + [{"gone": None, "nested": {"x": 1}}]
    versions = []
    for p in patches:
        status, version, _ = t.report(p, timeout=5)
        assert status == 204, "reported patches are answered at once while offline"
        versions.append(version)
    assert versions == sorted(versions) and len(set(versions)) == len(versions)

    # kill -9 of twin-sync: nothing acknowledged is lost; the runner restarts it.
    old = hub.kill9("edgehub-twin-sync")
    wait_until(lambda: hub.child_pid("edgehub-twin-sync") not in (None, old), 15, what="twin-sync restarted")
    wait_until(lambda: twin_sync_on_bus(hub), 15, what="twin-sync back on the bus")
    upstream = BusWatcher(hub, "$edgehub/#", name="twin-get-watch")
    d.close()
    d, t = connect_twin(hub, "tw-off", key, desired=False)
    more = [{"seq": 10}, {"nested": {"x": None, "y": 2}}]
    for p in more:
        assert t.report(p, timeout=5)[0] == 204
    # An offline GET answers from the cache, with every patch applied.
    status, _, body = t.get(timeout=5)
    assert status == 200
    assert body["reported"]["seq"] == 10 and body["reported"]["nested"] == {"y": 2} and "gone" not in body["reported"]
    # ... at once: the restarted twin-sync asked hub-store and knew the uplink was down, so it did not send
    # the GET upstream first and wait for the cloud to stay silent.
    asked = [line for line in upstream.lines
             if line.startswith("$edgehub/upstream|") and "twin/GET" in line and "tw-off" in line]
    upstream.close()
    assert asked == [], f"the first GET after the restart went to the cloud: {asked}"
    assert "The uplink is down (hub-store says)" in hub.log.text()
    d.close()

    # A whole offline restart of the hub.
    hub.stop()
    hub.start()
    wait_until(lambda: twin_sync_on_bus(hub), 15, what="twin-sync on the bus")
    assert sim_reported_log(sim, "tw-off")[-1]["patch"] == {"boot": 1}, "nothing went up while offline"
    sim.restore()
    # Patches pending together went up merged into one: in order, nulls kept, none lost.
    # (A patch already in flight when more came is never changed: then two went up.)
    merged = {}
    for p in patches + more:
        merged = compose(merged, p)
    # A push sent while the link was down waits TWIN_PUSH_TIMEOUT_LINK_DOWN_USEC (35 s) before its retry.
    wait_until(lambda: hub.hubctl_json("twins")["pending"] == 0, 90, what="queued patches upstream")
    got = [r["patch"] for r in sim_reported_log(sim, "tw-off")]
    deduped = [p for k, p in enumerate(got) if k == 0 or p != got[k - 1]]
    assert deduped[0] == {"boot": 1} and 2 <= len(deduped) <= 3, deduped
    upstream = {}
    for p in deduped[1:]:
        upstream = compose(upstream, p)
    assert upstream == merged, "in order, nulls kept, none lost"
    reported = sim_twin(sim, "tw-off")["reported"]
    assert reported["seq"] == 10 and reported["nested"] == {"y": 2} and "gone" not in reported


def test_desired_changed_while_hub_offline_arrives_as_one_minimal_patch(sim, make_hub):
    key = sim.add_child("tw-des")["primaryKey"]
    sim_patch_desired(sim, "tw-des", {"a": 1, "b": {"c": 1, "keep": True}, "arr": [1, 2]})
    hub = make_hub().start()
    d, t = connect_twin(hub, "tw-des", key)
    status, _, body = t.get()
    assert status == 200 and body["desired"]["a"] == 1
    time.sleep(0.5)
    t.desired.clear()

    sim.cut()
    sim_patch_desired(sim, "tw-des", {"a": None})
    sim_patch_desired(sim, "tw-des", {"b": {"c": 2}})
    sim_patch_desired(sim, "tw-des", {"d": "new", "arr": [3]})
    version = sim_twin(sim, "tw-des")["desired"]["$version"]
    time.sleep(1)
    assert t.desired == [], "nothing reaches the device while the hub is offline"

    sim.restore()
    got = t.wait_desired(1, timeout=30)
    assert got[0] == (version, {"a": None, "b": {"c": 2}, "d": "new", "arr": [3], "$version": version})
    time.sleep(2)
    assert len(t.desired) == 1, "exactly one patch"
    d.close()


def test_device_offline_while_hub_online_gets_the_diff_on_reconnect(sim, make_hub):
    key = sim.add_child("tw-dev")["primaryKey"]
    sim_patch_desired(sim, "tw-dev", {"x": 1, "y": {"z": 1}})
    hub = make_hub().start()
    d, t = connect_twin(hub, "tw-dev", key)
    assert t.get()[0] == 200
    d.close()
    time.sleep(0.5)

    sim_patch_desired(sim, "tw-dev", {"x": None, "y": {"z": 2}})
    sim_patch_desired(sim, "tw-dev", {"w": 5})
    version = sim_twin(sim, "tw-dev")["desired"]["$version"]

    d, t = connect_twin(hub, "tw-dev", key)
    got = t.wait_desired(1, timeout=15)
    assert got[0] == (version, {"x": None, "y": {"z": 2}, "w": 5, "$version": version})
    time.sleep(1.5)
    assert len(t.desired) == 1

    # Online, a change reaches the connected device as it happens.
    sim_patch_desired(sim, "tw-dev", {"w": 6})
    got = t.wait_desired(2, timeout=15)
    assert got[1] == (version + 1, {"w": 6, "$version": version + 1})
    d.close()


def test_bad_patches_get_400_and_the_device_stays_connected(sim, make_hub):
    key = sim.add_child("tw-bad")["primaryKey"]
    hub = make_hub().start()
    d, t = connect_twin(hub, "tw-bad", key, desired=False)
    deep = {"k": 1}
    for _ in range(11):
        deep = {"k": deep}
    bad = [b"not json", b"[1,2]", b'{"a":1,"a":2}', json.dumps({"a.b": 1}), json.dumps({"$x": 1}), json.dumps(deep),
           json.dumps({"s": "x" * 5000})]
    for p in bad:
        assert t.report(p)[0] == 400, p
    # Over IoT Hub's 32 KiB document: each patch fits, the sum does not.
    for i in range(8):
        assert t.report({f"k{i}": "y" * 4000})[0] == 204
    assert t.report({"k8": "y" * 4000})[0] == 400
    # A request without $rid is dropped with a log line, not answered.
    d.client.publish("$iothub/twin/GET/", b"", qos=0)
    hub.log.wait_for("without $rid", timeout=10)
    assert not d.disconnected.is_set()
    assert t.get()[0] == 200
    assert d.send("still here")
    wait_until(lambda: len(sim_reported_log(sim, "tw-bad")) == 8, 15, what="the good patches upstream")
    d.close()


def test_edgehub_twin_changes_routes_and_ttl_of_the_running_hub_and_survives_offline_restart(sim, make_hub):
    from edgehub_harness import EDGE_ID, telemetry_payloads
    keys = {m: sim.add_identity(EDGE_ID, m)["primaryKey"] for m in ("modA", "modB")}
    child = sim.add_child("ttl-twin")["primaryKey"]
    hub = make_hub().start()
    edgehub = f"{EDGE_ID}/$edgeHub"
    wait_until(lambda: hub.hubctl_json("twins")["links_up"] > 0, 20, what="an upstream link")

    # Deployed routes send modA's output to modB's "viaTwin" input; devices upstream with a 2 s TTL.
    desired = {
        "schemaVersion": "1.1",
        "routes": {
            "viaTwin": {"route": 'FROM /messages/modules/modA/outputs/* INTO BrokeredEndpoint("/modules/modB/inputs/viaTwin")'},
            "up": 'FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream',
        },
        "storeAndForwardConfiguration": {"timeToLiveSecs": 2},
    }
    version = sim_patch_desired(sim, edgehub, desired)["desired"]["$version"]
    wait_until(lambda: "viaTwin" in {r["name"] for r in hub.hubctl_json("routes")["routes"]}, 20,
               what="the twin's routes in hub-store")
    routes = hub.hubctl_json("routes")
    assert routes["ttl_sec"] == 2 and f"version {version}" in routes["source"]

    # What edgeHub reports back.
    def reported_status():
        r = sim_twin(sim, edgehub)["reported"]
        return r.get("lastDesiredVersion") == version and r.get("lastDesiredStatus", {}).get("code") == 200
    wait_until(reported_status, 20, what="lastDesiredVersion/lastDesiredStatus reported")

    # The running hub routes differently.
    b = Device(hub, EDGE_ID, keys["modB"], module_id="modB")
    b.listen_inputs()
    assert b.connect() == 0
    b.client.subscribe(f"devices/{EDGE_ID}/modules/modB/inputs/#", qos=1)
    a = Device(hub, EDGE_ID, keys["modA"], module_id="modA")
    assert a.connect() == 0
    time.sleep(0.5)
    assert a.send_output("anything", "routed-by-twin")
    wait_until(lambda: len(b.inputs) >= 1, 10, what="the message at modB")
    assert b.inputs[0][0] == "viaTwin"
    a.close()
    b.close()

    # An offline restart keeps the twin's configuration, and its TTL is enforced.
    sim.cut()
    hub.stop()
    hub.start()
    routes = hub.hubctl_json("routes")
    assert "viaTwin" in {r["name"] for r in routes["routes"]} and routes["ttl_sec"] == 2
    d = Device(hub, "ttl-twin", child)
    assert d.connect() == 0
    for i in range(3):
        assert d.send(f"old-{i}")
    time.sleep(4)
    assert d.send("fresh")
    sim.restore()
    wait_until(lambda: "fresh" in telemetry_payloads(sim, "ttl-twin"), 30, what="the fresh message upstream")
    assert [p for p in telemetry_payloads(sim, "ttl-twin") if p.startswith("old")] == []
    d.close()

    # A malformed deployment is refused with 400 and the running routes stay.
    bad = sim_patch_desired(sim, edgehub, {"routes": {"broken": "FROM nowhere INTO"}})["desired"]["$version"]

    def refused():
        r = sim_twin(sim, edgehub)["reported"]
        return r.get("lastDesiredVersion") == bad and r.get("lastDesiredStatus", {}).get("code") == 400
    wait_until(refused, 30, what="the refusal reported")
    assert "viaTwin" in {r["name"] for r in hub.hubctl_json("routes")["routes"]}


def mine(hub, identity="tw-cap"):
    return [x for x in hub.hubctl_json("twins")["twins"] if x["identity"] == identity][0]


def test_offline_twin_queue_is_bounded_and_the_device_stays_connected(sim, make_hub):
    key = sim.add_child("tw-cap")["primaryKey"]
    hub = make_hub(twin_queue_max_bytes="64KiB").start()
    d, t = connect_twin(hub, "tw-cap", key, desired=False)
    assert t.report({"boot": 1})[0] == 204
    wait_until(lambda: len(sim_reported_log(sim, "tw-cap")) == 1, 15, what="the online patch upstream")

    sim.cut()
    # Changing one key over and over merges into one small pending patch: never refused.
    for i in range(200):
        assert t.report({"temp": i, "nested": {"n": i}}, timeout=5)[0] == 204
    assert mine(hub)["pending"] <= 2

    # Deleting ever new keys grows the merged patch (each deletion must reach the cloud) until the cap.
    statuses = []
    for i in range(40):
        patch = {f"gone-{i}-{j}-" + "x" * 80: None for j in range(30)}  # about 3 KiB each
        statuses.append(t.report(patch, timeout=5)[0])
    assert 429 in statuses, "the per-identity cap never bit"
    first = statuses.index(429)
    assert all(s == 204 for s in statuses[:first]) and first >= 15
    # Refused, not cut off: the device is still connected and served.
    assert not d.disconnected.is_set()
    status, _, body = t.get(timeout=5)
    assert status == 200 and body["reported"]["temp"] == 199
    assert d.send("telemetry still flows")
    # What is queued respects the cap (raw bytes of the pending patches as twin-sync counts them).
    assert 0 < mine(hub)["pending_bytes"] <= 64 * 1024
    assert mine(hub)["pending"] <= 2

    # Once the cloud is back the queue drains and the device may report again.
    sim.restore()
    wait_until(lambda: mine(hub)["pending"] == 0, 30, what="the queue to drain")
    assert t.report({"after": True})[0] == 204
    wait_until(lambda: sim_twin(sim, "tw-cap")["reported"].get("after") is True, 15, what="the new patch upstream")
    assert sim_twin(sim, "tw-cap")["reported"]["temp"] == 199
    d.close()


def test_twin_store_keeps_the_disk_reserve(sim, make_hub):
    key = sim.add_child("tw-disk")["primaryKey"]
    hub = make_hub()
    os.makedirs(hub.storage)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", hub.storage], check=True)
    try:
        hub.start()
        d, t = connect_twin(hub, "tw-disk", key, desired=False)
        assert t.report({"before": 1})[0] == 204
        # Leave less than the 8 MiB the stores keep free (proto/runtime/disk-reserve.h).
        st = os.statvfs(hub.storage)
        filler = os.path.join(hub.storage, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 4 * 1024 * 1024))
        status = t.report({"while_full": 1})[0]
        assert status == 503, status
        assert not d.disconnected.is_set()
        assert t.get(timeout=5)[0] == 200
        os.unlink(filler)
        assert t.report({"after": 1})[0] == 204
        status, _, body = t.get(timeout=5)
        assert body["reported"].get("after") == 1 and "while_full" not in body["reported"]
        d.close()
    finally:
        hub.stop()
        subprocess.run(["umount", "-l", hub.storage])
