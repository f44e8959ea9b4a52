'use strict';
// The TypeScript declarations (js/index.d.ts) compile against typed socket.io-style code
// (tests/types/usage.ts, with @ts-expect-error lines that must stay errors).
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

test('tests/types/usage.ts compiles with tsc --noEmit', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tests', 'types')], { cwd: root, encoding: 'utf8', timeout: 60000 });
  expect(r.error).toBeUndefined();
  expect(`${r.stdout}${r.stderr}`).toBe('');
  expect(r.status).toBe(0);
}, 70000);
