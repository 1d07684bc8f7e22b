// SAS token parsing, creation and validation, matching azure-iot-common
// (lib/authorization.js + lib/shared_access_signature.js):
//   sr  = encodeUriComponentStrict(resource)
//   sig = base64(HMAC-SHA256(base64decode(key), sr + "\n" + se))
//   token = "SharedAccessSignature sr=" + sr + "&sig=" + encodeUriComponentStrict(sig) + "&se=" + se
import crypto from 'node:crypto'

export function encodeUriComponentStrict (str) {
  return encodeURIComponent(str).replace(/[!'()*]/g,
    (c) => '%' + c.charCodeAt(0).toString(16))
}

function safeDecode (s) {
  try { return decodeURIComponent(s) } catch { return null }
}

export function hmacB64 (keyB64, data) {
  return crypto.createHmac('sha256', Buffer.from(keyB64, 'base64'))
    .update(data).digest('base64')
}

export function createSas (resource, keyB64, expiry, keyName) {
  const sr = encodeUriComponentStrict(resource)
  const sig = encodeUriComponentStrict(hmacB64(keyB64, sr + '\n' + expiry))
  let t = `SharedAccessSignature sr=${sr}&sig=${sig}&se=${expiry}`
  if (keyName) t += '&skn=' + encodeUriComponentStrict(keyName)
  return t
}

// Returns {srRaw, sr, sig, se, skn} or null when malformed.
export function parseSas (token) {
  if (typeof token !== 'string') return null
  const m = /^\s*SharedAccessSignature\s+(.*)$/.exec(token)
  if (!m) return null
  const out = {}
  for (const part of m[1].split('&')) {
    const eq = part.indexOf('=')
    if (eq <= 0) return null
    const k = part.slice(0, eq).trim()
    const v = part.slice(eq + 1)
    if (k in out) return null
    out[k] = v
  }
  if (!out.sr || !out.sig || !out.se) return null
  const sr = safeDecode(out.sr)
  const sig = safeDecode(out.sig)
  if (sr === null || sig === null) return null
  if (!/^\d+$/.test(out.se)) return null
  return { srRaw: out.sr, sr, sig, se: Number(out.se), seRaw: out.se, skn: out.skn ? safeDecode(out.skn) : null }
}

function timingEqualB64 (a, b) {
  const ba = Buffer.from(a, 'utf8')
  const bb = Buffer.from(b, 'utf8')
  if (ba.length !== bb.length) {
    crypto.timingSafeEqual(ba, ba) // keep timing roughly uniform
    return false
  }
  return crypto.timingSafeEqual(ba, bb)
}

// Validate a token for an expected resource against a list of base64 keys.
// Returns {ok:true} or {ok:false, reason}.
export function validateSas (token, expectedResource, keys, nowSec = Math.floor(Date.now() / 1000)) {
  const p = parseSas(token)
  if (!p) return { ok: false, reason: 'malformed token' }
  if (p.sr.toLowerCase() !== expectedResource.toLowerCase()) {
    return { ok: false, reason: `resource mismatch: ${p.sr} != ${expectedResource}` }
  }
  if (p.se <= nowSec) return { ok: false, reason: 'token expired' }
  // The string to sign is the url-encoded resource as the Azure SDK produces it
  // (which is also the literal sr field of the token). Both are tried, so a
  // client whose encoder differs only in letter case / reserved chars but signs
  // what it sends is accepted too.
  const candidates = [p.srRaw]
  const canon = encodeUriComponentStrict(p.sr)
  if (canon !== p.srRaw) candidates.push(canon)
  let ok = false
  for (const key of keys) {
    if (!key) continue
    for (const c of candidates) {
      if (timingEqualB64(hmacB64(key, c + '\n' + p.seRaw), p.sig)) ok = true
    }
  }
  return ok ? { ok: true } : { ok: false, reason: 'bad signature' }
}
