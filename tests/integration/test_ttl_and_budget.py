"""Time to live and the storage byte budget with both overflow policies."""
import time

from edgehub_harness import Device, telemetry_payloads, wait_until
from test_ingest_log import room_allow


def queue(hub):
    return hub.upstream_queue()


def test_messages_older_than_ttl_never_arrive_and_are_counted(sim, make_hub):
    child = sim.add_child("ttl-dev")
    hub = make_hub(time_to_live="4s").start()
    d = Device(hub, "ttl-dev", child["primaryKey"])
    assert d.connect() == 0
    sim.cut()
    for i in range(5):
        assert d.send(f"old-{i}")
    time.sleep(6)
    for i in range(5):
        assert d.send(f"new-{i}")
    sim.restore()
    wait_until(lambda: len(telemetry_payloads(sim, "ttl-dev")) >= 5 and queue(hub)["messages"] == 0, 30,
               what="drain")
    got = telemetry_payloads(sim, "ttl-dev")
    assert [p for p in got if p.startswith("old")] == [], "expired messages were sent"
    assert sorted(set(got)) == [f"new-{i}" for i in range(5)]
    assert queue(hub)["expired"] == 5
    d.close()


def test_expired_messages_are_swept_while_offline(sim, make_hub):
    child = sim.add_child("sweep-dev")
    hub = make_hub(time_to_live="2s").start()
    d = Device(hub, "sweep-dev", child["primaryKey"])
    assert d.connect() == 0
    sim.cut()
    for i in range(20):
        assert d.send(f"m-{i}")
    # no uplink at all: the sweep alone reclaims them
    wait_until(lambda: queue(hub)["messages"] == 0, 20, what="TTL sweep")
    q = queue(hub)
    assert q["expired"] == 20 and q["bytes"] == 0
    d.close()


def test_budget_drop_oldest_keeps_the_newest(sim, make_hub):
    child = sim.add_child("drop-dev")
    hub = make_hub(max_bytes="1MiB", overflow="drop_oldest").start()
    d = Device(hub, "drop-dev", child["primaryKey"])
    assert d.connect() == 0
    sim.cut()
    pad = "x" * 10000
    for i in range(200):
        assert d.send(f"{i:04d}{pad}"), "drop_oldest always acknowledges"
    q = queue(hub)
    assert q["bytes"] <= 1024 * 1024
    assert q["dropped"] > 0
    assert q["messages"] + q["dropped"] == 200
    # the plugin's only view of the store says so: room for anything under drop_oldest
    assert room_allow(hub) == 2**64 - 1
    sim.restore()
    hub.wait_drained(60)
    got = [int(p[:4]) for p in telemetry_payloads(sim, "drop-dev")]
    unique = sorted(set(got))
    assert unique == list(range(200 - len(unique), 200)), "the newest messages are kept, in order"
    assert got == sorted(got)
    d.close()


def test_budget_reject_new_withholds_the_puback(sim, make_hub):
    child = sim.add_child("reject-dev")
    hub = make_hub(max_bytes="1MiB", overflow="reject_new").start()
    d = Device(hub, "reject-dev", child["primaryKey"])
    assert d.connect() == 0
    sim.cut()
    pad = "y" * 10000
    acked = 0
    for i in range(200):
        if not d.send(f"{i:04d}{pad}", timeout=5):
            break
        acked += 1
    assert 0 < acked < 200, "the store must fill and then refuse"
    # The plugin refuses before the ingest log (hub-store's room file): no store-side "rejected".
    hub.log.wait_for("Telemetry of 'reject-dev' not stored, the store is full", timeout=10)
    # The PUBACK comes before the import: wait for it, then the budget holds exactly.
    wait_until(lambda: queue(hub)["messages"] == acked, 20, what=f"{acked} messages imported")
    status = hub.hubctl_json("status")["hub_store"]["store"]
    assert status["bytes"] <= 1024 * 1024, f"reject_new overshot the budget: {status}"
    d.close()

    sim.restore()
    hub.wait_drained(60)
    got = sorted(set(int(p[:4]) for p in telemetry_payloads(sim, "reject-dev")))
    assert got[:acked] == list(range(acked)), "everything acknowledged arrives"
    # with room again, the device is served again
    d2 = Device(hub, "reject-dev", child["primaryKey"])
    assert d2.connect() == 0
    assert d2.send("after")
    d2.close()
