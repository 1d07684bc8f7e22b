// Cloud-to-device traffic of the simulated IoT Hub: C2D messages and direct
// methods, each sent to one identity's own connections (never through the
// broker's fan-out: every connection subscribes to $iothub/methods/POST/#).
import crypto from 'node:crypto'
import { HttpError } from './registry.js'

// IoT Hub keeps at most 50 undelivered C2D messages per device.
const C2D_QUEUE_MAX = 50
const METHOD_TIMEOUT_DEFAULT = 30
const METHOD_TIMEOUT_MAX = 300

// MQTT topic filter match (+ one level, # the rest).
export function topicMatches (filter, topic) {
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}

function subscribedTo (client, topic) {
  return Object.keys(client.subscriptions || {}).some((f) => topicMatches(f, topic))
}

// IoT Hub's encoding of a property bag value: encodeURIComponent.
function encodeBag (props) {
  return Object.entries(props).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&')
}

function idOf (d, m) { return m ? `${d}/${m}` : d }

export class CloudToDevice {
  // clients(): the broker's live clients; registry: for "unknown identity"
  constructor ({ clients, registry, log }) {
    this.clients = clients
    this.registry = registry
    this.log = log
    this.c2dQueues = new Map() // identity -> [packet]
    this.pending = new Map() // rid -> { client, resolve, timer }
    this.nextRid = 1
    this.stats = { c2dSent: 0, c2dQueued: 0, methodCalls: 0, methodTimeouts: 0 }
  }

  connectionsOf (d, m) {
    return this.clients().filter((c) => c.sim && !c.closed && c.sim.deviceId === d && c.sim.moduleId === m)
  }

  _identity (d, m) {
    if (!this.registry.getIdentity(d, m)) throw new HttpError(404, `unknown identity ${idOf(d, m)}`)
  }

  // POST /c2d/{d}[/{m}] {payload, properties}: delivered now to every connection
  // of the identity subscribed to its devicebound topic, else queued until one
  // subscribes (IoT Hub queues C2D for offline devices).
  sendC2d (d, m, body) {
    this._identity(d, m)
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'body must be an object')
    const props = body.properties ?? {}
    if (typeof props !== 'object' || Array.isArray(props) || props === null) throw new HttpError(400, 'properties must be an object')
    const base = m ? `devices/${d}/modules/${m}/messages/devicebound/` : `devices/${d}/messages/devicebound/`
    const all = {
      ...props,
      '$.mid': props['$.mid'] ?? crypto.randomUUID(),
      '$.to': props['$.to'] ?? (m ? `/devices/${d}/modules/${m}/messages/deviceBound` : `/devices/${d}/messages/deviceBound`)
    }
    const p = body.payload
    const payload = p === undefined || p === null ? Buffer.alloc(0) : Buffer.from(typeof p === 'string' ? p : JSON.stringify(p))
    const packet = { cmd: 'publish', topic: base + encodeBag(all), payload, qos: 1, retain: false }
    const sent = this._deliverC2d(d, m, packet)
    if (sent > 0) return { status: 200, body: { delivered: sent, topic: packet.topic } }
    const q = this.c2dQueues.get(idOf(d, m)) ?? []
    if (q.length >= C2D_QUEUE_MAX) throw new HttpError(403, `C2D queue of ${idOf(d, m)} is full (${C2D_QUEUE_MAX})`)
    q.push(packet)
    this.c2dQueues.set(idOf(d, m), q)
    this.stats.c2dQueued++
    return { status: 202, body: { queued: q.length, topic: packet.topic } }
  }

  _deliverC2d (d, m, packet) {
    let n = 0
    for (const c of this.connectionsOf(d, m)) {
      if (!subscribedTo(c, packet.topic)) continue
      c.publish({ ...packet }, (err) => { if (err) this.log(`c2d to '${c.id}' failed: ${err.message}`) })
      n++
    }
    if (n > 0) this.stats.c2dSent++
    return n
  }

  // A client subscribed: hand it what was queued for it.
  onSubscribe (client) {
    const s = client.sim
    if (!s) return
    const id = idOf(s.deviceId, s.moduleId)
    const q = this.c2dQueues.get(id)
    if (!q) return
    const rest = q.filter((packet) => this._deliverC2d(s.deviceId, s.moduleId, packet) === 0)
    if (rest.length) this.c2dQueues.set(id, rest)
    else this.c2dQueues.delete(id)
  }

  // POST /methods/{d}[/{m}] {methodName, payload, responseTimeoutInSeconds}:
  // resolves {status, body} like IoT Hub's service API (200 {status, payload},
  // 404 not connected, 504 timeout).
  invokeMethod (d, m, body) {
    this._identity(d, m)
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'body must be an object')
    const name = body.methodName
    if (typeof name !== 'string' || name.length === 0 || name.includes('/') || name.includes('#') || name.includes('+')) {
      throw new HttpError(400, 'methodName must be a non-empty string without / # +')
    }
    const t = body.responseTimeoutInSeconds ?? METHOD_TIMEOUT_DEFAULT
    // The real hub's minimum is 5 s; shorter is allowed here so tests stay fast.
    if (typeof t !== 'number' || !(t > 0) || t > METHOD_TIMEOUT_MAX) {
      throw new HttpError(400, `responseTimeoutInSeconds must be a number in (0, ${METHOD_TIMEOUT_MAX}]`)
    }
    const rid = String(this.nextRid++)
    const topic = `$iothub/methods/POST/${name}/?$rid=${rid}`
    const target = this.connectionsOf(d, m).find((c) => subscribedTo(c, topic))
    if (!target) {
      return Promise.resolve({ status: 404, body: { errorCode: 404103, message: `Timed out waiting for device ${idOf(d, m)} to connect (not connected or not subscribed to methods)` } })
    }
    this.stats.methodCalls++
    const payload = Buffer.from(JSON.stringify(body.payload === undefined ? null : body.payload))
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid)
        this.stats.methodTimeouts++
        resolve({ status: 504, body: { errorCode: 504101, message: `Timed out waiting for the response from device ${idOf(d, m)}` } })
      }, t * 1000)
      this.pending.set(rid, { identity: idOf(d, m), resolve, timer })
      target.publish({ cmd: 'publish', topic, payload, qos: 0, retain: false }, (err) => {
        if (err) this.log(`method call to '${target.id}' failed: ${err.message}`)
      })
    })
  }

  // A device published $iothub/methods/res/{status}/?$rid=R. True if it was
  // well-formed (a reply to nothing is ignored, as IoT Hub does).
  onMethodResponse (client, topic, payload) {
    const m = /^\$iothub\/methods\/res\/(\d{3})\/\?(.*)$/.exec(topic)
    if (!m) return false
    const rid = new URLSearchParams(m[2]).get('$rid')
    const p = rid !== null && this.pending.get(rid)
    if (!p || !client.sim || p.identity !== idOf(client.sim.deviceId, client.sim.moduleId)) return true
    this.pending.delete(rid)
    clearTimeout(p.timer)
    let parsed = null
    const text = payload.toString('utf8')
    if (text.length > 0) {
      try { parsed = JSON.parse(text) } catch {
        p.resolve({ status: 400, body: { errorCode: 400027, message: 'device response payload is not JSON' } })
        return true
      }
    }
    p.resolve({ status: 200, body: { status: Number(m[1]), payload: parsed } })
    return true
  }
}
