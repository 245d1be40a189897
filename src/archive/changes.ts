/**
 * `docker diff` change lists. `changesDirs` ports Docker's naive ChangesDirs (two full trees, e.g.
 * two mounted views). `overlayChanges` computes the same list from an upper dir plus its lowers
 * without mounting: a name the upper does not hold resolves to the same lower object in both views,
 * so only the upper is walked; lower lookups honour whiteouts, opaque dirs and non-dir shadowing
 * the way the kernel does (lowers may themselves hold whiteouts and opaque markers). Both return
 * absolute paths sorted by path bytes. Names are bytes (B19): inside this module every path is a
 * byte string (one code unit per byte, see fsPath), and a change whose path is not UTF-8 carries
 * `pathBytes`. Besides Docker's stat
 * comparison, symlink targets and (where stats cannot tell) file bytes are compared (B28).
 */
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { OverlayError, fromNodeError, isNotFound } from '../errors.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../sys/libc.js';
import type { Change, DiffLayerOptions } from './types.js';
import { isOpaqueDir, isWhiteoutStat, listXattrs, overlayXattrPrefix, readXattr } from './whiteout.js';
import { isDirStat } from './walk.js';
import { changesSize as sizeOfChanges, directorySize as sizeOfDirectory } from './size.js';

const CAP = 'security.capability';
const NS = 1_000_000_000n;

/** A text path (as callers give roots) → the byte string this module works with. */
function byteString(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** A byte-string path → the bytes the kernel gets. */
function fsPath(p: string): Buffer {
  return Buffer.from(p, 'latin1');
}

/** A byte-string path → readable text (for messages and Change.path). */
function pathText(p: string): string {
  return fsPath(p).toString('utf8');
}

/** Byte-string changes → public ones, sorted by path bytes (code-unit order of byte strings). */
function publicChanges(out: Change[]): Change[] {
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out.map(({ path, kind }) => {
    const bytes = fsPath(path);
    const text = bytes.toString('utf8');
    return Buffer.from(text, 'utf8').equals(bytes) ? { path: text, kind } : { path: text, kind, pathBytes: bytes };
  });
}

function lstatOrNull(p: string): BigIntStats | null {
  try {
    return lstatSync(fsPath(p), { bigint: true });
  } catch (e) {
    if (isNotFound(e) || (e as { code?: string }).code === 'ENOTDIR') return null;
    throw fromNodeError(e, 'lstat', { path: pathText(p) });
  }
}

function names(dir: string): string[] {
  try {
    return readdirSync(fsPath(dir), { encoding: 'latin1' });
  } catch (e) {
    if (isNotFound(e)) return [];
    throw fromNodeError(e, 'readdir', { path: pathText(dir) });
  }
}

function splitTime(ns: bigint): [bigint, bigint] {
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) {
    nsec += NS;
    sec -= 1n;
  }
  return [sec, nsec];
}

/**
 * Docker's statDifferent. Note the bit test: anything with the S_IFDIR bit set (dirs, but also block
 * devices and sockets) is compared without size and mtime. Same-second times where one side has
 * 0 ns count as equal (a copy through a format without ns must not look changed).
 */
export function statDifferent(o: BigIntStats, n: BigIntStats): boolean {
  if (o.mode !== n.mode || o.uid !== n.uid || o.gid !== n.gid || o.rdev !== n.rdev) return true;
  if ((Number(o.mode) & S_IFDIR) !== S_IFDIR) {
    const [os, on] = splitTime(o.mtimeNs);
    const [ns, nn] = splitTime(n.mtimeNs);
    const sameTime = os === ns && (on === nn || on === 0n || nn === 0n);
    if (!sameTime || o.size !== n.size) return true;
  }
  return false;
}

