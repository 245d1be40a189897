/**
 * One upper, two implementations taking turns: an upper written by the kernel is read by the
 * engine, and an upper written by the engine is mounted by the kernel; both must show exactly the
 * merged view the writer saw (including mtimes, since nothing changes in between).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { requiresOverlay, tempDir } from '../helpers/requires.js';
import { OverlayEngine } from '../../src/engine/index.js';
import { diffSnapshots, engineRun, kernelRun, snapshotEngine, snapshotMount } from '../engine/harness.js';
import { adversarial, scenarios } from '../engine/scenarios.js';

function dirsOf(base: string, n: number): { lowers: string[]; upper: string; work: string } {
  return { lowers: Array.from({ length: n }, (_, i) => join(base, `l${i}`)), upper: join(base, 'u'), work: join(base, 'w') };
}

for (const [name, sc] of Object.entries({ ...scenarios, ...adversarial })) {
  test(`kernel-written upper read by the engine: ${name}`, async (t) => {
    if (!requiresOverlay(t)) return;
    const base = join(tempDir(t), 'k');
    const k = kernelRun(base, sc);
    const e = new OverlayEngine({ ...dirsOf(base, sc.lowers.length), readonly: true, metacopy: sc.metacopy === true, userxattr: sc.userxattr === true });
    assert.deepEqual(diffSnapshots(k.merged, await snapshotEngine(e)), []);
  });

  test(`engine-written upper mounted by the kernel: ${name}`, async (t) => {
    if (!requiresOverlay(t)) return;
    const base = join(tempDir(t), 'e');
    const e = await engineRun(base, sc);
    const d = dirsOf(base, sc.lowers.length);
    const m = join(base, 'm2');
    mkdirSync(m);
    let opts = `index=off,lowerdir=${d.lowers.join(':')},upperdir=${d.upper},workdir=${d.work}`;
    if (sc.redirectDir === true) opts += ',redirect_dir=on';
    if (sc.metacopy === true) opts += ',metacopy=on,redirect_dir=on';
    if (sc.userxattr === true) opts += ',userxattr';
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', opts, m], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    try {
      assert.deepEqual(diffSnapshots(snapshotMount(m), e.merged), []);
    } finally {
      spawnSync('umount', [m]);
    }
  });
}
