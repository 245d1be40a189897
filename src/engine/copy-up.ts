/**
 * Copy-up, the kernel's sequence: parents first (dirs only: metadata and xattrs), then the object
 * as a temp in `<work>/work`: data (FICLONE, else copy_file_range per data extent so holes stay
 * holes; never through JS buffers),
 * fsync, user-visible xattrs (private `overlay.*` ones are skipped), `overlay.origin`, owner, mode,
 * times; then one rename into place, so an observer never sees a half copy. The parent gets
 * `overlay.impure=y` first and its timestamps are restored after the rename, as the kernel does.
 * The lower is only ever opened read-only (case B40).
 */
import {
  closeSync, fsyncSync, lchownSync, mkdirSync, openSync, readlinkSync, renameSync, symlinkSync,
  chmodSync, rmSync, truncateSync, constants as fsc, type BigIntStats,
} from 'node:fs';
import { join } from 'node:path';
import { OverlayError, fromNodeError } from '../errors.js';
import {
  ficlone, llistxattr, lgetxattr, lremovexattr, lsetxattr, lutimesNs, mknod, major, minor,
  timespecFromNs, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
} from '../sys/libc.js';
import { LayerStack, UPPER, lstatOrNull } from './layer-stack.js';
import { encodeOrigin } from './origin.js';
import { copySparse } from './sparse.js';
import { hasUpper, isDir, type Node } from './lookup.js';

let tempCounter = 0;

export type CopiedUpKind = 'data' | 'meta' | 'dir' | 'special';

export class CopyUp {
  /**
   * Called after the lower object at `lowerReal` got its upper copy at `upperReal`: `data` for a
   * regular file whose data is now in upper, `meta` for a metadata-only copy-up (data stays below),
   * `dir` for a directory, `special` for a FIFO or device.
   */
  onCopiedUp: (lowerReal: string, upperReal: string, kind: CopiedUpKind) => void = () => {};

  constructor(readonly layers: LayerStack) {}

  tempName(): string {
    const work = this.layers.workdir;
    if (work === undefined) throw new OverlayError('EROFS', 'copy-up');
    if (lstatOrNull(work) === null) mkdirSync(work, { recursive: true, mode: process.geteuid?.() === 0 ? 0 : 0o700 });
    tempCounter = (tempCounter + 1) >>> 0;
    return join(work, `#e${process.pid.toString(16)}.${tempCounter.toString(16)}`);
  }

  upperPathOf(n: Node): string {
    return n.path === '/' ? this.layers.root(UPPER) : join(this.layers.root(UPPER), n.path);
  }

  /**
   * Make sure `n` (positive) has an upper object; returns its upper path. `withData` false allows a
   * metadata-only copy-up of a regular file when metacopy is on (chmod, chown, utimes, xattrs,
   * link, rename); true (write-open, truncate) also brings the data of a metacopy file up.
   */
  ensureUpper(n: Node, op: string, withData = true): string {
    if (this.layers.readonly) throw new OverlayError('EROFS', op, { path: n.path });
    if (n.st === null) throw new OverlayError('ENOENT', op, { path: n.path });
    if (hasUpper(n)) {
      if (withData && n.data !== null) this.copyDataUp(n, op);
      return n.hits[0]!.real;
    }
    const parent = n.parent;
    if (parent === null) return this.layers.root(UPPER);
    const upperParent = this.ensureUpper(parent, op);
    const lower = n.hits[0]!;
    const dest = join(upperParent, n.name);
    // A stale node (another call copied this dir up meanwhile): the upper dir is already there.
    const have = isDir(n) ? lstatOrNull(dest) : null;
    if (have !== null && have.isDirectory()) {
      n.hits = [{ layer: UPPER, real: dest }, ...n.hits];
      n.st = have;
      return dest;
    }
    const meta = !withData && this.layers.metacopy && (Number(n.st.mode) & S_IFMT) === S_IFREG;
    const dataSrc = n.data ?? lower;
    this.copyOne(lower.real, lower.layer, n.st, upperParent, dest, isDir(n), op, n.path, meta);
    // The node now lives in upper; keep the in-memory view consistent for the caller.
    const st = lstatOrNull(dest);
    n.hits = [{ layer: UPPER, real: dest }, ...(isDir(n) ? n.hits : [])];
    n.st = st;
    n.data = meta ? dataSrc : null;
    return dest;
  }

