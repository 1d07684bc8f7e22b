"""Offline authentication from the persisted device scope, and isolation."""
import time

import paho.mqtt.client as mqtt

from edgehub_harness import (EDGE_ID, GATEWAY_NAME, HUB_NAME, Device, new_key, sas_token,
                             telemetry_payloads, wait_until)


def scope_status(hub):
    """identity -> status, as auth-cache has it"""
    return {i["identity"]: i.get("status") for i in hub.hubctl_json("devices")["devices"] if i.get("status")}


def synced(hub):
    return hub.hubctl_json("status")["auth_cache"]["synced"]


def test_restart_everything_offline_cached_devices_still_connect(sim, make_hub):
    good = sim.add_child("good")
    removed = sim.add_child("removed")
    disabled = sim.add_child("disabled")
    hub = make_hub().start()
    wait_until(lambda: synced(hub), 20, what="first scope sync")

    # Changes in the cloud, then a refresh: removed and disabled identities leave the cache.
    sim.remove_identity("removed")
    sim.patch_identity("disabled", status="disabled")
    hub.hubctl("sync")
    wait_until(lambda: scope_status(hub).get("disabled") == "disabled" and "removed" not in scope_status(hub),
               20, what="scope refresh")

    sim.cut()
    hub.stop()
    hub.start()  # every process restarts with the uplink down

    assert Device(hub, "good", good["primaryKey"]).connect() == 0
    # a token signed with the secondary key works too
    assert Device(hub, "good", good["secondaryKey"]).connect() == 0

    refused = {
        "unknown": Device(hub, "stranger", new_key()),
        "removed": Device(hub, "removed", removed["primaryKey"]),
        "disabled": Device(hub, "disabled", disabled["primaryKey"]),
        "wrong key": Device(hub, "good", new_key()),
        "expired": Device(hub, "good", None, token=sas_token(f"{GATEWAY_NAME}/devices/good",
                                                               good["primaryKey"], time.time() - 10)),
        "wrong audience": Device(hub, "good", None, token=sas_token("elsewhere.example/devices/good",
                                                                      good["primaryKey"])),
        "token for another device": Device(hub, "good", None, token=sas_token(
            f"{GATEWAY_NAME}/devices/other", good["primaryKey"])),
    }
    for what, dev in refused.items():
        rc = dev.connect()
        assert rc != 0, f"{what}: connection accepted"
        dev.close()


def test_hub_audience_and_module_identity(sim, make_hub):
    child = sim.add_child("cam")
    hub = make_hub().start()
    wait_until(lambda: synced(hub), 20, what="first scope sync")
    # The Azure SDKs sign for the hub's name, not the gateway's: both are accepted.
    token = sas_token(f"{HUB_NAME}/devices/cam", child["primaryKey"])
    d = Device(hub, "cam", None, token=token)
    assert d.connect() == 0
    assert d.send("hello")
    wait_until(lambda: telemetry_payloads(sim, "cam") == ["hello"], 15, what="telemetry upstream")
    d.close()


def test_a_device_cannot_use_another_devices_topics(sim, make_hub):
    a = sim.add_child("dev-a")
    b = sim.add_child("dev-b")
    hub = make_hub().start()
    da = Device(hub, "dev-a", a["primaryKey"])
    db = Device(hub, "dev-b", b["primaryKey"])
    assert da.connect() == 0 and db.connect() == 0

    received = []
    db.client.on_message = lambda c, u, m: received.append(m.topic)
    granted = []
    da.client.on_subscribe = lambda c, u, mid, qos: granted.append(qos)
    for topic in ("devices/dev-b/messages/devicebound/#", "devices/#", "#", "devices/+/messages/events/#",
                  "$edgehub/#"):
        da.client.subscribe(topic, qos=1)
    wait_until(lambda: len(granted) == 5, 10, what="SUBACKs")
    assert all(q == (128,) or q == 128 for q in granted), f"a foreign subscription was granted: {granted}"

    # publishing on dev-b's telemetry topic as dev-a never reaches the cloud as dev-b
    da.client.publish("devices/dev-b/messages/events/", b"forged", qos=1)
    assert da.send("mine")
    wait_until(lambda: telemetry_payloads(sim, "dev-a") == ["mine"], 15, what="dev-a telemetry")
    time.sleep(1)
    assert b"forged" not in [p.encode() for p in telemetry_payloads(sim, "dev-b")]
    assert telemetry_payloads(sim, "dev-b") == []
    da.close()
    db.close()


def test_removed_identity_is_kicked(sim, make_hub):
    child = sim.add_child("to-remove")
    hub = make_hub().start()
    d = Device(hub, "to-remove", child["primaryKey"])
    assert d.connect() == 0
    d.client.reconnect_delay_set(60, 60)  # stay disconnected once kicked
    sim.remove_identity("to-remove")
    hub.hubctl("sync")
    assert d.disconnected.wait(20), "a device removed from the scope must be disconnected"
    d.close()
