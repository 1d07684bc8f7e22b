"""A device holds only what its token grants: expiry, lifetime, key rotation, Wills."""
import socket
import time

from edgehub_harness import GATEWAY_NAME, Device, new_key, sas_token, telemetry_payloads, wait_until


def synced(hub):
    return hub.hubctl_json("status")["auth_cache"]["synced"]


def drop_connection(dev):
    """Ends the TCP connection without an MQTT DISCONNECT, as a device that lost power: the Will fires."""
    dev.client.loop_stop()
    sock = dev.client.socket()
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def test_connection_closed_when_its_token_expires(sim, make_hub):
    child = sim.add_child("short")
    hub = make_hub().start()
    wait_until(lambda: synced(hub), 20, what="first scope sync")
    resource = f"{GATEWAY_NAME}/devices/short"
    d = Device(hub, "short", None, token=sas_token(resource, child["primaryKey"], time.time() + 4))
    d.client.reconnect_delay_set(60, 60)  # stay down once closed
    assert d.connect() == 0
    assert d.send("while valid")
    # IoT Hub closes a connection when its token's se passes; so must the gateway.
    assert d.disconnected.wait(30), "a connection outlived its token"
    # Closed by the broker on the plugin's request, not lost.
    wait_until(lambda: "Disconnected 'short': its token expired" in hub.log.text(), 5,
               what="the plugin's log of the kick")
    d.close()

    # A connection with a token that is still valid stays up meanwhile.
    ok = Device(hub, "short", child["primaryKey"])
    assert ok.connect() == 0
    assert not ok.disconnected.wait(3)
    assert ok.send("after renewal")
    ok.close()


def test_overlong_token_is_refused(sim, make_hub):
    child = sim.add_child("greedy")
    hub = make_hub().start()
    wait_until(lambda: synced(hub), 20, what="first scope sync")
    resource = f"{GATEWAY_NAME}/devices/greedy"
    for expiry in (time.time() + 2 * 366 * 86400, 2**64 - 1):
        d = Device(hub, "greedy", None, token=sas_token(resource, child["primaryKey"], expiry))
        rc = d.connect()
        assert rc != 0, f"a token expiring at {expiry} was accepted"
        d.close()
    assert "token lifetime too long" in hub.log.text()
    # Within the default maximum (one year) it works.
    d = Device(hub, "greedy", None, token=sas_token(resource, child["primaryKey"], time.time() + 300 * 86400))
    assert d.connect() == 0
    d.close()


def test_key_rotation_closes_old_connections(sim, make_hub):
    child = sim.add_child("rotated")
    hub = make_hub().start()
    wait_until(lambda: synced(hub), 20, what="first scope sync")
    d = Device(hub, "rotated", child["primaryKey"])
    assert d.connect() == 0
    d.client.reconnect_delay_set(60, 60)

    fresh = new_key()
    sim.patch_identity("rotated", primaryKey=fresh)
    hub.hubctl("sync")
    assert d.disconnected.wait(20), "a connection made with a replaced key must be closed"
    d.close()

    old = Device(hub, "rotated", child["primaryKey"])
    assert old.connect() != 0, "the replaced key still authenticates"
    old.close()
    new = Device(hub, "rotated", fresh)
    assert new.connect() == 0
    new.close()


def test_will_on_foreign_or_answer_topic_reaches_nobody(sim, make_hub):
    victim = sim.add_child("victim")
    attacker = sim.add_child("attacker")
    hub = make_hub().start()

    v = Device(hub, "victim", victim["primaryKey"])
    assert v.connect() == 0
    for topic in ("$iothub/methods/invoke/res/#", "$iothub/methods/POST/#", "devices/victim/messages/devicebound/#",
                  "$iothub/twin/res/#"):
        assert v.subscribe(topic)

    targets = [
        ("$iothub/methods/invoke/res/200/?$rid=1", True),
        ("$iothub/methods/POST/reboot/?$rid=2", False),
        ("devices/victim/messages/devicebound/%24.mid=forged", True),
        ("$iothub/methods/res/200/?$rid=3", True),
        ("$iothub/twin/res/200/?$rid=4", False),
    ]
    for topic, retain in targets:
        a = Device(hub, "attacker", attacker["primaryKey"])
        a.client.will_set(topic, b"forged will", qos=1, retain=retain)
        a.client.reconnect_delay_set(60, 60)
        assert a.connect() == 0
        drop_connection(a)

    # None is delivered: wait until one is, or until the plugin logged dropping each of them.
    wait_until(lambda: v.received() or hub.log.text().count("Will of 'attacker'") >= len(targets), 15,
               what="a Will delivered or every Will dropped")
    time.sleep(1)
    assert v.received() == [], f"a Will reached another device: {v.received()}"
    v.close()

    # Nothing was retained for a later subscriber either.
    late = Device(hub, "victim", victim["primaryKey"])
    assert late.connect() == 0
    for topic in ("$iothub/methods/invoke/res/#", "devices/victim/messages/devicebound/#", "$iothub/methods/res/#"):
        late.subscribe(topic)
    time.sleep(1)
    assert late.received() == []
    late.close()
    assert telemetry_payloads(sim, "attacker") == []


def test_will_on_own_telemetry_is_stored_and_forwarded(sim, make_hub):
    child = sim.add_child("mortal")
    hub = make_hub().start()
    d = Device(hub, "mortal", child["primaryKey"])
    d.client.will_set(d.topic("state=lost"), b"last words", qos=1)
    d.client.reconnect_delay_set(60, 60)
    assert d.connect() == 0
    assert d.send("alive")
    drop_connection(d)

    def will_record():
        body = sim.telemetry("mortal")
        records = body["records"] if isinstance(body, dict) else body
        return [r for r in records if r["payload"] == "last words"]

    records = wait_until(will_record, 20, what="the Will upstream")
    assert records[0]["properties"].get("iothub-MessageType") == "Will"
    assert records[0]["properties"].get("state") == "lost"
    assert telemetry_payloads(sim, "mortal") == ["alive", "last words"]

    # A clean DISCONNECT discards the Will, as MQTT says.
    d2 = Device(hub, "mortal", child["primaryKey"])
    d2.client.will_set(d2.topic(), b"not sent", qos=1)
    assert d2.connect() == 0
    d2.close()
    time.sleep(1)
    assert "not sent" not in telemetry_payloads(sim, "mortal")