  /** Second half of a metadata-only copy-up: the data, into the upper inode, then drop `metacopy`. */
  private copyDataUp(n: Node, op: string): void {
    const upper = n.hits[0]!.real;
    const src = n.data!.real;
    try {
      const size = Number(n.st!.size);
      if (size > 0) {
        this.copyData(src, upper, size, fsc.O_WRONLY | fsc.O_NOFOLLOW);
      }
      lremovexattr(upper, this.layers.x('metacopy'));
    } catch (e) {
      throw fromNodeError(e, op, { path: n.path, reason: 'copy-up-data-failed' });
    }
    n.data = null;
    n.st = lstatOrNull(upper);
    this.onCopiedUp(src, upper, 'data');
  }

  private copyOne(src: string, layer: number, st: BigIntStats, upperParent: string, dest: string, dir: boolean, op: string, path: string, meta: boolean): void {
    const pst = lstatOrNull(upperParent);
    lsetxattr(upperParent, this.layers.x('impure'), 'y');
    const tmp = this.tempName();
    const fmt = Number(st.mode) & S_IFMT;
    try {
      if (fmt === S_IFREG && meta) closeSync(openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600));
      else if (fmt === S_IFREG) this.copyData(src, tmp, Number(st.size));
      else if (fmt === S_IFDIR) mkdirSync(tmp, { mode: 0o700 }); // final mode is set below
      else if (fmt === S_IFLNK) symlinkSync(readlinkSync(src), tmp);
      else mknod(tmp, fmt, major(st.rdev), minor(st.rdev));
      this.copyXattrs(src, tmp);
      if (meta) {
        lsetxattr(tmp, this.layers.x('metacopy'), Buffer.alloc(0));
        truncateSync(tmp, Number(st.size));
      }
      if (dir || st.nlink === 1n) {
        const origin = encodeOrigin(src, this.layers.root(layer));
        // Like the kernel's ovl_check_setxattr: an fs/object refusing the xattr just gets no origin
        // (user.* xattrs are refused on symlinks and devices in userxattr mode).
        if (origin !== null) setIgnoringRefusal(tmp, this.layers.x('origin'), origin);
      }
      lchownSync(tmp, Number(st.uid), Number(st.gid));
      if (fmt !== S_IFLNK) chmodSync(tmp, Number(st.mode) & 0o7777);
      lutimesNs(tmp, timespecFromNs(st.atimeNs), timespecFromNs(st.mtimeNs));
      renameSync(tmp, dest);
    } catch (e) {
      removeQuietly(tmp);
      throw fromNodeError(e, op, { path, reason: 'copy-up-failed' });
    }
    if (pst !== null) lutimesNs(upperParent, timespecFromNs(pst.atimeNs), timespecFromNs(pst.mtimeNs));
    this.onCopiedUp(src, dest, dir ? 'dir' : meta ? 'meta' : fmt === S_IFREG ? 'data' : 'special');
  }

  /** Data of `src` into `dest` (opened with `flags`): reflink, else a sparse-aware copy. */
  private copyData(src: string, dest: string, size: number, flags = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL): void {
    const inFd = openSync(src, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      const outFd = openSync(dest, flags, 0o600);
      try {
        if (!ficlone(outFd, inFd)) copySparse(inFd, outFd, size);
        if (this.layers.fsync) fsyncSync(outFd);
      } finally {
        closeSync(outFd);
      }
    } finally {
      closeSync(inFd);
    }
  }

  /** Copy the xattrs a user can see, escaped ones included (private overlay ones stay behind). */
  copyXattrs(src: string, dst: string): void {
    for (const name of llistxattr(src)) {
      if (this.layers.isOverlayMetadata(name)) continue;
      const v = lgetxattr(src, name);
      if (v !== null) lsetxattr(dst, name, v);
    }
  }
}

function setIgnoringRefusal(path: string, name: string, value: Buffer): void {
  try {
    lsetxattr(path, name, value);
  } catch (e) {
    const c = (e as { code?: string }).code;
    if (c !== 'EPERM' && c !== 'EOPNOTSUPP' && c !== 'ENOTSUP') throw e;
  }
}

export function removeQuietly(p: string): void {
  try {
    const st = lstatOrNull(p);
    if (st === null) return;
    // rmSync handles dirs and files alike; it is only used on our own temps.
    rmTree(p);
  } catch (e) {
    void e; // best effort cleanup of a temp in the workdir; the kernel clears work/ at mount
  }
}

function rmTree(p: string): void {
  rmSync(p, { recursive: true, force: true });
}
