/** Small I/O helpers of the engine: open flag strings, times, non-blocking reads of special files. */
import { closeSync, openSync, readSync, readdirSync, constants as fsc } from 'node:fs';
import { OverlayError } from '../errors.js';
import { timespecFromNs, S_IFIFO, type Timespec } from '../sys/libc.js';

/** A time for utimes: bigint nanoseconds, a number of seconds, or a Date. */
export type TimeLike = bigint | number | Date;

/** Read what a FIFO/device offers right now without blocking (a FIFO with no writer gives EOF). */
export function readSpecial(real: string, fmt: number): Buffer {
  const fd = openSync(real, fsc.O_RDONLY | (fmt === S_IFIFO ? fsc.O_NONBLOCK : 0));
  try {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as { code?: string }).code === 'EAGAIN') break;
        throw e;
      }
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
      if (fmt !== S_IFIFO && chunks.length >= 16) break;
    }
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

export function readdirNames(dir: string): string[] {
  return readdirSync(dir);
}

export function toTimespec(t: TimeLike | null): Timespec | null {
  if (t === null) return null;
  if (typeof t === 'bigint') return timespecFromNs(t);
  if (t instanceof Date) return timespecFromNs(BigInt(t.getTime()) * 1_000_000n);
  return timespecFromNs(BigInt(Math.round(t * 1e9)));
}

const FLAG_MAP: Record<string, number> = {
  r: fsc.O_RDONLY,
  rs: fsc.O_RDONLY | fsc.O_SYNC,
  sr: fsc.O_RDONLY | fsc.O_SYNC,
  'r+': fsc.O_RDWR,
  'rs+': fsc.O_RDWR | fsc.O_SYNC,
  'sr+': fsc.O_RDWR | fsc.O_SYNC,
  w: fsc.O_TRUNC | fsc.O_CREAT | fsc.O_WRONLY,
  wx: fsc.O_TRUNC | fsc.O_CREAT | fsc.O_WRONLY | fsc.O_EXCL,
  xw: fsc.O_TRUNC | fsc.O_CREAT | fsc.O_WRONLY | fsc.O_EXCL,
  'w+': fsc.O_TRUNC | fsc.O_CREAT | fsc.O_RDWR,
  'wx+': fsc.O_TRUNC | fsc.O_CREAT | fsc.O_RDWR | fsc.O_EXCL,
  'xw+': fsc.O_TRUNC | fsc.O_CREAT | fsc.O_RDWR | fsc.O_EXCL,
  a: fsc.O_APPEND | fsc.O_CREAT | fsc.O_WRONLY,
  ax: fsc.O_APPEND | fsc.O_CREAT | fsc.O_WRONLY | fsc.O_EXCL,
  xa: fsc.O_APPEND | fsc.O_CREAT | fsc.O_WRONLY | fsc.O_EXCL,
  'a+': fsc.O_APPEND | fsc.O_CREAT | fsc.O_RDWR,
  'ax+': fsc.O_APPEND | fsc.O_CREAT | fsc.O_RDWR | fsc.O_EXCL,
  'xa+': fsc.O_APPEND | fsc.O_CREAT | fsc.O_RDWR | fsc.O_EXCL,
};

export function parseFlags(f: string | number): number {
  if (typeof f === 'number') return f;
  const v = FLAG_MAP[f];
  if (v === undefined) throw new OverlayError('EINVAL', 'open', { reason: 'bad-open-flags', detail: f });
  return v;
}

