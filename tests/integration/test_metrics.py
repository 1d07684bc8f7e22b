"""hub-store's Prometheus endpoint (metrics.port): scraped during a small load, its counters
move as the messages do, and agree with hubctl."""
import re
import urllib.error
import urllib.request

from edgehub_harness import EDGE_ID, HUB_NAME, Device, free_port, wait_until

SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def enable_metrics(hub):
    port = free_port()
    with open(hub.config_path, "a") as f:
        f.write(f"metrics:\n  port: {port}\n  address: 127.0.0.1\n")
    return f"http://127.0.0.1:{port}/metrics"


def scrape(url):
    """{(name, frozenset(labels)): value}, checking the text format on the way."""
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample: {line!r}"
        name, labels, value = m.groups()
        assert name in typed, f"{name} has no # TYPE"
        labels = dict(LABEL.findall(labels or ""))
        assert labels.get("iothub") == HUB_NAME and labels.get("edge_device") == EDGE_ID, line
        labels = {k: v for k, v in labels.items() if k not in ("iothub", "edge_device")}
        samples[(name, frozenset(labels.items()))] = float(value)
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_follow_the_messages(sim, make_hub):
    key = sim.add_child("metrics-dev")["primaryKey"]
    hub = make_hub()
    url = enable_metrics(hub)
    hub.start()

    s = scrape(url)
    assert value(s, "edgehub_connected_clients") == 0
    assert ("edgehub_queue_length", frozenset({"endpoint": "$upstream", "priority": "0"}.items())) in s
    assert value(s, "edgehub_offline_count_total") == 0

    dev = Device(hub, "metrics-dev", key)
    assert dev.connect() == 0
    for i in range(5):
        assert dev.send(f"m-{i}")
    wait_until(lambda: value(scrape(url), "edgehub_messages_sent_total", id="metrics-dev", to="upstream") == 5,
               15, what="5 messages sent upstream in the metrics")
    s = scrape(url)
    assert value(s, "edgehub_messages_received_total", id="metrics-dev") == 5
    assert value(s, "edgehub_connected_clients") == 1
    assert value(s, "edgehub_queue_length", endpoint="$upstream", priority="0") == 0

    # Offline: the queue grows, the outage is counted and timed.
    sim.cut()
    for i in range(3):
        assert dev.send(f"offline-{i}")
    wait_until(lambda: value(scrape(url), "edgehub_queue_length", endpoint="$upstream", priority="0") == 3,
               15, what="3 queued in the metrics")
    wait_until(lambda: value(scrape(url), "edgehub_offline_count_total") >= 1, 30, what="the outage counted")
    s = scrape(url)
    assert value(s, "edgehub_messages_received_total", id="metrics-dev") == 8
    assert value(s, "edgehub_offline_duration_seconds") > 0
    assert value(s, "edgehub_store_messages") == 3

    # hubctl status shows the same figures.
    status = hub.hubctl_json("status")["hub_store"]
    assert status["offline_count"] == value(s, "edgehub_offline_count_total")
    assert status["connected_devices"] == value(s, "edgehub_connected_clients")
    assert status["store"]["messages"] == value(s, "edgehub_store_messages")

    sim.restore()
    wait_until(lambda: value(scrape(url), "edgehub_messages_sent_total", id="metrics-dev", to="upstream") == 8,
               30, what="the backlog drained in the metrics")
    s = scrape(url)
    assert value(s, "edgehub_queue_length", endpoint="$upstream", priority="0") == 0
    assert value(s, "edgehub_offline_duration_seconds") == 0
    dev.close()
    wait_until(lambda: value(scrape(url), "edgehub_connected_clients") == 0, 10, what="the device gone")

    try:
        urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=5)
        raise AssertionError("/other answered")
    except urllib.error.HTTPError as e:
        assert e.code == 404


def test_metrics_off_by_default_and_bad_address(sim, make_hub, edge):
    hub = make_hub()
    with open(hub.config_path, "a") as f:
        f.write("metrics:\n  port: 9\n  address: localhost\n")
    p = hub.hubctl("status", check=False)
    assert p.returncode == 2
    assert "metrics.address" in p.stderr and "config.yaml:" in p.stderr
