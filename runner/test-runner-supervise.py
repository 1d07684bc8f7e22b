#!/usr/bin/env python3
"""edgehub-run supervising fake daemons: order, readiness, restart with backoff, exit 2, stop, no orphans.

Usage: test-runner-supervise.py PATH-TO-EDGEHUB-RUN
The fake daemons are Python scripts that speak sd_notify over NOTIFY_SOCKET
from their own pid, as the real ones do through libsystemd.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

FAKE = r'''#!/usr/bin/env python3
import os, signal, socket, sys, time
name = os.path.basename(sys.argv[0])
print("<6>starting " + " ".join(sys.argv[1:]), flush=True)
if os.environ.get("FAKE_EXIT2") == name:
    sys.exit(2)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
while True:
    time.sleep(1)
'''

CONFIG = '''edge:
  device_id: edge1
  hub_hostname: hub.example.net
  edgehub_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
listeners:
  tls:
    port: 0
storage:
  dir: {root}/data
runtime_dir: {root}/run
runner:
  libexec_dir: {root}/libexec
'''


class Runner:
    def __init__(self, exe, root, env=None):
        self.log = open(os.path.join(root, "runner.log"), "w+")
        self.proc = subprocess.Popen([exe, "--config", os.path.join(root, "config.yaml"), "--no-broker"],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))

    def text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def wait_for(self, pattern, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.proc.poll() is not None and not re.search(pattern, self.text()):
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in:\n{self.text()}")

    def pid_of(self, name):
        """The pid of the last start of name."""
        return int(re.findall(rf"Started {name} \(pid (\d+)\)", self.text())[-1])


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_lifecycle(exe, root):
    r = Runner(exe, root)
    r.wait_for(r"edgehub-run: all processes ready")
    text = r.text()
    # Backends in order, each ready before the next starts.
    assert text.index("Started auth-cache") < text.index("auth-cache is ready") < text.index("Started hub-store"), text
    assert "auth-cache: <6>starting --config " in text, text

    first = r.pid_of("hub-store")
    os.kill(first, signal.SIGKILL)
    r.wait_for(r"hub-store exited with status 9 \(killed by SIGKILL\), restarting in 100ms")
    r.wait_for(r"Started hub-store \(pid (?!%d\))" % first)
    second = r.pid_of("hub-store")
    r.wait_for(rf"hub-store is ready(.|\n)*hub-store is ready")
    os.kill(second, signal.SIGKILL)
    r.wait_for(r"restarting in 200ms")

    time.sleep(0.5)
    children = [r.pid_of("auth-cache"), r.pid_of("hub-store")]
    r.proc.send_signal(signal.SIGTERM)
    assert r.proc.wait(timeout=10) == 0, r.text()
    text = r.text()
    # Reverse order.
    assert text.index("hub-store exited with status 0") < text.index("auth-cache exited with status 0"), text
    assert not any(alive(p) for p in children), text
    assert not os.path.exists(os.path.join(root, "run", "notify.sock"))


def test_config_error(exe, root):
    r = Runner(exe, root, {"FAKE_EXIT2": "edgehub-hub-store"})
    assert r.proc.wait(timeout=10) == 2, r.text()
    text = r.text()
    assert "hub-store exited with status 2 (configuration error), not restarting it" in text, text
    assert "auth-cache exited with status 0" in text, text
    assert "all processes ready" not in text, text


def test_no_orphans(exe, root):
    r = Runner(exe, root)
    r.wait_for(r"edgehub-run: all processes ready")
    children = [r.pid_of("auth-cache"), r.pid_of("hub-store")]
    r.proc.kill()
    r.proc.wait(timeout=5)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in children), "children outlived a SIGKILLed runner"


def test_bad_config(exe, root):
    path = os.path.join(root, "bad.yaml")
    with open(path, "w") as f:
        f.write("storage:\n  max_bytes: lots\n")
    p = subprocess.run([exe, "--config", path], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, p
    assert p.stderr.startswith("<3>"), p.stderr
    assert not os.path.exists(os.path.join(root, "run")), "started something despite a bad config"


def main():
    exe = os.path.abspath(sys.argv[1])
    for test in (test_bad_config, test_lifecycle, test_config_error, test_no_orphans):
        with tempfile.TemporaryDirectory(prefix="test-runner-") as root:
            os.chmod(root, 0o755)
            os.mkdir(os.path.join(root, "libexec"))
            for name in ("edgehub-auth-cache", "edgehub-hub-store", "edgehub-twin-sync", "edgehub-method-router", "edgehub-agent"):
                path = os.path.join(root, "libexec", name)
                with open(path, "w") as f:
                    f.write(FAKE)
                os.chmod(path, 0o755)
            with open(os.path.join(root, "config.yaml"), "w") as f:
                f.write(CONFIG.format(root=root))
            test(exe, root)
            print(f"ok {test.__name__}", flush=True)


if __name__ == "__main__":
    main()
