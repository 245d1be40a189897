/**
 * Differential harness: one scenario (layers + ops) runs through a real kernel overlay mount and
 * through OverlayEngine on an identical copy of the layers. The result records, per op, success
 * (with a value for reads) or the errno code, then the merged view and the upper directory as
 * comparable maps. Layers are built with fixed timestamps so untouched mtimes must match exactly.
 * Symlink targets in scenarios are relative: an absolute target on the kernel mount resolves
 * against the host root, in the engine against the merged root (by design).
 */
import {
  accessSync, fstatSync, ftruncateSync, statfsSync, chmodSync, readSync, writeSync, constants as fsc, chownSync, closeSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync,
  readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, rmdirSync, statSync, symlinkSync, truncateSync,
  unlinkSync, writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  lgetxattr, llistxattr, lremovexattr, lsetxattr, lutimesNs, mknod, timespecFromNs,
  S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG,
} from '../../src/sys/libc.js';
import { OverlayEngine, type OverlayFileHandle } from '../../src/engine/index.js';

export type LayerEntry =
  | { t: 'file'; p: string; data?: string; mode?: number; uid?: number; xattrs?: Record<string, string> }
  | { t: 'dir'; p: string; mode?: number; opaque?: string; xattrs?: Record<string, string> }
  | { t: 'symlink'; p: string; target: string }
  /** A hard link to `target`, an earlier entry of the same layer. */
  | { t: 'hardlink'; p: string; target: string }
  | { t: 'whiteout'; p: string }
  | { t: 'xwhiteout'; p: string }
  | { t: 'fifo'; p: string };

export type Op =
  | { op: 'write'; p: string; data: string }
  | { op: 'append'; p: string; data: string }
  | { op: 'openrw'; p: string }
  | { op: 'mkdir'; p: string; mode?: number }
  | { op: 'rmdir'; p: string }
  | { op: 'unlink'; p: string }
  | { op: 'rename'; p: string; to: string }
  | { op: 'symlink'; p: string; target: string }
  | { op: 'link'; p: string; to: string }
  | { op: 'chmod'; p: string; mode: number }
  | { op: 'chown'; p: string; uid: number; gid: number }
  | { op: 'lchown'; p: string; uid: number; gid: number }
  | { op: 'truncate'; p: string; len: number }
  | { op: 'setxattr'; p: string; name: string; value: string; flags?: number }
  | { op: 'removexattr'; p: string; name: string }
  | { op: 'mkfifo'; p: string }
  | { op: 'mknod'; p: string; kind: 'chr' | 'blk'; major: number; minor: number }
  | { op: 'utimes'; p: string; ns: string }
  | { op: 'read'; p: string }
  | { op: 'readdir'; p: string }
  | { op: 'stat'; p: string }
  | { op: 'lstat'; p: string }
  | { op: 'readlink'; p: string }
  /** Whether two paths name one inode ('same' or 'different'). */
  | { op: 'sameino'; p: string; to: string }
  | { op: 'access'; p: string; mode: number }
  | { op: 'statfs'; p: string }
  | { op: 'getxattr'; p: string; name: string }
  | { op: 'listxattr'; p: string }
  /** Handle ops: `h` names a slot; a handle stays open across the ops that follow until hclose. */
  | { op: 'hopen'; h: number; p: string; flags: 'r' | 'r+' | 'a' }
  | { op: 'hread'; h: number }
  | { op: 'hwrite'; h: number; data: string; at: number }
  | { op: 'htruncate'; h: number; len: number }
  | { op: 'hstat'; h: number }
  | { op: 'hclose'; h: number };

export interface Scenario {
  /** Lower layers, topmost first. */
  lowers: LayerEntry[][];
  /** Pre-existing upper content (e.g. an upper from an earlier container run). */
  upper?: LayerEntry[];
  ops: Op[];
  redirectDir?: boolean;
  /** Private xattrs in user.overlay.* (kernel `userxattr`). */
  userxattr?: boolean;
  /** metacopy=on (with redirect_dir=on, as the kernel requires). */
  metacopy?: boolean;
  /** No upper: a read-only overlay (the kernel needs two lowers for that). */
  readonly?: boolean;
}

export interface RunResult {
  results: string[];
  merged: Map<string, string>;
  upper: Map<string, string>;
  touched: Set<string>;
}

const FIXED_NS = 1_600_000_000_123_456_789n;

