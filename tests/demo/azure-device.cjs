// A child device written with the Azure IoT Node.js SDK, unmodified: it
// connects to the gateway (GatewayHostName in its connection string) over
// TLS, trusting the gateway's CA, and sends telemetry until SIGTERM.
//
//   node azure-device.cjs CONNECTION_STRING CA_FILE [INTERVAL_MS] [COUNT] [CERT_FILE KEY_FILE]
//
// With CERT_FILE and KEY_FILE it is an X.509 device (connection string with
// x509=true instead of SharedAccessKey).
//
// Prints one JSON line per event on stdout: {"event":"acked","n":12} ...
'use strict';
const fs = require('fs');
const path = require('path');
const modules = path.join(__dirname, '..', 'simulator', 'node_modules');
const { Client, Message } = require(path.join(modules, 'azure-iot-device'));
const { Mqtt } = require(path.join(modules, 'azure-iot-device-mqtt'));

const [connectionString, caFile, intervalArg, countArg, certFile, keyFile] = process.argv.slice(2);
if (!connectionString || !caFile) {
  console.error('usage: node azure-device.cjs CONNECTION_STRING CA_FILE [INTERVAL_MS] [COUNT]');
  process.exit(1);
}
const intervalMs = Number(intervalArg || 100);
const count = Number(countArg || 0); // 0 = until SIGTERM

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
// The SDK's fromConnectionString drops GatewayHostName for x509=true (device_client.js builds
// X509AuthenticationProvider from HostName and DeviceId only), so an X.509 device behind a gateway
// gets the same provider with the gateway added: what the SDK sends is otherwise unchanged.
function makeClient() {
  if (!certFile) return Client.fromConnectionString(connectionString, Mqtt);
  const { ConnectionString } = require(path.join(modules, 'azure-iot-common'));
  const { X509AuthenticationProvider } = require(path.join(modules, 'azure-iot-device', 'dist', 'x509_authentication_provider'));
  const cn = ConnectionString.parse(connectionString);
  return Client.fromAuthenticationProvider(new X509AuthenticationProvider({
    host: cn.HostName, deviceId: cn.DeviceId, gatewayHostName: cn.GatewayHostName
  }), Mqtt);
}
const client = makeClient();
let n = 0;
let acked = 0;
let stopping = false;
let inFlight = false;

async function sendNext() {
  if (stopping || inFlight || (count && n >= count)) return;
  inFlight = true;
  const seq = n;
  const msg = new Message(JSON.stringify({ seq, at: Date.now() }));
  msg.messageId = `demo-${seq}`;
  msg.contentType = 'application/json';
  msg.contentEncoding = 'utf-8';
  msg.properties.add('seq', String(seq));
  try {
    await client.sendEvent(msg);
    n++;
    acked++;
    emit({ event: 'acked', n: seq });
  } catch (err) {
    emit({ event: 'error', n: seq, error: String(err && err.message || err) });
  } finally {
    inFlight = false;
  }
  if (count && acked >= count) {
    emit({ event: 'done', acked });
    await client.close();
    process.exit(0);
  }
}

async function main() {
  const options = { ca: fs.readFileSync(caFile, 'utf8') };
  if (certFile && keyFile) {
    options.cert = fs.readFileSync(certFile, 'utf8');
    options.key = fs.readFileSync(keyFile, 'utf8');
  }
  await client.setOptions(options);
  await client.open();
  emit({ event: 'connected' });
  setInterval(sendNext, intervalMs);
}

process.on('SIGTERM', async () => {
  stopping = true;
  emit({ event: 'stopped', acked });
  try { await client.close(); } catch (e) { /* closing anyway */ }
  process.exit(0);
});

main().catch((err) => {
  emit({ event: 'fatal', error: String(err && err.message || err) });
  process.exit(2);
});
