#!/usr/bin/python3
"""edgehub benchmark: ingest (hub vs bare mosquitto), offline backlog drain,
peak RSS, bytes on disk per stored message, CPU per message, bytes written per payload
byte, whole-hub idle memory. Prints figures; asserts no timings.

Run with Debian's python3 (it has paho, which the harness imports), after
building into build/ (or --build DIR):

    /usr/bin/python3 tests/bench/run-bench.py [--quick]

Stages, all against real processes on this machine:
  (a) ingest: --devices devices x --ingest-messages QoS 1 messages of --payload bytes,
      published by edgehub-loadgen (C, libmosquitto, TLS), into
        bare   Debian's mosquitto with a minimal TLS listener (same certs, anonymous)
        hub    edgehub-run (mosquitto + plugin + auth-cache + hub-store), uplink up
        hub-offline  the same with the simulator's uplink cut (store only)
  (b) drain: a backlog of --messages from --drain-devices devices stored with the
      uplink cut, then the link restored: drain rate and time to the first message
      upstream (simulator /telemetry/count firstReceivedAt vs the restore time)
  (c) peak RSS (VmHWM) of every hub process
  (d) bytes on disk per stored message (storage/messages before the drain), and the bytes
      every hub process wrote to the disk (/proc/PID/io write_bytes, net of cancelled writes)
      per payload byte while the backlog was stored, and while it drained
  (f) CPU-seconds per 100k messages of each process in the ingest runs of (a) (from
      /proc/PID/stat utime+stime), beside bare mosquitto's
  (g) whole hub idle: RSS, PSS, USS (/proc/PID/smaps_rollup) of every hub process with a
      scope of --idle-children children and no device connected, beside an idle bare mosquitto
  (e) route: module -> module through a route (modA/out1 -> modB/in1, uplink cut) beside
      publisher -> subscriber through the bare mosquitto, by edgehub-routelat (one publisher,
      one subscriber, QoS 1, TLS): one-way latency p50/p90/p99 at --route-rate msgs/s, and the
      throughput of the one route (as fast as --route-window allows); hub/bare ratios.
      `--only route` runs this stage alone.
  (h) `--only shim`: what edgehub-tls-shim.so (the optional client certificate on the
      device port, for X.509 children) costs a SAS device: the same hub configuration
      with the shim and without it (runner.plugin names a copy of the plugin with no
      shim beside it), uplink cut, --repeat ingest runs of each, alternately, with
      every device's TLS handshake timed (loadgen's connect_seconds)
  (i) `--only scale`: flat cost as the backlog grows. One hub, uplink cut while storing, filled by
      --drain-devices devices to --scale-small (10,000) messages, then to --scale-large (10,000,000;
      in load generator runs of --scale-chunk, with progress). At each size: the ingest rate of a
      batch of --scale-devices x --scale-batch on top (--repeat runs, median), then the drain rate of
      the same number of messages (the whole small backlog, batch included) after the link returns,
      counted from the moment every link is connected; the link is cut again after that window. Then
      the rest of the large backlog drains if that takes at most --scale-drain-all seconds, and the
      store's space is measured after it. Prints both rates at both sizes and their ratio (goal
      >= 0.9), hub-store CPU per message, store disk bytes, hub-store RSS, bytes written per payload
      byte and the time of the large fill.
"""
import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import edgehub_harness as harness  # noqa: E402
from edgehub_harness import Hub, Pki, Simulator, wait_until  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROCESSES = ("mosquitto", "edgehub-auth-cache", "edgehub-hub-store", "edgehub-twin-sync", "edgehub-method-router",
             "edgehub-agent", "edgehub-run")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc helpers

def proc_cpu(pid):
    """user+system CPU seconds of a process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (FileNotFoundError, ProcessLookupError, TypeError):
        return None


def proc_status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, TypeError):
        pass
    return None


def proc_io_written(pid):
    """Bytes a process caused to be written to the storage layer (write_bytes, counted when pages are
    dirtied, so at once) less what it cancelled by deleting or truncating dirty pages."""
    try:
        with open(f"/proc/{pid}/io") as f:
            v = dict(line.split(": ") for line in f.read().splitlines())
        return int(v["write_bytes"]) - int(v["cancelled_write_bytes"])
    except (FileNotFoundError, ProcessLookupError, KeyError, ValueError, TypeError):
        return None


def io_written(pids):
    return {name: proc_io_written(pid) for name, pid in pids.items()}


def io_delta(before, after):
    return {k: after[k] - before[k] for k in after if after.get(k) is not None and before.get(k) is not None}


def proc_smaps_kib(pid):
    """Rss, Pss and USS (Private_Clean + Private_Dirty) of a process, KiB."""
    v = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":"):
                    v[parts[0][:-1]] = int(parts[1]) if parts[1].isdigit() else None
    except (FileNotFoundError, ProcessLookupError):
        return None
    return {"rss_kib": v.get("Rss"), "pss_kib": v.get("Pss"),
            "uss_kib": (v.get("Private_Clean") or 0) + (v.get("Private_Dirty") or 0)}


def disk_usage(path):
    """(allocated bytes as du counts them, apparent bytes, files)."""
    allocated = apparent = files = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except FileNotFoundError:
                continue
            allocated += st.st_blocks * 512
            apparent += st.st_size
            files += 1
    return allocated, apparent, files


def machine_busy_seconds():
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / CLK_TCK


class CpuMeter:
    """CPU seconds used by named processes between start() and stop(), and by everything else.

    result[name] = {cpu_s, cpu_pct}; pct is of one core over the window. result["other"]
    is the machine's busy time not spent in these processes (nor in extra_s, the load
    generator's own figure): other users of this machine disturb the figures.
    """

    def __init__(self, pids):
        self.pids = {k: v for k, v in pids.items() if v}
        self.before = {}
        self.result = {}

    def start(self):
        self.t0 = time.monotonic()
        self.machine0 = machine_busy_seconds()
        self.before = {k: proc_cpu(p) for k, p in self.pids.items()}

    def stop(self, extra_s=0.0):
        wall = time.monotonic() - self.t0
        ours = extra_s
        for k, p in self.pids.items():
            after = proc_cpu(p)
            if after is not None and self.before.get(k) is not None:
                used = after - self.before[k]
                ours += used
                self.result[k] = {"cpu_s": round(used, 2), "cpu_pct": round(100 * used / wall, 1) if wall else 0}
        other = max(0.0, machine_busy_seconds() - self.machine0 - ours)
        self.result["other"] = {"cpu_s": round(other, 2), "cpu_pct": round(100 * other / wall, 1) if wall else 0}
        self.wall = wall
        return self.result


def median_run(runs):
    """The run with the median rate (the lower middle one for an even count), plus every rate."""
    ordered = sorted(runs, key=lambda f: f["msgs_per_s"])
    m = dict(ordered[(len(ordered) - 1) // 2])
    m["runs_msgs_per_s"] = [round(f["msgs_per_s"]) for f in runs]
    return m


# ---------------------------------------------------------------- load generator

def run_loadgen(exe, port, ca, ids_file, devices, messages, args, hub_name, audience, meter=None, timeout=900):
    """Runs edgehub-loadgen; the CPU meter starts when every client is connected."""
    cmd = [exe, "--host", "127.0.0.1", "--port", str(port), "--ca-file", ca,
           "--devices", str(devices), "--messages", str(messages), "--payload", str(args.payload),
           "--inflight", str(args.inflight), "--threads", str(args.loadgen_threads),
           "--hub-name", hub_name, "--timeout", str(timeout)]
    if args.compressible:
        cmd += ["--compressible"]
    if ids_file:
        cmd += ["--ids", ids_file]
    if audience:
        cmd += ["--audience", audience]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def pump():
        for line in p.stderr:
            line = line.rstrip("\n")
            if " connected " in line and meter is not None:
                meter.start()
            if args.verbose or "connect " in line:
                log(line)
    t = threading.Thread(target=pump, daemon=True)
    t.start()
    # stdout carries one JSON line; stderr belongs to the pump thread
    out = p.stdout.read()
    p.wait(timeout + 120)
    t.join(5)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError(f"loadgen printed no figures (exit {p.returncode})")
    figures = json.loads(lines[-1])
    if meter is not None and meter.before:
        meter.stop(extra_s=figures.get("cpu_seconds", 0.0))
    figures["exit"] = p.returncode
    if p.returncode != 0:
        log(f"loadgen exited {p.returncode}: acked {figures['acked']} of {figures['devices'] * messages}")
    return figures


def start_perf(pid, path):
    if not shutil.which("perf"):
        log("perf not found: no profile")
        return None
    p = subprocess.Popen(["perf", "record", "-g", "-o", path, "-p", str(pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # let it attach before the load starts
    return p


def stop_perf(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


# ---------------------------------------------------------------- bare mosquitto

class BareMosquitto:
    """Debian's mosquitto with a minimal TLS listener: the reference for ingest."""

    def __init__(self, folder, pki):
        os.makedirs(folder, exist_ok=True)
        os.chmod(folder, 0o755)
        self.port = harness.free_port()
        self.conf = os.path.join(folder, "mosquitto.conf")
        # The PKI's key is the hub's own: mosquitto (dropping to its user) reads a copy of its own.
        key = os.path.join(folder, "server.key")
        shutil.copyfile(pki.key, key)
        try:
            import pwd
            u = pwd.getpwnam("mosquitto")
            os.chown(key, u.pw_uid, u.pw_gid)
        except KeyError:
            pass
        os.chmod(key, 0o600)
        with open(self.conf, "w") as f:
            f.write(f"""# bare mosquitto for the ingest comparison: same TLS settings as edgehub-run writes
per_listener_settings false
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
max_inflight_messages 100
max_packet_size 300000
listener {self.port} 127.0.0.1
certfile {pki.cert}
keyfile {key}
tls_version tlsv1.2
""")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def listening():
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode(errors='replace')}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_until(listening, 10, what="bare mosquitto listening")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------- the stages

