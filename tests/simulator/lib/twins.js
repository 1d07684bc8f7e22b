// Device and module twins: desired/reported properties with $version, the
// MQTT twin protocol of IoT Hub, and a log of reported patches for tests.
//   $iothub/twin/GET/?$rid=R                      -> $iothub/twin/res/200/?$rid=R  {desired, reported}
//   $iothub/twin/PATCH/properties/reported/?$rid=R -> $iothub/twin/res/204/?$rid=R&$version=V
//   desired patch (control API)                   -> $iothub/twin/PATCH/properties/desired/?$version=V
// A new twin starts at $version 1 for both sides, as in IoT Hub.
import { HttpError } from './registry.js'

const TWIN_PREFIX = '$iothub/twin/'
const MAX_REPORTED_LOG = 100000

// RFC 7386 merge patch into target (an object), in place; nulls delete.
export function mergePatch (target, patch) {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete target[k]
    else if (isObject(v)) {
      if (!isObject(target[k])) target[k] = {}
      mergePatch(target[k], v)
    } else target[k] = structuredClone(v)
  }
  return target
}

function isObject (v) { return v !== null && typeof v === 'object' && !Array.isArray(v) }

function parseQuery (topic) {
  const q = topic.indexOf('?')
  return new URLSearchParams(q < 0 ? '' : topic.slice(q + 1))
}

export class TwinStore {
  constructor () {
    this.twins = new Map() // identity -> { desired, reported, desiredVersion, reportedVersion }
    this.reportedLog = [] // { seq, identity, rid, version, patch, receivedAt }
    this.nextSeq = 1
    this.stats = { gets: 0, reportedPatches: 0, reportedRejected: 0, desiredPatches: 0, desiredNotified: 0 }
    this.failReported = new Map() // identity -> status to answer instead (fault injection)
  }

  twin (identity) {
    let t = this.twins.get(identity)
    if (!t) {
      t = { desired: {}, reported: {}, desiredVersion: 1, reportedVersion: 1 }
      this.twins.set(identity, t)
    }
    return t
  }

  view (identity) {
    const t = this.twin(identity)
    return {
      desired: { ...structuredClone(t.desired), $version: t.desiredVersion },
      reported: { ...structuredClone(t.reported), $version: t.reportedVersion }
    }
  }

  // A publish from a device connection on $iothub/twin/... Returns true when
  // handled (the caller lets aedes PUBACK it), false when the topic is not a
  // twin request (the caller refuses it).
  handlePublish (client, identity, topic, payload, log) {
    if (!topic.startsWith(TWIN_PREFIX)) return false
    const rest = topic.slice(TWIN_PREFIX.length)
    const rid = parseQuery(topic).get('$rid')
    const reply = (status, version, body) => {
      if (rid === null) return // IoT Hub answers nothing without a $rid
      let t = `$iothub/twin/res/${status}/?$rid=${rid}`
      if (version !== undefined) t += `&$version=${version}`
      client.publish({ topic: t, payload: Buffer.from(body === undefined ? '' : JSON.stringify(body)), qos: 0, retain: false }, () => {})
    }
    if (rest.startsWith('GET/')) {
      this.stats.gets++
      reply(200, undefined, this.view(identity))
      return true
    }
    if (rest.startsWith('PATCH/properties/reported/')) {
      const fail = this.failReported.get(identity)
      if (fail) { this.stats.reportedRejected++; reply(fail, undefined, { message: 'injected failure' }); return true }
      let patch
      try { patch = JSON.parse(payload.toString('utf8')) } catch { patch = undefined }
      if (!isObject(patch)) {
        this.stats.reportedRejected++
        log(`reported patch from '${identity}' is not a JSON object`)
        reply(400, undefined, { message: 'bad patch' })
        return true
      }
      const t = this.twin(identity)
      mergePatch(t.reported, patch)
      t.reportedVersion++
      this.stats.reportedPatches++
      this.reportedLog.push({ seq: this.nextSeq++, identity, rid, version: t.reportedVersion, patch, receivedAt: Date.now() })
      if (this.reportedLog.length > MAX_REPORTED_LOG) this.reportedLog.shift()
      reply(204, t.reportedVersion)
      return true
    }
    return false
  }

