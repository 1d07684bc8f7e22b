#!/usr/bin/env node
// IoT Hub simulator for edgehub tests and demo.
//   MQTT 3.1.1 over TLS (aedes broker), HTTPS device-scope API, HTTP control API.
// Usage: node iothub-sim.js --hub-name HUB --mqtt-port P --https-port Q --control-port C
//          --cert FILE --key FILE [--registry FILE] [--state FILE] [--verbose]
import fs from 'node:fs'
import tls from 'node:tls'
import http from 'node:http'
import https from 'node:https'
import { Aedes } from 'aedes'
import { validateSas } from './lib/sas.js'
import { Registry, HttpError } from './lib/registry.js'
import { TelemetryStore } from './lib/telemetry.js'
import { CloudToDevice } from './lib/cloud-to-device.js'
import { TwinStore, handleTwinControl, isTwinTopic } from './lib/twins.js'

const HOST = '127.0.0.1'

function parseArgs (argv) {
  const o = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`)
    const k = a.slice(2)
    if (k === 'verbose') { o.verbose = true; continue }
    if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`)
    o[k] = argv[++i]
  }
  for (const req of ['hub-name', 'mqtt-port', 'https-port', 'control-port', 'cert', 'key']) {
    if (!o[req]) throw new Error(`--${req} is required`)
  }
  for (const p of ['mqtt-port', 'https-port', 'control-port']) {
    const n = Number(o[p])
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`bad --${p}`)
    o[p] = n
  }
  return o
}

let opts
try { opts = parseArgs(process.argv.slice(2)) } catch (e) {
  process.stderr.write(`iothub-sim: ${e.message}\n`)
  process.exit(2)
}
const HUB = opts['hub-name']
const log = (...a) => process.stderr.write(`[iothub-sim] ${a.join(' ')}\n`)
const vlog = opts.verbose ? log : () => {}
const tlsOpts = { cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) }

// ---------------------------------------------------------------- state
const registry = new Registry(HUB)
const telemetry = new TelemetryStore()
const twins = new TwinStore()
const stats = {
  connects: 0,
  disconnects: 0,
  authFailures: 0,
  publishDenied: 0,
  subscribeDenied: 0,
  scopeRequests: 0,
  scopeAuthFailures: 0,
  linkCuts: 0,
  onBehalfOf: 0
}
let linkUp = true

if (opts.registry) registry.load(JSON.parse(fs.readFileSync(opts.registry, 'utf8')))
if (opts.state && fs.existsSync(opts.state)) {
  const st = JSON.parse(fs.readFileSync(opts.state, 'utf8'))
  if (st.registry) {
    // state wins over --registry: start from it alone
    registry.devices.clear()
    registry.load(st.registry)
  }
}
function saveState () {
  if (!opts.state) return
  const tmp = opts.state + '.tmp'
  fs.writeFileSync(tmp, JSON.stringify({ registry: registry.dump() }, null, 1))
  fs.renameSync(tmp, opts.state)
}
if (opts.state) {
  let pending = false
  registry.onChange = () => {
    if (pending) return
    pending = true
    setImmediate(() => { pending = false; saveState() })
  }
  saveState()
}

// ---------------------------------------------------------------- MQTT broker
function authError (code, msg) {
  const e = new Error(msg)
  e.returnCode = code
  return e
}

const broker = new Aedes({
  id: 'iothub-sim',
  heartbeatInterval: 60000,
  connectTimeout: 30000,
  maxClientsIdLength: 512
})

broker.preConnect = (client, packet, cb) => cb(null, linkUp)

