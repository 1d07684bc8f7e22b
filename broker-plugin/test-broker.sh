#!/bin/sh
# Tests edgehub-plugin.so inside the real mosquitto, with a scripted stand-in for auth-cache
# (test-fake-daemon.py) and a daemon's view of the bus (mosquitto_sub on the internal listener). The whole hub (real daemons, the simulator) is tests/integration's job.
set -eu

broker="$1"
plugin=$(readlink -f "$2")
[ -x "$(command -v mosquitto_pub)" ] || { echo "mosquitto_pub missing: skipped"; exit 77; }

dir=$(mktemp -d /tmp/edgehub-broker-test-XXXXXX)
pid=
fakes=
here=$(dirname "$(readlink -f "$0")")
cleanup() {
        for p in $fakes; do kill "$p" 2>/dev/null || true; done
        [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
        rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# Started as root, mosquitto drops to user mosquitto before it binds the Unix socket and loads us.
chmod 755 "$dir"
mkdir -m 777 "$dir/run"
# The ingest log's folder, which edgehub-run creates for the broker's user.
mkdir -p "$dir/store/ingest"
chmod 777 "$dir/store/ingest"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cat > "$dir/edgehub.yaml" <<YAML
edge:
  device_id: edge-1
  hub_hostname: myhub.azure-devices.net
  edgehub_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
listeners:
  tls: {port: 0}
storage:
  dir: $dir/store
  overflow: reject_new
runtime_dir: $dir/run
log_level: debug
YAML
chmod 644 "$dir/edgehub.yaml"

write_conf() {
        cat > "$dir/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous false
persistence false
log_dest stderr
log_type all
listener $port 127.0.0.1
listener 0 $dir/run/broker.sock
plugin $plugin
$1
CONF
}

# An ASan-built plugin needs the ASan runtime in the uninstrumented broker.
asan=$(ldd "$plugin" | awk '/libasan/ { print $3 }')
# clang's shared runtime is outside the loader's path: ask clang where it is.
if [ -z "$asan" ] && ldd "$plugin" | grep -q libclang_rt.asan; then
        asan=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
fi
if [ -n "$asan" ]; then
        export LD_PRELOAD="$asan"
        export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
fi

fail() {
        echo "FAIL: $*" >&2
        echo "--- broker log" >&2
        cat "$dir/broker.log" >&2 || true
        exit 1
}

# 1. Without plugin_opt_config the broker must not start.
write_conf ""
if timeout 10 "$broker" -c "$dir/mosquitto.conf" > "$dir/broker.log" 2>&1; then
        fail "mosquitto started without plugin_opt_config"
fi
grep -q "plugin_opt_config is required" "$dir/broker.log" || fail "no error about plugin_opt_config"
write_conf "plugin_opt_config $dir/missing.yaml"
if timeout 10 "$broker" -c "$dir/mosquitto.conf" > "$dir/broker.log" 2>&1; then
        fail "mosquitto started with a missing config file"
fi
grep -q "edgehub: Failed to load '$dir/missing.yaml'" "$dir/broker.log" || fail "no error about the config file"
write_conf "plugin_opt_config $dir/edgehub.yaml
plugin_opt_auth_timeout_ms 0"
if timeout 10 "$broker" -c "$dir/mosquitto.conf" > "$dir/broker.log" 2>&1; then
        fail "mosquitto started with a zero timeout"
fi

# 2. With it, the broker starts. Given WATCHDOG_USEC (what systemd's WatchdogSec= sets) the plugin pings
#    NOTIFY_SOCKET from mosquitto's loop, at half the timeout.
python3 - "$dir/run/notify.sock" "$dir/notify.log" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)  # mosquitto sends as its own user
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode(errors="replace").replace("\n", " ") + "\n")
PY
fakes="$fakes $!"
for i in $(seq 50); do [ -S "$dir/run/notify.sock" ] && break; sleep 0.1; done
write_conf "plugin_opt_config $dir/edgehub.yaml
plugin_opt_auth_timeout_ms 500"
NOTIFY_SOCKET="$dir/run/notify.sock" WATCHDOG_USEC=400000 "$broker" -c "$dir/mosquitto.conf" > "$dir/broker.log" 2>&1 &
pid=$!
for i in $(seq 50); do
        [ -S "$dir/run/broker.sock" ] && grep -q "running" "$dir/broker.log" && break
        kill -0 "$pid" 2>/dev/null || fail "mosquitto exited"
        sleep 0.1
