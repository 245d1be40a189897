/**
 * A tar header encoder that produces the bytes Go's `archive/tar` Writer produces, because layer
 * DiffIDs are hashes of those bytes. Docker asks for Format PAX, which Go treats as "USTAR when it
 * fits, PAX otherwise": a PAX extended header (records sorted by key, named
 * `<dir>/PaxHeaders.0/<file>`) is emitted only for a name that cannot be split into ustar
 * prefix/name or is not ASCII, long link names/user names, ids ≥ 2^21, sizes ≥ 8 GiB, mtimes out of
 * the 11-octal-digit range, and xattrs. The archive ends with two zero blocks and is not padded to a
 * record size. `TarSink` streams blocks to a Writable with backpressure while hashing them.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { OverlayError } from '../errors.js';

export const BLOCK = 512;

export const TYPE_REG = 0x30; // '0'
export const TYPE_LINK = 0x31; // '1'
export const TYPE_SYMLINK = 0x32; // '2'
export const TYPE_CHAR = 0x33; // '3'
export const TYPE_BLOCK = 0x34; // '4'
export const TYPE_DIR = 0x35; // '5'
export const TYPE_FIFO = 0x36; // '6'
const TYPE_XHEADER = 0x78; // 'x'

/** One header as Go's tar.Header holds it (only the fields Docker sets). */
export interface TarHeader {
  /** Raw name bytes; directories end in '/'. */
  name: Buffer;
  typeflag: number;
  /** Mode field value, including file-type bits when the writer put them there. */
  mode: number;
  uid: number;
  gid: number;
  /** Data size; 0 for header-only types. */
  size: number;
  /** Whole seconds, or null for Go's zero time (written as 0). */
  mtime: number | null;
  linkname: Buffer;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Extra PAX records (`SCHILY.xattr.*`), raw values. */
  paxRecords?: ReadonlyArray<readonly [string, Buffer]>;
}

const enc = (s: string): Buffer => Buffer.from(s, 'utf8');

function isAscii(b: Buffer): boolean {
  for (const c of b) if (c >= 0x80 || c === 0) return false;
  return true;
}

/** Go's toASCII: keep only bytes below 0x80 other than NUL. */
function toAscii(b: Buffer): Buffer {
  if (isAscii(b)) return b;
  return Buffer.from([...b].filter((c) => c < 0x80 && c !== 0));
}

/** Go's fitsInOctal(n, x): n-byte field, n-1 digits. */
function fitsOctal(width: number, x: number): boolean {
  const bits = (width - 1) * 3;
  return x >= 0 && (width >= 22 || x < 2 ** bits);
}

function putString(blk: Buffer, off: number, width: number, s: Buffer): void {
  const n = Math.min(s.length, width);
  s.copy(blk, off, 0, n);
  if (s.length < width) blk[off + s.length] = 0;
  // Go: never leave a truncated name ending in '/' (readers would see a directory).
  if (s.length > width && blk[off + width - 1] === 0x2f) {
    let k = width;
    while (k > 0 && blk[off + k - 1] === 0x2f) k--;
    blk[off + k] = 0;
  }
}

function putOctal(blk: Buffer, off: number, width: number, x: number): void {
  const v = fitsOctal(width, x) ? x : 0;
  const s = v.toString(8).padStart(width - 1, '0');
  putString(blk, off, width, enc(s));
}

/** Go's splitUSTARPath. */
function splitUstar(name: Buffer): [Buffer, Buffer] | null {
  let length = name.length;
  if (length <= 100 || !isAscii(name)) return null;
  if (length > 156) length = 156;
  else if (name[length - 1] === 0x2f) length--;
  const i = name.subarray(0, length).lastIndexOf(0x2f);
  const nlen = name.length - i - 1;
  if (i <= 0 || nlen > 100 || nlen === 0 || i > 155) return null;
  return [name.subarray(0, i), name.subarray(i + 1)];
}

function checksum(blk: Buffer): void {
  blk.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of blk) sum += c;
  putString(blk, 148, 7, enc(sum.toString(8).padStart(6, '0')));
  blk[155] = 0x20;
}

