/**
 * The kernel is the oracle for change lists and layer tars. Lowers and an upper are produced by
 * doing real operations through kernel overlay mounts (so they hold the kernel's own whiteouts and
 * opaque dirs, in trusted.* or — with userxattr — user.* xattrs), then:
 *  - overlayChanges(upper, lowers) must equal changesDirs(merged mount, read-only mount of lowers);
 *  - the native tar (writeLayerTar) and the naive tar (exportChanges) of that upper, extracted as a
 *    new top layer over the lowers, must reproduce the merged view.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync, symlinkSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { changesDirs, overlayChanges, changesSize } from '../../src/archive/changes.js';
import { exportChanges, writeLayerTar } from '../../src/archive/diff-layer.js';
import { MS_RDONLY, lsetxattr, mount, umount2 } from '../../src/sys/libc.js';
import { requiresCommand, requiresOverlay, tempDir } from '../helpers/requires.js';
import { gnuLayerDir } from '../helpers/gnu-layer.js';
import { treeListing } from '../helpers/tree-listing.js';

// VFS_CAP_REVISION_2 with CAP_NET_RAW (bit 13) permitted+effective, and the same with CAP_CHOWN.
const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const CAP_CHOWN = Buffer.from('0100000201000000000000000000000000000000', 'hex');

function sh(cwd: string, script: string): void {
  execFileSync('sh', ['-ec', script], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function populateL1(l1: string): void {
  sh(l1, `
    printf 'hello' > a; mkdir -p d/sub keep opq tdir ren keep2 caps; echo x > d/x; echo y > d/sub/y
    echo k1 > keep/k1; echo k2 > keep/k2; echo o1 > opq/o1; echo o2 > opq/o2; echo r1 > ren/r1
    echo t1 > t1; echo t2 > t2; echo z0 > tdir/z0; mkdir tdir/deep; echo q > tdir/deep/q; echo k > keep2/k
    echo c > caps/bin; echo n > caps/other; touch -d @1500000000.5 nsfile
    mkdir -p stay/inner; echo s > stay/inner/s
  `);
  symlinkSync('a', join(l1, 'sym'));
  writeFileSync(join(l1, 'hl1'), 'linked');
  linkSync(join(l1, 'hl1'), join(l1, 'hl2'));
  lsetxattr(join(l1, 'caps/bin'), 'security.capability', CAP_NET_RAW);
  lsetxattr(join(l1, 'caps/other'), 'security.capability', CAP_NET_RAW);
}

const L2_OPS = `
  rm d/x; rm -rf opq; mkdir opq; echo n > opq/n; echo more >> a; mkdir l2dir; echo l > l2dir/f
  rm stay/inner/s; echo s2 > stay/inner/s2
`;

const L3_OPS = `
  echo new > new.txt; mkdir -p n1/n2; echo deep > n1/n2/f
  echo more >> keep/k1; chmod 600 keep/k2; chown 1000:1000 t1; rm a
  rm -rf d; rm -rf tdir; mkdir tdir; touch tdir/z
  mv ren/r1 ren/r2; ln keep/k1 keep/k1link; ln -s target s2; mkfifo fifo
  touch -d @1600000000 hl1; rm opq/n; echo tmp > tmpf; rm tmpf
  rm t2; mkdir t2; touch t2/c; rm -rf keep2; echo file > keep2
  chmod 4755 l2dir/f; touch -d @1500000000 nsfile; mkdir stay/extra; rmdir stay/extra
`;

function mountOverlay(target: string, lowers: string[], upper: string | null, work: string | null, userxattr: boolean): void {
  const opts = [`lowerdir=${lowers.join(':')}`];
  if (upper !== null && work !== null) opts.push(`upperdir=${upper}`, `workdir=${work}`);
  // userxattr implies redirect_dir=nofollow; an explicit redirect_dir=off ("follow") conflicts.
  opts.push('index=off', 'metacopy=off', userxattr ? 'userxattr' : 'redirect_dir=off');
  mount('overlay', target, 'overlay', upper === null ? MS_RDONLY : 0, opts.join(','));
}

for (const userxattr of [false, true]) {
  test(`overlayChanges() equals changesDirs() over kernel mounts${userxattr ? ' (userxattr)' : ''}, and both tars rebuild the merged view`, async (t) => {
    if (!requiresOverlay(t) || !requiresCommand(t, 'tar')) return;
    const tmp = tempDir(t);
    const dirs = Object.fromEntries(['l1', 'u2', 'w2', 'm2', 'u3', 'w3', 'm3', 'ro', 'nat', 'naive', 'mn', 'mv'].map((n) => {
      const d = join(tmp, n);
      mkdirSync(d);
      return [n, d];
    })) as Record<string, string>;
    const { l1, u2, w2, m2, u3, w3, m3, ro } = dirs as Record<string, string> & { l1: string; u2: string; w2: string; m2: string; u3: string; w3: string; m3: string; ro: string };
    populateL1(l1);

    mountOverlay(m2, [l1], u2, w2, userxattr);
    try { sh(m2, L2_OPS); } finally { umount2(m2); }
    const lowers = [u2, l1];

    mountOverlay(m3, lowers, u3, w3, userxattr);
    t.after(() => { try { umount2(m3, 2); } catch (e) { void e; } });
    sh(m3, L3_OPS);
    lsetxattr(join(m3, 'caps/bin'), 'security.capability', CAP_CHOWN); // metadata-only: C through the cap rule
    execFileSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind('${join(m3, 'sock')}')`]);

    const ours = await overlayChanges(u3, lowers, { userxattr });
    mountOverlay(ro, lowers, null, null, userxattr);
    t.after(() => { try { umount2(ro, 2); } catch (e) { void e; } });
    const kernel = await changesDirs(m3, ro);
    assert.deepEqual(ours, kernel);
    const lines = ours.map((c) => `${c.kind} ${c.path}`);
    for (const want of ['D /a', 'D /d', 'A /new.txt', 'C /caps/bin', 'D /opq/n', 'C /tdir', 'D /tdir/z0', 'D /tdir/deep', 'C /t2', 'A /t2/c', 'C /keep2', 'A /sock']) {
      assert.ok(lines.includes(want), `${want} missing from ${lines.join(', ')}`);
    }
    assert.ok(!lines.includes('A /tmpf') && !lines.includes('C /nsfile') && !lines.some((l) => l.includes(' /stay')));
    assert.ok((await changesSize(m3, ours)) > 0);

    // Native diff → extract as a new layer over the same lowers → the same merged view.
    const merged = treeListing(m3).filter((l) => !l.startsWith('/sock '));
    const natTar = join(tmp, 'native.tar');
    await writeLayerTar(u3, createWriteStream(natTar), { userxattr });
    await gnuLayerDir(natTar, dirs['nat']!, { userxattr });
    mountOverlay(dirs['mn']!, [dirs['nat']!, ...lowers], null, null, userxattr);
    t.after(() => { try { umount2(dirs['mn']!, 2); } catch (e) { void e; } });
    assert.deepEqual(treeListing(dirs['mn']!), merged);

    // Naive diff of the change list, from the merged view → the same again.
    const naiveTar = join(tmp, 'naive.tar');
    await exportChanges(m3, ours, createWriteStream(naiveTar));
    await gnuLayerDir(naiveTar, dirs['naive']!, { userxattr });
    mountOverlay(dirs['mv']!, [dirs['naive']!, ...lowers], null, null, userxattr);
    t.after(() => { try { umount2(dirs['mv']!, 2); } catch (e) { void e; } });
    assert.deepEqual(treeListing(dirs['mv']!), merged);
  });
}