done
[ -S "$dir/run/broker.sock" ] || fail "no internal listener"
grep -q "edgehub: edgehub plugin: internal listener $dir/run/broker.sock" "$dir/broker.log" || fail "plugin did not log its start"
grep -q "pinging the systemd watchdog every 200 ms" "$dir/broker.log" || fail "the plugin did not take WATCHDOG_USEC"
sleep 1.2
pings=$(grep -c "WATCHDOG=1" "$dir/notify.log" || true)
[ "$pings" -ge 4 ] || fail "expected a watchdog ping every 200 ms, got $pings in 1.2 s"

sas="SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fd&sig=AAAA&se=4102444800"

# 3. While auth-cache is not running a device is not admitted, but not told "not authorised" either (the
#    Azure SDKs never retry that): mosquitto closes the connection without a CONNACK.
if out=$(mosquitto_pub -h 127.0.0.1 -p "$port" -i d -u "myhub.azure-devices.net/d/?api-version=2021-04-12" \
                -P "$sas" -t devices/d/messages/events/ -m x -q 1 2>&1); then
        fail "device admitted without auth-cache"
fi
echo "$out" | grep -qi "not authori" && fail "device told 'not authorised' while auth-cache is down: $out"
grep -q "edgehub: Client 'd' not admitted: auth-cache unavailable" "$dir/broker.log" || fail "no log of the refusal"
# (mosquitto logs a refused client by its address: it drops the id before the CONNACK)
grep -q "Sending CONNACK to 127.0.0.1" "$dir/broker.log" && fail "a CONNACK was sent while auth-cache is down"

# 4. Our internal username is refused on TCP.
if mosquitto_pub -h 127.0.0.1 -p "$port" -i x -u '$edgehub/x' -t '$edgehub/a' -m x -q 1 2>/dev/null; then
        fail "internal username admitted over TCP"
fi

# 5. An internal client on the Unix socket is admitted without a password, and may publish under $edgehub/.
mosquitto_pub --unix "$dir/run/broker.sock" -i '$edgehub/test' -u '$edgehub/test' -t '$edgehub/hello' -m x -q 1 \
        || fail "internal client refused"

# 6. ... but nowhere else: an MQTT v5 publisher sees 0x87 (not authorised).
out=$(mosquitto_pub -V mqttv5 --unix "$dir/run/broker.sock" -i '$edgehub/test' -u '$edgehub/test' \
        -t devices/d/messages/events/ -m x -q 1 2>&1 || true)
grep -q "Denied PUBLISH from \$edgehub/test" "$dir/broker.log" || fail "internal publish outside \$edgehub/ not denied: $out"

# 7. $edgehub/kick disconnects a client by id.
mosquitto_sub --unix "$dir/run/broker.sock" -i '$edgehub/victim' -u '$edgehub/victim' -t '$edgehub/none' \
        > /dev/null 2>&1 &
sub=$!
for i in $(seq 50); do
        grep -q "as \$edgehub/victim" "$dir/broker.log" && break
        sleep 0.1
done
mosquitto_pub --unix "$dir/run/broker.sock" -i '$edgehub/kicker' -u '$edgehub/kicker' -t '$edgehub/kick' \
        -m '$edgehub/victim' -q 1 || fail "kick not published"
for i in $(seq 50); do
        grep -q "Disconnected client '\$edgehub/victim'" "$dir/broker.log" && break
        sleep 0.1
