#!/bin/sh
# The plugin exports exactly mosquitto's three v5 entry points (STYLE.md §7).
set -eu
so="$1"
got=$(nm -D --defined-only "$so" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "W" { print $3 }' | sort)
want=$(printf '%s\n' mosquitto_plugin_cleanup mosquitto_plugin_init mosquitto_plugin_version)
if [ "$got" != "$want" ]; then
        echo "unexpected exports of $so:" >&2
        echo "$got" >&2
        exit 1
fi
# Nothing of the broker is linked in: its symbols stay undefined until it loads us.
if ldd "$so" | grep -q libmosquitto; then
        echo "$so is linked against libmosquitto" >&2
        exit 1
fi
echo "ok: $(echo $got)"
