#!/bin/sh
# The Debian packages end to end, on this machine (root, Debian 12; installs and purges the
# package, so not on a machine where edgehub is installed for real):
#   build with dpkg-buildpackage, lintian, apt-get install ./*.deb, systemd-analyze verify and
#   security (fails above 2.0) on the installed units, the installed binaries and config run by
#   edgehub-run against the IoT Hub simulator (a device on 8883 trusting the generated CA,
#   hubctl status), apt-get remove keeps data and config, apt-get purge leaves nothing.
set -eu
cd "$(dirname "$0")/../.."
root=$PWD
MAX_EXPOSURE=2.0

fail() {
	echo "test-packages: FAIL: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root"
package_status() {
	dpkg-query -W -f='${Status}' edgehub 2>/dev/null | sed 's/.* //' || true
}
case $(package_status) in
"" | not-installed) ;;
*) fail "edgehub is installed on this machine ($(package_status)); purge it first" ;;
esac
for p in /etc/edgehub /var/lib/edgehub; do
	[ ! -e "$p" ] || fail "$p exists before the install"
done

out=$(mktemp -d /tmp/edgehub-debs.XXXXXX)
chmod 0755 "$out" # apt's _apt sandbox reads the .deb from here
cleanup() {
	rm -rf "$out"
	case $(package_status) in
	"" | not-installed) ;;
	*) DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq edgehub >/dev/null 2>&1 || true ;;
	esac
}
trap cleanup EXIT

echo "== build the packages"
packaging/build-debs "$out" >"$out/build.log" 2>&1 || { tail -n 40 "$out/build.log"; fail "build-debs"; }
ls "$out"/*.deb

echo "== lintian"
# Errors and warnings fail; each tag we keep is overridden with its reason in
# packaging/debian/edgehub.lintian-overrides.
lintian --fail-on error,warning "$out"/*.changes || fail "lintian"

echo "== apt-get install"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$out"/edgehub_*.deb 2>&1 | tee "$out/install.log" |
	grep '^edgehub:' || true
grep -q "devices must trust the CA certificate /etc/edgehub/ca.crt" "$out/install.log" ||
	fail "postinst did not say where the CA is"
getent passwd edgehub >/dev/null || fail "no system user edgehub"
[ "$(stat -c '%U:%G %a' /var/lib/edgehub)" = "edgehub:edgehub 750" ] || fail "/var/lib/edgehub: $(stat -c '%U:%G %a' /var/lib/edgehub)"
[ "$(stat -c '%U:%G %a' /etc/edgehub)" = "root:edgehub 750" ] || fail "/etc/edgehub: $(stat -c '%U:%G %a' /etc/edgehub)"
[ "$(stat -c '%U:%G %a' /var/lib/edgehub-modules)" = "edgehub:edgehub 711" ] ||
	fail "/var/lib/edgehub-modules: $(stat -c '%U:%G %a' /var/lib/edgehub-modules)"
[ "$(stat -c '%U:%G %a' /run/edgehub)" = "edgehub:edgehub 711" ] || fail "/run/edgehub: $(stat -c '%U:%G %a' /run/edgehub)"
[ "$(stat -c '%U:%G %a' /etc/edgehub/config.yaml)" = "root:edgehub 640" ] || fail "config.yaml mode"
[ "$(stat -c '%a' /etc/edgehub/ca/ca.key)" = "600" ] || fail "the CA key is not 0600"
[ "$(stat -c '%U:%G %a' /etc/edgehub/server.key)" = "root:edgehub 640" ] || fail "server.key mode"
openssl verify -CAfile /etc/edgehub/ca.crt /etc/edgehub/server.crt >/dev/null || fail "server.crt not signed by ca.crt"
grep -q "^plugin .*/edgehub-plugin.so" /etc/edgehub/mosquitto.conf || fail "no /etc/edgehub/mosquitto.conf"
grep -q "^log_dest syslog$" /etc/edgehub/mosquitto.conf || fail "the broker does not log to syslog"
for page in hubctl edgehub-run edgehub-broker $(ls /usr/libexec/edgehub | grep -v '\.' | grep -v broker-config); do
	[ -n "$(find /usr/share/man -name "$page.[18].gz")" ] || fail "no man page for $page"
