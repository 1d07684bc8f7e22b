"""The ingest log: the plugin appends each message to it and acknowledges; hub-store
imports it. The invariants hold: order, no acknowledged message lost across kill -9,
reject_new withholds the PUBACK, a full disk refuses without losing anything."""
import os
import random
import struct
import threading
import time

from edgehub_harness import Device, telemetry_payloads, wait_until
from test_crash_safety import PersistentSender, check_delivery


def ingest_segments(hub):
    d = os.path.join(hub.storage, "ingest")
    return sorted(f for f in os.listdir(d) if f.endswith(".log"))


def room_allow(hub):
    """The log bytes hub-store's room file (proto/store/ingest-log.h IngestRoom) lets the plugin append."""
    with open(os.path.join(hub.runtime, "ingest-room"), "rb") as f:
        magic, _seq, allow, _offset = struct.unpack_from("=IIQQ", f.read(88))
    assert magic == 0x45524f31, "not a room file"
    return allow


def wait_queued(hub, n, timeout=20):
    wait_until(lambda: hub.upstream_queue()["messages"] == n, timeout, what=f"{n} messages imported")


def test_offline_backlog_delivered_in_order(sim, make_hub):
    keys = {f"ing-{i}": sim.add_child(f"ing-{i}")["primaryKey"] for i in range(3)}
    hub = make_hub().start()
    devices = {name: Device(hub, name, key) for name, key in keys.items()}
    for d in devices.values():
        assert d.connect() == 0

    for i in range(10):
        for d in devices.values():
            assert d.send(f"online-{i}")
    wait_until(lambda: sim.count()["total"] == 30, 20, what="online messages")

    sim.cut()
    for i in range(50):
        for d in devices.values():
            assert d.send(f"offline-{i}"), "a device must get PUBACKs with the uplink down"
    wait_queued(hub, 150)
    assert ingest_segments(hub), "the plugin writes segments under storage/ingest"

    sim.restore()
    hub.wait_drained(60)
    for name in devices:
        got = telemetry_payloads(sim, name)
        want = [f"online-{i}" for i in range(10)] + [f"offline-{i}" for i in range(50)]
        deduped = [p for k, p in enumerate(got) if p not in got[:k]]
        assert deduped == want, f"{name}: order or completeness broken"
    for d in devices.values():
        d.close()


def test_backlog_survives_restart_before_import(sim, make_hub):
    """Acknowledged records still in the ingest log when everything stops are imported at the next start."""
    key = sim.add_child("ing-restart")["primaryKey"]
    hub = make_hub().start()
    sim.cut()
    d = Device(hub, "ing-restart", key)
    assert d.connect() == 0
    for i in range(20):
        assert d.send(f"m-{i}")
    d.close()
    hub.kill9("edgehub-hub-store")
    hub.stop()
    hub.start()
    wait_queued(hub, 20, timeout=30)
    sim.restore()
    hub.wait_drained(60)
    got = telemetry_payloads(sim, "ing-restart")
    deduped = [p for k, p in enumerate(got) if p not in got[:k]]
    assert deduped == [f"m-{i}" for i in range(20)]


def test_kill_9_while_devices_publish(sim, make_hub):
    rng = random.Random(int(time.time()))
    keys = {f"ing-crash-{i}": sim.add_child(f"ing-crash-{i}")["primaryKey"] for i in range(4)}
    hub = make_hub().start()
    stop = threading.Event()
    senders = [PersistentSender(hub, d, k, stop) for d, k in keys.items()]
    for s in senders:
        s.start()

    kills = []
    deadline = time.monotonic() + 20
    phase_cut = True
    sim.cut()
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 1.5))
        victim = rng.choice(["edgehub-hub-store", "mosquitto"])
        if hub.child_pid(victim):
            hub.kill9(victim)
            kills.append(victim)
        if phase_cut and time.monotonic() > deadline - 10:
            sim.restore()
            phase_cut = False
    stop.set()
    for s in senders:
        s.join(15)

    assert kills, "nothing was killed"
    wait_until(lambda: all(hub.child_pid(n) for n in ("edgehub-hub-store", "mosquitto")), 20,
               what="all processes restarted")

    # The queue can read empty while records still wait in the ingest log: wait for the cloud instead.
    def all_arrived():
        for s in senders:
            seqs = {int(p.split(":")[1]) for p in telemetry_payloads(sim, s.device_id)}
            if not set(s.acked) <= seqs:
                return False
        return True
    wait_until(all_arrived, 90, interval=0.5, what="every acknowledged message upstream")
    duplicates = 0
    for s in senders:
        assert len(s.acked) > 10, f"{s.device_id} barely sent anything ({len(s.acked)})"
        duplicates += check_delivery(sim, s.device_id, s.acked)
    print(f"kills={len(kills)} ({', '.join(kills)}), acked={sum(len(s.acked) for s in senders)}, "
          f"duplicates={duplicates}")


def test_budget_reject_new_withholds_the_puback(sim, make_hub):
    child = sim.add_child("ing-reject")
    hub = make_hub(max_bytes="1MiB", overflow="reject_new").start()
    d = Device(hub, "ing-reject", child["primaryKey"])
    assert d.connect() == 0
    sim.cut()
    pad = "y" * 10000
    acked = 0
    # The plugin reads hub-store's room file before each append: a fast device gets no
    # PUBACK past the budget.
    for i in range(3000):
        if not d.send(f"{i:04d}{pad}", timeout=5):
            break
        acked += 1
    assert 0 < acked < 3000, "the store must fill and then refuse"
    wait_queued(hub, acked)
    store = hub.hubctl_json("status")["hub_store"]["store"]
    assert store["bytes"] <= 1024 * 1024, f"reject_new overshot the budget: {store}"
    # what keeps the device out: the room hub-store published has no place for another message
    assert room_allow(hub) < len(pad)
    d.close()

    sim.restore()
    hub.wait_drained(60)
    got = sorted(set(int(p[:4]) for p in telemetry_payloads(sim, "ing-reject")))
    assert got[:acked] == list(range(acked)), "everything acknowledged arrives"
    # with room again the room file says so and the device is served again
    wait_until(lambda: room_allow(hub) > 2 * len(pad), 10, what="room again")
    d2 = Device(hub, "ing-reject", child["primaryKey"])
    assert d2.connect() == 0
    assert d2.send("after", timeout=5)
    d2.close()


