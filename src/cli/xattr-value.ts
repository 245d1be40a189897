/**
 * Extended-attribute values on the command line, in the encodings of attr's setfattr(1) and
 * getfattr(1), so values round-trip as bytes: `0x…` is hex, `0s…` is base64, `"…"` is text with
 * backslash-octal escapes, anything else is the text as given. Values are bytes (capabilities,
 * ACLs), never assumed to be UTF-8.
 */
import { OverlayError } from '../errors.js';

export type XattrEncoding = 'text' | 'hex' | 'base64';

const invalid = (value: string, why: string): OverlayError =>
  new OverlayError('EINVAL', 'parse xattr value', { reason: 'bad-xattr-value', detail: `${why}: '${value}'` });

/** The bytes a setfattr(1) `-v` argument stands for. */
export function decodeXattrValue(value: string): Buffer {
  const prefix = value.slice(0, 2).toLowerCase();
  if (prefix === '0x') {
    const hex = value.slice(2);
    if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw invalid(value, 'bad hex value (an even number of hex digits after 0x)');
    return Buffer.from(hex, 'hex');
  }
  if (prefix === '0s') {
    const b64 = value.slice(2);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) throw invalid(value, 'bad base64 value after 0s');
    return Buffer.from(b64, 'base64');
  }
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) return unescapeText(value.slice(1, -1), value);
  return Buffer.from(value, 'utf8');
}

/** `\NNN` (octal), `\\` and `\"` inside a quoted value; other bytes as they are. */
function unescapeText(s: string, whole: string): Buffer {
  const out: number[] = [];
  const bytes = Buffer.from(s, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b !== 0x5c) { out.push(b); continue; }
    const oct = /^[0-7]{1,3}/.exec(bytes.subarray(i + 1, i + 4).toString('latin1'));
    if (oct) {
      const v = parseInt(oct[0], 8);
      if (v > 0xff) throw invalid(whole, 'octal escape out of range');
      out.push(v);
      i += oct[0].length;
    } else if (i + 1 < bytes.length) {
      out.push(bytes[++i]!);
    } else {
      throw invalid(whole, 'trailing backslash');
    }
  }
  return Buffer.from(out);
}

const printable = (b: number): boolean => b >= 0x20 && b < 0x7f;

/**
 * getfattr(1)'s default choice: text when at most one byte in eight is unprintable (a trailing
 * NUL, common in C-string values, not counted), else base64.
 */
export function defaultXattrEncoding(value: Buffer): XattrEncoding {
  const body = value.length > 0 && value[value.length - 1] === 0 ? value.subarray(0, -1) : value;
  let unprintable = 0;
  for (const b of body) if (!printable(b)) unprintable++;
  return unprintable * 8 <= body.length ? 'text' : 'base64';
}

/**
 * A value as getfattr(1) prints it: `"text"`, `0x…` or `0s…`. Unlike getfattr, text keeps a
 * trailing NUL and escapes every unprintable byte (`\NNN`), so the printed value always goes back
 * through setfattr to the same bytes.
 */
export function encodeXattrValue(value: Buffer, enc: XattrEncoding = defaultXattrEncoding(value)): string {
  if (enc === 'hex') return '0x' + value.toString('hex');
  if (enc === 'base64') return '0s' + value.toString('base64');
  let s = '"';
  for (const b of value) {
    if (b === 0x5c || b === 0x22) s += '\\' + String.fromCharCode(b);
    else if (printable(b)) s += String.fromCharCode(b);
    else s += '\\' + b.toString(8).padStart(3, '0');
  }
  return s + '"';
}