done
bash -c '. /usr/share/bash-completion/bash_completion; . /usr/share/bash-completion/completions/hubctl; complete -p hubctl' |
	grep -q _hubctl || fail "no bash completion for hubctl"

echo "== a bad configuration: exit status 2, file:line and key named"
bad=$(mktemp /tmp/edgehub-bad.XXXXXX.yaml)
sed 's/^\(  *\)max_bytes:.*/\1max_bytes: 12 parsecs/' /etc/edgehub/config.yaml >"$bad"
for daemon in /usr/libexec/edgehub/edgehub-*; do
	case $daemon in *broker-config) continue ;; esac
	status=0
	"$daemon" --config "$bad" 2>"$bad.err" || status=$?
	[ "$status" = 2 ] || fail "$daemon exited $status on a bad configuration"
	grep -q "^<3>$bad:[0-9]*:[0-9]*: key 'storage.max_bytes'" "$bad.err" || fail "$daemon: $(cat "$bad.err")"
done
rm -f "$bad" "$bad.err"

echo "== systemd-analyze verify and security"
units=$(dpkg -L edgehub | grep -E '^/lib/systemd/system/edgehub.*\.(service|target)$')
[ -n "$units" ] || fail "no units installed"
man_opt=""
command -v man >/dev/null || man_opt="--man=no"
# shellcheck disable=SC2086
SYSTEMD_LOG_LEVEL=notice systemd-analyze verify $man_opt $units || fail "systemd-analyze verify"
for unit in $units; do
	case $unit in *.service) ;; *) continue ;; esac
	name=$(basename "$unit")
	score=$(systemd-analyze security --offline=yes "$name" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
	[ -n "$score" ] || fail "no security score for $name"
	echo "$name: $score"
	awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' || fail "$name exposure $score > $MAX_EXPOSURE"
done

echo "== the installed hub against the simulator"
/usr/bin/python3 tests/packaging/installed_hub.py || fail "the installed hub"

echo "== apt-get remove keeps data and config"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq edgehub >/dev/null
for p in /etc/edgehub/config.yaml /etc/edgehub/ca.crt /etc/edgehub/server.key /var/lib/edgehub; do
	[ -e "$p" ] || fail "$p is gone after remove"
done
[ -n "$(ls -A /var/lib/edgehub)" ] || fail "/var/lib/edgehub is empty after remove"
[ ! -e /usr/bin/hubctl ] || fail "/usr/bin/hubctl left after remove"

echo "== apt-get purge leaves nothing"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq edgehub >/dev/null
left=""
for p in /etc/edgehub /var/lib/edgehub /var/lib/edgehub-modules /run/edgehub /usr/libexec/edgehub /usr/bin/hubctl /usr/bin/edgehub-run \
	/lib/systemd/system/edgehub.target /lib/systemd/system/edgehub-broker.service \
	/usr/lib/sysusers.d/edgehub.conf /usr/lib/tmpfiles.d/edgehub.conf; do
	[ ! -e "$p" ] || left="$left $p"
done
left="$left $(find /etc/systemd/system -name 'edgehub*' 2>/dev/null | tr '\n' ' ')"
left="$left $(dpkg-statoverride --list | grep edgehub | tr '\n' ' ')"
[ -z "$(echo "$left" | tr -d ' ')" ] || fail "left after purge:$left"
case $(package_status) in
"" | not-installed) ;;
*) fail "dpkg still has edgehub: $(package_status)" ;;
esac
# The system user stays, as Debian leaves system users: a reused uid could own stray files.
echo "test-packages: OK"
