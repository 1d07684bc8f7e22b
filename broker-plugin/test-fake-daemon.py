#!/usr/bin/env python3
"""A scripted stand-in for auth-cache (or any daemon the plugin calls), for test-broker.sh.

Usage: test-fake-daemon.py SOCKET LOG STATUS...
Answers each request (proto/ipc/frame.h framing) with the next STATUS (a number, 0 or
an errno; the last one repeats) in the reply type that follows the request type
(proto/ipc/wire.h), and appends "TYPE IDENTITY-OR-CLIENT-ID CONNECTED" to LOG.
"""
import os
import socket
import struct
import sys

WIRE_STATUS, WIRE_CLIENT_ID, WIRE_IDENTITY, WIRE_CONNECTED = 1, 3, 6, 11


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def fields(body):
    out, pos = {}, 2
    while pos < len(body):
        tag, length = struct.unpack(">HI", body[pos:pos + 6])
        out.setdefault(tag, body[pos + 6:pos + 6 + length])
        pos += 6 + length
    return out


def main():
    path, log, statuses = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o777)  # the broker runs as user mosquitto
    srv.listen(8)
    n = 0
    while True:
        conn, _ = srv.accept()
        try:
            while True:
                (length,) = struct.unpack(">I", read_exact(conn, 4))
                body = read_exact(conn, length)
                (rtype,) = struct.unpack(">H", body[:2])
                f = fields(body)
                who = (f.get(WIRE_IDENTITY) or f.get(WIRE_CLIENT_ID) or b"").decode()
                connected = struct.unpack(">I", f[WIRE_CONNECTED])[0] if WIRE_CONNECTED in f else ""
                with open(log, "a") as out:
                    out.write(f"{rtype} {who} {connected}\n")
                status = statuses[min(n, len(statuses) - 1)]
                n += 1
                reply = struct.pack(">HHII", rtype + 1, WIRE_STATUS, 4, status)
                conn.sendall(struct.pack(">I", len(reply)) + reply)
        except (EOFError, ConnectionError):
            conn.close()


if __name__ == "__main__":
    main()
