/**
 * Docker's own answers for a real container: the edge image's 14 layers are rebuilt as overlay layer
 * dirs, mounted by the kernel under a fresh upper, and `edge.container-changes.sh` runs inside
 * (chroot) exactly as it ran in Docker's container. Then:
 *  - overlayChanges(upper, lowers) equals `docker diff` (as a set) and changesDirs over the mounts;
 *  - writeLayerTar(upper) lists the same entries as the layer `docker commit` made (all header
 *    fields but mtime, which is the time of the run).
 * Like Docker, /etc/hostname is a bind mount (the script's chmod must not reach the upper) and /dev
 * comes from outside the image.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { changesDirs, overlayChanges } from '../../src/archive/changes.js';
import { writeLayerTar } from '../../src/archive/diff-layer.js';
import { MS_BIND, MS_RDONLY, mount, umount2 } from '../../src/sys/libc.js';
import { requiresCommand, requiresOverlay, tempDir, sharedDir } from '../helpers/requires.js';
import { realImageLayers, realImagesDir } from '../helpers/realimages.js';
import { gnuLayerDir } from '../helpers/gnu-layer.js';

const set = (lines: string[]): string[] => [...new Set(lines)].sort();
const stripMtime = (line: string): string => line.replace(/ mtime=\S+/, '');

test('overlayChanges() and writeLayerTar() give Docker\'s answers for the edge container', async (t) => {
  if (!requiresOverlay(t) || !requiresCommand(t, 'tar') || !requiresCommand(t, 'chroot') || !requiresCommand(t, 'python3')) return;
  void sharedDir;
  const tmp = tempDir(t);
  const layers = realImageLayers('edge');
  const lowers: string[] = [];
  for (let i = 0; i < layers.length; i++) {
    const d = join(tmp, `l${i}`);
    mkdirSync(d);
    await gnuLayerDir(layers[i]!, d);
    lowers.unshift(d); // top first
  }
  const upper = join(tmp, 'upper');
  const work = join(tmp, 'work');
  const merged = join(tmp, 'merged');
  const ro = join(tmp, 'ro');
  for (const d of [upper, work, merged, ro]) mkdirSync(d);
  mount('overlay', merged, 'overlay', 0, `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work},index=off,redirect_dir=off,metacopy=off`);
  t.after(() => { try { umount2(merged, 2); } catch { /* already gone */ } });
  const hostname = join(tmp, 'hostname');
  writeFileSync(hostname, 'edge\n');
  mount(hostname, join(merged, 'etc/hostname'), null, MS_BIND, null);
  mount('/dev', join(merged, 'dev'), null, MS_BIND, null);
  try {
    const script = readFileSync(join(realImagesDir(), 'edge.container-changes.sh'));
    const r = spawnSync('chroot', [merged, '/bin/bash', '-s'], {
      input: script, env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' },
    });
    assert.equal(r.status, 0, `script failed: ${r.stderr.toString()}`);
  } finally {
    umount2(join(merged, 'dev'), 2);
    umount2(join(merged, 'etc/hostname'), 2);
  }

  const ours = await overlayChanges(upper, lowers);
  const docker = readFileSync(join(realImagesDir(), 'edge.docker-diff.txt'), 'utf8').split('\n').filter((l) => l !== '');
  assert.deepEqual(set(ours.map((c) => `${c.kind} ${c.path}`)), set(docker));

  mount('overlay', ro, 'overlay', MS_RDONLY, `lowerdir=${lowers.join(':')}`);
  t.after(() => { try { umount2(ro, 2); } catch { /* already gone */ } });
  const naive = await changesDirs(merged, ro);
  assert.deepEqual(naive, ours);

  const tarPath = join(tmp, 'commit.tar');
  await writeLayerTar(upper, createWriteStream(tarPath));
  const dump = execFileSync('python3', [join(realImagesDir(), 'dump-layer-tar.py'), tarPath]).toString().split('\n').filter((l) => l !== '');
  const want = readFileSync(join(realImagesDir(), 'edge.commit-layer.txt'), 'utf8').split('\n').filter((l) => l !== '');
  assert.deepEqual(dump.map(stripMtime), want.map(stripMtime));
});
