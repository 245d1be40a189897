import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { major, minor } from '../../src/sys/libc.js';
import { requiresRoot } from '../helpers/requires.js';
import { expectContained, expectRefusal, sandbox } from './sandbox.js';

test('device nodes are created as nodes, and a later file at the same path replaces them, never writes to them', async (t) => {
  if (!requiresRoot(t)) return;
  const sb = sandbox(t);
  const hostNull = lstatSync('/dev/null');
  await expectContained(sb, [
    { name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
    { name: 'dev/zero-alias', type: 'link', linkname: 'dev/null' },
    { name: 'dev/loop', type: 'block', mode: 0o660, devmajor: 7, devminor: 0 },
    { name: 'dev/null', body: 'written to the layer, not to the device' },
    { name: 'dev/loop', body: 'not to the block device either' },
  ]);
  assert.ok(lstatSync(join(sb.dest, 'dev/null')).isFile());
  assert.equal(readFileSync(join(sb.dest, 'dev/null'), 'utf8'), 'written to the layer, not to the device');
  assert.ok(lstatSync(join(sb.dest, 'dev/loop')).isFile());
  const alias = lstatSync(join(sb.dest, 'dev/zero-alias'));
  assert.ok(alias.isCharacterDevice());
  assert.deepEqual([major(alias.rdev), minor(alias.rdev)], [1, 3]);
  const after = lstatSync('/dev/null');
  assert.deepEqual([after.ino, after.rdev, after.size], [hostNull.ino, hostNull.rdev, 0]);
});

test('a device node cannot be used as a directory', async (t) => {
  if (!requiresRoot(t)) return;
  const sb = sandbox(t);
  await expectRefusal(sb, [{ name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 }, { name: 'dev/sda/x', body: 'x' }], 'ENOTDIR', 'tar-entry-parent-not-dir');
});
