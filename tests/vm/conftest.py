"""pytest fixtures of the VM stage: one IoT Hub simulator on the host and one guest (systemd as
PID 1, the edgehub .debs installed) for the whole session; the tests run in file order
(test_guest.py, then test_power_cut.py) on the same guest, as an operator's machine would live.
The power cuts of the second sync policy run at the same time on a second guest booted from the
image as it was built, with a simulator of its own (each policy cuts its own uplink): boots
under emulation are what the stage's time goes on.

EDGEHUB_VM_IMAGE: the folder tests/vm/build-guest.sh filled (tests/vm/run-vm-tests sets it).
"""
import os
import re
import shutil
import subprocess
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
    return sim.add_edge()


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


def image_dir():
    image = os.environ.get("EDGEHUB_VM_IMAGE")
    if not image:
        pytest.fail("EDGEHUB_VM_IMAGE is not set: run tests/vm/run-vm-tests")
    return image


@pytest.fixture(scope="session")
def pristine_image(workdir):
    """A copy of the image before any boot (sparse: seconds), for the second guest."""
    image = image_dir()
    copy = os.path.join(workdir, "image-2")
    os.makedirs(copy)
    for name in ("vmlinuz", "vmlinux", "initrd.img"):
        if os.path.exists(os.path.join(image, name)):
            os.symlink(os.path.join(os.path.abspath(image), name), os.path.join(copy, name))
    subprocess.run(["cp", "--sparse=always", os.path.join(image, "root.img"), os.path.join(copy, "root.img")],
                   check=True, timeout=300)
    return copy


def fetch_gateway_ca(g, workdir):
    """Devices on the host trust the CA that postinst generated in the guest."""
    g.ca_file = os.path.join(workdir, "gateway-ca.crt")
    with open(g.ca_file, "w") as f:
        f.write(g.get("/etc/edgehub/ca.crt"))


@pytest.fixture(scope="session")
def guest(workdir, sim, edge_key, pristine_image):
    g = Guest(image_dir(), workdir, sim.mqtt_port, sim.https_port)
    g.start()
    configure(g, sim, edge_key)
    fetch_gateway_ca(g, workdir)
    yield g
    g.close()


@pytest.fixture
def second_guest(guest, workdir, pristine_image):
    """(guest, simulator, its $edgeHub key): another gateway, booted from the pristine image."""
    folder = os.path.join(workdir, "second")
    os.makedirs(folder)
    s = Simulator(folder, Pki(os.path.join(folder, "pki"), extra_names=[f"IP:{SIM_ADDRESS}"])).start()
    g = None
    try:
        key = s.add_edge()
        g = Guest(pristine_image, folder, s.mqtt_port, s.https_port)
        g.accel = guest.accel  # what the first guest's boot found out about KVM
        g.start()
        configure(g, s, key)
        fetch_gateway_ca(g, folder)
        yield g, s, key
    finally:
        if g:
            g.close()
        s.stop()


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