def test_full_disk_refuses_without_losing_what_was_acknowledged(sim, make_hub):
    import base64
    import subprocess
    child = sim.add_child("ing-disk")
    hub = make_hub(max_bytes="512MiB")
    os.makedirs(hub.storage)
    # The plugin keeps 16 MiB free for the importer: a bigger disk than test_bad_input's.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", hub.storage], check=True)
    try:
        hub.start()
        d = Device(hub, "ing-disk", child["primaryKey"])
        assert d.connect() == 0
        sim.cut()
        acked = 0
        for i in range(8000):
            if not d.send(f"{i:05d}" + base64.b64encode(os.urandom(6000)).decode(), timeout=5):
                break
            acked += 1
        assert 0 < acked < 8000, "a 48 MiB disk cannot hold 64 MB"
        assert hub.child_pid("edgehub-hub-store"), "hub-store must survive a full disk"
        d.close()
        sim.restore()

        def all_arrived():
            got = {int(p[:5]) for p in telemetry_payloads(sim, "ing-disk")}
            return set(range(acked)) <= got
        wait_until(all_arrived, 60, interval=0.5, what="everything acknowledged before the disk filled")
        got = sorted(set(int(p[:5]) for p in telemetry_payloads(sim, "ing-disk")))
        assert got[:acked] == list(range(acked))
    finally:
        hub.stop()
        subprocess.run(["umount", "-l", hub.storage])


def test_a_restarted_hub_store_hears_who_is_connected(sim, make_hub):
    """Telemetry never calls hub-store, and an idle device neither connects nor disconnects: the
    plugin notices the closed connection on its tick and tells the new hub-store."""
    child = sim.add_child("ing-presence")
    hub = make_hub().start()
    d = Device(hub, "ing-presence", child["primaryKey"])
    assert d.connect() == 0

    def connected():
        try:
            return any(x.get("identity") == "ing-presence" and x.get("connected")
                       for x in hub.hubctl_json("devices").get("devices", []))
        except AssertionError:
            return False  # hub-store is restarting
    wait_until(connected, 10, what="hub-store to see the device connected")
    old = hub.kill9("edgehub-hub-store")
    wait_until(lambda: hub.child_pid("edgehub-hub-store") not in (None, old), 20, what="hub-store restarted")
    wait_until(lambda: hub.hubctl("devices", check=False).returncode == 0, 20, what="the new hub-store answering")
    wait_until(connected, 10, interval=0.2, what="the restarted hub-store to know the device is connected")
    assert d.send("after the restart")
    d.close()


def wal_bytes(hub):
    d = os.path.join(hub.storage, "messages")
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".log"))


def test_kill_9_before_the_flush_of_records_that_skipped_the_wal(sim, make_hub):
    """A backlog nobody reads is imported without RocksDB's WAL (the ingest log holds it
    until a flush): kill -9 of hub-store right after the import, before any flush, loses
    none of it, and the restarted hub-store imports it again, in order, no duplicates."""
    key = sim.add_child("ing-unlogged")["primaryKey"]
    hub = make_hub().start()
    sim.cut()
    d = Device(hub, "ing-unlogged", key)
    assert d.connect() == 0
    n, pad = 3000, "x" * 1000
    for i in range(n):
        assert d.send(f"u-{i}-{pad}")
    d.close()
    # Over 1 MiB stored, no reader: most records skipped the WAL. Kill before the idle flush (1 s).
    wait_until(lambda: hub.upstream_queue()["messages"] == n, 20, interval=0.02, what=f"{n} messages imported")
    hub.kill9("edgehub-hub-store")
    assert wal_bytes(hub) < n * 1000 // 2, f"the WAL holds {wal_bytes(hub)} bytes: records did not skip it"

    def queued():
        try:
            return hub.upstream_queue()["messages"]
        except AssertionError:  # hubctl: the restarted hub-store is not listening yet
            return None
    wait_until(lambda: queued() == n, 30, what=f"{n} messages imported again")
    sim.restore()
    hub.wait_drained(60)
    got = [p.split("-")[1] for p in telemetry_payloads(sim, "ing-unlogged")]
    assert got == [str(i) for i in range(n)], "lost, reordered or duplicated after the crash"


def test_hub_store_does_not_start_without_its_room_file(tmp_path):
    # The room file is the plugin's only back-pressure: without it reject_new would have no budget.
    from edgehub_harness import BUILD
    from test_config import GOOD, KEY, run
    cfg = tmp_path / "edgehub.yaml"
    cfg.write_text(GOOD.format(key=KEY, dir=tmp_path, max_bytes="10MiB"))
    os.makedirs(tmp_path / "run" / "ingest-room")  # in the way: it cannot be created
    p = run(os.path.join(BUILD, "hub-store", "edgehub-hub-store"), str(cfg))
    assert p.returncode != 0, "hub-store started without a room file"
    assert f"Failed to create '{tmp_path}/run/ingest-room'" in p.stderr, p.stderr
