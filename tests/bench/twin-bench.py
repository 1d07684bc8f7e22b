#!/usr/bin/python3
"""edgehub twin benchmark: reconcile after a reconnect, and twin GET latency offline.
Prints figures; asserts no timings.

    /usr/bin/python3 tests/bench/twin-bench.py [--devices 1000] [--gets 1000] [--build DIR]

Stages, against the real hub (edgehub-run) and the IoT Hub simulator:
  (a) GET offline: with the uplink cut, one device sends --gets twin GETs one
      after the other; p50/p99/max of the round trip (device -> broker ->
      twin-sync's cache -> device).
  (b) reconcile: --devices child devices connected to the hub, subscribed to
      desired patches, each having fetched its twin. The uplink is cut; each
      device sends one reported patch (answered 204 by the hub at once) and
      the cloud changes each device's desired properties. The uplink returns;
      measured from the restore: every reported patch acknowledged by the
      cloud (simulator's reported log), and every device holding its desired
      change (one patch with the cloud's version).
"""
import argparse
import json
import multiprocessing
import os
import resource
import shutil
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import edgehub_harness as harness  # noqa: E402
from edgehub_harness import (Device, Hub, Pki, Simulator, TwinClient, sim_patch_desired,  # noqa: E402
                             wait_until)


PER_WORKER = 250


class _HubRef:
    """What Device needs of a Hub, in a worker process."""

    def __init__(self, folder, tls_port, ca_cert):
        self.folder = folder
        self.tls_port = tls_port
        self.pki = type("P", (), {"ca_cert": ca_cert})()


def worker(conn, folder, tls_port, ca_cert, keys):
    hub = _HubRef(folder, tls_port, ca_cert)
    twins = {}
    while True:
        cmd = conn.recv()
        try:
            if cmd[0] == "connect":
                for n, k in keys.items():
                    d = Device(hub, n, k)
                    for _ in range(5):
                        if d.connect(timeout=30) == 0:
                            break
                        time.sleep(1)
                    else:
                        raise RuntimeError(f"{n} cannot connect")
                    t = TwinClient(d)
                    t.subscribe()
                    twins[n] = (d, t)
                for n, (d, t) in twins.items():
                    r = t.get(timeout=30)
                    assert r and r[0] == 200, (n, r)
                    t.desired.clear()
                conn.send(("ok", None))
            elif cmd[0] == "report":
                for n, (d, t) in twins.items():
                    r = t.report({"bench": {"n": n, "at": time.time()}}, timeout=10)
                    assert r and r[0] == 204, (n, r)
                conn.send(("ok", None))
            elif cmd[0] == "desired":
                conn.send(("ok", {n: [v for v, _ in t.desired] for n, (d, t) in twins.items()}))
            elif cmd[0] == "quit":
                for d, t in twins.values():
                    d.close()
                conn.send(("ok", None))
                return
        except Exception as e:  # reported to the parent, which stops
            conn.send(("error", repr(e)))


