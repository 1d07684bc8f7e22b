"""The VM stage's guest: QEMU/KVM booting the image tests/vm/build-guest.sh made, with systemd
as PID 1, and a channel to run shell scripts in it (tests/vm/vm-agent over a 9p share).

Networking is QEMU user mode with restrict=on: the guest reaches nothing but what is forwarded.
Host -> guest: 127.0.0.1 ports forwarded to the guest's 8883 (devices) and 443 (methods).
Guest -> host: 10.0.2.100:8883 and :443 are relayed (guestfwd, one socat per connection) to the
IoT Hub simulator's ports on 127.0.0.1. Nothing is routed off the machine.

KVM when it can run Debian's kernel, else QEMU's TCG emulation (said on the output): both boot
the guest's own kernel, so a power cut loses the guest's page cache as a real one would (a
systemd-nspawn container would share the host's and could not model it).

The disk is attached with cache=directsync: the virtual disk has no volatile write cache and
every write the guest issues is on the host's storage when QEMU completes it, so a SIGKILL of
QEMU keeps exactly what the guest wrote to its disk and loses what was only in guest RAM (the
page cache, unflushed buffers). Not modeled: a physical disk's own volatile cache losing
written-but-unflushed blocks, and torn sector writes.
"""
import os
import shutil
import signal
import subprocess
import time

from edgehub_harness import free_port


KVM_PROBE_SECONDS = 20


class GuestError(AssertionError):
    pass


def kvm_kind():
    """What the kernel log says of this machine's KVM module, for the fallback's message."""
    try:
        log = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "dmesg unreadable"
    lines = [line.split("] ", 1)[-1] for line in log.splitlines() if "kvm" in line.lower() and "loaded" in line]
    return lines[-1] if lines else "no KVM line in dmesg"


