"""The internal bus as the daemons see it: device requests relayed with the
sender's identity, directed delivery to one client, presence."""
import threading

from edgehub_harness import BusWatcher, Device, bus_publish


def test_device_requests_reach_the_bus_tagged_with_their_sender(sim, make_hub):
    child = sim.add_child("dev-a")
    hub = make_hub().start()
    watch = BusWatcher(hub, "$edgehub/#")
    try:
        d = Device(hub, "dev-a", child["primaryKey"])
        assert d.connect() == 0
        watch.wait_for(lambda l: l.startswith("$edgehub/presence|client:dev-a|connected"), what="presence")

        d.client.subscribe("$iothub/twin/res/#", qos=0)
        watch.wait_for(lambda l: l == "$edgehub/subscribe|client:dev-a|$iothub/twin/res/#", what="subscribe")

        d.client.publish("$iothub/twin/GET/?$rid=42", b"", qos=1).wait_for_publish(5)
        watch.wait_for(lambda l: l == "$edgehub/device/twin/GET/?$rid=42|client:dev-a|", what="the relayed request")

        d.close()
        watch.wait_for(lambda l: l.startswith("$edgehub/presence|client:dev-a|disconnected"), what="disconnect")
    finally:
        watch.close()


def test_directed_delivery_reaches_only_its_target(sim, make_hub):
    keys = {n: sim.add_child(n)["primaryKey"] for n in ("dev-a", "dev-b")}
    hub = make_hub().start()
    got = {n: [] for n in keys}
    devices = {}
    for n, key in keys.items():
        d = Device(hub, n, key)
        arrived = threading.Event()

        def on_message(client, userdata, msg, n=n, arrived=arrived):
            got[n].append((msg.topic, msg.payload))
            arrived.set()
        d.client.on_message = on_message
        assert d.connect() == 0
        d.client.subscribe("$iothub/methods/POST/#", qos=1)
        devices[n] = (d, arrived)

    # Both listen on the same identity-implicit topic; only the named client gets it.
    p = bus_publish(hub, "$edgehub/deliver", '{"x":1}', client="dev-a", topic="$iothub/methods/POST/ping/?$rid=1")
    assert p.returncode == 0 and "failed" not in p.stderr, p.stdout + p.stderr
    assert devices["dev-a"][1].wait(5)
    assert got["dev-a"] == [("$iothub/methods/POST/ping/?$rid=1", b'{"x":1}')]
    assert not devices["dev-b"][1].wait(1)
    assert got["dev-b"] == []

    # A target that is not connected: the broker answers "not authorized" (0x87).
    p = bus_publish(hub, "$edgehub/deliver", "x", client="nobody", topic="$iothub/methods/POST/ping/?$rid=2")
    assert "Not authorized" in p.stderr, p.stderr
    for d, _ in devices.values():
        d.close()
