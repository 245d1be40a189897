/** Test helpers: collect a tar into memory, and read it back with tar-stream (an independent parser). */
import { Writable } from 'node:stream';
import tarStream from 'tar-stream';

export class Collector extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.chunks.push(chunk);
    cb();
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export interface ReadEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  size: number;
  mtime: number;
  linkname: string;
  pax: Record<string, string>;
  body: Buffer;
}

export async function readTar(data: Buffer): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  const ex = tarStream.extract();
  ex.on('entry', (h, stream, next) => {
    const parts: Buffer[] = [];
    stream.on('data', (c: unknown) => parts.push(c as Buffer));
    stream.on('end', () => {
      const pax = (h.pax ?? {}) as Record<string, string>;
      out.push({
        name: h.name, type: h.type ?? 'file', mode: h.mode ?? 0, uid: pax['uid'] !== undefined ? Number(pax['uid']) : h.uid ?? 0,
        gid: pax['gid'] !== undefined ? Number(pax['gid']) : h.gid ?? 0,
        uname: h.uname ?? '', gname: h.gname ?? '', size: h.size ?? 0,
        mtime: pax['mtime'] !== undefined ? Number(pax['mtime']) : h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0,
        linkname: h.linkname ?? '', pax, body: Buffer.concat(parts),
      });
      next();
    });
  });
  const done = new Promise<void>((res, rej) => { ex.on('finish', res); ex.on('error', rej); });
  ex.end(data);
  await done;
  return out;
}
