/**
 * An image input (a tar, or a directory) seen as a set of named members. A tar is extracted once
 * into a scratch dir on the data root's filesystem: every regular member goes to a file named by
 * its index (member names are never used as paths, so hostile names cannot escape), hashed while
 * written. Symlink members (docker save links duplicate layers) are resolved inside the archive,
 * in any path component; a link that climbs out of it, or loops, is refused (B23).
 * A directory is read in place; member names are checked to stay inside it.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readFile, realpath, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import tar from 'tar-stream';
import { OverlayError, fromNodeError, isNotFound, pathOf } from '../errors.js';
import { sha256File } from './digest.js';
import { compressionOf, decompressToFile } from '../archive/compression.js';

export interface Member {
  /** A readable file holding the member's bytes. */
  file: string;
  size: number;
}

export interface ImageSource {
  /** What the user gave (for messages). */
  readonly label: string;
  has(name: string): Promise<boolean>;
  get(name: string): Promise<Member>;
  /** "sha256:<hex>" of the member's bytes. */
  digest(name: string): Promise<string>;
  readJson(name: string): Promise<{ bytes: Buffer; value: unknown }>;
  close(): Promise<void>;
}

/** Normalise a member name: no leading "./" or "/", no "." parts; null if it climbs out (".."). */
export function normalizeName(name: string): string | null {
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') return null;
    parts.push(p);
  }
  return parts.join('/');
}

function missing(label: string, name: string): OverlayError {
  return new OverlayError('ENOENT', 'load', { path: label, reason: 'archive-member-missing', detail: `${JSON.stringify(name)} is not in the archive` });
}

abstract class BaseSource implements ImageSource {
  constructor(readonly label: string) {}
  abstract has(name: string): Promise<boolean>;
  abstract get(name: string): Promise<Member>;
  abstract digest(name: string): Promise<string>;
  abstract close(): Promise<void>;

  async readJson(name: string): Promise<{ bytes: Buffer; value: unknown }> {
    const m = await this.get(name);
    if (m.size > 64 << 20) throw new OverlayError('EFBIG', 'load', { path: this.label, reason: 'metadata-too-large', detail: name });
    const bytes = await readFile(m.file);
    try {
      return { bytes, value: JSON.parse(bytes.toString('utf8')) as unknown };
    } catch (e) {
      throw new OverlayError('EINVAL', 'load', { path: this.label, reason: 'invalid-json', detail: `${name}: ${(e as Error).message}`, cause: e });
    }
  }
}

interface TarMember { file?: string; size: number; digest?: string; linkname?: string }

class TarSource extends BaseSource {
  constructor(label: string, private readonly dir: string, private readonly members: Map<string, TarMember>) { super(label); }

  /**
   * The regular member `name` names, following symlink members in any component (as Docker
   * resolves them in its extracted copy, scoped to the archive): a relative target from the link's
   * dir, an absolute one from the archive root. Climbing above the root is refused (EINVAL
   * archive-member-escapes), as are more than 40 links (ELOOP archive-member-loop, the kernel's
   * limit); a name that resolves to nothing is missing, naming the links it went through.
   */
  private resolve(name: string): TarMember {
    const out: string[] = [];
    const via: string[] = [];
    let queue = name.split('/');
    while (queue.length > 0) {
      const part = queue.shift() as string;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (out.length === 0) throw this.escapes(name, via);
        out.pop();
        continue;
      }
      out.push(part);
      const m = this.members.get(out.join('/'));
      if (m?.linkname === undefined) continue;
      via.push(`${out.join('/')} -> ${m.linkname}`);
      if (via.length > 40) {
        throw new OverlayError('ELOOP', 'load', { path: this.label, reason: 'archive-member-loop', detail: `${JSON.stringify(name)}: too many levels of symlinks (${via.slice(0, 3).join(', ')}, …)` });
      }
      out.pop();
      if (m.linkname.startsWith('/')) out.length = 0;
      queue = [...m.linkname.split('/'), ...queue];
    }
    const m = this.members.get(out.join('/'));
    if (m?.file === undefined) {
      if (via.length === 0) throw missing(this.label, name);
      throw new OverlayError('ENOENT', 'load', {
        path: this.label,
        reason: 'archive-member-missing',
        detail: `${JSON.stringify(name)} is a symlink (${via.join(', ')}) to ${JSON.stringify(`/${out.join('/')}`)}, which is not in the archive (symlinks resolve inside the archive)`,
      });
    }
    return m;
  }

  private escapes(name: string, via: string[]): OverlayError {
    return new OverlayError('EINVAL', 'load', {
      path: this.label,
      reason: 'archive-member-escapes',
      detail: `${JSON.stringify(name)} resolves outside the archive${via.length > 0 ? ` through the symlink ${via.join(', ')}` : ''}`,
    });
  }

  async has(name: string): Promise<boolean> {
    try {
      this.resolve(name);
      return true;
    } catch (e) {
      if (e instanceof OverlayError) return false;
      throw e;
    }
  }
  async get(name: string): Promise<Member> {
    const m = this.resolve(name);
    return { file: m.file as string, size: m.size };
  }
  async digest(name: string): Promise<string> {
    const m = this.resolve(name);
    if (m.digest === undefined) throw missing(this.label, name);
    return m.digest;
  }
  async close(): Promise<void> { await rm(this.dir, { recursive: true, force: true }); }
}

class DirSource extends BaseSource {
  private readonly digests = new Map<string, string>();
  constructor(label: string, private readonly dir: string) { super(label); }