def hub_pids(hub):
    pids = {"edgehub-run": hub.proc.pid}
    for name in PROCESSES:
        if name == "edgehub-run":
            continue
        pid = hub.child_pid(name)
        if pid:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            if name.startswith(comm) or comm.startswith(name[:15]):
                pids[name] = pid
    return pids


def rss_snapshot(pids):
    return {name: {"hwm_kib": proc_status_kib(pid, "VmHWM"), "rss_kib": proc_status_kib(pid, "VmRSS")}
            for name, pid in pids.items()}


def stage_ingest_bare(args, bare, pki, exe):
    meter = CpuMeter({"mosquitto": bare.proc.pid})
    figures = run_loadgen(exe, bare.port, pki.ca_cert, None, args.devices, args.ingest_messages, args,
                          harness.HUB_NAME, None, meter)
    figures["cpu"] = meter.result
    figures["rss_kib"] = {"mosquitto": proc_status_kib(bare.proc.pid, "VmHWM")}
    return figures


def stage_ingest_hub(args, hub, sim, pki, exe, ids_file, pids, label):
    meter = CpuMeter({**pids, "simulator": sim.proc.pid})
    perf = []
    if args.perf:
        os.makedirs(args.perf, exist_ok=True)
        for name in ("mosquitto", "edgehub-hub-store"):
            if name in pids:
                path = os.path.join(args.perf, f"{label}-{name}.data")
                if not os.path.exists(path):  # the first run of each kind only
                    perf.append(start_perf(pids[name], path))
    try:
        figures = run_loadgen(exe, hub.tls_port, pki.ca_cert, ids_file, args.devices, args.ingest_messages, args,
                              harness.HUB_NAME, harness.GATEWAY_NAME, meter)
    finally:
        for p in perf:
            stop_perf(p)
    figures["cpu"] = meter.result
    return figures


def upstream_messages(hub):
    return hub.upstream_queue().get("messages", 0)


def wait_imported(hub, timeout=60):
    """Acknowledged messages may still wait in the ingest log: wait until the queue has stopped
    changing for a second."""
    start, last, last_change = time.monotonic(), None, time.monotonic()
    while time.monotonic() - start < timeout:
        n = upstream_messages(hub)
        if n != last:
            last, last_change = n, time.monotonic()
        elif time.monotonic() - last_change > 1.0:
            return
        time.sleep(0.1)


def wait_drained(hub, timeout, what):
    """Waits for the upstream queue to empty; gives up (and says so) after timeout or a 30 s stall."""
    wait_imported(hub)
    start = time.monotonic()
    last, last_change = None, start
    while True:
        n = upstream_messages(hub)
        if n == 0:
            return True
        now = time.monotonic()
        if n != last:
            last, last_change = n, now
        if now - start > timeout or now - last_change > 30:
            log(f"{what}: {n} messages still queued after {now - start:.0f}s, moving on")
            return False
        time.sleep(0.2)


