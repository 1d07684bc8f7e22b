// An IoT Edge module written with the Azure IoT Node.js SDK, unmodified API:
// ModuleClient.fromEnvironment reads EdgeHubConnectionString and
// EdgeModuleCACertificateFile (set by edgehub-agent), reads its twin, sends a
// message on output out1 every INTERVAL_MS (env, default 500) and answers
// the direct method "ping".
//
// Run by the agent as {"type": "process", "settings": {"path": "/usr/bin/node",
// "args": [".../index.cjs"]}}. Uses ./node_modules when installed (npm ci),
// else the simulator's (tests/simulator/node_modules).
// Prints one JSON line per event on stdout: {"module":"sample","event":"sent","n":3}
'use strict';
const fs = require('fs');
const path = require('path');

function sdk(name) {
  const local = path.join(__dirname, 'node_modules', name);
  return require(fs.existsSync(local) ? local : path.join(__dirname, '..', '..', 'simulator', 'node_modules', name));
}
const { ModuleClient, Message } = sdk('azure-iot-device');
const { Mqtt } = sdk('azure-iot-device-mqtt');

const intervalMs = Number(process.env.INTERVAL_MS || 500);
const moduleId = process.env.IOTEDGE_MODULEID || 'sample';
const emit = (o) => process.stdout.write(JSON.stringify({ module: moduleId, ...o }) + '\n');

async function main() {
  const client = await ModuleClient.fromEnvironment(Mqtt);
  client.on('error', (err) => emit({ event: 'error', error: String(err && err.message || err) }));
  await client.open();
  emit({ event: 'connected' });

  client.onMethod('ping', (request, response) => {
    emit({ event: 'method', name: 'ping', payload: request.payload });
    response.send(200, { pong: request.payload, module: moduleId }, () => {});
  });

  const twin = await client.getTwin();
  emit({ event: 'twin', desired: twin.properties.desired });
  twin.on('properties.desired', (patch) => emit({ event: 'desired', patch }));

  let n = 0;
  let sending = false;
  setInterval(async () => {
    if (sending) return;
    sending = true;
    const msg = new Message(JSON.stringify({ n, from: moduleId, at: Date.now() }));
    msg.contentType = 'application/json';
    msg.contentEncoding = 'utf-8';
    msg.properties.add('seq', String(n));
    try {
      await client.sendOutputEvent('out1', msg);
      emit({ event: 'sent', n });
      n++;
    } catch (err) {
      emit({ event: 'send-error', n, error: String(err && err.message || err) });
    } finally {
      sending = false;
    }
  }, intervalMs);

  process.on('SIGTERM', async () => {
    emit({ event: 'stopped', sent: n });
    try { await client.close(); } catch (e) { /* closing anyway */ }
    process.exit(0);
  });
}

main().catch((err) => {
  emit({ event: 'fatal', error: String(err && err.message || err) });
  process.exit(2);
});
