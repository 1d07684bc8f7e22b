"""Child devices with X.509 certificates (selfSigned thumbprints and certificateAuthority) on the same
TLS port as SAS devices, offline after one scope sync; upstream on their behalf with $edgeHub's key.

Real mosquitto with edgehub-tls-shim.so preloaded (the listener asks for an optional client
certificate), the real plugin and auth-cache, certificates made with openssl here."""
import json
import os
import ssl
import subprocess
import time

import pytest

from edgehub_harness import HUB_NAME, ROOT, Device, DevicePki, TwinClient, telemetry_payloads, wait_until

SDK_DEVICE = os.path.join(ROOT, "tests", "demo", "azure-device.cjs")


@pytest.fixture
def devpki(workdir):
    return DevicePki(os.path.join(workdir, "devpki"))


def synced(hub):
    return hub.hubctl_json("status")["auth_cache"]["synced"]


def resync(hub, sim):
    """A scope sync that has finished: hubctl sync, then the scope's sync time moves."""
    before = hub.hubctl_json("status")["auth_cache"]["last_sync_ms"]
    time.sleep(0.01)  # the sync time is in milliseconds
    hub.hubctl("sync")
    wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["last_sync_ms"] != before, 20, what="a new sync")


def devices(hub):
    return {d["identity"]: d for d in hub.hubctl_json("devices")["devices"]}


def sdk_device(hub, device_id, count, cert=None, key=None, sas_key=None):
    cred = f"SharedAccessKey={sas_key}" if sas_key else "x509=true"
    cs = f"HostName={HUB_NAME};DeviceId={device_id};{cred};GatewayHostName=localhost:{hub.tls_port}"
    args = ["node", SDK_DEVICE, cs, hub.pki.ca_cert, "20", str(count)] + ([cert, key] if cert else [])
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sdk_done(p, count):
    out, err = p.communicate(timeout=90)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert p.returncode == 0, out + err
    assert {"event": "done", "acked": count} in events, out + err


def test_sdk_x509_and_sas_devices_offline_on_one_port(sim, make_hub, devpki):
    ss_cert, ss_key = devpki.leaf("x509-ss", self_signed=True)
    ca_cert, ca_key = devpki.leaf("x509-ca")
    sim.add_child("x509-ss", authType="selfSigned", primaryThumbprint=DevicePki.thumbprint(ss_cert, "sha256"))
    sim.add_child("x509-ca", authType="certificateAuthority")
    sas = sim.add_child("sas-dev")
    hub = make_hub(client_ca_file=devpki.ca_cert).start()
    wait_until(lambda: synced(hub), 20, what="scope sync")
    sim.cut()

    n = 15
    procs = [sdk_device(hub, "x509-ss", n, ss_cert, ss_key), sdk_device(hub, "x509-ca", n, ca_cert, ca_key),
             sdk_device(hub, "sas-dev", n, sas_key=sas["primaryKey"])]
    for p in procs:
        sdk_done(p, n)
    for d in ("x509-ss", "x509-ca", "sas-dev"):
        assert telemetry_payloads(sim, d) == []
    assert hub.upstream_queue()["messages"] == 3 * n

    shown = devices(hub)
    assert shown["x509-ss"]["auth"] == "selfSigned"
    assert shown["x509-ca"]["auth"] == "certificateAuthority"
    assert shown["sas-dev"]["auth"] == "sas"
    table = hub.hubctl("devices").stdout
    assert "AUTH" in table and "certificateAuthority" in table

    before = sim.call("GET", "/stats")["onBehalfOf"]
    sim.restore()
    hub.wait_drained(40)
    for d in ("x509-ss", "x509-ca", "sas-dev"):
        records = sim.telemetry(d)["records"]
        assert [json.loads(r["payload"])["seq"] for r in records] == list(range(n)), d
    # The X.509 children's links connected with $edgeHub's token on their behalf.
    assert sim.call("GET", "/stats")["onBehalfOf"] >= before + 2


