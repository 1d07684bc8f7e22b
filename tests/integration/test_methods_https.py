"""method-router's HTTPS holds its ground: TLS 1.2+ without SHA-1, per-peer connection limits, a deadline
for the whole request, and the Authorization header checked before any body is read."""
import socket
import ssl
import time

import pytest

from edgehub_harness import wait_until
from test_methods import Offline, https_invoke


@pytest.fixture
def offline(sim, make_hub):
    o = Offline(sim, make_hub)
    yield o
    o.close()


def handshake(hub, minimum, maximum, ciphers=None, source="127.0.0.1"):
    """Returns (negotiated version, cipher name), or raises ssl.SSLError."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(hub.pki.ca_cert)
    ctx.check_hostname = False
    ctx.minimum_version = minimum
    ctx.maximum_version = maximum
    if ciphers:
        ctx.set_ciphers(ciphers)
    with socket.create_connection(("127.0.0.1", hub.methods_port), timeout=10,
                                  source_address=(source, 0)) as raw:
        with ctx.wrap_socket(raw) as tls:
            return tls.version(), tls.cipher()[0]


def local_server_accepts(pki, version, ciphers):
    """Whether this host's OpenSSL can do version with ciphers at all (a local server that allows it):
    shows that a refusal by the gateway is the gateway's."""
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(pki.cert, pki.key)
    srv.minimum_version = srv.maximum_version = version
    srv.set_ciphers(ciphers)
    cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cli.check_hostname = False
    cli.verify_mode = ssl.CERT_NONE
    cli.minimum_version = cli.maximum_version = version
    cli.set_ciphers(ciphers)
    a, b = socket.socketpair()
    try:
        s = srv.wrap_socket(a, server_side=True, do_handshake_on_connect=False)
        c = cli.wrap_socket(b, do_handshake_on_connect=False)
        s.setblocking(False)
        c.setblocking(False)
        done = [False, False]
        deadline = time.monotonic() + 5
        while not all(done) and time.monotonic() < deadline:
            for i, t in enumerate((s, c)):
                if done[i]:
                    continue
                try:
                    t.do_handshake()
                    done[i] = True
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
            time.sleep(0.01)
        return all(done)
    finally:
        a.close()
        b.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_and_sha1_suites_are_refused(offline, pki):
    hub = offline.hub
    TLS = ssl.TLSVersion
    # What must work does.
    assert handshake(hub, TLS.TLSv1_2, TLS.TLSv1_2)[0] == "TLSv1.2"
    assert handshake(hub, TLS.TLSv1_3, TLS.TLSv1_3)[0] == "TLSv1.3"

    # The client could do TLS 1.1 (shown against a local server that allows it) ...
    old = "DEFAULT@SECLEVEL=0"
    assert local_server_accepts(pki, TLS.TLSv1_1, old), "this host cannot speak TLS 1.1: the test would prove nothing"
    # ... and the gateway refuses it: the ClientHello went out and the server answered with an alert.
    with pytest.raises(ssl.SSLError) as e:
        handshake(hub, TLS.TLSv1_1, TLS.TLSv1_1, ciphers=old)
    assert "NO_PROTOCOLS_AVAILABLE" not in str(e.value).upper(), e.value

    # TLS 1.2 with only SHA-1 suites is refused; the same TLS 1.2 with an AEAD suite works.
    # (The test PKI's keys are ECDSA.)
    sha1 = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA@SECLEVEL=0"
    assert local_server_accepts(pki, TLS.TLSv1_2, sha1), "this host cannot offer SHA-1 suites"
    with pytest.raises(ssl.SSLError):
        handshake(hub, TLS.TLSv1_2, TLS.TLSv1_2, ciphers=sha1)
    assert handshake(hub, TLS.TLSv1_2, TLS.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")[0] == "TLSv1.2"


def test_one_peer_cannot_hold_the_method_port(offline):
    hub = offline.hub
    key = offline.mod["primaryKey"]
    # One peer opens far more connections than its share and sends nothing.
    idle = []
    for _ in range(40):
        try:
            idle.append(socket.create_connection(("127.0.0.1", hub.methods_port), timeout=5))
        except OSError:
            pass
    try:
        # Beyond the per-peer limit the gateway closes them at once.
        def closed(s):
            s.settimeout(0.2)
            try:
                return s.recv(1) == b""
            except socket.timeout:
                return False
            except OSError:
                return True
        wait_until(lambda: sum(closed(s) for s in idle) >= 30, 10, what="connections over the per-peer limit closed")

        # A legitimate caller from another address still gets through.
        status, body = https_invoke(hub, "child-1", {"methodName": "ping", "payload": {}}, key,
                                    source_address=("127.0.0.2", 0))
        assert status == 200, body
        assert body["payload"]["echo"] == "ping"
    finally:
        for s in idle:
            s.close()


def test_slow_request_is_cut_at_the_deadline(offline):
    hub = offline.hub
    ctx = ssl.create_default_context(cafile=hub.pki.ca_cert)
    raw = socket.create_connection(("127.0.0.1", hub.methods_port), timeout=10)
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(b"POST /twins/child-1/methods HTTP/1.1\r\nHost: localhost\r\n")
    # A header line every 2 s keeps the idle timeout (30 s) from ever firing; the request deadline does not care.
    started = time.monotonic()
    cut = False
    for i in range(40):
        try:
            tls.sendall(f"x-slow-{i}: y\r\n".encode())
            tls.settimeout(2)
            if tls.recv(1) == b"":
                cut = True
                break
        except socket.timeout:
            continue
        except (OSError, ssl.SSLError):
            cut = True
            break
    tls.close()
    assert cut, f"a request trickled in for {time.monotonic() - started:.0f} s without being cut"


def test_unauthenticated_large_body_is_refused_unread(offline):
    hub = offline.hub
    ctx = ssl.create_default_context(cafile=hub.pki.ca_cert)
    with socket.create_connection(("127.0.0.1", hub.methods_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            # The headers announce 4 MiB; not a byte of it is sent.
            tls.sendall(b"POST /twins/child-1/methods HTTP/1.1\r\nHost: localhost\r\n"
                        b"x-ms-edge-moduleId: edge-1/filter\r\n"
                        b"Authorization: SharedAccessSignature sr=x&sig=y&se=1\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 4194304\r\n\r\n")
            tls.settimeout(10)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert offline.calls == []
