/**
 * `fs rm` through a symlink with a trailing slash does what rm(1) does on a kernel mount of the
 * same container: `rm -r link/` empties the directory behind the link and then fails (ENOTDIR),
 * leaving the link and the directory; without -r it is refused (EISDIR).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { requiresOverlay, tempDir } from '../helpers/requires.js';
import { treeListing } from '../helpers/tree-listing.js';
import { EXAMPLE, cli, ok as okIn, type CliRun } from '../helpers/cli.js';

test('fs rm [-r] link/ matches rm(1) on a kernel mount', (t) => {
  if (!requiresOverlay(t)) return;
  const root = join(tempDir(t), 'root');
  const ov = (...args: string[]): CliRun => cli(root, args);
  const ok = (...args: string[]): string => okIn(root, args);
  ok('load', EXAMPLE);
  for (const c of ['eng', 'kern']) ok('create', '--name', c, 'example:1');
  // The same starting point in both: a lower dir (/bin) behind a new link, and a link to /etc.
  for (const c of ['eng', 'kern']) {
    ok('fs', c, 'ln', '-s', 'bin', '/binlink');
    ok('fs', c, 'ln', '-s', '/etc', '/etclink');
  }
  const M = ok('mount', 'kern').trim();
  try {
    const noR = spawnSync('rm', ['etclink/'], { cwd: M, encoding: 'utf8' });
    const withR = spawnSync('rm', ['-r', 'binlink/'], { cwd: M, encoding: 'utf8' });
    assert.notEqual(noR.status, 0);
    assert.match(noR.stderr, /Is a directory/);
    assert.notEqual(withR.status, 0);
    assert.match(withR.stderr, /Not a directory/);
    const e1 = ov('fs', 'eng', 'rm', '/etclink/');
    assert.equal(e1.status, 1);
    assert.match(e1.stderr, /EISDIR/);
    const e2 = ov('fs', 'eng', 'rm', '-r', '/binlink/');
    assert.equal(e2.status, 1);
    assert.match(e2.stderr, /ENOTDIR.*'\/binlink\/'/);
  } finally {
    ok('umount', 'kern');
  }
  assert.deepEqual(ok('diff', 'eng'), ok('diff', 'kern'));
  const eng = ok('mount', 'eng').trim();
  const kern = ok('mount', 'kern').trim();
  try {
    // Times aside (the two containers' links were made at different moments), the views are one.
    const view = (m: string): string[] => treeListing(m, { mtimes: false }).filter((l) => !/^\/(\.dockerenv|dev\/|etc\/(?!motd))/.test(l));
    assert.deepEqual(view(eng), view(kern));
    assert.ok(view(eng).some((l) => l.startsWith('/binlink ')) && !view(eng).some((l) => l.startsWith('/bin/')), 'link kept, dir emptied');
  } finally {
    ok('umount', 'eng');
    ok('umount', 'kern');
  }
});
