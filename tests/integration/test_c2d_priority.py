"""Cloud-to-device messages through the gateway, and route priorities on the
upstream queue."""
import threading

from edgehub_harness import Device, telemetry_payloads, wait_until


def collect_c2d(d):
    got = []
    lock = threading.Lock()

    def on_message(client, userdata, msg):
        with lock:
            got.append((msg.topic, msg.payload.decode()))
    d.client.on_message = on_message
    return got


def link_up(hub, identity):
    devices = hub.hubctl_json("devices").get("devices", [])
    return any(x.get("identity") == identity and x.get("link") == "up" for x in devices)


def test_c2d_reaches_a_child_through_the_gateway(sim, make_hub):
    child = sim.add_child("dev-c")
    hub = make_hub().start()
    d = Device(hub, "dev-c", child["primaryKey"])
    got = collect_c2d(d)
    assert d.connect() == 0
    d.client.subscribe("devices/dev-c/messages/devicebound/#", qos=1)
    wait_until(lambda: link_up(hub, "dev-c"), 15, what="the child's upstream link")

    r = sim.call("POST", "/c2d/dev-c", {"payload": "hello", "properties": {"color": "blue"}})
    assert r.get("delivered") == 1, r
    wait_until(lambda: len(got) == 1, 10, what="the C2D message at the device")
    topic, payload = got[0]
    assert payload == "hello"
    assert topic.startswith("devices/dev-c/messages/devicebound/") and "color=blue" in topic

    # Away for a moment: the hub keeps what arrives meanwhile and hands it over on return.
    d.close()
    wait_until(lambda: not any(x.get("identity") == "dev-c" and x.get("connected")
                               for x in hub.hubctl_json("devices").get("devices", [])), 10, what="disconnect")
    for i in range(3):
        r = sim.call("POST", "/c2d/dev-c", {"payload": f"later-{i}"})
        assert r.get("delivered") == 1, r  # the hub's link took it
    wait_until(lambda: sum(e["messages"] for e in hub.hubctl_json("queues")["queues"]
                           if e["endpoint"] == "$c2d") == 3, 10, what="3 stored C2D messages")
    d2 = Device(hub, "dev-c", child["primaryKey"])
    got2 = collect_c2d(d2)
    assert d2.connect() == 0
    wait_until(lambda: len(got2) == 3, 10, what="the stored C2D messages after reconnect")
    assert [p for (_, p) in got2] == [f"later-{i}" for i in range(3)]
    d2.close()


def test_urgent_messages_leave_before_an_older_backlog(sim, make_hub):
    child = sim.add_child("dev-p")
    routes = {
        "urgent": {"route": "FROM /messages/* WHERE urgent = 'yes' INTO $upstream", "priority": 0},
        "bulk": {"route": "FROM /messages/* WHERE NOT IS_DEFINED(urgent) INTO $upstream", "priority": 7},
    }
    hub = make_hub(routes=routes).start()
    d = Device(hub, "dev-p", child["primaryKey"])
    assert d.connect() == 0
    sim.cut()
    for i in range(300):
        assert d.send(f"bulk-{i}")
    for i in range(5):
        assert d.send(f"urgent-{i}", props="urgent=yes")
    def queued():
        return {(e["endpoint"], e["priority"]): e["messages"] for e in hub.hubctl_json("queues")["queues"]}
    # The PUBACK comes before the import (the ingest log): wait for it.
    wait_until(lambda: queued().get(("$upstream", 0)) == 5 and queued().get(("$upstream", 7)) == 300, 10,
               what="5 urgent and 300 bulk queued")

    sim.restore()
    wait_until(lambda: len(telemetry_payloads(sim, "dev-p")) >= 305, 60, what="everything upstream")
    got = telemetry_payloads(sim, "dev-p")
    assert got[:5] == [f"urgent-{i}" for i in range(5)], got[:10]
    bulk = [p for p in got if p.startswith("bulk-")]
    assert [p for k, p in enumerate(bulk) if p not in bulk[:k]] == [f"bulk-{i}" for i in range(300)]
    d.close()
