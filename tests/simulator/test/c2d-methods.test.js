// Self-test of the simulator's cloud-to-device side: C2D messages and direct methods.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import mqtt from 'mqtt'
import { createRequire } from 'node:module'
import { makeCerts, startSim, waitFor, sleep } from '../testlib/helpers.js'
import { createSas } from '../lib/sas.js'
import { topicMatches } from '../lib/cloud-to-device.js'

const require = createRequire(import.meta.url)
const HUB = 'c2dhub.azure-devices.net'
const T = { timeout: 30000 }
let certs, sim

before(async () => {
  certs = makeCerts()
  sim = await startSim({ hub: HUB, certs })
})

after(async () => {
  if (sim) assert.equal(await sim.stop(), 0, 'SIGTERM exits 0')
  if (certs) fs.rmSync(certs.dir, { recursive: true, force: true })
})

async function addIdentity (body) {
  const r = await sim.ctl('POST', '/identities', body)
  assert.equal(r.status, 201, r.text)
  return r.body
}

function connect (d, m, key) {
  const cid = m ? `${d}/${m}` : d
  const se = Math.floor(Date.now() / 1000) + 3600
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtts://127.0.0.1:${sim.ports.mqtt}`, {
      clientId: cid,
      username: `${HUB}/${cid}/?api-version=2021-04-12`,
      password: createSas(m ? `${HUB}/devices/${d}/modules/${m}` : `${HUB}/devices/${d}`, key, se),
      ca: certs.caPem,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000
    })
    c.received = []
    c.on('message', (topic, payload) => c.received.push({ topic, payload: payload.toString('utf8') }))
    c.once('connect', () => resolve(c))
    c.once('error', (e) => { c.end(true); reject(e) })
  })
}

// Answers every method call with the given status and {echo: name, got: payload}.
function answerMethods (c, status = 200) {
  c.on('message', (topic, payload) => {
    const m = /^\$iothub\/methods\/POST\/([^/]+)\/\?\$rid=(.+)$/.exec(topic)
    if (!m) return
    const reply = JSON.stringify({ echo: m[1], got: JSON.parse(payload.toString('utf8')) })
    c.publish(`$iothub/methods/res/${status}/?$rid=${m[2]}`, reply, { qos: 0 })
  })
}

test('topic filter matching', () => {
  assert.ok(topicMatches('$iothub/methods/POST/#', '$iothub/methods/POST/reboot/?$rid=1'))
  assert.ok(topicMatches('devices/d/messages/devicebound/#', 'devices/d/messages/devicebound/a=b'))
  assert.ok(topicMatches('devices/+/messages/devicebound/#', 'devices/d/messages/devicebound/'))
  assert.ok(!topicMatches('devices/d/messages/devicebound/#', 'devices/e/messages/devicebound/x'))
  assert.ok(!topicMatches('a/b', 'a/b/c'))
  assert.ok(topicMatches('a/+', 'a/b'))
})

test('C2D reaches only the addressed identity; queued while it is not subscribed', T, async () => {
  const a = await addIdentity({ deviceId: 'c2d-a' })
  const b = await addIdentity({ deviceId: 'c2d-b' })
  const ca = await connect('c2d-a', null, a.primaryKey)
  const cb = await connect('c2d-b', null, b.primaryKey)
  await ca.subscribeAsync('devices/c2d-a/messages/devicebound/#', { qos: 1 })
  await cb.subscribeAsync('devices/c2d-b/messages/devicebound/#', { qos: 1 })
  const r = await sim.ctl('POST', '/c2d/c2d-a', { payload: { hello: 1 }, properties: { k: 'v w', '$.mid': 'm1' } })
  assert.equal(r.status, 200, r.text)
  assert.equal(r.body.delivered, 1)
  await waitFor(() => ca.received.length === 1, 5000, 'c2d')
  const got = ca.received[0]
  assert.equal(got.payload, '{"hello":1}')
  assert.ok(got.topic.startsWith('devices/c2d-a/messages/devicebound/'))
  const bag = new URLSearchParams(got.topic.slice('devices/c2d-a/messages/devicebound/'.length))
  assert.equal(bag.get('k'), 'v w')
  assert.equal(bag.get('$.mid'), 'm1')
  assert.equal(bag.get('$.to'), '/devices/c2d-a/messages/deviceBound')
  await sleep(100)
  assert.equal(cb.received.length, 0, 'nothing for another device')

  // not connected: queued, delivered once it subscribes
  cb.end(true)
  const q = await sim.ctl('POST', '/c2d/c2d-b', { payload: 'plain text' })
  assert.equal(q.status, 202, q.text)
  assert.equal(q.body.queued, 1)
  const cb2 = await connect('c2d-b', null, b.primaryKey)
  await cb2.subscribeAsync('devices/c2d-b/messages/devicebound/#', { qos: 1 })
  await waitFor(() => cb2.received.length === 1, 5000, 'queued c2d')
  assert.equal(cb2.received[0].payload, 'plain text')

  assert.equal((await sim.ctl('POST', '/c2d/nobody', { payload: 1 })).status, 404)
  assert.equal((await sim.ctl('POST', '/c2d/c2d-a', '[1]', true)).status, 400)
  assert.equal((await sim.ctl('POST', '/c2d/c2d-a', { properties: 'x' })).status, 400)
  ca.end(true); cb2.end(true)
})