  // Control API: merge a desired patch, bump the version, notify every
  // connection of that identity. clients: the identity's live connections.
  patchDesired (identity, patch, clients) {
    if (!isObject(patch)) throw new HttpError(400, 'desired patch must be a JSON object')
    const t = this.twin(identity)
    mergePatch(t.desired, patch)
    t.desiredVersion++
    this.stats.desiredPatches++
    const body = Buffer.from(JSON.stringify({ ...patch, $version: t.desiredVersion }))
    for (const c of clients) {
      this.stats.desiredNotified++
      c.publish({ topic: `$iothub/twin/PATCH/properties/desired/?$version=${t.desiredVersion}`, payload: body, qos: 0, retain: false }, () => {})
    }
    return this.view(identity)
  }

  // Control API: replace desired whole (a version bump, no notification):
  // what a cloud-side change that devices missed looks like.
  replaceDesired (identity, desired, bumpBy = 1) {
    if (!isObject(desired)) throw new HttpError(400, 'desired must be a JSON object')
    const t = this.twin(identity)
    t.desired = structuredClone(desired)
    t.desiredVersion += bumpBy
    return this.view(identity)
  }

  list () {
    return [...this.twins.entries()].map(([identity, t]) => ({
      identity, desiredVersion: t.desiredVersion, reportedVersion: t.reportedVersion
    }))
  }

  reported ({ identity = null, since = 0 } = {}) {
    return this.reportedLog.filter(r => r.seq > since && (identity === null || r.identity === identity))
  }
}

// Routes under /twins of the control API. seg: decoded path segments.
//   GET    /twins                                  all twins with versions, stats
//   GET    /twins/reported?identity=&since=        reported patches received, in order
//   GET    /twins/{d}[/{m}]                        the full twin
//   PATCH  /twins/{d}[/{m}]/desired                merge a desired patch, notify
//   PUT    /twins/{d}[/{m}]/desired                replace desired silently (?bump=N)
//   PUT    /twins/{d}[/{m}]/fail-reported          {status}: answer reported patches with it; {status: 0} clears
export async function handleTwinControl ({ req, res, url, seg, twins, registry, clientsOf, readJson, sendJson }) {
  const M = req.method
  if (seg.length === 1 && M === 'GET') return sendJson(res, 200, { twins: twins.list(), stats: twins.stats })
  if (seg.length === 2 && seg[1] === 'reported' && M === 'GET') {
    const since = Number(url.searchParams.get('since') ?? 0)
    return sendJson(res, 200, { patches: twins.reported({ identity: url.searchParams.get('identity'), since }) })
  }
  let action = null
  let ids = seg.slice(1)
  if (ids.length >= 2 && ['desired', 'fail-reported'].includes(ids[ids.length - 1])) {
    action = ids[ids.length - 1]
    ids = ids.slice(0, -1)
  }
  if (ids.length < 1 || ids.length > 2) throw new HttpError(404, 'no such twin route')
  const d = ids[0]; const m = ids[1] || null
  if (!registry.getIdentity(d, m)) throw new HttpError(404, `unknown identity ${m ? d + '/' + m : d}`)
  const identity = m ? `${d}/${m}` : d
  if (action === null && M === 'GET') return sendJson(res, 200, twins.view(identity))
  if (action === 'desired' && M === 'PATCH') return sendJson(res, 200, twins.patchDesired(identity, await readJson(req), clientsOf(identity)))
  if (action === 'desired' && M === 'PUT') {
    const bump = Number(url.searchParams.get('bump') ?? 1)
    return sendJson(res, 200, twins.replaceDesired(identity, await readJson(req), bump))
  }
  if (action === 'fail-reported' && M === 'PUT') {
    const b = await readJson(req)
    if (b.status) twins.failReported.set(identity, b.status)
    else twins.failReported.delete(identity)
    return sendJson(res, 200, { identity, failReported: b.status || null })
  }
  throw new HttpError(404, `no route ${M} ${url.pathname}`)
}

export function isTwinTopic (topic) { return topic.startsWith(TWIN_PREFIX) }
