// Self-test of the IoT Hub simulator: node --test tests/simulator/test/
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import mqtt from 'mqtt'
import { createRequire } from 'node:module'
import { makeCerts, startSim, httpsGet, waitFor, sleep } from '../testlib/helpers.js'
import { createSas } from '../lib/sas.js'

const require = createRequire(import.meta.url)
const HUB = 'testhub.azure-devices.net'
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

const inOneHour = () => Math.floor(Date.now() / 1000) + 3600

function tokenFor (d, m, key, se = inOneHour()) {
  return createSas(m ? `${HUB}/devices/${d}/modules/${m}` : `${HUB}/devices/${d}`, key, se)
}

// Connect a plain MQTT 3.1.1 client. Resolves the client, or rejects with the
// error (err.code = CONNACK return code when refused).
function connect ({ d, m, key, token, username, clientId, port = sim.ports.mqtt }) {
  const cid = clientId ?? (m ? `${d}/${m}` : d)
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtts://127.0.0.1:${port}`, {
      clientId: cid,
      username: username ?? `${HUB}/${cid}/?api-version=2021-04-12`,
      password: token ?? tokenFor(d, m, key),
      ca: certs.caPem,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000
    })
    c.once('connect', () => resolve(c))
    c.once('error', (e) => { c.end(true); reject(e) })
    c.once('close', () => reject(new Error('closed before connect')))
  })
}

const closed = (c) => new Promise((resolve) => { if (c.disconnected || !c.connected) resolve(); else c.once('close', resolve) })

async function addDevice (body) {
  const r = await sim.ctl('POST', '/identities', body)
  assert.equal(r.status, 201, r.text)
  return r.body
}

test('registry rules and control API input handling', T, async () => {
  const edge = await addDevice({ deviceId: 'reg-edge', iotEdge: true })
  assert.deepEqual(edge.modules.sort(), ['$edgeAgent', '$edgeHub'])
  const eh = (await sim.ctl('GET', '/identities/reg-edge/%24edgeHub')).body
  assert.equal(eh.moduleId, '$edgeHub')
  assert.equal(Buffer.from(eh.primaryKey, 'base64').length, 32)
  await addDevice({ deviceId: 'reg-edge2', iotEdge: true })
  // an edge device cannot be a child
  assert.equal((await sim.ctl('POST', '/identities', { deviceId: 'reg-e3', iotEdge: true, parent: 'reg-edge' })).status, 400)
  await addDevice({ deviceId: 'reg-leaf', parent: 'reg-edge' })
  // a second parent is refused until the first is removed
  assert.equal((await sim.ctl('PATCH', '/identities/reg-leaf', { parent: 'reg-edge2' })).status, 409)
  assert.equal((await sim.ctl('PATCH', '/identities/reg-leaf', { parent: null })).status, 200)
  assert.equal((await sim.ctl('PATCH', '/identities/reg-leaf', { parent: 'reg-edge2' })).body.parent, 'reg-edge2')
  // parent must be an edge device
  assert.equal((await sim.ctl('POST', '/identities', { deviceId: 'reg-x', parent: 'reg-leaf' })).status, 400)
  // duplicates, unknown, bad input
  assert.equal((await sim.ctl('POST', '/identities', { deviceId: 'reg-leaf' })).status, 409)
  assert.equal((await sim.ctl('DELETE', '/identities/nope')).status, 404)
  const bad = await sim.ctl('POST', '/identities', '{"deviceId": ', true)
  assert.equal(bad.status, 400)
  assert.match(bad.body.error, /bad JSON/)
  assert.equal((await sim.ctl('POST', '/identities', '[1,2]', true)).status, 400)
  assert.equal((await sim.ctl('POST', '/identities', { deviceId: 'reg-k', primaryKey: 'not base64!' })).status, 400)
  assert.equal((await sim.ctl('GET', '/nowhere')).status, 404)
  // given keys are kept; module add
  const key = Buffer.alloc(32, 7).toString('base64')
  const dev = await addDevice({ deviceId: 'reg-k', primaryKey: key })
  assert.equal(dev.primaryKey, key)
  const mod = await addDevice({ deviceId: 'reg-k', moduleId: 'mod1' })
  assert.equal(mod.type, 'module')
  const all = (await sim.ctl('GET', '/identities')).body.identities
  assert.ok(all.find(i => i.deviceId === 'reg-k' && i.moduleId === 'mod1'))
  // deleting a device removes its modules
  assert.equal((await sim.ctl('DELETE', '/identities/reg-k')).status, 200)
  assert.equal((await sim.ctl('GET', '/identities/reg-k/mod1')).status, 404)
  assert.equal(sim.proc.exitCode, null, 'simulator still running')
})

