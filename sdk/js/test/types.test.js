// The TypeScript declarations (src/index.d.ts) cover every export, and a typed use of the client compiles.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as client from '../src/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

test('index.d.ts declares every export of index.js', () => {
  const dts = readFileSync(join(ROOT, 'src', 'index.d.ts'), 'utf8');
  const declared = new Set([...dts.matchAll(/^export (?:declare )?(?:class|function|const|type|interface) (\w+)/gm)].map((m) => m[1]));
  const missing = Object.keys(client).filter((name) => !declared.has(name));
  assert.deepEqual(missing, [], `exported but not declared in index.d.ts: ${missing.join(', ')}`);
});

test('a typed use of the client compiles with tsc --strict', () => {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc, '--project', join(ROOT, 'test', 'types', 'tsconfig.json')],
      { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
  }
});
