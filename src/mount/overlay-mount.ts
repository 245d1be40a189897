/**
 * Kernel overlay mounts from plain paths (no layer ids here).
 *
 * Mount data must fit in one page for mount(2). Docker (2.3 of the driver spec) rebuilds the
 * data with paths relative to the store home and mounts from that cwd. This kernel also has the
 * new mount API, where each `lowerdir+` is its own fsconfig call, so there is no total limit —
 * but fsconfig copies at most 256 bytes per string value. Strategy (`method: 'auto'`):
 *   1. absolute data < page size          → mount(2), exactly Docker's data string;
 *   2. otherwise, every path < 256 bytes  → fsopen/fsconfig(lowerdir+ …)/fsmount/move_mount;
 *      a kernel without `lowerdir+` (< 6.8) answers EINVAL/ENOSYS on that fsconfig → step 3;
 *   3. relative data (needs `relativeTo`) → chdir(relativeTo), mount(2), chdir back (Docker's
 *      mountFrom). Still ≥ page size → E2BIG with Docker's "cannot mount layer, mount label too large".
 * The chdir in step 3 is process-wide for one synchronous syscall; callers pass absolute paths to
 * every other fs call (ours all do), and it is refused inside worker threads (ENOTSUP).
 * Errors carry Docker's "error creating overlay mount to <target>: <err>" in `detail`.
 */
import { relative } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { OverlayError, codeOf, fromNodeError, hasCode } from '../errors.js';
import { fsMount, mount, pageSize, umount2, MNT_DETACH } from '../sys/libc.js';
import { mountAt, mountsUnder, readMountinfo } from './mountinfo.js';

export type MountMethod = 'mount' | 'fsmount' | 'mount-relative';

export interface OverlayMountSpec {
  /** Lower dirs, top → bottom (the order of `lowerdir=`). At least one. */
  lowers: string[];
  /** Upper and work dir; both or neither (neither = a read-only overlay). */
  upper?: string;
  work?: string;
  target: string;
  /** Prefix `index=off,` (Docker does so when /sys/module/overlay/parameters/index exists). */
  indexOff?: boolean;
  /** Prefix `userxattr,` (rootless). */
  userxattr?: boolean;
  /** SELinux mount label, appended as `,context="<label>"`. */
  mountLabel?: string;
  /** Directory all paths are under, for the relative-path fallback (the store home). */
  relativeTo?: string;
  /** Force one method (tests); default 'auto'. */
  method?: 'auto' | MountMethod;
}

/** fsconfig(FSCONFIG_SET_STRING) copies at most this many bytes including the NUL. */
const FSCONFIG_STRING_MAX = 256;

/** Docker's mount data string for `spec`, paths mapped by `p`. */
export function overlayMountData(spec: OverlayMountSpec, p: (path: string) => string = (x) => x): string {
  let data = '';
  if (spec.indexOff) data += 'index=off,';
  if (spec.userxattr) data += 'userxattr,';
  data += `lowerdir=${spec.lowers.map(p).join(':')}`;
  if (spec.upper !== undefined) data += `,upperdir=${p(spec.upper)},workdir=${p(spec.work ?? '')}`;
  if (spec.mountLabel) data += `,context=${JSON.stringify(spec.mountLabel)}`;
  return data;
}

function errText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  // "EINVAL: invalid argument, mount '/x'" → "invalid argument" (Go prints the errno text).
  const t = /^E[A-Z0-9]+: ([^,]*)/.exec(m);
  return t?.[1] ?? m;
}

function mountError(e: unknown, spec: OverlayMountSpec, method: MountMethod): OverlayError {
  return new OverlayError(codeOf(e) ?? 'EIO', 'mount overlay', {
    path: spec.target,
    reason: `overlay-mount-${method}`,
    detail: `error creating overlay mount to ${spec.target}: ${errText(e)}`,
    cause: e,
  });
}

function validate(spec: OverlayMountSpec): void {
  if (spec.lowers.length === 0) throw new OverlayError('EINVAL', 'mount overlay', { path: spec.target, reason: 'no-lowers' });
  if ((spec.upper === undefined) !== (spec.work === undefined)) {
    throw new OverlayError('EINVAL', 'mount overlay', { path: spec.target, reason: 'upper-without-work' });
  }
  for (const p of [...spec.lowers, spec.upper ?? '', spec.work ?? '']) {
    if (p.includes(',') || p.includes(':')) {
      throw new OverlayError('EINVAL', 'mount overlay', { path: p, reason: 'path-has-separator', detail: 'overlay paths cannot contain "," or ":"' });
    }
  }
}

