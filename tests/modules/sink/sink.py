#!/usr/bin/python3
"""A module that receives on input in1 and appends each message to a file.

Reads what edgehub-agent gives every module (EdgeHubConnectionString,
EdgeModuleCACertificateFile) and connects with paho-mqtt as the Azure SDKs
do: client id {device}/{module}, SAS token for {hub}/devices/{d}/modules/{m},
TLS to GatewayHostName (host[:port]).

    sink.py OUTPUT_FILE
"""
import base64
import hashlib
import hmac
import json
import os
import signal
import sys
import time
import urllib.parse

import paho.mqtt.client as mqtt


def main():
    out = sys.argv[1]
    fields = dict(p.split("=", 1) for p in os.environ["EdgeHubConnectionString"].split(";") if "=" in p)
    hub, device, module, key = fields["HostName"], fields["DeviceId"], fields["ModuleId"], fields["SharedAccessKey"]
    host, _, port = fields.get("GatewayHostName", hub).partition(":")
    resource = urllib.parse.quote(f"{hub}/devices/{device}/modules/{module}", safe="-_.!~*'()")
    se = int(time.time()) + 3600
    sig = base64.b64encode(hmac.new(base64.b64decode(key), f"{resource}\n{se}".encode(), hashlib.sha256).digest())
    token = f"SharedAccessSignature sr={resource}&sig={urllib.parse.quote(sig.decode(), safe='')}&se={se}"

    client = mqtt.Client(client_id=f"{device}/{module}", protocol=mqtt.MQTTv311, clean_session=False)
    client.username_pw_set(f"{hub}/{device}/{module}/?api-version=2021-04-12", token)
    client.tls_set(ca_certs=os.environ.get("EdgeModuleCACertificateFile"))

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
    client.connect(host, int(port or 8883), keepalive=30)
    client.loop_forever(retry_first_connection=True)


if __name__ == "__main__":
    main()