function v7Block(h: TarHeader, name: Buffer, linkname: Buffer): Buffer {
  const blk = Buffer.alloc(BLOCK);
  blk[156] = h.typeflag;
  putString(blk, 0, 100, name);
  putString(blk, 157, 100, linkname);
  putOctal(blk, 100, 8, h.mode);
  putOctal(blk, 108, 8, h.uid);
  putOctal(blk, 116, 8, h.gid);
  putOctal(blk, 124, 12, h.size);
  putOctal(blk, 136, 12, h.mtime ?? 0);
  putString(blk, 265, 32, toAscii(enc(h.uname)));
  putString(blk, 297, 32, toAscii(enc(h.gname)));
  putOctal(blk, 329, 8, h.devmajor);
  putOctal(blk, 337, 8, h.devminor);
  enc('ustar\x0000').copy(blk, 257);
  return blk;
}

export function isHeaderOnly(typeflag: number): boolean {
  return typeflag === TYPE_LINK || typeflag === TYPE_SYMLINK || typeflag === TYPE_CHAR ||
    typeflag === TYPE_BLOCK || typeflag === TYPE_DIR || typeflag === TYPE_FIFO;
}

/** Go's formatPAXRecord: "<len> <key>=<value>\n" where len counts itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([enc(` ${key}=`), value, enc('\n')]);
  let size = body.length + String(body.length).length;
  if (String(size).length + body.length !== size) size = String(size).length + body.length;
  return Buffer.concat([enc(String(size)), body]);
}

/** Go's path.Join(dir, "PaxHeaders.0", file) for the extended header's own name. */
function paxHeaderName(name: Buffer): Buffer {
  const s = name.toString('latin1');
  const slash = s.lastIndexOf('/');
  const dir = s.slice(0, slash + 1);
  const file = s.slice(slash + 1);
  const parts = [...dir.split('/'), 'PaxHeaders.0', ...file.split('/')].filter((p) => p !== '' && p !== '.');
  let joined = parts.join('/');
  if (dir.startsWith('/')) joined = `/${joined}`;
  let out = toAscii(Buffer.from(joined, 'latin1'));
  if (out.length > 100) out = out.subarray(0, 100);
  let end = out.length;
  while (end > 0 && out[end - 1] === 0x2f) end--;
  return out.subarray(0, end);
}

function padTo(len: number): number {
  return (BLOCK - (len % BLOCK)) % BLOCK;
}

/**
 * Encode one entry's header blocks exactly as Go's Writer.WriteHeader with Format PAX (or with no
 * format, which makes the same choice for the headers Docker writes). Returns the PAX extended header
 * (with its padded data) when needed, followed by the main header block.
 * @throws EINVAL (reason `tar-header-unencodable`) for a mode or device number PAX cannot carry.
 */
