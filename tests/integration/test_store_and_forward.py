"""The offline telemetry path end to end: devices keep sending while the uplink
is cut, and everything reaches the cloud in order once it returns."""
import json

from edgehub_harness import Device, telemetry_payloads, wait_until


def test_online_telemetry_reaches_cloud_with_properties(sim, make_hub):
    child = sim.add_child("sensor-1")
    hub = make_hub().start()
    d = Device(hub, "sensor-1", child["primaryKey"])
    assert d.connect() == 0
    for i in range(5):
        assert d.send(json.dumps({"n": i}), props="temp=21&%24.ct=application%2Fjson&%24.ce=utf-8")
    wait_until(lambda: len(telemetry_payloads(sim, "sensor-1")) == 5, 15, what="5 messages upstream")
    records = sim.telemetry("sensor-1")
    records = records["records"] if isinstance(records, dict) else records
    assert [json.loads(r["payload"])["n"] for r in records] == list(range(5))
    assert records[0]["properties"]["temp"] == "21"
    assert records[0]["properties"]["$.ct"] == "application/json"
    d.close()


def test_offline_backlog_delivered_in_order_after_link_returns(sim, make_hub):
    keys = {f"dev-{i}": sim.add_child(f"dev-{i}")["primaryKey"] for i in range(3)}
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
    q = hub.upstream_queue()
    assert q["messages"] == 150
    status = hub.hubctl_json("status")
    assert status["hub_store"]["uplink"] == "down"

    sim.restore()
    hub.wait_drained(60)
    for name in devices:
        got = telemetry_payloads(sim, name)
        want = [f"online-{i}" for i in range(10)] + [f"offline-{i}" for i in range(50)]
        # duplicates only from an in-flight window, never reordering or gaps
        deduped = [p for k, p in enumerate(got) if p not in got[:k]]
        assert deduped == want, f"{name}: order or completeness broken"
    q = hub.upstream_queue()
    assert q["delivered"] >= 180
    for d in devices.values():
        d.close()
