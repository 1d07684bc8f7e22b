#!/usr/bin/python3
"""A module that receives on input in1 and appends each message to a file.

Reads what edgehub-agent gives every module and connects with paho-mqtt as
the Azure SDKs do: client id {device}/{module}, SAS token for
{hub}/devices/{d}/modules/{m}, TLS to the gateway (host[:port]). The token
is signed by the workload API (IOTEDGE_WORKLOADURI, HTTP on a Unix socket;
the module never sees its key), or, for a module deployed with
settings.connectionString, with the key in EdgeHubConnectionString.

    sink.py OUTPUT_FILE
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import ssl
import sys
import time
import urllib.parse

import paho.mqtt.client as mqtt


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 on a Unix socket, as the SDKs reach the workload API."""

    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


def workload(method, path, body=None):
    """(status, JSON body) of a workload API call."""
    conn = UnixHTTPConnection(urllib.parse.urlparse(os.environ["IOTEDGE_WORKLOADURI"]).path)
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"} if body is not None else {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, json.loads(data) if data else None


def sign(resource, se):
    """The token's signature: by the workload API, or with the key of an opted-in connection string."""
    text = f"{resource}\n{se}".encode()
    if "IOTEDGE_WORKLOADURI" in os.environ:
        module, genid = os.environ["IOTEDGE_MODULEID"], os.environ["IOTEDGE_MODULEGENERATIONID"]
        status, body = workload("POST", f"/modules/{module}/genid/{genid}/sign?api-version=2019-01-30",
                                {"keyId": "primary", "algo": "HMACSHA256", "data": base64.b64encode(text).decode()})
        if status != 200:
            raise RuntimeError(f"workload API: {status} {body}")
        return body["digest"].encode()
    fields = dict(p.split("=", 1) for p in os.environ["EdgeHubConnectionString"].split(";") if "=" in p)
    return base64.b64encode(hmac.new(base64.b64decode(fields["SharedAccessKey"]), text, hashlib.sha256).digest())


def make_client():
    """A paho client set up as the Azure SDKs would: ({device}, {module}, client, host, port)."""
    hub, device, module = (os.environ["IOTEDGE_IOTHUBHOSTNAME"], os.environ["IOTEDGE_DEVICEID"],
                           os.environ["IOTEDGE_MODULEID"])
    if "IOTEDGE_WORKLOADURI" in os.environ:
        gateway = os.environ["IOTEDGE_GATEWAYHOSTNAME"]
    else:
        fields = dict(p.split("=", 1) for p in os.environ["EdgeHubConnectionString"].split(";") if "=" in p)
        gateway = fields.get("GatewayHostName", hub)
    host, _, port = gateway.partition(":")
    resource = urllib.parse.quote(f"{hub}/devices/{device}/modules/{module}", safe="-_.!~*'()")
    se = int(time.time()) + 3600
    sig = sign(resource, se)
    token = f"SharedAccessSignature sr={resource}&sig={urllib.parse.quote(sig.decode(), safe='')}&se={se}"

    client = mqtt.Client(client_id=f"{device}/{module}", protocol=mqtt.MQTTv311, clean_session=False)
    client.username_pw_set(f"{hub}/{device}/{module}/?api-version=2021-04-12", token)
    if "IOTEDGE_WORKLOADURI" in os.environ:
        status, body = workload("GET", "/trust-bundle?api-version=2019-01-30")
        if status != 200:
            raise RuntimeError(f"workload API: {status} {body}")
        client.tls_set_context(ssl.create_default_context(cadata=body["certificate"]))
    else:
        client.tls_set(ca_certs=os.environ.get("EdgeModuleCACertificateFile"))
    return device, module, client, host, int(port or 8883)


def main():
    out = sys.argv[1]
    device, module, client, host, port = make_client()

    def on_connect(c, userdata, flags, rc):
        print(json.dumps({"module": module, "event": "connected", "rc": rc}), flush=True)
        c.subscribe(f"devices/{device}/modules/{module}/inputs/#", qos=1)

    def on_message(c, userdata, msg):
        parts = msg.topic.split("/")
        with open(out, "a") as f:
            f.write(json.dumps({"input": parts[5] if len(parts) > 5 else "", "payload": msg.payload.decode(errors="replace")}) + "\n")

    client.on_connect = on_connect
    client.on_message = on_message
    signal.signal(signal.SIGTERM, lambda *a: (client.disconnect(), sys.exit(0)))
    client.connect(host, port, keepalive=30)
    client.loop_forever(retry_first_connection=True)


if __name__ == "__main__":
    main()
