import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { backingFs, dTypeNotSupportedMessage, probeDType, probeIndexParam, probeMetacopy, probeNativeDiff, probeOverlay, probeUserxattr, inUserNamespace } from '../../src/probe/index.js';
import { Overlay2Driver } from '../../src/store/driver.js';
import { OverlayError } from '../../src/errors.js';
import { requiresCommand, requiresOverlay, requiresRoot, tempDir } from '../helpers/requires.js';
import { makeLoopFs } from './loopfs.js';

const param = (name: string): string | undefined => {
  const p = `/sys/module/overlay/parameters/${name}`;
  return existsSync(p) ? readFileSync(p, 'utf8').trim() : undefined;
};

test('dTypeNotSupportedMessage() is Docker\'s text for xfs, extfs and others', () => {
  assert.equal(
    dTypeNotSupportedMessage('overlay2', 'xfs'),
    'overlay2: the backing xfs filesystem is formatted without d_type support, which leads to incorrect behavior. Reformat the filesystem with ftype=1 to enable d_type support. Backing filesystems without d_type support are not supported.',
  );
  assert.equal(
    dTypeNotSupportedMessage('overlay2', 'extfs'),
    'overlay2: the backing extfs filesystem is formatted without d_type support, which leads to incorrect behavior. Reformat the filesystem (or use tune2fs) with -O filetype flag to enable d_type support. Backing filesystems without d_type support are not supported.',
  );
  assert.equal(
    dTypeNotSupportedMessage('overlay2', 'nfs'),
    'overlay2: the backing nfs filesystem is formatted without d_type support, which leads to incorrect behavior. Backing filesystems without d_type support are not supported.',
  );
});

test('probes on the temp dir: overlay works, d_type, metacopy/native diff agree with the module parameters', async (t) => {
  if (!requiresOverlay(t)) return;
  const d = tempDir(t);
  assert.deepEqual(await probeOverlay(d), { supported: true });
  assert.deepEqual(await probeOverlay(d, false), { supported: true });
  assert.equal((await probeDType(d)).supported, true);
  const mc = await probeMetacopy(d);
  if (param('metacopy') !== undefined) assert.equal(mc.supported, param('metacopy') === 'Y', mc.reason);
  const nd = await probeNativeDiff(d);
  // redirect_dir on (or metacopy, which implies it) makes the upper dir an incomplete diff.
  if (param('redirect_dir') !== undefined) assert.equal(nd.supported, param('redirect_dir') === 'N' && param('metacopy') !== 'Y', nd.reason);
  assert.equal(await probeIndexParam(), param('index') !== undefined);
  assert.equal(await inUserNamespace(), false);
  assert.equal((await probeUserxattr(d)).supported, false);
  assert.deepEqual(spawnSync('ls', ['-A', d]).stdout.toString(), '', 'probes leave no temp dirs behind');
});