  private async path(name: string): Promise<string | undefined> {
    const n = normalizeName(name);
    if (n === null || n === '') return undefined;
    const p = join(this.dir, ...n.split('/'));
    let real: string;
    try {
      real = await realpath(p);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw fromNodeError(e, 'load', { path: p });
    }
    const root = await realpath(this.dir);
    if (real !== root && !real.startsWith(root + sep)) {
      throw new OverlayError('EINVAL', 'load', { path: p, reason: 'archive-member-escapes', detail: `${name} resolves outside ${this.dir}` });
    }
    const st = await stat(real);
    return st.isFile() ? real : undefined;
  }

  async has(name: string): Promise<boolean> { return (await this.path(name)) !== undefined; }
  async get(name: string): Promise<Member> {
    const p = await this.path(name);
    if (p === undefined) throw missing(this.label, name);
    return { file: p, size: (await stat(p)).size };
  }
  async digest(name: string): Promise<string> {
    const cached = this.digests.get(name);
    if (cached !== undefined) return cached;
    const d = await sha256File((await this.get(name)).file);
    this.digests.set(name, d);
    return d;
  }
  async close(): Promise<void> { /* nothing to clean */ }
}

/** Extract the tar `file` into `scratch` (created; removed by close()); `label` names the input in errors. */
async function extractTar(file: string, scratch: string, label = file): Promise<TarSource> {
  await mkdir(scratch, { recursive: true, mode: 0o700 });
  const members = new Map<string, TarMember>();
  const ex = tar.extract();
  let index = 0;
  const consume = (async () => {
    for await (const entry of ex) {
      const h = entry.header;
      const name = normalizeName(h.name);
      if (name !== null && name !== '' && (h.type === 'file' || h.type === 'contiguous-file' || h.type === undefined)) {
        const out = join(scratch, String(index++));
        const hash = createHash('sha256');
        let size = 0;
        const tap = new Transform({
          transform(chunk: Buffer, _enc, cb) { hash.update(chunk); size += chunk.length; cb(null, chunk); },
        });
        await pipeline(entry, tap, createWriteStream(out, { mode: 0o600 }));
        members.set(name, { file: out, size, digest: `sha256:${hash.digest('hex')}` });
      } else {
        if (name !== null && name !== '' && (h.type === 'symlink' || h.type === 'link') && typeof h.linkname === 'string') {
          // A hard link names another member by its archive path; a symlink is relative to its dir
          // (or, when absolute, to the archive root).
          const target = h.type === 'link' ? `/${h.linkname}` : h.linkname;
          members.set(name, { size: 0, linkname: target });
        }
        entry.resume();
        await new Promise<void>((res, rej) => { entry.on('end', res); entry.on('error', rej); });
      }
    }
  })();
  try {
    await Promise.all([pipeline(createReadStream(file), ex), consume]);
  } catch (e) {
    await rm(scratch, { recursive: true, force: true });
    const msg = (e as Error).message ?? String(e);
    if (/unexpected end|truncat|invalid tar|checksum|header/i.test(msg)) {
      throw new OverlayError('EINVAL', 'load', { path: label, reason: 'archive-truncated', detail: `not a complete tar archive: ${msg}`, cause: e });
    }
    // A write into the scratch (e.g. removed under us) names the scratch path, not the input.
    const at = pathOf(e);
    throw fromNodeError(e, 'load', { path: at ?? label, detail: at !== undefined && at !== label ? `extracting ${label}` : undefined });
  }
  if (members.size === 0) {
    await rm(scratch, { recursive: true, force: true });
    throw new OverlayError('EINVAL', 'load', { path: label, reason: 'archive-empty', detail: 'no files in the archive' });
  }
  return new TarSource(label, scratch, members);
}

/** Outer compressions `docker load` accepts but we do not decompress, by magic bytes. */
const UNSUPPORTED_MAGIC: ReadonlyArray<readonly [string, Buffer]> = [
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ['bzip2', Buffer.from([0x42, 0x5a, 0x68])],
];

/**
 * Open `path` (a tar file or a directory) as an image source; tars are extracted under `scratch`.
 * A tar compressed as a whole with gzip or zstd (as `docker load` accepts) is first decompressed to
 * `<scratch>.tar` (removed once extracted); xz and bzip2 are refused (EINVAL, unsupported-compression).
 */
export async function openSource(path: string, scratch: string): Promise<ImageSource> {
  let st;
  try {
    st = await lstat(path);
    if (st.isSymbolicLink()) st = await stat(path);
  } catch (e) {
    throw fromNodeError(e, 'load', { path, reason: 'input-not-found' });
  }
  if (st.isDirectory()) return new DirSource(path, path);
  if (!st.isFile()) throw new OverlayError('EINVAL', 'load', { path, reason: 'input-not-a-file' });
  const head = Buffer.alloc(6);
  let headLen: number;
  const fh = await open(path, 'r');
  try {
    headLen = (await fh.read(head, 0, 6, 0)).bytesRead;
  } finally {
    await fh.close();
  }
  for (const [name, magic] of UNSUPPORTED_MAGIC) {
    if (headLen >= magic.length && head.subarray(0, magic.length).equals(magic)) {
      throw new OverlayError('EINVAL', 'load', { path, reason: 'unsupported-compression', detail: `unsupported compression: ${name} — decompress it first (gzip, zstd and plain tars are accepted)` });
    }
  }
  if (compressionOf(head.subarray(0, headLen)) === 'none') return extractTar(path, scratch);
  const plain = `${scratch}.tar`;
  try {
    await decompressToFile(path, plain, path);
    return await extractTar(plain, scratch, path);
  } catch (e) {
    if (e instanceof OverlayError && e.reason === 'layer-decompress-failed') {
      throw new OverlayError('EINVAL', 'load', { path, reason: 'archive-decompress-failed', detail: e.message, cause: e });
    }
    throw e;
  } finally {
    await rm(plain, { force: true });
  }
}