/**
 * Equal stats are not proof of an unchanged object (B28): a symlink retargeted to a target of the
 * same length keeps its size and can keep its mtime, and a same-second mtime with one side at 0 ns
 * (equal for statDifferent) hides a rewrite within that second. So a symlink's target is always
 * compared, and a regular file's bytes when the times are equal only up to that truncation — or
 * always (`thorough`) when the new object is an upper-dir entry, which exists because something
 * wrote to it or changed it. Call only when statDifferent() is false.
 */
function sameContent(o: { abs: string; st: BigIntStats }, n: { abs: string; st: BigIntStats }, thorough: boolean): boolean {
  const fmt = Number(n.st.mode) & S_IFMT;
  try {
    if (fmt === S_IFLNK) return readlinkSync(fsPath(o.abs), { encoding: 'buffer' }).equals(readlinkSync(fsPath(n.abs), { encoding: 'buffer' }));
    if (fmt !== S_IFREG || (!thorough && o.st.mtimeNs === n.st.mtimeNs)) return true;
    return sameBytes(fsPath(o.abs), fsPath(n.abs));
  } catch (e) {
    if (isNotFound(e)) return false; // gone while we looked: not the same object
    throw fromNodeError(e, 'changes', { path: pathText(n.abs) });
  }
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  const fa = openSync(a, 'r');
  try {
    const fb = openSync(b, 'r');
    try {
      const ba = Buffer.allocUnsafe(1 << 16);
      const bb = Buffer.allocUnsafe(1 << 16);
      for (;;) {
        const na = readSync(fa, ba, 0, ba.length, null);
        let nb = 0;
        while (nb < na) {
          const r = readSync(fb, bb, nb, na - nb, null);
          if (r === 0) break;
          nb += r;
        }
        if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
        if (na === 0) return readSync(fb, bb, 0, 1, null) === 0;
      }
    } finally {
      closeSync(fb);
    }
  } finally {
    closeSync(fa);
  }
}

function capability(p: string): Buffer | null {
  // List first: a failed lgetxattr (ENODATA) is far costlier than an empty llistxattr.
  const b = fsPath(p);
  return listXattrs(b).includes(CAP) ? readXattr(b, CAP) : null;
}

function sameCapability(a: string, b: string): boolean {
  const x = capability(a);
  const y = capability(b);
  if (x === null || y === null) return x === y;
  return x.equals(y);
}

// ---- naive ChangesDirs over two full trees ----------------------------------------------------

interface Node {
  path: string;
  abs: string;
  st: BigIntStats;
  children: Map<string, Node>;
  added: boolean;
}

async function collect(oldAbs: string | null, newAbs: string, o: Node | null, n: Node | null): Promise<void> {
  const oDir = o !== null && isDirStat(o.st);
  const nDir = n !== null && isDirStat(n.st);
  if (!oDir && !nDir) return;
  const sameDevice = o !== null && n !== null && o.abs !== '' && o.st.dev === n.st.dev;
  const oldNames = oDir && oldAbs !== null ? names(oldAbs) : [];
  const all = new Set<string>([...oldNames, ...(nDir ? names(newAbs) : [])]);
  for (const name of all) {
    const oAbs = oldAbs === null ? null : join(oldAbs, name);
    const oc = oDir && oAbs !== null ? lstatOrNull(oAbs) : null;
    const nc = nDir ? lstatOrNull(join(newAbs, name)) : null;
    // Docker prunes a name that is the very same inode on the same device in both trees.
    if (oc !== null && nc !== null && sameDevice && oc.ino === nc.ino && oc.dev === nc.dev) continue;
    const base = n?.path ?? o!.path;
    const path = base === '/' ? `/${name}` : `${base}/${name}`;
    const on = oc === null || oAbs === null ? null : { path, abs: oAbs, st: oc, children: new Map(), added: false };
    const nn = nc === null ? null : { path, abs: join(newAbs, name), st: nc, children: new Map(), added: false };
    if (on !== null) o!.children.set(name, on);
    if (nn !== null) n!.children.set(name, nn);
    await collect(oAbs, join(newAbs, name), on, nn);
  }
}

