#!/usr/bin/python3
"""Soak: the whole hub under faults for a long time (one hour by default).

    /usr/bin/python3 tests/soak/soak.py [--minutes 60] [--devices 100] [--rate 50]

Runs the IoT Hub simulator and edgehub-run (mosquitto + plugin + every daemon)
with the integration tests' harness (tests/integration/edgehub_harness.py).
Devices publish QoS 1 telemetry with sequence numbers, one message at a time,
re-sending until it is acknowledged (as the SDKs do); the uplink flaps every
30 s; every 5 minutes a random daemon gets kill -9 (with a short run the kills
come more often, so that four happen) and the runner restarts it.

At the end the uplink is restored, the store drains, and it prints: RSS of
every process at the start (after a minute's warm-up, a sixth of a short run)
and the end (growth against 5 %), messages
acknowledged, delivered, lost and reordered, duplicates, restarts. Exit status
1 when an acknowledged message was lost or reordered, or a killed daemon did
not come back: those are correctness. RSS growth is reported, not judged here.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from edgehub_harness import Device, Hub, Pki, Simulator, telemetry_payloads, wait_until  # noqa: E402

RSS_GROWTH_LIMIT = 5.0  # percent


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Sender(threading.Thread):
    """One device: seq 0, 1, 2, ... every `interval` s, one in flight; acknowledged only once PUBACKed."""

    def __init__(self, hub, device_id, key, interval, stop, rng):
        super().__init__(daemon=True, name=device_id)
        self.hub, self.device_id, self.key = hub, device_id, key
        self.interval, self.stop, self.rng = interval, stop, rng
        self.acked = []
        self.reconnects = 0

    def run(self):
        seq = 0
        dev = None
        next_at = time.monotonic() + self.rng.uniform(0, self.interval)
        while not self.stop.is_set():
            if dev is None:
                dev = Device(self.hub, self.device_id, self.key)
                if dev.connect(timeout=5) != 0:
                    dev.close()
                    dev = None
                    self.stop.wait(self.rng.uniform(0.5, 2.0))  # spread 100 reconnects after a broker restart
                    continue
                self.reconnects += 1
            delay = next_at - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            if dev.send(f"{self.device_id}:{seq}", timeout=5):
                self.acked.append(seq)
                seq += 1
                next_at = max(next_at + self.interval, time.monotonic())
            else:
                dev.close()  # not acknowledged: the same seq again on a new connection
                dev = None
        if dev:
            dev.close()


def processes(hub):
    """{name: pid} of edgehub-run and every process it runs."""
    found = {"edgehub-run": hub.proc.pid}
    out = subprocess.run(["pgrep", "-P", str(hub.proc.pid)], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode()
        except OSError:
            continue
        found[os.path.basename(argv0)] = int(pid)
    return found


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def edgehub_key(sim):
    return sim.add_edge()


def check_delivery(sim, sender):
    """(delivered, lost, reordered, duplicates) of one device's acknowledged messages."""
    seqs = [int(p.rsplit(":", 1)[1]) for p in telemetry_payloads(sim, sender.device_id)]
    first_seen = list(dict.fromkeys(seqs))
    acked = set(sender.acked)
    delivered = len(acked & set(first_seen))
    reordered, highest = 0, -1
    for s in first_seen:
        if s < highest:
            reordered += 1
        highest = max(highest, s)
    return delivered, len(acked) - delivered, reordered, len(seqs) - len(first_seen)


