/**
 * The layer extractor (hot path): an uncompressed layer tar → a layer `diff` dir, synchronously, meant
 * to run on a worker thread. Design from the extraction-speed probe: bytes come from TarEntryStream
 * (positional reads, writes straight from its window), O_EXCL creates in a fresh dir, chown/chmod
 * only when the header needs them, directory metadata once at the end (B27).
 * Confinement needs no extra syscalls: a map of what this extractor created (dir / symlink / other)
 * answers "is this parent a real directory?"; paths it did not create are lstat'ed (non-empty dest).
 * Docker's native ApplyDiff semantics (overlay whiteout conversion) apply; see applyEntry for details.
 * Names are byte strings (tar-reader's byteName): paths are built from their bytes, so a name that is
 * not UTF-8, or holds a newline, is created exactly as the tar has it (B19).
 */
import {
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  chmodSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { OverlayError, fromNodeError, hasCode } from '../errors.js';
import { S_IFBLK, S_IFCHR, S_IFIFO, fsetxattr, futimesNs, lsetxattr, lutimesNs, mknod, pathText, timespecFromNs, type CPath } from '../sys/libc.js';
import { baseOf, cleanEntryPath, isWithin, parentOf } from './entry-path.js';
import { TarSplitRecorder } from './tar-split.js';
import { TarEntryStream, type TarEntry } from './tar-reader-stream.js';
import { nameBytes, nameText } from './tar-reader.js';

export interface ExtractParams {
  /** Uncompressed tar. */
  tarFile: string;
  destDir: string;
  /** Name of the input in errors. */
  label: string;
  userxattr: boolean;
  tarSplitPath?: string | undefined;
  /** The process umask (process.umask() cannot be read inside a worker). */
  umask: number;
}

export interface ExtractResult {
  diffId: string;
  tarSize: number;
  size: number;
  entries: number;
}

/**
 * Largest time Docker will set: Go's time.Unix(0, 1<<63-1) (year 2262). Docker's Chtimes sets the
 * epoch instead of any time before 1970 or after this; we do the same (see clampTime).
 */
const MAX_NS = (1n << 63n) - 1n;

/** Entry types after normalisation ('\0' and '7' read as '0'). */
const KNOWN_TYPES = new Set(['0', '1', '2', '3', '4', '5', '6']);

const DIR = 1;
const SYMLINK = 2;
const OTHER = 3;
type Kind = typeof DIR | typeof SYMLINK | typeof OTHER;

interface Inode {
  size: number;
  links: number;
  uid: number;
  gid: number;
  mode: number;
  mtimeNs: bigint;
  atimeNs: bigint;
  symlink: boolean;
}

interface PendingDir {
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  atimeNs: bigint;
  /** Created by us with mode 0755 & ~umask (so chmod may be skippable). */
  created: boolean;
}

/**
 * Docker (pkg/system.Chtimes) replaces a time before the Unix epoch, or after year 2262, with the
 * epoch itself. We follow Docker, podman and containerd here (umoci keeps negative times): a layer
 * made from a 1969 file yields mtime 0 on disk, exactly as in Docker's own diff dirs.
 */
export function clampTime(ns: bigint): bigint {
  return ns < 0n || ns > MAX_NS ? 0n : ns;
}

class Extractor {
  private readonly rec: TarSplitRecorder | undefined;
  /** The tar being read (set by run). */
  private tar!: TarEntryStream;
  private readonly kinds = new Map<string, Kind>();
  private readonly inodes = new Map<string, Inode>();
  private readonly pending = new Map<string, PendingDir>();
  /** parent → the child paths recorded in `kinds` (for removing a subtree without a full scan). */
  private readonly children = new Map<string, Set<string>>();
  /** Whiteout devices and opaque dirs this layer created (see dropShadowedWhiteouts). */
  private readonly whiteouts = new Set<string>();
  private readonly opaques = new Set<string>();
  private size = 0;
  private entries = 0;
  private fresh = true;
  private alwaysChown = false;
  private readonly euid: number;
  private readonly egid: number;
  private lastDir = '';
  private readonly opaqueName: string;
  private destBytes: Buffer | undefined;

  constructor(private readonly p: ExtractParams) {
    this.rec = p.tarSplitPath !== undefined ? new TarSplitRecorder() : undefined;
    this.euid = process.geteuid?.() ?? 0;
    this.egid = process.getegid?.() ?? 0;
    this.opaqueName = p.userxattr ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
  }

  // ---- errors ---------------------------------------------------------------------------------

  private refuse(entry: string, reason: string, detail: string, code = 'EINVAL'): never {
    throw new OverlayError(code, 'applyLayer', { path: nameText(entry), dest: this.p.destDir, layer: this.p.label, reason, detail });
  }

  // ---- main loop --------------------------------------------------------------------------------

  run(): ExtractResult {
    const dest = this.p.destDir;
    try {
      this.fresh = readdirSync(dest).length === 0;
      this.alwaysChown = !this.fresh || (statSync(dest).mode & 0o2000) !== 0;
    } catch (e) {
      throw fromNodeError(e, 'applyLayer', { path: dest });
    }
    let fd: number;
    try {
      fd = openSync(this.p.tarFile, fsc.O_RDONLY);
    } catch (e) {
      throw fromNodeError(e, 'applyLayer', { path: this.p.tarFile });
    }
    const tar = new TarEntryStream(fd, this.p.label, dest, this.rec);
    this.tar = tar;
    try {
      this.readEntries();
      tar.drain();
    } finally {
      closeSync(fd);
    }
    this.dropShadowedWhiteouts();
    this.finishDirs();
    if (this.rec && this.p.tarSplitPath !== undefined) {
      try {
        this.rec.write(this.p.tarSplitPath);
      } catch (e) {
        throw fromNodeError(e, 'applyLayer', { path: this.p.tarSplitPath });
      }
    }
    return { diffId: tar.digest(), tarSize: tar.bytesRead, size: this.size, entries: this.entries };
  }

  private readEntries(): void {
    for (let e = this.tar.next(); e !== null; e = this.tar.next()) {
      this.entries++;
      this.applyEntry(e);
    }
  }

  // ---- paths ----------------------------------------------------------------------------------

  /** The path of `rel` under the dest: a string for ASCII names (the common case), else its bytes. */
  private abs(rel: string): CPath {
    if (rel === '') return this.p.destDir;
    // eslint-disable-next-line no-control-regex
    if (/^[\x00-\x7f]*$/.test(rel)) return join(this.p.destDir, rel);
    this.destBytes ??= Buffer.from(join(this.p.destDir, '/'));
    return Buffer.concat([this.destBytes, nameBytes(rel)]);
  }

  /** What is at `rel`: from our map, or (only when the dest was not empty) from lstat. */
  private kindOf(rel: string): Kind | undefined {
    const k = this.kinds.get(rel);
    if (k !== undefined || this.fresh) return k;
    try {
      const st = lstatSync(this.abs(rel));
      const kind = st.isDirectory() ? DIR : st.isSymbolicLink() ? SYMLINK : OTHER;
      this.mark(rel, kind);
      return kind;
    } catch (e) {
      if (hasCode(e, 'ENOENT')) return undefined;
      throw e;
    }
  }

  /**
   * Make sure directory `rel` exists as a real directory (never through a symlink), creating implied
   * parents with mode 0755 (Docker's ImpliedDirectoryMode), owner = us, times untouched.
   */
  private ensureDir(rel: string, entry: string): void {
    if (rel === '' || rel === this.lastDir) return;
    const k = this.kindOf(rel);
    if (k === DIR) {
      this.lastDir = rel;
      return;
    }
    if (k === SYMLINK) this.refuse(entry, 'tar-entry-through-symlink', `parent ${JSON.stringify(nameText(rel))} is a symlink`);
    if (k === OTHER) this.refuse(entry, 'tar-entry-parent-not-dir', `parent ${JSON.stringify(nameText(rel))} is not a directory`, 'ENOTDIR');
    this.ensureDir(parentOf(rel), entry);
    const abs = this.abs(rel);
    mkdirSync(abs, 0o755);
    if ((0o755 & this.p.umask) !== 0) chmodSync(abs, 0o755);
    this.mark(rel, DIR);
    this.lastDir = rel;
  }

  /** Every proper ancestor of `rel` is a directory we can trust (for hard-link targets). */
  private checkAncestors(rel: string, entry: string): void {
    let i = rel.indexOf('/');
    while (i >= 0) {
      const dir = rel.slice(0, i);
      const k = this.kindOf(dir);
      if (k === SYMLINK) this.refuse(entry, 'tar-entry-link-through-symlink', `hard link target ${JSON.stringify(nameText(rel))} lies under the symlink ${JSON.stringify(nameText(dir))}`);
      if (k !== DIR) this.refuse(entry, 'hardlink-target-missing', `hard link target ${JSON.stringify(nameText(rel))} does not exist in this layer`, 'ENOENT');
      i = rel.indexOf('/', i + 1);
    }
  }

  /** Remove what is at `rel` (kind `k`): the subtree for a dir; keeps our maps and counters right. */
  private remove(rel: string, k: Kind): void {
    const abs = this.abs(rel);
    const read = (p: string): Buffer => readFileSync(this.abs(p));
    if (k === DIR) {
      for (const p of this.subtreeOf(rel)) {
        this.rec?.detach(p, read);
        this.forget(p);
      }
      rmSync(abs, { recursive: true, force: true });
      if (isWithin(this.lastDir, rel)) this.lastDir = '';
    } else {
      this.rec?.detach(rel, read);
      this.forget(rel);
      unlinkSync(abs);
    }
  }

  /** Record what we created (or found) at `rel`, indexed under its parent for subtree removal. */
  private mark(rel: string, kind: Kind): void {
    if (!this.kinds.has(rel)) {
      const parent = parentOf(rel);
      let set = this.children.get(parent);
      if (!set) this.children.set(parent, (set = new Set()));
      set.add(rel);
    }
    this.kinds.set(rel, kind);
  }

  /** `rel` and everything we know below it, found through the children index (no full scan). */
  private subtreeOf(rel: string): string[] {
    const out: string[] = [];
    const stack = [rel];
    while (stack.length > 0) {
      const p = stack.pop() as string;
      out.push(p);
      const kids = this.children.get(p);
      if (kids) for (const c of kids) stack.push(c);
    }
    return out;
  }

  private forget(rel: string): void {
    this.kinds.delete(rel);
    this.children.get(parentOf(rel))?.delete(rel);
    this.children.delete(rel);
    this.whiteouts.delete(rel);
    this.pending.delete(rel);
    this.opaques.delete(rel);
    const ino = this.inodes.get(rel);
    if (ino) {
      this.inodes.delete(rel);
      if (--ino.links === 0) this.size -= ino.size;
    }
  }

  // ---- entries ----------------------------------------------------------------------------------

  private applyEntry(e: TarEntry): void {
    if (e.name === '') this.refuse(e.name, 'tar-entry-empty-name', 'an entry has an empty name');
    const rel = cleanEntryPath(e.name);
    if (rel === null) this.refuse(e.name, 'tar-entry-escapes-root', `invalid entry name ${JSON.stringify(nameText(e.name))}: breakout`);
    for (const [k] of e.xattrs) {
      if (k.startsWith('trusted.overlay.') || k.startsWith('user.overlay.')) {
        this.refuse(e.name, 'tar-entry-overlay-xattr', `entry carries the overlay-private xattr ${k}`);
      }
    }
    try {
      this.place(e, rel);
    } catch (err) {
      if (err instanceof OverlayError) throw err;
      throw fromNodeError(err, 'applyLayer', { path: pathText(this.abs(rel)), layer: this.p.label });
    }
    this.tar.endEntry(e.size);
  }

  /** Create entry `e` at clean path `rel` (its content is consumed here; padding by the caller). */
  private place(e: TarEntry, rel: string): void {
    if (!KNOWN_TYPES.has(e.type)) {
      this.tar.bad('tar-entry-unsupported-type', `entry ${JSON.stringify(nameText(e.name))} has unsupported type ${JSON.stringify(e.type)}`, 'EINVAL', e.offset);
    }
    if (rel === '') {
      // The layer root: Docker skips a "." directory entry; its metadata never reaches the diff dir.
      if (e.type !== '5') this.refuse(e.name, 'tar-entry-replaces-root', 'a non-directory entry names the layer root');
      this.tar.copyContent(-1, e.size);
      return;
    }
    const base = baseOf(rel);
    if (base.startsWith('.wh.')) {
      this.whiteout(e, rel, base);
      this.tar.copyContent(-1, e.size);
      return;
    }
    this.ensureDir(parentOf(rel), e.name);
    const existing = this.kindOf(rel);
    if (existing !== undefined) {
      if (existing === DIR && e.type === '5') {
        this.mergeDir(e, rel);
        return;
      }
      this.remove(rel, existing);
    }
    switch (e.type) {
      case '0':
        this.regular(e, rel);
        break;
      case '5':
        this.directory(e, rel);
        break;
      case '2':
        this.symlink(e, rel);
        break;
      case '1':
        this.hardlink(e, rel);
        break;
      default: // '3', '4', '6'
        this.special(e, rel);
    }
  }

  /** `.wh..wh..opq` → opaque xattr on the parent; `.wh.<name>` → 0/0 char device `<name>`. */
  private whiteout(e: TarEntry, rel: string, base: string): void {
    if (base === '.wh.' || base === '.wh..' || base === '.wh...') {
      this.refuse(e.name, 'tar-invalid-whiteout', `invalid whiteout entry ${JSON.stringify(nameText(e.name))}`);
    }
    const parent = parentOf(rel);
    this.ensureDir(parent, e.name);
    if (base === '.wh..wh..opq') {
      lsetxattr(this.abs(parent), this.opaqueName, 'y');
      this.opaques.add(parent);
      return;
    }
    const target = parent === '' ? base.slice(4) : `${parent}/${base.slice(4)}`;
    if (this.kindOf(target) !== undefined) {
      this.refuse(e.name, 'whiteout-over-existing-entry', `failed to mknod('${target}', S_IFCHR, 0): file exists`, 'EEXIST');
    }
    const abs = this.abs(target);
    mknod(abs, S_IFCHR, 0, 0);
    if (e.uid !== 0 || e.gid !== 0) lchownSync(abs, e.uid, e.gid);
    this.mark(target, OTHER);
    this.whiteouts.add(target);
  }

  /**
   * A whiteout below a directory that this same layer made opaque hides nothing (the opaque dir
   * already hides every lower entry), and the kernel lists such a device in readdir of the merged
   * dir, because a dir that is opaque in the top layer is not merged and not filtered (B01 variant,
   * B39-C). So those devices are removed once the whole layer is known (the marker may come last).
   * Docker keeps them; its own diffs never contain them because the kernel drops them on commit.
   */
  private dropShadowedWhiteouts(): void {
    if (this.opaques.size === 0 || this.whiteouts.size === 0) return;
    for (const w of this.whiteouts) {
      for (let dir = parentOf(w); ; dir = parentOf(dir)) {
        // The layer root is never opaque to the kernel (a layer's root is not looked up), so a
        // whiteout under a root `.wh..wh..opq` still has work to do and is kept.
        if (dir !== '' && this.opaques.has(dir) && this.kinds.get(dir) === DIR) {
          try {
            unlinkSync(this.abs(w));
          } catch (e) {
            throw fromNodeError(e, 'applyLayer', { path: pathText(this.abs(w)), layer: this.p.label });
          }
          this.forget(w);
          break;
        }
        if (dir === '') break;
      }
    }
  }

  private needChown(uid: number, gid: number): boolean {
    return this.alwaysChown || uid !== this.euid || gid !== this.egid;
  }

  private needChmod(mode: number): boolean {
    return (mode & 0o7000) !== 0 || (mode & this.p.umask) !== 0;
  }

  private regular(e: TarEntry, rel: string): void {
    const abs = this.abs(rel);
    const fd = openSync(abs, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, e.mode & 0o777);
    try {
      if (e.size > 0) this.rec?.file(rel, e.size);
      this.tar.copyContent(fd, e.size);
      if (this.needChown(e.uid, e.gid)) fchownSync(fd, e.uid, e.gid);
      for (const [k, v] of e.xattrs) this.setXattr(() => fsetxattr(fd, k, v, 0, abs));
      // chmod after chown: chown clears setuid/setgid (B26).
      if (this.needChmod(e.mode)) fchmodSync(fd, e.mode);
      const m = clampTime(e.mtimeNs);
      const a = maxNs(clampTime(e.atimeNs), m);
      futimesNs(fd, timespecFromNs(a), timespecFromNs(m), abs);
    } finally {
      closeSync(fd);
    }
    this.mark(rel, OTHER);
    this.addInode(rel, e, e.size, false);
  }

  private addInode(rel: string, e: TarEntry, size: number, symlink: boolean): void {
    const m = clampTime(e.mtimeNs);
    this.inodes.set(rel, { size, links: 1, uid: e.uid, gid: e.gid, mode: e.mode, mtimeNs: m, atimeNs: maxNs(clampTime(e.atimeNs), m), symlink });
    this.size += size;
  }

  private directory(e: TarEntry, rel: string): void {
    const abs = this.abs(rel);
    mkdirSync(abs, 0o755);
    this.mark(rel, DIR);
    this.pending.set(rel, this.dirMeta(e, true));
    for (const [k, v] of e.xattrs) this.setXattr(() => lsetxattr(abs, k, v));
  }

  private mergeDir(e: TarEntry, rel: string): void {
    const prev = this.pending.get(rel);
    this.pending.set(rel, this.dirMeta(e, prev?.created ?? false));
    const abs = this.abs(rel);
    for (const [k, v] of e.xattrs) this.setXattr(() => lsetxattr(abs, k, v));
  }

  private dirMeta(e: TarEntry, created: boolean): PendingDir {
    const m = clampTime(e.mtimeNs);
    return { mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: m, atimeNs: maxNs(clampTime(e.atimeNs), m), created };
  }

  private symlink(e: TarEntry, rel: string): void {
    const abs = this.abs(rel);
    symlinkSync(nameBytes(e.linkname), abs);
    if (this.needChown(e.uid, e.gid)) lchownSync(abs, e.uid, e.gid);
    for (const [k, v] of e.xattrs) this.setXattr(() => lsetxattr(abs, k, v));
    const m = clampTime(e.mtimeNs);
    lutimesNs(abs, timespecFromNs(maxNs(clampTime(e.atimeNs), m)), timespecFromNs(m));
    this.mark(rel, SYMLINK);
    this.addInode(rel, e, e.linkname.length, true);
  }

  private hardlink(e: TarEntry, rel: string): void {
    const target = cleanEntryPath(e.linkname);
    if (target === null || target === '') {
      this.refuse(e.name, 'tar-entry-link-escapes-root', `invalid hard link target ${JSON.stringify(nameText(e.linkname))}: breakout`);
    }
    this.checkAncestors(target, e.name);
    const tk = this.kindOf(target);
    if (tk === undefined) this.refuse(e.name, 'hardlink-target-missing', `hard link target ${JSON.stringify(nameText(e.linkname))} does not exist in this layer`, 'ENOENT');
    if (tk === DIR) this.refuse(e.name, 'tar-entry-link-to-dir', `hard link target ${JSON.stringify(nameText(e.linkname))} is a directory`, 'EPERM');
    const abs = this.abs(rel);
    linkSync(this.abs(target), abs);
    this.mark(rel, tk);
    let ino = this.inodes.get(target);
    if (ino) {
      ino.links++;
    } else {
      // A target we did not create (non-empty dest): count it like Docker's walk would, once.
      const st = lstatSync(abs);
      const m = BigInt(st.mtimeMs) * 1_000_000n;
      ino = { size: st.size, links: 2, uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtimeNs: m, atimeNs: m, symlink: st.isSymbolicLink() };
      this.inodes.set(target, ino);
      this.size += st.size;
    }
    this.inodes.set(rel, ino);
    // Docker applies the link header's owner, xattrs, mode and times to the (shared) inode; they
    // normally equal the first name's, so only differences cost a syscall.
    if (ino.uid !== e.uid || ino.gid !== e.gid) {
      lchownSync(abs, e.uid, e.gid);
      ino.uid = e.uid;
      ino.gid = e.gid;
      if (!ino.symlink) chmodSync(abs, ino.mode);
    }
    for (const [k, v] of e.xattrs) this.setXattr(() => lsetxattr(abs, k, v));
    if (ino.symlink) return;
    if (ino.mode !== e.mode) {
      chmodSync(abs, e.mode);
      ino.mode = e.mode;
    }
    const m = clampTime(e.mtimeNs);
    const a = maxNs(clampTime(e.atimeNs), m);
    if (ino.mtimeNs !== m || ino.atimeNs !== a) {
      lutimesNs(abs, timespecFromNs(a), timespecFromNs(m));
      ino.mtimeNs = m;
      ino.atimeNs = a;
    }
  }

  private special(e: TarEntry, rel: string): void {
    const abs = this.abs(rel);
    const ifmt = e.type === '3' ? S_IFCHR : e.type === '4' ? S_IFBLK : S_IFIFO;
    try {
      mknod(abs, ifmt | (e.mode & 0o777), e.devmajor, e.devminor);
    } catch (err) {
      // Unprivileged or in a user namespace, devices cannot be created: Docker skips them (B31).
      if (hasCode(err, 'EPERM') && (this.euid !== 0 || inUserNamespace())) return;
      throw err;
    }
    if (this.needChown(e.uid, e.gid)) lchownSync(abs, e.uid, e.gid);
    for (const [k, v] of e.xattrs) this.setXattr(() => lsetxattr(abs, k, v));
    if (this.needChmod(e.mode)) chmodSync(abs, e.mode);
    const m = clampTime(e.mtimeNs);
    lutimesNs(abs, timespecFromNs(maxNs(clampTime(e.atimeNs), m)), timespecFromNs(m));
    this.mark(rel, OTHER);
    this.addInode(rel, e, 0, false);
  }

  /** Header xattrs: EPERM is tolerated (Docker warns and goes on), anything else fails the layer. */
  private setXattr(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (hasCode(err, 'EPERM')) return;
      throw err;
    }
  }

  /** Directory owner, mode and times, once all children exist (deepest first; B27). */
  private finishDirs(): void {
    const dirs = [...this.pending.entries()];
    dirs.sort((a, b) => depth(b[0]) - depth(a[0]));
    const createdMode = 0o755 & ~this.p.umask;
    for (const [rel, d] of dirs) {
      const abs = this.abs(rel);
      try {
        if (this.needChown(d.uid, d.gid)) lchownSync(abs, d.uid, d.gid);
        if (!d.created || d.mode !== createdMode || this.needChown(d.uid, d.gid)) chmodSync(abs, d.mode);
        lutimesNs(abs, timespecFromNs(d.atimeNs), timespecFromNs(d.mtimeNs));
      } catch (err) {
        if (err instanceof OverlayError) throw err;
        throw fromNodeError(err, 'applyLayer', { path: pathText(abs), layer: this.p.label });
      }
    }
  }
}

let userns: boolean | undefined;
/** Running in a user namespace: the uid map is not the initial namespace's identity map. */
function inUserNamespace(): boolean {
  if (userns !== undefined) return userns;
  try {
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    userns = !(map.length === 3 && map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
  } catch (e) {
    if (!hasCode(e, 'ENOENT', 'EACCES')) throw e;
    userns = false;
  }
  return userns;
}

function depth(rel: string): number {
  let n = 0;
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 47) n++;
  return n;
}

function maxNs(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** Extract `p.tarFile` (uncompressed) into `p.destDir`; synchronous. */
export function extractLayerSync(p: ExtractParams): ExtractResult {
  return new Extractor(p).run();
}
