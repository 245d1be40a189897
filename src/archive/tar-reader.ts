/**
 * Hand-written tar header parsing for the layer extractor: ustar (with the 155-byte prefix), GNU
 * (`ustar  \0` magic, `L`/`K` long names), PAX `x` records (path, linkpath, size, uid, gid, mtime and
 * atime with fractional and negative values, uname, gname, SCHILY.xattr.*), base-256 numbers.
 * Pure functions over a Buffer: no I/O here, so the extractor decides how bytes are read. Malformed
 * input throws TarFormatError, which the extractor turns into an OverlayError naming layer + offset.
 */

export const BLOCK = 512;

/** Internal parse failure; the extractor converts it into an OverlayError with the byte offset. */
export class TarFormatError extends Error {
  constructor(readonly reason: string, detail: string) {
    super(detail);
    this.name = 'TarFormatError';
  }
}

/** Names and link names here are byte strings (see byteName). */
export interface RawHeader {
  /** Name with the ustar prefix joined (ustar format only). */
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSec: bigint;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  format: 'ustar' | 'gnu' | 'v7';
}

export interface PaxRecords {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtimeNs?: bigint;
  atimeNs?: bigint;
  uname?: string;
  gname?: string;
  /** SCHILY.xattr.<name> records, value as raw bytes. */
  xattrs: Array<[string, Buffer]>;
  /** GNU.sparse.* records were present. */
  sparse: boolean;
}

export function emptyPax(): PaxRecords {
  return { xattrs: [], sparse: false };
}

export function isZeroBlock(buf: Buffer, off: number): boolean {
  for (let i = off; i < off + BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

/** The unsigned (or historic signed) sum with the checksum field read as spaces matches the field. */
export function checksumOk(buf: Buffer, off: number): boolean {
  const stored = parseNumeric(buf, off + 148, 8);
  if (stored === null) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 32 : (buf[off + i] as number);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return BigInt(unsigned) === stored || BigInt(signed) === stored;
}

/** Octal (NUL/space padded) or base-256 (high bit set) numeric field; null when malformed. */
export function parseNumeric(buf: Buffer, off: number, len: number): bigint | null {
  const first = buf[off] as number;
  if (first & 0x80) {
    // Base-256, big-endian two's complement; 0x80 marks positive, 0xff negative.
    let v = BigInt(first & 0x7f);
    if (first === 0xff) v = -1n;
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(buf[off + i] as number);
    if (first === 0xff) v = BigInt.asIntN(len * 8, v);
    return v;
  }
  let i = off;
  const end = off + len;
  while (i < end && (buf[i] === 32 || buf[i] === 0)) i++;
  let j = end;
  while (j > i && (buf[j - 1] === 32 || buf[j - 1] === 0)) j--;
  let v = 0n;
  for (let k = i; k < j; k++) {
    const c = buf[k] as number;
    if (c < 48 || c > 55) return null;
    v = v * 8n + BigInt(c - 48);
  }
  return v;
}

function cstr(buf: Buffer, off: number, len: number): Buffer {
  let end = buf.indexOf(0, off);
  if (end < 0 || end > off + len) end = off + len;
  return buf.subarray(off, end);
}

/**
 * Name bytes → a byte string: one UTF-16 code unit per byte (latin1), so every name round-trips
 * exactly, UTF-8 or not (a Linux name is bytes, B19). `nameBytes` turns it back into the bytes and
 * `nameText` into readable text for messages.
 */
export function byteName(b: Buffer): string {
  return b.toString('latin1');
}

/** The bytes of a byte-string name. */
export function nameBytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** A byte-string name as text for messages (UTF-8 decoded; invalid bytes shown as U+FFFD). */
export function nameText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s : nameBytes(s).toString('utf8');
}

function num(buf: Buffer, off: number, len: number, field: string): bigint {
  const v = parseNumeric(buf, off, len);
  if (v === null) throw new TarFormatError('tar-invalid-header', `invalid numeric field ${field}`);
  return v;
}

function small(v: bigint, field: string): number {
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarFormatError('tar-invalid-header', `${field} out of range: ${v}`);
  return Number(v);
}

/** Parse one 512-byte header block (checksum already verified). */
export function parseHeader(buf: Buffer, off: number): RawHeader {
  const magic = buf.toString('latin1', off + 257, off + 263);
  const version = buf.toString('latin1', off + 263, off + 265);
  const format: RawHeader['format'] = magic === 'ustar\0' ? 'ustar' : magic === 'ustar ' && version === ' \0' ? 'gnu' : 'v7';
  let nameBytes = cstr(buf, off, 100);
  if (format === 'ustar') {
    const prefix = cstr(buf, off + 345, 155);
    if (prefix.length > 0) nameBytes = Buffer.concat([prefix, Buffer.from('/'), nameBytes]);
  }
  const typeByte = buf[off + 156] as number;
  return {
    name: byteName(nameBytes),
    mode: Number(num(buf, off + 100, 8, 'mode') & 0o7777n),
    uid: small(num(buf, off + 108, 8, 'uid'), 'uid'),
    gid: small(num(buf, off + 116, 8, 'gid'), 'gid'),
    size: small(num(buf, off + 124, 12, 'size'), 'size'),
    mtimeSec: num(buf, off + 136, 12, 'mtime'),
    typeflag: typeByte === 0 ? '\0' : String.fromCharCode(typeByte),
    linkname: byteName(cstr(buf, off + 157, 100)),
    uname: cstr(buf, off + 265, 32).toString('utf8'),
    gname: cstr(buf, off + 297, 32).toString('utf8'),
    devmajor: format === 'v7' ? 0 : small(num(buf, off + 329, 8, 'devmajor'), 'devmajor'),
    devminor: format === 'v7' ? 0 : small(num(buf, off + 337, 8, 'devminor'), 'devminor'),
    format,
  };
}

/** A PAX time "sec[.frac]" (sign allowed) → nanoseconds; null when malformed. */
export function parsePaxTime(s: string): bigint | null {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) return null;
  const frac = ((m[3] ?? '') + '000000000').slice(0, 9);
  const ns = BigInt(m[2] as string) * 1_000_000_000n + BigInt(frac);
  return m[1] === '-' ? -ns : ns;
}