test('good SAS connects; telemetry with property bag recorded in order', T, async () => {
  const dev = await addDevice({ deviceId: 'tele-1' })
  await sim.ctl('DELETE', '/telemetry')
  const c = await connect({ d: 'tele-1', key: dev.primaryKey })
  assert.ok((await sim.ctl('GET', '/connections')).body.connections.includes('tele-1'))
  const base = 'devices/tele-1/messages/events/'
  for (let i = 0; i < 5; i++) {
    await c.publishAsync(base + `seq=${i}&name=a%20b&%24.ct=application%2Fjson&%24.ce=utf-8`, JSON.stringify({ i }), { qos: 1 })
  }
  await c.publishAsync('devices/tele-1/messages/events', Buffer.from([0xff, 0x00, 0xfe]), { qos: 1 })
  // PUBACK means recorded: no waiting needed
  const recs = (await sim.ctl('GET', '/telemetry?identity=tele-1')).body.records
  assert.equal(recs.length, 6)
  for (let i = 0; i < 5; i++) {
    assert.equal(recs[i].identity, 'tele-1')
    assert.equal(recs[i].deviceId, 'tele-1')
    assert.equal(recs[i].moduleId, null)
    assert.deepEqual(recs[i].properties, { seq: String(i), name: 'a b', '$.ct': 'application/json', '$.ce': 'utf-8' })
    assert.equal(recs[i].payload, JSON.stringify({ i }))
    assert.equal(recs[i].qos, 1)
    assert.equal(recs[i].topic, base + `seq=${i}&name=a%20b&%24.ct=application%2Fjson&%24.ce=utf-8`)
    if (i > 0) assert.equal(recs[i].seq, recs[i - 1].seq + 1)
  }
  assert.equal(recs[5].payload, null, 'non-utf8 payload has no text form')
  assert.equal(recs[5].payload_b64, Buffer.from([0xff, 0x00, 0xfe]).toString('base64'))
  assert.equal(recs[5].topic, 'devices/tele-1/messages/events')
  const since = (await sim.ctl('GET', `/telemetry?since=${recs[2].seq}&limit=2`)).body.records
  assert.deepEqual(since.map(r => r.seq), [recs[3].seq, recs[4].seq])
  const count = (await sim.ctl('GET', '/telemetry/count')).body
  assert.equal(count.total, 6)
  assert.equal(count.byIdentity['tele-1'], 6)
  assert.ok(count.firstReceivedAt <= count.lastReceivedAt)
  // secondary key works too; module identity publishes on its own topic
  c.end(true)
  const c2 = await connect({ d: 'tele-1', key: dev.secondaryKey })
  c2.end(true)
  const mod = await addDevice({ deviceId: 'tele-1', moduleId: 'filter' })
  const cm = await connect({ d: 'tele-1', m: 'filter', key: mod.primaryKey })
  await cm.publishAsync('devices/tele-1/modules/filter/messages/events/%24.on=out1', 'x', { qos: 1 })
  const mr = (await sim.ctl('GET', '/telemetry?identity=tele-1/filter')).body.records
  assert.equal(mr.length, 1)
  assert.equal(mr[0].properties['$.on'], 'out1')
  assert.equal(mr[0].moduleId, 'filter')
  cm.end(true)
  await sim.ctl('DELETE', '/telemetry')
  assert.equal((await sim.ctl('GET', '/telemetry/count')).body.total, 0)
})

