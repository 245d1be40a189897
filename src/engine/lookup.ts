/**
 * Path lookup in the merged namespace, component by component, like the kernel's ovl_lookup:
 * per name, the parent's layer stack is searched top-down; a whiteout or a non-dir stops the
 * search, dirs merge until an opaque one; a `redirect` on a dir (when followed) moves the search
 * in the layers below. Symlinks resolve inside the merged root (absolute targets against it,
 * `..` clamps at the root) with ELOOP after 40 links. Nothing is cached: every call sees the
 * layers as they are on disk, so offline edits of the upper are always visible.
 */
import { readlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { OverlayError } from '../errors.js';
import { S_IFDIR, S_IFLNK, S_IFMT } from '../sys/libc.js';
import { LayerStack, UPPER, lstatOrNull } from './layer-stack.js';

export interface LayerHit {
  layer: number;
  real: string;
}

/** One resolved merged path; negative when `hits` is empty. */
export interface Node {
  /** Canonical merged path ('/' for the root). */
  path: string;
  name: string;
  parent: Node | null;
  /** Topmost first. Dirs: the merge stack; non-dirs: exactly one hit. */
  hits: LayerHit[];
  /** lstat of hits[0]. */
  st: BigIntStats | null;
  /** Negative because the upper holds a whiteout at this name. */
  upperWhiteout: boolean;
  /** Redirect value found on the topmost dir (in memory, for rename). */
  redirect: string | null;
}

export const MAX_SYMLINKS = 40;

export function isDir(n: Node): boolean {
  return n.st !== null && (Number(n.st.mode) & S_IFMT) === S_IFDIR;
}
export function isSymlink(n: Node): boolean {
  return n.st !== null && (Number(n.st.mode) & S_IFMT) === S_IFLNK;
}
export function hasUpper(n: Node): boolean {
  return n.hits[0]?.layer === UPPER;
}
export function hasLower(n: Node): boolean {
  return n.hits.some((h) => h.layer !== UPPER);
}
/** Kernel OVL_TYPE_MERGE: a dir in upper and a lower, or in two lowers. */
export function isMerged(n: Node): boolean {
  if (!isDir(n)) return false;
  const lowers = n.hits.filter((h) => h.layer !== UPPER).length;
  return hasUpper(n) ? lowers > 0 : lowers > 1;
}

export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

export class Lookup {
  constructor(readonly layers: LayerStack) {}

  root(): Node {
    const hits: LayerHit[] = [];
    if (this.layers.upper !== undefined) hits.push({ layer: UPPER, real: this.layers.upper });
    this.layers.lowers.forEach((real, layer) => hits.push({ layer, real }));
    const st = lstatOrNull(hits[0]!.real);
    if (st === null) throw new OverlayError('ENOENT', 'lookup', { path: hits[0]!.real, reason: 'layer-root-missing' });
    return { path: '/', name: '', parent: null, hits, st, upperWhiteout: false, redirect: null };
  }

  /** Look `name` up in the dir `parent` (kernel ovl_lookup for one component). */
  child(parent: Node, name: string): Node {
    const path = childPath(parent.path, name);
    const hits: LayerHit[] = [];
    let st: BigIntStats | null = null;
    let upperWhiteout = false;
    let redirect: string | null = null;
    // Where to look in each layer below: by default the parent's dir in that layer + name.
    let absRedirect: string | null = null;
    let relName = name;
    for (const ph of parent.hits) {
      let real: string;
      if (absRedirect !== null) real = join(this.layers.root(ph.layer), absRedirect);
      else real = join(ph.real, relName);
      const s = lstatOrNull(real);
      if (s === null) continue;
      if (this.layers.isWhiteout(real, s, ph.layer, absRedirect !== null ? join(real, '..') : ph.real)) {
        if (hits.length === 0 && ph.layer === UPPER) upperWhiteout = true;
        break;
      }
      const dir = (Number(s.mode) & S_IFMT) === S_IFDIR;
      if (hits.length === 0) {
        hits.push({ layer: ph.layer, real });
        st = s;
        if (!dir) break;
      } else {
        if (!dir) break;
        hits.push({ layer: ph.layer, real });
      }
      const marks = this.layers.dirMarkers(real);
      if (marks.opaque === 'y') break;
      if (this.layers.followRedirects) {
        const r = marks.redirect;
        if (r !== null && r.length > 0) {
          if (hits.length === 1) redirect = r;
          if (r.startsWith('/')) absRedirect = r;
          else if (!r.includes('/')) relName = r;
        }
      }
    }
    // Lower hits via an absolute redirect need the layers below the redirecting one only; the loop
    // above walks parent.hits, which for the root-relative form may skip layers the parent lacks.
    if (absRedirect !== null && hits.length > 0) this.extendAbsolute(hits, absRedirect);
    return { path, name, parent, hits, st, upperWhiteout, redirect };
  }

  private extendAbsolute(hits: LayerHit[], abs: string): void {
    const last = hits[hits.length - 1]!.layer;
    const have = new Set(hits.map((h) => h.layer));
    for (let layer = last + 1; layer < this.layers.lowers.length; layer++) {
      if (have.has(layer)) continue;
      const real = join(this.layers.root(layer), abs);
      const s = lstatOrNull(real);
      if (s === null) continue;
      if (this.layers.isWhiteout(real, s, layer, join(real, '..'))) break;
      if ((Number(s.mode) & S_IFMT) !== S_IFDIR) break;
      hits.push({ layer, real });
      if (this.layers.isOpaqueDir(real)) break;
    }
  }

  /**
   * Resolve a merged path. Intermediate symlinks are always followed; the last one only when
   * `follow`. A missing last component gives a negative node (its parent is positive); a missing
   * intermediate one throws ENOENT, a non-dir one ENOTDIR.
   */
  resolve(input: string, follow: boolean, op: string): Node {
    if (input === '') throw new OverlayError('ENOENT', op, { path: input });
    const trailingSlash = input.length > 1 && input.endsWith('/');
    let pending = splitPath(input);
    let node = this.root();
    let links = 0;
    while (pending.length > 0) {
      const comp = pending.shift()!;
      if (comp === '.') continue;
      if (comp === '..') {
        node = node.parent ?? node;
        continue;
      }
      if (!isDir(node)) throw new OverlayError('ENOTDIR', op, { path: input });
      if (Buffer.byteLength(comp) > 255) throw new OverlayError('ENAMETOOLONG', op, { path: input });
      const child = this.child(node, comp);
      const last = pending.length === 0;
      if (child.st === null) {
        if (!last) throw new OverlayError('ENOENT', op, { path: input });
        return child;
      }
      if (isSymlink(child) && (!last || follow || trailingSlash)) {
        if (++links > MAX_SYMLINKS) throw new OverlayError('ELOOP', op, { path: input });
        const target = readlinkSync(child.hits[0]!.real);
        if (target === '') throw new OverlayError('ENOENT', op, { path: input });
        pending = [...splitPath(target), ...pending];
        if (target.startsWith('/')) node = this.root();
        continue;
      }
      node = child;
    }
    if (trailingSlash && node.st !== null && !isDir(node)) throw new OverlayError('ENOTDIR', op, { path: input });
    return node;
  }
}

export function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c.length > 0);
}
