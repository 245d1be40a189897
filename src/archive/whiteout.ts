/**
 * The two spellings of "deleted" and "opaque": the overlay on-disk form (0/0 character device,
 * `trusted.overlay.opaque=y`, or `user.overlay.*` under userxattr) and the OCI/AUFS tar form
 * (`.wh.<name>`, `<dir>/.wh..wh..opq`). Also the overlay xattrs that make an upper dir unfit for
 * a native diff (redirect_dir, metacopy): walking only the upper would lose lower content.
 */
import type { BigIntStats } from 'node:fs';
import { S_IFCHR, S_IFMT, lgetxattr, llistxattr } from '../sys/libc.js';

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';

/** The xattr namespace overlay uses for its private attributes. */
export function overlayXattrPrefix(userxattr: boolean | undefined): string {
  return userxattr === true ? 'user.overlay.' : 'trusted.overlay.';
}

/** A 0/0 character device: how overlayfs records a deleted path in an upper or lower dir. */
export function isWhiteoutStat(st: BigIntStats): boolean {
  return (Number(st.mode) & S_IFMT) === S_IFCHR && st.rdev === 0n;
}

/**
 * The directory carries the opaque xattr with exactly the value "y". `present` (the entry's xattr
 * names, when the caller listed them already) saves a lookup that would fail with ENODATA.
 */
export function isOpaqueDir(path: string | Buffer, userxattr: boolean | undefined, present?: readonly string[]): boolean {
  const name = `${overlayXattrPrefix(userxattr)}opaque`;
  if (present !== undefined && !present.includes(name)) return false;
  const v = readXattr(path, name);
  return v !== null && v.length === 1 && v[0] === 0x79;
}

/** Which overlay feature in an upper entry makes its tree not self-contained, or null. */
export function nativeDiffBlocker(path: string | Buffer, isDir: boolean, isReg: boolean, userxattr: boolean | undefined, present?: readonly string[]): string | null {
  if (!isDir && !isReg) return null;
  const names = present ?? listXattrs(path);
  const prefix = overlayXattrPrefix(userxattr);
  if (isDir && names.includes(`${prefix}redirect`)) return 'upper-has-redirect';
  if (isReg && names.includes(`${prefix}metacopy`)) return 'upper-has-metacopy';
  return null;
}

/** llistxattr for a string or raw-bytes path (a name need not be UTF-8). */
export function listXattrs(path: string | Buffer): string[] {
  return llistxattr(path);
}

/** lgetxattr for a path given as string or raw bytes (a name need not be UTF-8); null when absent. */
export function readXattr(path: string | Buffer, name: string): Buffer | null {
  return lgetxattr(path, name);
}