test('bad credentials and identities are refused', T, async () => {
  const dev = await addDevice({ deviceId: 'auth-1' })
  const other = Buffer.alloc(32, 1).toString('base64')
  const before = (await sim.ctl('GET', '/stats')).body.authFailures
  await assert.rejects(connect({ d: 'auth-1', key: other }), (e) => e.code === 4, 'wrong key')
  await assert.rejects(connect({ d: 'auth-1', token: tokenFor('auth-1', null, dev.primaryKey, Math.floor(Date.now() / 1000) - 10) }), (e) => e.code === 4, 'expired')
  await assert.rejects(connect({ d: 'auth-1', token: tokenFor('auth-2', null, dev.primaryKey) }), (e) => e.code === 4, 'token for another resource')
  await assert.rejects(connect({ d: 'auth-1', key: dev.primaryKey, username: `${HUB}/someone-else/?api-version=x` }), (e) => e.code === 4, 'username mismatch')
  await assert.rejects(connect({ d: 'auth-1', key: dev.primaryKey, username: `otherhub/auth-1/?api-version=x` }), (e) => e.code === 4, 'wrong hub')
  await assert.rejects(connect({ d: 'auth-1', token: 'garbage' }), (e) => e.code === 4, 'malformed')
  await assert.rejects(connect({ d: 'ghost', key: dev.primaryKey }), (e) => e.code === 5, 'unknown')
  await assert.rejects(connect({ d: 'auth-1', m: 'nomod', key: dev.primaryKey }), (e) => e.code === 5, 'unknown module')
  // token fields in another order are fine
  const t = tokenFor('auth-1', null, dev.primaryKey).replace('SharedAccessSignature ', '').split('&').reverse().join('&')
  const ok = await connect({ d: 'auth-1', token: 'SharedAccessSignature ' + t })
  // disabling kicks the live connection and refuses new ones
  const gone = closed(ok)
  assert.equal((await sim.ctl('PATCH', '/identities/auth-1', { status: 'disabled' })).status, 200)
  await gone
  await assert.rejects(connect({ d: 'auth-1', key: dev.primaryKey }), (e) => e.code === 5, 'disabled')
  await sim.ctl('PATCH', '/identities/auth-1', { status: 'enabled' });
  (await connect({ d: 'auth-1', key: dev.primaryKey })).end(true)
  const after = (await sim.ctl('GET', '/stats')).body.authFailures
  assert.equal(after - before, 9)
})

test("a client can't publish or subscribe on another identity's topics", T, async () => {
  const a = await addDevice({ deviceId: 'iso-a' })
  await addDevice({ deviceId: 'iso-b' })
  await sim.ctl('DELETE', '/telemetry')
  const c = await connect({ d: 'iso-a', key: a.primaryKey })
  const gone = closed(c)
  c.publish('devices/iso-b/messages/events/', 'spoof', { qos: 1 })
  await gone
  assert.equal((await sim.ctl('GET', '/telemetry/count')).body.total, 0)
  const c2 = await connect({ d: 'iso-a', key: a.primaryKey })
  const gone2 = closed(c2)
  c2.subscribe('devices/iso-b/messages/devicebound/#')
  await gone2
  // own topics and $iothub are fine
  const c3 = await connect({ d: 'iso-a', key: a.primaryKey })
  const granted = await c3.subscribeAsync(['devices/iso-a/messages/devicebound/#', '$iothub/methods/POST/#'], { qos: 1 })
  assert.deepEqual(granted.map(g => g.qos), [1, 1])
  c3.end(true)
  const st = (await sim.ctl('GET', '/stats')).body
  assert.ok(st.publishDenied >= 1 && st.subscribeDenied >= 1)
})

