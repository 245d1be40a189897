import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { expectRefusal, sandbox } from './sandbox.js';

test('whiteout names that would name the parent or climb out are refused', async (t) => {
  const cases: Array<[string, string]> = [
    ['.wh...', 'tar-invalid-whiteout'],
    ['a/.wh...', 'tar-invalid-whiteout'],
    ['a/.wh..', 'tar-invalid-whiteout'],
    ['.wh.', 'tar-invalid-whiteout'],
    ['../.wh.outside', 'tar-entry-escapes-root'],
    ['a/../../.wh.outside', 'tar-entry-escapes-root'],
  ];
  for (const [name, reason] of cases) {
    const sb = sandbox(t);
    await expectRefusal(sb, [{ name: 'a/', type: 'dir' }, { name }], 'EINVAL', reason);
    assert.deepEqual(readdirSync(sb.root).sort(), ['dest', 'layer.tar', 'outside']);
    assert.deepEqual(readdirSync(sb.outside), ['victim']);
  }
});
