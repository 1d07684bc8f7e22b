"""Power cuts: a device on the host publishes QoS 1 through the forward while the uplink is cut,
each payload carrying a sequence number, and records each PUBACK; QEMU is killed with SIGKILL
mid-stream (the guest's RAM is gone; its disk keeps what the guest wrote, vm.py's
cache=directsync). The next boot is the check of this cut and the start of the next one:
every unit comes back, hub-store opens its store without an error, the uplink returns, and the
simulator is asked what arrived.

- storage.sync: always   every acknowledged message arrives, in order;
- storage.sync: periodic at most the messages acknowledged in the last sync window are lost
                         (count and window printed), the rest arrive in order.

The two policies run at the same time, each on its own guest with its own simulator
(conftest.second_guest). EDGEHUB_VM_CUTS (default 10) cuts per policy."""
import json
import os
import threading
import time

from conftest import configure, wait_units_active
from edgehub_harness import Device, telemetry_payloads, wait_until
from test_guest import Gateway, add_device

CUTS = int(os.environ.get("EDGEHUB_VM_CUTS", "10"))
SYNC_INTERVAL = 1.0  # storage.sync_interval of the installed config.yaml ("1s")
# A message acknowledged just before a periodic sync that was still under way at the cut is
# lost with it: the window is the interval plus what one fdatasync may take under emulation.
SYNC_SLACK = 1.0
MIN_ACKED = 20  # per cut, before the power goes
# Each payload is "{tag}-{seq} " and padding to this size: a cut's backlog passes the 1 MiB
# above which hub-store imports the ingest log without RocksDB's WAL (STORE_UNLOGGED_MIN_BYTES),
# so the cuts also land while records are only in the ingest log and an unflushed memtable.
# sync: always acknowledges fewer messages in the same time (an fdatasync each).
PAYLOAD_BYTES = {"always": 8192, "periodic": 3072}