test('device scope API pages and authenticates', T, async () => {
  await addDevice({ deviceId: 'scope-edge', iotEdge: true })
  for (const d of ['leaf-1', 'leaf-2', 'leaf-3']) await addDevice({ deviceId: d, parent: 'scope-edge' })
  await addDevice({ deviceId: 'leaf-1', moduleId: 'm1' })
  await addDevice({ deviceId: 'not-in-scope' })
  const eh = (await sim.ctl('GET', '/identities/scope-edge/$edgeHub')).body
  const auth = { Authorization: tokenFor('scope-edge', '$edgeHub', eh.primaryKey) }
  const first = '/devices/scope-edge/modules/%24edgeHub/devicesAndModulesInDeviceScope?api-version=2018-08-30-preview'

  // 4 devices (edge + 3 children) + 3 modules ($edgeAgent, $edgeHub, leaf-1/m1) = 7 items
  async function pages (pageSize) {
    const out = []
    let next = first + `&pageSize=${pageSize}`
    while (next) {
      const r = await httpsGet(sim.ports.https, next, auth, certs.caPem)
      assert.equal(r.status, 200)
      out.push(r.body)
      next = r.body.continuationLink
      assert.ok(out.length < 20)
    }
    return out
  }
  const p4 = await pages(4)
  assert.equal(p4.length, 2)
  assert.equal(p4[0].devices.length, 4)
  assert.equal(p4[0].modules.length, 0)
  assert.equal(p4[1].devices.length, 0)
  assert.equal(p4[1].modules.length, 3)
  assert.equal(p4[1].continuationLink, null)
  const p2 = await pages(2)
  assert.equal(p2.length, 4)
  assert.equal(p2[1].devices.length, 2)
  assert.equal(p2[2].devices.length + p2[2].modules.length, 2, 'a page may hold both')
  const all = await pages(1000)
  assert.equal(all.length, 1)
  const devs = all[0].devices; const mods = all[0].modules
  assert.deepEqual(devs.map(d => d.deviceId).sort(), ['leaf-1', 'leaf-2', 'leaf-3', 'scope-edge'])
  assert.deepEqual(mods.map(m => `${m.deviceId}/${m.moduleId}`).sort(), ['leaf-1/m1', 'scope-edge/$edgeAgent', 'scope-edge/$edgeHub'])
  const edge = devs.find(d => d.deviceId === 'scope-edge')
  const leaf = devs.find(d => d.deviceId === 'leaf-2')
  assert.equal(edge.capabilities.iotEdge, true)
  assert.equal(edge.deviceScope, `ms-azure-iot-edge://scope-edge-${edge.generationId}`)
  assert.deepEqual(leaf.parentScopes, [edge.deviceScope])
  assert.equal(leaf.deviceScope, edge.deviceScope)
  assert.equal(leaf.status, 'enabled')
  assert.equal(leaf.authentication.type, 'sas')
  const leafKeys = (await sim.ctl('GET', '/identities/leaf-2')).body
  assert.equal(leaf.authentication.symmetricKey.primaryKey, leafKeys.primaryKey)
  assert.equal(mods.find(m => m.moduleId === '$edgeHub').managedBy, 'iotEdge')
  // unencoded $ works too
  const raw = await httpsGet(sim.ports.https, first.replace('%24', '$'), auth, certs.caPem)
  assert.equal(raw.status, 200)
  // bad tokens → 401, unknown edge → 404
  const wrong = { Authorization: tokenFor('scope-edge', '$edgeHub', Buffer.alloc(32).toString('base64')) }
  assert.equal((await httpsGet(sim.ports.https, first, wrong, certs.caPem)).status, 401)
  assert.equal((await httpsGet(sim.ports.https, first, {}, certs.caPem)).status, 401)
  const agentTok = { Authorization: tokenFor('scope-edge', '$edgeAgent', eh.primaryKey) }
  assert.equal((await httpsGet(sim.ports.https, first, agentTok, certs.caPem)).status, 401)
  assert.equal((await httpsGet(sim.ports.https, first.replace('scope-edge', 'nope'), auth, certs.caPem)).status, 404)
})

