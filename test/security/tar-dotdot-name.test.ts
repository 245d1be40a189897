import { test } from 'node:test';
import { readdirSync } from 'node:fs';
import assert from 'node:assert/strict';
import { expectRefusal, sandbox } from './sandbox.js';

test('a tar entry whose name climbs out with .. is refused (tar-entry-escapes-root)', async (t) => {
  for (const name of ['../escape', 'a/../../escape', './../outside/victim', 'a/b/../../../outside/new', '/../outside/new', '..']) {
    const sb = sandbox(t);
    await expectRefusal(sb, [{ name: 'a/', type: 'dir' }, { name, body: 'pwned' }], 'EINVAL', 'tar-entry-escapes-root');
    assert.deepEqual(readdirSync(sb.outside), ['victim']);
  }
});

test('.. escapes are refused for every entry type, not only regular files', async (t) => {
  for (const type of ['dir', 'symlink', 'fifo', 'link'] as const) {
    const sb = sandbox(t);
    await expectRefusal(sb, [{ name: '../outside/x', type, linkname: 'a' }], 'EINVAL', 'tar-entry-escapes-root');
  }
});