def call_all(workers, cmd):
    for _, conn in workers:
        conn.send(cmd)
    out = []
    for _, conn in workers:
        status, value = conn.recv()
        if status != "ok":
            sys.exit(f"worker failed: {value}")
        out.append(value)
    return out


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--gets", type=int, default=1000)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for the reconcile")
    args = ap.parse_args()
    harness.BUILD = os.path.abspath(args.build)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.devices + 1024)), hard))

    work = tempfile.mkdtemp(prefix="edgehub-twin-bench-")
    os.chmod(work, 0o755)
    sim = hub = None
    workers = []
    try:
        pki = Pki(os.path.join(work, "pki"))
        sim = Simulator(work, pki).start()
        key = sim.add_edge()
        names = [f"bench-{i:04d}" for i in range(args.devices)]
        keys = {n: sim.add_child(n)["primaryKey"] for n in names}
        probe_key = sim.add_child("bench-probe")["primaryKey"]
        hub = Hub(os.path.join(work, "hub"), pki, sim, key, log_level="warning").start()
        wait_until(lambda: len(hub.hubctl_json("devices").get("devices", [])) >= args.devices, 60,
                   what="the scope")

        print(f"connecting {args.devices} devices ...", flush=True)
        t0 = time.monotonic()
        # paho's loop uses select(): one process holds at most ~300 connections (fds < 1024).
        groups = [names[i:i + PER_WORKER] for i in range(0, len(names), PER_WORKER)]
        for g in groups:
            parent, child = multiprocessing.Pipe()
            p = multiprocessing.Process(target=worker, args=(child, hub.folder, hub.tls_port, hub.pki.ca_cert,
                                                            {n: keys[n] for n in g}))
            p.start()
            workers.append((p, parent))
        call_all(workers, ("connect",))
        print(f"  connected and fetched in {time.monotonic() - t0:.1f}s ({len(workers)} client processes)", flush=True)

        # (a) GET latency offline, from this process on a device of its own
        probe_dev = Device(hub, "bench-probe", probe_key)
        assert probe_dev.connect() == 0
        probe = TwinClient(probe_dev)
        probe.subscribe()
        sim.cut()
        wait_until(lambda: hub.hubctl_json("twins")["links_up"] == 0, 30, what="links down")
        probe.get(timeout=10)  # the first one may still wait for the cloud once

        def measure():
            lat = []
            for _ in range(args.gets):
                t1 = time.perf_counter()
                r = probe.get(timeout=10)
                lat.append((time.perf_counter() - t1) * 1000)
                assert r and r[0] == 200
            return f"p50 {percentile(lat, 50):.2f} ms, p99 {percentile(lat, 99):.2f} ms, max {max(lat):.2f} ms"
        # paho leaves Nagle on: its PUBACK for the last answer holds back the next request
        # until the broker's delayed ACK (~40 ms). With TCP_NODELAY that client artefact goes.
        print(f"(a) twin GET offline, {args.gets} requests back to back on one connection:", flush=True)
        print(f"    paho as is (Nagle on):  {measure()}", flush=True)
        probe_dev.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        print(f"    with TCP_NODELAY:       {measure()}", flush=True)
        probe_dev.close()

        # (b) reconcile
        t1 = time.monotonic()
        call_all(workers, ("report",))
        report_s = time.monotonic() - t1
        want = {}
        for n in names:
            want[n] = sim_patch_desired(sim, n, {"setpoint": 21, "owner": n})["desired"]["$version"]
        print(f"  offline: {args.devices} reported patches answered 204 in {report_s:.2f}s "
              f"({report_s / args.devices * 1000:.2f} ms each, {len(workers)} processes in parallel); "
              f"desired changed in the cloud", flush=True)

        before = len(sim.call("GET", "/twins/reported")["patches"])
        t_restore = time.monotonic()
        sim.restore()
        done_reported = done_desired = None
        deadline = t_restore + args.timeout
        desired = {}
        while time.monotonic() < deadline and (done_reported is None or done_desired is None):
            now = time.monotonic()
            if done_reported is None:
                got = len(sim.call("GET", "/twins/reported")["patches"]) - before
                if got >= args.devices:
                    done_reported = now - t_restore
            if done_desired is None:
                desired = {}
                for part in call_all(workers, ("desired",)):
                    desired.update(part)
                if all(want[n] in desired.get(n, []) for n in names):
                    done_desired = time.monotonic() - t_restore
            time.sleep(0.1)
        multi = sum(1 for n in names if len(desired.get(n, [])) > 1)
        missing = [n for n in names if want[n] not in desired.get(n, [])]
        if missing:
            print(f"    {len(missing)} devices without their desired change, e.g. "
                  + ", ".join(f"{n}: want {want[n]}, got {desired.get(n)}" for n in missing[:5]))
        print(f"(b) reconcile of {args.devices} twins after the uplink returned:")
        print(f"    reported patches all acknowledged by the cloud: {done_reported:.2f}s"
              if done_reported is not None else "    reported: not complete in time")
        print(f"    desired changes all delivered to the devices:   {done_desired:.2f}s"
              if done_desired is not None else "    desired: not complete in time")
        print(f"    devices that got more than one desired patch: {multi}")
        status = hub.hubctl_json("twins")
        print(f"    pending reported patches left: {status['pending']}", flush=True)
    finally:
        for p, conn in workers:
            try:
                conn.send(("quit",))
            except Exception:
                pass
            p.join(5)
            if p.is_alive():
                p.kill()
        if hub:
            hub.stop()
        if sim:
            sim.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
