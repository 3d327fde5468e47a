// Start a real `cadenza serve` for the Node tests: free loopback ports, the ready line, kill and restart.
//
// The Python that runs it is CADENZA_PYTHON (set by tests/test_node_client.py), else the repository's
// .venv/bin/python, else python3. stdout and stderr go to files in a temporary folder (shown when it fails).

import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const ACTION_GAME = join(REPO, 'examples', 'action_game', 'graph.yaml');
const READY_PREFIX = 'cadenza serve: ready';
const READY_TIMEOUT_MS = 90_000;

export function pythonExecutable() {
  if (process.env.CADENZA_PYTHON) return process.env.CADENZA_PYTHON;
  const venv = join(REPO, '.venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

/** `n` distinct loopback ports that were free a moment ago. */
export async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = createServer();
      await new Promise((ok, fail) => {
        server.once('error', fail);
        server.listen(0, '127.0.0.1', ok);
      });
      servers.push(server);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  }
}

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// every runtime a test started dies with the test process, whatever ends it; its logs stay only on failure
const running = new Set();
const workdirs = new Set();
process.on('exit', (code) => {
  for (const child of running) child.kill('SIGKILL');
  if (code === 0 && !process.exitCode) for (const dir of workdirs) rmSync(dir, { recursive: true, force: true });
});

/** `python -m cadenza serve` on fresh loopback ports; `start()` resolves once its ready line is printed. */
export class Serve {
  constructor(args = [], { name = 'serve' } = {}) {
    this.args = args;
    this.name = name;
    this.workdir = mkdtempSync(join(tmpdir(), 'cadenza-node-'));
    workdirs.add(this.workdir);
    this.proc = null;
    this.ports = null;
    this.runs = 0;
  }

  get control() { return `tcp://127.0.0.1:${this.ports[0]}`; }

  get events() { return `tcp://127.0.0.1:${this.ports[1]}`; }

  get audio() { return `tcp://127.0.0.1:${this.ports[2]}`; }

  /** Start (or start again on the same ports, as after a crash). */
  async start({ samePorts = false } = {}) {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (!samePorts || this.ports === null) this.ports = await freePorts(3);
      this.runs += 1;
      const out = join(this.workdir, `${this.name}.${this.runs}.stdout`);
      const err = join(this.workdir, `${this.name}.${this.runs}.stderr`);
      this.stdoutPath = out;
      this.stderrPath = err;
      const outFd = openSync(out, 'w');
      const errFd = openSync(err, 'w');
      const env = { ...process.env, PYTHONUNBUFFERED: '1' };
      delete env.CADENZA_DEBUG;
      const argv = ['-m', 'cadenza', 'serve', ...this.args, '--sink', 'null', '--control', this.control,
        '--events', this.events, '--audio', this.audio];
      this.proc = spawn(pythonExecutable(), argv, { cwd: this.workdir, env, stdio: ['ignore', outFd, errFd] });
      closeSync(outFd);
      closeSync(errFd);
      const child = this.proc;
      running.add(child);
      const exited = new Promise((ok) => child.once('exit', (code) => {
        running.delete(child);
        ok(code);
      }));
      this.exited = exited;
      const deadline = Date.now() + READY_TIMEOUT_MS;
      let code = null;
      while (Date.now() < deadline) {
        if (this.stdout.split('\n').some((l) => l.startsWith(READY_PREFIX))) return this;
        code = await Promise.race([exited, sleep(25).then(() => null)]);
        if (code !== null || this.proc.exitCode !== null || this.proc.signalCode !== null) break;
      }
      if (this.stderr.includes('cannot bind') && attempt < 2) {
        samePorts = false;
        continue;
      }
      this.kill();
      throw new Error(`cadenza serve did not become ready (exit ${code ?? this.proc.exitCode}): ${this.stderr}`);
    }
    throw new Error('unreachable');
  }

  get stdout() { return existsSync(this.stdoutPath) ? readFileSync(this.stdoutPath, 'utf8') : ''; }

  get stderr() { return existsSync(this.stderrPath) ? readFileSync(this.stderrPath, 'utf8') : ''; }

  /** SIGKILL (kill -9) and wait for the exit. */
  async kill(signal = 'SIGKILL') {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill(signal);
      await this.exited;
    }
  }
}
