/**
 * The README's first command, `npm run example` (= build + examples/run-example.sh): the main job on
 * the bundled example image must run to the end, show the changes made through the kernel mount
 * and through the engine, commit, print `info`, and leave no data root and no mount behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requiresOverlay } from '../helpers/requires.js';

test('examples/run-example.sh runs the whole story and cleans up', (t) => {
  if (!requiresOverlay(t)) return;
  const r = spawnSync('bash', [join(process.cwd(), 'examples', 'run-example.sh')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `exit ${String(r.status)}\n${r.stdout}\n${r.stderr}`);
  // eslint-disable-next-line no-control-regex
  const out = r.stdout.replace(/\x1b\[[0-9;]*m/g, '');
  const sections = out.split(/^\$ overlay2 /m);
  const section = (cmd: string, nth = 0): string[] => {
    const found = sections.filter((s) => s.startsWith(`${cmd}\n`) || s.startsWith(`${cmd} `));
    assert.ok(found[nth] !== undefined, `no output section for "overlay2 ${cmd}" #${nth}`);
    return found[nth].split('\n').slice(1).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('('));
  };
  assert.deepEqual(section('load examples/example-image.tar'), ['Loaded image: example:1']);
  const mounted = section('mount demo');
  assert.match(mounted[0] ?? '', /^\/tmp\/overlay2-example\.\w+\/overlay2\/[0-9a-f]{64}\/merged$/);
  assert.ok(mounted.some((l) => /^kernel mount: overlay \/tmp\/overlay2-example\.\w+\/overlay2\/[0-9a-f]{64}\/merged overlay /.test(l)), mounted.join('\n'));
  // What the script did through the kernel mount, as `docker diff` lines.
  const kernelDiff = section('diff demo', 0).filter((l) => /^[ACD] \//.test(l)).sort();
  assert.deepEqual(kernelDiff, ['A /srv', 'A /srv/www', 'A /srv/www/index.html', 'C /etc', 'C /etc/hostname', 'C /var', 'C /var/cache', 'D /etc/motd', 'D /var/cache/app']);
  // Then through the engine: a new file and a lower dir moved.
  const engineDiff = section('diff demo', 1).filter((l) => /^[ACD] \//.test(l));
  for (const l of ['A /srv/www/about.txt', 'A /home-moved', 'D /home']) assert.ok(engineDiff.includes(l), `${l} in\n${engineDiff.join('\n')}`);
  assert.match(section('commit demo example:2')[0] ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(section('fs check cat /srv/www/about.txt'), ['engine-written']);
  const info = section('info');
  assert.equal(info[0], 'Storage Driver: overlay2');
  for (const k of ['Backing Filesystem', 'Supports d_type: true', 'Using metacopy', 'Native Overlay Diff', 'userxattr']) {
    assert.ok(info.some((l) => l.startsWith(k)), `${k} in info:\n${info.join('\n')}`);
  }
  const root = /removing the temporary data root (\S+)/.exec(out)?.[1];
  assert.ok(root !== undefined && root.startsWith('/tmp/overlay2-example.'), out.slice(-300));
  assert.equal(existsSync(root), false, 'the temporary data root is gone');
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(root), 'no mount left under it');
});
