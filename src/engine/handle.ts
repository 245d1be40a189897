/**
 * An open file of the engine. Reads and writes go to a real fd at an offset the handle tracks
 * itself, so the engine can swap the fd underneath: when another caller copies the file up, every
 * read-only handle still on the lower copy is re-pointed to the upper one and sees the new data
 * (the kernel's pre-4.19 "stale fd" quirk does not exist here).
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, lstatSync, readSync, writeSync } from 'node:fs';
import { OverlayError, fromNodeError } from '../errors.js';
import { copyFileRange, lseek, SEEK_SET } from '../sys/libc.js';
import { OverlayStats } from './stats.js';

export interface HandleRegistry {
  release(h: OverlayFileHandle): void;
  readonly dev: bigint;
}

export class OverlayFileHandle {
  /** @internal current real fd */
  fd: number;
  /** @internal real path behind fd */
  real: string;
  /** @internal the upper inode holding the metadata while fd reads a metacopy file's lower data */
  metaReal: string | null = null;
  /** @internal a merged directory (upper and lower, or two lowers): nlink 1, as the kernel reports */
  mergedDir = false;
  private pos = 0;
  private closed = false;

  constructor(
    private readonly registry: HandleRegistry,
    fd: number,
    real: string,
    /** The merged path this handle was opened with. */
    readonly path: string,
    readonly flags: { read: boolean; write: boolean; append: boolean; isDir: boolean },
  ) {
    this.fd = fd;
    this.real = real;
  }

  private check(op: string): void {
    if (this.closed) throw new OverlayError('EBADF', op, { path: this.path });
  }

  async read(buffer: Uint8Array, offset = 0, length = buffer.length - offset, position: number | null = null): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    this.check('read');
    if (this.flags.isDir) throw new OverlayError('EISDIR', 'read', { path: this.path });
    if (!this.flags.read) throw new OverlayError('EBADF', 'read', { path: this.path });
    try {
      const at = position ?? this.pos;
      const n = readSync(this.fd, buffer, offset, length, at);
      if (position === null) this.pos = at + n;
      return { bytesRead: n, buffer };
    } catch (e) {
      throw fromNodeError(e, 'read', { path: this.path });
    }
  }

  async write(data: Uint8Array | string, position: number | null = null): Promise<{ bytesWritten: number }> {
    this.check('write');
    if (!this.flags.write) throw new OverlayError('EBADF', 'write', { path: this.path });
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    try {
      let done = 0;
      while (done < buf.length) {
        const at = this.flags.append ? null : (position ?? this.pos) + done;
        done += writeSync(this.fd, buf, done, buf.length - done, at);
      }
      if (position === null && !this.flags.append) this.pos += done;
      return { bytesWritten: done };
    } catch (e) {
      throw fromNodeError(e, 'write', { path: this.path });
    }
  }

  async readFile(): Promise<Buffer> {
    const st = fstatSync(this.fd);
    const out = Buffer.alloc(Number(st.size));
    let got = 0;
    while (got < out.length) {
      const { bytesRead } = await this.read(out, got, out.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return out.subarray(0, got);
  }

  /**
   * Copy everything `srcFd` (any fd, e.g. a host file) holds from its current offset to this
   * handle's position: inside the kernel with copy_file_range, through a buffer only when the
   * kernel cannot (another filesystem type, an append-only handle). Returns the bytes copied.
   */
  async copyFrom(srcFd: number): Promise<number> {
    this.check('write');
    if (!this.flags.write) throw new OverlayError('EBADF', 'write', { path: this.path });
    try {
      let done = 0;
      if (!this.flags.append) {
        lseek(this.fd, this.pos, SEEK_SET);
        done = kernelCopy(srcFd, this.fd);
      }
      if (done >= 0) {
        this.pos += done;
        return done;
      }
      const n = bufferCopy(srcFd, null, this.fd, this.flags.append ? null : this.pos);
      if (!this.flags.append) this.pos += n;
      return n;
    } catch (e) {
      throw fromNodeError(e, 'write', { path: this.path });
    }
  }

  /** Copy the rest of this file (from the handle's position) to `dstFd` at its offset, like copyFrom. */
  async copyTo(dstFd: number): Promise<number> {
    this.check('read');
    if (this.flags.isDir) throw new OverlayError('EISDIR', 'read', { path: this.path });
    if (!this.flags.read) throw new OverlayError('EBADF', 'read', { path: this.path });
    try {
      lseek(this.fd, this.pos, SEEK_SET);
      let n = kernelCopy(this.fd, dstFd);
      if (n < 0) n = bufferCopy(this.fd, this.pos, dstFd, null);
      this.pos += n;
      return n;
    } catch (e) {
      throw fromNodeError(e, 'read', { path: this.path });
    }
  }

  async truncate(len = 0): Promise<void> {
    this.check('ftruncate');
    if (!this.flags.write) throw new OverlayError('EINVAL', 'ftruncate', { path: this.path });
    try {
      ftruncateSync(this.fd, len);
    } catch (e) {
      throw fromNodeError(e, 'ftruncate', { path: this.path });
    }
  }

  async sync(): Promise<void> {
    this.check('fsync');
    fsyncSync(this.fd);
  }

  async stat(): Promise<OverlayStats> {
    this.check('fstat');
    const st = fstatSync(this.fd, { bigint: true });
    if (this.metaReal === null) return new OverlayStats(st, this.registry.dev, this.mergedDir ? 1 : undefined);
    // A metacopy file: metadata from the upper inode, blocks from the data (kernel ovl_getattr).
    const out = new OverlayStats(lstatSync(this.metaReal, { bigint: true }), this.registry.dev);
    out.blocks = st.blocks;
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.registry.release(this);
    closeSync(this.fd);
  }
}

const CHUNK = 1 << 20;

/** copy_file_range until EOF; -1 when the kernel refuses before copying anything (use a buffer). */
function kernelCopy(inFd: number, outFd: number): number {
  let total = 0;
  for (;;) {
    let n: number;
    try {
      n = copyFileRange(inFd, outFd, CHUNK * 64);
    } catch (e) {
      const c = (e as { code?: string }).code;
      if (total === 0 && (c === 'EXDEV' || c === 'EINVAL' || c === 'ENOSYS' || c === 'EOPNOTSUPP' || c === 'EBADF')) return -1;
      throw e;
    }
    if (n === 0) return total;
    total += n;
  }
}

/** The fallback: pread/pwrite in 1 MiB pieces (null position = the fd's own offset). */
function bufferCopy(inFd: number, inPos: number | null, outFd: number, outPos: number | null): number {
  const buf = Buffer.alloc(CHUNK);
  let total = 0;
  for (;;) {
    const n = readSync(inFd, buf, 0, CHUNK, inPos === null ? null : inPos + total);
    if (n === 0) return total;
    let w = 0;
    while (w < n) w += writeSync(outFd, buf, w, n - w, outPos === null ? null : outPos + total + w);
    total += n;
  }
}
