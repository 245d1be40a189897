/**
 * A tiny tar writer for tests: build layer tars in code, including the odd corners (PAX records,
 * GNU LongLink, ustar prefix names, base-256 numbers, broken checksums, trailing bytes).
 *
 *   tarOf([{ name: 'etc/', type: 'dir' }, { name: 'etc/hosts', body: 'x', mode: 0o644 }])
 *
 * Names longer than 100 bytes are encoded with `longName` ('pax' by default, or 'gnu' / 'prefix');
 * times and ids that do not fit the octal fields go to PAX records (or base-256 with `numeric: 'base256'`).
 */

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';

export interface TarEntrySpec {
  name: string;
  /** Entry type, or a raw one-character typeflag. Default 'file' ('dir' when the name ends in '/'). */
  type?: TarEntryType | string;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Seconds since the epoch; fractional or negative values are allowed. Default 1700000000. */
  mtime?: number;
  /** Exact PAX mtime string (e.g. "1569617781.373654605"), overriding `mtime` in a PAX record. */
  paxMtime?: string;
  body?: string | Buffer;
  linkname?: string;
  /** Extra PAX records (key → value). */
  pax?: Record<string, string | Buffer>;
  /** SCHILY.xattr.<name> PAX records. */
  xattrs?: Record<string, string | Buffer>;
  devmajor?: number;
  devminor?: number;
  /** How to store a name (or link name) over 100 bytes. */
  longName?: 'pax' | 'gnu' | 'prefix';
  /** Encoding of numbers that do not fit octal: PAX records (default) or GNU base-256. */
  numeric?: 'pax' | 'base256';
  /** Override the header size field (the body is still written as given). */
  headerSize?: number;
  /** Corrupt the header checksum. */
  badChecksum?: boolean;
}

export interface TarOptions {
  /** Header magic: 'ustar' ("ustar\0" "00", default) or 'gnu' ("ustar " " \0"). */
  format?: 'ustar' | 'gnu';
  /** Write the two zero end blocks (default true). */
  end?: boolean;
  /** Pad the archive to a multiple of this many bytes after the end blocks (e.g. 10240). */
  recordSize?: number;
  /** Extra bytes after everything else. */
  trailing?: Buffer;
}

const TYPEFLAGS: Record<TarEntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octal(buf: Buffer, off: number, len: number, v: number): boolean {
  if (!Number.isInteger(v) || v < 0 || v >= 8 ** (len - 1)) return false;
  buf.write(v.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
  return true;
}

function base256(buf: Buffer, off: number, len: number, v: bigint): void {
  let x = BigInt.asUintN(len * 8, v);
  for (let i = len - 1; i >= 0; i--) {
    buf[off + i] = Number(x & 0xffn);
    x >>= 8n;
  }
  buf[off] = v < 0n ? 0xff : ((buf[off] as number) & 0x7f) | 0x80;
}

function paxRecord(key: string, value: string | Buffer): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const tail = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), v, Buffer.from('\n')]);
  let len = tail.length + 1;
  while (String(len).length + tail.length !== len) len = String(len).length + tail.length;
  return Buffer.concat([Buffer.from(String(len)), tail]);
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

interface HeaderFields {
  name: Buffer;
  prefix?: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: Buffer;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  numeric: 'pax' | 'base256';
  badChecksum?: boolean;
}