function paxInt(v: string, key: string): number {
  if (!/^\d+$/.test(v)) throw new TarFormatError('tar-invalid-pax', `invalid PAX ${key} ${JSON.stringify(v)}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new TarFormatError('tar-invalid-pax', `PAX ${key} out of range`);
  return n;
}

/** Parse PAX extended-header records ("<len> <key>=<value>\n") into `into` (later records win). */
export function parsePax(data: Buffer, into: PaxRecords): void {
  let p = 0;
  while (p < data.length) {
    if (data[p] === 0) break; // trailing NUL padding written by some tools
    const sp = data.indexOf(32, p);
    if (sp < 0) throw new TarFormatError('tar-invalid-pax', 'PAX record without length');
    const lenStr = data.toString('latin1', p, sp);
    if (!/^\d+$/.test(lenStr)) throw new TarFormatError('tar-invalid-pax', `bad PAX record length ${JSON.stringify(lenStr)}`);
    const len = Number(lenStr);
    const end = p + len;
    if (len <= sp - p + 1 || end > data.length || data[end - 1] !== 10) throw new TarFormatError('tar-invalid-pax', 'malformed PAX record');
    const rec = data.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(61);
    if (eq < 0) throw new TarFormatError('tar-invalid-pax', 'PAX record without "="');
    const key = rec.toString('utf8', 0, eq);
    const raw = rec.subarray(eq + 1);
    p = end;
    if (key.startsWith('SCHILY.xattr.')) {
      into.xattrs.push([key.slice('SCHILY.xattr.'.length), Buffer.from(raw)]);
      continue;
    }
    if (key.startsWith('GNU.sparse.')) {
      into.sparse = true;
      continue;
    }
    const v = raw.toString('utf8');
    switch (key) {
      case 'path':
        into.path = byteName(raw);
        break;
      case 'linkpath':
        into.linkpath = byteName(raw);
        break;
      case 'size':
        into.size = paxInt(v, key);
        break;
      case 'uid':
        into.uid = paxInt(v, key);
        break;
      case 'gid':
        into.gid = paxInt(v, key);
        break;
      case 'uname':
        into.uname = v;
        break;
      case 'gname':
        into.gname = v;
        break;
      case 'mtime':
      case 'atime': {
        const t = parsePaxTime(v);
        if (t === null) throw new TarFormatError('tar-invalid-pax', `invalid PAX ${key} ${JSON.stringify(v)}`);
        if (key === 'mtime') into.mtimeNs = t;
        else into.atimeNs = t;
        break;
      }
      default:
        break; // ctime, comment, charset, vendor records: ignored, as Docker does
    }
  }
}
