import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { requiresRoot } from '../helpers/requires.js';
import { expectContained, expectRefusal, sandbox } from './sandbox.js';

test('a symlink to a host dir followed by a file below it is refused (a -> /etc, then a/passwd)', async (t) => {
  if (!requiresRoot(t)) return;
  for (const target of ['/etc', 'OUTSIDE']) {
    const sb = sandbox(t);
    const linkname = target === 'OUTSIDE' ? sb.outside : target;
    await expectRefusal(sb, [{ name: 'a', type: 'symlink', linkname }, { name: 'a/passwd', body: 'pwned' }], 'EINVAL', 'tar-entry-through-symlink');
    assert.deepEqual(readdirSync(sb.outside), ['victim']);
  }
});

test('a regular file at the same path as an earlier symlink replaces the link instead of following it', async (t) => {
  if (!requiresRoot(t)) return;
  const sb = sandbox(t);
  const victim = join(sb.outside, 'victim');
  await expectContained(sb, [{ name: 'moo', type: 'symlink', linkname: victim }, { name: 'moo', body: 'PWNed' }]);
  assert.ok(lstatSync(join(sb.dest, 'moo')).isFile());
  assert.equal(readFileSync(join(sb.dest, 'moo'), 'utf8'), 'PWNed');
  assert.equal(readFileSync(victim, 'utf8'), 'precious');
});

test('a directory entry at the path of an earlier symlink replaces the link', async (t) => {
  if (!requiresRoot(t)) return;
  const sb = sandbox(t);
  await expectContained(sb, [{ name: 'd', type: 'symlink', linkname: sb.outside }, { name: 'd/', type: 'dir', mode: 0o700 }, { name: 'd/f', body: 'inside' }]);
  assert.ok(lstatSync(join(sb.dest, 'd')).isDirectory());
  assert.equal(readFileSync(join(sb.dest, 'd/f'), 'utf8'), 'inside');
  assert.equal(lstatSync(sb.outside).mode & 0o7777, 0o755);
});
