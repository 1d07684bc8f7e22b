// A module written with the Azure IoT Node.js SDK, unmodified, calling a direct
// method through the gateway: ModuleClient.invokeMethod (azure-iot-device's
// MethodClient, HTTPS to GatewayHostName).
//
//   node azure-invoke.cjs CONNECTION_STRING CA_FILE HTTPS_PORT TARGET_DEVICE METHOD PAYLOAD_JSON [TIMEOUT_S]
//
// The SDK sends the request to GatewayHostName on port 443 and has no port
// setting of its own: the documented option http.agent (setOptions) carries a
// TLS agent that connects to HTTPS_PORT instead. Host name, SNI, certificate
// check, path, headers and body are the SDK's own.
// Prints one JSON line: {"result": ...} or {"error": message, "name": error class}.
'use strict';
const fs = require('fs');
const https = require('https');
const path = require('path');
const tls = require('tls');
const modules = path.join(__dirname, '..', 'simulator', 'node_modules');
const { ModuleClient } = require(path.join(modules, 'azure-iot-device'));
const { Mqtt } = require(path.join(modules, 'azure-iot-device-mqtt'));

const [cs, caFile, port, target, method, payloadJson, timeoutArg] = process.argv.slice(2);
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

class PortAgent extends https.Agent {
  createConnection (options, callback) {
    return tls.connect({ ...options, port: Number(port) }, callback);
  }
}

async function main () {
  const client = ModuleClient.fromConnectionString(cs, Mqtt);
  await client.setOptions({ ca: fs.readFileSync(caFile, 'utf8'), http: { agent: new PortAgent() } });
  try {
    const result = await client.invokeMethod(target, {
      methodName: method,
      payload: JSON.parse(payloadJson),
      responseTimeoutInSeconds: Number(timeoutArg || 10),
      connectTimeoutInSeconds: 0
    });
    emit({ result });
  } catch (err) {
    emit({ error: String(err && err.message), name: err && err.constructor && err.constructor.name,
      status: err && err.response && err.response.statusCode });
  }
}

main().then(() => process.exit(0), (err) => { emit({ fatal: String(err && err.stack) }); process.exit(2); });
