/**
 * The outer `docker save` tar, byte for byte as Docker 20.10 writes it: Go archive/tar headers
 * (USTAR magic `ustar\0` + version `00`, numeric fields as zero-padded octal + NUL, checksum as
 * 6 octal digits + NUL + space, mode with the file-type bits, uname/gname `root`), no record
 * padding: the archive ends with two zero blocks right after the last member.
 */
import { OverlayError } from '../errors.js';

export const BLOCK = 512;
const MAX_OCTAL_11 = 0o77777777777;

export interface OuterEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number; // permission bits only
  size: number;
  mtime: number; // seconds
  linkname?: string;
}

function putString(buf: Buffer, off: number, len: number, s: string, what: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length > len) throw new OverlayError('ENAMETOOLONG', 'writeTarHeader', { path: s, reason: 'tar-field-too-long', detail: what });
  b.copy(buf, off);
}

function putOctal(buf: Buffer, off: number, len: number, n: number, what: string): void {
  const digits = len - 1;
  if (n < 0 || n > 8 ** digits - 1) throw new OverlayError('EFBIG', 'writeTarHeader', { reason: 'tar-field-overflow', detail: `${what}=${n}` });
  buf.write(n.toString(8).padStart(digits, '0'), off, 'ascii');
  buf[off + digits] = 0;
}

/** Split a long name into USTAR prefix/name the way Go does (prefix ≤ 155, name ≤ 100, at a '/'). */
function splitName(name: string): [string, string] {
  if (Buffer.byteLength(name) <= 100) return ['', name];
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== '') return [prefix, rest];
  }
  throw new OverlayError('ENAMETOOLONG', 'writeTarHeader', { path: name, reason: 'tar-name-too-long' });
}

export function encodeHeader(e: OuterEntry): Buffer {
  const h = Buffer.alloc(BLOCK);
  const [prefix, name] = splitName(e.name);
  putString(h, 0, 100, name, 'name');
  const typeBits = e.type === 'dir' ? 0o040000 : e.type === 'symlink' ? 0o120000 : 0o100000;
  putOctal(h, 100, 8, typeBits | (e.mode & 0o7777), 'mode');
  putOctal(h, 108, 8, 0, 'uid');
  putOctal(h, 116, 8, 0, 'gid');
  if (e.size > MAX_OCTAL_11) throw new OverlayError('EFBIG', 'writeTarHeader', { path: e.name, reason: 'tar-member-too-large' });
  putOctal(h, 124, 12, e.size, 'size');
  putOctal(h, 136, 12, Math.max(0, e.mtime), 'mtime');
  h.fill(0x20, 148, 156);
  h.write(e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0', 156, 'ascii');
  if (e.linkname !== undefined) putString(h, 157, 100, e.linkname, 'linkname');
  h.write('ustar\0', 257, 'binary');
  h.write('00', 263, 'ascii');
  putString(h, 265, 32, 'root', 'uname');
  putString(h, 297, 32, 'root', 'gname');
  putOctal(h, 329, 8, 0, 'devmajor');
  putOctal(h, 337, 8, 0, 'devminor');
  putString(h, 345, 155, prefix, 'prefix');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0'), 148, 'ascii');
  h[154] = 0;
  h[155] = 0x20;
  return h;
}

/** Zero bytes that pad a member of `size` bytes to a whole block. */
export function padding(size: number): Buffer {
  const rem = size % BLOCK;
  return Buffer.alloc(rem === 0 ? 0 : BLOCK - rem);
}

export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
