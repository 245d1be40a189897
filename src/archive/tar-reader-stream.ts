/**
 * The reading half of the layer extractor: a tar stream over positional readSync into one 4 MiB
 * window, yielding entries with PAX / GNU long names folded in. Every byte read is hashed (the
 * diffID) and every byte that is not regular-file content goes to the tar-split recorder, so the
 * record covers the whole blob. Content is handed to the caller's fd straight from the window, in
 * writes of at most 32 KiB (larger writes into new files are several times slower on this VM kind).
 */
import { readSync, writeSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { OverlayError } from '../errors.js';
import { BLOCK, TarFormatError, checksumOk, emptyPax, isZeroBlock, parseHeader, parsePax, byteName, nameText, type PaxRecords } from './tar-reader.js';
import type { TarSplitRecorder } from './tar-split.js';

const WINDOW = 4 << 20;
const MAX_WRITE = 32 << 10;

/** One logical tar entry. Types are normalised: '\0' and '7' read as '0', an old '\0' dir as '5'. */
/** One entry; `name` and `linkname` are byte strings (see byteName in tar-reader.ts). */
export interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  /** Content bytes that follow (0 for header-only types, as Go's reader does). */
  size: number;
  mtimeNs: bigint;
  atimeNs: bigint;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Array<[string, Buffer]>;
  /** Byte offset of the entry's own header. */
  offset: number;
}

export class TarEntryStream {
  private readonly buf = Buffer.allocUnsafe(WINDOW);
  private start = 0;
  private end = 0;
  private filePos = 0;
  /** Tar offset of buf[start]. */
  private offset = 0;
  private readonly hash: Hash = createHash('sha256');

  constructor(
    private readonly fd: number,
    private readonly label: string,
    private readonly dest: string,
    private readonly rec: TarSplitRecorder | undefined,
  ) {}

  /** Fail with the layer name and a byte offset. */
  bad(reason: string, detail: string, code = 'EINVAL', at = this.offset): never {
    throw new OverlayError(code, 'applyLayer', { path: this.label, dest: this.dest, reason, detail: `${detail} (at byte offset ${at})` });
  }

