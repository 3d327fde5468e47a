// SetParameters round trips from the Node client, for bench/node_client.py (one request in flight).
//
//   node sdk/js/bench/rtt.js CONTROL_ENDPOINT PARAMETER
// then, per line N on stdin: N calls of client.setMany({PARAMETER: v}) (v in [0, 1)), answered on stdout with one
// JSON line {"n", "p50_us", "p99_us"}. An empty line or end of input closes the client.

import { createInterface } from 'node:readline';

import { Client } from '../src/index.js';

const [control, parameter] = process.argv.slice(2);
const client = new Client({ control, heartbeat: 0, timeout: 5, name: 'bench-node' });
await client.hello();

function percentile(sorted, q) {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

let seed = 3;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};

process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  const n = Number.parseInt(line, 10);
  if (!n) break;
  const us = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const values = { [parameter]: random() };
    const t0 = process.hrtime.bigint();
    await client.setMany(values);
    us[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  us.sort();
  process.stdout.write(`${JSON.stringify({ n, p50_us: percentile(us, 0.5), p99_us: percentile(us, 0.99) })}\n`);
}
await client.close();
