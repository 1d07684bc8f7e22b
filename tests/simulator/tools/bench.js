// Throughput check: N device connections publish M QoS-1 messages in total
// through the simulator; prints msgs/s and the simulator's count.
// node tools/bench.js --control-port C --mqtt-port P --hub HUB --ca FILE [--devices 100] [--messages 100000] [--window 100]
import fs from 'node:fs'
import mqtt from 'mqtt'
import { createSas } from '../lib/sas.js'

const a = {}
for (let i = 2; i < process.argv.length; i += 2) a[process.argv[i].slice(2)] = process.argv[i + 1]
const N = Number(a.devices || 100); const M = Number(a.messages || 100000); const W = Number(a.window || 100)
const ctl = async (method, p, body) => (await fetch(`http://127.0.0.1:${a['control-port']}${p}`, { method, body: body && JSON.stringify(body) })).json()
const ca = fs.readFileSync(a.ca)
const se = Math.floor(Date.now() / 1000) + 3600

const clients = []
for (let i = 0; i < N; i++) {
  const d = `bench-${i}`
  let dev = await ctl('GET', `/identities/${d}`)
  if (!dev.primaryKey) dev = await ctl('POST', '/identities', { deviceId: d })
  const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${a['mqtt-port']}`, {
    clientId: d, username: `${a.hub}/${d}/?api-version=2021-04-12`, password: createSas(`${a.hub}/devices/${d}`, dev.primaryKey, se), ca, reconnectPeriod: 0, protocolVersion: 4
  })
  clients.push({ c, d })
}
await ctl('DELETE', '/telemetry')
const per = Math.ceil(M / N)
const payload = Buffer.alloc(64, 'x')
const t0 = Date.now()
await Promise.all(clients.map(async ({ c, d }) => {
  const topic = `devices/${d}/messages/events/k=v`
  let sent = 0
  const inflight = new Set()
  while (sent < per) {
    while (inflight.size < W && sent < per) {
      const p = c.publishAsync(topic, payload, { qos: 1 }).then(() => inflight.delete(p))
      inflight.add(p); sent++
    }
    await Promise.race(inflight)
  }
  await Promise.all(inflight)
}))
const dt = (Date.now() - t0) / 1000
const count = await ctl('GET', '/telemetry/count')
console.log(JSON.stringify({ devices: N, messages: per * N, seconds: dt, perSecond: Math.round(per * N / dt), recorded: count.total }))
for (const { c } of clients) c.end(true)