  /** Make at least `min` bytes available at `start` (fewer only at EOF); returns bytes available. */
  private fill(min: number): number {
    if (this.end - this.start >= min) return this.end - this.start;
    if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    while (this.end < min) {
      const n = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, this.filePos);
      if (n === 0) break;
      this.hash.update(this.buf.subarray(this.end, this.end + n));
      this.end += n;
      this.filePos += n;
    }
    return this.end - this.start;
  }

  /** Skip `n` bytes that are not file content (kept verbatim in the tar-split). */
  private skipRaw(n: number): void {
    while (n > 0) {
      const avail = this.fill(1);
      if (avail === 0) this.bad('tar-truncated', 'unexpected end of archive');
      const k = Math.min(n, avail);
      this.rec?.raw(this.buf, this.start, this.start + k);
      this.start += k;
      this.offset += k;
      n -= k;
    }
  }

  /** Read `n` non-content bytes into a new buffer (PAX / GNU long-name data). */
  private readRaw(n: number): Buffer {
    if (n > 64 << 20) this.bad('tar-invalid-header', `extended header of ${n} bytes is too large`);
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const avail = this.fill(1);
      if (avail === 0) this.bad('tar-truncated', 'unexpected end of archive');
      const k = Math.min(n - got, avail);
      this.buf.copy(out, got, this.start, this.start + k);
      this.rec?.raw(this.buf, this.start, this.start + k);
      this.start += k;
      this.offset += k;
      got += k;
    }
    return out;
  }

  /** Skip the padding after an entry's `size` content bytes. */
  endEntry(size: number): void {
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad > 0) this.skipRaw(pad);
  }

  /**
   * Write `n` bytes of content to `fd`, straight from the window. With fd < 0 the bytes are not
   * extracted (whiteout / root entries with a body) and are kept verbatim in the tar-split instead.
   */
  copyContent(fd: number, n: number): void {
    while (n > 0) {
      const avail = this.fill(1);
      if (avail === 0) this.bad('tar-truncated', 'unexpected end of archive inside file content');
      const k = Math.min(n, avail, MAX_WRITE);
      if (fd >= 0) {
        let w = 0;
        while (w < k) w += writeSync(fd, this.buf, this.start + w, k - w);
      } else {
        this.rec?.raw(this.buf, this.start, this.start + k);
      }
      this.start += k;
      this.offset += k;
      n -= k;
    }
  }

  /**
   * The next entry (PAX / GNU long-name headers folded in, global headers skipped), positioned at
   * its content; null at the end of the archive. The caller consumes exactly `size` content bytes
   * (copyContent) and then calls endEntry.
   */
  next(): TarEntry | null {
    let pax: PaxRecords | undefined;
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const avail = this.fill(BLOCK);
      if (avail === 0) return null; // EOF on a block boundary without end marker: accepted, as Go's reader does
      if (avail < BLOCK) this.bad('tar-truncated', 'unexpected end of archive inside a header');
      const at = this.offset;
      if (isZeroBlock(this.buf, this.start)) {
        this.skipRaw(BLOCK);
        const more = this.fill(BLOCK);
        if (more === 0) return null;
        if (more >= BLOCK && isZeroBlock(this.buf, this.start)) {
          this.skipRaw(BLOCK);
          return null;
        }
        this.bad('tar-invalid-header', 'a zero block is followed by data');
      }
      if (!checksumOk(this.buf, this.start)) this.bad('tar-bad-checksum', 'header checksum mismatch', 'EINVAL', at);
      let h;
      try {
        h = parseHeader(this.buf, this.start);
      } catch (e) {
        if (e instanceof TarFormatError) this.bad(e.reason, e.message, 'EINVAL', at);
        throw e;
      }
      this.skipRaw(BLOCK);
      const t = h.typeflag;
      if (t === 'x' || t === 'g' || t === 'L' || t === 'K') {
        const data = this.readRaw(h.size);
        this.endEntry(h.size);
        if (t === 'x') {
          pax ??= emptyPax();
          try {
            parsePax(data, pax);
          } catch (e) {
            if (e instanceof TarFormatError) this.bad(e.reason, e.message, 'EINVAL', at);
            throw e;
          }
        } else if (t === 'L' || t === 'K') {
          let end = data.indexOf(0);
          if (end < 0) end = data.length;
          const s = byteName(data.subarray(0, end));
          if (t === 'L') longName = s;
          else longLink = s;
        }
        // 'g' (PAX global header): skipped, as Docker does.
        continue;
      }
      if (t === 'S' || pax?.sparse) this.bad('tar-sparse-unsupported', `sparse entry ${JSON.stringify(nameText(h.name))} is not supported`, 'EOPNOTSUPP', at);
      let type = t;
      if (t === '\0' || t === '7') type = '0';
      if (t === '\0' && h.name.endsWith('/')) type = '5';
      const regular = type === '0';
      const size = regular ? (pax?.size ?? h.size) : 0;
      const mtimeNs = pax?.mtimeNs ?? h.mtimeSec * 1_000_000_000n;
      const entry: TarEntry = {
        name: pax?.path ?? longName ?? h.name,
        type,
        mode: h.mode,
        uid: pax?.uid ?? h.uid,
        gid: pax?.gid ?? h.gid,
        size,
        mtimeNs,
        atimeNs: pax?.atimeNs ?? mtimeNs,
        linkname: pax?.linkpath ?? longLink ?? h.linkname,
        devmajor: h.devmajor,
        devminor: h.devminor,
        xattrs: pax?.xattrs ?? [],
        offset: at,
      };
      return entry;
    }
  }

  /**
   * Consume everything after the end-of-archive marker (record padding, trailing garbage): it is
   * part of the blob, so it is hashed and kept in the tar-split, never interpreted.
   */
  drain(): void {
    for (;;) {
      const avail = this.fill(1);
      if (avail === 0) return;
      this.skipRaw(avail);
    }
  }

  /** "sha256:<hex>" of every byte read (call after drain). */
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }

  /** Bytes read so far (the tar size after drain). */
  get bytesRead(): number {
    return this.filePos;
  }
}