broker.authenticate = (client, username, password, cb) => {
  const fail = (code, why) => {
    stats.authFailures++
    log(`auth refused for client '${client.id}': ${why}`)
    cb(authError(code, why), false)
  }
  const cid = client.id || ''
  const slash = cid.indexOf('/')
  const d = slash < 0 ? cid : cid.slice(0, slash)
  const m = slash < 0 ? null : cid.slice(slash + 1)
  if (!d || m === '' || (m && m.includes('/'))) return fail(4, 'bad client id')
  if (typeof username !== 'string') return fail(4, 'no username')
  const q = username.indexOf('/?')
  let up = q < 0 ? username : username.slice(0, q)
  if (up.endsWith('/')) up = up.slice(0, -1)
  const expectedUser = `${HUB}/${cid}`
  const uslash = up.indexOf('/')
  if (uslash < 0 || up.slice(0, uslash).toLowerCase() !== HUB.toLowerCase() || up.slice(uslash + 1) !== cid) {
    return fail(4, `username '${username}' does not match '${expectedUser}/?...'`)
  }
  if (!password) return fail(4, 'no password')
  const ident = registry.getIdentity(d, m)
  if (!ident) return fail(5, `unknown identity ${cid}`)
  if (!registry.isEnabled(d, m)) return fail(5, `identity ${cid} is disabled`)
  const resource = m ? `${HUB}/devices/${d}/modules/${m}` : `${HUB}/devices/${d}`
  const token = password.toString('utf8')
  let v = { ok: false, reason: 'no keys' }
  if (!ident.authType || ident.authType === 'sas') v = validateSas(token, resource, [ident.primaryKey, ident.secondaryKey])
  if (!v.ok && !m) {
    // On behalf of a child device, as IoT Hub accepts from edgeHub: the child's client id and
    // username with a token of its parent edge's $edgeHub module. Only the parent may do this.
    const eh = ident.parent ? registry.getModule(ident.parent, '$edgeHub') : null
    const obo = eh ? validateSas(token, `${HUB}/devices/${ident.parent}/modules/$edgeHub`, [eh.primaryKey, eh.secondaryKey]) : { ok: false }
    if (obo.ok && registry.isEnabled(ident.parent, '$edgeHub')) {
      v = obo
      stats.onBehalfOf++
    } else if (ident.authType && ident.authType !== 'sas') {
      v = { ok: false, reason: ident.parent ? `not a token of ${ident.parent}/$edgeHub, the parent of ${cid}` : `${cid} has no parent edge to connect on its behalf` }
    }
  }
  if (!v.ok) return fail(4, v.reason)
  const eventsPrefix = m ? `devices/${d}/modules/${m}/messages/events` : `devices/${d}/messages/events`
  client.sim = {
    deviceId: d,
    moduleId: m,
    idx: telemetry.identityIndex(d, m),
    eventsExact: eventsPrefix,
    eventsPrefix: eventsPrefix + '/',
    ownPrefix: m ? `devices/${d}/modules/${m}/` : `devices/${d}/`,
    isDevice: !m
  }
  cb(null, true)
}

broker.authorizePublish = (client, packet, cb) => {
  if (!client) return cb(new Error('no client'))
  const s = client.sim
  if (!linkUp || !s) return cb(new Error('link down'))
  const t = packet.topic
  if (isTwinTopic(t)) {
    if (twins.handlePublish(client, client.id, t, packet.payload, log)) return cb(null)
    stats.publishDenied++
    log(`twin publish denied for '${client.id}' on '${t}'; closing connection`)
    return cb(new Error('publish not authorized'))
  }
  let bag; let noSlash = false
  if (t.startsWith(s.eventsPrefix)) bag = t.slice(s.eventsPrefix.length)
  else if (t === s.eventsExact) { bag = ''; noSlash = true } else if (t.startsWith('$iothub/methods/res/') && c2d.onMethodResponse(client, t, packet.payload)) {
    return cb(null)
  } else {
    stats.publishDenied++
    log(`publish denied for '${client.id}' on '${t}'; closing connection`)
    return cb(new Error('publish not authorized'))
  }
  // recorded before aedes sends PUBACK (QoS 1)
  telemetry.append(s.idx, bag, noSlash, packet.payload, packet.qos, packet.dup)
  cb(null)
}

broker.authorizeSubscribe = (client, sub, cb) => {
  const s = client && client.sim
  const t = sub.topic
  let ok = false
  if (s) {
    if (t.startsWith('$iothub/')) ok = true
    else if (t.startsWith(s.ownPrefix)) ok = !(s.isDevice && t.startsWith(s.ownPrefix + 'modules/'))
  }
  if (!ok) {
    stats.subscribeDenied++
    log(`subscribe denied for '${client && client.id}' on '${t}'; closing connection`)
    return cb(new Error('subscribe not authorized'))
  }
  cb(null, sub)
}