def stage_backlog_and_drain(args, hub, sim, pki, exe, ids_file, pids, expected):
    """(b)-(d): fill with the link cut, measure the store, restore, time the drain."""
    wait_imported(hub)
    stored = upstream_messages(hub)
    remaining = max(0, args.messages - stored)
    per_device = math.ceil(remaining / args.drain_devices) if remaining else 0
    fill = None
    io_before_fill = io_written(pids)
    if per_device:
        log(f"backlog: {stored} stored already, {args.drain_devices} devices x {per_device} more, uplink cut")
        meter = CpuMeter(pids)
        fill = run_loadgen(exe, hub.tls_port, pki.ca_cert, ids_file, args.drain_devices, per_device, args,
                           harness.HUB_NAME, harness.GATEWAY_NAME, meter, timeout=args.fill_timeout)
        fill["cpu"] = meter.result
        fill["rss_kib"] = rss_snapshot(pids)
        for i in range(args.drain_devices):
            expected[f"bench-{i}"] = expected.get(f"bench-{i}", 0) + per_device

    # Let RocksDB settle a moment (memtable flushes) before measuring the disk.
    time.sleep(2)
    wait_imported(hub)
    io_fill = io_delta(io_before_fill, io_written(pids))
    filled = per_device * args.drain_devices
    status = hub.hubctl_json("status")
    queue = hub.upstream_queue()
    backlog = queue["messages"]
    allocated, apparent, files = disk_usage(os.path.join(hub.storage, "messages"))
    store = status["hub_store"]["store"]
    disk = {
        "messages": backlog,
        "du_bytes": allocated,
        "apparent_bytes": apparent,
        "files": files,
        "du_bytes_per_message": round(allocated / backlog, 1) if backlog else None,
        "store_bytes": store["bytes"],
        "store_disk_bytes": store["disk_bytes"],
        "store_disk_bytes_per_message": round(store["disk_bytes"] / backlog, 1) if backlog else None,
        "store_bytes_per_message": round(store["bytes"] / backlog, 1) if backlog else None,
    }
    rss_backlog = rss_snapshot(pids)
    log(f"backlog stored: {backlog} messages, du {allocated / 2**20:.1f} MiB "
        f"({disk['du_bytes_per_message']} B/msg), hubctl disk_bytes {store['disk_bytes'] / 2**20:.1f} MiB")

    # (b) drain: clear the cloud's record so its count is the drain alone
    sim.call("DELETE", "/telemetry")
    meter = CpuMeter({**pids, "simulator": sim.proc.pid})
    perf = None
    if args.perf:
        perf = start_perf(pids["edgehub-hub-store"], os.path.join(args.perf, "drain-edgehub-hub-store.data"))
    io_before_drain = io_written(pids)
    meter.start()
    t_restore_ms = time.time() * 1000.0
    t0 = time.monotonic()
    sim.restore()
    samples = []
    deadline = t0 + args.drain_timeout
    first_seen = None
    complete = False
    next_queue_poll = 0
    while time.monotonic() < deadline:
        c = sim.count()
        now = time.monotonic()
        samples.append((round(now - t0, 3), c["total"]))
        if first_seen is None and c["total"] > 0:
            first_seen = now - t0
        if c["total"] >= backlog and now >= next_queue_poll:
            next_queue_poll = now + 0.5
            if upstream_messages(hub) == 0:
                complete = True
                break
        if len(samples) > 150 and samples[-1][1] == samples[-150][1]:
            log("drain: no progress for 30 s, giving up")
            break
        time.sleep(0.2)
    meter.stop()
    stop_perf(perf)
    time.sleep(2)  # what the drain leaves to RocksDB's threads (flushes of the deletions)
    io_drain = io_delta(io_before_drain, io_written(pids))
    payload_fill = filled * args.payload
    disk["io"] = {
        "fill_messages": filled, "fill_written": io_fill,
        "fill_per_payload_byte": round(sum(io_fill.values()) / payload_fill, 2) if payload_fill else None,
        "drain_messages": backlog, "drain_written": io_drain,
        "drain_per_payload_byte": round(sum(io_drain.values()) / (backlog * args.payload), 2) if backlog else None,
    }
    c = sim.count()
    first_at = c.get("firstReceivedAt")
    last_at = c.get("lastReceivedAt")
    received = c["total"]
    missing = {i: n - c["byIdentity"].get(i, 0) for i, n in expected.items() if c["byIdentity"].get(i, 0) < n}
    drain = {
        "backlog": backlog,
        "received": received,
        "duplicates": max(0, received - backlog),
        "complete": complete and not missing,
        "identities_short": len(missing),
        "first_message_after_restore_s": round((first_at - t_restore_ms) / 1000.0, 3) if first_at else None,
        "seconds": round((last_at - t_restore_ms) / 1000.0, 3) if last_at else None,
        "msgs_per_s": round(received / ((last_at - t_restore_ms) / 1000.0)) if last_at and last_at > t_restore_ms else None,
        "steady_msgs_per_s": round(received / ((last_at - first_at) / 1000.0)) if last_at and first_at and last_at > first_at else None,
        "cpu": meter.result,
        "samples": samples[:: max(1, len(samples) // 40)],
    }
    if missing:
        log(f"drain: {len(missing)} identities short, e.g. {list(missing.items())[:3]}")
    return fill, disk, rss_backlog, drain


# ---------------------------------------------------------------- (i) scale: flat cost as the backlog grows

def crossing_time(samples, n):
    """When the count crossed n, interpolated between two polls (samples: (seconds, count), in order)."""
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        if c0 < n <= c1:
            return t0 + (t1 - t0) * (n - c0) / (c1 - c0)
    return None


def window_rate(samples, lo, hi):
    a, b = crossing_time(samples, lo), crossing_time(samples, hi)
    return round((hi - lo) / (b - a)) if a is not None and b is not None and b > a else None


def scale_store_figures(hub, pids):
    """The store as hub-store counts it, as du sees it, and hub-store's memory."""
    store = hub.hubctl_json("status")["hub_store"]["store"]
    allocated, apparent, files = disk_usage(os.path.join(hub.storage, "messages"))
    hs = pids.get("edgehub-hub-store")
    return {"messages": upstream_messages(hub), "store_messages": store["messages"], "store_bytes": store["bytes"],
            "disk_bytes": store["disk_bytes"], "du_bytes": allocated, "apparent_bytes": apparent, "files": files,
            "ttl_sec": store.get("ttl_sec"),
            "hub_store_rss_kib": proc_status_kib(hs, "VmRSS"), "hub_store_hwm_kib": proc_status_kib(hs, "VmHWM")}


def scale_fill(args, hub, pki, ids_file, pids, target, label):
    """Fills the store (uplink cut) up to target messages with --drain-devices devices, in loadgen runs of at
    most --scale-chunk messages, printing progress: the big fill takes minutes."""
    wait_imported(hub)
    start_stored = upstream_messages(hub)
    io_before = io_written(pids)
    t0 = time.monotonic()
    filled, chunks = 0, []
    while start_stored + filled < target:
        n = min(args.scale_chunk, target - start_stored - filled)
        per_device = math.ceil(n / args.drain_devices)
        f = run_loadgen(args.loadgen, hub.tls_port, pki.ca_cert, ids_file, args.drain_devices, per_device, args,
                        harness.HUB_NAME, harness.GATEWAY_NAME, timeout=args.fill_timeout)
        filled += f["acked"]
        elapsed = time.monotonic() - t0
        hs = pids.get("edgehub-hub-store")
        chunk = {"acked": f["acked"], "msgs_per_s": round(f["msgs_per_s"]), "stored_after": start_stored + filled,
                 "ack_p99_ms": f["ack_latency_ms"]["p99"], "hub_store_rss_kib": proc_status_kib(hs, "VmRSS")}
        chunks.append(chunk)
        log(f"(i) scale fill {label}: {start_stored + filled:,}/{target:,} stored ({upstream_messages(hub):,} imported), "
            f"this run {chunk['msgs_per_s']:,} msgs/s (PUBACK p99 {chunk['ack_p99_ms']:.1f} ms), "
            f"overall {filled / elapsed:,.0f} msgs/s, {elapsed:.0f} s, hub-store RSS {chunk['hub_store_rss_kib']} KiB")
        if f["exit"] != 0:
            log(f"(i) scale fill {label}: the load generator failed, stopping the fill at {start_stored + filled:,}")
            break
    wait_imported(hub, timeout=600)
    time.sleep(2)  # memtable flushes, as (d) does
    seconds = time.monotonic() - t0
    io = io_delta(io_before, io_written(pids))
    payload = filled * args.payload
    return {"target": target, "filled": filled, "seconds": round(seconds, 1),
            "msgs_per_s": round(filled / seconds) if seconds else None, "chunks": chunks, "written": io,
            "written_per_payload_byte": round(sum(io.values()) / payload, 2) if payload else None}


def scale_ingest(args, hub, sim, pki, ids_file, pids, label):
    """The fixed ingest batch on top of the stored backlog (uplink cut), --repeat runs, median."""
    runs = []
    for r in range(args.repeat):
        log(f"(i) scale ingest at {label}: {args.scale_devices} x {args.scale_batch}, uplink cut "
            f"(run {r + 1}/{args.repeat})")
        meter = CpuMeter({**pids, "simulator": sim.proc.pid})
        perf = None
        if args.perf and r == 0:
            os.makedirs(args.perf, exist_ok=True)
            perf = start_perf(pids["edgehub-hub-store"], os.path.join(args.perf, f"scale-ingest-{label}-hub-store.data"))
        try:
            f = run_loadgen(args.loadgen, hub.tls_port, pki.ca_cert, ids_file, args.scale_devices, args.scale_batch,
                            args, harness.HUB_NAME, harness.GATEWAY_NAME, meter)
        finally:
            stop_perf(perf)
        f["cpu"] = meter.result
        runs.append(f)
        wait_imported(hub)
    m = median_run(runs)
    hs_cpu = m["cpu"].get("edgehub-hub-store", {}).get("cpu_s")
    m["hub_store_cpu_s_per_100k"] = round(hs_cpu * 100_000 / m["acked"], 2) if hs_cpu and m["acked"] else None
    return m


def scale_drain(args, hub, sim, pids, window, label):
    """Restores the link, follows the cloud's count until window messages arrived, cuts the link again.

    The rate that compares is the steady one, from the 10% to the 90% mark of the window: the same
    number of messages from the same streams at both sizes, without the links' start (the same at any
    size, reported as the first message's delay) and without the small drain's end, where the streams
    finish one by one."""
    wait_imported(hub)
    backlog = upstream_messages(hub)
    sim.call("DELETE", "/telemetry")
    meter = CpuMeter({**pids, "simulator": sim.proc.pid})
    io_before = io_written(pids)
    log(f"(i) scale drain at {label}: {backlog:,} stored, following the first {window:,} upstream")
    perf = None
    if args.perf:
        os.makedirs(args.perf, exist_ok=True)
        perf = start_perf(pids["edgehub-hub-store"], os.path.join(args.perf, f"scale-drain-{label}-hub-store.data"))
    meter.start()
    t_restore_ms = time.time() * 1000.0
    t0 = time.monotonic()
    sim.restore()
    samples = [(0.0, 0, 0)]  # (seconds, messages the cloud has, links connected to it)
    stalled = False
    while True:
        st = sim.call("GET", "/stats")
        now = time.monotonic() - t0
        samples.append((now, st["telemetryTotal"], st["connected"]))
        if st["telemetryTotal"] >= window:
            break
        back = [x for x in samples if x[0] >= now - 30]
        if now > args.drain_timeout or (now > 30 and back[0][1] == st["telemetryTotal"]):
            log(f"(i) scale drain at {label}: {st['telemetryTotal']:,} of {window:,} after {now:.0f} s, giving up")
            stalled = True
            break
        time.sleep(0.1)
    sim.cut()
    meter.stop()
    stop_perf(perf)
    c = sim.count()
    first_at = c.get("firstReceivedAt")
    counts = [(t, n) for t, n, _ in samples]
    t_window = crossing_time(counts, window)
    # Steady: from the first poll that saw every link connected (the links' start costs the same at any size).
    links = max(x[2] for x in samples)
    t_all, n_all = next((t, n) for t, n, k in samples if k == links)
    steady_all = (round((window - n_all) / (t_window - t_all))
                  if t_window and t_window > t_all and window - n_all >= window // 4 else None)
    hs_cpu = meter.result.get("edgehub-hub-store", {}).get("cpu_s")
    drain = {
        "backlog": backlog, "window": window, "received": c["total"], "stalled": stalled,
        "first_message_after_restore_s": round((first_at - t_restore_ms) / 1000.0, 3) if first_at else None,
        "window_seconds": round(t_window, 2) if t_window else None,
        # restore -> the window's last message: includes the links' start
        "msgs_per_s": round(window / t_window) if t_window else None,
        "steady_msgs_per_s": steady_all,
        "links": links, "all_links_at_s": round(t_all, 2), "received_before_all_links": n_all,
        "msgs_per_s_10_90": window_rate(counts, window // 10, window * 9 // 10),
        "hub_store_cpu_s_per_100k": round(hs_cpu * 100_000 / c["total"], 2) if hs_cpu and c["total"] else None,
        "cpu": meter.result,
        "samples": samples[:: max(1, len(samples) // 40)],
    }
    try:
        wait_until(lambda: hub.hubctl_json("status")["hub_store"]["uplink"] != "up", 20, interval=0.2,
                   what="hub-store to see the uplink down")
    except TimeoutError:
        log("(i) hub-store still reports the uplink up 20 s after the cut, going on")
    wait_imported(hub)
    drain["left"] = upstream_messages(hub)
    drain["written"] = io_delta(io_before, io_written(pids))
    return drain


def scale_drain_rest(args, hub, sim, pids, rate):
    """Drains what is left when that takes at most --scale-drain-all seconds at the measured rate, keeping the
    simulator's record small; then waits for the store to give its space back."""
    left = upstream_messages(hub)
    if not rate or left / rate > args.scale_drain_all:
        log(f"(i) scale: {left:,} left would take {left / rate if rate else float('inf'):.0f} s to drain, "
            f"more than --scale-drain-all {args.scale_drain_all:.0f} s: not draining them")
        return None
    log(f"(i) scale: draining the {left:,} left (about {left / rate:.0f} s)")
    io_before = io_written(pids)
    t0 = time.monotonic()
    sim.call("DELETE", "/telemetry")
    sim.restore()
    last, last_change, last_log = left, t0, t0
    while True:
        time.sleep(1)
        n = upstream_messages(hub)
        now = time.monotonic()
        if n == 0:
            break
        if n != last:
            last, last_change = n, now
        if now - last_change > 60:
            log(f"(i) scale: drain stalled at {n:,} left")
            break
        if now - last_log >= 15:
            sim.call("DELETE", "/telemetry")  # the simulator keeps every payload: 10M would be 2.5 GB
            last_log = now
            log(f"(i) scale: {n:,} left, {(left - n) / (now - t0):,.0f} msgs/s")
    seconds = time.monotonic() - t0
    drained = left - upstream_messages(hub)
    # The space comes back when RocksDB compacts the tombstones: hub-store asks for that on its minute tick
    # once the store is (nearly) empty, so wait up to --scale-settle for du to fall to a few MiB.
    shrink = []
    t1 = time.monotonic()
    while time.monotonic() - t1 < args.scale_settle:
        shrink.append((round(time.monotonic() - t1, 1), disk_usage(os.path.join(hub.storage, "messages"))[0]))
        if shrink[-1][1] < 16 << 20:
            break
        time.sleep(5)
    io = io_delta(io_before, io_written(pids))
    return {"left": left, "drained": drained, "seconds": round(seconds, 1),
            "msgs_per_s": round(drained / seconds) if seconds else None, "written": io,
            "settle_seconds": shrink[-1][0] if shrink else None, "du_while_settling": shrink,
            "after": scale_store_figures(hub, pids)}


def stage_scale(args, work, pki, sim, edge_key, ids_file):
    """One hub: fill to --scale-small, ingest batch, drain window; cut, fill to --scale-large, the same."""
    hub = Hub(os.path.join(work, "scale-hub"), pki, sim, edge_key, max_bytes=args.scale_max_bytes, sync=args.sync,
              time_to_live=str(args.scale_ttl))
    # Every link at once when the link returns: at the default 20 a second the small backlog (3,100 a
    # stream) is mostly sent while the links are still coming up, and its rate would be the ramp's.
    with open(hub.config_path) as f:
        text = f.read()
    with open(hub.config_path, "w") as f:
        f.write(text.replace("\nupstream:\n", f"\nupstream:\n  connect_rate: {args.scale_connect_rate}\n", 1))
    out = {"small": args.scale_small, "large": args.scale_large, "devices": args.scale_devices,
           "batch": args.scale_batch, "repeat": args.repeat, "payload": args.payload,
           "max_bytes": args.scale_max_bytes, "chunk": args.scale_chunk, "ttl_sec": args.scale_ttl,
           "connect_rate": args.scale_connect_rate}
    try:
        sim.restore()
        hub.start()
        # Once with the uplink up: the scope the devices are then authenticated from, offline.
        wait_until(lambda: hub.hubctl_json("status")["auth_cache"]["synced"], 60, what="scale hub: scope sync")
        pids = hub_pids(hub)
        sim.cut()
        wait_until(lambda: hub.hubctl_json("status")["hub_store"]["uplink"] != "up", 20, interval=0.2,
                   what="hub-store to see the uplink down")
        window = None
        for label, size in (("small", args.scale_small), ("large", args.scale_large)):
            phase = {"fill": scale_fill(args, hub, pki, ids_file, pids, size, label)}
            phase["stored"] = scale_store_figures(hub, pids)
            log(f"(i) scale {label}: {phase['stored']['messages']:,} stored, du {phase['stored']['du_bytes'] / 2**20:.1f} MiB, "
                f"hub-store RSS {phase['stored']['hub_store_rss_kib']} KiB, fill {phase['fill']['seconds']} s")
            phase["ingest"] = scale_ingest(args, hub, sim, pki, ids_file, pids, label)
            if window is None:
                # The whole small backlog, ingest batch included: the large drain follows as many messages.
                window = upstream_messages(hub)
            phase["drain"] = scale_drain(args, hub, sim, pids, window, label)
            phase["after_drain"] = scale_store_figures(hub, pids)
            out[label] = phase
        out["window"] = window
        out["rest"] = scale_drain_rest(args, hub, sim, pids, out["large"]["drain"]["steady_msgs_per_s"])
        s, l = out["small"], out["large"]
        out["ratio_ingest"] = (round(l["ingest"]["msgs_per_s"] / s["ingest"]["msgs_per_s"], 3)
                               if s["ingest"]["msgs_per_s"] else None)
        sd, ld = s["drain"]["steady_msgs_per_s"], l["drain"]["steady_msgs_per_s"]
        out["ratio_drain"] = round(ld / sd, 3) if sd and ld else None
        sd, ld = s["drain"]["msgs_per_s"], l["drain"]["msgs_per_s"]
        out["ratio_drain_from_restore"] = round(ld / sd, 3) if sd and ld else None
    finally:
        hub.stop()
        sim.restore()
    return out


def print_scale_table(r):
    s, l = r["small"], r["large"]
    mib = lambda b: f"{b / 2**20:,.1f} MiB" if isinstance(b, (int, float)) else "-"
    ratio = lambda v: f"{v:.2f}x" if isinstance(v, (int, float)) else "-"
    out = ["", f"(i) scale: the same hub, uplink cut, {s['stored']['messages']:,} stored vs {l['stored']['messages']:,} stored "
               f"(payload {r['payload']} B, QoS 1)",
           f"    {'':<48}{'small':>20}{'large':>20}{'large/small':>13}"]

    def row(name, a, b, fmt=fmt_rate, rt=None, note=""):
        out.append(f"    {name:<48}{fmt(a):>20}{fmt(b):>20}{ratio(rt) if rt is not None else '':>13}{note}")
    row("stored before the ingest batch (messages)", s["stored"]["messages"], l["stored"]["messages"])
    row(f"ingest {r['devices']} x {r['batch']:,}, median of {r['repeat']} (msgs/s)", s["ingest"]["msgs_per_s"],
        l["ingest"]["msgs_per_s"], rt=r["ratio_ingest"], note="   (goal >= 0.9)")
    row("  runs (msgs/s)", " ".join(str(x) for x in s["ingest"]["runs_msgs_per_s"]),
        " ".join(str(x) for x in l["ingest"]["runs_msgs_per_s"]), fmt=str)
    row("  PUBACK p99 (ms)", s["ingest"]["ack_latency_ms"]["p99"], l["ingest"]["ack_latency_ms"]["p99"],
        fmt=lambda v: f"{v:.1f}")
    row("  hub-store CPU-seconds per 100k messages", s["ingest"]["hub_store_cpu_s_per_100k"],
        l["ingest"]["hub_store_cpu_s_per_100k"], fmt=lambda v: f"{v:.2f}" if v is not None else "-",
        rt=(l["ingest"]["hub_store_cpu_s_per_100k"] / s["ingest"]["hub_store_cpu_s_per_100k"]
            if s["ingest"]["hub_store_cpu_s_per_100k"] and l["ingest"]["hub_store_cpu_s_per_100k"] else None))
    row("  cpu hub-store / other", f"{fmt_cpu(s['ingest']['cpu'], 'edgehub-hub-store')} / {fmt_cpu(s['ingest']['cpu'], 'other')}",
        f"{fmt_cpu(l['ingest']['cpu'], 'edgehub-hub-store')} / {fmt_cpu(l['ingest']['cpu'], 'other')}", fmt=str)
    row("stored when the link returns (messages)", s["drain"]["backlog"], l["drain"]["backlog"])
    row(f"drain of the first {r['window']:,}, every link up (msgs/s)", s["drain"]["steady_msgs_per_s"],
        l["drain"]["steady_msgs_per_s"], rt=r["ratio_drain"], note="   (goal >= 0.9)")
    row("  every link up after (s) / messages by then",
        f"{s['drain']['all_links_at_s']} / {s['drain']['received_before_all_links']:,}",
        f"{l['drain']['all_links_at_s']} / {l['drain']['received_before_all_links']:,}", fmt=str)
    row("  restore -> the window's last message (msgs/s)", s["drain"]["msgs_per_s"], l["drain"]["msgs_per_s"],
        rt=r["ratio_drain_from_restore"])
    row("  10% -> 90% of the window (msgs/s)", s["drain"]["msgs_per_s_10_90"], l["drain"]["msgs_per_s_10_90"],
        rt=(l["drain"]["msgs_per_s_10_90"] / s["drain"]["msgs_per_s_10_90"]
            if s["drain"]["msgs_per_s_10_90"] and l["drain"]["msgs_per_s_10_90"] else None))
    row("  hub-store CPU-seconds per 100k messages", s["drain"]["hub_store_cpu_s_per_100k"],
        l["drain"]["hub_store_cpu_s_per_100k"], fmt=lambda v: f"{v:.2f}" if v is not None else "-",
        rt=(l["drain"]["hub_store_cpu_s_per_100k"] / s["drain"]["hub_store_cpu_s_per_100k"]
            if s["drain"]["hub_store_cpu_s_per_100k"] and l["drain"]["hub_store_cpu_s_per_100k"] else None))
    row("  first message after restore (s)", s["drain"]["first_message_after_restore_s"],
        l["drain"]["first_message_after_restore_s"], fmt=lambda v: f"{v:.3f}" if v is not None else "-")
    row("  cpu hub-store / simulator / other",
        f"{fmt_cpu(s['drain']['cpu'], 'edgehub-hub-store')} / {fmt_cpu(s['drain']['cpu'], 'simulator')} / {fmt_cpu(s['drain']['cpu'], 'other')}",
        f"{fmt_cpu(l['drain']['cpu'], 'edgehub-hub-store')} / {fmt_cpu(l['drain']['cpu'], 'simulator')} / {fmt_cpu(l['drain']['cpu'], 'other')}",
        fmt=str)
    row("store disk_bytes, backlog stored", s["stored"]["disk_bytes"], l["stored"]["disk_bytes"], fmt=mib)
    row("du storage/messages, backlog stored", s["stored"]["du_bytes"], l["stored"]["du_bytes"], fmt=mib)
    row("  du per stored message (B)", s["stored"]["du_bytes"] / max(1, s["stored"]["messages"]),
        l["stored"]["du_bytes"] / max(1, l["stored"]["messages"]), fmt=lambda v: f"{v:.0f}")
    row("hub-store VmRSS, backlog stored (KiB)", s["stored"]["hub_store_rss_kib"], l["stored"]["hub_store_rss_kib"])
    row("hub-store VmHWM after the drain window (KiB)", s["after_drain"]["hub_store_hwm_kib"],
        l["after_drain"]["hub_store_hwm_kib"])
    lf = l["fill"]
    out.append(f"    large fill: {lf['filled']:,} messages in {lf['seconds']:,.0f} s = {fmt_rate(lf['msgs_per_s'])} msgs/s "
               f"(runs of at most {r['chunk']:,}: first {fmt_rate(lf['chunks'][0]['msgs_per_s'] if lf['chunks'] else None)}, "
               f"last {fmt_rate(lf['chunks'][-1]['msgs_per_s'] if lf['chunks'] else None)} msgs/s, of {len(lf['chunks'])})")
    out.append(f"    written to disk during the large fill: {sum(lf['written'].values()) / 2**20:,.0f} MiB = "
               f"{lf['written_per_payload_byte']}x the payload bytes")
    rest = r.get("rest")
    if rest:
        a = rest["after"]
        out.append(f"    rest of the large backlog: {rest['drained']:,} drained in {rest['seconds']:,.0f} s = "
                   f"{fmt_rate(rest['msgs_per_s'])} msgs/s; {a['messages']:,} left; after {rest['settle_seconds']} s: "
                   f"du {mib(a['du_bytes'])}, disk_bytes {mib(a['disk_bytes'])}, hub-store VmRSS {a['hub_store_rss_kib']} KiB")
    else:
        a = l["after_drain"]
        out.append(f"    not drained further: {a['messages']:,} still stored, du {mib(a['du_bytes'])}, "
                   f"disk_bytes {mib(a['disk_bytes'])}")
    out.append("    drain: the link is cut again once the window arrived; its rate counts from the first poll of the "
               "simulator (every 0.1 s) that saw every link connected")
    out.append("    to its last message (interpolated between polls); the links' start is the same at any size.")
    out.append("")
    print("\n".join(line.rstrip() for line in out), flush=True)


# ---------------------------------------------------------------- (g) idle memory

def stage_idle(args, work, pki, sim, edge_key, have):
    """A hub of its own with --idle-children children in its scope and no device connected, settled;
    then an idle bare mosquitto (no connection) for scale."""
    log(f"(g) idle: adding {max(0, args.idle_children - have)} children to the scope")
    for i in range(have, args.idle_children):
        sim.add_child(f"bench-{i}")
    hub = Hub(os.path.join(work, "idle-hub"), pki, sim, edge_key, max_bytes=args.max_bytes, sync=args.sync)
    bare = None
    try:
        sim.restore()
        hub.start()
        try:
            wait_until(lambda: len(hub.hubctl_json("devices").get("devices", [])) >= args.idle_children, 120,
                       interval=1, what=f"{args.idle_children} devices in the scope")
        except TimeoutError:
            log("(g) idle: the scope did not list every child within 120 s, measuring anyway")
        time.sleep(5)  # let the start-up work (scope sync, twin reports) finish
        pids = hub_pids(hub)
        processes = {name: proc_smaps_kib(pid) for name, pid in pids.items()}
        bare = BareMosquitto(os.path.join(work, "idle-bare"), pki).start()
        time.sleep(1)
        bare_mem = proc_smaps_kib(bare.proc.pid)
    finally:
        if bare:
            bare.stop()
        hub.stop()
    total = {k: sum(m[k] for m in processes.values() if m and m.get(k) is not None)
             for k in ("rss_kib", "pss_kib", "uss_kib")}
    return {"children": args.idle_children, "processes": processes, "total": total, "bare": bare_mem}


# ---------------------------------------------------------------- (h) the TLS shim

def stage_shim(args, work, pki, sim, edge_key, ids_file):
    """The SAS ingest path with the shim (as installed) and without it, one hub at a time."""
    bare_plugin = os.path.join(work, "plugin-without-shim")
    os.makedirs(bare_plugin, exist_ok=True)
    os.chmod(bare_plugin, 0o755)
    shutil.copy(os.path.join(args.build, "broker-plugin", "edgehub-plugin.so"), bare_plugin)
    hubs = {}
    for kind in ("with_shim", "without_shim"):
        h = Hub(os.path.join(work, f"hub-{kind}"), pki, sim, edge_key, max_bytes=args.max_bytes, sync=args.sync)
        if kind == "without_shim":
            with open(h.config_path, "a") as f:
                f.write(f"runner:\n  plugin: {os.path.join(bare_plugin, 'edgehub-plugin.so')}\n")
        hubs[kind] = h
        # Once with the uplink up: the scope it then authenticates the devices from, offline.
        h.start()
        try:
            wait_until(lambda: h.hubctl_json("status")["auth_cache"]["synced"], 60, what=f"{kind}: scope sync")
        finally:
            h.stop()
    runs = {k: [] for k in hubs}
    sim.cut()
    for r in range(args.repeat):
        for kind, h in hubs.items():
            log(f"(h) ingest, uplink cut, {kind.replace('_', ' ')}: {args.devices} x {args.ingest_messages} "
                f"(run {r + 1}/{args.repeat})")
            h.start()
            try:
                shim = "edgehub-tls-shim.so" in open(f"/proc/{h.child_pid('mosquitto')}/maps").read()
                if shim != (kind == "with_shim"):
                    raise RuntimeError(f"{kind}: the broker has the shim mapped: {shim}")
                wait_until(lambda: h.hubctl("status", check=False).returncode == 0, 20, what="hubctl status")
                runs[kind].append(stage_ingest_hub(args, h, sim, pki, args.loadgen, ids_file, hub_pids(h), kind))
            finally:
                h.stop()
    sim.restore()
    out = {k: median_run(v) for k, v in runs.items()}
    for k, v in runs.items():
        out[k]["runs_connect_seconds"] = [round(f["connect_seconds"], 3) for f in v]
    w, wo = out["with_shim"]["msgs_per_s"], out["without_shim"]["msgs_per_s"]
    out["ratio"] = round(w / wo, 3) if wo else None
    return out


def print_shim_table(s):
    print(f"\n(h) SAS ingest with the TLS shim vs without, uplink cut, median of {len(s['with_shim']['runs_msgs_per_s'])}")
    for k in ("with_shim", "without_shim"):
        v = s[k]
        print(f"  {k.replace('_', ' '):13} {fmt_rate(v['msgs_per_s']):>12}  runs {v['runs_msgs_per_s']}  "
              f"connect of all devices (s) {v['runs_connect_seconds']}")
    print(f"  with / without: {s['ratio']}x")


# ---------------------------------------------------------------- (e) route

ROUTE = 'FROM /messages/modules/modA/outputs/out1 INTO BrokeredEndpoint("/modules/modB/inputs/in1")'
ROUTE_PUB_TOPIC = f"devices/{harness.EDGE_ID}/modules/modA/messages/events/%24.on=out1"
ROUTE_SUB_TOPIC = f"devices/{harness.EDGE_ID}/modules/modB/inputs/#"


def run_routelat(args, port, ca, rate, seconds, meter, pub=None, sub=None, topic=None):
    """Runs edgehub-routelat once; pub/sub are (client id, username, password) or None (anonymous)."""
    cmd = [args.routelat, "--host", "127.0.0.1", "--port", str(port), "--ca-file", ca,
           "--rate", str(rate), "--seconds", str(seconds), "--warmup", "1", "--payload", str(args.payload),
           "--window", str(args.route_window), "--drain", str(args.route_drain)]
    if args.route_nodelay:
        cmd += ["--nodelay"]
    if topic:
        cmd += ["--pub-topic", topic]
    for side, cred in (("pub", pub), ("sub", sub)):
        if cred:
            cmd += [f"--{side}-id", cred[0], f"--{side}-username", cred[1], f"--{side}-password", cred[2]]
    if sub:
        cmd += ["--sub-topic", ROUTE_SUB_TOPIC]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def pump():
        for line in p.stderr:
            line = line.rstrip("\n")
            if "routelat: connected" in line:
                meter.start()
            else:
                log(line)
    t = threading.Thread(target=pump, daemon=True)
    t.start()
    out = p.stdout.read()
    p.wait(seconds + args.route_drain + 120)
    t.join(5)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError(f"routelat printed no figures (exit {p.returncode})")
    figures = json.loads(lines[-1])
    if meter.before:
        meter.stop(extra_s=figures.get("cpu_seconds", 0.0))
    figures["cpu"] = meter.result
    figures["exit"] = p.returncode
    if p.returncode != 0:
        log(f"routelat exited {p.returncode}: sent {figures['sent']}, received {figures['received']}, "
            f"lost {figures['lost']}")
    return figures


def module_credentials(sim, keys, module):
    identity = f"{harness.EDGE_ID}/{module}"
    token = harness.sas_token(f"{harness.GATEWAY_NAME}/devices/{harness.EDGE_ID}/modules/{module}", keys[module],
                              time.time() + 24 * 3600)
    return identity, f"{harness.HUB_NAME}/{identity}/?api-version=2021-04-12", token


def route_ratio(hub, bare, key):
    h, b = hub.get(key), bare.get(key)
    return round(h / b, 2) if isinstance(h, (int, float)) and b else None


def stage_route(args, work, pki, sim, edge_key):
    """modA -> route -> modB through the hub (uplink cut) beside publisher -> subscriber through a bare
    mosquitto, alternating."""
    keys = {m: sim.add_identity(harness.EDGE_ID, m)["primaryKey"] for m in ("modA", "modB")}
    pub, sub = module_credentials(sim, keys, "modA"), module_credentials(sim, keys, "modB")
    bare = BareMosquitto(os.path.join(work, "route-bare"), pki).start()
    modes = {}
    try:
        for mode in ("log",):
            hub = Hub(os.path.join(work, f"route-hub-{mode}"), pki, sim, edge_key, max_bytes=args.max_bytes,
                      sync=args.sync, routes={"toB": ROUTE})
            try:
                sim.restore()  # the scope of the modules comes from the cloud once
                hub.start()
                wait_until(lambda: {f"{harness.EDGE_ID}/modA", f"{harness.EDGE_ID}/modB"} <=
                           {d.get("identity") for d in hub.hubctl_json("devices").get("devices", [])},
                           30, interval=0.2, what="the modules in the scope")
                sim.cut()
                pids = hub_pids(hub)
                runs = {}
                for kind, rate in (("latency", args.route_rate), ("throughput", 0)):
                    log(f"(e) route, {kind}: bare mosquitto, rate {rate or 'max'}, {args.route_seconds} s")
                    b = run_routelat(args, bare.port, pki.ca_cert, rate, args.route_seconds,
                                     CpuMeter({"mosquitto": bare.proc.pid}), topic=ROUTE_PUB_TOPIC)
                    log(f"(e) route, {kind}: hub, rate {rate or 'max'}, {args.route_seconds} s")
                    h = run_routelat(args, hub.tls_port, pki.ca_cert, rate, args.route_seconds, CpuMeter(pids),
                                     pub=pub, sub=sub, topic=ROUTE_PUB_TOPIC)
                    ratio = {q: route_ratio(h["latency_ms"], b["latency_ms"], q) for q in ("p50", "p90", "p99")}
                    ratio["msgs_per_s"] = route_ratio(h, b, "msgs_per_s")
                    runs[kind] = {"bare": b, "hub": h, "ratio": ratio}
                routes = hub.hubctl_json("routes")
                runs["routes"] = {"matched": {r["name"]: r.get("matched") for r in routes.get("routes", [])},
                                  "dropped_no_route": routes.get("dropped_no_route")}
                modes[mode] = runs
            finally:
                hub.stop()
                sim.restore()
    finally:
        bare.stop()
    return {"rate": args.route_rate, "seconds": args.route_seconds, "window": args.route_window,
            "payload": args.payload, "modes": modes}


def print_route_table(r):
    out = ["", f"(e) route modA/out1 -> modB/in1, uplink cut, beside publisher -> subscriber on a bare mosquitto",
           f"    one publisher + one subscriber (edgehub-routelat), QoS 1, TLS, payload {r['payload']} B, "
           f"window {r['window']}, {r['seconds']} s measured after 1 s warm-up",
           f"    {'':<26}{'msgs/s':>9}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}{'ack p50':>8}"
           f"{'ack p99':>8}{'lost':>6}{'dup':>5}{'reord':>6}{'mosq':>6}{'store':>6}{'auth':>6}{'other':>6}"]
    for mode, runs in r["modes"].items():
        for kind in ("latency", "throughput"):
            k = runs.get(kind)
            if not k:
                continue
            title = (f"latency at {r['rate']:,} msg/s" if kind == "latency" else "throughput (as fast as the window)")
            out.append(f"  {title}")
            for who, label in (("bare", "bare mosquitto"), ("hub", "hub route")):
                f = k[who]
                lat, ack = f["latency_ms"], f["ack_latency_ms"]
                out.append(f"    {label:<26}{fmt_rate(f['msgs_per_s']):>9}{lat['p50']:>8.2f}{lat['p90']:>8.2f}"
                           f"{lat['p99']:>8.2f}{lat['max']:>8.1f}{ack['p50']:>8.2f}{ack['p99']:>8.2f}"
                           f"{f['lost']:>6}{f['duplicates']:>5}{f['reordered']:>6}"
                           f"{fmt_cpu(f['cpu'], 'mosquitto'):>6}{fmt_cpu(f['cpu'], 'edgehub-hub-store'):>6}"
                           f"{fmt_cpu(f['cpu'], 'edgehub-auth-cache'):>6}{fmt_cpu(f['cpu'], 'other'):>6}")
            x = k["ratio"]

            def fx(v):
                return f"{v:.2f}x" if v is not None else "-"
            out.append(f"    {'hub/bare':<26}{fx(x['msgs_per_s']):>9}{fx(x['p50']):>8}{fx(x['p90']):>8}"
                       f"{fx(x['p99']):>8}" + ("   (target: hub p99 <= 2 ms)" if kind == "latency" else ""))
    out.append("    latency = one-way, publisher send -> subscriber receive (one process, CLOCK_MONOTONIC); "
               "ack = the publisher's PUBACK")
    out.append("    cpu columns: % of one core from connect to the end of the run; other = the rest of the machine")
    out.append("")
    print("\n".join(out), flush=True)


# ---------------------------------------------------------------- output

def fmt_rate(x):
    return f"{x:,.0f}" if isinstance(x, (int, float)) else "-"


def fmt_cpu(cpu, name):
    e = cpu.get(name) if cpu else None
    return f"{e['cpu_pct']:.0f}%" if e else "-"


def idle_lines(idle):
    out = ["", f"(g) whole hub idle: scope of {idle['children']:,} children, no device connected (KiB)",
           f"    {'process':<26}{'RSS':>9}{'PSS':>9}{'USS':>9}"]
    for name, m in idle["processes"].items():
        if m:
            out.append(f"    {name:<26}{m['rss_kib']:>9}{m['pss_kib']:>9}{m['uss_kib']:>9}")
    t = idle["total"]
    out.append(f"    {'whole hub':<26}{t['rss_kib']:>9}{t['pss_kib']:>9}{t['uss_kib']:>9}   "
               f"= PSS {t['pss_kib'] / 1024:.1f} MiB (target <= 20 MiB)")
    b = idle.get("bare")
    if b:
        out.append(f"    {'bare mosquitto, idle':<26}{b['rss_kib']:>9}{b['pss_kib']:>9}{b['uss_kib']:>9}")
    return out


def print_idle_table(idle):
    print("\n".join(idle_lines(idle) + [""]), flush=True)


def print_table(r):
    out = []
    ing = r["ingest"]
    out.append("")
    kind = "compressible" if r["config"]["compressible"] else "random"
    out.append(f"edgehub benchmark  ({r['config']['cores']} cores; payload {r['config']['payload']} B {kind}, QoS 1, "
               f"inflight {r['config']['inflight']}/device)")
    out.append("")
    out.append(f"(a) ingest: {r['config']['devices']} devices x {r['config']['ingest_messages']} messages")
    out.append(f"    {'target':<22}{'msgs/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'loadgen':>9}{'mosq':>7}"
               f"{'hub-store':>10}{'auth':>6}{'sim':>6}{'other':>7}   runs msgs/s")
    for key, label in (("bare", "bare mosquitto"), ("hub", "hub, uplink up"), ("hub_offline", "hub, uplink cut")):
        f = ing.get(key)
        if not f:
            continue
        lg_pct = f"{100 * f['cpu_seconds'] / f['seconds']:.0f}%" if f.get("seconds") else "-"
        out.append(f"    {label:<22}{fmt_rate(f['msgs_per_s']):>10}{f['ack_latency_ms']['p50']:>9.1f}"
                   f"{f['ack_latency_ms']['p99']:>9.1f}{lg_pct:>9}{fmt_cpu(f.get('cpu'), 'mosquitto'):>7}"
                   f"{fmt_cpu(f.get('cpu'), 'edgehub-hub-store'):>10}{fmt_cpu(f.get('cpu'), 'edgehub-auth-cache'):>6}"
                   f"{fmt_cpu(f.get('cpu'), 'simulator'):>6}{fmt_cpu(f.get('cpu'), 'other'):>7}   "
                   f"{' '.join(str(x) for x in f.get('runs_msgs_per_s', []))}")
    for key, label in (("ratio", "hub/bare, uplink up"), ("ratio_offline", "hub/bare, uplink cut")):
        if ing.get(key) is not None:
            out.append(f"    {label:<22}{ing[key]:>10.2f}x   (target >= 0.5x)")
    fill = r.get("fill")
    if fill:
        out.append(f"    backlog fill (uplink cut, {fill['devices']} devices): {fmt_rate(fill['msgs_per_s'])} msgs/s, "
                   f"p99 {fill['ack_latency_ms']['p99']:.1f} ms, mosquitto {fmt_cpu(fill.get('cpu'), 'mosquitto')}, "
                   f"hub-store {fmt_cpu(fill.get('cpu'), 'edgehub-hub-store')}, other {fmt_cpu(fill.get('cpu'), 'other')}")
    d = r["drain"]
    out.append("")
    out.append(f"(b) drain of {d['backlog']:,} stored messages after POST /link/restore")
    out.append(f"    first message upstream after restore   {d['first_message_after_restore_s']} s   (target <= 1 s)")
    out.append(f"    drain rate (restore -> last message)   {fmt_rate(d['msgs_per_s'])} msgs/s over {d['seconds']} s")
    out.append(f"    steady rate (first -> last message)    {fmt_rate(d['steady_msgs_per_s'])} msgs/s")
    out.append(f"    received {d['received']:,}, duplicates {d['duplicates']:,}, complete: {d['complete']}")
    out.append(f"    cpu: hub-store {fmt_cpu(d['cpu'], 'edgehub-hub-store')}, simulator {fmt_cpu(d['cpu'], 'simulator')}, "
               f"mosquitto {fmt_cpu(d['cpu'], 'mosquitto')}, auth-cache {fmt_cpu(d['cpu'], 'edgehub-auth-cache')}, "
               f"other processes {fmt_cpu(d['cpu'], 'other')}")
    out.append("")
    out.append("(c) memory (KiB)              VmHWM at backlog   VmRSS at backlog   VmHWM at end")
    for name in PROCESSES:
        a = r["rss_backlog"].get(name, {})
        b = r["rss_end"].get(name, {})
        out.append(f"    {name:<26}{a.get('hwm_kib') or '-':>17}{a.get('rss_kib') or '-':>19}{b.get('hwm_kib') or '-':>15}")
    if ing.get("bare", {}).get("rss_kib"):
        out.append(f"    {'bare mosquitto (ingest)':<26}{ing['bare']['rss_kib']['mosquitto']:>17}")
    k = r["disk"]
    out.append("")
    out.append(f"(d) disk: {k['messages']:,} stored messages, du storage/messages {k['du_bytes'] / 2**20:.1f} MiB "
               f"= {k['du_bytes_per_message']} B/msg ({k['files']} files)")
    out.append(f"    hubctl status: store.disk_bytes {k['store_disk_bytes'] / 2**20:.1f} MiB = "
               f"{k['store_disk_bytes_per_message']} B/msg; store.bytes (accounted) {k['store_bytes_per_message']} B/msg")
    io = k.get("io")
    if io:
        def top(w):
            return ", ".join(f"{n.replace('edgehub-', '')} {v / 2**20:.1f}" for n, v in
                             sorted(w.items(), key=lambda x: -x[1]) if v > 0) or "-"
        out.append("    written to disk per payload byte (/proc/PID/io write_bytes - cancelled, every hub process):")
        out.append(f"      storing {io['fill_messages']:,} messages   {io['fill_per_payload_byte']}x   "
                   f"(MiB: {top(io['fill_written'])})")
        out.append(f"      draining {io['drain_messages']:,} messages  {io['drain_per_payload_byte']}x   "
                   f"(MiB: {top(io['drain_written'])})")
        if io["fill_per_payload_byte"] is not None and io["drain_per_payload_byte"] is not None:
            out.append(f"      stored then drained          "
                       f"{io['fill_per_payload_byte'] + io['drain_per_payload_byte']:.2f}x   (target <= 3x)")
    out.append("")
    out.append("(f) CPU-seconds per 100k messages, ingest runs of (a)")
    names = [n for n in PROCESSES if any(n in (ing.get(key) or {}).get("cpu", {}) for key in ("hub", "hub_offline"))]
    out.append(f"    {'target':<22}" + "".join(f"{n.replace('edgehub-', ''):>15}" for n in names) + f"{'hub total':>11}")
    per100k = {}
    for key, label in (("bare", "bare mosquitto"), ("hub", "hub, uplink up"), ("hub_offline", "hub, uplink cut")):
        f = ing.get(key)
        if not f or not f.get("acked"):
            continue
        cpu = f.get("cpu", {})
        row = {n: cpu[n]["cpu_s"] * 100_000 / f["acked"] for n in names if n in cpu}
        per100k[key] = sum(row.values())
        out.append(f"    {label:<22}" + "".join(f"{row[n]:>15.2f}" if n in row else f"{'-':>15}" for n in names)
                   + f"{per100k[key]:>11.2f}")
    for key, label in (("hub", "hub/bare, uplink up"), ("hub_offline", "hub/bare, uplink cut")):
        if per100k.get("bare") and key in per100k:
            out.append(f"    {label:<22}{per100k[key] / per100k['bare']:>10.2f}x   (target <= 1.5x)")
    if r.get("idle"):
        out.extend(idle_lines(r["idle"]))
    out.append("")
    out.append("cpu columns: % of one core while publishing ('other' = the rest of the machine: other users of")
    out.append(f"this machine disturb the figures). loadavg at start: {' '.join(r['config']['loadavg_at_start'])}; "
               f"whole run {r.get('wall_seconds')} s")
    out.append("")
    print("\n".join(out), flush=True)


# ---------------------------------------------------------------- main

def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.environ.get("EDGEHUB_BUILD", os.path.join(ROOT, "build")),
                   help="meson build folder (default $EDGEHUB_BUILD or build/)")
    p.add_argument("--loadgen", help="edgehub-loadgen binary (default BUILD/tests/bench/edgehub-loadgen)")
    p.add_argument("--quick", action="store_true", help="small run: 20x1000 ingest, 100,000 backlog")
    p.add_argument("--devices", type=int, default=20, help="ingest devices (20)")
    p.add_argument("--ingest-messages", type=int, help="messages per device for ingest (5000; quick 1000)")
    p.add_argument("--messages", type=int, help="backlog size for the drain (1,000,000; quick 100,000)")
    p.add_argument("--drain-devices", type=int, default=100, help="devices filling the backlog (100)")
    p.add_argument("--payload", type=int, default=256, help="payload bytes (256)")
    p.add_argument("--inflight", type=int, default=100, help="unacknowledged messages per device (100)")
    p.add_argument("--compressible", action="store_true",
                   help="payloads of 'x' instead of random printable bytes (flatters bytes on disk)")
    p.add_argument("--loadgen-threads", type=int, default=1, help="load generator threads (1)")
    p.add_argument("--sync", default="periodic", choices=("periodic", "always"), help="hub storage.sync")
    p.add_argument("--max-bytes", default="2GiB", help="hub storage.max_bytes (2GiB)")
    p.add_argument("--repeat", type=int, help="ingest runs of each kind, median reported (3; quick 1)")
    p.add_argument("--online-drain-timeout", type=float, default=20,
                   help="after each uplink-up ingest run, wait this long for the queue to empty (20)")
    p.add_argument("--skip-bare", action="store_true", help="no bare mosquitto runs (no ratio)")
    p.add_argument("--skip-offline-ingest", action="store_true", help="no uplink-cut ingest runs")
    p.add_argument("--fill-timeout", type=float, default=420, help="seconds for filling the backlog (420)")
    p.add_argument("--drain-timeout", type=float, default=300, help="seconds for the drain, then report (300)")
    p.add_argument("--perf", metavar="DIR",
                   help="perf record -g mosquitto and hub-store during the first hub ingest runs, and hub-store "
                        "during the drain, into DIR (perf figures are slower than without)")
    p.add_argument("--only", choices=("route", "idle", "shim", "scale"), help="run only this stage")
    p.add_argument("--scale-small", type=int, default=10_000, help="(i) scale: the small backlog (10,000)")
    p.add_argument("--scale-large", type=int, default=10_000_000, help="(i) scale: the large backlog (10,000,000)")
    p.add_argument("--scale-devices", type=int, default=100,
                   help="(i) scale: devices of the ingest batch on top of each backlog (100, as many as fill it)")
    p.add_argument("--scale-batch", type=int, default=1000,
                   help="(i) scale: messages per device of the ingest batch (1000: 100,000 like (a)'s 20 x 5000)")
    p.add_argument("--scale-chunk", type=int, default=1_000_000,
                   help="(i) scale: the fill runs the load generator for at most this many messages at a time (1,000,000)")
    p.add_argument("--scale-max-bytes", default="8GiB", help="(i) scale: the hub's storage.max_bytes (8GiB)")
    p.add_argument("--scale-ttl", type=int, default=30 * 86400,
                   help="(i) scale: store_and_forward.time_to_live, seconds (30 days: nothing expires in the run)")
    p.add_argument("--scale-connect-rate", type=int, default=1000,
                   help="(i) scale: upstream.connect_rate of the hub (1000: every link at once, so the drain "
                        "measures the store, not the links' ramp; the default is 20 a second)")
    p.add_argument("--scale-drain-all", type=float, default=600,
                   help="(i) scale: drain the rest of the large backlog when it takes at most this many seconds "
                        "at the measured rate (600)")
    p.add_argument("--scale-settle", type=float, default=150,
                   help="(i) scale: after the whole drain, wait at most this long for the store's space to come back "
                        "(150: hub-store compacts a drained store on a minute tick)")
    p.add_argument("--skip-route", action="store_true", help="no route stage (e)")
    p.add_argument("--routelat", help="edgehub-routelat binary (default BUILD/tests/bench/edgehub-routelat)")
    p.add_argument("--route-rate", type=int, default=1000, help="route latency run: msgs/s (1000)")
    p.add_argument("--route-seconds", type=float, help="route: measured seconds of each run (10; quick 3)")
    p.add_argument("--route-window", type=int, default=100, help="route: unacknowledged publishes (100)")
    p.add_argument("--route-drain", type=float, default=20,
                   help="route: after the last publish, wait this long for the rest (20)")
    p.add_argument("--route-nodelay", action="store_true", help="route: TCP_NODELAY on the clients' sockets")
    p.add_argument("--idle-children", type=int, default=1000, help="(g) children in the idle hub's scope (1000)")
    p.add_argument("--skip-idle", action="store_true", help="no idle memory stage (g)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--verbose", action="store_true", help="echo loadgen progress")
    a = p.parse_args()
    if a.ingest_messages is None:
        a.ingest_messages = 1000 if a.quick else 5000
    if a.repeat is None:
        a.repeat = 1 if a.quick else 3
    if a.messages is None:
        a.messages = 100_000 if a.quick else 1_000_000
    a.loadgen = a.loadgen or os.path.join(a.build, "tests", "bench", "edgehub-loadgen")
    a.routelat = a.routelat or os.path.join(a.build, "tests", "bench", "edgehub-routelat")
    if a.route_seconds is None:
        a.route_seconds = 3 if a.quick else 10
    return a


def main():
    args = parse_args()
    harness.BUILD = args.build
    for exe in (args.loadgen, args.routelat, os.path.join(args.build, "runner", "edgehub-run")):
        if not os.access(exe, os.X_OK):
            sys.exit(f"{exe} is missing: build first (meson setup build && ninja -C build)")

    work = tempfile.mkdtemp(prefix="edgehub-bench-")
    os.chmod(work, 0o755)  # mosquitto drops to its own user and must reach the runtime folder
    sim = hub = bare = None
    result = {"config": {"cores": os.cpu_count(), "devices": args.devices, "ingest_messages": args.ingest_messages,
                         "backlog_target": args.messages, "drain_devices": args.drain_devices,
                         "payload": args.payload, "compressible": args.compressible, "inflight": args.inflight, "sync": args.sync,
                         "max_bytes": args.max_bytes, "loadgen_threads": args.loadgen_threads,
                         "repeat": args.repeat, "loadavg_at_start": open("/proc/loadavg").read().split()[:3]}}
    t_begin = time.monotonic()
    try:
        pki = Pki(os.path.join(work, "pki"))
        sim = Simulator(work, pki).start()
        edge_key = sim.add_edge()
        if args.only == "route":
            log("(e) route only")
            result["route"] = stage_route(args, work, pki, sim, edge_key)
            result["wall_seconds"] = round(time.monotonic() - t_begin, 1)
            print_route_table(result["route"])
            print(json.dumps(result, separators=(",", ":")), flush=True)
            return
        if args.only == "idle":
            log("(g) idle only")
            result["idle"] = stage_idle(args, work, pki, sim, edge_key, 0)
            print_idle_table(result["idle"])
            print(json.dumps(result, separators=(",", ":")), flush=True)
            return
        n_ids = max(args.devices, args.drain_devices, args.scale_devices if args.only == "scale" else 0)
        ids_file = os.path.join(work, "devices.csv")
        with open(ids_file, "w") as f:
            f.write("# id,key for edgehub-loadgen\n")
            for i in range(n_ids):
                f.write(f"bench-{i},{sim.add_child(f'bench-{i}')['primaryKey']}\n")
        if args.only == "scale":
            log(f"(i) scale only: {args.scale_small:,} stored vs {args.scale_large:,} stored")
            result["scale"] = stage_scale(args, work, pki, sim, edge_key, ids_file)
            result["wall_seconds"] = round(time.monotonic() - t_begin, 1)
            print_scale_table(result["scale"])
            print(json.dumps(result, separators=(",", ":")), flush=True)
            return
        if args.only == "shim":
            log("(h) the TLS shim's cost only")
            result["shim"] = stage_shim(args, work, pki, sim, edge_key, ids_file)
            result["wall_seconds"] = round(time.monotonic() - t_begin, 1)
            print_shim_table(result["shim"])
            print(json.dumps(result, separators=(",", ":")), flush=True)
            return

        hub = Hub(os.path.join(work, "hub"), pki, sim, edge_key, max_bytes=args.max_bytes, sync=args.sync)
        hub.start()
        pids = hub_pids(hub)
        log(f"hub up: {pids}")
        wait_until(lambda: hub.hubctl("status", check=False).returncode == 0, 20, what="hubctl status")
        if not args.skip_bare:
            bare = BareMosquitto(os.path.join(work, "bare"), pki).start()

        # (a) bare and hub runs alternate, so a load change on the machine hits both alike
        ingest = {}
        runs = {"bare": [], "hub": [], "hub_offline": []}
        for r in range(args.repeat):
            if bare:
                log(f"(a) ingest into bare mosquitto: {args.devices} x {args.ingest_messages} (run {r + 1}/{args.repeat})")
                runs["bare"].append(stage_ingest_bare(args, bare, pki, args.loadgen))
            log(f"(a) ingest into the hub, uplink up: {args.devices} x {args.ingest_messages} (run {r + 1}/{args.repeat})")
            runs["hub"].append(stage_ingest_hub(args, hub, sim, pki, args.loadgen, ids_file, pids, "online"))
            wait_drained(hub, args.online_drain_timeout, "online ingest")
        sim.call("DELETE", "/telemetry")

        sim.cut()
        # "idle" = no link open (they close when idle), so none to notice the cut: fine too
        try:
            wait_until(lambda: hub.hubctl_json("status")["hub_store"]["uplink"] != "up", 20, interval=0.2,
                       what="hub-store to see the uplink down")
        except TimeoutError:
            log("hub-store still reports the uplink up 20 s after the cut, going on")
        expected = {}
        if not args.skip_offline_ingest:
            for r in range(args.repeat):
                log(f"(a) ingest into the hub, uplink cut: {args.devices} x {args.ingest_messages} (run {r + 1}/{args.repeat})")
                f = stage_ingest_hub(args, hub, sim, pki, args.loadgen, ids_file, pids, "offline")
                runs["hub_offline"].append(f)
                for i in range(args.devices):
                    expected[f"bench-{i}"] = expected.get(f"bench-{i}", 0) + f["acked"] // args.devices
        if bare:
            bare.stop()
            bare = None
        for k, v in runs.items():
            if v:
                ingest[k] = median_run(v)
        if "bare" in ingest:
            b = ingest["bare"]["msgs_per_s"]
            ingest["ratio"] = round(ingest["hub"]["msgs_per_s"] / b, 3) if b else None
            if "hub_offline" in ingest:
                ingest["ratio_offline"] = round(ingest["hub_offline"]["msgs_per_s"] / b, 3) if b else None
        result["ingest"] = ingest

        fill, disk, rss_backlog, drain = stage_backlog_and_drain(args, hub, sim, pki, args.loadgen, ids_file, pids,
                                                                 expected)
        result.update(fill=fill, disk=disk, rss_backlog=rss_backlog, drain=drain, rss_end=rss_snapshot(pids))
        hub.stop()  # the next stages start hubs of their own, one at a time: the machine has few cores
        hub = None
        if not args.skip_idle:
            result["idle"] = stage_idle(args, work, pki, sim, edge_key, n_ids)
        if not args.skip_route:
            result["route"] = stage_route(args, work, pki, sim, edge_key)
        result["wall_seconds"] = round(time.monotonic() - t_begin, 1)
        print_table(result)
        if "route" in result:
            print_route_table(result["route"])
        print(json.dumps(result, separators=(",", ":")), flush=True)
    finally:
        if bare:
            bare.stop()
        if hub:
            hub.stop()
        if sim:
            sim.stop()
        if args.keep:
            log(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
