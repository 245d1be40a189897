/**
 * Kernel overlayfs feature probes, each a real test mount in a temp dir, returned as data.
 * "Unsupported" is a result with a reason, never a throw; only an unexpected failure of the
 * probe's own housekeeping (mkdir in the test dir, …) throws. Every probe unmounts and removes
 * its temp dir whatever happens. Names of the temp dirs follow Docker's.
 */
import { access, chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { codeOf, fromNodeError, hasCode } from '../errors.js';
import { lgetxattr, lsetxattr, mount, umount2, MNT_DETACH } from '../sys/libc.js';

export interface FeatureResult {
  supported: boolean;
  reason?: string;
}

async function withTemp<T>(parent: string, prefix: string, dirs: string[], fn: (td: string) => Promise<T>): Promise<T> {
  let td: string;
  try {
    td = await mkdtemp(join(parent, prefix));
    for (const d of dirs) await mkdir(join(td, d), { recursive: true, mode: 0o755 });
  } catch (e) {
    throw fromNodeError(e, 'mkdtemp', { path: parent });
  }
  try {
    return await fn(td);
  } finally {
    try {
      umount2(join(td, 'merged'), MNT_DETACH);
    } catch (e) {
      // Not mounted (EINVAL), gone (ENOENT), or not allowed to unmount anything (EPERM, an
      // unprivileged caller whose mount failed too): nothing to undo; the dir is removed below.
      if (!hasCode(e, 'EINVAL', 'ENOENT', 'EPERM')) throw e;
    }
    await rm(td, { recursive: true, force: true });
  }
}

function tryMount(target: string, data: string): string | undefined {
  try {
    mount('overlay', target, 'overlay', 0, data);
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** The xattr namespace overlayfs uses: `trusted`, or `user` with userxattr. */
export const overlayXattr = (name: string, userxattr = false): string => `${userxattr ? 'user' : 'trusted'}.overlay.${name}`;

/**
 * Docker's SupportsOverlay(testdir, checkMultipleLowers): an overlay (with two lowers when
 * `multipleLowers`, Docker's default for overlay2) mounts in `testdir`.
 */
export async function probeOverlay(testdir: string, multipleLowers = true): Promise<FeatureResult> {
  return withTemp(testdir, 'check-overlayfs-support', ['lower1', 'lower2', 'upper', 'work', 'merged'], async (td) => {
    const lowers = multipleLowers ? `${td}/lower2:${td}/lower1` : `${td}/lower1`;
    const err = tryMount(join(td, 'merged'), `lowerdir=${lowers},upperdir=${td}/upper,workdir=${td}/work`);
    if (err !== undefined) {
      const hint = /[,:]/.test(testdir)
        ? ` (the path ${testdir} contains ',' or ':', which overlay mount options cannot carry)`
        : process.getuid?.() !== 0 && err.startsWith('EPERM') ? ' (kernel overlay mounts need root; `overlay2 fs` works without)' : '';
      return { supported: false, reason: `failed to mount overlay: ${err}${hint}` };
    }
    umount2(join(td, 'merged'), 0);
    return { supported: true };
  });
}

/** `index=off` is added to mounts when the module has an `index` parameter (Docker). */
export async function probeIndexParam(): Promise<boolean> {
  try {
    await access('/sys/module/overlay/parameters/index');
    return true;
  } catch (e) {
    // Docker warns on stat errors other than ENOENT and leaves index alone; so do we.
    void e;
    return false;
  }
}

/** True when this process runs in a user namespace other than the initial one. */
export async function inUserNamespace(): Promise<boolean> {
  try {
    const m = (await readFile('/proc/self/uid_map', 'utf8')).trim().split(/\s+/);
    return !(m[0] === '0' && m[1] === '0' && m[2] === '4294967295');
  } catch (e) {
    if (hasCode(e, 'ENOENT')) return false;
    throw fromNodeError(e, 'read', { path: '/proc/self/uid_map' });
  }
}

/** Docker's NeedsUserXAttr: only in a user namespace, where kernels ≥ 5.11 need `userxattr`. */
export async function probeUserxattr(home: string): Promise<FeatureResult> {
  if (!(await inUserNamespace())) return { supported: false, reason: 'not in a user namespace' };
  const [maj = 0, min = 0] = (await readFile('/proc/sys/kernel/osrelease', 'utf8')).split('.').map((x) => parseInt(x, 10));
  if (maj > 5 || (maj === 5 && min >= 11)) return { supported: true, reason: 'kernel >= 5.11 in a user namespace' };
  return withTemp(home, 'userxattr-check', ['lower1', 'lower2', 'upper', 'work', 'merged'], async (td) => {
    const err = tryMount(join(td, 'merged'), `userxattr,lowerdir=${td}/lower2:${td}/lower1,upperdir=${td}/upper,workdir=${td}/work`);
    if (err !== undefined) return { supported: false, reason: err };
    umount2(join(td, 'merged'), 0);
    return { supported: true };
  });
}

/**
 * Docker's usingMetacopy: chmod of a lower file through the mount; a metacopy-only copy-up
 * leaves `<class>.overlay.metacopy` on the upper file.
 */
export async function probeMetacopy(testdir: string, userxattr = false): Promise<FeatureResult> {
  return withTemp(testdir, 'metacopy-check', ['l1', 'l2', 'work', 'merged'], async (td) => {
    await writeFile(join(td, 'l1', 'f'), '', { mode: 0o700 });
    await chmod(join(td, 'l1', 'f'), 0o700);
    const err = tryMount(join(td, 'merged'), `${userxattr ? 'userxattr,' : ''}lowerdir=${td}/l1,upperdir=${td}/l2,workdir=${td}/work`);
    if (err !== undefined) return { supported: false, reason: `failed to mount overlay for metacopy check: ${err}` };
    await chmod(join(td, 'merged', 'f'), 0o600);
    const v = lgetxattr(join(td, 'l2', 'f'), overlayXattr('metacopy', userxattr));
    umount2(join(td, 'merged'), 0);
    return v === null ? { supported: false, reason: 'chmod copied the whole file up (no metacopy xattr)' } : { supported: true };
  });
}

/**
 * Docker's doesSupportNativeDiff (§3.1): the upper dir alone is a correct diff unless the kernel
 * copies the opaque flag up (< 4.8) or records directory renames as redirects (redirect_dir).
 */
export async function probeNativeDiff(home: string, userxattr = false): Promise<FeatureResult> {
  if ((await inUserNamespace()) && !userxattr) {
    return { supported: false, reason: 'native diff is not supported in user namespace, consider updating to kernel 5.11 or later to fix' };
  }
  return withTemp(home, 'opaque-bug-check', ['l1/d', 'l1/d1', 'l2/d', 'l3', 'work', 'merged'], async (td) => {
    const opaque = overlayXattr('opaque', userxattr);
    lsetxattr(join(td, 'l2', 'd'), opaque, 'y');
    const merged = join(td, 'merged');
    const err = tryMount(merged, `${userxattr ? 'userxattr,' : ''}lowerdir=${td}/l2:${td}/l1,upperdir=${td}/l3,workdir=${td}/work`);
    if (err !== undefined) return { supported: false, reason: `failed to mount overlay: ${err}` };
    try {
      await writeFile(join(merged, 'd', 'f'), '');
      if (lgetxattr(join(td, 'l3', 'd'), opaque)?.toString() === 'y') {
        return { supported: false, reason: 'opaque flag erroneously copied up, consider updating to kernel 4.8 or later to fix' };
      }
      try {
        await rename(join(merged, 'd1'), join(merged, 'd2'));
      } catch (e) {
        if (hasCode(e, 'EXDEV')) return { supported: true, reason: 'directory rename gives EXDEV (redirect_dir off)' };
        return { supported: false, reason: `failed to rename dir in merged directory: ${codeOf(e) ?? String(e)}` };
      }
      if (lgetxattr(join(td, 'l3', 'd2'), overlayXattr('redirect', userxattr))?.toString() === 'd1') {
        return { supported: false, reason: 'kernel has CONFIG_OVERLAY_FS_REDIRECT_DIR enabled' };
      }
      return { supported: true };
    } finally {
      umount2(merged, 0);
    }
  });
}