class Publisher:
    """QoS 1 with up to 10 in flight; acked() = [(sequence number, monotonic time of its PUBACK)].

    paho calls on_publish holding its own message lock, and publish() takes that lock: so no lock
    of ours is held around publish() (that deadlocked), and a PUBACK may be seen before publish()
    has returned its mid; both sides write their own dict and acked() joins them."""

    def __init__(self, guest, device_id, key, tag, payload_bytes):
        self.device = Device(Gateway(guest), device_id, key)
        self.tag = tag
        self.payload_bytes = payload_bytes
        self.seq_of = {}  # mid -> sequence number (publisher thread)
        self.acked_at = {}  # mid -> time of the PUBACK (paho's thread)
        self.sent = 0
        self.stop = threading.Event()
        self.window = threading.Semaphore(10)
        self.device.client.on_publish = self._on_publish

    def _on_publish(self, client, userdata, mid):
        self.acked_at[mid] = time.monotonic()
        self.window.release()

    def acked(self):
        return sorted((self.seq_of[mid], t) for mid, t in list(self.acked_at.items()) if mid in self.seq_of)

    def count(self):
        return len(self.acked_at)

    def first_ack(self):
        return min(self.acked_at.values(), default=time.monotonic())

    def connect(self):
        return self.device.connect(timeout=10) == 0

    def run(self):
        while not self.stop.is_set() and self.sent < 60000:  # mids stay unique
            if not self.window.acquire(timeout=0.5):
                continue
            seq = self.sent
            head = f"{self.tag}-{seq} "
            info = self.device.client.publish(self.device.topic(), head.ljust(self.payload_bytes, "x"), qos=1)
            if info.rc != 0:
                return
            self.seq_of[info.mid] = seq
            self.sent += 1

    def start(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def finish(self):
        """After the power cut: the publisher and paho's thread stop (bounded)."""
        self.stop.set()
        self.thread.join(10)
        stopper = threading.Thread(target=self.device.client.loop_stop, daemon=True)
        stopper.start()
        stopper.join(10)
        assert not self.thread.is_alive() and not stopper.is_alive(), "the publisher did not stop"


def connect_publisher(guest, device_id, key, tag, payload_bytes):
    def attempt():
        p = Publisher(guest, device_id, key, tag, payload_bytes)
        if p.connect():
            return p
        p.device.close()
        return None
    return wait_until(attempt, 90, interval=1, what=f"{device_id} to connect after the boot")


def upstream_queued(guest):
    rc, text = guest.run("hubctl --json queues", check=False)
    if rc != 0:
        return None
    q = json.loads(text)
    queues = q["queues"] if isinstance(q, dict) else q
    return sum(e["messages"] for e in queues if e["endpoint"] == "$upstream")


def check_store_opened(guest, cut):
    """Every unit back, hub-store never restarted, no error from it this boot, hubctl answers."""
    wait_units_active(guest, timeout=120)
    errors = guest.out("journalctl -b -u edgehub-hub-store -p err --no-pager -q || true")
    restarts = guest.out("systemctl show -p NRestarts --value edgehub-hub-store.service").strip()
    status = guest.run("hubctl status", check=False)
    opened = guest.out("journalctl -b -u edgehub-hub-store --no-pager -q | grep -i 'store' | head -n 3 || true")
    assert not errors.strip(), f"cut {cut}: hub-store logged errors after the power cut:\n{errors}"
    assert restarts == "0", f"cut {cut}: hub-store restarted {restarts} times after the power cut"
    assert status[0] == 0, f"cut {cut}: hubctl status exited {status[0]}: {status[1]}"
    return opened.strip().splitlines()[:1]


def cut_policy(guest, sim, edge_key, policy):
    """CUTS power cuts of one guest under one storage.sync policy; returns a row per cut."""
    guest.run("systemctl enable edgehub.target")
    configure(guest, sim, edge_key, sync=policy)
    guest.run("systemctl restart edgehub.target", timeout=120)
    wait_units_active(guest)
    device_id = f"vm-cut-{policy}"
    key = add_device(guest, sim, device_id)
    rows = []
    for cut in range(1, CUTS + 1):
        tag = f"{policy}-{cut}"
        sim.cut()
        began = time.monotonic()
        pub = connect_publisher(guest, device_id, key, tag, PAYLOAD_BYTES[policy])
        connected = time.monotonic()
        pub.start()
        # Long enough that some acknowledged messages are older than the sync window.
        wait_until(lambda: pub.count() >= MIN_ACKED and
                   time.monotonic() - pub.first_ack() > SYNC_INTERVAL + SYNC_SLACK + 1, 120, interval=0.1,
                   what=f"{MIN_ACKED} acknowledged messages before cut {cut}")
        time.sleep(0.3 * (cut % 4))  # cut at varying points of the sync cycle
        killed_at = time.monotonic()
        guest.power_cut()
        pub.finish()
        acked = pub.acked()
        # The uplink is back before the boot (hub-store's first attempt succeeds: no back-off
        # to wait out); the store still has to open first.
        sim.restore()
        guest.start()
        booted = time.monotonic()
        opened = check_store_opened(guest, cut)
        units = time.monotonic()
        expected = [f"{tag}-{seq}" for seq, _ in acked]
        prefix = f"{tag}-"

        def arrived():
            return [p.split(" ", 1)[0] for p in telemetry_payloads(sim, device_id) if p.startswith(prefix)]
        if policy == "always":
            wait_until(lambda: set(expected) <= set(arrived()), 120, interval=0.5,
                       what=f"cut {cut}: the {len(expected)} acknowledged messages at the simulator")
        else:
            wait_until(lambda: upstream_queued(guest) == 0, 120, interval=1,
                       what=f"cut {cut}: the store to drain upstream")
        drained = time.monotonic()
        got = list(dict.fromkeys(arrived()))  # first arrivals; at-least-once may repeat one
        seqs = [int(p[len(prefix):]) for p in got]
        assert seqs == sorted(seqs), f"cut {cut} ({policy}): out of order: {seqs}"
        lost = [seq for seq, _ in acked if f"{tag}-{seq}" not in set(got)]
        last_window = [seq for seq, t in acked if t >= killed_at - SYNC_INTERVAL - SYNC_SLACK]
        rows.append((cut, len(acked), len(lost), len(last_window), drained - killed_at, opened))
        print(f"power cut {cut:2d} sync={policy:8s}: {len(acked):4d} acknowledged "
              f"({len(acked) * PAYLOAD_BYTES[policy] / 1048576:.1f} MiB), {len(got):4d} arrived, "
              f"{len(lost):3d} lost (acknowledged in the last {SYNC_INTERVAL + SYNC_SLACK:.1f}s: "
              f"{len(last_window)}); connect {connected - began:.0f}s, publish {killed_at - connected:.0f}s, "
              f"boot {booted - killed_at:.0f}s, units {units - booted:.0f}s, drain {drained - units:.0f}s",
              flush=True)
        if policy == "always":
            assert not lost, f"cut {cut}: acknowledged and lost with sync: always: {lost}"
        else:
            assert set(lost) <= set(last_window), \
                f"cut {cut}: lost {lost}, older than the last sync window {last_window}"
    return rows


def test_power_cuts(guest, sim, edge_key, second_guest):
    """sync: always on the first guest, sync: periodic on the second, at the same time."""
    runs = {"always": (guest, sim, edge_key), "periodic": second_guest}
    results, errors = {}, {}

    def run(policy):
        try:
            results[policy] = cut_policy(*runs[policy], policy)
        except BaseException as e:  # re-raised below, with the other policy's outcome
            errors[policy] = e
    threads = [threading.Thread(target=run, args=(p,), daemon=True) for p in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for policy, rows in results.items():
        print(f"power cuts with sync={policy}: {len(rows)} cuts, "
              f"{sum(r[1] for r in rows)} acknowledged, {sum(r[2] for r in rows)} lost "
              f"(at most per cut: {max(r[2] for r in rows)}; window {SYNC_INTERVAL:.0f}s sync_interval "
              f"+ {SYNC_SLACK:.0f}s slack)")
    for policy, e in errors.items():
        raise AssertionError(f"sync={policy}: {e}") from e
    assert all(len(results[p]) >= CUTS for p in runs)