// Telemetry goes to the "cloud", never back to MQTT subscribers.
// Method replies and twin requests are for the simulated service, never for other subscribers.
broker.authorizeForward = (client, packet) => (packet.topic.includes('/messages/events') ||
  packet.topic.startsWith('$iothub/methods/res/') ||
  packet.topic.startsWith('$iothub/twin/GET/') || packet.topic.startsWith('$iothub/twin/PATCH/properties/reported/')
  ? null
  : packet)

broker.on('client', (c) => { stats.connects++; vlog(`connected '${c.id}'`) })
broker.on('clientDisconnect', (c) => { stats.disconnects++; vlog(`disconnected '${c.id}'`) })
broker.on('clientError', (c, err) => vlog(`client '${c && c.id}' error: ${err.message}`))
broker.on('connectionError', (c, err) => vlog(`connection error: ${err.message}`))

function connectedClients () {
  return Object.values(broker.clients).filter(c => !c.closed)
}

const c2d = new CloudToDevice({ clients: connectedClients, registry, log })
broker.on('subscribe', (subs, client) => c2d.onSubscribe(client))

registry.onKick = (d, m) => {
  for (const c of Object.values(broker.clients)) {
    const s = c.sim
    if (!s || s.deviceId !== d) continue
    if (m !== null && s.moduleId !== m) continue
    log(`kicking '${c.id}'`)
    c.close()
  }
}

// ---------------------------------------------------------------- listeners
// A "listener" owns a server and every socket it accepted, so a link cut can
// close the listening socket (new connects are refused) and destroy them all.
class Listener {
  constructor (name, port, factory) {
    this.name = name; this.port = port; this.factory = factory
    this.server = null; this.sockets = new Set()
  }

  start () {
    return new Promise((resolve, reject) => {
      const srv = this.factory()
      srv.on('connection', (sock) => {
        if (!linkUp) { sock.destroy(); return }
        this.sockets.add(sock)
        sock.on('close', () => this.sockets.delete(sock))
      })
      srv.once('error', reject)
      srv.listen(this.port, HOST, () => {
        srv.removeListener('error', reject)
        srv.on('error', (e) => log(`${this.name} server error: ${e.message}`))
        this.port = srv.address().port
        this.server = srv
        resolve()
      })
    })
  }

  stop () {
    if (this.server) { this.server.close(); this.server = null }
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }
}

const mqttListener = new Listener('mqtt', opts['mqtt-port'], () => {
  const srv = tls.createServer(tlsOpts, broker.handle)
  srv.on('tlsClientError', (e) => vlog(`mqtt tls error: ${e.message}`))
  return srv
})
const scopeListener = new Listener('https', opts['https-port'], () => {
  const srv = https.createServer(tlsOpts, (req, res) => handleScope(req, res))
  srv.on('tlsClientError', (e) => vlog(`https tls error: ${e.message}`))
  return srv
})

// ---------------------------------------------------------------- scope API
function sendJson (res, status, obj) {
  const body = obj === undefined ? '' : JSON.stringify(obj)
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}

function splitPath (pathname) {
  return pathname.split('/').filter(Boolean).map((s) => {
    try { return decodeURIComponent(s) } catch { return null }
  })
}

