/**
 * An open file of the engine. Reads and writes go to a real fd at an offset the handle tracks
 * itself, so the engine can swap the fd underneath: when another caller copies the file up, every
 * read-only handle still on the lower copy is re-pointed to the upper one and sees the new data
 * (the kernel's pre-4.19 "stale fd" quirk does not exist here).
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, lstatSync, readSync, writeSync } from 'node:fs';
import { OverlayError, fromNodeError } from '../errors.js';
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
    if (this.metaReal === null) return new OverlayStats(st, this.registry.dev);
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
