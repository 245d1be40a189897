/**
 * Layer directory → layer tar, byte-for-byte as Docker's overlay2 driver writes it.
 * Native diff (`writeLayerTar`) walks only the upper dir in Go's lexical WalkDir order and converts
 * overlay whiteouts (0/0 char devices) and opaque dirs into `.wh.` entries; naive diff
 * (`exportChanges`) writes a change list taken from a full merged tree. Both share Docker's
 * `addTarFile`: mode with type bits, mtime truncated to seconds, host uname/gname, only
 * `security.capability` (v3 downgraded to v2), hard links to the first name seen, sockets skipped.
 * Quirk kept on purpose: the kernel shares one inode between whiteouts, so Docker records the 2nd+
 * whiteout as a hard link first and then rewrites it to a regular file, leaving the first
 * whiteout's original path in its linkname field. Matching DiffIDs need that byte too.
 */
import { closeSync, lstatSync, openSync, readSync, readlinkSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import type { Writable } from 'node:stream';
import { OverlayError, fromNodeError, isNotFound } from '../errors.js';
import {
  S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, major, minor,
} from '../sys/libc.js';
import type { Change, DiffLayerOptions, DiffLayerResult } from './types.js';
import {
  TYPE_BLOCK, TYPE_CHAR, TYPE_DIR, TYPE_FIFO, TYPE_LINK, TYPE_REG, TYPE_SYMLINK, TarSink, dataPadding,
  encodeHeader, type TarHeader,
} from './tar-writer.js';
import { hostIdNames, type IdNames } from './tar-writer-names.js';
import { WHITEOUT_OPAQUE, WHITEOUT_PREFIX, isOpaqueDir, isWhiteoutStat, listXattrs, nativeDiffBlocker, readXattr } from './whiteout.js';
import { compareUtf8, walkLexical } from './walk.js';

export type { IdNames } from './tar-writer-names.js';

/** Options of the tar writers beyond the contract's DiffLayerOptions. */
export interface WriteTarOptions extends DiffLayerOptions {
  /** uid/gid → uname/gname; default: the host's /etc/passwd and /etc/group (Docker's behaviour). */
  idNames?: IdNames;
  /** Read buffer for file data, bytes (default 1 MiB). */
  chunkSize?: number;
}

const CHUNK = 1024 * 1024;
const SECURITY_CAPABILITY = 'security.capability';

interface TarContext {
  sink: TarSink;
  names: IdNames;
  /** inode → first tar name (Docker's SeenFiles; keyed by inode only, as Docker does). */
  seen: Map<bigint, Buffer>;
  chunk: Buffer;
}

function floorSeconds(ns: bigint): number {
  let s = ns / 1_000_000_000n;
  if (ns < 0n && ns % 1_000_000_000n !== 0n) s -= 1n;
  return Number(s);
}

/**
 * Docker's FileInfoHeader + ReadSecurityXattrToTarHeader for one lstat'ed path; null for a
 * socket (Go refuses those; Docker logs and skips them).
 */
function fileHeader(name: Buffer, abs: Buffer, st: BigIntStats, ctx: TarContext, xattrs: readonly string[]): TarHeader | null {
  const fmt = Number(st.mode) & S_IFMT;
  let typeflag: number;
  let size = 0;
  let linkname = Buffer.alloc(0);
  let hname = name;
  switch (fmt) {
    case S_IFREG: typeflag = TYPE_REG; size = Number(st.size); break;
    case S_IFDIR: typeflag = TYPE_DIR; hname = Buffer.concat([name, Buffer.from('/')]); break;
    case S_IFLNK:
      typeflag = TYPE_SYMLINK;
      try {
        linkname = readlinkSync(abs, { encoding: 'buffer' });
      } catch (e) {
        throw fromNodeError(e, 'readlink', { path: abs.toString('utf8') });
      }
      break;
    case S_IFCHR: typeflag = TYPE_CHAR; break;
    case S_IFBLK: typeflag = TYPE_BLOCK; break;
    case S_IFIFO: typeflag = TYPE_FIFO; break;
    case S_IFSOCK: return null;
    default:
      throw new OverlayError('EINVAL', 'writeLayerTar', { path: abs.toString('utf8'), reason: 'unknown-file-type' });
  }
  const isDev = fmt === S_IFCHR || fmt === S_IFBLK;
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  const h: TarHeader = {
    name: hname,
    typeflag,
    mode: Number(st.mode) & 0o177777,
    uid,
    gid,
    size,
    mtime: floorSeconds(st.mtimeNs),
    linkname,
    uname: ctx.names.user(uid),
    gname: ctx.names.group(gid),
    devmajor: isDev ? major(st.rdev) : 0,
    devminor: isDev ? minor(st.rdev) : 0,
  };
  const cap = xattrs.includes(SECURITY_CAPABILITY) ? readXattr(abs, SECURITY_CAPABILITY) : null;
  if (cap !== null) {
    let value = cap;
    // VFS_CAP_REVISION_3 carries a namespace root uid that means nothing outside this host: Docker
    // rewrites it as revision 2 and drops the trailing rootid.
    if (cap.length >= 4 && cap[3] === 3) {
      value = Buffer.from(cap.subarray(0, Math.min(20, cap.length)));
      value[3] = 2;
    }
    h.paxRecords = [[`SCHILY.xattr.${SECURITY_CAPABILITY}`, value]];
  }
  if (fmt !== S_IFDIR && st.nlink > 1n) {
    const first = ctx.seen.get(st.ino);
    if (first !== undefined) {
      h.typeflag = TYPE_LINK;
      h.linkname = first;
      h.size = 0;
    } else {
      ctx.seen.set(st.ino, hname);
    }
  }
  return h;
}

async function writeData(abs: Buffer, size: number, ctx: TarContext): Promise<void> {
  let fd: number;
  try {
    fd = openSync(abs, 'r');
  } catch (e) {
    throw fromNodeError(e, 'open', { path: abs.toString('utf8') });
  }
  try {
    let left = size;
    while (left > 0) {
      const want = Math.min(left, ctx.chunk.length);
      let bytesRead: number;
      try {
        bytesRead = readSync(fd, ctx.chunk, 0, want, size - left);
      } catch (e) {
        throw fromNodeError(e, 'read', { path: abs.toString('utf8') });
      }
      if (bytesRead === 0) {
        throw new OverlayError('EIO', 'writeLayerTar', { path: abs.toString('utf8'), reason: 'file-shrank-during-diff' });
      }
      // Copy: the sink buffers chunks, and ctx.chunk is reused for the next read.
      await ctx.sink.write(Buffer.from(ctx.chunk.subarray(0, bytesRead)));
      left -= bytesRead;
    }
    // A file that grew is cut at the size in its header, as Go's writer does (ErrWriteTooLong).
    await ctx.sink.write(dataPadding(size));
  } finally {
    closeSync(fd);
  }
}

async function emit(h: TarHeader, abs: Buffer, ctx: TarContext): Promise<void> {
  await ctx.sink.write(encodeHeader(h));
  if (h.typeflag === TYPE_REG && h.size > 0) await writeData(abs, h.size, ctx);
}

function joinName(dirWithSlash: Buffer, base: string): Buffer {
  return Buffer.concat([dirWithSlash, Buffer.from(base)]);
}

async function makeContext(out: Writable, opts: WriteTarOptions): Promise<TarContext> {
  return {
    sink: new TarSink(out),
    names: opts.idNames ?? (await hostIdNames()),
    seen: new Map(),
    chunk: Buffer.allocUnsafe(Math.max(32 * 1024, Math.min(opts.chunkSize ?? CHUNK, 16 * CHUNK))),
  };
}

/**
 * Native diff: the upper dir of an overlay → an OCI layer tar exactly as Docker writes it
 * (Go archive/tar PAX, lexical walk, 0/0 char devices → `.wh.<name>` mode 0600, opaque dirs →
 * `<dir>/.wh..wh..opq`, only security.capability kept, hard links within the layer).
 * Writes the whole archive, then ends `out`.
 * @throws EOPNOTSUPP (reason `upper-has-redirect` / `upper-has-metacopy`) when the upper holds a
 *   redirect_dir or metacopy entry: its content lives in the lowers, so only a naive diff is right.
 *   Call `nativeDiffBlocker` first to fall back before any byte is written.
 */
export async function writeLayerTar(upperDir: string, out: Writable, opts: WriteTarOptions = {}): Promise<DiffLayerResult> {
  const ctx = await makeContext(out, opts);
  for (const { rel, abs, st } of walkLexical(upperDir)) {
    const fmt = Number(st.mode) & S_IFMT;
    const xattrs = listXattrs(abs);
    const blocker = nativeDiffBlocker(abs, fmt === S_IFDIR, fmt === S_IFREG, opts.userxattr, xattrs);
    if (blocker !== null) {
      throw new OverlayError('EOPNOTSUPP', 'writeLayerTar', { path: abs.toString('utf8'), reason: blocker });
    }
    const h = fileHeader(rel, abs, st, ctx, xattrs);
    if (h === null) continue;
    if (isWhiteoutStat(st)) {
      const slash = rel.lastIndexOf(0x2f);
      h.name = Buffer.concat([rel.subarray(0, slash + 1), Buffer.from(WHITEOUT_PREFIX), rel.subarray(slash + 1)]);
      h.mode = 0o600;
      h.typeflag = TYPE_REG; // keeps a linkname set by the hard-link step (see the file note)
      h.size = 0;
    } else if (fmt === S_IFDIR && isOpaqueDir(abs, opts.userxattr, xattrs)) {
      await emit(h, abs, ctx);
      await emit({
        name: joinName(h.name, WHITEOUT_OPAQUE),
        typeflag: TYPE_REG,
        mode: h.mode & 0o777,
        uid: h.uid,
        gid: h.gid,
        size: 0,
        mtime: null,
        linkname: Buffer.alloc(0),
        uname: h.uname,
        gname: h.gname,
        devmajor: 0,
        devminor: 0,
      }, abs, ctx);
      continue;
    }
    await emit(h, abs, ctx);
  }
  return ctx.sink.finish();
}

/**
 * Docker's `archive.Tar` of a whole tree (the naive Diff of a layer without parent: the merged
 * mount as it is). Same walk and headers as `writeLayerTar`, but no whiteout or opaque conversion
 * and no overlay checks: the tree is taken literally. Writes the whole archive, then ends `out`.
 */
export async function writeTreeTar(root: string, out: Writable, opts: WriteTarOptions = {}): Promise<DiffLayerResult> {
  const ctx = await makeContext(out, opts);
  for (const { rel, abs, st } of walkLexical(root)) {
    const h = fileHeader(rel, abs, st, ctx, listXattrs(abs));
    if (h !== null) await emit(h, abs, ctx);
  }
  return ctx.sink.finish();
}

/** The first entry of `upperDir` (lexical order) that forbids a native diff, or null. */
export async function findNativeDiffBlocker(upperDir: string, opts: DiffLayerOptions = {}): Promise<{ path: string; reason: string } | null> {
  for (const { rel, abs, st } of walkLexical(upperDir)) {
    const fmt = Number(st.mode) & S_IFMT;
    const reason = nativeDiffBlocker(abs, fmt === S_IFDIR, fmt === S_IFREG, opts.userxattr);
    if (reason !== null) return { path: `/${rel.toString('utf8')}`, reason };
  }
  return null;
}

/** Sort changes by path bytes (Docker's changesByPath), without touching the input. */
export function sortChanges(changes: readonly Change[]): Change[] {
  return [...changes].sort((a, b) => (a.pathBytes === undefined && b.pathBytes === undefined
    ? compareUtf8(a.path, b.path)
    : Buffer.compare(changeBytes(a), changeBytes(b))));
}

/** The bytes of a change's path. */
export function changeBytes(c: Change): Buffer {
  return c.pathBytes ?? Buffer.from(c.path, 'utf8');
}

/**
 * Naive diff: tar of `changes` taken from the full tree `root` (deletions as `.wh.` entries, mode 0).
 * Docker's ExportChanges: sorted by path; a deletion is `dir/.wh.<base>`, typeflag '0', mode 0,
 * owner 0:0, mtime = now rounded to the second; anything else is the entry at `root + path` with
 * the same header rules as the native diff (no whiteout conversion). Paths that vanished are
 * skipped, as Docker does. Writes the whole archive, then ends `out`.
 */
export async function exportChanges(root: string, changes: Change[], out: Writable, opts: WriteTarOptions = {}): Promise<DiffLayerResult> {
  const ctx = await makeContext(out, opts);
  const rootBuf = Buffer.from(root.replace(/\/+$/, ''), 'utf8');
  for (const change of sortChanges(changes)) {
    const bytes = changeBytes(change);
    let skip = 0;
    while (skip < bytes.length && bytes[skip] === 0x2f) skip++;
    const rel = bytes.subarray(skip);
    if (rel.length === 0) continue;
    if (change.kind === 'D') {
      const slash = rel.lastIndexOf(0x2f);
      await emit({
        name: Buffer.concat([rel.subarray(0, slash + 1), Buffer.from(WHITEOUT_PREFIX), rel.subarray(slash + 1)]),
        typeflag: TYPE_REG,
        mode: 0,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: Math.round(Date.now() / 1000),
        linkname: Buffer.alloc(0),
        uname: '',
        gname: '',
        devmajor: 0,
        devminor: 0,
      }, rootBuf, ctx);
      continue;
    }
    const abs = Buffer.concat([rootBuf, Buffer.from('/'), rel]);
    let st: BigIntStats;
    try {
      st = lstatSync(abs, { bigint: true });
    } catch (e) {
      if (isNotFound(e)) continue;
      throw fromNodeError(e, 'lstat', { path: abs.toString('utf8') });
    }
    const h = fileHeader(rel, abs, st, ctx, listXattrs(abs));
    if (h !== null) await emit(h, abs, ctx);
  }
  return ctx.sink.finish();
}
