"""pytest fixtures: a PKI, the IoT Hub simulator with an edge and its children, and the hub."""
import os
import shutil
import tempfile

import pytest

from edgehub_harness import Hub, Pki, Simulator


@pytest.fixture
def workdir():
    # /tmp is world-traversable, so mosquitto (after dropping to its user) can reach the runtime folder
    d = tempfile.mkdtemp(prefix="edgehub-it-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def pki(workdir):
    return Pki(os.path.join(workdir, "pki"))


@pytest.fixture
def sim(workdir, pki):
    s = Simulator(workdir, pki).start()
    yield s
    s.stop()


@pytest.fixture
def edge(sim):
    """The edge device in the simulator's registry; returns its $edgeHub key."""
    return sim.add_edge()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report ends with the last lines of each hub's and the simulator's log.

    CI keeps only the printed output: without these a start-up race leaves no trace.
    """
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    logs = [(f"hub{i} log", getattr(h, "log", None)) for i, h in enumerate(getattr(item, "edgehub_hubs", []))]
    sim = item.funcargs.get("sim")
    if sim is not None and getattr(sim, "log", None):
        logs.append(("simulator log", sim.log))
    for title, log in logs:
        if log is not None:
            rep.sections.append((title + " (last 80 lines)", "\n".join(log.text().splitlines()[-80:])))


@pytest.fixture
def make_hub(request, workdir, pki, sim, edge):
    hubs = []
    request.node.edgehub_hubs = hubs

    def make(**overrides):
        h = Hub(os.path.join(workdir, f"hub{len(hubs)}"), pki, sim, edge, **overrides)
        hubs.append(h)
        return h

    yield make
    for h in hubs:
        h.stop()