test('X.509 children: the scope serves both kinds; only their parent edge connects on their behalf', T, async () => {
  const tp1 = 'ab'.repeat(20); const tp256 = 'CD'.repeat(32)
  await addDevice({ deviceId: 'obo-edge', iotEdge: true })
  await addDevice({ deviceId: 'obo-other-edge', iotEdge: true })
  await addDevice({ deviceId: 'obo-ss', parent: 'obo-edge', authType: 'selfSigned', primaryThumbprint: tp1, secondaryThumbprint: tp256 })
  await addDevice({ deviceId: 'obo-ca', parent: 'obo-edge', authType: 'certificateAuthority' })
  await addDevice({ deviceId: 'obo-orphan', authType: 'certificateAuthority' })
  for (const bad of [{ authType: 'x509' }, { authType: 'selfSigned' }, { authType: 'selfSigned', primaryThumbprint: 'abc' }]) {
    const r = await sim.ctl('POST', '/identities', { deviceId: 'obo-bad', ...bad })
    assert.equal(r.status, 400, JSON.stringify(bad))
  }
  const eh = (await sim.ctl('GET', '/identities/obo-edge/$edgeHub')).body
  const other = (await sim.ctl('GET', '/identities/obo-other-edge/$edgeHub')).body
  const auth = { Authorization: tokenFor('obo-edge', '$edgeHub', eh.primaryKey) }
  const r = await httpsGet(sim.ports.https, '/devices/obo-edge/modules/%24edgeHub/devicesAndModulesInDeviceScope?api-version=2018-08-30-preview', auth, certs.caPem)
  assert.equal(r.status, 200)
  const ss = r.body.devices.find(d => d.deviceId === 'obo-ss')
  assert.equal(ss.authentication.type, 'selfSigned')
  assert.deepEqual(ss.authentication.x509Thumbprint, { primaryThumbprint: tp1.toUpperCase(), secondaryThumbprint: tp256 })
  assert.equal(ss.authentication.symmetricKey.primaryKey, null)
  const ca = r.body.devices.find(d => d.deviceId === 'obo-ca')
  assert.equal(ca.authentication.type, 'certificateAuthority')

  const edgeToken = createSas(`${HUB}/devices/obo-edge/modules/$edgeHub`, eh.primaryKey, inOneHour())
  const before = (await sim.ctl('GET', '/stats')).body.onBehalfOf
  for (const d of ['obo-ss', 'obo-ca']) {
    const c = await connect({ d, token: edgeToken })
    c.end(true)
  }
  assert.equal((await sim.ctl('GET', '/stats')).body.onBehalfOf, before + 2)
  // Another edge's $edgeHub, or a child without a parent: refused.
  const otherToken = createSas(`${HUB}/devices/obo-other-edge/modules/$edgeHub`, other.primaryKey, inOneHour())
  await assert.rejects(connect({ d: 'obo-ss', token: otherToken }))
  await assert.rejects(connect({ d: 'obo-orphan', token: edgeToken }))
  // The edge's token signed with another key: refused.
  await assert.rejects(connect({ d: 'obo-ca', token: createSas(`${HUB}/devices/obo-edge/modules/$edgeHub`, other.primaryKey, inOneHour()) }))
  // A thumbprint can be patched (a sync then sees it), and the kind changed.
  const p = await sim.ctl('PATCH', '/identities/obo-ss', { primaryThumbprint: 'ef'.repeat(20) })
  assert.equal(p.status, 200, p.text)
  assert.equal(p.body.primaryThumbprint, 'EF'.repeat(20))
})