done
kill "$sub" 2>/dev/null || true
wait "$sub" 2>/dev/null || true
grep -q "edgehub: Disconnected client '\$edgehub/victim' at the request of '\$edgehub/kicker'" "$dir/broker.log" \
        || fail "kick not done"

# 8. With a (scripted) auth-cache: the device is admitted, its telemetry is in the ingest log before the
#    PUBACK (hub-store is not asked), and the daemons hear on the bus of it connecting and going away.
fake() { # name, statuses...
        name=$1
        shift
        rm -f "$dir/run/$name.sock"
        python3 "$here/test-fake-daemon.py" "$dir/run/$name.sock" "$dir/$name.log" "$@" &
        fakes="$fakes $!"
        eval "${name%-*}_pid=$!"
        for i in $(seq 50); do [ -S "$dir/run/$name.sock" ] && return; sleep 0.1; done
        fail "fake $name did not start"
}
pubacks() { grep -c "Sending PUBACK to d " "$dir/broker.log" || true; }
device_pub() { # extra mosquitto_pub options...
        timeout 3 mosquitto_pub -h 127.0.0.1 -p "$port" -i d -u "myhub.azure-devices.net/d/?api-version=2021-04-12" \
                -P "$sas" -t devices/d/messages/events/a=1 "$@" 2>> "$dir/pub.err"
}
presence_count() { grep -c "^\$edgehub/presence client:d $1\$" "$dir/presence.log" || true; }
log_bytes() { cat "$dir"/store/ingest/*.log 2>/dev/null | wc -c; }

# 8a. auth-cache says the credentials are wrong (EACCES): now, and only now, "not authorised".
fake auth-cache 13
out=$(timeout 3 mosquitto_pub -h 127.0.0.1 -p "$port" -i d -u "myhub.azure-devices.net/d/?api-version=2021-04-12" \
        -P "$sas" -t devices/d/messages/events/ -m x -q 1 2>&1 || true)
echo "$out" | grep -qi "not authori" || fail "wrong credentials not refused as unauthorised: $out"
grep -q "edgehub: Client 'd' refused by auth-cache: Permission denied" "$dir/broker.log" || fail "no log of the refusal"
kill "$auth_pid"
wait "$auth_pid" 2>/dev/null || true

fake auth-cache 0
: > "$dir/presence.log"
mosquitto_sub -V mqttv5 --unix "$dir/run/broker.sock" -i '$edgehub/watch' -u '$edgehub/watch' -q 1 \
        -t '$edgehub/presence' -F '%t %P %p' >> "$dir/presence.log" 2>/dev/null &
fakes="$fakes $!"
for i in $(seq 50); do grep -q "Received SUBSCRIBE from \$edgehub/watch" "$dir/broker.log" && break; sleep 0.1; done
device_pub -m hello -q 1 || fail "telemetry not acknowledged"
[ "$(pubacks)" = 1 ] || fail "expected one PUBACK"
grep -q hello "$dir"/store/ingest/*.log || fail "acknowledged telemetry not in the ingest log"
printf '%s\n' '$edgehub/presence client:d connected' '$edgehub/presence client:d disconnected' > "$dir/want.log"
for i in $(seq 30); do cmp -s "$dir/want.log" "$dir/presence.log" && break; sleep 0.1; done
diff -u "$dir/want.log" "$dir/presence.log" || fail "the bus did not see connect and disconnect (and only them)"

# 9. A persistent session: its end is reported once more by mosquitto when a new connection takes it over;
#    the daemons must hear "connected" last.
: > "$dir/presence.log"
device_sub() {
        mosquitto_sub -h 127.0.0.1 -p "$port" -i d -u "myhub.azure-devices.net/d/?api-version=2021-04-12" \
                -P "$sas" -c -q 1 -t 'devices/d/messages/devicebound/#' > /dev/null 2>&1 &
        sub=$!
        fakes="$fakes $sub"
}
device_sub
for i in $(seq 50); do [ "$(presence_count connected)" = 1 ] && break; sleep 0.1; done
kill -9 "$sub"
wait "$sub" 2>/dev/null || true
for i in $(seq 50); do [ "$(presence_count disconnected)" = 1 ] && break; sleep 0.1; done
device_sub
for i in $(seq 50); do grep -q "Sending CONNACK to d (1, 0)" "$dir/broker.log" && break; sleep 0.1; done
grep -q "Sending CONNACK to d (1, 0)" "$dir/broker.log" || fail "the persistent session was not resumed"
sleep 0.3
printf '%s\n' '$edgehub/presence client:d connected' '$edgehub/presence client:d disconnected' \
        '$edgehub/presence client:d connected' > "$dir/want.log"
diff -u "$dir/want.log" "$dir/presence.log" || fail "the takeover of a persistent session reported it gone"

# 9b. A daemon that (re)joins the bus while the device stays connected and publishes nothing (a restarted
#     hub-store) asks who is connected: the plugin tells it, and it alone, that the device is.
out=$(timeout 10 mosquitto_rr --unix "$dir/run/broker.sock" -i '$edgehub/asker' -u '$edgehub/asker' -q 1 \
        -t '$edgehub/presence-query' -e '$edgehub/presence' -m '' -F '%t %P %p' -W 5 2>&1) \
        || fail "no answer to a presence query: $out"
[ "$out" = '$edgehub/presence client:d connected' ] || fail "unexpected answer to a presence query: $out"
sleep 0.3
[ "$(presence_count connected)" = 2 ] || fail "the answer to one daemon's query reached another"
kill "$sub"
wait "$sub" 2>/dev/null || true

# 10. Store full (reject_new; hub-store's importer publishes the room file, proto/store/ingest-log.h):
#     no PUBACK, the device is disconnected and will resend; QoS 0 is dropped instead.
room() { # allow: the log bytes that still fit after a position that is not the plugin's
        python3 -c 'import struct, sys, os
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)  # in place: the plugin maps it
os.pwrite(fd, struct.pack("=IIQQ64s", 0x45524f31, 2, int(sys.argv[2]), 0, b""), 0)' "$dir/run/ingest-room" "$1"
}
room 0
sleep 0.2 # the plugin looks for a missing room file every 100 ms
before=$(pubacks)
if device_pub -m full -q 1; then fail "telemetry acknowledged while the store is full"; fi
[ "$(pubacks)" = "$before" ] || fail "PUBACK sent for telemetry that was not stored"
grep -q "edgehub: Telemetry of 'd' not stored, the store is full, disconnecting it" "$dir/broker.log" \
        || fail "no log of the full store"
device_pub -m full -q 0 || fail "QoS 0 publisher cut off"
grep -q "dropped it (QoS 0)" "$dir/broker.log" || fail "QoS 0 telemetry not dropped"
grep -q full "$dir"/store/ingest/*.log && fail "refused telemetry in the ingest log"
room 18446744073709551615 # what drop_oldest publishes: room for anything

# 11. Over IoT Hub's 256 KiB: disconnected without an acknowledgement, nothing written.
head -c 262145 /dev/zero > "$dir/big"
bytes=$(log_bytes)
before=$(pubacks)
if device_pub -f "$dir/big" -q 1; then fail "oversize telemetry acknowledged"; fi
[ "$(pubacks)" = "$before" ] || fail "PUBACK sent for oversize telemetry"
grep -q "Client d disconnected due to oversize payload" "$dir/broker.log" || fail "oversize not disconnected"
[ "$(log_bytes)" = "$bytes" ] || fail "oversize telemetry reached the ingest log"

# 12. The broker shuts down cleanly (cleanup unregisters everything).
kill "$pid"
wait "$pid" || fail "mosquitto exited with $?"
pid=
grep -E "AddressSanitizer|LeakSanitizer|runtime error|: Error" "$dir/broker.log" && fail "errors in the broker log"
[ -n "${EDGEHUB_TEST_VERBOSE:-}" ] && cat "$dir/broker.log"
echo "ok"
