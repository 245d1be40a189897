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
import { lsetxattr, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../sys/libc.js';
import { encodeOrigin } from './origin.js';
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
  /** Redirect value found on the topmost object (in memory, for rename). */
  redirect: string | null;
  /** A metacopy file (metacopy=on): where its data lives (a lower file); null otherwise. */
  data: LayerHit | null;
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
    return { path: '/', name: '', parent: null, hits, st, upperWhiteout: false, redirect: null, data: null };
  }

  /**
   * Look `name` up in the dir `parent` (kernel ovl_lookup for one component): the upper first,
   * then the parent's lower stack. A relative redirect renames the lookup in the layers below; an
   * absolute one restarts it from the layer roots (all lowers below the redirecting layer, walked
   * component by component: a whiteout, non-dir or opaque dir on the way stops the lookup).
   */
  child(parent: Node, name: string): Node {
    const path = childPath(parent.path, name);
    const hits: LayerHit[] = [];
    let st: BigIntStats | null = null;
    let upperWhiteout = false;
    let redirect: string | null = null;
    let absRedirect: string | null = null;
    let relName = name;
    let stop = false;
    let metaPending = false;
    let data: LayerHit | null = null;
    let upperOrigin = true;
    const redirectState = { abs: null as string | null, rel: name };

    // One candidate in one layer; returns false when the lookup must stop here.
    const visit = (layer: number, real: string, parentReal: string, s: BigIntStats): void => {
      if (this.layers.isWhiteout(real, s, layer, parentReal)) {
        if (hits.length === 0 && layer === UPPER) upperWhiteout = true;
        stop = true;
        return;
      }
      const dir = (Number(s.mode) & S_IFMT) === S_IFDIR;
      if (metaPending) {
        // Looking for the data of a metacopy file: the next regular file below supplies it.
        if (dir || (Number(s.mode) & S_IFMT) !== S_IFREG) {
          stop = true;
          return;
        }
        const m = this.layers.dirMarkers(real);
        if (m.metacopy) {
          if (m.redirect !== null) this.applyRedirect(m.redirect, redirectState);
          return;
        }
        data = { layer, real };
        metaPending = false;
        stop = true;
        return;
      }
      if (!dir) {
        if (hits.length === 0) {
          hits.push({ layer, real });
          st = s;
          if (this.layers.metacopy && (Number(s.mode) & S_IFMT) === S_IFREG) {
            const m = this.layers.dirMarkers(real);
            if (m.metacopy) {
              metaPending = true;
              if (layer === UPPER) redirect = m.redirect;
              if (m.redirect !== null) this.applyRedirect(m.redirect, redirectState);
              absRedirect = redirectState.abs;
              relName = redirectState.rel;
              return;
            }
          }
        }
        stop = true;
        return;
      }
      if (hits.length === 0) st = s;
      hits.push({ layer, real });
      const marks = this.layers.dirMarkers(real);
      if (layer === UPPER) upperOrigin = marks.origin;
      if (marks.opaque === 'y') {
        stop = true;
        return;
      }
      if (this.layers.followRedirects && marks.redirect !== null && marks.redirect.length > 0) {
        const r = marks.redirect;
        // Only an upper redirect is kept in memory (kernel: OVL_I(inode)->redirect from upper).
        if (hits.length === 1 && layer === UPPER) redirect = r;
        if (r.startsWith('/')) absRedirect = r;
        else if (!r.includes('/')) {
          // Relative: renames the last component, of the absolute name too when one is in use.
          if (absRedirect !== null) absRedirect = `${absRedirect.slice(0, absRedirect.lastIndexOf('/'))}/${r}`;
          relName = r;
        }
      }
    };
    const syncRedirect = (): void => {
      if (redirectState.abs !== null) absRedirect = redirectState.abs;
      relName = redirectState.rel;
    };

    const top = parent.hits[0];
    if (top !== undefined && top.layer === UPPER) {
      const real = join(top.real, name);
      const s = lstatOrNull(real);
      if (s !== null) visit(UPPER, real, top.real, s);
    }
    let stack = parent.hits.filter((h) => h.layer !== UPPER);
    let onRootStack = false;
    let i = 0;
    if (absRedirect !== null) {
      stack = this.rootLowerStack();
      onRootStack = true;
    }
    while (!stop && i < stack.length) {
      const ph = stack[i]!;
      const before: string | null = absRedirect;
      if (absRedirect !== null) {
        const w = this.walkLayer(ph.layer, absRedirect);
        absRedirect = w.abs;
        if (w.hit !== null) visit(ph.layer, w.hit.real, w.hit.parentReal, w.hit.st);
        if (w.stop) stop = true;
      } else {
        const real = join(ph.real, relName);
        const s = lstatOrNull(real);
        if (s !== null) visit(ph.layer, real, ph.real, s);
      }
      if (metaPending) syncRedirect();
      if (absRedirect !== null && absRedirect !== before && !onRootStack) {
        // Kernel: switch to the root's lower stack, continuing below the current layer.
        stack = this.rootLowerStack();
        onRootStack = true;
        i = stack.findIndex((h) => h.layer === ph.layer);
      }
      i++;
    }
    if (metaPending) throw new OverlayError('EIO', 'lookup', { path, reason: 'metacopy-without-data' });
    if (!upperOrigin && hits.length > 1 && hits[0]!.layer === UPPER && !this.layers.readonly) this.fixOrigin(parent, hits[0]!, hits[1]!);
    return { path, name, parent, hits, st, upperWhiteout, redirect, data };
  }

  /**
   * Kernel ovl_fix_origin: a merged dir whose upper has no `origin` (made offline, or by an old
   * kernel) gets the origin of its first lower dir on lookup, and its parent `impure` — on any
   * lookup of a writable overlay, a stat included. Refused xattrs are ignored.
   */
  private fixOrigin(parent: Node, upper: LayerHit, lower: LayerHit): void {
    const origin = encodeOrigin(lower.real, this.layers.root(lower.layer));
    if (origin === null) return;
    try {
      lsetxattr(upper.real, this.layers.x('origin'), origin);
      lsetxattr(parent.hits[0]!.real, this.layers.x('impure'), 'y');
    } catch (e) {
      const c = (e as { code?: string }).code;
      if (c !== 'EPERM' && c !== 'EOPNOTSUPP' && c !== 'EACCES') throw e;
    }
  }

  private applyRedirect(r: string, state: { abs: string | null; rel: string }): void {
    if (!this.layers.followRedirects || r.length === 0) return;
    if (r.startsWith('/')) state.abs = r;
    else if (!r.includes('/')) state.rel = r;
  }

  private rootLowerStack(): LayerHit[] {
    return this.layers.lowers.map((real, layer) => ({ layer, real }));
  }

  /**
   * Walk an absolute path inside one lower layer, never following symlinks (kernel
   * ovl_lookup_layer): a whiteout or non-dir on the way ends it with nothing found and stops the
   * lookup; an opaque dir on the way does not end the walk but stops the layers below. A redirect
   * on a dir on the way rewrites the name the layers below will use (relative: that component;
   * absolute: the whole prefix, and it un-stops the lookup), as ovl_check_redirect does.
   */
  private walkLayer(layer: number, abs: string): { hit: { real: string; parentReal: string; st: BigIntStats } | null; stop: boolean; abs: string } {
    const rest = splitPath(abs);
    let prefix: string[] = [];
    let cur = this.layers.root(layer);
    let stop = false;
    const nameFrom = (k: number): string => `/${[...prefix, ...rest.slice(k)].join('/')}`;
    for (let k = 0; k < rest.length; k++) {
      const comp = rest[k]!;
      const next = join(cur, comp);
      const s = lstatOrNull(next);
      if (s === null) return { hit: null, stop, abs: nameFrom(k) };
      if (k === rest.length - 1) return { hit: { real: next, parentReal: cur, st: s }, stop, abs: nameFrom(k) };
      if (this.layers.isWhiteout(next, s, layer, cur)) return { hit: null, stop: true, abs: nameFrom(k) };
      if ((Number(s.mode) & S_IFMT) !== S_IFDIR) return { hit: null, stop: true, abs: nameFrom(k) };
      const marks = this.layers.dirMarkers(next);
      if (marks.opaque === 'y') stop = true;
      const r = this.layers.followRedirects ? marks.redirect : null;
      if (r !== null && r.startsWith('/')) {
        prefix = splitPath(r);
        stop = false;
      } else if (r !== null && r.length > 0 && !r.includes('/')) {
        prefix.push(r);
      } else {
        prefix.push(comp);
      }
      cur = next;
    }
    return { hit: null, stop, abs: nameFrom(rest.length) };
  }

  /**
   * Resolve a merged path. Intermediate symlinks are always followed; the last one only when
   * `follow`. A missing last component gives a negative node (its parent is positive); a missing
   * intermediate one throws ENOENT, a non-dir one ENOTDIR.
   */
  resolve(input: string, follow: boolean, op: string): Node {
    if (input === '') throw new OverlayError('ENOENT', op, { path: input });
    const trailingSlash = hasTrailingSlash(input);
    let pending = splitPath(input);
    let node = this.root();
    let links = 0;
    while (pending.length > 0) {
      const comp = pending.shift()!;
      // Any component after a non-dir, even '.' or '..', is ENOTDIR (kernel path walk).
      if (!isDir(node)) throw new OverlayError('ENOTDIR', op, { path: input });
      if (comp === '.') continue;
      if (comp === '..') {
        node = node.parent ?? node;
        continue;
      }
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

/** `a/` (not the root `/`): the kernel's LOOKUP_DIRECTORY for the last name. */
export function hasTrailingSlash(path: string): boolean {
  return path.length > 1 && path.endsWith('/');
}
