/**
 * OverlayEngine: the kernel overlay's merged view and write rules over plain directories, with a
 * promise API shaped like `node:fs/promises`. Each public call runs its syscalls synchronously
 * inside one async function, so calls never interleave and copy-up happens once per object.
 * The upper is written in exactly the kernel's format (0/0 char-dev whiteouts, `opaque=y`,
 * `impure`, `origin`, `redirect`), so a kernel mount and this engine can take turns on one upper.
 * Errors are OverlayError with the errno the kernel gives for the same call (checked by the
 * differential tests in test/differential/engine*.test.ts).
 */
import {
  accessSync, chmodSync, closeSync, linkSync, lchownSync, mkdirSync, openSync, readFileSync,
  readlinkSync, renameSync, rmdirSync, statfsSync, symlinkSync, truncateSync, unlinkSync,
  constants as fsc,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { OverlayError, fromNodeError } from '../errors.js';
import {
  ficlone, lgetxattr, llistxattr, lremovexattr, lsetxattr, lutimesNs, mknod, renameat2,
  RENAME_EXCHANGE, RENAME_WHITEOUT, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG,
} from '../sys/libc.js';
import { OVERLAY_MAGIC } from '../sys/statfs.js';
import { LayerStack, UPPER, lstatOrNull, type OverlayEngineOptions } from './layer-stack.js';
import { Lookup, hasLower, hasTrailingSlash, hasUpper, isDir, isMerged, isSymlink, type Node } from './lookup.js';
import { CopyUp, removeQuietly, type CopiedUpKind } from './copy-up.js';
import { isEmptyDir, mergedEntries } from './readdir-merge.js';
import { OverlayDirent, OverlayStats } from './stats.js';
import { OverlayFileHandle, type HandleRegistry } from './handle.js';
import { parseFlags, readSpecial, readdirNames, toTimespec, type TimeLike } from './io.js';

export type { OverlayEngineOptions } from './layer-stack.js';
export { OverlayStats, OverlayDirent } from './stats.js';
export { OverlayFileHandle } from './handle.js';

export type { TimeLike } from './io.js';

export interface OverlayStatfs {
  type: number; bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number;
}

const REDIRECT_MAX = 256;

/**
 * Open handles still reading a lower file, for every engine of this process, keyed by the upper
 * dir and the lower file: a copy-up by *any* engine over the same upper re-points them all (two
 * engines on one container's dirs behave like one mount). Engines with other uppers (other
 * containers on the same image) share lowers but never see each other's copy-ups.
 */
const lowerHandles = new Map<string, Set<OverlayFileHandle>>();
const EUID = process.geteuid?.() ?? 0;
const UNPRIVILEGED = EUID !== 0;

export class OverlayEngine implements HandleRegistry {
  readonly layers: LayerStack;
  readonly dev: bigint;
  private readonly lookup: Lookup;
  private readonly copyUp: CopyUp;

  /** @throws EINVAL for a bad layer configuration, ENOENT when a layer dir is missing. */
  constructor(opts: OverlayEngineOptions) {
    this.layers = new LayerStack(opts);
    this.lookup = new Lookup(this.layers);
    this.copyUp = new CopyUp(this.layers);
    this.copyUp.onCopiedUp = (lower, upper, kind) => this.repointHandles(lower, upper, kind);
    const top = this.layers.upper ?? this.layers.lowers[0]!;
    const st = lstatOrNull(top);
    if (st === null) throw new OverlayError('ENOENT', 'overlay', { path: top, reason: 'layer-root-missing' });
    this.dev = st.dev;
    for (const l of this.layers.lowers) {
      if (lstatOrNull(l) === null) throw new OverlayError('ENOENT', 'overlay', { path: l, reason: 'layer-root-missing' });
    }
    if (!this.layers.readonly) this.initUpper();
  }

  /** Like a kernel mount with uuid=auto on 6.18: an upper root without `overlay.uuid` gets one. */
  private initUpper(): void {
    const upper = this.layers.root(UPPER);
    const work = this.layers.workdir!;
    if (lstatOrNull(work) === null) mkdirSync(work, { recursive: true, mode: process.geteuid?.() === 0 ? 0 : 0o700 });
    if (this.layers.getPrivate(upper, 'uuid') === null) {
      lsetxattr(upper, this.layers.x('uuid'), randomBytes(16));
    }
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private run<T>(op: string, path: string, fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(this.inContainerTerms(fromNodeError(e, op, { path }), path));
    }
  }

  /**
   * A syscall failing on a layer file names the host path of that file; callers of the engine know
   * only merged paths, and must not learn where the layers live: report the merged path instead.
   */
  private inContainerTerms(e: OverlayError, path: string): OverlayError {
    const p = e.path;
    const roots = [this.layers.upper, this.layers.workdir, ...this.layers.lowers];
    if (p === undefined || !roots.some((r) => r !== undefined && (p === r || p.startsWith(r + '/')))) return e;
    return new OverlayError(e.code, e.op, { path, reason: e.reason, cause: e });
  }

  private existing(path: string, follow: boolean, op: string): Node {
    const n = this.lookup.resolve(path, follow, op);
    if (n.st === null) throw new OverlayError('ENOENT', op, { path });
    return n;
  }

  /**
   * The kernel checks the caller against the overlay inode before any copy-up; the engine runs
   * with the caller's own credentials, so for a non-root caller it repeats those checks first
   * (a refused write must not leave a copied-up file behind). Root passes them anyway.
   */
  private permit(n: Node, mode: number, op: string): void {
    if (!UNPRIVILEGED) return;
    const real = n.hits[0]!.real;
    try {
      accessSync(real, mode);
    } catch (e) {
      const c = (e as { code?: string }).code ?? 'EACCES';
      if (c === 'EROFS' && !hasUpper(n)) {
        accessSync(real, (mode & ~fsc.W_OK) | fsc.R_OK);
        return;
      }
      throw new OverlayError(c, op, { path: n.path });
    }
  }

  private ownerOnly(n: Node, op: string): void {
    if (UNPRIVILEGED && Number(n.st!.uid) !== EUID) throw new OverlayError('EPERM', op, { path: n.path });
  }

  private writable(op: string, path: string): void {
    if (this.layers.readonly) throw new OverlayError('EROFS', op, { path });
  }

  /** Resolve the target of a create: parent must exist; EEXIST if the name does. */
  private forCreate(path: string, op: string, dir = false): Node {
    const n = this.resolveLast(path, op);
    if (n.st !== null) throw new OverlayError('EEXIST', op, { path });
    // Kernel filename_create: a trailing slash on a new name is only for mkdir.
    if (!dir && hasTrailingSlash(path)) throw new OverlayError('ENOENT', op, { path });
    this.writable(op, path);
    return n;
  }

  /**
   * The last name of a create, unlink, rmdir or rename, as the kernel looks it up: never followed,
   * a trailing slash notwithstanding (each call then applies its own trailing-slash rule), so a
   * symlink is the name itself, never its target.
   */
  private resolveLast(path: string, op: string): Node {
    return this.lookup.resolve(stripSlashes(path), false, op);
  }

  /** Kernel ovl_lower_positive: does a lower layer (below the parent) hold this name? */
  private lowerPositive(n: Node): boolean {
    if (n.st === null) return n.upperWhiteout;
    if (!hasUpper(n)) return true;
    const parent = n.parent;
    if (parent === null) return false;
    for (const h of parent.hits) {
      if (h.layer === UPPER) continue;
      const real = join(h.real, n.name);
      const st = lstatOrNull(real);
      if (st === null) continue;
      return !this.layers.isWhiteout(real, st, h.layer, h.real);
    }
    return false;
  }

  /** Create a new object at the negative node `n`; replaces an upper whiteout atomically. */
  private create(n: Node, op: string, make: (dest: string) => void, dir: boolean): string {
    const parent = n.parent!;
    this.permit(parent, fsc.W_OK | fsc.X_OK, op);
    const parentUpper = this.copyUp.ensureUpper(parent, op);
    const dest = join(parentUpper, n.name);
    if (n.upperWhiteout) {
      const tmp = this.copyUp.tempName();
      make(tmp);
      if (dir) {
        lsetxattr(tmp, this.layers.x('opaque'), 'y');
        renameat2(tmp, dest, RENAME_EXCHANGE);
        removeQuietly(tmp);
      } else {
        renameSync(tmp, dest);
      }
    } else {
      make(dest);
      // redirect_dir=on disallows offline changes, so the kernel marks new dirs in merged parents opaque.
      if (dir && this.layers.redirectDir && isMerged(parent)) lsetxattr(dest, this.layers.x('opaque'), 'y');
    }
    return dest;
  }

  private makeWhiteoutTemp(): string {
    const tmp = this.copyUp.tempName();
    mknod(tmp, S_IFCHR, 0, 0);
    return tmp;
  }

  /** Remove whiteouts (and only them) from an upper dir before it is removed or replaced. */
  private clearWhiteouts(upperDir: string): void {
    for (const name of readdirNames(upperDir)) {
      const p = join(upperDir, name);
      const st = lstatOrNull(p);
      if (st !== null && (Number(st.mode) & S_IFMT) === S_IFCHR && st.rdev === 0n) unlinkSync(p);
    }
  }

  private remove(n: Node, dir: boolean, op: string): void {
    this.permit(n.parent!, fsc.W_OK | fsc.X_OK, op);
    const lowerPos = this.lowerPositive(n);
    const parentUpper = this.copyUp.ensureUpper(n.parent!, op);
    if (hasUpper(n)) {
      const up = n.hits[0]!.real;
      if (dir) this.clearWhiteouts(up);
      if (lowerPos) {
        const wh = this.makeWhiteoutTemp();
        if (dir) {
          renameat2(wh, up, RENAME_EXCHANGE);
          rmdirSync(wh);
        } else {
          renameSync(wh, up);
        }
      } else if (dir) {
        rmdirSync(up);
      } else {
        unlinkSync(up);
      }
    } else {
      renameSync(this.makeWhiteoutTemp(), join(parentUpper, n.name));
    }
  }

  private statOf(n: Node): OverlayStats {
    const st = n.st!;
    // Kernel ovl_getattr: a merged dir reports nlink 1.
    const out = new OverlayStats(st, this.dev, isMerged(n) ? 1 : undefined);
    // A metacopy file reports the blocks of its data (kernel ovl_getattr).
    if (n.data !== null) out.blocks = lstatOrNull(n.data.real)?.blocks ?? out.blocks;
    return out;
  }

  private handleKey(real: string): string {
    return `${this.layers.upper === undefined ? '' : resolve(this.layers.upper)}\0${resolve(real)}`;
  }

  /**
   * A lower object open through handles was copied up: like the kernel's overlay inode, the
   * handles now show the upper — a regular file's data (the fd is reopened on the upper file), a
   * directory (reopened: metadata follows later renames), the metadata of a metacopy file or of a
   * FIFO/device (stat reads the upper inode; a FIFO keeps its pipe).
   */
  private repointHandles(lower: string, upper: string, kind: CopiedUpKind): void {
    const key = this.handleKey(lower);
    const set = lowerHandles.get(key);
    if (!set) return;
    // A metacopy file's handles stay registered: its data copy-up comes later.
    if (kind !== 'meta') lowerHandles.delete(key);
    for (const h of set) {
      if (kind === 'meta' || kind === 'special') {
        h.metaReal = upper;
        continue;
      }
      let fd: number;
      try {
        fd = openSync(upper, kind === 'dir' ? fsc.O_RDONLY | fsc.O_DIRECTORY : fsc.O_RDONLY);
      } catch (e) {
        // The copy-up itself succeeded; a handle that cannot follow keeps its fd, metadata from upper.
        void e;
        h.metaReal = upper;
        continue;
      }
      closeSync(h.fd);
      h.fd = fd;
      h.real = upper;
      h.metaReal = null;
      if (kind === 'dir') h.mergedDir = true;
    }
  }

  /** @internal */
  release(h: OverlayFileHandle): void {
    const key = this.handleKey(h.real);
    const set = lowerHandles.get(key);
    if (set) {
      set.delete(h);
      if (set.size === 0) lowerHandles.delete(key);
    }
  }

  // ---- read side -------------------------------------------------------------------------------

  stat(path: string): Promise<OverlayStats> {
    return this.run('stat', path, () => this.statOf(this.existing(path, true, 'stat')));
  }

  lstat(path: string): Promise<OverlayStats> {
    return this.run('lstat', path, () => this.statOf(this.existing(path, false, 'lstat')));
  }

  /** True when the path exists (following symlinks), like `fs.existsSync`. */
  exists(path: string): Promise<boolean> {
    return this.run('exists', path, () => {
      try {
        return this.lookup.resolve(path, true, 'exists').st !== null;
      } catch (e) {
        const c = (e as { code?: string }).code;
        if (c === 'ENOENT' || c === 'ENOTDIR' || c === 'ELOOP') return false;
        throw e;
      }
    });
  }

  readdir(path: string): Promise<string[]>;
  readdir(path: string, opts: { withFileTypes: true }): Promise<OverlayDirent[]>;
  readdir(path: string, opts?: { withFileTypes?: boolean }): Promise<string[] | OverlayDirent[]> {
    return this.run('scandir', path, () => {
      const n = this.existing(path, true, 'scandir');
      if (!isDir(n)) throw new OverlayError('ENOTDIR', 'scandir', { path });
      const entries = mergedEntries(this.layers, n);
      if (opts?.withFileTypes === true) return entries.map((e) => new OverlayDirent(e.name, n.path, e.fmt));
      return entries.map((e) => e.name);
    });
  }

  readFile(path: string): Promise<Buffer>;
  readFile(path: string, encoding: BufferEncoding): Promise<string>;
  readFile(path: string, encoding?: BufferEncoding): Promise<Buffer | string> {
    return this.run('open', path, () => {
      const n = this.existing(path, true, 'open');
      if (isDir(n)) throw new OverlayError('EISDIR', 'read', { path });
      const fmt = Number(n.st!.mode) & S_IFMT;
      const real = (n.data ?? n.hits[0]!).real;
      const b = fmt === S_IFREG ? readFileSync(real) : readSpecial(real, fmt);
      return encoding === undefined ? b : b.toString(encoding);
    });
  }

  readlink(path: string): Promise<string> {
    return this.run('readlink', path, () => {
      const n = this.existing(path, false, 'readlink');
      if (!isSymlink(n)) throw new OverlayError('EINVAL', 'readlink', { path });
      return readlinkSync(n.hits[0]!.real);
    });
  }

  realpath(path: string): Promise<string> {
    return this.run('realpath', path, () => this.existing(path, true, 'realpath').path);
  }

  /** access(2): F_OK/R_OK/W_OK/X_OK against the topmost object; W_OK on a read-only overlay → EROFS. */
  access(path: string, mode: number = fsc.F_OK): Promise<void> {
    return this.run('access', path, () => {
      const n = this.existing(path, true, 'access');
      const fmt = Number(n.st!.mode) & S_IFMT;
      if ((mode & fsc.W_OK) !== 0 && this.layers.readonly && (fmt === S_IFREG || fmt === S_IFDIR || fmt === S_IFLNK)) {
        throw new OverlayError('EROFS', 'access', { path });
      }
      // Kernel ovl_permission: the caller against the object's mode first; for a lower object a
      // write check then only needs the layer to be readable (copy-up writes the upper, not it).
      const real = n.hits[0]!.real;
      try {
        accessSync(real, mode);
      } catch (e) {
        if (hasUpper(n) || (e as { code?: string }).code !== 'EROFS') throw e;
        accessSync(real, (mode & ~fsc.W_OK) | fsc.R_OK);
      }
    });
  }

  statfs(path: string): Promise<OverlayStatfs> {
    return this.run('statfs', path, () => {
      this.existing(path, true, 'statfs');
      const s = statfsSync(this.layers.upper ?? this.layers.lowers[0]!);
      return { type: OVERLAY_MAGIC, bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree };
    });
  }

  // ---- xattrs ----------------------------------------------------------------------------------

  private xattrNode(path: string, follow: boolean, op: string, name: string, write: boolean): Node {
    const n = this.existing(path, follow, op);
    if (write) this.writable(op, path);
    // The kernel refuses a name outside the four namespaces before anything happens (so before
    // any copy-up here).
    if (!/^(user|trusted|security|system)\.[^]/.test(name)) throw new OverlayError('EOPNOTSUPP', op, { path, reason: 'xattr-namespace' });
    const fmt = Number(n.st!.mode) & S_IFMT;
    if (name.startsWith('user.') && fmt !== S_IFREG && fmt !== S_IFDIR) {
      throw new OverlayError(write ? 'EPERM' : 'ENODATA', op, { path });
    }
    if (write && UNPRIVILEGED) {
      if (!name.startsWith('user.')) throw new OverlayError('EPERM', op, { path });
      this.permit(n, fsc.W_OK, op);
    }
    return n;
  }

  getxattr(path: string, name: string, opts: { noFollow?: boolean } = {}): Promise<Buffer> {
    return this.run('getxattr', path, () => {
      const n = this.xattrNode(path, opts.noFollow !== true, 'getxattr', name, false);
      const v = lgetxattr(n.hits[0]!.real, this.layers.escapeXattr(name));
      if (v === null) throw new OverlayError('ENODATA', 'getxattr', { path, detail: name });
      return v;
    });
  }

  listxattr(path: string, opts: { noFollow?: boolean } = {}): Promise<string[]> {
    return this.run('listxattr', path, () => {
      const n = this.existing(path, opts.noFollow !== true, 'listxattr');
      const out: string[] = [];
      for (const real of llistxattr(n.hits[0]!.real)) {
        const name = this.layers.unescapeXattr(real);
        if (name !== null) out.push(name);
      }
      return out;
    });
  }

  setxattr(path: string, name: string, value: Uint8Array | string, opts: { noFollow?: boolean; flags?: number } = {}): Promise<void> {
    return this.run('setxattr', path, () => {
      const n = this.xattrNode(path, opts.noFollow !== true, 'setxattr', name, true);
      lsetxattr(this.copyUp.ensureUpper(n, 'setxattr', false), this.layers.escapeXattr(name), value, opts.flags ?? 0);
    });
  }

  removexattr(path: string, name: string, opts: { noFollow?: boolean } = {}): Promise<void> {
    return this.run('removexattr', path, () => {
      const n = this.xattrNode(path, opts.noFollow !== true, 'removexattr', name, true);
      // Kernel ovl_xattr_set: removing from a lower object checks the lower first (no copy-up on ENODATA).
      const real = this.layers.escapeXattr(name);
      if (!hasUpper(n) && lgetxattr(n.hits[0]!.real, real) === null) throw new OverlayError('ENODATA', 'removexattr', { path });
      lremovexattr(this.copyUp.ensureUpper(n, 'removexattr', false), real);
    });
  }

  // ---- metadata changes ------------------------------------------------------------------------

  chmod(path: string, mode: number): Promise<void> {
    return this.run('chmod', path, () => {
      const n = this.existing(path, true, 'chmod');
      this.writable('chmod', path);
      this.ownerOnly(n, 'chmod');
      chmodSync(this.copyUp.ensureUpper(n, 'chmod', false), mode & 0o7777);
    });
  }

  chown(path: string, uid: number, gid: number): Promise<void> {
    return this.run('chown', path, () => this.doChown(path, uid, gid, true));
  }

  lchown(path: string, uid: number, gid: number): Promise<void> {
    return this.run('lchown', path, () => this.doChown(path, uid, gid, false));
  }

  private doChown(path: string, uid: number, gid: number, follow: boolean): void {
    const op = follow ? 'chown' : 'lchown';
    const n = this.existing(path, follow, op);
    this.writable(op, path);
    if (UNPRIVILEGED && (uid !== -1 && uid !== Number(n.st!.uid))) throw new OverlayError('EPERM', op, { path });
    if (UNPRIVILEGED && (uid !== -1 || gid !== -1)) this.ownerOnly(n, op);
    lchownSync(this.copyUp.ensureUpper(n, op, false), uid, gid);
  }

  /** utimensat with nanoseconds; `null` leaves that time unchanged. */
  utimes(path: string, atime: TimeLike | null, mtime: TimeLike | null): Promise<void> {
    return this.run('utime', path, () => this.doUtimes(path, atime, mtime, true));
  }

  lutimes(path: string, atime: TimeLike | null, mtime: TimeLike | null): Promise<void> {
    return this.run('lutime', path, () => this.doUtimes(path, atime, mtime, false));
  }

  private doUtimes(path: string, atime: TimeLike | null, mtime: TimeLike | null, follow: boolean): void {
    const n = this.existing(path, follow, 'utime');
    this.writable('utime', path);
    this.ownerOnly(n, 'utime');
    lutimesNs(this.copyUp.ensureUpper(n, 'utime', false), toTimespec(atime), toTimespec(mtime));
  }

  truncate(path: string, len = 0): Promise<void> {
    return this.run('truncate', path, () => {
      const n = this.existing(path, true, 'truncate');
      if (isDir(n)) throw new OverlayError('EISDIR', 'truncate', { path });
      if ((Number(n.st!.mode) & S_IFMT) !== S_IFREG) throw new OverlayError('EINVAL', 'truncate', { path });
      this.writable('truncate', path);
      this.permit(n, fsc.W_OK, 'truncate');
      truncateSync(this.copyUp.ensureUpper(n, 'truncate'), len);
    });
  }

  // ---- files -----------------------------------------------------------------------------------

  open(path: string, flags: string | number = 'r', mode = 0o666): Promise<OverlayFileHandle> {
    return this.run('open', path, () => this.doOpen(path, parseFlags(flags), mode));
  }

  private doOpen(path: string, flags: number, mode: number): OverlayFileHandle {
    const acc = flags & 3;
    const wantWrite = acc === fsc.O_WRONLY || acc === fsc.O_RDWR;
    const creat = (flags & fsc.O_CREAT) !== 0;
    const excl = creat && (flags & fsc.O_EXCL) !== 0;
    if (creat && hasTrailingSlash(path)) {
      // Kernel open_last_lookups: O_CREAT with a trailing slash is EISDIR once the parent resolves,
      // whatever the last name is (file, dir, symlink or nothing).
      this.lookup.resolve(stripSlashes(path), false, 'open');
      throw new OverlayError('EISDIR', 'open', { path });
    }
    let n = this.lookup.resolve(path, !excl && (flags & fsc.O_NOFOLLOW) === 0, 'open');
    let real: string;
    if (n.st === null) {
      if (!creat) throw new OverlayError('ENOENT', 'open', { path });
      this.writable('open', path);
      real = this.create(n, 'open', (dest) => closeSync(openSync(dest, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode)), false);
      n = this.existing(n.path, false, 'open');
    } else {
      if (excl) throw new OverlayError('EEXIST', 'open', { path });
      if (isSymlink(n)) throw new OverlayError('ELOOP', 'open', { path });
      if (isDir(n) && (wantWrite || creat)) throw new OverlayError('EISDIR', 'open', { path });
      if ((flags & fsc.O_DIRECTORY) !== 0 && !isDir(n)) throw new OverlayError('ENOTDIR', 'open', { path });
      const fmt = Number(n.st.mode) & S_IFMT;
      const needCopyUp = fmt === S_IFREG && (wantWrite || (flags & fsc.O_TRUNC) !== 0);
      if (wantWrite || (flags & fsc.O_TRUNC) !== 0) this.permit(n, fsc.W_OK, 'open');
      if (needCopyUp) {
        this.writable('open', path);
        real = this.copyUp.ensureUpper(n, 'open');
      } else {
        real = (n.data ?? n.hits[0]!).real;
      }
    }
    let realFlags = flags & ~(fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW);
    // A FIFO opens non-blocking: an async API must never park the whole event loop waiting for a
    // peer (a write-open with no reader fails with ENXIO, a read sees EOF).
    if (n.st !== null && (Number(n.st.mode) & S_IFMT) === S_IFIFO) realFlags |= fsc.O_NONBLOCK;
    const fd = openSync(real, realFlags);
    const h = new OverlayFileHandle(this, fd, real, n.path, {
      read: acc === fsc.O_RDONLY || acc === fsc.O_RDWR,
      write: wantWrite,
      append: (flags & fsc.O_APPEND) !== 0,
      isDir: isDir(n),
    });
    if (n.data !== null) h.metaReal = n.hits[0]!.real;
    if (isMerged(n)) h.mergedDir = true;
    if (!hasUpper(n) || n.data !== null) {
      const key = this.handleKey(real);
      let set = lowerHandles.get(key);
      if (!set) lowerHandles.set(key, (set = new Set()));
      set.add(h);
    }
    return h;
  }

  async writeFile(path: string, data: Uint8Array | string, opts: { flag?: string | number; mode?: number } = {}): Promise<void> {
    const h = await this.open(path, opts.flag ?? 'w', opts.mode ?? 0o666);
    try {
      await h.write(data);
    } finally {
      await h.close();
    }
  }

  /**
   * `fs.copyFile`: a regular file's data (and, for a new file, its mode) into `dest`, created or
   * truncated (`COPYFILE_EXCL`: must not exist). The data moves inside the kernel: a reflink where
   * the filesystem has them, else copy_file_range.
   */
  async copyFile(src: string, dest: string, mode = 0): Promise<void> {
    const from = await this.open(src, 'r');
    try {
      const st = await from.stat();
      if (st.isDirectory()) throw new OverlayError('EISDIR', 'copyfile', { path: src, dest });
      const to = await this.open(dest, (mode & fsc.COPYFILE_EXCL) !== 0 ? 'wx' : 'w', Number(st.mode) & 0o7777);
      try {
        if (!st.isFile() || !ficlone(to.fd, from.fd)) await from.copyTo(to.fd);
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  }

  appendFile(path: string, data: Uint8Array | string, opts: { mode?: number } = {}): Promise<void> {
    return this.writeFile(path, data, { flag: 'a', mode: opts.mode ?? 0o666 });
  }

  // ---- namespace changes -----------------------------------------------------------------------

  mkdir(path: string, opts: { mode?: number; recursive?: boolean } | number = {}): Promise<void> {
    const o = typeof opts === 'number' ? { mode: opts } : opts;
    const mode = o.mode ?? 0o777;
    return this.run('mkdir', path, () => {
      if (o.recursive === true) {
        // Component by component: resolving the whole path first would fail with ENOENT on a
        // missing parent, which is exactly what -p is for.
        const parts = path.split('/').filter((c) => c.length > 0);
        let cur = path.startsWith('/') ? '' : '.';
        for (const part of parts) {
          cur = `${cur}/${part}`;
          const c = this.lookup.resolve(cur, true, 'mkdir');
          if (c.st === null) {
            this.writable('mkdir', path);
            this.create(c, 'mkdir', (d) => mkdirSync(d, mode), true);
          } else if (!isDir(c)) {
            throw new OverlayError(cur.length >= path.replace(/\/+$/, '').length ? 'EEXIST' : 'ENOTDIR', 'mkdir', { path });
          }
        }
        return;
      }
      const n = this.forCreate(path, 'mkdir', true);
      this.create(n, 'mkdir', (d) => mkdirSync(d, mode), true);
    });
  }

  symlink(target: string, path: string): Promise<void> {
    return this.run('symlink', path, () => {
      const n = this.forCreate(path, 'symlink');
      this.create(n, 'symlink', (d) => symlinkSync(target, d), false);
    });
  }

  /** mknod(2) for FIFOs and devices: `mode` includes the type (S_IFIFO/S_IFCHR/S_IFBLK). */
  mknod(path: string, mode: number, devMajor = 0, devMinor = 0): Promise<void> {
    return this.run('mknod', path, () => {
      const fmt = mode & S_IFMT;
      if (fmt !== S_IFIFO && fmt !== S_IFCHR && fmt !== S_IFBLK && fmt !== S_IFREG && fmt !== 0) {
        throw new OverlayError('EINVAL', 'mknod', { path });
      }
      const n = this.forCreate(path, 'mknod');
      // Kernel ovl_create_object: a 0/0 char device is a whiteout and cannot be created by a caller.
      if (fmt === S_IFCHR && devMajor === 0 && devMinor === 0) throw new OverlayError('EPERM', 'mknod', { path, reason: 'whiteout-device' });
      this.create(n, 'mknod', (d) => mknod(d, fmt === 0 ? mode | S_IFREG : mode, devMajor, devMinor), false);
    });
  }

  mkfifo(path: string, mode = 0o666): Promise<void> {
    return this.mknod(path, S_IFIFO | (mode & 0o7777));
  }

  link(existingPath: string, newPath: string): Promise<void> {
    return this.run('link', existingPath, () => {
      const src = this.existing(existingPath, false, 'link');
      const dst = this.resolveLast(newPath, 'link');
      if (dst.st !== null) throw new OverlayError('EEXIST', 'link', { path: existingPath, dest: newPath });
      if (hasTrailingSlash(newPath)) throw new OverlayError('ENOENT', 'link', { path: existingPath, dest: newPath });
      this.writable('link', existingPath);
      if (isDir(src)) throw new OverlayError('EPERM', 'link', { path: existingPath, dest: newPath });
      const hadLower = hasLower(src);
      const srcUpper = this.copyUp.ensureUpper(src, 'link', false);
      if (src.data !== null && !(src.redirect ?? '').startsWith('/')) {
        // Kernel ovl_set_link_redirect: the new name must find the lower data from anywhere.
        lsetxattr(srcUpper, this.layers.x('redirect'), absoluteRedirect(src));
      }
      // Re-resolve: the copy-up may have created the new parent's upper dir.
      const d2 = this.resolveLast(newPath, 'link');
      this.create(d2, 'link', (d) => linkSync(srcUpper, d), false);
      if (hadLower || lgetxattr(srcUpper, this.layers.x('origin')) !== null) {
        lsetxattr(this.copyUp.upperPathOf(d2.parent!), this.layers.x('impure'), 'y');
      }
    });
  }

  unlink(path: string): Promise<void> {
    return this.run('unlink', path, () => {
      // Kernel do_unlinkat: '.', '..' or the root as the last name is EISDIR, before EROFS.
      if (lastKind(path) !== 'name') throw new OverlayError('EISDIR', 'unlink', { path });
      const n = this.resolveLast(path, 'unlink');
      this.writable('unlink', path);
      if (n.st === null) throw new OverlayError('ENOENT', 'unlink', { path });
      if (isDir(n)) throw new OverlayError('EISDIR', 'unlink', { path });
      if (hasTrailingSlash(path)) throw new OverlayError('ENOTDIR', 'unlink', { path });
      this.remove(n, false, 'unlink');
    });
  }

  rmdir(path: string): Promise<void> {
    return this.run('rmdir', path, () => {
      // Kernel do_rmdir: '..' is ENOTEMPTY, '.' EINVAL, the root EBUSY, before EROFS.
      const kind = lastKind(path);
      if (kind !== 'name') throw new OverlayError(kind === 'dotdot' ? 'ENOTEMPTY' : kind === 'dot' ? 'EINVAL' : 'EBUSY', 'rmdir', { path });
      const n = this.resolveLast(path, 'rmdir');
      if (n.parent === null) throw new OverlayError('EBUSY', 'rmdir', { path });
      this.writable('rmdir', path);
      if (n.st === null) throw new OverlayError('ENOENT', 'rmdir', { path });
      if (!isDir(n)) throw new OverlayError('ENOTDIR', 'rmdir', { path });
      if (!isEmptyDir(this.layers, n)) throw new OverlayError('ENOTEMPTY', 'rmdir', { path });
      this.remove(n, true, 'rmdir');
    });
  }

  /** `rm -r`/`rm -f` over the merged view (children first; a lower dir leaves one whiteout). */
  rm(path: string, opts: { recursive?: boolean; force?: boolean } = {}): Promise<void> {
    return this.run('rm', path, () => {
      let n: Node;
      try {
        n = this.lookup.resolve(path, false, 'rm');
      } catch (e) {
        // rm -f: a missing parent, or a non-dir on the way, is a missing file too (as rm(1)).
        const c = (e as { code?: string }).code;
        if (opts.force === true && (c === 'ENOENT' || c === 'ENOTDIR')) return;
        throw e;
      }
      if (n.st === null) {
        if (opts.force === true) return;
        throw new OverlayError('ENOENT', 'rm', { path });
      }
      this.writable('rm', path);
      if (hasTrailingSlash(path) && isSymlink(this.resolveLast(path, 'rm'))) {
        // `rm -r link/` (rm(1)): the slash reaches the directory behind the link, whose entries go,
        // but the name itself is a symlink, which rmdir refuses.
        if (opts.recursive !== true) throw new OverlayError('EISDIR', 'rm', { path, reason: 'is-a-directory' });
        this.rmChildren(n, path);
        throw new OverlayError('ENOTDIR', 'rm', { path });
      }
      this.rmNode(n, opts.recursive === true, path);
    });
  }

  private rmChildren(n: Node, path: string): void {
    for (const e of mergedEntries(this.layers, n, true)) {
      const c = this.lookup.resolve(`${n.path === '/' ? '' : n.path}/${e.name}`, false, 'rm');
      if (c.st !== null) this.rmNode(c, true, path);
    }
  }

  private rmNode(n: Node, recursive: boolean, path: string): void {
    if (!isDir(n)) return this.remove(n, false, 'rm');
    if (!recursive) throw new OverlayError('EISDIR', 'rm', { path, reason: 'is-a-directory' });
    this.rmChildren(n, path);
    const again = this.lookup.resolve(n.path, false, 'rm');
    if (again.parent === null) return;
    this.remove(again, true, 'rm');
  }

  rename(oldPath: string, newPath: string): Promise<void> {
    return this.run('rename', oldPath, () => this.doRename(oldPath, newPath));
  }

  private doRename(oldPath: string, newPath: string): void {
    const op = 'rename';
    const init = { path: oldPath, dest: newPath };
    // Kernel order: both parent paths first, then the old name (ENOENT), then the new one.
    const old = this.resolveLast(oldPath, op);
    let nw = this.resolveLast(newPath, op);
    if (lastKind(oldPath) !== 'name' || lastKind(newPath) !== 'name') throw new OverlayError('EBUSY', op, init);
    this.writable(op, oldPath);
    if (old.st === null) throw new OverlayError('ENOENT', op, init);
    if (old.parent === null || nw.parent === null) throw new OverlayError('EBUSY', op, init);
    const oldDir = isDir(old);
    // Kernel do_renameat2: a trailing slash on either name needs the source to be a dir.
    if (!oldDir && (hasTrailingSlash(oldPath) || hasTrailingSlash(newPath))) throw new OverlayError('ENOTDIR', op, init);
    if (nw.path.startsWith(old.path + '/')) throw new OverlayError('EINVAL', op, init);
    if (nw.st !== null && old.path.startsWith(nw.path + '/')) throw new OverlayError('ENOTEMPTY', op, init);
    if (nw.st !== null) {
      if (nw.path === old.path) return;
      if (nw.st.ino === old.st!.ino && nw.st.dev === old.st!.dev) return;
      if (oldDir && !isDir(nw)) throw new OverlayError('ENOTDIR', op, init);
      if (!oldDir && isDir(nw)) throw new OverlayError('EISDIR', op, init);
    }
    this.writable(op, oldPath);
    const oldMergeOrLower = oldDir && (isMerged(old) || !hasUpper(old));
    // metacopy: a regular file is (or becomes, by a metadata-only copy-up) a metacopy file, which
    // the kernel treats like a merged object and gives a redirect to its data.
    const oldMetacopy = !oldDir && this.layers.metacopy && (old.data !== null ||
      (!hasUpper(old) && (Number(old.st!.mode) & S_IFMT) === S_IFREG));
    if (oldMergeOrLower && !this.layers.redirectDir) throw new OverlayError('EXDEV', op, init);
    const overwriteDir = nw.st !== null && isDir(nw);
    if (overwriteDir && (isMerged(nw) || !hasUpper(nw)) && !isEmptyDir(this.layers, nw)) {
      throw new OverlayError('ENOTEMPTY', op, init);
    }
    const samedir = old.parent.path === nw.parent.path;
    const lowerPosOld = this.lowerPositive(old);
    const newIsWhiteout = nw.st === null && nw.upperWhiteout;
    const hadOrigin = hasLower(old);
    // Redirect value before copy-up changes the node (kernel ovl_get_redirect).
    let redirect: string | null = null;
    if (oldMergeOrLower || oldMetacopy) {
      const existing = old.redirect;
      if (!(existing !== null && (samedir || existing.startsWith('/')))) {
        redirect = samedir ? old.name : absoluteRedirect(old);
        if (Buffer.byteLength(redirect) > REDIRECT_MAX) throw new OverlayError('EXDEV', op, { ...init, reason: 'redirect-too-long' });
      }
    }
    this.permit(old.parent, fsc.W_OK | fsc.X_OK, op);
    this.permit(nw.parent, fsc.W_OK | fsc.X_OK, op);
    const oldOpaque = oldDir && this.layers.isOpaqueDir(old.hits[0]!.real);
    const oldUpper = this.copyUp.ensureUpper(old, op, false);
    if (oldMetacopy && redirect !== null) lsetxattr(oldUpper, this.layers.x('redirect'), redirect);
    const newParentUpper = this.copyUp.ensureUpper(nw.parent, op);
    // Re-resolve the target: copy-ups above may have changed what the parent's upper holds.
    nw = this.resolveLast(newPath, op);
    const dest = join(newParentUpper, nw.name);
    if (oldDir) {
      if (oldMergeOrLower) {
        if (redirect !== null) lsetxattr(oldUpper, this.layers.x('redirect'), redirect);
      } else if (!oldOpaque && isMerged(nw.parent!)) {
        lsetxattr(oldUpper, this.layers.x('opaque'), 'y');
      }
    }
    if (nw.st !== null && isDir(nw) && hasUpper(nw)) this.clearWhiteouts(nw.hits[0]!.real);
    if (lowerPosOld) {
      renameat2(oldUpper, dest, newIsWhiteout ? RENAME_EXCHANGE : RENAME_WHITEOUT);
    } else if (newIsWhiteout && oldDir) {
      renameat2(oldUpper, dest, RENAME_EXCHANGE);
      unlinkSync(oldUpper);
    } else {
      renameSync(oldUpper, dest);
    }
    if (!samedir && (hadOrigin || lgetxattr(dest, this.layers.x('origin')) !== null)) {
      lsetxattr(newParentUpper, this.layers.x('impure'), 'y');
    }
  }
}

function stripSlashes(path: string): string {
  return hasTrailingSlash(path) ? path.replace(/\/+$/, '') || '/' : path;
}

/** The kind of a path's last component, as the kernel's path walk names it (LAST_NORM/DOT/DOTDOT/ROOT). */
function lastKind(path: string): 'name' | 'dot' | 'dotdot' | 'root' {
  const last = path.split('/').filter((c) => c.length > 0).pop();
  if (last === undefined) return path === '' ? 'name' : 'root';
  return last === '.' ? 'dot' : last === '..' ? 'dotdot' : 'name';
}

function absoluteRedirect(n: Node): string {
  const parts: string[] = [];
  let d: Node | null = n;
  while (d !== null && d.parent !== null) {
    const name: string = d.redirect ?? d.name;
    parts.unshift(name);
    if (name.startsWith('/')) break;
    d = d.parent;
  }
  const s = parts.join('/');
  return s.startsWith('/') ? s : `/${s}`;
}

