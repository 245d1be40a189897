import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { requiresRoot } from '../helpers/requires.js';
import { expectRefusal, sandbox } from './sandbox.js';

test('a relative symlink used as a parent further down the path is refused', async (t) => {
  if (!requiresRoot(t)) return;
  const sb = sandbox(t);
  await expectRefusal(
    sb,
    [{ name: 'd/', type: 'dir' }, { name: 'd/up', type: 'symlink', linkname: '../../outside' }, { name: 'd/up/new/deeper', body: 'pwned' }],
    'EINVAL',
    'tar-entry-through-symlink',
  );
  assert.deepEqual(readdirSync(sb.outside), ['victim']);
});

test('a symlink to an in-layer dir is still never traversed (no partial trust of link targets)', async (t) => {
  if (!requiresRoot(t)) return;
  const sb = sandbox(t);
  await expectRefusal(sb, [{ name: 'real/', type: 'dir' }, { name: 'alias', type: 'symlink', linkname: 'real' }, { name: 'alias/f', body: 'x' }], 'EINVAL', 'tar-entry-through-symlink');
});

test('a whiteout or opaque marker below a symlink is refused too', async (t) => {
  if (!requiresRoot(t)) return;
  for (const name of ['s/.wh.victim', 's/.wh..wh..opq']) {
    const sb = sandbox(t);
    await expectRefusal(sb, [{ name: 's', type: 'symlink', linkname: sb.outside }, { name }], 'EINVAL', 'tar-entry-through-symlink');
    assert.deepEqual(readdirSync(sb.outside), ['victim']);
  }
});
