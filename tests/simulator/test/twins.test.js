// Self-test of the simulator's twins: node --test tests/simulator/test/
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import mqtt from 'mqtt'
import { makeCerts, startSim } from '../testlib/helpers.js'
import { createSas } from '../lib/sas.js'

const HUB = 'twinhub.azure-devices.net'
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

async function add (body) {
  const r = await sim.ctl('POST', '/identities', body)
  assert.equal(r.status, 201, r.text)
  return r.body
}

function connect (d, m, key) {
  const cid = m ? `${d}/${m}` : d
  const sr = m ? `${HUB}/devices/${d}/modules/${m}` : `${HUB}/devices/${d}`
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtts://127.0.0.1:${sim.ports.mqtt}`, {
      clientId: cid,
      username: `${HUB}/${cid}/?api-version=2021-04-12`,
      password: createSas(sr, key, Math.floor(Date.now() / 1000) + 3600),
      ca: certs.caPem,
      protocolVersion: 4,
      reconnectPeriod: 0
    })
    c.once('connect', () => resolve(c))
    c.once('error', reject)
  })
}

// Collects messages; next(prefix) waits for the next one whose topic starts with prefix.
function inbox (c) {
  const q = []; const waiters = []
  c.on('message', (topic, payload) => {
    const m = { topic, text: payload.toString() }
    const i = waiters.findIndex(w => topic.startsWith(w.prefix))
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m)
    else q.push(m)
  })
  return (prefix, ms = 5000) => {
    const i = q.findIndex(m => m.topic.startsWith(prefix))
    if (i >= 0) return Promise.resolve(q.splice(i, 1)[0])
    return new Promise((resolve, reject) => {
      const w = { prefix, resolve }
      waiters.push(w)
      setTimeout(() => reject(new Error(`no message on ${prefix}`)), ms)
    })
  }
}

test('twin GET, reported PATCH with versions, the reported log', T, async () => {
  const dev = await add({ deviceId: 'tw-1' })
  const c = await connect('tw-1', null, dev.primaryKey)
  const next = inbox(c)
  await c.subscribeAsync('$iothub/twin/res/#', { qos: 0 })
  await c.publishAsync('$iothub/twin/GET/?$rid=1', '', { qos: 1 })
  let m = await next('$iothub/twin/res/')
  assert.equal(m.topic, '$iothub/twin/res/200/?$rid=1')
  assert.deepEqual(JSON.parse(m.text), { desired: { $version: 1 }, reported: { $version: 1 } })

  await c.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=2', JSON.stringify({ a: 1, b: { c: 2 } }), { qos: 1 })
  m = await next('$iothub/twin/res/')
  assert.equal(m.topic, '$iothub/twin/res/204/?$rid=2&$version=2')
  await c.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=3', JSON.stringify({ b: { c: null, d: [1, 2] } }), { qos: 1 })
  m = await next('$iothub/twin/res/')
  assert.equal(m.topic, '$iothub/twin/res/204/?$rid=3&$version=3')
  await c.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=4', 'not json', { qos: 1 })
  m = await next('$iothub/twin/res/')
  assert.equal(m.topic, '$iothub/twin/res/400/?$rid=4')

  const twin = (await sim.ctl('GET', '/twins/tw-1')).body
  assert.deepEqual(twin.reported, { a: 1, b: { d: [1, 2] }, $version: 3 })
  const log = (await sim.ctl('GET', '/twins/reported?identity=tw-1')).body.patches
  assert.deepEqual(log.map(p => p.patch), [{ a: 1, b: { c: 2 } }, { b: { c: null, d: [1, 2] } }])
  assert.deepEqual(log.map(p => p.version), [2, 3])
  const since = (await sim.ctl('GET', `/twins/reported?identity=tw-1&since=${log[0].seq}`)).body.patches
  assert.equal(since.length, 1)

  // injected failures answer the given status and change nothing
  await sim.ctl('PUT', '/twins/tw-1/fail-reported', { status: 500 })
  await c.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=5', '{"x":1}', { qos: 1 })
  assert.equal((await next('$iothub/twin/res/')).topic, '$iothub/twin/res/500/?$rid=5')
  await sim.ctl('PUT', '/twins/tw-1/fail-reported', { status: 0 })
  assert.equal((await sim.ctl('GET', '/twins/tw-1')).body.reported.$version, 3)
  c.end(true)
})

test('desired patches notify the connected identity with $version; modules too', T, async () => {
  const edge = await add({ deviceId: 'tw-edge', iotEdge: true })
  assert.ok(edge)
  const eh = (await sim.ctl('GET', '/identities/tw-edge/%24edgeHub')).body
  const c = await connect('tw-edge', '$edgeHub', eh.primaryKey)
  const next = inbox(c)
  await c.subscribeAsync('$iothub/twin/PATCH/properties/desired/#', { qos: 0 })
  const r = await sim.ctl('PATCH', '/twins/tw-edge/%24edgeHub/desired', { routes: { r1: 'FROM /* INTO $upstream' } })
  assert.equal(r.status, 200, r.text)
  assert.equal(r.body.desired.$version, 2)
  const m = await next('$iothub/twin/PATCH/properties/desired/')
  assert.equal(m.topic, '$iothub/twin/PATCH/properties/desired/?$version=2')
  assert.deepEqual(JSON.parse(m.text), { routes: { r1: 'FROM /* INTO $upstream' }, $version: 2 })

  await sim.ctl('PATCH', '/twins/tw-edge/%24edgeHub/desired', { routes: { r1: null } })
  const m2 = await next('$iothub/twin/PATCH/properties/desired/')
  assert.deepEqual(JSON.parse(m2.text), { routes: { r1: null }, $version: 3 })
  assert.deepEqual((await sim.ctl('GET', '/twins/tw-edge/%24edgeHub')).body.desired, { routes: {}, $version: 3 })

  // a silent replacement bumps the version without a notification
  const put = await sim.ctl('PUT', '/twins/tw-edge/%24edgeHub/desired?bump=2', { x: 1 })
  assert.equal(put.body.desired.$version, 5)
  await assert.rejects(next('$iothub/twin/PATCH/properties/desired/', 300))

  // another identity's requests are never forwarded to this one
  const dev = await add({ deviceId: 'tw-2' })
  const c2 = await connect('tw-2', null, dev.primaryKey)
  await c.subscribeAsync('$iothub/twin/#', { qos: 0 })
  await c2.publishAsync('$iothub/twin/GET/?$rid=9', '', { qos: 1 })
  await assert.rejects(next('$iothub/twin/', 300))

  assert.equal((await sim.ctl('GET', '/twins/nope')).status, 404)
  assert.equal((await sim.ctl('PATCH', '/twins/tw-2/desired', '[1]', true)).status, 400)
  const list = (await sim.ctl('GET', '/twins')).body
  assert.ok(list.twins.some(t => t.identity === 'tw-edge/$edgeHub' && t.desiredVersion === 5))
  c.end(true)
  c2.end(true)
})

test('a device may not publish twin responses or desired patches', T, async () => {
  const dev = await add({ deviceId: 'tw-3' })
  const c = await connect('tw-3', null, dev.primaryKey)
  const closed = new Promise((resolve) => c.once('close', resolve))
  c.publish('$iothub/twin/res/200/?$rid=1', '{}', { qos: 1 })
  await closed
})
