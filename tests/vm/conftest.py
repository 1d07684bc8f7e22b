"""pytest fixtures of the VM stage: one IoT Hub simulator on the host and one guest (systemd as
PID 1, the edgehub .debs installed) for the whole session; the tests run in file order
(test_guest.py, then test_power_cut.py) on the same guest, as an operator's machine would live.

EDGEHUB_VM_IMAGE: the folder tests/vm/build-guest.sh filled (tests/vm/run-vm-tests sets it).
"""
import os
import re
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "packaging"))

from edgehub_harness import EDGE_ID, GATEWAY_NAME, HUB_NAME, Pki, Simulator, wait_until  # noqa: E402
from installed_hub import set_key, set_section_key  # noqa: E402
from vm import Guest  # noqa: E402

CONFIG = "/etc/edgehub/config.yaml"
# The daemons of edgehub.target, as packaging/meson.build makes their units.
UNITS = ["edgehub-auth-cache", "edgehub-hub-store", "edgehub-twin-sync", "edgehub-method-router",
         "edgehub-agent", "edgehub-broker"]
SIM_ADDRESS = "10.0.2.100"  # the guest's way to the simulator (vm.py's guestfwd)


def pytest_collection_modifyitems(items):
    # test_guest.py first: the power cuts need the hub it configured.
    items.sort(key=lambda i: 0 if "test_guest" in i.nodeid else 1)


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="edgehub-vm-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def sim(workdir):
    # The guest verifies the simulator's certificate for the address it dials.
    pki = Pki(os.path.join(workdir, "pki"), extra_names=[f"IP:{SIM_ADDRESS}"])
    s = Simulator(workdir, pki).start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def edge_key(sim):
    sim.add_edge()
    ids = sim.call("GET", "/identities")
    ids = ids["identities"] if isinstance(ids, dict) else ids
    return next(i["primaryKey"] for i in ids if i.get("deviceId") == EDGE_ID and i.get("moduleId") == "$edgeHub")


def configure(guest, sim, edge_key, **storage):
    """Edits the installed config.yaml as an operator would, through the guest."""
    text = guest.get(CONFIG)
    for key, value in [
        ("device_id", EDGE_ID), ("hub_hostname", HUB_NAME), ("gateway_hostname", GATEWAY_NAME),
        ("edgehub_key", f'"{edge_key}"'), ("host", SIM_ADDRESS), ("mqtt_port", 8883),
        ("https_port", 443), ("ca_file", "/etc/edgehub/upstream-ca.pem"),
    ]:
        text = set_key(text, key, value)
    for key, value in storage.items():
        text = set_section_key(text, "storage", key, value)
    guest.put("config.yaml", text)
    guest.put("upstream-ca.pem", open(sim.pki.ca_cert).read())
    guest.run("install -m 0644 /host/files/upstream-ca.pem /etc/edgehub/upstream-ca.pem && "
              f"cat /host/files/config.yaml > {CONFIG}")


@pytest.fixture(scope="session")
def guest(workdir, sim, edge_key):
    image = os.environ.get("EDGEHUB_VM_IMAGE")
    if not image:
        pytest.fail("EDGEHUB_VM_IMAGE is not set: run tests/vm/run-vm-tests")
    g = Guest(image, workdir, sim.mqtt_port, sim.https_port)
    g.start()
    configure(g, sim, edge_key)
    # Devices on the host trust the CA that postinst generated in the guest.
    g.ca_file = os.path.join(workdir, "gateway-ca.crt")
    with open(g.ca_file, "w") as f:
        f.write(g.get("/etc/edgehub/ca.crt"))
    yield g
    g.close()


def units_active(guest):
    return guest.run("systemctl is-active " + " ".join(u + ".service" for u in UNITS), check=False)


def wait_units_active(guest, timeout=60):
    return guest.wait("systemctl is-active --quiet " + " ".join(u + ".service" for u in UNITS), timeout,
                      "every edgehub unit active")


def wait_scope_synced(guest, timeout=60):
    guest.wait("hubctl --json status | grep -q '\"synced\": *true'", timeout, "auth-cache's scope sync")


class Gateway:
    """What edgehub_harness.Device needs of a hub: the CA devices trust and the TLS port."""

    def __init__(self, guest):
        self.pki = type("P", (), {"ca_cert": guest.ca_file})
        self.tls_port = guest.tls_port


def status_json(guest):
    import json
    return json.loads(guest.out("hubctl --json status"))


def strip_ansi(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


__all__ = ["UNITS", "configure", "units_active", "wait_units_active", "wait_scope_synced", "Gateway",
           "status_json", "wait_until"]
