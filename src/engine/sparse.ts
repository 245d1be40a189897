/**
 * Sparse-aware data copy for copy-up, like the kernel's: holes stay holes (case B30). FICLONE is
 * tried first by the caller. lseek is bound here because src/sys has no wrapper for it yet.
 */
import koffi from 'koffi';
import { ftruncateSync } from 'node:fs';
import { copyFileRange } from '../sys/libc.js';
import { OverlayError } from '../errors.js';
import { errnoName } from '../errno.js';

const lib = koffi.load('libc.so.6');
const lseek = lib.func('int64_t lseek(int fd, int64_t offset, int whence)');

const SEEK_SET = 0;
const SEEK_DATA = 3;

function seek(fd: number, off: number, whence: number): number | null {
  const r = Number(lseek(fd, off, whence));
  if (r >= 0) return r;
  const code = errnoName(koffi.errno());
  if (code === 'ENXIO') return null; // no data at or after off
  throw new OverlayError(code, 'lseek');
}

const CHUNK = 1 << 20;

/**
 * Copy `size` bytes of inFd to outFd (outFd empty), the kernel's way (ovl_copy_up_file): 1 MiB
 * chunks; before a chunk, SEEK_DATA from the current position and skip the hole if data starts
 * later; a chunk with data is copied whole. Then the size is set, so trailing holes stay too.
 * Same algorithm, same allocation as a kernel copy-up of the same file.
 */
export function copySparse(inFd: number, outFd: number, size: number): void {
  let pos = 0;
  let dataPos = 0;
  let skipHole = true;
  let len = size;
  while (len > 0) {
    const thisLen = Math.min(len, CHUNK);
    if (skipHole && dataPos < pos) {
      let d: number | null;
      try {
        d = seek(inFd, pos, SEEK_DATA);
      } catch (e) {
        void e; // a lower fs without SEEK_DATA: copy everything, like the kernel
        d = pos;
        skipHole = false;
      }
      if (d === null) break;
      dataPos = d;
      if (d > pos) {
        len -= d - pos;
        pos = d;
        continue;
      }
    }
    seek(inFd, pos, SEEK_SET);
    seek(outFd, pos, SEEK_SET);
    let left = thisLen;
    while (left > 0) {
      const n = copyFileRange(inFd, outFd, left);
      if (n === 0) break;
      left -= n;
    }
    const copied = thisLen - left;
    if (copied === 0) break;
    pos += copied;
    len -= copied;
  }
  ftruncateSync(outFd, size);
}