test('direct methods: reply, isolation, 404, 504, bad requests', T, async () => {
  const a = await addIdentity({ deviceId: 'm-a' })
  const b = await addIdentity({ deviceId: 'm-b' })
  await addIdentity({ deviceId: 'm-edge', iotEdge: true })
  const mod = await addIdentity({ deviceId: 'm-edge', moduleId: 'filter' })
  const ca = await connect('m-a', null, a.primaryKey)
  const cb = await connect('m-b', null, b.primaryKey)
  const cm = await connect('m-edge', 'filter', mod.primaryKey)
  for (const c of [ca, cb, cm]) await c.subscribeAsync('$iothub/methods/POST/#', { qos: 0 })
  answerMethods(ca, 201)
  answerMethods(cm)

  const r = await sim.ctl('POST', '/methods/m-a', { methodName: 'reboot', payload: { delay: 3 }, responseTimeoutInSeconds: 5 })
  assert.equal(r.status, 200, r.text)
  assert.deepEqual(r.body, { status: 201, payload: { echo: 'reboot', got: { delay: 3 } } })
  assert.equal(cb.received.length, 0, 'another device sees no method call')
  assert.equal(cb.received.filter(x => x.topic.startsWith('$iothub/methods/res/')).length, 0)

  const rm = await sim.ctl('POST', '/methods/m-edge/filter', { methodName: 'ping' })
  assert.equal(rm.status, 200, rm.text)
  assert.deepEqual(rm.body, { status: 200, payload: { echo: 'ping', got: null } })

  // m-b never answers
  const t0 = Date.now()
  const to = await sim.ctl('POST', '/methods/m-b', { methodName: 'slow', responseTimeoutInSeconds: 0.5 })
  assert.equal(to.status, 504, to.text)
  assert.ok(Date.now() - t0 >= 450)
  assert.equal(cb.received.length, 1)
  assert.match(cb.received[0].topic, /^\$iothub\/methods\/POST\/slow\/\?\$rid=\d+$/)

  // a late answer is ignored; the connection stays
  cb.publish(`$iothub/methods/res/200/?$rid=${cb.received[0].topic.split('=')[1]}`, '{}')
  await sleep(100)
  assert.ok(cb.connected)

  const gone = await addIdentity({ deviceId: 'm-offline' })
  void gone
  assert.equal((await sim.ctl('POST', '/methods/m-offline', { methodName: 'x' })).status, 404)
  assert.equal((await sim.ctl('POST', '/methods/nobody', { methodName: 'x' })).status, 404)
  // connected but not subscribed to methods: 404 as well
  const unsub = await connect('m-offline', null, gone.primaryKey)
  assert.equal((await sim.ctl('POST', '/methods/m-offline', { methodName: 'x' })).status, 404)
  unsub.end(true)
  assert.equal((await sim.ctl('POST', '/methods/m-a', { payload: 1 })).status, 400, 'no methodName')
  assert.equal((await sim.ctl('POST', '/methods/m-a', { methodName: 'a/b' })).status, 400)
  assert.equal((await sim.ctl('POST', '/methods/m-a', { methodName: 'x', responseTimeoutInSeconds: 301 })).status, 400)
  assert.equal((await sim.ctl('POST', '/methods/m-a', '{"methodName":', true)).status, 400)
  const st = (await sim.ctl('GET', '/stats')).body
  assert.ok(st.methodCalls >= 3 && st.methodTimeouts >= 1)
  ca.end(true); cb.end(true); cm.end(true)
})

test('Azure IoT Node SDK device receives C2D and answers a direct method', T, async () => {
  const { Client } = require('azure-iot-device')
  const { Mqtt } = require('azure-iot-device-mqtt')
  const dev = await addIdentity({ deviceId: 'sdk-m' })
  const client = Client.fromConnectionString(
    `HostName=${HUB};DeviceId=sdk-m;SharedAccessKey=${dev.primaryKey};GatewayHostName=127.0.0.1:${sim.ports.mqtt}`, Mqtt)
  await client.setOptions({ ca: certs.caPem })
  await client.open()
  const msgs = []
  client.on('message', (m) => { msgs.push(m); client.complete(m, () => {}) })
  client.onDeviceMethod('add', (req, res) => {
    res.send(200, { sum: req.payload.a + req.payload.b }, () => {})
  })
  // the SDK subscribes asynchronously
  await waitFor(async () => (await sim.ctl('POST', '/methods/sdk-m', { methodName: 'add', payload: { a: 2, b: 3 }, responseTimeoutInSeconds: 5 })).status === 200,
    10000, 'method subscription')
  const r = await sim.ctl('POST', '/methods/sdk-m', { methodName: 'add', payload: { a: 40, b: 2 }, responseTimeoutInSeconds: 5 })
  assert.deepEqual(r.body, { status: 200, payload: { sum: 42 } })
  const c = await sim.ctl('POST', '/c2d/sdk-m', { payload: 'to the device', properties: { color: 'red' } })
  assert.ok(c.status === 200 || c.status === 202, c.text)
  await waitFor(() => msgs.length === 1, 10000, 'SDK C2D message')
  assert.equal(msgs[0].data.toString(), 'to the device')
  assert.equal(msgs[0].properties.getValue('color'), 'red')
  await client.close()
})
