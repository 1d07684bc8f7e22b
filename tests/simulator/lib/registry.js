// Identity registry with IoT Hub rules for edge devices and parent/child scope.
import crypto from 'node:crypto'

export class HttpError extends Error {
  constructor (status, message) { super(message); this.status = status }
}

const SYSTEM_MODULES = ['$edgeHub', '$edgeAgent']
const ID_RE = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/

function genKey () { return crypto.randomBytes(32).toString('base64') }
function genGeneration () {
  // IoT Hub generation ids are 18-digit decimal strings
  return '63' + String(Date.now()).padStart(13, '0') + String(crypto.randomInt(0, 1000)).padStart(3, '0')
}
function checkKey (k, name) {
  if (k === undefined || k === null) return
  if (typeof k !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(k) || k.length % 4 !== 0) {
    throw new HttpError(400, `${name} must be a base64 string`)
  }
  const n = Buffer.from(k, 'base64').length
  if (n < 16 || n > 64) throw new HttpError(400, `${name} must decode to 16..64 bytes`)
}
function checkId (id, name) {
  if (typeof id !== 'string' || !ID_RE.test(id)) throw new HttpError(400, `invalid ${name}`)
}

const AUTH_TYPES = ['sas', 'selfSigned', 'certificateAuthority']
const THUMBPRINT = /^([0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/

// authType and thumbprints of a device body, over the current ones (cur).
function checkAuth (b, cur) {
  const out = { authType: cur.authType || 'sas', primaryThumbprint: cur.primaryThumbprint ?? null, secondaryThumbprint: cur.secondaryThumbprint ?? null }
  if (b.authType !== undefined) {
    if (!AUTH_TYPES.includes(b.authType)) throw new HttpError(400, `authType must be one of ${AUTH_TYPES.join('|')}`)
    out.authType = b.authType
  }
  for (const k of ['primaryThumbprint', 'secondaryThumbprint']) {
    if (b[k] === undefined) continue
    if (b[k] !== null && (typeof b[k] !== 'string' || !THUMBPRINT.test(b[k]))) throw new HttpError(400, `${k} must be 40 or 64 hex digits or null`)
    out[k] = b[k] === null ? null : b[k].toUpperCase()
  }
  if (out.authType === 'selfSigned' && !out.primaryThumbprint && !out.secondaryThumbprint) throw new HttpError(400, 'selfSigned needs a thumbprint')
  return out
}

export class Registry {
  constructor (hubName) {
    this.hub = hubName
    this.devices = new Map() // deviceId -> device
    this.onChange = () => {}
    this.onKick = () => {} // (deviceId, moduleId|null)  moduleId null = device and all its modules
    this._etag = 0
  }

  _etagNext () { return Buffer.from(String(++this._etag).padStart(8, '0')).toString('base64') }

  getDevice (d) { return this.devices.get(d) || null }
  getModule (d, m) { const dev = this.devices.get(d); return (dev && dev.modules.get(m)) || null }
  getIdentity (d, m) { return m ? this.getModule(d, m) : this.getDevice(d) }
  // enabled: a module is usable if its device is enabled
  isEnabled (d, m) {
    const dev = this.devices.get(d)
    if (!dev || dev.status !== 'enabled') return false
    return m ? dev.modules.has(m) : true
  }

  addDevice (b) {
    checkId(b.deviceId, 'deviceId')
    if (this.devices.has(b.deviceId)) throw new HttpError(409, `device ${b.deviceId} exists`)
    const status = b.status ?? 'enabled'
    if (status !== 'enabled' && status !== 'disabled') throw new HttpError(400, 'status must be enabled|disabled')
    checkKey(b.primaryKey, 'primaryKey'); checkKey(b.secondaryKey, 'secondaryKey')
    const iotEdge = !!b.iotEdge
    const parent = b.parent ?? null
    if (parent !== null) this._checkParent(parent, iotEdge)
    const auth = checkAuth(b, { authType: 'sas', primaryThumbprint: null, secondaryThumbprint: null })
    const dev = {
      deviceId: b.deviceId,
      status,
      ...auth,
      primaryKey: b.primaryKey || genKey(),
      secondaryKey: b.secondaryKey || genKey(),
      iotEdge,
      parent,
      generationId: genGeneration(),
      etag: this._etagNext(),
      modules: new Map()
    }
    this.devices.set(dev.deviceId, dev)
    if (iotEdge) {
      const given = (b.modules && typeof b.modules === 'object') ? b.modules : {}
      for (const m of SYSTEM_MODULES) {
        const g = given[m] || {}
        checkKey(g.primaryKey, `${m}.primaryKey`); checkKey(g.secondaryKey, `${m}.secondaryKey`)
        this._newModule(dev, m, g.primaryKey, g.secondaryKey)
      }
    }
    this.onChange()
    return dev
  }

  _newModule (dev, m, pk, sk) {
    const mod = {
      deviceId: dev.deviceId,
      moduleId: m,
      primaryKey: pk || genKey(),
      secondaryKey: sk || genKey(),
      generationId: genGeneration(),
      etag: this._etagNext(),
      managedBy: dev.iotEdge ? 'iotEdge' : null
    }
    dev.modules.set(m, mod)
    return mod
  }

  _checkParent (parent, childIsEdge) {
    if (childIsEdge) throw new HttpError(400, 'an iotEdge device cannot be a child')
    if (typeof parent !== 'string') throw new HttpError(400, 'parent must be a deviceId or null')
    const p = this.devices.get(parent)
    if (!p) throw new HttpError(400, `parent ${parent} does not exist`)
    if (!p.iotEdge) throw new HttpError(400, `parent ${parent} is not an iotEdge device`)
  }

  addModule (b) {
    checkId(b.deviceId, 'deviceId'); checkId(b.moduleId, 'moduleId')
    const dev = this.devices.get(b.deviceId)
    if (!dev) throw new HttpError(404, `device ${b.deviceId} not found`)
    if (dev.modules.has(b.moduleId)) throw new HttpError(409, `module ${b.deviceId}/${b.moduleId} exists`)
    checkKey(b.primaryKey, 'primaryKey'); checkKey(b.secondaryKey, 'secondaryKey')
    const mod = this._newModule(dev, b.moduleId, b.primaryKey, b.secondaryKey)
    this.onChange()
    return mod
  }

  add (b) {
    if (!b || typeof b !== 'object' || Array.isArray(b)) throw new HttpError(400, 'body must be an object')
    return (b.moduleId !== undefined && b.moduleId !== null) ? this.addModule(b) : this.addDevice(b)
  }

  remove (d, m) {
    const dev = this.devices.get(d)
    if (!dev) throw new HttpError(404, `device ${d} not found`)
    if (m) {
      if (!dev.modules.has(m)) throw new HttpError(404, `module ${d}/${m} not found`)
      dev.modules.delete(m)
      this.onKick(d, m)
    } else {
      this.devices.delete(d)
      if (dev.iotEdge) {
        for (const c of this.devices.values()) if (c.parent === d) { c.parent = null; c.etag = this._etagNext() }
      }
      this.onKick(d, null)
    }
    this.onChange()
  }

  patch (d, m, b) {
    if (!b || typeof b !== 'object' || Array.isArray(b)) throw new HttpError(400, 'body must be an object')
    const ident = this.getIdentity(d, m)
    if (!ident) throw new HttpError(404, m ? `module ${d}/${m} not found` : `device ${d} not found`)
    checkKey(b.primaryKey, 'primaryKey'); checkKey(b.secondaryKey, 'secondaryKey')
    if (m && (b.status !== undefined || b.parent !== undefined)) throw new HttpError(400, 'modules have no status/parent')
    if (b.status !== undefined && b.status !== 'enabled' && b.status !== 'disabled') throw new HttpError(400, 'status must be enabled|disabled')
    if (b.parent !== undefined && b.parent !== null) {
      this._checkParent(b.parent, ident.iotEdge)
      if (ident.parent !== null && ident.parent !== b.parent) {
        throw new HttpError(409, `device ${d} already has parent ${ident.parent}; unset it first`)
      }
    }
    if (m && (b.authType !== undefined || b.primaryThumbprint !== undefined || b.secondaryThumbprint !== undefined)) {
      throw new HttpError(400, 'modules authenticate with sas only here')
    }
    if (!m) Object.assign(ident, checkAuth(b, ident))
    if (b.primaryKey) ident.primaryKey = b.primaryKey
    if (b.secondaryKey) ident.secondaryKey = b.secondaryKey
    if (b.parent !== undefined) ident.parent = b.parent
    let kick = false
    if (b.status !== undefined) {
      kick = ident.status === 'enabled' && b.status === 'disabled'
      ident.status = b.status
    }
    ident.etag = this._etagNext()
    if (kick) this.onKick(d, null)
    this.onChange()
    return ident
  }

  // Public JSON form for the control API.
  view (ident) {
    if (ident.moduleId !== undefined) {
      return {
        type: 'module',
        deviceId: ident.deviceId,
        moduleId: ident.moduleId,
        primaryKey: ident.primaryKey,
        secondaryKey: ident.secondaryKey,
        generationId: ident.generationId,
        etag: ident.etag,
        connectionString: `HostName=${this.hub};DeviceId=${ident.deviceId};ModuleId=${ident.moduleId};SharedAccessKey=${ident.primaryKey}`
      }
    }
    return {
      type: 'device',
      deviceId: ident.deviceId,
      status: ident.status,
      authType: ident.authType,
      primaryThumbprint: ident.primaryThumbprint,
      secondaryThumbprint: ident.secondaryThumbprint,
      iotEdge: ident.iotEdge,
      parent: ident.parent,
      primaryKey: ident.primaryKey,
      secondaryKey: ident.secondaryKey,
      generationId: ident.generationId,
      etag: ident.etag,
      modules: [...ident.modules.keys()],
      connectionString: `HostName=${this.hub};DeviceId=${ident.deviceId};SharedAccessKey=${ident.primaryKey}`
    }
  }

  list () {
    const out = []
    for (const dev of this.devices.values()) {
      out.push(this.view(dev))
      for (const mod of dev.modules.values()) out.push(this.view(mod))
    }
    return out
  }

  // Serializable form (for --state and --registry files): devices first.
  dump () {
    const devs = []; const mods = []
    for (const dev of this.devices.values()) {
      devs.push({ deviceId: dev.deviceId, status: dev.status, iotEdge: dev.iotEdge, primaryKey: dev.primaryKey, secondaryKey: dev.secondaryKey, authType: dev.authType, primaryThumbprint: dev.primaryThumbprint, secondaryThumbprint: dev.secondaryThumbprint, _parent: dev.parent })
      for (const mod of dev.modules.values()) mods.push({ deviceId: mod.deviceId, moduleId: mod.moduleId, primaryKey: mod.primaryKey, secondaryKey: mod.secondaryKey })
    }
    // parents are applied after all devices exist
    return { identities: [...devs.map(({ _parent, ...d }) => d), ...mods, ...devs.filter(d => d._parent).map(d => ({ deviceId: d.deviceId, parent: d._parent, _patch: true }))] }
  }

  // Load {identities:[...]} with upsert semantics: a module entry that collides
  // with an auto-created $edgeHub/$edgeAgent sets its keys; parent links are
  // applied after every device exists; "_patch" entries are PATCHes.
  load (obj) {
    if (!obj || !Array.isArray(obj.identities)) throw new HttpError(400, 'registry file must be {identities:[...]}')
    const save = this.onChange; this.onChange = () => {}
    try {
      const parents = []
      for (const e of obj.identities) {
        if (e._patch) { parents.push(e); continue }
        if (e.moduleId) {
          if (this.getModule(e.deviceId, e.moduleId)) this.patch(e.deviceId, e.moduleId, { primaryKey: e.primaryKey, secondaryKey: e.secondaryKey })
          else this.addModule(e)
        } else {
          const { parent, ...rest } = e
          this.addDevice(rest)
          if (parent) parents.push({ deviceId: e.deviceId, parent })
        }
      }
      for (const p of parents) this.patch(p.deviceId, null, { parent: p.parent })
    } finally { this.onChange = save }
    this.onChange()
  }

  // ---- device scope (edgeHub scope API) ----
  scopeOf (dev) { return `ms-azure-iot-edge://${dev.deviceId}-${dev.generationId}` }

  // Ordered list of scope items: devices then modules.
  scopeItems (edgeId) {
    const edge = this.devices.get(edgeId)
    const devs = [edge]
    for (const d of this.devices.values()) if (d.parent === edgeId) devs.push(d)
    const mods = []
    for (const d of devs) for (const m of d.modules.values()) mods.push(m)
    return [...devs.map(d => ({ kind: 'device', v: d })), ...mods.map(m => ({ kind: 'module', v: m }))]
  }

  // As IoT Hub serves it: an X.509 identity has no keys, a selfSigned one its thumbprints.
  _auth (x) {
    const type = x.authType || 'sas'
    return {
      symmetricKey: type === 'sas' ? { primaryKey: x.primaryKey, secondaryKey: x.secondaryKey } : { primaryKey: null, secondaryKey: null },
      x509Thumbprint: type === 'selfSigned' ? { primaryThumbprint: x.primaryThumbprint, secondaryThumbprint: x.secondaryThumbprint } : { primaryThumbprint: null, secondaryThumbprint: null },
      type
    }
  }

  serializeDevice (d) {
    let deviceScope = null; let parentScopes = []
    if (d.iotEdge) deviceScope = this.scopeOf(d)
    if (d.parent) {
      const p = this.devices.get(d.parent)
      if (p) {
        parentScopes = [this.scopeOf(p)]
        if (!d.iotEdge) deviceScope = this.scopeOf(p)
      }
    }
    return {
      deviceId: d.deviceId,
      generationId: d.generationId,
      etag: d.etag,
      connectionState: 'Disconnected',
      status: d.status,
      statusReason: null,
      connectionStateUpdatedTime: '0001-01-01T00:00:00Z',
      statusUpdatedTime: '0001-01-01T00:00:00Z',
      lastActivityTime: '0001-01-01T00:00:00Z',
      cloudToDeviceMessageCount: 0,
      authentication: this._auth(d),
      capabilities: { iotEdge: d.iotEdge },
      deviceScope,
      parentScopes
    }
  }

  serializeModule (m) {
    return {
      moduleId: m.moduleId,
      managedBy: m.managedBy || 'iotEdge',
      deviceId: m.deviceId,
      generationId: m.generationId,
      etag: m.etag,
      connectionState: 'Disconnected',
      connectionStateUpdatedTime: '0001-01-01T00:00:00Z',
      lastActivityTime: '0001-01-01T00:00:00Z',
      cloudToDeviceMessageCount: 0,
      authentication: this._auth(m)
    }
  }
}
