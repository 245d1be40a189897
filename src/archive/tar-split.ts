/**
 * Tar-split: enough to re-create a layer tar byte for byte from the layer dir. While extracting, every
 * byte that is not regular-file content (headers, PAX/GNU data, padding, end blocks, trailing bytes)
 * is kept verbatim; file content becomes a reference "N bytes from <path>". When an extracted file is
 * later replaced within the same layer, its reference is turned back into inline bytes first, so
 * duplicate entries still re-assemble exactly. Stored gzip'd in a small binary format:
 *   "OV2TSPL1" then records: 0x01 u32be len + bytes | 0x02 u64be size + u32be len + path | 0x00 end.
 * A path is the name's bytes as the tar has them (UTF-8 for any ordinary name, but not necessarily).
 */
import { closeSync, constants as fsc, fstatSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { OverlayError, fromNodeError } from '../errors.js';

const MAGIC = Buffer.from('OV2TSPL1');
const REC_END = 0;
const REC_RAW = 1;
const REC_FILE = 2;
const CHUNK = 1 << 20;

type Segment = { kind: 'raw'; data: Buffer } | { kind: 'file'; path: string; size: number };

/** Collects the split record during extraction (synchronous; lives in the extraction thread). */
export class TarSplitRecorder {
  private readonly segs: Segment[] = [];
  private readonly done: Buffer[] = [];
  private cur = Buffer.allocUnsafe(CHUNK);
  private curLen = 0;
  private readonly refs = new Map<string, number>();

  /** Bytes of the tar that are kept verbatim. */
  raw(buf: Buffer, start: number, end: number): void {
    while (start < end) {
      const n = Math.min(end - start, this.cur.length - this.curLen);
      buf.copy(this.cur, this.curLen, start, start + n);
      this.curLen += n;
      start += n;
      if (this.curLen === this.cur.length) {
        this.done.push(this.cur);
        this.cur = Buffer.allocUnsafe(CHUNK);
        this.curLen = 0;
      }
    }
  }

  /** `size` bytes of content that the extractor writes to the regular file `path` (layer-relative). */
  file(path: string, size: number): void {
    this.flush();
    this.refs.set(path, this.segs.length);
    this.segs.push({ kind: 'file', path, size });
  }

  /** `path` is about to be removed from the layer dir: turn its content reference into inline bytes. */
  detach(path: string, read: (rel: string) => Buffer): void {
    const idx = this.refs.get(path);
    if (idx === undefined) return;
    this.segs[idx] = { kind: 'raw', data: read(path) };
    this.refs.delete(path);
  }

  private flush(): void {
    if (this.curLen > 0) {
      this.done.push(Buffer.from(this.cur.subarray(0, this.curLen)));
      this.curLen = 0;
    }
    if (this.done.length > 0) {
      this.segs.push({ kind: 'raw', data: this.done.length === 1 ? (this.done[0] as Buffer) : Buffer.concat(this.done) });
      this.done.length = 0;
    }
  }

  /** Serialise and write the record to `file`. */
  write(file: string): void {
    this.flush();
    const parts: Buffer[] = [MAGIC];
    for (const s of this.segs) {
      if (s.kind === 'raw') {
        if (s.data.length === 0) continue;
        const h = Buffer.alloc(5);
        h[0] = REC_RAW;
        h.writeUInt32BE(s.data.length, 1);
        parts.push(h, s.data);
      } else {
        const p = Buffer.from(s.path, 'latin1'); // a byte-string name (tar-reader's byteName)
        const h = Buffer.alloc(13);
        h[0] = REC_FILE;
        h.writeBigUInt64BE(BigInt(s.size), 1);
        h.writeUInt32BE(p.length, 9);
        parts.push(h, p);
      }
    }
    parts.push(Buffer.from([REC_END]));
    writeFileSync(file, gzipSync(Buffer.concat(parts), { level: 6 }));
  }
}

function corrupt(file: string, detail: string): OverlayError {
  return new OverlayError('EINVAL', 'assembleLayer', { path: file, reason: 'tar-split-corrupt', detail });
}

async function put(out: Writable, chunk: Buffer): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

/** Stream the original tar bytes to `out` (which is left open). */
export async function assembleFromSplit(splitFile: string, diffDir: string, out: Writable): Promise<void> {
  let data: Buffer;
  try {
    data = gunzipSync(readFileSync(splitFile));
  } catch (e) {
    if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('Z_')) throw corrupt(splitFile, 'not gzip');
    throw fromNodeError(e, 'assembleLayer', { path: splitFile });
  }
  if (data.length < MAGIC.length + 1 || !data.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt(splitFile, 'bad magic');
  let p = MAGIC.length;
  for (;;) {
    if (p >= data.length) throw corrupt(splitFile, 'missing end record');
    const kind = data[p];
    if (kind === REC_END) return;
    if (kind === REC_RAW) {
      const len = data.readUInt32BE(p + 1);
      if (p + 5 + len > data.length) throw corrupt(splitFile, 'short raw record');
      await put(out, data.subarray(p + 5, p + 5 + len));
      p += 5 + len;
    } else if (kind === REC_FILE) {
      const size = Number(data.readBigUInt64BE(p + 1));
      const plen = data.readUInt32BE(p + 9);
      const relBytes = data.subarray(p + 13, p + 13 + plen);
      p += 13 + plen;
      await copyContent(Buffer.concat([Buffer.from(join(diffDir, '/')), relBytes]), relBytes.toString('utf8'), size, out);
    } else {
      throw corrupt(splitFile, `unknown record type ${kind}`);
    }
  }
}

async function copyContent(path: Buffer, rel: string, size: number, out: Writable): Promise<void> {
  const file = path.toString('utf8');
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (e) {
    throw fromNodeError(e, 'assembleLayer', { path: file, reason: 'tar-split-content-missing' });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== size) {
      throw new OverlayError('EIO', 'assembleLayer', {
        path: file,
        reason: 'tar-split-content-mismatch',
        detail: `${rel}: expected a regular file of ${size} bytes, found ${st.isFile() ? `${st.size} bytes` : 'another type'}`,
      });
    }
    let pos = 0;
    while (pos < size) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - pos));
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) throw new OverlayError('EIO', 'assembleLayer', { path: file, reason: 'tar-split-content-mismatch', detail: 'file shrank' });
      pos += n;
      await put(out, n === buf.length ? buf : buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}
