"""A plain SIGTERM stops every daemon with exit status 0, as systemd's "systemctl stop" needs:
a non-zero status would leave the unit "failed" (sd-event's default for a NULL signal handler
exits with the userdata pointer's low bits, which bit hub-store, auth-cache, twin-sync and
method-router). The runner logs each child's exit status; SIGTERM goes to each daemon itself."""
import os
import signal

from edgehub_harness import wait_until

DAEMONS = ["auth-cache", "hub-store", "twin-sync", "method-router", "agent"]


def test_sigterm_exits_zero_for_every_daemon(make_hub):
    hub = make_hub().start()
    for name in DAEMONS:
        pid = hub.child_pid(f"edgehub-{name}")
        assert pid, f"no running edgehub-{name}"
        os.kill(pid, signal.SIGTERM)
        hub.log.wait_for(f"{name} exited with status 0, restarting", timeout=15)
        wait_until(lambda: hub.child_pid(f"edgehub-{name}") not in (None, pid), 15,
                   what=f"the runner to restart {name}")
    hub.log.wait_for("all processes ready", timeout=30)
    hub.stop()
    for name in DAEMONS:
        assert f"{name} exited with status 0\n" in hub.log.text() + "\n", hub.log.text()
