"""Routes with the uplink down the whole time: module outputs reach module
inputs in order, WHERE conditions choose the endpoint, an absent module gets
its backlog when it returns, and a message no route takes is counted."""
import json

from edgehub_harness import EDGE_ID, Device, wait_until

ROUTES = {
    "toB": 'FROM /messages/modules/modA/outputs/out1 INTO BrokeredEndpoint("/modules/modB/inputs/in1")',
    "hot": "FROM /messages/modules/modA/outputs/* WHERE temp > 30 AND $contentType = 'application/json' "
           'INTO BrokeredEndpoint("/modules/modB/inputs/alerts")',
    "devices": 'FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream',
}


def offline_hub(sim, make_hub, routes=ROUTES):
    keys = {m: sim.add_identity(EDGE_ID, m)["primaryKey"] for m in ("modA", "modB")}
    hub = make_hub(routes=routes).start()
    # One scope sync while online, then the uplink stays down for the whole test.
    wait_until(lambda: any(d.get("identity") == f"{EDGE_ID}/modB"
                           for d in hub.hubctl_json("devices").get("devices", [])), 15, what="the scope")
    sim.cut()
    return hub, keys


def module(hub, keys, name):
    m = Device(hub, EDGE_ID, keys[name], module_id=name)
    if name == "modB":
        m.listen_inputs()
    assert m.connect() == 0
    if name == "modB":
        m.client.subscribe(f"devices/{EDGE_ID}/modules/modB/inputs/#", qos=1)
    return m


def test_module_output_reaches_module_input_in_order_offline(sim, make_hub):
    hub, keys = offline_hub(sim, make_hub)
    b = module(hub, keys, "modB")
    a = module(hub, keys, "modA")
    for i in range(50):
        assert a.send_output("out1", f"m{i}")
    wait_until(lambda: len(b.inputs) >= 50, 10, what="50 messages at modB")
    assert [p for (_, p, _) in b.inputs] == [f"m{i}" for i in range(50)]
    name, _, props = b.inputs[0]
    assert name == "in1"
    # Stamped with the sender's connection, as IoT Hub does.
    assert props["$.cdid"] == EDGE_ID and props["$.cmid"] == "modA"
    routes = hub.hubctl_json("routes")
    assert {r["name"]: r["matched"] for r in routes["routes"]}["toB"] == 50
    a.close()
    b.close()


def test_where_condition_routes_by_property(sim, make_hub):
    hub, keys = offline_hub(sim, make_hub)
    b = module(hub, keys, "modB")
    a = module(hub, keys, "modA")
    ct = "%24.ct=application%2Fjson"
    assert a.send_output("other", json.dumps({"t": 35}), props=f"temp=35&{ct}")
    assert a.send_output("other", json.dumps({"t": 20}), props=f"temp=20&{ct}")
    assert a.send_output("other", "no type", props="temp=40")
    wait_until(lambda: len(b.inputs) >= 1, 10, what="the alert")
    # Only the hot, JSON one; the others match no route at all.
    wait_until(lambda: hub.hubctl_json("routes")["dropped_no_route"] == 2, 10, what="no_route count")
    assert [(n, p) for (n, p, _) in b.inputs] == [("alerts", json.dumps({"t": 35}))]
    a.close()
    b.close()


def test_absent_module_gets_its_backlog_in_order_when_it_returns(sim, make_hub):
    hub, keys = offline_hub(sim, make_hub)
    a = module(hub, keys, "modA")
    for i in range(30):
        assert a.send_output("out1", f"early-{i}")
    # The PUBACK comes once the message is in the ingest log, before the import: wait for it.
    wait_until(lambda: sum(e["messages"] for e in hub.hubctl_json("queues")["queues"]
                           if e["endpoint"] == "/modules/modB/inputs/in1") == 30, 10, what="30 queued for modB")

    b = module(hub, keys, "modB")
    wait_until(lambda: len(b.inputs) >= 30, 10, what="the backlog at modB")
    for i in range(5):
        assert a.send_output("out1", f"late-{i}")
    wait_until(lambda: len(b.inputs) >= 35, 10, what="new messages after the backlog")
    got = [p for (_, p, _) in b.inputs]
    assert got == [f"early-{i}" for i in range(30)] + [f"late-{i}" for i in range(5)]
    # Delivered ones leave the store.
    wait_until(lambda: all(e["messages"] == 0 for e in hub.hubctl_json("queues")["queues"]
                           if e["endpoint"] == "/modules/modB/inputs/in1"), 10, what="the queue to empty")
    a.close()
    b.close()


def test_backlog_survives_a_hub_store_restart(sim, make_hub):
    hub, keys = offline_hub(sim, make_hub)
    a = module(hub, keys, "modA")
    for i in range(10):
        assert a.send_output("out1", f"kept-{i}")
    hub.kill9("hub-store")
    wait_until(lambda: hub.hubctl("routes", check=False).returncode == 0, 20, what="hub-store back")
    b = module(hub, keys, "modB")
    wait_until(lambda: len(b.inputs) >= 10, 15, what="the backlog after a restart")
    assert [p for (_, p, _) in b.inputs][:10] == [f"kept-{i}" for i in range(10)]
    a.close()
    b.close()


def test_an_absent_module_blocks_nobody_and_a_route_ttl_expires_its_queue(sim, make_hub):
    routes = dict(ROUTES)
    routes["toC"] = {"route": 'FROM /messages/modules/modA/outputs/out1 INTO BrokeredEndpoint("/modules/modC/inputs/in1")',
                     "time_to_live_secs": 2}
    sim.add_identity(EDGE_ID, "modC")
    hub, keys = offline_hub(sim, make_hub, routes=routes)
    b = module(hub, keys, "modB")
    a = module(hub, keys, "modA")
    # modC never connects: its queue grows, modB still gets every message at once.
    for i in range(20):
        assert a.send_output("out1", f"m{i}")
    wait_until(lambda: len(b.inputs) >= 20, 10, what="modB's messages while modC is away")
    assert [p for (_, p, _) in b.inputs] == [f"m{i}" for i in range(20)]

    def queue_c():
        return next((e for e in hub.hubctl_json("queues")["queues"] if e["endpoint"] == "/modules/modC/inputs/in1"),
                    {"messages": 0, "expired": 0})
    assert queue_c()["messages"] + queue_c()["expired"] == 20
    # The route's time to live (2 s, not the global 7200 s) empties it, counted as expired.
    wait_until(lambda: queue_c()["expired"] == 20 and queue_c()["messages"] == 0, 10, what="modC's queue to expire")
    routes_json = {r["name"]: r for r in hub.hubctl_json("routes")["routes"]}
    assert routes_json["toC"]["time_to_live_sec"] == 2
    a.close()
    b.close()
