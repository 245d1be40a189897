/**
 * The layer stack of one overlay: the upper (index -1) and the lowers (0 = topmost), the private
 * xattr names (`trusted.overlay.*`, or `user.overlay.*` with `userxattr`) and the small on-disk
 * predicates every other engine file needs: "is this a whiteout", "is this dir opaque".
 * Kernel rules: a whiteout is any char device 0/0 (mode and nlink irrelevant); in a *lower* layer a
 * zero-size regular file with `overlay.whiteout` inside a dir marked `overlay.opaque=x` is one too.
 */
import { lstatSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { lgetxattr, llistxattr, S_IFCHR, S_IFMT, S_IFREG } from '../sys/libc.js';
import { OverlayError } from '../errors.js';

export interface OverlayEngineOptions {
  /** Lower layer directories, topmost first (the order of `lowerdir=`). */
  lowers: readonly string[];
  /** Upper directory; absent (or `readonly: true`) gives a read-only overlay (writes → EROFS). */
  upper?: string | undefined;
  /** Work directory on the same filesystem as upper (the engine uses `<work>/work`, like the kernel). */
  work?: string | undefined;
  /** Refuse every write with EROFS even when an upper is given. Default false. */
  readonly?: boolean | undefined;
  /** Private xattrs in `user.overlay.*` instead of `trusted.overlay.*` (kernel `userxattr`). Default false. */
  userxattr?: boolean | undefined;
  /** Rename lower/merged directories by writing `overlay.redirect` (kernel `redirect_dir=on`). Default false (EXDEV). */
  redirectDir?: boolean | undefined;
  /**
   * Metadata-only copy-up (kernel `metacopy=on`, which implies `redirect_dir=on`): chmod/chown/
   * utimes/xattr changes copy only the inode (sparse, `overlay.metacopy`); data follows on the first
   * write. Default false, as on this machine's kernel.
   */
  metacopy?: boolean | undefined;
  /** fsync copied-up files before they become visible (kernel `fsync=auto`). Default true. */
  fsync?: boolean | undefined;
}

/** Layer index of the upper; lowers are 0..n-1. */
export const UPPER = -1;

export class LayerStack {
  readonly lowers: readonly string[];
  readonly upper: string | undefined;
  readonly workdir: string | undefined;
  readonly readonly: boolean;
  readonly prefix: string;
  readonly redirectDir: boolean;
  readonly metacopy: boolean;
  readonly followRedirects: boolean;
  readonly fsync: boolean;

  constructor(opts: OverlayEngineOptions) {
    if (opts.lowers.length === 0) throw new OverlayError('EINVAL', 'overlay', { reason: 'no-lower-layers' });
    if (opts.lowers.length > 500) throw new OverlayError('EINVAL', 'overlay', { reason: 'too-many-lowers' });
    if (opts.upper !== undefined && opts.work === undefined && opts.readonly !== true) {
      throw new OverlayError('EINVAL', 'overlay', { path: opts.upper, reason: 'upper-without-work' });
    }
    if (opts.userxattr === true && (opts.redirectDir === true || opts.metacopy === true)) {
      throw new OverlayError('EINVAL', 'overlay', { reason: 'userxattr-with-redirect-dir' });
    }
    this.lowers = [...opts.lowers];
    this.upper = opts.upper;
    this.readonly = opts.readonly === true || opts.upper === undefined;
    this.workdir = opts.work === undefined ? undefined : join(opts.work, 'work');
    this.prefix = opts.userxattr === true ? 'user.overlay.' : 'trusted.overlay.';
    this.metacopy = opts.metacopy === true;
    this.redirectDir = opts.redirectDir === true || this.metacopy;
    // redirect_always_follow=Y here; userxattr forces nofollow (guide 1.7).
    this.followRedirects = opts.userxattr !== true;
    this.fsync = opts.fsync !== false;
  }

  root(layer: number): string {
    if (layer === UPPER) {
      if (this.upper === undefined) throw new OverlayError('EROFS', 'overlay');
      return this.upper;
    }
    const r = this.lowers[layer];
    if (r === undefined) throw new OverlayError('EINVAL', 'overlay', { reason: 'bad-layer-index' });
    return r;
  }

  /** Full private xattr name, e.g. `x('opaque')` → `trusted.overlay.opaque`. */
  x(name: string): string {
    return this.prefix + name;
  }

  isPrivateXattr(name: string): boolean {
    return name.startsWith(this.prefix);
  }

  /**
   * Kernel xattr escaping (6.7+): a caller's `<prefix>X` is stored as `<prefix>overlay.X`, so an
   * overlay's own markers can be carried by a layer (nested overlays). Private names that are not
   * escaped stay hidden; escaped ones are user data (listed unescaped, copied up as they are).
   */
  escapeXattr(name: string): string {
    return this.isPrivateXattr(name) ? `${this.prefix}overlay.${name.slice(this.prefix.length)}` : name;
  }

  /** The caller's name for a real xattr name; null for a private name the caller never sees. */
  unescapeXattr(real: string): string | null {
    if (!this.isPrivateXattr(real)) return real;
    const esc = `${this.prefix}overlay.`;
    return real.startsWith(esc) && real.length > esc.length ? this.prefix + real.slice(esc.length) : null;
  }

  /** True for a real xattr name that is overlay metadata (private and not escaped): never copied up. */
  isOverlayMetadata(real: string): boolean {
    return this.unescapeXattr(real) === null;
  }

  getPrivate(path: string, name: string): string | null {
    const v = lgetxattr(path, this.x(name));
    return v === null ? null : v.toString('latin1');
  }

  isOpaqueDir(path: string): boolean {
    return this.getPrivate(path, 'opaque') === 'y';
  }

  /**
   * The private markers of a dir in one call when it has none (the common case): llistxattr first,
   * values only for names that are there.
   */
  dirMarkers(path: string): { opaque: string | null; redirect: string | null; metacopy: boolean; origin: boolean } {
    const names = llistxattr(path);
    if (names.length === 0) return { opaque: null, redirect: null, metacopy: false, origin: false };
    const o = this.x('opaque');
    const r = this.x('redirect');
    return {
      opaque: names.includes(o) ? this.getPrivate(path, 'opaque') : null,
      redirect: names.includes(r) ? this.getPrivate(path, 'redirect') : null,
      metacopy: names.includes(this.x('metacopy')),
      origin: names.includes(this.x('origin')),
    };
  }

  /** Whiteout test for an entry already lstat'ed; `layer` decides whether xwhiteouts count. */
  isWhiteout(path: string, st: BigIntStats, layer: number, parentReal: string): boolean {
    const fmt = Number(st.mode) & S_IFMT;
    if (fmt === S_IFCHR) return st.rdev === 0n;
    if (layer !== UPPER && fmt === S_IFREG && st.size === 0n) {
      if (lgetxattr(path, this.x('whiteout')) === null) return false;
      return this.getPrivate(parentReal, 'opaque') === 'x';
    }
    return false;
  }
}

/** lstat that returns null for ENOENT/ENOTDIR (a missing name in one layer). */
export function lstatOrNull(path: string): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}