def test_x509_child_twin_methods_and_c2d(sim, make_hub, devpki):
    cert, key = devpki.leaf("x509-tm", self_signed=True)
    sim.add_child("x509-tm", authType="selfSigned", primaryThumbprint=DevicePki.thumbprint(cert))
    hub = make_hub().start()
    wait_until(lambda: synced(hub), 20, what="scope sync")
    d = Device(hub, "x509-tm", None, x509=(cert, key))
    assert d.connect() == 0
    try:
        twin = TwinClient(d)
        twin.subscribe()
        status, _, body = wait_until(lambda: twin.get(timeout=5), 30, interval=0.5, what="the twin")
        assert status == 200 and "desired" in body
        assert twin.report({"fw": "1.0"})[0] == 204

        d.client.on_message = d._on_message  # TwinClient took it over
        assert d.answer_methods(lambda name, payload: (200, json.dumps({"called": name})))

        def call():
            status, body = sim.invoke_method("x509-tm", "reboot", {}, timeout=5)
            return (status, body) if status == 200 else None
        _, body = wait_until(call, 30, interval=0.5, what="the cloud's call to reach x509-tm")
        assert body == {"status": 200, "payload": {"called": "reboot"}}

        d.subscribe("devices/x509-tm/messages/devicebound/#")
        assert sim.call("POST", "/c2d/x509-tm", {"payload": "to-x509"}).get("delivered") == 1
        wait_until(lambda: d.received("devices/x509-tm/messages/devicebound/"), 10, what="the C2D message")
        assert d.received("devices/x509-tm/messages/devicebound/")[0][1] == b"to-x509"
    finally:
        d.close()


def refused(hub, device_id, cert_key, what):
    d = Device(hub, device_id, None, x509=cert_key)
    try:
        rc = d.connect()
        assert rc == 5, f"{what}: CONNACK {rc}"
    finally:
        d.close()


def test_x509_refusals_offline(sim, make_hub, devpki, workdir):
    other = DevicePki(os.path.join(workdir, "otherpki"), name="other CA")
    good, good_key = devpki.leaf("x-good", self_signed=True)
    ca_good = devpki.leaf("x-ca")
    sim.add_child("x-good", authType="selfSigned", primaryThumbprint=DevicePki.thumbprint(good))
    sim.add_child("x-ca", authType="certificateAuthority")
    sim.add_child("x-gone", authType="certificateAuthority")
    sim.add_child("x-off", authType="certificateAuthority")
    sas = sim.add_child("x-sas")
    hub = make_hub(client_ca_file=devpki.ca_cert).start()
    wait_until(lambda: synced(hub), 20, what="scope sync")

    # Before the uplink goes: the device connected with its thumbprint, then the cloud replaces it.
    connected = Device(hub, "x-good", None, x509=(good, good_key))
    assert connected.connect() == 0
    sim.remove_identity("x-gone")
    sim.patch_identity("x-off", status="disabled")
    new_cert, new_key = devpki.leaf("x-good-new", cn="x-good", self_signed=True)
    sim.patch_identity("x-good", primaryThumbprint=DevicePki.thumbprint(new_cert))
    resync(hub, sim)
    assert connected.disconnected.wait(10), "a connection made with a replaced thumbprint is closed"
    connected.close()
    sim.cut()

    refused(hub, "x-good", (good, good_key), "thumbprint replaced by a sync")
    refused(hub, "x-gone", devpki.leaf("x-gone"), "removed identity")
    refused(hub, "x-off", devpki.leaf("x-off"), "disabled identity")
    refused(hub, "x-ca", devpki.leaf("x-ca-expired", cn="x-ca", start="20200101000000Z", end="20200201000000Z"),
            "expired certificate")
    refused(hub, "x-ca", devpki.leaf("x-ca-future", cn="x-ca", start="20400101000000Z", end="20400201000000Z"),
            "not yet valid certificate")
    refused(hub, "x-ca", other.leaf("x-ca-stranger", cn="x-ca"), "signed by a CA not in the bundle")
    refused(hub, "x-ca", devpki.leaf("x-ca-other", cn="x-good"), "certificate for another device id")
    refused(hub, "x-ca", devpki.leaf("x-ca-selfsigned", cn="x-ca", self_signed=True), "self-signed, not from the CA")
    # (Weak keys: OpenSSL's clients refuse to present them at all; the unit test covers the check.)
    # A SAS identity is not authenticated by a certificate, even a valid one.
    refused(hub, "x-sas", ca_good, "certificate on a SAS identity")
    # No certificate on an X.509 identity: refused with a log line naming the client.
    nocert = Device(hub, "x-ca", None, token="SharedAccessSignature sr=x&sig=y&se=1")
    assert nocert.connect() == 5
    nocert.close()
    hub.log.wait_for("Refused 'x-ca': no certificate")
    hub.log.wait_for("Refused 'x-good': thumbprint mismatch")
    hub.log.wait_for("Refused 'x-ca': untrusted certificate chain")
    hub.log.wait_for("Refused 'x-ca': common name is not the device id")

    # Nothing else is disturbed: the new certificate, the CA-signed one and a SAS device connect, offline.
    for d in (Device(hub, "x-good", None, x509=(new_cert, new_key)), Device(hub, "x-ca", None, x509=ca_good),
              Device(hub, "x-sas", sas["primaryKey"])):
        assert d.connect() == 0, d.identity
        assert d.send(b"still-here")
        d.close()


