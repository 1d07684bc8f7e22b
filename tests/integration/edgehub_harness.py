"""The integration harness: real processes (IoT Hub simulator, edgehub-run with
mosquitto + plugin + daemons), real TLS, real RocksDB. No mocks.

Everything binds 127.0.0.1; every wait is bounded.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import paho.mqtt.client as mqtt

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("EDGEHUB_BUILD", os.path.join(ROOT, "build"))
SIMULATOR = os.path.join(ROOT, "tests", "simulator", "iothub-sim.js")
HUB_NAME = "testhub.azure-devices.net"
GATEWAY_NAME = "gateway.local"
EDGE_ID = "edge-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


HUB_USER = "edgehub"  # runner.user: edgehub-run (root) runs the daemons as this user


def hub_ids():
    """(uid, gid) of the hub's user; edgehub-run creates it as this does when it is missing."""
    import pwd
    try:
        pw = pwd.getpwnam(HUB_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", HUB_USER], check=False, capture_output=True)
        pw = pwd.getpwnam(HUB_USER)
    return pw.pw_uid, pw.pw_gid


def hub_secret(path):
    """A file with a secret, as the package installs /etc/edgehub: root:edgehub 0640."""
    os.chown(path, 0, hub_ids()[1])
    os.chmod(path, 0o640)


def hub_owned_dir(path):
    """A folder the hub's user may write (a disk it is given, as ReadWritePaths= under systemd)."""
    os.makedirs(path, exist_ok=True)
    uid, gid = hub_ids()
    for root, dirs, files in os.walk(path):
        for n in [root] + [os.path.join(root, x) for x in dirs + files]:
            os.lchown(n, uid, gid)
    return path


def module_output_dir(path):
    """A folder modules (each its own uid) may write and the test reads (sticky, like /tmp)."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o1777)
    return path


def new_key():
    return base64.b64encode(os.urandom(32)).decode()


def url_encode(s):
    # encodeURIComponent, as the Azure SDKs sign it
    return urllib.parse.quote(s, safe="-_.!~*'()")


def sas_token(resource, key_b64, expiry=None):
    se = int(expiry if expiry is not None else time.time() + 3600)
    encoded = url_encode(resource)
    sig = base64.b64encode(
        hmac.new(base64.b64decode(key_b64), f"{encoded}\n{se}".encode(), hashlib.sha256).digest()
    ).decode()
    return f"SharedAccessSignature sr={encoded}&sig={url_encode(sig)}&se={se}"


class Pki:
    """A throwaway CA and a server certificate valid for 127.0.0.1/localhost/gateway.local."""

    def __init__(self, folder, extra_names=()):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.ca_key = os.path.join(folder, "ca.key")
        self.ca_cert = os.path.join(folder, "ca.pem")
        self.key = os.path.join(folder, "server.key")
        self.cert = os.path.join(folder, "server.pem")
        run = lambda *a: subprocess.run(a, check=True, capture_output=True)
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2", "-subj", "/CN=edgehub test CA")
        csr = os.path.join(folder, "server.csr")
        ext = os.path.join(folder, "ext.cnf")
        with open(ext, "w") as f:
            f.write(",".join(["subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:gateway.local", *extra_names]) + "\n")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", self.key, "-out", csr, "-subj", "/CN=localhost")
        run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
            "-CAcreateserial", "-out", self.cert, "-days", "2", "-extfile", ext)
        # Public: the certificates. The key is the hub's (method-router reads it; mosquitto gets a copy).
        for p in (folder, self.cert, self.ca_cert):
            os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
        hub_secret(self.key)


class DevicePki:
    """Device certificates made with openssl: a device CA, CA-signed and self-signed leaves, any dates."""

    CA_CNF = """[ca]
default_ca = c
[c]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = p
unique_subject = no
email_in_dn = no
[p]
commonName = supplied
"""

    def __init__(self, folder, name="device CA"):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.ca_key = os.path.join(folder, "ca.key")
        self.ca_cert = os.path.join(folder, "ca.pem")
        self._run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2", "-subj", f"/CN={name}")
        with open(os.path.join(folder, "ca.cnf"), "w") as f:
            f.write(self.CA_CNF)
        open(os.path.join(folder, "index.txt"), "w").close()
        with open(os.path.join(folder, "serial"), "w") as f:
            f.write("1000\n")

    def _run(self, *args):
        subprocess.run(args, check=True, capture_output=True, cwd=self.folder)

    def leaf(self, name, cn=None, self_signed=False, start=None, end=None, key="ec"):
        """(cert, key) for CN=cn (default name), signed by this CA or by itself; start/end as YYYYMMDDHHMMSSZ."""
        cert, key_file, csr = (os.path.join(self.folder, f"{name}.{x}") for x in ("pem", "key", "csr"))
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if key == "ec" else ["-newkey", key]
        self._run("openssl", "req", *newkey, "-nodes", "-keyout", key_file, "-out", csr, "-subj", f"/CN={cn or name}")
        dates = ["-startdate", start or time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() - 3600)),
                 "-enddate", end or time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + 2 * 86400))]
        signer = ["-selfsign", "-keyfile", key_file] if self_signed else ["-cert", self.ca_cert, "-keyfile", self.ca_key]
        self._run("openssl", "ca", "-batch", "-config", "ca.cnf", *signer, "-in", csr, "-out", cert, "-notext", *dates)
        return cert, key_file

    @staticmethod
    def thumbprint(cert, algorithm="sha1"):
        """Upper-case hex, as IoT Hub shows it."""
        out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-fingerprint", f"-{algorithm}"],
                             check=True, capture_output=True, text=True).stdout
        return out.strip().split("=", 1)[1].replace(":", "")


class LogPump:
    """Collects a process's output lines in a thread so pipes never fill up."""

    def __init__(self, stream, name, echo=False):
        self.lines = []
        self.name = name
        self.lock = threading.Lock()
        self.echo = echo
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            with self.lock:
                self.lines.append(line)
            if self.echo:
                print(f"[{self.name}] {line}", flush=True)

    def text(self):
        with self.lock:
            return "\n".join(self.lines)

    def wait_for(self, needle, timeout=15.0):
        return wait_until(lambda: needle in self.text(), timeout, what=f"'{needle}' in {self.name} output")


class Simulator:
    def __init__(self, folder, pki):
        self.folder = folder
        self.pki = pki
        self.mqtt_port = free_port()
        self.https_port = free_port()
        self.control_port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["node", SIMULATOR, "--hub-name", HUB_NAME, "--mqtt-port", str(self.mqtt_port),
             "--https-port", str(self.https_port), "--control-port", str(self.control_port),
             "--cert", self.pki.cert, "--key", self.pki.key],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.log = LogPump(self.proc.stdout, "simulator", echo=bool(os.environ.get("EDGEHUB_ECHO")))
        self.log.wait_for("READY", timeout=20)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def call(self, method, path, body=None, expect=(200, 201, 204)):
        conn = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=30)
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        if resp.status not in expect:
            raise AssertionError(f"{method} {path}: {resp.status} {raw[:300]!r}")
        return json.loads(raw) if raw else None

    def add_identity(self, device_id, module_id=None, **kw):
        body = {"deviceId": device_id, **kw}
        if module_id:
            body["moduleId"] = module_id
        return self.call("POST", "/identities", body)

    def add_edge(self):
        """The edge device (iotEdge, with its system modules); returns its $edgeHub module's key."""
        self.add_identity(EDGE_ID, iotEdge=True)
        ids = self.call("GET", "/identities")
        ids = ids["identities"] if isinstance(ids, dict) else ids
        for i in ids:
            if i.get("deviceId") == EDGE_ID and i.get("moduleId") == "$edgeHub":
                return i["primaryKey"]
        raise AssertionError(f"the simulator did not create {EDGE_ID}/$edgeHub")

    def add_child(self, device_id, **kw):
        return self.add_identity(device_id, parent=EDGE_ID, **kw)

    def remove_identity(self, device_id):
        return self.call("DELETE", f"/identities/{urllib.parse.quote(device_id, safe='')}")

    def patch_identity(self, device_id, **kw):
        return self.call("PATCH", f"/identities/{urllib.parse.quote(device_id, safe='')}", kw)

    def cut(self):
        self.call("POST", "/link/cut")

    def restore(self):
        self.call("POST", "/link/restore")

    def telemetry(self, identity=None):
        q = "?limit=10000000" + (f"&identity={urllib.parse.quote(identity, safe='')}" if identity else "")
        return self.call("GET", "/telemetry" + q)

    def count(self):
        return self.call("GET", "/telemetry/count")

    def _identity_path(self, device_id, module_id):
        q = lambda s: urllib.parse.quote(s, safe="")
        return q(device_id) + (f"/{q(module_id)}" if module_id else "")

    def c2d(self, device_id, payload, properties=None, module_id=None):
        body = {"payload": payload, "properties": properties or {}}
        return self.call("POST", f"/c2d/{self._identity_path(device_id, module_id)}", body, expect=(200, 202))

    def invoke_method(self, device_id, name, payload=None, timeout=30, module_id=None):
        """The cloud calls a direct method: (HTTP status, body) as IoT Hub's service API answers."""
        conn = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=timeout + 30)
        body = {"methodName": name, "payload": payload, "responseTimeoutInSeconds": timeout}
        conn.request("POST", f"/methods/{self._identity_path(device_id, module_id)}", body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        return resp.status, (json.loads(raw) if raw else None)


def yaml_quote(s):
    """A YAML single-quoted scalar (routes hold double quotes and '*')."""
    return "'" + s.replace("'", "''") + "'"


class Hub:
    """edgehub-run with mosquitto + plugin + auth-cache + hub-store, configured for the simulator."""

    def __init__(self, folder, pki, sim, edgehub_key, **overrides):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        os.chmod(folder, 0o755)
        self.pki = pki
        self.sim = sim
        self.tls_port = free_port()
        self.methods_port = free_port()
        self.runtime = os.path.join(folder, "run")
        self.storage = os.path.join(folder, "lib")
        self.config_path = os.path.join(folder, "config.yaml")
        self.edgehub_key = edgehub_key
        self.settings = {
            "max_bytes": "64MiB", "overflow": "drop_oldest", "sync": "periodic",
            "time_to_live": "7200", "scope_refresh": "1h", "log_level": "info",
            "twin_queue_max_bytes": "256KiB",
            "client_ca_file": None,
        }
        self.settings.update(overrides)
        self.proc = None
        self.write_config()

    def write_config(self):
        s = self.settings
        text = f"""# written by the integration tests
edge:
  device_id: {EDGE_ID}
  hub_hostname: {HUB_NAME}
  gateway_hostname: {GATEWAY_NAME}
  edgehub_key: "{self.edgehub_key}"
upstream:
  host: 127.0.0.1
  mqtt_port: {self.sim.mqtt_port}
  https_port: {self.sim.https_port}
  ca_file: {self.pki.ca_cert}
  scope_refresh: {s['scope_refresh']}
listeners:
  tls:
    port: {self.tls_port}
    bind: 127.0.0.1
    cert_file: {self.pki.cert}
    key_file: {self.pki.key}
{f"    client_ca_file: {s['client_ca_file']}" if s['client_ca_file'] else ""}
storage:
  dir: {self.storage}
  max_bytes: {s['max_bytes']}
  overflow: {s['overflow']}
  sync: {s['sync']}
  twin_queue_max_bytes: {s['twin_queue_max_bytes']}
store_and_forward:
  time_to_live: {s['time_to_live']}
methods:
  port: {self.methods_port}
  bind: 127.0.0.1
agent:
  ca_file: {self.pki.ca_cert}
  gateway_hostname: localhost
runtime_dir: {self.runtime}
log_level: {s['log_level']}
"""
        if s.get("routes"):
            text += "routes:\n"
            for name, r in s["routes"].items():
                if isinstance(r, dict):  # {route, priority, time_to_live_secs}
                    text += f"  {name}:\n" + "".join(f"    {k}: {yaml_quote(v) if k == 'route' else v}\n"
                                                     for k, v in r.items())
                else:
                    text += f"  {name}: {yaml_quote(r)}\n"
        with open(self.config_path, "w") as f:
            f.write(text)
        hub_secret(self.config_path)  # it holds the $edgeHub key

    def start(self, wait=True):
        exe = os.path.join(BUILD, "runner", "edgehub-run")
        self.proc = subprocess.Popen([exe, "--config", self.config_path],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.log = LogPump(self.proc.stdout, "hub", echo=bool(os.environ.get("EDGEHUB_ECHO")))
        if wait:
            self.log.wait_for("all processes ready", timeout=30)
        return self

    def stop(self, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def child_pid(self, name):
        """pid of the runner's child whose command line contains name."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        for pid in out.split():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if name.encode() in f.read():
                        return int(pid)
            except FileNotFoundError:
                pass
        return None

    def kill9(self, name):
        pid = self.child_pid(name)
        assert pid, f"no running {name}"
        os.kill(pid, signal.SIGKILL)
        return pid

    def hubctl(self, *args, check=True):
        exe = os.path.join(BUILD, "hubctl", "hubctl")
        p = subprocess.run([exe, "--config", self.config_path, *args], capture_output=True, text=True, timeout=20)
        if check and p.returncode != 0:
            raise AssertionError(f"hubctl {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def hubctl_json(self, *args):
        return json.loads(self.hubctl("--json", *args).stdout)

    def upstream_queue(self):
        q = self.hubctl_json("queues")
        queues = q["queues"] if isinstance(q, dict) else q
        for e in queues:
            if e["endpoint"] == "$upstream":
                return e
        return {"messages": 0}

    def wait_drained(self, timeout=60):
        def drained():
            try:
                return self.upstream_queue()["messages"] == 0
            except AssertionError:
                return False  # hub-store is restarting (the runner brings it back)
        return wait_until(drained, timeout, interval=0.2, what="the upstream queue to drain")


class Device:
    """A child device speaking the IoT Hub MQTT protocol to the gateway (paho, TLS)."""

    def __init__(self, hub, device_id, key, module_id=None, token=None, protocol=mqtt.MQTTv311, x509=None):
        """x509: (cert file, key file) of an X.509 device, which then sends no password."""
        self.hub = hub
        self.identity = f"{device_id}/{module_id}" if module_id else device_id
        self.device_id = device_id
        self.module_id = module_id
        resource = f"{GATEWAY_NAME}/devices/{device_id}" + (f"/modules/{module_id}" if module_id else "")
        self.username = f"{HUB_NAME}/{self.identity}/?api-version=2021-04-12"
        self.password = None if x509 else token if token is not None else sas_token(resource, key)
        self.client = mqtt.Client(client_id=self.identity, protocol=protocol, clean_session=True)
        self.client.username_pw_set(self.username, self.password)
        self.client.tls_set(ca_certs=hub.pki.ca_cert, certfile=x509[0] if x509 else None,
                            keyfile=x509[1] if x509 else None)
        self.connack = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, rc: self.disconnected.set()
        self.messages = []  # (topic, payload bytes) of everything received
        self.messages_lock = threading.Lock()
        self.method_handler = None
        self.client.on_message = self._on_message

    def _on_message(self, client, userdata, msg):
        with self.messages_lock:
            self.messages.append((msg.topic, msg.payload))
        prefix = "$iothub/methods/POST/"
        if self.method_handler and msg.topic.startswith(prefix):
            name, _, query = msg.topic[len(prefix):].partition("/?")
            rid = urllib.parse.parse_qs(query).get("$rid", [""])[0]
            answer = self.method_handler(name, msg.payload)
            if answer is not None:
                status, payload = answer
                client.publish(f"$iothub/methods/res/{status}/?$rid={rid}", payload, qos=0)

    def received(self, prefix=""):
        with self.messages_lock:
            return [(t, p) for t, p in self.messages if t.startswith(prefix)]

    def subscribe(self, topic, qos=1, timeout=10):
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos)
        return done.wait(timeout)

    def answer_methods(self, handler):
        """handler(name, payload bytes) -> (status, payload bytes/str) or None (stay silent)."""
        self.method_handler = handler
        return self.subscribe("$iothub/methods/POST/#", qos=0)

    def _on_connect(self, client, userdata, flags, rc):
        self.connack = rc
        self.connected.set()

    def connect(self, timeout=10):
        """Returns the CONNACK code (0 = accepted); None if the broker closed without one."""
        self.connected.clear()
        self.disconnected.clear()
        try:
            self.client.connect("127.0.0.1", self.hub.tls_port, keepalive=30)
        except (ConnectionError, OSError):
            return None
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected.is_set():
                return self.connack
            if self.disconnected.is_set():
                return self.connack
            time.sleep(0.02)
        return self.connack

    def topic(self, props=""):
        base = f"devices/{self.device_id}/" + (f"modules/{self.module_id}/" if self.module_id else "")
        return base + "messages/events/" + props

    def send(self, payload, props="", timeout=10):
        """Publishes QoS 1; True when PUBACKed within timeout."""
        info = self.client.publish(self.topic(props), payload, qos=1)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def close(self):
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def listen_inputs(self):
        """Collects (input name, payload, properties) of module input messages, in arrival order."""
        self.inputs = []
        lock = threading.Lock()

        def on_message(client, userdata, msg):
            parts = msg.topic.split("/")
            if len(parts) >= 6 and parts[4] == "inputs":
                props = dict(urllib.parse.parse_qsl(parts[6] if len(parts) > 6 else "", keep_blank_values=True))
                with lock:
                    self.inputs.append((parts[5], msg.payload.decode(errors="replace"), props))
        self.client.on_message = on_message
        return self.inputs

    def send_output(self, output, payload, props="", timeout=10):
        bag = f"%24.on={output}" + (f"&{props}" if props else "")
        return self.send(payload, props=bag, timeout=timeout)


def telemetry_payloads(sim, identity):
    """Payloads the simulator recorded for identity, in arrival order."""
    body = sim.telemetry(identity)
    records = body["records"] if isinstance(body, dict) else body
    return [r["payload"] for r in records]


class BusWatcher:
    """A daemon's view of the internal bus: mosquitto_sub on the broker's Unix socket, MQTT v5."""

    def __init__(self, hub, topic, name="test-watch"):
        sock = os.path.join(hub.runtime, "broker.sock")
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "--unix", sock, "-V", "5", "-i", f"$edgehub-{name}", "-u", f"$edgehub/{name}",
             "-q", "1", "-t", topic, "-F", "%t|%P|%p"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines = []
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, daemon=True).start()
        # Subscribed once our own probe comes back.
        def probe():
            bus_publish(hub, "$edgehub/probe", name, name=f"{name}-probe")
            with self._lock:
                return any(l.startswith("$edgehub/probe|") for l in self.lines)
        wait_until(probe, 10, interval=0.2, what="the bus watcher to subscribe")

    def _pump(self):
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate, timeout=10, what="a bus message"):
        def found():
            with self._lock:
                return next((l for l in self.lines if predicate(l)), None)
        try:
            wait_until(lambda: found() is not None, timeout, what=what)
        except TimeoutError:
            raise TimeoutError(f"{what}: bus saw {self.lines}")
        return found()

    def close(self):
        self.proc.terminate()
        self.proc.wait(5)


def bus_publish(hub, bus_topic, payload, name="test-pub", **user_properties):
    """Publishes on the internal bus as a daemon would; returns mosquitto_pub's exit code."""
    sock = os.path.join(hub.runtime, "broker.sock")
    cmd = ["mosquitto_pub", "--unix", sock, "-V", "5", "-i", f"$edgehub-{name}", "-u", f"$edgehub/{name}",
           "-q", "1", "-t", bus_topic, "-m", payload]
    for k, v in user_properties.items():
        cmd += ["-D", "publish", "user-property", k, v]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10)


# ---------------------------------------------------------------- twins (tests/integration/test_twins.py)

def _quote(identity):
    return "/".join(urllib.parse.quote(p, safe="") for p in identity.split("/"))


def sim_twin(sim, identity):
    """The simulator's full twin of identity: {desired, reported} with $version."""
    return sim.call("GET", f"/twins/{_quote(identity)}")


def sim_patch_desired(sim, identity, patch):
    """A desired change in the cloud: merged, version bumped, connected identity notified."""
    return sim.call("PATCH", f"/twins/{_quote(identity)}/desired", patch)


def sim_reported_log(sim, identity):
    """Reported patches the simulator received for identity, in order (nulls kept)."""
    return sim.call("GET", f"/twins/reported?identity={urllib.parse.quote(identity, safe='')}")["patches"]


class TwinClient:
    """The IoT Hub twin protocol on a connected Device: GET, reported PATCH, desired notifications."""

    def __init__(self, device):
        self.device = device
        self.lock = threading.Condition()
        self.responses = {}  # rid -> (status, version, body)
        self.desired = []    # (version, patch) as notified, in order
        self.rid = 0
        device.client.on_message = self._on_message

    def subscribe(self, desired=True, timeout=10):
        topics = [("$iothub/twin/res/#", 0)] + ([("$iothub/twin/PATCH/properties/desired/#", 0)] if desired else [])
        done = threading.Event()
        self.device.client.on_subscribe = lambda *a: done.set()
        self.device.client.subscribe(topics)
        assert done.wait(timeout), "SUBACK"

    def _on_message(self, client, userdata, msg):
        query = urllib.parse.parse_qs(msg.topic.split("?", 1)[1] if "?" in msg.topic else "")
        body = json.loads(msg.payload) if msg.payload else None
        with self.lock:
            if msg.topic.startswith("$iothub/twin/res/"):
                status = int(msg.topic.split("/")[3])
                version = int(query["$version"][0]) if "$version" in query else None
                self.responses[query.get("$rid", [""])[0]] = (status, version, body)
            elif msg.topic.startswith("$iothub/twin/PATCH/properties/desired/"):
                self.desired.append((int(query["$version"][0]), body))
            self.lock.notify_all()

    def request(self, topic, payload=b"", timeout=10, rid=None):
        """Publishes a twin request; returns (status, version, body), or None on timeout."""
        with self.lock:
            self.rid += 1
            rid = rid or str(self.rid)
        self.device.client.publish(f"{topic}?$rid={rid}", payload, qos=0)
        with self.lock:
            self.lock.wait_for(lambda: rid in self.responses, timeout)
            return self.responses.pop(rid, None)

    def get(self, timeout=10):
        return self.request("$iothub/twin/GET/", timeout=timeout)

    def report(self, patch, timeout=10):
        payload = patch if isinstance(patch, (bytes, str)) else json.dumps(patch)
        return self.request("$iothub/twin/PATCH/properties/reported/", payload, timeout=timeout)

    def wait_desired(self, count, timeout=10):
        with self.lock:
            self.lock.wait_for(lambda: len(self.desired) >= count, timeout)
            return list(self.desired)