function handleScope (req, res) {
  stats.scopeRequests++
  try {
    const url = new URL(req.url, 'https://x')
    const seg = splitPath(url.pathname)
    // devices/{edge}/modules/$edgeHub/devicesAndModulesInDeviceScope
    if (req.method !== 'GET' || seg.length !== 5 || seg[0] !== 'devices' || seg[2] !== 'modules' ||
        seg[3] !== '$edgeHub' || seg[4] !== 'devicesAndModulesInDeviceScope' || seg[1] === null) {
      return sendJson(res, 404, { Message: 'ErrorCode:NotFound;unknown route', ExceptionMessage: '' })
    }
    const edgeId = seg[1]
    const edge = registry.getDevice(edgeId)
    if (!edge || !edge.iotEdge) return sendJson(res, 404, { Message: `ErrorCode:DeviceNotFound;${edgeId}` })
    const eh = edge.modules.get('$edgeHub')
    const resource = `${HUB}/devices/${edgeId}/modules/$edgeHub`
    const v = eh ? validateSas(req.headers.authorization || '', resource, [eh.primaryKey, eh.secondaryKey]) : { ok: false, reason: 'no $edgeHub' }
    if (!v.ok || edge.status !== 'enabled') {
      stats.scopeAuthFailures++
      log(`scope request refused: ${v.ok ? 'edge disabled' : v.reason}`)
      return sendJson(res, 401, { Message: 'ErrorCode:IotHubUnauthorizedAccess;Unauthorized' })
    }
    let pageSize = Number(url.searchParams.get('pageSize') ?? 1000)
    if (!Number.isFinite(pageSize)) pageSize = 1000
    pageSize = Math.min(1000, Math.max(1, Math.floor(pageSize)))
    let offset = 0
    const tok = url.searchParams.get('continuationToken')
    if (tok) {
      let parsed = null
      try { parsed = JSON.parse(Buffer.from(tok, 'base64url').toString('utf8')) } catch {}
      if (!parsed || parsed.e !== edgeId || !Number.isInteger(parsed.o) || parsed.o < 0) {
        return sendJson(res, 400, { Message: 'ErrorCode:ArgumentInvalid;bad continuationToken' })
      }
      offset = parsed.o
    }
    const items = registry.scopeItems(edgeId)
    const page = items.slice(offset, offset + pageSize)
    const devices = []; const modules = []
    for (const it of page) {
      if (it.kind === 'device') devices.push(registry.serializeDevice(it.v))
      else modules.push(registry.serializeModule(it.v))
    }
    let continuationLink = null
    if (offset + pageSize < items.length) {
      const next = Buffer.from(JSON.stringify({ e: edgeId, o: offset + pageSize })).toString('base64url')
      const apiVersion = url.searchParams.get('api-version') || '2018-08-30-preview'
      continuationLink = `/devices/${encodeURIComponent(edgeId)}/modules/%24edgeHub/devicesAndModulesInDeviceScope` +
        `?api-version=${encodeURIComponent(apiVersion)}&pageSize=${pageSize}&continuationToken=${next}`
    }
    sendJson(res, 200, { devices, modules, continuationLink })
  } catch (e) {
    log(`scope handler error: ${e.stack}`)
    sendJson(res, 500, { Message: 'internal error' })
  }
}

// ---------------------------------------------------------------- link control
async function cutLink () {
  if (!linkUp) return
  linkUp = false
  stats.linkCuts++
  mqttListener.stop()
  scopeListener.stop()
  // aedes clients whose sockets are gone are cleaned up by their close events;
  // make sure none is left behind.
  for (const c of Object.values(broker.clients)) c.close()
  log('link CUT')
}

async function restoreLink () {
  if (linkUp) return
  linkUp = true
  await mqttListener.start()
  await scopeListener.start()
  log('link RESTORED')
}

// ---------------------------------------------------------------- control API
const MAX_BODY = 1 << 20