class Guest:
    def __init__(self, image_dir, work, sim_mqtt_port, sim_https_port):
        self.image_dir = image_dir
        self.work = work
        self.share = os.path.join(work, "share")
        for d in ("cmd", "out", "files"):
            os.makedirs(os.path.join(self.share, d), exist_ok=True)
        self.serial = os.path.join(work, "serial.log")
        self.tls_port = free_port()  # host 127.0.0.1 -> guest 8883
        self.methods_port = free_port()  # host 127.0.0.1 -> guest 443
        self.sim_mqtt_port = sim_mqtt_port
        self.sim_https_port = sim_https_port
        self.proc = None
        self.boot_id = None
        self.boots = 0
        self.seq = 0
        self.kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
        if not self.kvm:
            print("vm: no /dev/kvm: QEMU's TCG emulation runs the guest (slower)", flush=True)
        self.accel = ["-accel", "kvm"] if self.kvm else ["-accel", "tcg,thread=multi"]

    # ------------------------------------------------------------------ power
    def qemu_command(self):
        relay = "cmd:socat - TCP:127.0.0.1:{}"
        nic = ",".join([
            "user", "model=virtio-net-pci", "restrict=on",
            f"hostfwd=tcp:127.0.0.1:{self.tls_port}-:8883",
            f"hostfwd=tcp:127.0.0.1:{self.methods_port}-:443",
            "guestfwd=tcp:10.0.2.100:8883-" + relay.format(self.sim_mqtt_port),
            "guestfwd=tcp:10.0.2.100:443-" + relay.format(self.sim_https_port),
        ])
        d = self.image_dir
        return [
            "qemu-system-x86_64", *self.accel, "-smp", "2", "-m", "1024",
            "-display", "none", "-monitor", "none", "-serial", f"file:{self.serial}.{self.boots}",
            "-kernel", self.kernel(), "-initrd", os.path.join(d, "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=0 net.ifnames=0",
            "-drive", f"file={os.path.join(d, 'root.img')},format=raw,if=virtio,cache=directsync",
            "-virtfs", f"local,path={self.share},mount_tag=hostshare,security_model=none,id=hostshare",
            "-device", "virtio-rng-pci",
            "-nic", nic,
        ]

    def kernel(self):
        """The uncompressed kernel when build-guest.sh could extract it (PVH boot, faster)."""
        plain = os.path.join(self.image_dir, "vmlinux")
        return plain if os.path.exists(plain) else os.path.join(self.image_dir, "vmlinuz")

    def start(self, timeout=180):
        """Powers on and waits for the agent of the new boot."""
        self.boots += 1
        self.proc = subprocess.Popen(self.qemu_command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if self.accel[1] == "kvm" and not self._kernel_started(KVM_PROBE_SECONDS):
            # Some /dev/kvm run only guests built for them (e.g. the "kvm-pvm" module of nested
            # sandboxes, which hangs a stock kernel before its first line). Emulation still boots
            # Debian's own kernel, so a power cut stays a real one.
            print(f"vm: Debian's kernel printed nothing in {KVM_PROBE_SECONDS}s under KVM "
                  f"({kvm_kind()}): falling back to QEMU's TCG emulation (slower)", flush=True)
            self.proc.kill()
            self.proc.wait()
            self.accel = ["-accel", "tcg,thread=multi"]
            self.boots += 1
            self.proc = subprocess.Popen(self.qemu_command(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return self.wait_boot(timeout)

    def _kernel_started(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with open(f"{self.serial}.{self.boots}", errors="replace") as f:
                    if "Linux version" in f.read(65536):
                        return True
            except FileNotFoundError:
                pass
            time.sleep(0.5)
        return False

    def wait_boot(self, timeout=180):
        """Waits until the agent reports a boot id other than the last one."""
        path = os.path.join(self.share, "out", "boot")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"QEMU exited with {self.proc.returncode}: {self.proc.stdout.read().decode()}")
            try:
                with open(path) as f:
                    boot_id = f.read().strip()
            except FileNotFoundError:
                boot_id = None
            if boot_id and boot_id != self.boot_id:
                self.boot_id = boot_id
                return boot_id
            time.sleep(0.2)
        self.fail(f"the guest did not boot within {timeout}s")

    def power_cut(self):
        """SIGKILL of QEMU: the guest's RAM is gone, its disk keeps what it wrote."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def reboot(self, timeout=180):
        self.run("(sleep 0.5; systemctl reboot) >/dev/null 2>&1 &", timeout=10)
        return self.wait_boot(timeout)

    def poweroff(self, timeout=90):
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            self.run("(sleep 0.5; systemctl poweroff) >/dev/null 2>&1 &", timeout=10)
            self.proc.wait(timeout)
        except (GuestError, subprocess.TimeoutExpired):
            self.power_cut()

    # ------------------------------------------------------------------ commands
    def run(self, script, timeout=60, check=True):
        """Runs a shell script in the guest as root; returns (exit status, output)."""
        self.seq += 1
        name = f"c{self.seq}"
        cmd = os.path.join(self.share, "cmd", name + ".sh")
        out = os.path.join(self.share, "out", name + ".out")
        rc_path = os.path.join(self.share, "out", name + ".rc")
        with open(cmd + ".tmp", "w") as f:
            f.write("set -u\n" + script + "\n")
        os.rename(cmd + ".tmp", cmd)
        deadline = time.monotonic() + timeout
        while not os.path.exists(rc_path):
            if time.monotonic() > deadline:
                try:
                    os.unlink(cmd)
                except FileNotFoundError:
                    pass
                self.fail(f"guest command timed out after {timeout}s: {script}", journal=False)
            if self.proc.poll() is not None:
                self.fail(f"QEMU exited while running: {script}", journal=False)
            time.sleep(0.1)
        with open(rc_path) as f:
            rc = int(f.read().strip() or "-1")
        with open(out, errors="replace") as f:
            text = f.read()
        if check and rc != 0:
            raise GuestError(f"guest command exited {rc}: {script}\n{text}")
        return rc, text

    def out(self, script, timeout=60):
        return self.run(script, timeout)[1]

    def put(self, name, data, mode=0o644):
        """A file the guest reads at /host/files/NAME."""
        path = os.path.join(self.share, "files", name)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.chmod(path, mode)
        return f"/host/files/{name}"

    def get(self, guest_path):
        rc, text = self.run(f"cat '{guest_path}'")
        return text

    def wait(self, script, timeout, what, interval=0.5):
        """Runs script until it exits 0; its output."""
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            rc, last = self.run(script, timeout=max(5, deadline - time.monotonic()), check=False)
            if rc == 0:
                return last
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout}s waiting for {what}: {last}")
            time.sleep(interval)

    # ------------------------------------------------------------------ failure
    def journal(self):
        """The guest's journal of this boot, or the serial console if the agent is gone."""
        try:
            if self.proc and self.proc.poll() is None:
                return self.run("journalctl -b --no-pager -o short-monotonic | tail -n 400", timeout=30,
                                check=False)[1]
        except GuestError:
            pass
        try:
            with open(f"{self.serial}.{self.boots}", errors="replace") as f:
                return "(serial console)\n" + f.read()[-30000:]
        except FileNotFoundError:
            return "(no serial log)"

    def fail(self, message, journal=True):
        text = self.journal() if journal else self.serial_tail()
        raise GuestError(f"{message}\n---- guest journal/console ----\n{text}")

    def serial_tail(self):
        try:
            with open(f"{self.serial}.{self.boots}", errors="replace") as f:
                return f.read()[-8000:]
        except FileNotFoundError:
            return "(no serial log)"

    def close(self):
        self.poweroff()
        shutil.rmtree(self.share, ignore_errors=True)
