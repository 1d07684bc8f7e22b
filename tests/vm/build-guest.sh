#!/bin/sh
# Builds the VM stage's guest from Debian packages only: debootstrap bookworm from the
# machine's apt mirror, Debian's kernel, and the edgehub .debs built from this tree
# (packaging/build-debs) installed with apt inside the chroot. No loop mount: the ext4
# image is written from the directory with mkfs.ext4 -d.
#   tests/vm/build-guest.sh OUTDIR
# leaves OUTDIR/root.img, OUTDIR/vmlinuz (and vmlinux, the same uncompressed), OUTDIR/initrd.img
# (and OUTDIR/debs/).
# The guest runs /usr/local/sbin/vm-agent (tests/vm/vm-agent), which runs the test
# driver's scripts from the 9p share "hostshare" mounted at /host.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(realpath -m "$1")
mkdir -p "$out"
rootfs="$out/rootfs"
rm -rf "$rootfs"

# The machine's own Debian mirror (deb822 or one-line sources).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

# The packages build (CPU) while debootstrap downloads (network).
echo "build-guest: building the .debs in the background"
(cd "$root" && packaging/build-debs "$out/debs" >"$out/build-debs.log" 2>&1) &
debs_pid=$!

echo "build-guest: debootstrap bookworm from $mirror"
# kernel, systemd as PID 1, the network, the 9p share (kmod loads its modules) and what the
# test scripts use; the edgehub package brings mosquitto and its libraries.
if ! debootstrap --variant=minbase \
	--include=systemd,systemd-sysv,udev,kmod,linux-image-amd64,initramfs-tools,zstd,iproute2,procps,ca-certificates,openssl,mosquitto,dbus \
	bookworm "$rootfs" "$mirror" >"$out/debootstrap.log" 2>&1; then
	tail -n 30 "$out/debootstrap.log"
	tail -n 30 "$rootfs/debootstrap/debootstrap.log" 2>/dev/null || true
	kill "$debs_pid" 2>/dev/null || true
	exit 1
fi

if ! wait "$debs_pid"; then
	tail -n 40 "$out/build-debs.log"
	echo "build-guest: build-debs failed" >&2
	exit 1
fi

echo "build-guest: apt-get install the edgehub .debs in the chroot"
mkdir -p "$rootfs/tmp/debs"
cp "$out"/debs/edgehub_*.deb "$rootfs/tmp/debs/"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"
trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
chroot "$rootfs" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/debs/edgehub_*.deb' \
	>"$out/chroot-install.log" 2>&1 || { tail -n 40 "$out/chroot-install.log"; exit 1; }
chroot "$rootfs" apt-get clean
umount "$rootfs/proc"
trap - EXIT
rm -rf "$rootfs/tmp/debs" "$rootfs/var/lib/apt/lists"/*_Packages
: >"$rootfs/etc/resolv.conf"

echo "build-guest: configuring the guest"
echo edgehub-vm >"$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 edgehub-vm\n' >"$rootfs/etc/hosts"
cat >"$rootfs/etc/fstab" <<FSTAB
/dev/vda / ext4 rw,errors=remount-ro 0 1
hostshare /host 9p trans=virtio,version=9p2000.L,msize=262144,nofail 0 0
FSTAB
mkdir -p "$rootfs/host" "$rootfs/var/log/journal"
# QEMU user networking always hands out 10.0.2.15 behind 10.0.2.2: set it statically, before
# network.target (which the edgehub units start after), in a fraction of the time networkd
# takes to start under emulation at each of the stage's boots.
cat >"$rootfs/etc/systemd/system/vm-net.service" <<UNIT
[Unit]
Description=the VM stage's network (QEMU user networking, static)
Wants=network.target sys-subsystem-net-devices-eth0.device
After=sys-subsystem-net-devices-eth0.device
Before=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/sbin/ip link set lo up
ExecStart=/sbin/ip link set eth0 up
ExecStart=/sbin/ip addr add 10.0.2.15/24 dev eth0
ExecStart=/sbin/ip route add default via 10.0.2.2

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/vm-net.service "$rootfs/etc/systemd/system/multi-user.target.wants/vm-net.service"
# The journal survives reboots (the reboot and power-cut tests read the previous boot's).
mkdir -p "$rootfs/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=persistent\n' >"$rootfs/etc/systemd/journald.conf.d/vm.conf"
install -m 0755 "$here/vm-agent" "$rootfs/usr/local/sbin/vm-agent"
cat >"$rootfs/etc/systemd/system/vm-agent.service" <<UNIT
[Unit]
Description=the VM stage's test agent (runs the host's scripts from /host)
# Up as soon as the share is: the host's waits (units active, the store opened) say what they
# wait for, and the twenty-odd boots of the stage do not each wait for basic.target.
DefaultDependencies=no
RequiresMountsFor=/host

[Service]
ExecStart=/usr/local/sbin/vm-agent
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/vm-agent.service "$rootfs/etc/systemd/system/multi-user.target.wants/vm-agent.service"
# edgehub.target is started by the tests, not at boot (the reboot test enables it).
rm -f "$rootfs/etc/systemd/system/multi-user.target.wants/edgehub.target"
# What a gateway running only edgehub does not start, and what would compete with it for the
# emulated CPU at every boot: Debian's own mosquitto.service (edgehub-broker.service is ours),
# logins, and periodic maintenance.
for unit in mosquitto.service e2scrub_reap.service e2scrub_all.timer fstrim.timer apt-daily.timer \
	apt-daily-upgrade.timer systemd-logind.service getty@tty1.service serial-getty@ttyS0.service; do
	ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# No password prompts, no first-boot questions.
chroot "$rootfs" passwd -d root >/dev/null
rm -f "$rootfs/etc/machine-id" && : >"$rootfs/etc/machine-id"
ln -sf /dev/null "$rootfs/etc/systemd/system/systemd-firstboot.service"

# A small initramfs (the virtio disk and ext4 only, not MODULES=most): every boot, and there
# are twenty-odd, unpacks it.
printf 'MODULES=list\nCOMPRESS=zstd\n' >"$rootfs/etc/initramfs-tools/conf.d/vm.conf"
printf 'virtio_pci\nvirtio_blk\next4\n' >>"$rootfs/etc/initramfs-tools/modules"
chroot "$rootfs" update-initramfs -u -k all >"$out/initramfs.log" 2>&1 || { cat "$out/initramfs.log"; exit 1; }

cp "$rootfs"/boot/vmlinuz-* "$out/vmlinuz"
# The same kernel uncompressed: QEMU boots its ELF through the PVH entry (Debian's kernel has
# CONFIG_PVH), which skips decompressing it in emulation, seconds of every boot under TCG.
/usr/bin/python3 - "$out/vmlinuz" "$out/vmlinux" <<'PY' || rm -f "$out/vmlinux"
import lzma, sys
data = open(sys.argv[1], "rb").read()
at = data.find(b"\xfd7zXZ\x00")
elf = lzma.LZMADecompressor().decompress(data[at:]) if at >= 0 else b""
if not elf.startswith(b"\x7fELF"):
    sys.exit("build-guest: no xz-compressed ELF in vmlinuz: booting it compressed")
open(sys.argv[2], "wb").write(elf)
PY
cp "$rootfs"/boot/initrd.img-* "$out/initrd.img"
echo "build-guest: mkfs.ext4 -d (no loop mount)"
rm -f "$out/root.img"
mkfs.ext4 -q -F -L edgehub-root -d "$rootfs" "$out/root.img" 2G
rm -rf "$rootfs"
ls -la "$out"