function readBody (req) {
  return new Promise((resolve, reject) => {
    const parts = []; let n = 0
    req.on('data', (c) => {
      n += c.length
      if (n > MAX_BODY) { reject(new HttpError(413, 'body too large')); req.destroy(); return }
      parts.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')))
    req.on('error', reject)
  })
}

async function readJson (req) {
  const text = await readBody(req)
  if (text.trim() === '') return {}
  try { return JSON.parse(text) } catch (e) { throw new HttpError(400, `bad JSON: ${e.message}`) }
}

function intParam (url, name, dflt) {
  const v = url.searchParams.get(name)
  if (v === null) return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new HttpError(400, `bad ${name}`)
  return n
}

async function handleControl (req, res) {
  const url = new URL(req.url, 'http://x')
  const seg = splitPath(url.pathname)
  if (seg.includes(null)) throw new HttpError(400, 'bad path encoding')
  const M = req.method
  const r0 = seg[0]

  if (r0 === 'identities') {
    if (seg.length === 1 && M === 'GET') return sendJson(res, 200, { identities: registry.list() })
    if (seg.length === 1 && M === 'POST') {
      const b = await readJson(req)
      return sendJson(res, 201, registry.view(registry.add(b)))
    }
    if (seg.length === 2 || seg.length === 3) {
      const d = seg[1]; const m = seg[2] || null
      if (M === 'GET') {
        const i = registry.getIdentity(d, m)
        if (!i) throw new HttpError(404, 'not found')
        return sendJson(res, 200, registry.view(i))
      }
      if (M === 'DELETE') { registry.remove(d, m); return sendJson(res, 200, { deleted: m ? `${d}/${m}` : d }) }
      if (M === 'PATCH') {
        const b = await readJson(req)
        return sendJson(res, 200, registry.view(registry.patch(d, m, b)))
      }
    }
  } else if (r0 === 'link') {
    if (seg.length === 1 && M === 'GET') return sendJson(res, 200, { up: linkUp })
    if (seg.length === 2 && M === 'POST' && seg[1] === 'cut') { await cutLink(); return sendJson(res, 200, { up: linkUp }) }
    if (seg.length === 2 && M === 'POST' && seg[1] === 'restore') { await restoreLink(); return sendJson(res, 200, { up: linkUp }) }
  } else if (r0 === 'telemetry') {
    if (seg.length === 1 && M === 'GET') {
      const q = {
        identity: url.searchParams.get('identity'),
        since: intParam(url, 'since', 0),
        limit: intParam(url, 'limit', 10000)
      }
      return sendJson(res, 200, { records: telemetry.query(q) })
    }
    if (seg.length === 1 && M === 'DELETE') { telemetry.clear(); return sendJson(res, 200, { cleared: true }) }
    if (seg.length === 2 && seg[1] === 'count' && M === 'GET') return sendJson(res, 200, telemetry.countView())
  } else if ((r0 === 'c2d' || r0 === 'methods') && (seg.length === 2 || seg.length === 3) && M === 'POST') {
    const b = await readJson(req)
    const r = r0 === 'c2d' ? c2d.sendC2d(seg[1], seg[2] || null, b) : await c2d.invokeMethod(seg[1], seg[2] || null, b)
    return sendJson(res, r.status, r.body)
  } else if (r0 === 'twins') {
    const clientsOf = (id) => connectedClients().filter(c => c.id === id && c.sim)
    return handleTwinControl({ req, res, url, seg, twins, registry, clientsOf, readJson, sendJson })
  } else if (r0 === 'connections' && seg.length === 1 && M === 'GET') {
    return sendJson(res, 200, { connections: connectedClients().map(c => c.id) })
  } else if (r0 === 'stats' && seg.length === 1 && M === 'GET') {
    return sendJson(res, 200, { ...stats, ...c2d.stats, linkUp, connected: connectedClients().length, telemetryTotal: telemetry.total })
  }
  throw new HttpError(404, `no route ${M} ${url.pathname}`)
}

const control = http.createServer((req, res) => {
  handleControl(req, res).catch((e) => {
    const status = e instanceof HttpError ? e.status : 500
    if (status === 500) log(`control error: ${e.stack}`)
    if (!res.headersSent) sendJson(res, status, { error: e.message })
    else res.destroy()
  })
})

// ---------------------------------------------------------------- start/stop
async function main () {
  await broker.listen()
  await mqttListener.start()
  await scopeListener.start()
  await new Promise((resolve, reject) => {
    control.once('error', reject)
    control.listen(opts['control-port'], HOST, resolve)
  })
  log(`hub=${HUB} mqtt=${HOST}:${mqttListener.port} https=${HOST}:${scopeListener.port} control=${HOST}:${control.address().port}`)
  process.stdout.write('READY\n')
}

let stopping = false
function shutdown (sig) {
  if (stopping) return
  stopping = true
  log(`${sig}: shutting down`)
  try { saveState() } catch (e) { log(`saving state failed: ${e.message}`) }
  mqttListener.stop()
  scopeListener.stop()
  control.close()
  control.closeAllConnections()
  broker.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))

main().catch((e) => {
  log(`startup failed: ${e.stack}`)
  process.exit(1)
})
