import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requiresRoot } from '../helpers/requires.js';
import { expectContained, sandbox } from './sandbox.js';

test('absolute entry names are confined to the layer root, never written at the host path', async (t) => {
  if (!requiresRoot(t)) return;
  const sb = sandbox(t);
  const hostPath = join(sb.outside, 'victim');
  await expectContained(sb, [
    { name: hostPath, body: 'overwritten?' },
    { name: '/tmp/pwned', body: 'x' },
    { name: '//etc//passwd', body: 'root::0:0::/:/bin/sh' },
  ]);
  assert.equal(readFileSync(hostPath, 'utf8'), 'precious');
  assert.equal(readFileSync(join(sb.dest, hostPath), 'utf8'), 'overwritten?');
  assert.equal(readFileSync(join(sb.dest, 'etc/passwd'), 'utf8'), 'root::0:0::/:/bin/sh');
  assert.equal(readFileSync(join(sb.dest, 'tmp/pwned'), 'utf8'), 'x');
});
