"""The installed edgehub package, run for real: the IoT Hub simulator (from the integration
harness), the installed /etc/edgehub/config.yaml pointed at it the way an operator would edit
it, the installed binaries through /usr/bin/edgehub-run as user edgehub, a device on 8883
trusting the CA that postinst generated, and `hubctl status`.

Run as root by tests/packaging/test-packages.sh after `apt-get install ./edgehub_*.deb`.
"""
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import types
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from edgehub_harness import (  # noqa: E402
    EDGE_ID, GATEWAY_NAME, HUB_NAME, Device, LogPump, Pki, Simulator, free_port, telemetry_payloads, wait_until)

CONFIG = "/etc/edgehub/config.yaml"
CA = "/etc/edgehub/ca.crt"
TLS_PORT = 8883
METRICS_PORT = free_port()


def set_key(text, key, value):
    """Sets the first `key:` line (commented out or not), keeping its indentation."""
    pattern = re.compile(rf"^(\s*)#?\s*{re.escape(key)}:.*$", re.M)
    text, n = pattern.subn(lambda m: f"{m.group(1)}{key}: {value}", text, count=1)
    assert n == 1, f"no '{key}' in {CONFIG}"
    return text


def set_section_key(text, section, key, value):
    """Sets `key:` of the top-level `section:` (keys such as port repeat across sections)."""
    start = re.search(rf"^{re.escape(section)}:\s*$", text, re.M)
    assert start, f"no '{section}:' in {CONFIG}"
    head, tail = text[:start.end()], text[start.end():]
    tail, n = re.subn(rf"^(\s+)#?\s*{re.escape(key)}:.*$", lambda m: f"{m.group(1)}{key}: {value}", tail,
                      count=1, flags=re.M)
    assert n == 1, f"no '{section}.{key}' in {CONFIG}"
    return head + tail


def configure(sim, pki, edgehub_key):
    with open(CONFIG) as f:
        text = f.read()
    for key, value in [
        ("device_id", EDGE_ID), ("hub_hostname", HUB_NAME), ("gateway_hostname", GATEWAY_NAME),
        ("edgehub_key", f'"{edgehub_key}"'), ("host", "127.0.0.1"), ("mqtt_port", sim.mqtt_port),
        ("https_port", sim.https_port), ("ca_file", pki.ca_cert),
    ]:
        text = set_key(text, key, value)
    text = set_section_key(text, "metrics", "port", METRICS_PORT)
    # Written in place: dpkg's statoverride keeps it root:edgehub 0640.
    with open(CONFIG, "w") as f:
        f.write(text)


def edge_key(sim):
    return sim.add_edge()


def main():
    work = tempfile.mkdtemp(prefix="edgehub-pkg-")
    os.chmod(work, 0o755)  # the simulator's CA must be readable by user edgehub
    pki = Pki(os.path.join(work, "pki"))
    sim = Simulator(work, pki).start()
    hub = None
    try:
        configure(sim, pki, edge_key(sim))
        key = sim.add_child("pkg-dev-1")["primaryKey"]

        # The production user, as the units run it; no systemd PID 1 here. method-router's unit
        # grants it CAP_NET_BIND_SERVICE for 443 (edgehub-method-router.service.d/port.conf).
        hub = subprocess.Popen(
            ["setpriv", "--reuid=edgehub", "--regid=edgehub", "--init-groups",
             "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service",
             "/usr/bin/edgehub-run", "--config", CONFIG],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        log = LogPump(hub.stdout, "hub", echo=bool(os.environ.get("EDGEHUB_ECHO")))
        try:
            log.wait_for("all processes ready", timeout=60)
        except AssertionError:
            print(log.text(), file=sys.stderr)
            raise

        # A device trusting only the CA that postinst generated, on the installed 8883 listener.
        gateway = types.SimpleNamespace(pki=types.SimpleNamespace(ca_cert=CA), tls_port=TLS_PORT)
        device = Device(gateway, "pkg-dev-1", key)

        def connected():
            # The first scope sync may still be under way: until then the device is unknown.
            if device.connect(timeout=5) == 0:
                return True
            device.close()
            return False

        wait_until(connected, timeout=30, interval=0.5, what="pkg-dev-1 to connect on 8883")
        assert device.send(b"hello from the package test"), "telemetry not acknowledged"
        wait_until(lambda: "hello from the package test" in telemetry_payloads(sim, "pkg-dev-1"),
                   timeout=30, what="the simulator to receive the message")
        device.close()
        print("package test: device connected on 8883 with", CA, "and its message reached the simulator")

        status = subprocess.run(["/usr/bin/hubctl", "--config", CONFIG, "status"],
                                capture_output=True, text=True, timeout=20)
        print(status.stdout, end="")
        assert status.returncode == 0, f"hubctl status exited {status.returncode}: {status.stderr}"
        assert "Connected devices" in status.stdout, status.stdout

        # The sockets as installed: the daemons' check their peer (0666), the broker's admits the hub's user only.
        for name in ("auth-cache", "hub-store", "agent", "twin-sync", "method-router"):
            st = os.stat(f"/run/edgehub/{name}.sock")
            assert (stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name) == (0o666, "edgehub"), name
        st = os.stat("/run/edgehub/broker.sock")
        assert stat.S_IMODE(st.st_mode) & 0o007 == 0 and pwd.getpwuid(st.st_uid).pw_name == "edgehub", oct(st.st_mode)
        # A local user in neither access group: it cannot read the configuration (it holds keys), hubctl
        # finds the sockets anyway, and each refuses it with a clear line; exit status 6.
        nobody = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                 "/usr/bin/hubctl", "status"], capture_output=True, text=True, timeout=20)
        assert nobody.returncode == 6 and "permission denied: uid" in nobody.stderr, (nobody.returncode, nobody.stderr)
        print("package test: socket modes as installed; hubctl as nobody:", nobody.stderr.strip())

        # The simulator has the message before hub-store has its PUBACK: the count follows within moments.
        def metrics_text():
            with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5) as r:
                return r.read().decode()
        sent = r'^edgehub_messages_sent_total\{.*id="pkg-dev-1",to="upstream"\} 1$'
        try:
            wait_until(lambda: re.search(sent, metrics_text(), re.M), timeout=15, interval=0.3,
                       what="the metrics to count the message")
        except TimeoutError:
            raise AssertionError(metrics_text())
        print("package test: the metrics endpoint counts the message")
    finally:
        if hub and hub.poll() is None:
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(hub.pid, signal.SIGKILL)
                hub.wait()
        sim.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