/** Build one layer dir from entries (parents implied), all times fixed, dirs timed last. */
export function buildLayer(root: string, entries: LayerEntry[], prefix = 'trusted.overlay.'): void {
  mkdirSync(root, { recursive: true });
  const dirs = new Set<string>([root]);
  const mkParents = (p: string): void => {
    const d = dirname(p);
    if (!dirs.has(d)) {
      mkParents(d);
      mkdirSync(d, { recursive: true });
      dirs.add(d);
    }
  };
  for (const e of entries) {
    const p = join(root, e.p);
    mkParents(p);
    switch (e.t) {
      case 'file':
        writeFileSync(p, e.data ?? '');
        chmodSync(p, e.mode ?? 0o644);
        if (e.uid !== undefined) lchownSync(p, e.uid, e.uid);
        for (const [k, v] of Object.entries(e.xattrs ?? {})) lsetxattr(p, k, v);
        break;
      case 'dir':
        mkdirSync(p, { recursive: true });
        chmodSync(p, e.mode ?? 0o755);
        if (e.opaque !== undefined) lsetxattr(p, `${prefix}opaque`, e.opaque);
        for (const [k, v] of Object.entries(e.xattrs ?? {})) lsetxattr(p, k, v);
        dirs.add(p);
        break;
      case 'symlink':
        symlinkSync(e.target, p);
        break;
      case 'hardlink':
        linkSync(join(root, e.target), p);
        break;
      case 'whiteout':
        mknod(p, S_IFCHR, 0, 0);
        break;
      case 'xwhiteout':
        writeFileSync(p, '');
        lsetxattr(p, `${prefix}whiteout`, 'y');
        break;
      case 'fifo':
        mknod(p, S_IFIFO | 0o644);
        break;
    }
  }
  const t = timespecFromNs(FIXED_NS);
  const all: string[] = [];
  walk(root, (p) => all.push(p));
  for (const p of all.reverse()) lutimesNs(p, t, t);
}

function walk(root: string, fn: (p: string) => void): void {
  fn(root);
  const st = lstatSync(root);
  if (st.isDirectory()) for (const n of readdirSync(root).sort()) walk(join(root, n), fn);
}

function hashOf(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex').slice(0, 16);
}

export function codeOf(e: unknown): string {
  return (e as { code?: string }).code ?? `?${String(e)}`;
}

function describeStat(st: { mode: number | bigint; uid: number | bigint; gid: number | bigint; size: number | bigint; rdev: number | bigint; nlink: number | bigint }): string {
  const mode = Number(st.mode);
  const fmt = mode & S_IFMT;
  const size = fmt === S_IFDIR ? '-' : String(st.size);
  return `${fmt.toString(8)} ${(mode & 0o7777).toString(8)} ${st.uid}:${st.gid} size=${size} rdev=${st.rdev} nlink=${fmt === S_IFDIR ? '-' : st.nlink}`;
}

const VALUE_CHECKED = new Set(['opaque', 'redirect', 'impure', 'whiteout', 'metacopy']);

/** Snapshot of a real directory tree (used for the upper). */
export function snapshotDir(root: string, PRIVATE = 'trusted.overlay.'): Map<string, string> {
  const out = new Map<string, string>();
  walk(root, (p) => {
    const rel = p === root ? '/' : p.slice(root.length);
    const st = lstatSync(p, { bigint: true });
    const fmt = Number(st.mode) & S_IFMT;
    if (fmt === S_IFCHR && st.rdev === 0n) {
      out.set(rel, 'whiteout');
      return;
    }
    let d = describeStat(st);
    if (fmt === S_IFREG) d += ` h=${hashOf(readFileSync(p))}`;
    if (fmt === S_IFLNK) d += ` ->${readlinkSync(p)}`;
    const xs = llistxattr(p).sort().map((x) => {
      const priv = [PRIVATE, 'trusted.overlay.', 'user.overlay.'].find((pre) => x.startsWith(pre));
      if (priv !== undefined) {
        const short = x.slice(priv.length);
        if (short === 'origin') {
          // The fid differs (different lower copies); the header and fs UUID must not.
          const v = lgetxattr(p, x) ?? Buffer.alloc(0);
          return `${x}=${v.subarray(0, 21).toString('hex')}/${v.length}`;
        }
        return VALUE_CHECKED.has(short) ? `${x}=${lgetxattr(p, x)?.toString('latin1')}` : x;
      }
      return `${x}=${lgetxattr(p, x)?.toString('latin1')}`;
    });
    if (xs.length) d += ` x{${xs.join(',')}}`;
    if (fmt !== S_IFDIR) d += ` mtime=${st.mtimeNs}`;
    else d += ` mtime=${st.mtimeNs}`;
    out.set(rel, d);
  });
  return out;
}