/** Docker's FileInfo.addChanges, verbatim in behaviour. */
function addChanges(info: Node, old: Node | null, out: Change[]): void {
  const sizeAtEntry = out.length;
  if (old === null) {
    out.push({ path: info.path, kind: 'A' });
    info.added = true;
  }
  const oldChildren = new Map<string, Node>(old !== null && isDirStat(info.st) ? old.children : []);
  for (const [name, child] of info.children) {
    const oc = oldChildren.get(name) ?? null;
    if (oc !== null) {
      if (statDifferent(oc.st, child.st) || !sameCapability(oc.abs, child.abs) || !sameContent(oc, child, false)) {
        out.push({ path: child.path, kind: 'C' });
        child.added = true;
      }
      oldChildren.delete(name);
    }
    addChanges(child, oc, out);
  }
  for (const oc of oldChildren.values()) out.push({ path: oc.path, kind: 'D' });
  if (out.length > sizeAtEntry && isDirStat(info.st) && !info.added && info.path !== '/') {
    out.splice(sizeAtEntry, 0, { path: info.path, kind: 'C' });
  }
}

/** Docker's naive ChangesDirs: compare two full trees (`oldRoot` null = empty). Sorted by path. */
export async function changesDirs(newRootText: string, oldRootText: string | null): Promise<Change[]> {
  const newRoot = byteString(newRootText);
  const oldRoot = oldRootText === null ? null : byteString(oldRootText);
  const nst = lstatOrNull(newRoot);
  if (nst === null) throw new OverlayError('ENOENT', 'changesDirs', { path: newRootText });
  const ost = oldRoot === null ? null : lstatOrNull(oldRoot);
  if (oldRoot !== null && ost === null) throw new OverlayError('ENOENT', 'changesDirs', { path: oldRootText ?? '' });
  const n: Node = { path: '/', abs: newRoot, st: nst, children: new Map(), added: false };
  // An absent old tree is an empty directory (Docker compares against a fresh temp dir).
  const o: Node = { path: '/', abs: oldRoot ?? '', st: ost ?? nst, children: new Map(), added: false };
  await collect(oldRoot, newRoot, o, n);
  const out: Change[] = [];
  addChanges(n, o, out);
  return publicChanges(out);
}

// ---- the same list from upper + lowers, no mount -------------------------------------------------

interface LowerHit {
  /** The topmost visible lower entry. */
  abs: string;
  st: BigIntStats;
  /** When it is a directory: the lower dirs merged into it, top→bottom. */
  dirs: string[];
}

/** Resolve `name` inside a merged lower directory made of `dirs` (top→bottom). */
async function resolveLower(dirs: readonly string[], name: string, userxattr: boolean | undefined): Promise<LowerHit | null> {
  let hit: LowerHit | null = null;
  for (const d of dirs) {
    const abs = join(d, name);
    const st = lstatOrNull(abs);
    if (st === null) continue;
    if (isWhiteoutStat(st)) break;
    if (hit === null) {
      hit = { abs, st, dirs: [] };
      if (!isDirStat(st)) break;
    } else if (!isDirStat(st)) {
      break; // a non-directory below a directory is hidden, and so is everything under it
    }
    hit.dirs.push(abs);
    const b = fsPath(abs);
    if (isOpaqueDir(b, userxattr, listXattrs(b))) break;
  }
  return hit;
}

interface Walk {
  userxattr: boolean | undefined;
  out: Change[];
}

