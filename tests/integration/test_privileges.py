"""Least privilege: daemons run as the hub's user, every socket checks its peer, modules run as their own uids."""
import os
import pwd
import stat
import subprocess

from edgehub_harness import wait_until


def proc_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def test_daemons_run_as_the_hub_user(make_hub):
    hub = make_hub().start()
    hub_uid = pwd.getpwnam("edgehub").pw_uid
    broker_uid = pwd.getpwnam("mosquitto").pw_uid
    for name in ("auth-cache", "hub-store", "method-router", "twin-sync", "agent"):
        assert proc_uid(hub.child_pid(name)) == hub_uid, name
    assert proc_uid(hub.child_pid("mosquitto")) == broker_uid
    st = os.stat(os.path.join(hub.runtime, "broker.sock"))
    assert stat.S_IMODE(st.st_mode) & 0o007 == 0, oct(st.st_mode)
    hub.hubctl("status")