function writeNb(p: string, flags: number, data: string): void {
  const fd = openSync(p, flags | fsc.O_NONBLOCK, 0o666);
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

function readNb(p: string): Buffer {
  const fd = openSync(p, fsc.O_RDONLY | fsc.O_NONBLOCK);
  try {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        if (codeOf(e) === 'EAGAIN') break;
        throw e;
      }
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

const OPEN_FLAGS = { r: fsc.O_RDONLY, 'r+': fsc.O_RDWR, a: fsc.O_WRONLY | fsc.O_APPEND } as const;

/** Handles kept open between ops of one scenario (slot → fd or engine handle). */
export type Slots<T> = Map<number, T>;

function slot<T>(slots: Slots<T>, h: number): T {
  const v = slots.get(h);
  // A slot that was never opened (or failed to open) behaves like a closed fd.
  if (v === undefined) throw Object.assign(new Error('bad slot'), { code: 'EBADF' });
  return v;
}

export function kernelOp(m: string, o: Op, fds: Slots<number> = new Map()): string {
  // Not path.join: it would resolve '.' and '..' and drop trailing slashes before the kernel sees them.
  const P = (p: string): string => (p === '' ? m : `${m}/${p}`);
  switch (o.op) {
    // O_NONBLOCK everywhere a FIFO could be opened: the engine never blocks on one either.
    case 'write': writeNb(P(o.p), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, o.data); return 'ok';
    case 'append': writeNb(P(o.p), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_APPEND, o.data); return 'ok';
    case 'openrw': closeSync(openSync(P(o.p), fsc.O_RDWR | fsc.O_NONBLOCK)); return 'ok';
    case 'mkdir': mkdirSync(P(o.p), o.mode ?? 0o755); return 'ok';
    case 'rmdir': rmdirSync(P(o.p)); return 'ok';
    case 'unlink': unlinkSync(P(o.p)); return 'ok';
    case 'rename': renameSync(P(o.p), P(o.to)); return 'ok';
    case 'symlink': symlinkSync(o.target, P(o.p)); return 'ok';
    case 'link': linkSync(P(o.p), P(o.to)); return 'ok';
    case 'chmod': chmodSync(P(o.p), o.mode); return 'ok';
    case 'chown': chownSync(P(o.p), o.uid, o.gid); return 'ok';
    case 'lchown': lchownSync(P(o.p), o.uid, o.gid); return 'ok';
    case 'truncate': truncateSync(P(o.p), o.len); return 'ok';
    case 'setxattr': lsetxattr(P(o.p), o.name, o.value, o.flags ?? 0); return 'ok';
    case 'removexattr': lremovexattr(P(o.p), o.name); return 'ok';
    case 'mkfifo': mknod(P(o.p), S_IFIFO | 0o644); return 'ok';
    case 'mknod': mknod(P(o.p), (o.kind === 'chr' ? S_IFCHR : S_IFBLK) | 0o600, o.major, o.minor); return 'ok';
    case 'utimes': { const t = timespecFromNs(BigInt(o.ns)); lutimesNs(P(o.p), t, t); return 'ok'; }
    case 'read': return hashOf(readNb(P(o.p)));
    case 'readdir': return readdirSync(P(o.p)).sort().join(',');
    case 'stat': return describeStat(statSync(P(o.p), { bigint: true }));
    case 'lstat': return describeStat(lstatSync(P(o.p), { bigint: true }));
    case 'readlink': return readlinkSync(P(o.p));
    case 'sameino': return statSync(P(o.p), { bigint: true }).ino === statSync(P(o.to), { bigint: true }).ino ? 'same' : 'different';
    case 'access': accessSync(P(o.p), o.mode); return 'ok';
    case 'statfs': { const s = statfsSync(P(o.p)); return `type=${s.type.toString(16)} bsize=${s.bsize}`; }
    case 'getxattr': { const v = lgetxattr(P(o.p), o.name); if (v === null) throw Object.assign(new Error('ENODATA'), { code: 'ENODATA' }); return v.toString('latin1'); }
    case 'listxattr': return llistxattr(P(o.p)).sort().join(',');
    case 'hopen': {
      const fd = openSync(P(o.p), OPEN_FLAGS[o.flags] | fsc.O_NONBLOCK);
      const old = fds.get(o.h);
      if (old !== undefined) closeSync(old);
      fds.set(o.h, fd);
      return 'ok';
    }
    case 'hread': { const b = Buffer.alloc(256); const n = readSync(slot(fds, o.h), b, 0, b.length, 0); return b.subarray(0, n).toString('latin1'); }
    case 'hwrite': writeSync(slot(fds, o.h), o.data, o.at); return 'ok';
    case 'htruncate': ftruncateSync(slot(fds, o.h), o.len); return 'ok';
    case 'hstat': return describeStat(fstatSync(slot(fds, o.h), { bigint: true }));
    case 'hclose': closeSync(slot(fds, o.h)); fds.delete(o.h); return 'ok';
  }
}

export async function engineOp(e: OverlayEngine, o: Op, hs: Slots<OverlayFileHandle> = new Map()): Promise<string> {
  const P = (p: string): string => `/${p}`;
  switch (o.op) {
    case 'write': await e.writeFile(P(o.p), o.data); return 'ok';
    case 'append': await e.appendFile(P(o.p), o.data); return 'ok';
    case 'openrw': await (await e.open(P(o.p), 'r+')).close(); return 'ok';
    case 'mkdir': await e.mkdir(P(o.p), o.mode ?? 0o755); return 'ok';
    case 'rmdir': await e.rmdir(P(o.p)); return 'ok';
    case 'unlink': await e.unlink(P(o.p)); return 'ok';
    case 'rename': await e.rename(P(o.p), P(o.to)); return 'ok';
    case 'symlink': await e.symlink(o.target, P(o.p)); return 'ok';
    case 'link': await e.link(P(o.p), P(o.to)); return 'ok';
    case 'chmod': await e.chmod(P(o.p), o.mode); return 'ok';
    case 'chown': await e.chown(P(o.p), o.uid, o.gid); return 'ok';
    case 'lchown': await e.lchown(P(o.p), o.uid, o.gid); return 'ok';
    case 'truncate': await e.truncate(P(o.p), o.len); return 'ok';
    case 'setxattr': await e.setxattr(P(o.p), o.name, o.value, { noFollow: true, flags: o.flags ?? 0 }); return 'ok';
    case 'removexattr': await e.removexattr(P(o.p), o.name, { noFollow: true }); return 'ok';
    case 'mkfifo': await e.mkfifo(P(o.p), 0o644); return 'ok';
    case 'mknod': await e.mknod(P(o.p), (o.kind === 'chr' ? S_IFCHR : S_IFBLK) | 0o600, o.major, o.minor); return 'ok';
    case 'utimes': await e.lutimes(P(o.p), BigInt(o.ns), BigInt(o.ns)); return 'ok';
    case 'read': return hashOf(await e.readFile(P(o.p)));
    case 'readdir': return (await e.readdir(P(o.p))).sort().join(',');
    case 'stat': return describeStat(await e.stat(P(o.p)));
    case 'lstat': return describeStat(await e.lstat(P(o.p)));
    case 'readlink': return e.readlink(P(o.p));
    case 'sameino': return (await e.stat(P(o.p))).ino === (await e.stat(P(o.to))).ino ? 'same' : 'different';
    case 'access': await e.access(P(o.p), o.mode); return 'ok';
    case 'statfs': { const s = await e.statfs(P(o.p)); return `type=${s.type.toString(16)} bsize=${s.bsize}`; }
    case 'getxattr': return (await e.getxattr(P(o.p), o.name, { noFollow: true })).toString('latin1');
    case 'listxattr': return (await e.listxattr(P(o.p), { noFollow: true })).sort().join(',');
    case 'hopen': {
      const h = await e.open(P(o.p), OPEN_FLAGS[o.flags]);
      await hs.get(o.h)?.close();
      hs.set(o.h, h);
      return 'ok';
    }
    case 'hread': { const b = Buffer.alloc(256); const { bytesRead } = await slot(hs, o.h).read(b, 0, b.length, 0); return b.subarray(0, bytesRead).toString('latin1'); }
    case 'hwrite': await slot(hs, o.h).write(o.data, o.at); return 'ok';
    case 'htruncate': await slot(hs, o.h).truncate(o.len); return 'ok';
    case 'hstat': return describeStat(await slot(hs, o.h).stat());
    case 'hclose': await slot(hs, o.h).close(); hs.delete(o.h); return 'ok';
  }
}

/** Snapshot of the merged view through the engine API. */
export async function snapshotEngine(e: OverlayEngine): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (p: string): Promise<void> => {
    const st = await e.lstat(p);
    const fmt = st.mode & S_IFMT;
    let d = describeStat(st);
    if (fmt === S_IFREG) d += ` h=${hashOf(await e.readFile(p))}`;
    if (fmt === S_IFLNK) d += ` ->${await e.readlink(p)}`;
    const names = (await e.listxattr(p, { noFollow: true })).sort();
    const xs: string[] = [];
    for (const x of names) xs.push(`${x}=${(await e.getxattr(p, x, { noFollow: true })).toString('latin1')}`);
    if (xs.length) d += ` x{${xs.join(',')}}`;
    d += ` mtime=${st.mtimeNs}`;
    out.set(p, d);
    if (fmt === S_IFDIR) for (const n of (await e.readdir(p)).sort()) await visit(p === '/' ? `/${n}` : `${p}/${n}`);
  };
  await visit('/');
  return out;
}

/** Snapshot of the merged view of a kernel mount. */
export function snapshotMount(m: string): Map<string, string> {
  const out = new Map<string, string>();
  walk(m, (p) => {
    const rel = p === m ? '/' : p.slice(m.length);
    const st = lstatSync(p, { bigint: true });
    const fmt = Number(st.mode) & S_IFMT;
    let d = describeStat(st);
    if (fmt === S_IFREG) d += ` h=${hashOf(readFileSync(p))}`;
    if (fmt === S_IFLNK) d += ` ->${readlinkSync(p)}`;
    const xs = llistxattr(p).sort().map((x) => `${x}=${lgetxattr(p, x)?.toString('latin1')}`);
    if (xs.length) d += ` x{${xs.join(',')}}`;
    d += ` mtime=${st.mtimeNs}`;
    out.set(rel, d);
  });
  return out;
}

function layerDirs(base: string, sc: Scenario): { lowers: string[]; upper: string; work: string } {
  const prefix = sc.userxattr === true ? 'user.overlay.' : 'trusted.overlay.';
  const lowers = sc.lowers.map((entries, i) => {
    const d = join(base, `l${i}`);
    buildLayer(d, entries, prefix);
    return d;
  });
  const upper = join(base, 'u');
  buildLayer(upper, sc.upper ?? [], prefix);
  const work = join(base, 'w');
  mkdirSync(work);
  return { lowers, upper, work };
}

function touchedPaths(sc: Scenario, realOf: (p: string) => string | null): Set<string> {
  const t = new Set<string>();
  const add = (p: string): void => {
    const norm = `/${p}`.replace(/\/+/g, '/').replace(/\/$/, '') || '/';
    t.add(norm);
    t.add(dirname(norm));
    const r = realOf(p);
    if (r !== null) {
      t.add(r);
      t.add(dirname(r));
    }
  };
  for (const o of sc.ops) {
    if (!('p' in o)) continue;
    add(o.p);
    if ('to' in o) {
      add(o.to);
      // A renamed dir carries its (possibly touched) children to the new place.
      if (o.op === 'rename') t.add(`/${o.to}/**`.replace(/\/+/g, '/'));
    }
  }
  return t;
}

export function kernelRun(base: string, sc: Scenario): RunResult {
  const { lowers, upper, work } = layerDirs(base, sc);
  const m = join(base, 'm');
  mkdirSync(m);
  let opts = sc.readonly === true ? `index=off,lowerdir=${lowers.join(':')}` : `index=off,lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work}`;
  if (sc.redirectDir === true) opts += ',redirect_dir=on';
  if (sc.userxattr === true) opts += ',userxattr';
  if (sc.metacopy === true) opts += ',metacopy=on,redirect_dir=on';
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', opts, m], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount failed: ${r.stderr}`);
  const results: string[] = [];
  const inMount = (rp: string): string | null => (rp === m ? '/' : rp.startsWith(m + '/') ? rp.slice(m.length) : null);
  const realOf = (p: string): string | null => {
    try {
      return inMount(realpathSync(join(m, p)));
    } catch {
      return null;
    }
  };
  // The object an op names without following its last symlink: real parent + name.
  const linkOf = (p: string): string | null => {
    try {
      return inMount(join(realpathSync(dirname(join(m, p))), p.split('/').pop()!));
    } catch {
      return null;
    }
  };
  const extraTouched: string[] = [];
  let merged: Map<string, string>;
  const fds: Slots<number> = new Map();
  try {
    for (const o of sc.ops) {
      for (const q of 'to' in o ? [o.p, o.to] : 'p' in o ? [o.p] : []) {
        const rp = realOf(q);
        if (rp !== null) extraTouched.push(rp);
        const lp = linkOf(q);
        if (lp !== null) extraTouched.push(lp);
      }
      try {
        results.push(kernelOp(m, o, fds));
      } catch (e) {
        results.push(`E:${codeOf(e)}`);
      }
      if (o.op === 'rename') {
        const dest = linkOf(o.to);
        if (dest !== null) extraTouched.push(`${dest}/**`);
      }
      for (const q of 'to' in o ? [o.p, o.to] : 'p' in o ? [o.p] : []) {
        const after = realOf(q);
        if (after !== null) extraTouched.push(after);
        const lp = linkOf(q);
        if (lp !== null) extraTouched.push(lp);
      }
    }
    for (const fd of fds.values()) closeSync(fd);
    fds.clear();
    merged = snapshotMount(m);
  } finally {
    for (const fd of fds.values()) closeSync(fd);
    spawnSync('umount', [m]);
  }
  const touched = touchedPaths(sc, () => null);
  for (const p of extraTouched) {
    touched.add(p);
    touched.add(dirname(p));
  }
  return { results, merged, upper: snapshotDir(upper), touched };
}

export async function engineRun(base: string, sc: Scenario): Promise<RunResult & { engine: OverlayEngine }> {
  const { lowers, upper, work } = layerDirs(base, sc);
  const engine = sc.readonly === true
    ? new OverlayEngine({ lowers })
    : new OverlayEngine({ lowers, upper, work, redirectDir: sc.redirectDir === true, userxattr: sc.userxattr === true, metacopy: sc.metacopy === true });
  const results: string[] = [];
  const hs: Slots<OverlayFileHandle> = new Map();
  for (const o of sc.ops) {
    try {
      results.push(await engineOp(engine, o, hs));
    } catch (e) {
      results.push(`E:${codeOf(e)}`);
    }
  }
  for (const h of hs.values()) await h.close();
  const merged = await snapshotEngine(engine);
  return { results, merged, upper: snapshotDir(upper), touched: touchedPaths(sc, () => null), engine };
}

/** Drop mtimes of touched paths (and every dir mtime under a touched dir) before comparing. */
export function comparable(snap: Map<string, string>, touched: Set<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [p, d] of snap) {
    if (d === 'whiteout') {
      out.set(p, d);
      continue;
    }
    const underMoved = [...touched].some((t) => t.endsWith('/**') && p.startsWith(t.slice(0, -2)));
    const keep = !touched.has(p) && !underMoved;
    out.set(p, keep ? d : d.replace(/ mtime=\d+/, ' mtime=*'));
  }
  return out;
}