def test_listener_requests_a_client_certificate(make_hub):
    """The shim is what makes X.509 work on the one port: the server sends a CertificateRequest."""
    hub = make_hub().start()
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{hub.tls_port}", "-CAfile", hub.pki.ca_cert,
                        "-tls1_2", "-brief"], input="", capture_output=True, text=True, timeout=30)
    # With SSL_VERIFY_NONE (mosquitto's own "require_certificate false") OpenSSL sends no CertificateRequest.
    full = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{hub.tls_port}", "-CAfile",
                           hub.pki.ca_cert, "-tls1_2"], input="", capture_output=True, text=True, timeout=30)
    assert "Verification: OK" in p.stdout + p.stderr
    assert "Client Certificate Types" in full.stdout, full.stdout[-2000:]


def test_huge_chain_fails_the_handshake_only(sim, make_hub, devpki, workdir):
    """A device sending a chain over the shim's 32 KiB limit fails its handshake; the hub goes on."""
    cert, key = devpki.leaf("x-huge", self_signed=True)
    sim.add_child("x-huge", authType="selfSigned", primaryThumbprint=DevicePki.thumbprint(cert))
    hub = make_hub().start()
    wait_until(lambda: synced(hub), 20, what="scope sync")
    with open(devpki.ca_cert) as f:
        ca = f.read()
    huge = os.path.join(workdir, "huge-chain.pem")
    with open(cert) as f, open(huge, "w") as out:
        out.write(f.read() + ca * 150)
    # ~400 bytes of DER per copy of the CA: well over 32 KiB on the wire
    assert os.path.getsize(huge) > 80 * 1024
    d = Device(hub, "x-huge", None, x509=(huge, key))
    try:
        assert d.connect(timeout=5) != 0
    finally:
        try:
            d.close()
        except (ssl.SSLError, OSError):
            pass  # the handshake failed: paho's goodbye on the dead TLS socket may fail too
    ok = Device(hub, "x-huge", None, x509=(cert, key))
    try:
        assert ok.connect() == 0
    finally:
        ok.close()


def test_unusable_ca_bundle_is_a_configuration_error(make_hub, workdir):
    bad = os.path.join(workdir, "not-a-bundle.pem")
    with open(bad, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    hub = make_hub(client_ca_file=bad).start(wait=False)
    hub.log.wait_for(f"key 'listeners.tls.client_ca_file': cannot use '{bad}'")
    # A configuration error (exit status 2) is not restarted.
    hub.log.wait_for("auth-cache exited with status 2")