function header(f: HeaderFields, format: 'ustar' | 'gnu'): Buffer {
  const b = Buffer.alloc(512);
  f.name.copy(b, 0, 0, Math.min(100, f.name.length));
  octal(b, 100, 8, f.mode);
  if (!octal(b, 108, 8, f.uid)) base256(b, 108, 8, BigInt(f.uid));
  if (!octal(b, 116, 8, f.gid)) base256(b, 116, 8, BigInt(f.gid));
  if (!octal(b, 124, 12, f.size)) base256(b, 124, 12, BigInt(f.size));
  if (!octal(b, 136, 12, Math.trunc(f.mtime))) base256(b, 136, 12, BigInt(Math.floor(f.mtime)));
  b.write(f.typeflag, 156, 1, 'latin1');
  f.linkname.copy(b, 157, 0, Math.min(100, f.linkname.length));
  if (format === 'gnu') b.write('ustar  \0', 257, 8, 'latin1');
  else b.write('ustar\0' + '00', 257, 8, 'latin1');
  b.write(f.uname, 265, 32, 'utf8');
  b.write(f.gname, 297, 32, 'utf8');
  octal(b, 329, 8, f.devmajor);
  octal(b, 337, 8, f.devminor);
  if (f.prefix) f.prefix.copy(b, 345, 0, Math.min(155, f.prefix.length));
  b.fill(32, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  if (f.badChecksum) sum += 1;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

function splitPrefix(name: Buffer): { prefix: Buffer; name: Buffer } | null {
  for (let i = Math.min(name.length - 1, 155); i > 0; i--) {
    if (name[i] === 47 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) {
      return { prefix: name.subarray(0, i), name: name.subarray(i + 1) };
    }
  }
  return null;
}

/** The bytes of one entry (including any PAX / GNU long-name entries in front of it). */
export function tarEntry(e: TarEntrySpec, format: 'ustar' | 'gnu' = 'ustar'): Buffer {
  const body = e.body === undefined ? Buffer.alloc(0) : typeof e.body === 'string' ? Buffer.from(e.body, 'utf8') : e.body;
  const type = e.type ?? (e.name.endsWith('/') ? 'dir' : 'file');
  const typeflag = type in TYPEFLAGS ? TYPEFLAGS[type as TarEntryType] : type;
  const numeric = e.numeric ?? 'pax';
  const pax: Array<[string, string | Buffer]> = [];
  const parts: Buffer[] = [];
  let name: Buffer = Buffer.from(e.name, 'utf8');
  let prefix: Buffer | undefined;
  let linkname: Buffer = Buffer.from(e.linkname ?? '', 'utf8');
  const longMode = e.longName ?? 'pax';
  const gnuLong = (flag: 'L' | 'K', data: Buffer): void => {
    const d = Buffer.concat([data, Buffer.from([0])]);
    parts.push(header({ name: Buffer.from('././@LongLink'), mode: 0o644, uid: 0, gid: 0, size: d.length, mtime: 0, typeflag: flag, linkname: Buffer.alloc(0), uname: '', gname: '', devmajor: 0, devminor: 0, numeric }, 'gnu'), d, pad(d.length));
  };
  if (name.length > 100) {
    if (longMode === 'gnu') {
      gnuLong('L', name);
      name = name.subarray(0, 100);
    } else if (longMode === 'prefix') {
      const s = splitPrefix(name);
      if (!s) throw new Error(`name cannot be split into ustar prefix/name: ${e.name}`);
      prefix = s.prefix;
      name = s.name;
    } else {
      pax.push(['path', e.name]);
      name = name.subarray(0, 100);
    }
  }
  if (linkname.length > 100) {
    if (longMode === 'gnu') gnuLong('K', linkname);
    else pax.push(['linkpath', e.linkname as string]);
    linkname = linkname.subarray(0, 100);
  }
  const mtime = e.mtime ?? 1700000000;
  const uid = e.uid ?? 0;
  const gid = e.gid ?? 0;
  if (numeric === 'pax') {
    if (!Number.isInteger(mtime) || mtime < 0 || mtime >= 8 ** 11) pax.push(['mtime', String(mtime)]);
    if (uid >= 8 ** 7) pax.push(['uid', String(uid)]);
    if (gid >= 8 ** 7) pax.push(['gid', String(gid)]);
  }
  if (e.paxMtime !== undefined) pax.push(['mtime', e.paxMtime]);
  for (const [k, v] of Object.entries(e.xattrs ?? {})) pax.push([`SCHILY.xattr.${k}`, v]);
  for (const [k, v] of Object.entries(e.pax ?? {})) pax.push([k, v]);
  if (pax.length > 0) {
    const data = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
    const pname = Buffer.from(`PaxHeaders.0/${e.name.replace(/\/$/, '').split('/').pop() ?? ''}`.slice(0, 99));
    parts.push(header({ name: pname, mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0, typeflag: 'x', linkname: Buffer.alloc(0), uname: '', gname: '', devmajor: 0, devminor: 0, numeric }, format), data, pad(data.length));
  }
  const safeMtime = numeric === 'pax' && (!Number.isInteger(mtime) || mtime < 0 || mtime >= 8 ** 11) ? 0 : mtime;
  parts.push(
    header(
      {
        name,
        ...(prefix ? { prefix } : {}),
        mode: e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
        uid: numeric === 'pax' && uid >= 8 ** 7 ? 0 : uid,
        gid: numeric === 'pax' && gid >= 8 ** 7 ? 0 : gid,
        size: e.headerSize ?? body.length,
        mtime: safeMtime,
        typeflag,
        linkname,
        uname: e.uname ?? '',
        gname: e.gname ?? '',
        devmajor: e.devmajor ?? 0,
        devminor: e.devminor ?? 0,
        numeric,
        badChecksum: e.badChecksum ?? false,
      },
      format,
    ),
  );
  if (body.length > 0) parts.push(body, pad(body.length));
  return Buffer.concat(parts);
}

/** A whole tar archive from entry specs. */
export function tarOf(entries: TarEntrySpec[], opts: TarOptions = {}): Buffer {
  const format = opts.format ?? 'ustar';
  const parts = entries.map((e) => tarEntry(e, format));
  if (opts.end ?? true) parts.push(Buffer.alloc(1024));
  let out = Buffer.concat(parts);
  if (opts.recordSize) out = Buffer.concat([out, Buffer.alloc((opts.recordSize - (out.length % opts.recordSize)) % opts.recordSize)]);
  if (opts.trailing) out = Buffer.concat([out, opts.trailing]);
  return out;
}
