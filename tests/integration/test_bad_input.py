"""Bad input from devices, sockets, files and disks: clear errors, nothing
crashes, nothing stored is lost, everyone else keeps being served."""
import base64
import os
import socket
import subprocess
import time

import paho.mqtt.client as mqtt

from edgehub_harness import BUILD, HUB_NAME, Device, telemetry_payloads, wait_until


def pids(hub):
    return {n: hub.child_pid(n) for n in ("edgehub-hub-store", "mosquitto", "edgehub-auth-cache")}


def test_malformed_connect_credentials_are_refused(sim, make_hub):
    child = sim.add_child("ok-dev")
    hub = make_hub().start()
    before = pids(hub)
    cases = [
        ("ok-dev", "", ""),
        ("ok-dev", "garbage", "garbage"),
        ("ok-dev", f"{HUB_NAME}/ok-dev/?api-version=2021-04-12", "SharedAccessSignature sr=&sig=&se="),
        ("ok-dev", f"{HUB_NAME}/ok-dev/?api-version=2021-04-12", "SharedAccessSignature " + "A" * 5000),
        ("ok-dev", "/" * 300, "\x00\xff"),
        ("other", f"{HUB_NAME}/ok-dev/?api-version=2021-04-12", "SharedAccessSignature sr=x&sig=y&se=1"),
        ("bad id with spaces", f"{HUB_NAME}/bad id with spaces/?api-version=1", "x"),
    ]
    for client_id, user, pw in cases:
        c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv311)
        c.username_pw_set(user, pw)
        c.tls_set(ca_certs=hub.pki.ca_cert)
        result = []
        c.on_connect = lambda cl, u, f, rc: result.append(rc)
        try:
            c.connect("127.0.0.1", hub.tls_port)
            c.loop_start()
            wait_until(lambda: result or not c.is_connected(), 5, what="CONNACK")
            time.sleep(0.2)
        except OSError:
            pass
        finally:
            c.loop_stop()
            c.disconnect()
        assert result != [0], f"accepted: {client_id!r} {user[:40]!r}"
    d = Device(hub, "ok-dev", child["primaryKey"])
    assert d.connect() == 0 and d.send("still served")
    assert pids(hub) == before, "a process died"
    d.close()


def test_oversize_message_gets_no_puback_and_others_are_unaffected(sim, make_hub):
    big = sim.add_child("big-dev")
    other = sim.add_child("other-dev")
    hub = make_hub().start()
    b = Device(hub, "big-dev", big["primaryKey"])
    o = Device(hub, "other-dev", other["primaryKey"])
    assert b.connect() == 0 and o.connect() == 0
    b.client.reconnect_delay_set(30, 30)
    assert not b.send(b"z" * (256 * 1024 + 1), timeout=5), "an oversize message must not be acknowledged"
    assert o.send("fine")
    wait_until(lambda: telemetry_payloads(sim, "other-dev") == ["fine"], 15, what="other device's message")
    assert telemetry_payloads(sim, "big-dev") == []
    b.close()
    o.close()


def test_malformed_property_bag_is_not_forwarded(sim, make_hub):
    child = sim.add_child("bag-dev")
    hub = make_hub().start()
    d = Device(hub, "bag-dev", child["primaryKey"])
    assert d.connect() == 0
    d.client.publish("devices/bag-dev/messages/events/a=%ZZ&=x", b"bad-bag", qos=1)
    d.client.publish("devices/bag-dev/messages/eventsX/", b"bad-topic", qos=1)
    time.sleep(0.5)
    if not d.client.is_connected():
        d = Device(hub, "bag-dev", child["primaryKey"])
        assert d.connect() == 0
    assert d.send("good", props="k=v")
    wait_until(lambda: "good" in telemetry_payloads(sim, "bag-dev"), 15, what="good message")
    assert telemetry_payloads(sim, "bag-dev") == ["good"]
    d.close()


def test_garbage_on_every_unix_socket(sim, make_hub):
    child = sim.add_child("sock-dev")
    hub = make_hub().start()
    before = pids(hub)
    garbage = [b"\x00\x00\x00", b"\xff\xff\xff\xff" + os.urandom(64), os.urandom(4096),
               b"\x00\x00\x00\x02\x00\x05", b"\x00\x00\x00\x08\x00\x05\x00\x06\xff\xff\xff\xff"]
    for name in ("auth-cache.sock", "hub-store.sock", "broker.sock"):
        for g in garbage:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(os.path.join(hub.runtime, name))
            s.sendall(g)
            try:
                s.recv(100)
            except (socket.timeout, ConnectionResetError):
                pass
            s.close()
    assert pids(hub) == before, "a process died of garbage"
    d = Device(hub, "sock-dev", child["primaryKey"])
    assert d.connect() == 0 and d.send("after garbage")
    assert hub.hubctl("status").returncode == 0
    d.close()


def test_corrupt_store_is_refused_and_kept(sim, make_hub):
    child = sim.add_child("corrupt-dev")
    hub = make_hub().start()
    d = Device(hub, "corrupt-dev", child["primaryKey"])
    assert d.connect() == 0
    sim.cut()
    assert d.send("kept")
    d.close()
    hub.stop()
    current = os.path.join(hub.storage, "messages", "CURRENT")
    with open(current) as f:
        good = f.read()
    with open(current, "w") as f:
        f.write("MANIFEST-999999\n")
    exe = os.path.join(BUILD, "hub-store", "edgehub-hub-store")
    p = subprocess.run([exe, "--config", hub.config_path], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert os.path.join(hub.storage, "messages") in p.stderr, p.stderr
    assert os.path.exists(current), "the store must not be deleted"
    # repaired by the operator: the message is still there
    with open(current, "w") as f:
        f.write(good)
    hub.start()
    assert hub.upstream_queue()["messages"] == 1
    sim.restore()
    hub.wait_drained(30)
    assert telemetry_payloads(sim, "corrupt-dev") == ["kept"]


def test_missing_storage_folder_is_created(sim, make_hub):
    child = sim.add_child("fresh-dev")
    hub = make_hub()
    assert not os.path.exists(hub.storage)
    hub.start()
    d = Device(hub, "fresh-dev", child["primaryKey"])
    assert d.connect() == 0 and d.send("x")
    d.close()


def test_full_disk_refuses_without_losing_what_is_stored(sim, make_hub, workdir):
    child = sim.add_child("disk-dev")
    hub = make_hub(max_bytes="512MiB")
    os.makedirs(hub.storage)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", hub.storage], check=True)
    try:
        hub.start()
        d = Device(hub, "disk-dev", child["primaryKey"])
        assert d.connect() == 0
        sim.cut()
        acked = 0
        for i in range(4000):
            # incompressible, or RocksDB's LZ4 would fit it all
            if not d.send(f"{i:05d}" + base64.b64encode(os.urandom(6000)).decode(), timeout=5):
                break
            acked += 1
        assert acked < 4000, "a 24 MiB disk cannot hold 32 MB"
        assert hub.child_pid("edgehub-hub-store"), "hub-store must survive a full disk"
        d.close()
        sim.restore()
        hub.wait_drained(60)
        got = sorted(set(int(p[:5]) for p in telemetry_payloads(sim, "disk-dev")))
        assert got[:acked] == list(range(acked)), "everything acknowledged before the disk filled arrives"
    finally:
        hub.stop()
        subprocess.run(["umount", "-l", hub.storage])