export function encodeHeader(h: TarHeader): Buffer {
  let ustarOk = true;
  const pax = new Map<string, Buffer>();
  const fail = (what: string): never => {
    throw new OverlayError('EINVAL', 'encodeHeader', { path: h.name.toString('utf8'), reason: 'tar-header-unencodable', detail: what });
  };
  // Strings.
  if (!isAscii(h.name) || h.name.length > 100) {
    if (splitUstar(h.name) === null) ustarOk = false;
    pax.set('path', h.name);
  }
  if (!isAscii(h.linkname) || h.linkname.length > 100) {
    ustarOk = false;
    pax.set('linkpath', h.linkname);
  }
  for (const [key, s] of [['uname', enc(h.uname)], ['gname', enc(h.gname)]] as const) {
    if (!isAscii(s) || s.length > 32) {
      ustarOk = false;
      pax.set(key, s);
    }
  }
  // Numbers.
  if (!fitsOctal(8, h.mode)) fail(`mode ${h.mode}`);
  if (!fitsOctal(8, h.uid)) { ustarOk = false; pax.set('uid', enc(String(h.uid))); }
  if (!fitsOctal(8, h.gid)) { ustarOk = false; pax.set('gid', enc(String(h.gid))); }
  if (!fitsOctal(12, h.size)) { ustarOk = false; pax.set('size', enc(String(h.size))); }
  if (!fitsOctal(8, h.devmajor)) fail(`devmajor ${h.devmajor}`);
  if (!fitsOctal(8, h.devminor)) fail(`devminor ${h.devminor}`);
  if (h.mtime !== null && !fitsOctal(12, h.mtime)) {
    ustarOk = false;
    pax.set('mtime', enc(String(h.mtime)));
  }
  if (h.paxRecords !== undefined && h.paxRecords.length > 0) {
    ustarOk = false;
    for (const [k, v] of h.paxRecords) if (!pax.has(k)) pax.set(k, v);
  }

  if (ustarOk) {
    const split = splitUstar(h.name);
    const blk = v7Block(h, split ? split[1] : h.name, h.linkname);
    if (split) putString(blk, 345, 155, split[0]);
    checksum(blk);
    return blk;
  }

  const keys = [...pax.keys()].sort((a, b) => Buffer.compare(enc(a), enc(b)));
  for (const k of keys) {
    if (k === '' || k.includes('=')) fail(`pax key ${k}`);
    if ((k === 'path' || k === 'linkpath' || k === 'uname' || k === 'gname') && pax.get(k)!.includes(0)) fail(`NUL in ${k}`);
  }
  const data = Buffer.concat(keys.map((k) => paxRecord(k, pax.get(k)!)));
  const xh = Buffer.alloc(BLOCK);
  xh[156] = TYPE_XHEADER;
  putString(xh, 0, 100, paxHeaderName(h.name));
  putOctal(xh, 100, 8, 0);
  putOctal(xh, 108, 8, 0);
  putOctal(xh, 116, 8, 0);
  putOctal(xh, 124, 12, data.length);
  putOctal(xh, 136, 12, 0);
  enc('ustar\x0000').copy(xh, 257);
  checksum(xh);
  const main = v7Block(h, toAscii(h.name), toAscii(h.linkname));
  checksum(main);
  return Buffer.concat([xh, data, Buffer.alloc(padTo(data.length)), main]);
}

/** Zero bytes that pad `size` bytes of entry data to a whole block. */
export function dataPadding(size: number): Buffer {
  return Buffer.alloc(padTo(size));
}

/** Go's Writer.Close: two zero blocks, nothing more. */
export const TAR_TRAILER = Buffer.alloc(2 * BLOCK);

/**
 * Buffers small writes, hashes every byte, and honours the destination's backpressure. `finish()`
 * appends the trailer and ends the stream once it has flushed.
 */
export class TarSink {
  private readonly hash: Hash = createHash('sha256');
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written = 0;
  private failure: unknown = null;
  private readonly onError = (e: unknown): void => {
    this.failure ??= e;
  };

  constructor(private readonly out: Writable, private readonly highWater = 256 * 1024) {
    out.on('error', this.onError);
  }

  get bytes(): number {
    return this.written + this.pendingBytes;
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= this.highWater) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.written += this.pendingBytes;
    this.pendingBytes = 0;
    this.hash.update(buf);
    this.check();
    if (!this.out.write(buf)) {
      await waitFor(this.out, 'drain');
      this.check();
    }
  }

  async finish(): Promise<{ diffId: string; tarSize: number }> {
    await this.write(TAR_TRAILER);
    await this.flush();
    const done = waitFor(this.out, 'finish');
    this.out.end();
    await done;
    this.check();
    this.out.off('error', this.onError);
    return { diffId: `sha256:${this.hash.digest('hex')}`, tarSize: this.written };
  }

  private check(): void {
    if (this.failure !== null) throw this.failure;
    if (this.out.destroyed && !this.out.writableFinished) {
      throw new OverlayError('EPIPE', 'writeLayerTar', { reason: 'output-closed' });
    }
  }
}

/** Resolve on `event`, or on 'close'/'error' (checked by the caller); no listener is left behind. */
function waitFor(out: Writable, event: 'drain' | 'finish'): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      out.off(event, done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on(event, done);
    out.on('close', done);
    out.on('error', done);
  });
}
