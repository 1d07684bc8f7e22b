#!/usr/bin/python3
"""What edgehub-tls-shim.so costs a SAS device: TLS handshakes per second against a bare mosquitto
2.0.11 listener, then the same listener with the shim preloaded (the server then sends a
CertificateRequest and the client answers with an empty Certificate). Prints figures; asserts
nothing. Both brokers run in the same invocation, alternately, on this machine.

  /usr/bin/python3 tests/bench/tls-handshake.py [--seconds 5] [--rounds 3]
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from edgehub_harness import Pki, free_port  # noqa: E402

BUILD = os.environ.get("EDGEHUB_BUILD", os.path.join(ROOT, "build"))
SHIM = os.path.join(BUILD, "broker-plugin", "edgehub-tls-shim.so")


def start_broker(folder, pki, port, preload):
    conf = os.path.join(folder, f"mosquitto-{port}.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\ncertfile {pki.cert}\nkeyfile {pki.key}\n"
                "allow_anonymous true\nlog_dest none\n")
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = SHIM
    p = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("mosquitto did not start")


def handshakes_per_second(port, ca, seconds, tls):
    out = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-CAfile", ca, "-new",
                          "-time", str(seconds), f"-{tls}"], capture_output=True, text=True).stdout
    m = re.search(r"(\d+) connections in ([\d.]+)s; ([\d.]+) connections/user sec", out)
    if not m:
        raise RuntimeError("openssl s_time: " + out[-500:])
    # Wall-clock rate: the broker's side of the handshake is what changes.
    return int(m.group(1)) / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(SHIM):
        sys.exit(f"{SHIM} not built")

    folder = tempfile.mkdtemp(prefix="edgehub-tls-bench-")
    os.chmod(folder, 0o755)
    try:
        pki = Pki(os.path.join(folder, "pki"))
        ports = {"bare": free_port(), "shim": free_port()}
        brokers = {k: start_broker(folder, pki, p, k == "shim") for k, p in ports.items()}
        try:
            print(f"TLS handshakes/s (openssl s_time -new, {args.seconds}s x {args.rounds}, medians), "
                  "SAS device (no client certificate)")
            print(f"{'':8}{'bare mosquitto':>16}{'with shim':>12}{'ratio':>8}")
            for tls in ("tls1_2", "tls1_3"):
                got = {"bare": [], "shim": []}
                for _ in range(args.rounds):
                    for k in ("bare", "shim"):
                        got[k].append(handshakes_per_second(ports[k], pki.ca_cert, args.seconds, tls))
                bare, shim = statistics.median(got["bare"]), statistics.median(got["shim"])
                print(f"{tls:8}{bare:16.0f}{shim:12.0f}{shim / bare:8.2f}")
        finally:
            for p in brokers.values():
                p.terminate()
                p.wait(5)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