async function walkUpper(
  path: string, upperAbs: string, oldDirs: readonly string[], merging: boolean, added: boolean, w: Walk,
): Promise<void> {
  const sizeAtEntry = w.out.length;
  const upperNames = names(upperAbs);
  for (const name of upperNames) {
    const childPath = path === '/' ? `/${name}` : `${path}/${name}`;
    const abs = join(upperAbs, name);
    const st = lstatOrNull(abs);
    if (st === null) continue;
    const old = oldDirs.length > 0 ? await resolveLower(oldDirs, name, w.userxattr) : null;
    if (isWhiteoutStat(st)) {
      if (old !== null) w.out.push({ path: childPath, kind: 'D' });
      continue;
    }
    const xattrs = isDirStat(st) ? listXattrs(fsPath(abs)) : [];
    if (xattrs.includes(`${overlayXattrPrefix(w.userxattr)}redirect`)) {
      throw new OverlayError('EOPNOTSUPP', 'overlayChanges', { path: pathText(abs), reason: 'upper-has-redirect' });
    }
    let childAdded = false;
    if (old === null) {
      w.out.push({ path: childPath, kind: 'A' });
      childAdded = true;
    } else if (statDifferent(old.st, st) || !sameCapability(old.abs, abs) || !sameContent(old, { abs, st }, true)) {
      w.out.push({ path: childPath, kind: 'C' });
      childAdded = true;
    }
    if (isDirStat(st)) {
      const childOld = old !== null && isDirStat(old.st) ? old.dirs : [];
      const childMerging = merging && childOld.length > 0 && !isOpaqueDir(fsPath(abs), w.userxattr, xattrs);
      await walkUpper(childPath, abs, childOld, childMerging, childAdded, w);
    }
  }
  if (!merging && oldDirs.length > 0) {
    // The upper dir hides the lowers (opaque, or it replaced them): every visible lower child that
    // the upper does not hold is a deletion.
    const inUpper = new Set(upperNames);
    const lowerNames = new Set<string>();
    for (const d of oldDirs) for (const n of names(d)) if (!inUpper.has(n)) lowerNames.add(n);
    for (const n of lowerNames) {
      if ((await resolveLower(oldDirs, n, w.userxattr)) !== null) {
        w.out.push({ path: path === '/' ? `/${n}` : `${path}/${n}`, kind: 'D' });
      }
    }
  }
  if (w.out.length > sizeAtEntry && !added && path !== '/') w.out.push({ path, kind: 'C' });
}

/**
 * The same list computed without a mount: walk `upper` and look paths up in `lowers` (top→bottom),
 * honouring whiteouts and opaque dirs. Must equal changesDirs(merged, mergedOfLowers).
 * @throws EOPNOTSUPP (reason `upper-has-redirect`) for a redirect_dir upper: its merged content
 *   cannot be derived from the upper alone; compare mounted trees instead.
 */
export async function overlayChanges(upperText: string, lowers: string[], opts: DiffLayerOptions = {}): Promise<Change[]> {
  const upper = byteString(upperText);
  const st = lstatOrNull(upper);
  if (st === null || !isDirStat(st)) throw new OverlayError(st === null ? 'ENOENT' : 'ENOTDIR', 'overlayChanges', { path: upperText });
  const lowerRoots: string[] = [];
  for (const l of lowers) {
    const ls = lstatOrNull(byteString(l));
    if (ls === null || !isDirStat(ls)) throw new OverlayError(ls === null ? 'ENOENT' : 'ENOTDIR', 'overlayChanges', { path: l, reason: 'bad-lower' });
    lowerRoots.push(byteString(l));
  }
  const w: Walk = { userxattr: opts.userxattr, out: [] };
  // The root is always merged: overlayfs ignores an opaque mark on the layer roots.
  await walkUpper('/', upper, lowerRoots, true, false, w);
  return publicChanges(w.out);
}

/** Docker's directory.Size: Σ st_size of non-dir entries, each inode once. */
export async function directorySize(dir: string): Promise<number> {
  return sizeOfDirectory(dir);
}

/** Docker's ChangesSize: Σ lstat sizes under `root` of non-dir A/C entries, hard links once. */
export async function changesSize(root: string, changes: Change[]): Promise<number> {
  return sizeOfChanges(root, changes);
}