test('probeOverlay() reports a reason instead of throwing when the mount fails', async (t) => {
  if (!requiresOverlay(t)) return;
  const d = tempDir(t);
  // overlayfs is not a valid upper fs: probing inside a rw overlay mount must say so, not throw.
  for (const s of ['a', 'u', 'w', 'm']) mkdirSync(join(d, s));
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${d}/a,upperdir=${d}/u,workdir=${d}/w`, join(d, 'm')]);
  assert.equal(r.status, 0, r.stderr.toString());
  const res = await probeOverlay(join(d, 'm'));
  assert.equal(res.supported, false);
  assert.match(res.reason ?? '', /^failed to mount overlay: E[A-Z]+/);
  assert.deepEqual(spawnSync('ls', ['-A', join(d, 'u')]).stdout.toString(), '', 'the probe removed its temp dir');
});

test('backing fs names: ext4 → extfs, xfs → xfs, tmpfs → tmpfs (real loop/tmpfs mounts)', async (t) => {
  if (!requiresRoot(t) || !requiresCommand(t, 'mkfs.ext4') || !requiresCommand(t, 'mkfs.xfs')) return;
  const d = tempDir(t);
  const ext = makeLoopFs(d, 'ext4', ['mkfs.ext4', '-q', '-F'], 64);
  assert.equal(typeof ext, 'object', String(ext));
  const xfs = makeLoopFs(d, 'xfs', ['mkfs.xfs', '-q', '-f'], 300);
  assert.equal(typeof xfs, 'object', String(xfs));
  const tmp = join(d, 'tmpfs');
  mkdirSync(tmp);
  spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', tmp]);
  try {
    if (typeof ext === 'object') assert.equal((await backingFs(ext.mnt)).name, 'extfs');
    if (typeof xfs === 'object') {
      assert.equal((await backingFs(xfs.mnt)).name, 'xfs');
      assert.equal((await probeDType(xfs.mnt)).supported, true);
      const drv = await Overlay2Driver.init(join(xfs.mnt, 'overlay2'));
      assert.deepEqual((await drv.status())[0], ['Backing Filesystem', 'xfs']);
      // xfs mounted without prjquota: Docker's quota control reports ErrQuotaNotSupported.
      await assert.rejects(
        Overlay2Driver.init(join(xfs.mnt, 'sized'), { storageOpts: ['overlay2.size=1G'] }),
        (e: unknown) => e instanceof OverlayError && e.reason === 'quota-not-supported'
          && e.message.endsWith(': Storage option overlay2.size not supported. Filesystem does not support Project Quota: Filesystem does not support, or has not enabled quotas'),
      );
    }
    assert.equal((await backingFs(tmp)).name, 'tmpfs');
    const drv = await Overlay2Driver.init(join(tmp, 'overlay2'));
    assert.deepEqual((await drv.status())[0], ['Backing Filesystem', 'tmpfs']);
  } finally {
    if (typeof ext === 'object') ext.close();
    if (typeof xfs === 'object') xfs.close();
    spawnSync('umount', [tmp]);
  }
});

test('init refuses ext4 without the filetype feature (no d_type) with Docker\'s message (B33)', async (t) => {
  if (!requiresOverlay(t) || !requiresCommand(t, 'mkfs.ext4')) return;
  const d = tempDir(t);
  const fs = makeLoopFs(d, 'nodtype', ['mkfs.ext4', '-q', '-F', '-O', '^filetype'], 64);
  assert.equal(typeof fs, 'object', String(fs));
  if (typeof fs !== 'object') return;
  try {
    const dt = await probeDType(fs.mnt);
    assert.equal(dt.supported, false);
    assert.match(dt.reason ?? '', /DT_UNKNOWN/);
    await assert.rejects(Overlay2Driver.init(join(fs.mnt, 'overlay2')), (e: unknown) => {
      assert.ok(e instanceof OverlayError);
      assert.equal(e.reason, 'no-d-type');
      assert.ok(e.message.endsWith(`: ${dTypeNotSupportedMessage('overlay2', 'extfs')}`), e.message);
      return true;
    });
    assert.equal(existsSync(join(fs.mnt, 'overlay2')), false, 'init must not create home');
  } finally {
    fs.close();
  }
});

test('init refuses xfs formatted with ftype=0 with Docker\'s message (B33)', async (t) => {
  if (!requiresOverlay(t) || !requiresCommand(t, 'mkfs.xfs')) return;
  const d = tempDir(t);
  // xfsprogs ≥ 5.x refuses ftype=0 on v5 (crc) filesystems; ftype=0 needs the deprecated v4 format.
  const fs = makeLoopFs(d, 'xfs0', ['mkfs.xfs', '-q', '-f', '-m', 'crc=0', '-n', 'ftype=0'], 300);
  if (typeof fs === 'string') {
    // A kernel built without CONFIG_XFS_SUPPORT_V4 cannot mount an ftype=0 xfs at all, so no store
    // can live on one: that refusal (and nothing else) is accepted here, in CI too. The same
    // no-d_type path is proven on ext4 without `filetype` above, and the xfs text by the unit test.
    const log = spawnSync('dmesg', []).stdout.toString();
    assert.match(log, /XFS \(loop\d+\): Deprecated V4 format \(crc=0\) not supported by kernel/, `xfs ftype=0 could not be made or mounted for another reason: ${fs}`);
    t.diagnostic('this kernel cannot mount V4 (ftype=0) xfs; the d_type refusal is exercised on ext4 -O ^filetype instead');
    return;
  }
  try {
    await assert.rejects(Overlay2Driver.init(join(fs.mnt, 'overlay2')), (e: unknown) => {
      assert.ok(e instanceof OverlayError && e.reason === 'no-d-type');
      assert.ok(e.message.endsWith(`: ${dTypeNotSupportedMessage('overlay2', 'xfs')}`), e.message);
      return true;
    });
    assert.equal(existsSync(join(fs.mnt, 'overlay2')), false, 'init must not create home');
  } finally {
    fs.close();
  }
});