def run(args):
    rng = random.Random(args.seed)
    duration = args.minutes * 60.0
    kill_every = min(args.kill_every, duration / 5)
    warmup = min(60.0, duration / 6)
    log(f"{args.minutes:g} min, {args.devices} devices, {args.rate:g} msg/s in all, uplink flapping every "
        f"{args.flap_every:g} s, kill -9 of a random daemon every {kill_every:g} s, seed {args.seed}; "
        f"start RSS after {warmup:g} s")

    work = tempfile.mkdtemp(prefix="edgehub-soak-")
    os.chmod(work, 0o755)  # mosquitto, after dropping to its user, reaches the runtime folder
    sim = hub = None
    stop = threading.Event()
    senders = []
    failures = []
    try:
        pki = Pki(os.path.join(work, "pki"))
        sim = Simulator(work, pki).start()
        key = edgehub_key(sim)
        ids = [f"soak-{i:03d}" for i in range(args.devices)]
        keys = {d: sim.add_child(d)["primaryKey"] for d in ids}
        hub = Hub(os.path.join(work, "hub"), pki, sim, key).start()
        wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["synced"], 30, what="scope sync")

        interval = args.devices / args.rate
        senders = [Sender(hub, d, keys[d], interval, stop, random.Random(rng.random())) for d in ids]
        for s in senders:
            s.start()
        wait_until(lambda: all(s.acked for s in senders), 120, interval=0.5, what="every device sending")

        victims = sorted(n for n in processes(hub) if n != "edgehub-run")
        log("running: " + ", ".join(victims))

        t0 = time.monotonic()
        next_flap, next_kill, next_report = t0 + args.flap_every, t0 + kill_every, t0 + 30
        link_up, flaps, kills = True, 0, []
        start_procs, start_rss = None, {}
        while time.monotonic() - t0 < duration:
            now = time.monotonic()
            if start_procs is None and now - t0 >= warmup:
                # RocksDB's memtables and caches fill during the first minute: that is not growth.
                start_procs = processes(hub)
                start_rss = {name: rss_kib(pid) for name, pid in start_procs.items()}
                log("RSS at start (KiB): " + ", ".join(f"{n} {k}" for n, k in sorted(start_rss.items())))
            if now >= next_flap:
                (sim.cut if link_up else sim.restore)()
                link_up = not link_up
                flaps += 1
                next_flap += args.flap_every
            if now >= next_kill:
                name = rng.choice(victims)
                old = hub.child_pid(name)
                if old:
                    hub.kill9(name)
                    kills.append(name)
                    log(f"kill -9 {name} ({old})")
                    try:
                        wait_until(lambda: hub.child_pid(name) not in (None, old), 60, interval=0.2,
                                   what=f"{name} restarted")
                    except TimeoutError as e:
                        failures.append(str(e))
                        log(f"FAIL: {e}")
                        break
                next_kill += kill_every
            if now >= next_report:
                log(f"{now - t0:.0f} s: {sum(len(s.acked) for s in senders)} acknowledged, uplink "
                    f"{'up' if link_up else 'cut'}, {len(kills)} kills")
                next_report += 30
            time.sleep(0.2)

        stop.set()
        for s in senders:
            s.join(30)
        if not link_up:
            sim.restore()
        log("senders stopped, uplink up: draining")
        hub.wait_drained(600)
        acked_total = sum(len(s.acked) for s in senders)

        def all_arrived():
            return all(check_delivery(sim, s)[1] == 0 for s in senders)
        try:
            wait_until(all_arrived, 120, interval=2, what="every acknowledged message in the cloud")
        except TimeoutError:
            pass  # counted as lost below
        start_procs = start_procs or {}
        end_procs = processes(hub)
        end_rss = {name: rss_kib(pid) for name, pid in end_procs.items()}

        delivered = lost = reordered = duplicates = 0
        for s in senders:
            d, l, r, dup = check_delivery(sim, s)
            delivered, lost, reordered, duplicates = delivered + d, lost + l, reordered + r, duplicates + dup
            if l or r:
                log(f"{s.device_id}: {l} lost, {r} reordered")

        restarts = hub.log.text().count(", restarting in ")
        print()
        print("RSS (KiB)                  start       end   growth")
        worst = None
        for name in sorted(set(start_rss) | set(end_rss)):
            a, b = start_rss.get(name), end_rss.get(name)
            growth = 100.0 * (b - a) / a if a and b else 0.0
            if start_procs.get(name) != end_procs.get(name):
                print(f"  {name:<22} {a or 0:>8} {b or 0:>9}   {growth:+.1f} % (restarted since: not judged)")
                continue
            worst = growth if worst is None else max(worst, growth)
            print(f"  {name:<22} {a:>8} {b:>9}   {growth:+.1f} %")
        if worst is not None:
            verdict = "within" if worst <= RSS_GROWTH_LIMIT else "ABOVE"
            print(f"RSS growth: largest {worst:+.1f} % among processes not restarted, {verdict} "
                  f"{RSS_GROWTH_LIMIT:g} %")
        print(f"messages: acknowledged {acked_total}, delivered {delivered}, lost {lost}, reordered {reordered}, "
              f"duplicates {duplicates}")
        print(f"faults: uplink flaps {flaps}, kill -9 {len(kills)} ({', '.join(kills) or 'none'}), "
              f"restarts by the runner {restarts}, device reconnects {sum(s.reconnects for s in senders)}")
        if restarts != len(kills):
            print(f"note: the runner restarted {restarts} processes for {len(kills)} kills: see its log")
        if lost:
            failures.append(f"{lost} acknowledged messages lost")
        if reordered:
            failures.append(f"{reordered} messages reordered")
    finally:
        stop.set()
        if hub:
            hub.stop()
        if sim:
            sim.stop()
        if failures and hub:
            log_path = os.path.join(tempfile.gettempdir(), "edgehub-soak-hub.log")
            with open(log_path, "w") as f:
                f.write(hub.log.text())
            print(f"hub log: {log_path}")
        shutil.rmtree(work, ignore_errors=True)

    for f in failures:
        print(f"FAIL: {f}")
    print("soak: " + ("FAILED" if failures else "ok"))
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--rate", type=float, default=50, help="messages per second from all devices together")
    p.add_argument("--flap-every", type=float, default=30, help="seconds between uplink cuts and restores")
    p.add_argument("--kill-every", type=float, default=300,
                   help="seconds between kills (at most a fifth of the run)")
    p.add_argument("--seed", type=int, default=int(time.time()))
    return run(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