test('link cut drops connections and refuses new ones; restore accepts again', T, async () => {
  const dev = await addDevice({ deviceId: 'link-1' })
  const edge = await addDevice({ deviceId: 'link-edge', iotEdge: true })
  void edge
  const eh = (await sim.ctl('GET', '/identities/link-edge/$edgeHub')).body
  const auth = { Authorization: tokenFor('link-edge', '$edgeHub', eh.primaryKey) }
  const scopePath = '/devices/link-edge/modules/$edgeHub/devicesAndModulesInDeviceScope?api-version=2018-08-30-preview'
  const c = await connect({ d: 'link-1', key: dev.primaryKey })
  const gone = closed(c)
  assert.deepEqual((await sim.ctl('POST', '/link/cut')).body, { up: false })
  assert.deepEqual((await sim.ctl('GET', '/link')).body, { up: false })
  await gone
  assert.deepEqual((await sim.ctl('GET', '/connections')).body.connections.filter(x => x === 'link-1'), [])
  await assert.rejects(connect({ d: 'link-1', key: dev.primaryKey }), (e) => e.code === 'ECONNREFUSED')
  await assert.rejects(httpsGet(sim.ports.https, scopePath, auth, certs.caPem), (e) => e.code === 'ECONNREFUSED')
  assert.deepEqual((await sim.ctl('POST', '/link/restore')).body, { up: true })
  const c2 = await connect({ d: 'link-1', key: dev.primaryKey })
  await c2.publishAsync('devices/link-1/messages/events/', 'after', { qos: 1 })
  c2.end(true)
  assert.equal((await httpsGet(sim.ports.https, scopePath, auth, certs.caPem)).status, 200)
})

test('link cut under load: no PUBACK after the cut returns', T, async () => {
  const dev = await addDevice({ deviceId: 'load-1' })
  await sim.ctl('DELETE', '/telemetry')
  const c = await connect({ d: 'load-1', key: dev.primaryKey })
  let acked = 0; let cutDone = false; let ackAfterCut = 0
  let stop = false
  const pump = (async () => {
    while (!stop) {
      const ps = []
      for (let i = 0; i < 50; i++) {
        ps.push(c.publishAsync('devices/load-1/messages/events/', 'x', { qos: 1 }).then(() => { acked++; if (cutDone) ackAfterCut++ }, () => {}))
      }
      await Promise.all(ps)
      if (!c.connected) break
      await new Promise((resolve) => setImmediate(resolve)) // never starve timers
    }
  })()
  await waitFor(() => acked > 200, 5000, 'some acks')
  await sim.ctl('POST', '/link/cut')
  cutDone = true
  stop = true
  await Promise.race([pump, sleep(1000)])
  await sleep(200)
  assert.equal(ackAfterCut, 0)
  const count = (await sim.ctl('GET', '/telemetry/count')).body
  assert.ok(count.total >= acked, `every acked message is recorded (${count.total} >= ${acked})`)
  c.end(true)
  await sim.ctl('POST', '/link/restore')
})

