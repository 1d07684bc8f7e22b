// Compact, append-only telemetry store: O(1) per message, columnar typed
// arrays plus a chunked payload arena (no per-message Buffer object kept).
const ARENA_CHUNK = 8 * 1024 * 1024
const utf8 = new TextDecoder('utf-8', { fatal: true })

function decodeBag (bag) {
  const props = {}
  if (!bag) return props
  // SDKs may end the bag with '/' (the Node SDK does for output events)
  if (bag.endsWith('/')) bag = bag.slice(0, -1)
  for (const kv of bag.split('&')) {
    if (!kv) continue
    const eq = kv.indexOf('=')
    const k = eq < 0 ? kv : kv.slice(0, eq)
    const v = eq < 0 ? '' : kv.slice(eq + 1)
    let dk = k; let dv = v
    try { dk = decodeURIComponent(k) } catch {}
    try { dv = decodeURIComponent(v) } catch {}
    props[dk] = dv
  }
  return props
}

export class TelemetryStore {
  constructor () {
    this.nextSeq = 1
    this.identities = [] // idx -> {identity, deviceId, moduleId, prefix}
    this.identIdx = new Map()
    this.counts = [] // idx -> count since last clear
    this._reset(1024)
  }

  _reset (cap) {
    this.baseSeq = this.nextSeq
    this.n = 0
    this.cap = cap
    this.ident = new Uint32Array(cap)
    this.flags = new Uint8Array(cap) // qos | dup<<2 | noSlash<<3
    this.recv = new Float64Array(cap)
    this.pchunk = new Uint32Array(cap)
    this.poff = new Uint32Array(cap)
    this.plen = new Uint32Array(cap)
    this.bags = [] // strings, '' when empty
    this._lastBag = ''
    this.chunks = []
    this.cur = null
    this.curOff = 0
    this.counts = new Array(this.identities.length).fill(0)
    this.first = null
    this.last = null
  }

  clear () { this._reset(1024) }

  _grow () {
    const cap = this.cap * 2
    const g = (A, old) => { const a = new A(cap); a.set(old); return a }
    this.ident = g(Uint32Array, this.ident)
    this.flags = g(Uint8Array, this.flags)
    this.recv = g(Float64Array, this.recv)
    this.pchunk = g(Uint32Array, this.pchunk)
    this.poff = g(Uint32Array, this.poff)
    this.plen = g(Uint32Array, this.plen)
    this.cap = cap
  }

  // Intern an identity; returns its index (cache it on the connection).
  identityIndex (deviceId, moduleId) {
    const identity = moduleId ? `${deviceId}/${moduleId}` : deviceId
    let i = this.identIdx.get(identity)
    if (i === undefined) {
      i = this.identities.length
      const prefix = moduleId ? `devices/${deviceId}/modules/${moduleId}/messages/events` : `devices/${deviceId}/messages/events`
      this.identities.push({ identity, deviceId, moduleId: moduleId || null, prefix })
      this.identIdx.set(identity, i)
      this.counts.push(0)
    }
    return i
  }

  append (identIndex, bag, noSlash, payload, qos, dup) {
    if (this.n === this.cap) this._grow()
    const i = this.n++
    const now = Date.now()
    this.ident[i] = identIndex
    this.flags[i] = (qos & 3) | (dup ? 4 : 0) | (noSlash ? 8 : 0)
    this.recv[i] = now
    // bag: copy out of the topic string so the topic can be collected
    // same bag as the previous message (common): share the string
    if (bag !== this._lastBag) this._lastBag = bag.length ? (' ' + bag).slice(1) : ''
    this.bags.push(this._lastBag)
    const len = payload.length
    if (this.cur === null || this.curOff + len > this.cur.length) {
      this.cur = Buffer.allocUnsafe(Math.max(ARENA_CHUNK, len))
      this.curOff = 0
      this.chunks.push(this.cur)
    }
    payload.copy(this.cur, this.curOff)
    this.pchunk[i] = this.chunks.length - 1
    this.poff[i] = this.curOff
    this.plen[i] = len
    this.curOff += len
    this.counts[identIndex]++
    if (this.first === null) this.first = now
    this.last = now
    return this.baseSeq + i
  }

  get total () { return this.n }

  countView () {
    const byIdentity = {}
    for (let i = 0; i < this.identities.length; i++) {
      if (this.counts[i]) byIdentity[this.identities[i].identity] = this.counts[i]
    }
    return { total: this.n, byIdentity, firstReceivedAt: this.first, lastReceivedAt: this.last, nextSeq: this.baseSeq + this.n }
  }

  record (i) {
    const id = this.identities[this.ident[i]]
    const f = this.flags[i]
    const bag = this.bags[i]
    const p = this.chunks[this.pchunk[i]].subarray(this.poff[i], this.poff[i] + this.plen[i])
    let text = null
    try { text = utf8.decode(p) } catch {}
    return {
      seq: this.baseSeq + i,
      identity: id.identity,
      deviceId: id.deviceId,
      moduleId: id.moduleId,
      topic: (f & 8) ? id.prefix : id.prefix + '/' + bag,
      properties: decodeBag(bag),
      payload: text,
      payload_b64: p.toString('base64'),
      qos: f & 3,
      dup: !!(f & 4),
      receivedAt: this.recv[i]
    }
  }

  // since: return records with seq > since. limit: max records.
  query ({ identity = null, since = 0, limit = 10000 } = {}) {
    const out = []
    const start = Math.max(0, since - this.baseSeq + 1)
    let want = -1
    if (identity !== null) {
      want = this.identIdx.get(identity)
      if (want === undefined) return out
    }
    for (let i = start; i < this.n && out.length < limit; i++) {
      if (want >= 0 && this.ident[i] !== want) continue
      out.push(this.record(i))
    }
    return out
  }
}
