// Test helpers: throwaway CA + server cert, free ports, simulator process.
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import net from 'node:net'
import https from 'node:https'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
export const SIM = path.join(here, '..', 'iothub-sim.js')

// CA (self-signed, CA:TRUE) and a server cert for 127.0.0.1 / localhost signed by it.
export function makeCerts () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iothub-sim-test-'))
  const p = (f) => path.join(dir, f)
  const ossl = (...a) => execFileSync('openssl', a, { stdio: ['ignore', 'ignore', 'pipe'] })
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=iothub-sim test CA',
    '-keyout', p('ca.key'), '-out', p('ca.pem'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', p('server.key'), '-out', p('server.csr'))
  fs.writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  ossl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-days', '2', '-out', p('server.pem'), '-extfile', p('ext.cnf'))
  return { dir, ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key'), caPem: fs.readFileSync(p('ca.pem'), 'utf8') }
}

export async function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) })
  })
}

export async function startSim ({ hub, certs, extraArgs = [] }) {
  const ports = { mqtt: await freePort(), https: await freePort(), control: await freePort() }
  const args = [SIM, '--hub-name', hub, '--mqtt-port', String(ports.mqtt), '--https-port', String(ports.https),
    '--control-port', String(ports.control), '--cert', certs.cert, '--key', certs.key, ...extraArgs]
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  proc.stderr.on('data', (d) => { stderr += d })
  // never leave a simulator behind if this test process ends abruptly
  const reap = () => { try { proc.kill('SIGKILL') } catch {} }
  process.once('exit', reap)
  proc.once('exit', () => process.removeListener('exit', reap))
  await new Promise((resolve, reject) => {
    let out = ''
    const t = setTimeout(() => reject(new Error('simulator did not print READY; stderr:\n' + stderr)), 15000)
    proc.stdout.on('data', (d) => {
      out += d
      if (out.includes('READY\n')) { clearTimeout(t); resolve() }
    })
    proc.once('exit', (code) => { clearTimeout(t); reject(new Error(`simulator exited ${code}; stderr:\n${stderr}`)) })
  })
  const base = `http://127.0.0.1:${ports.control}`
  async function ctl (method, p, body, raw) {
    const r = await fetch(base + p, {
      method,
      headers: body !== undefined ? { 'content-type': 'application/json' } : {},
      body: body === undefined ? undefined : (raw ? body : JSON.stringify(body))
    })
    const text = await r.text()
    let json = null
    try { json = JSON.parse(text) } catch {}
    return { status: r.status, body: json, text }
  }
  async function stop () {
    if (proc.exitCode !== null) return proc.exitCode
    const done = new Promise((resolve) => proc.once('exit', (code, sig) => resolve(code ?? sig)))
    proc.kill('SIGTERM')
    return done
  }
  return { proc, ports, ctl, stop, stderr: () => stderr }
}

export function httpsGet (port, pathAndQuery, headers, ca) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: pathAndQuery, method: 'GET', headers, ca }, (res) => {
      let b = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { b += d })
      res.on('end', () => {
        let json = null
        try { json = JSON.parse(b) } catch {}
        resolve({ status: res.statusCode, body: json })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export async function waitFor (fn, ms = 5000, what = 'condition') {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}
