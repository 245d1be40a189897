import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { lgetxattr } from '../../src/sys/libc.js';
import { expectRefusal, sandbox } from './sandbox.js';

test('trusted.overlay.* and user.overlay.* xattrs smuggled in PAX records are refused', async (t) => {
  const smuggled: Array<[string, string]> = [
    ['trusted.overlay.opaque', 'y'],
    ['trusted.overlay.redirect', '/root'],
    ['trusted.overlay.origin', 'x'],
    ['trusted.overlay.metacopy', ''],
    ['user.overlay.opaque', 'y'],
    ['user.overlay.redirect', '/etc'],
  ];
  for (const [name, value] of smuggled) {
    for (const type of ['dir', 'file', 'symlink'] as const) {
      const sb = sandbox(t);
      const entryName = type === 'dir' ? 'etc/' : 'etc-entry';
      await expectRefusal(sb, [{ name: entryName, type, linkname: 'x', xattrs: { [name]: value } }], 'EINVAL', 'tar-entry-overlay-xattr');
      const p = join(sb.dest, entryName.replace(/\/$/, ''));
      if (existsSync(p)) assert.equal(lgetxattr(p, name), null);
      assert.equal(lgetxattr(sb.dest, name), null);
    }
  }
});