test('Azure IoT Node SDK device and module clients via GatewayHostName=127.0.0.1:PORT', T, async () => {
  const { Client, ModuleClient, Message } = require('azure-iot-device')
  const { Mqtt } = require('azure-iot-device-mqtt')
  const dev = await addDevice({ deviceId: 'sdk-dev' })
  await sim.ctl('DELETE', '/telemetry')
  const cs = `HostName=${HUB};DeviceId=sdk-dev;SharedAccessKey=${dev.primaryKey};GatewayHostName=127.0.0.1:${sim.ports.mqtt}`
  const client = Client.fromConnectionString(cs, Mqtt)
  await client.setOptions({ ca: certs.caPem })
  await client.open()
  const msg = new Message(JSON.stringify({ temp: 21.5 }))
  msg.properties.add('alert', 'yes & no')
  msg.contentType = 'application/json'
  msg.contentEncoding = 'utf-8'
  msg.messageId = 'mid-1'
  await client.sendEvent(msg)
  await client.close()
  const recs = (await sim.ctl('GET', '/telemetry?identity=sdk-dev')).body.records
  assert.equal(recs.length, 1)
  assert.equal(recs[0].payload, '{"temp":21.5}')
  assert.equal(recs[0].properties.alert, 'yes & no')
  assert.equal(recs[0].properties['$.mid'], 'mid-1')
  assert.equal(recs[0].properties['$.ct'], 'application/json')

  // module client, output event ($.on)
  await addDevice({ deviceId: 'sdk-edge', iotEdge: true })
  const mod = await addDevice({ deviceId: 'sdk-edge', moduleId: 'filter' })
  const mcs = `HostName=${HUB};DeviceId=sdk-edge;ModuleId=filter;SharedAccessKey=${mod.primaryKey};GatewayHostName=localhost:${sim.ports.mqtt}`
  const mc = ModuleClient.fromConnectionString(mcs, Mqtt)
  await mc.setOptions({ ca: certs.caPem })
  await mc.open()
  await mc.sendOutputEvent('out1', new Message('hello'))
  await mc.close()
  const mr = (await sim.ctl('GET', '/telemetry?identity=sdk-edge/filter')).body.records
  assert.equal(mr.length, 1)
  assert.equal(mr[0].payload, 'hello')
  assert.equal(mr[0].properties['$.on'], 'out1')

  // ModuleClient.fromEnvironment, as modules started by an edge agent get it
  process.env.EdgeHubConnectionString = `HostName=${HUB};DeviceId=sdk-edge;ModuleId=filter;SharedAccessKey=${mod.primaryKey};GatewayHostName=127.0.0.1:${sim.ports.mqtt}`
  process.env.EdgeModuleCACertificateFile = certs.ca
  try {
    const ec = await ModuleClient.fromEnvironment(Mqtt)
    await ec.open()
    await ec.sendOutputEvent('out2', new Message('from-env'))
    await ec.close()
  } finally {
    delete process.env.EdgeHubConnectionString
    delete process.env.EdgeModuleCACertificateFile
  }
  const er = (await sim.ctl('GET', '/telemetry?identity=sdk-edge/filter')).body.records
  assert.equal(er.length, 2)
  assert.equal(er[1].payload, 'from-env')
  assert.equal(er[1].properties['$.on'], 'out2')
})

test('--registry file and --state file', T, async () => {
  const regFile = `${certs.dir}/registry.json`
  const stateFile = `${certs.dir}/state.json`
  const k = Buffer.alloc(32, 9).toString('base64')
  fs.writeFileSync(regFile, JSON.stringify({
    identities: [
      { deviceId: 'demo-edge', iotEdge: true },
      { deviceId: 'demo-edge', moduleId: '$edgeHub', primaryKey: k },
      { deviceId: 'demo-leaf', parent: 'demo-edge', primaryKey: k }
    ]
  }))
  const s2 = await startSim({ hub: 'h2', certs, extraArgs: ['--registry', regFile, '--state', stateFile] })
  try {
    assert.equal((await s2.ctl('GET', '/identities/demo-edge/$edgeHub')).body.primaryKey, k)
    assert.equal((await s2.ctl('GET', '/identities/demo-leaf')).body.parent, 'demo-edge')
    await s2.ctl('POST', '/identities', { deviceId: 'added-later' })
  } finally { assert.equal(await s2.stop(), 0) }
  const s3 = await startSim({ hub: 'h2', certs, extraArgs: ['--state', stateFile] })
  try {
    assert.equal((await s3.ctl('GET', '/identities/added-later')).status, 200)
    assert.equal((await s3.ctl('GET', '/identities/demo-leaf')).body.parent, 'demo-edge')
  } finally { assert.equal(await s3.stop(), 0) }
})