/** Side-by-side diff lines of two snapshots; empty when equal. */
export function diffSnapshots(a: Map<string, string>, b: Map<string, string>): string[] {
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  const out: string[] = [];
  for (const k of keys) {
    const x = a.get(k);
    const y = b.get(k);
    if (x !== y) out.push(`${k}\n   kernel: ${x ?? '(absent)'}\n   engine: ${y ?? '(absent)'}`);
  }
  return out;
}

/** Run a scenario both ways; returns a list of human-readable differences (empty = identical). */
export async function differential(base: string, sc: Scenario): Promise<string[]> {
  const k = kernelRun(join(base, 'k'), sc);
  const e = await engineRun(join(base, 'e'), sc);
  const touched = new Set([...k.touched, ...e.touched]);
  const diffs: string[] = [];
  sc.ops.forEach((o, i) => {
    if (k.results[i] !== e.results[i]) diffs.push(`op ${i} ${JSON.stringify(o)}: kernel ${k.results[i]} engine ${e.results[i]}`);
  });
  for (const d of diffSnapshots(comparable(k.merged, touched), comparable(e.merged, touched))) diffs.push(`merged ${d}`);
  const stripUuid = (m: Map<string, string>): Map<string, string> => m;
  for (const d of diffSnapshots(comparable(stripUuid(k.upper), touched), comparable(stripUuid(e.upper), touched))) diffs.push(`upper ${d}`);
  return diffs;
}