function viaMount(spec: OverlayMountSpec, data: string): void {
  try {
    mount('overlay', spec.target, 'overlay', 0, data);
  } catch (e) {
    throw mountError(e, spec, 'mount');
  }
}

function viaFsMount(spec: OverlayMountSpec): void {
  const opts: Array<[string, string | null]> = [];
  if (spec.indexOff) opts.push(['index', 'off']);
  if (spec.userxattr) opts.push(['userxattr', null]);
  for (const l of spec.lowers) opts.push(['lowerdir+', l]);
  if (spec.upper !== undefined) {
    opts.push(['upperdir', spec.upper]);
    opts.push(['workdir', spec.work ?? '']);
  }
  if (spec.mountLabel) opts.push(['context', spec.mountLabel]);
  fsMount('overlay', spec.target, opts);
}

function viaRelative(spec: OverlayMountSpec, ps: number): void {
  const base = spec.relativeTo;
  if (base === undefined) {
    throw new OverlayError('E2BIG', 'mount overlay', { path: spec.target, reason: 'mount-data-too-large', detail: 'mount data over a page and no base dir for relative paths' });
  }
  const rel = (x: string): string => relative(base, x);
  const data = overlayMountData(spec, rel);
  const size = Buffer.byteLength(data);
  if (size > ps - 1) {
    throw new OverlayError('E2BIG', 'mount overlay', { path: spec.target, reason: 'mount-data-too-large', detail: `cannot mount layer, mount label too large ${size}` });
  }
  if (!isMainThread) throw new OverlayError('ENOTSUP', 'mount overlay', { path: spec.target, reason: 'chdir-in-worker' });
  const cwd = process.cwd();
  try {
    process.chdir(base);
  } catch (e) {
    throw fromNodeError(e, 'chdir', { path: base });
  }
  try {
    mount('overlay', rel(spec.target), 'overlay', 0, data);
  } catch (e) {
    throw mountError(e, spec, 'mount-relative');
  } finally {
    process.chdir(cwd);
  }
}

/**
 * Mount an overlay at `spec.target` (an existing dir). Returns the method used.
 * @throws OverlayError with the kernel's code (EINVAL, EBUSY, ENOENT…) and Docker's text in detail;
 *   E2BIG (reason mount-data-too-large) when no method can carry the data.
 */
export function mountOverlay(spec: OverlayMountSpec): MountMethod {
  validate(spec);
  const ps = pageSize();
  const data = overlayMountData(spec);
  const method = spec.method ?? 'auto';
  if (method === 'mount' || (method === 'auto' && Buffer.byteLength(data) <= ps - 1)) {
    viaMount(spec, data);
    return 'mount';
  }
  if (method === 'mount-relative') {
    viaRelative(spec, ps);
    return 'mount-relative';
  }
  const paths = [...spec.lowers, spec.upper ?? '', spec.work ?? '', spec.mountLabel ?? ''];
  const fits = paths.every((p) => Buffer.byteLength(p) < FSCONFIG_STRING_MAX);
  if (fits) {
    try {
      viaFsMount(spec);
      return 'fsmount';
    } catch (e) {
      const unsupported =
        hasCode(e, 'ENOSYS') || (hasCode(e, 'EINVAL') && e instanceof OverlayError && e.op === 'fsconfig lowerdir+');
      if (method === 'fsmount' || !unsupported) throw mountError(e, spec, 'fsmount');
    }
  } else if (method === 'fsmount') {
    throw new OverlayError('ENAMETOOLONG', 'mount overlay', { path: spec.target, reason: 'fsconfig-path-too-long' });
  }
  viaRelative(spec, ps);
  return 'mount-relative';
}

/** Unmount `target`; `detach` = MNT_DETACH (lazy, Docker's Put). EINVAL (not a mount) and ENOENT are ignored. */
export function unmount(target: string, detach = false): void {
  try {
    umount2(target, detach ? MNT_DETACH : 0);
  } catch (e) {
    if (hasCode(e, 'EINVAL', 'ENOENT')) return;
    throw e;
  }
}

/** True when `path` itself is the mount point of an overlay mount. */
export function isOverlayMountPoint(path: string): boolean {
  return mountAt(path)?.fsType === 'overlay';
}

/** Unmount every mount at or below `dir`, deepest first (Docker's mount.RecursiveUnmount). */
export function recursiveUnmount(dir: string): void {
  for (const p of mountsUnder(dir, readMountinfo())) {
    try {
      umount2(p, 0);
    } catch (e) {
      if (hasCode(e, 'EINVAL', 'ENOENT')) continue;
      if (!hasCode(e, 'EBUSY')) throw e;
      unmount(p, true);
    }
  }
}
