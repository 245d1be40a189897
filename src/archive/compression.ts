/**
 * Layer compression, chosen from the magic bytes only (media types lie; B22): gzip `1f 8b`, zstd
 * `28 b5 2f fd`, or a zstd skippable frame `5? 2a 4d 18` in front of the data frame; anything else
 * is an uncompressed tar. gzip goes through node:zlib. Node 20 has no zstd, so the `zstd` CLI is
 * streamed (fast, its own process), with the pure-JS `fzstd` as the fallback when it is absent.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { OverlayError, fromNodeError, isNotFound } from '../errors.js';
import type { Compression } from './types.js';

/** Compression of a file from its first bytes (gzip 1f 8b; zstd 28 b5 2f fd or a skippable frame). */
export async function detectCompression(file: string): Promise<Compression> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (e) {
    throw fromNodeError(e, 'detectCompression', { path: file });
  }
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return compressionOf(b.subarray(0, bytesRead));
  } catch (e) {
    throw fromNodeError(e, 'detectCompression', { path: file });
  } finally {
    await fh.close();
  }
}

/** Compression from the leading bytes of a blob. */
export function compressionOf(b: Uint8Array): Compression {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return 'zstd';
  if (b.length >= 4 && ((b[0] as number) & 0xf0) === 0x50 && b[1] === 0x2a && b[2] === 0x4d && b[3] === 0x18) return 'zstd';
  return 'none';
}

let zstdCli: boolean | undefined;
/** Whether the `zstd` binary can be run (probed once). */
async function haveZstdCli(): Promise<boolean> {
  if (zstdCli !== undefined) return zstdCli;
  zstdCli = await new Promise<boolean>((resolve) => {
    const p = spawn('zstd', ['--version'], { stdio: 'ignore' });
    p.on('error', () => resolve(false));
    p.on('close', (code) => resolve(code === 0));
  });
  return zstdCli;
}

/** Testing hook: force the fzstd fallback (true) or re-probe for the CLI (false). */
export function forceZstdFallback(on: boolean): void {
  zstdCli = on ? false : undefined;
}

function decompressError(file: string, detail: string, cause?: unknown): OverlayError {
  return new OverlayError('EINVAL', 'decompress', { path: file, reason: 'layer-decompress-failed', detail, cause });
}

function zstdCliStream(file: string): Readable {
  const out = new PassThrough();
  const p = spawn('zstd', ['-d', '-c', '-q', '--', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => {
    if (err.length < 4096) err += d.toString();
  });
  p.stdout.pipe(out, { end: false });
  p.on('error', (e) => out.destroy(decompressError(file, e.message, e)));
  p.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(decompressError(file, `zstd exited ${code}: ${err.trim()}`));
  });
  out.on('close', () => {
    if (p.exitCode === null) p.kill();
  });
  return out;
}

function fzstdTransform(file: string): Transform {
  const t: Transform = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        dec.push(chunk);
        cb();
      } catch (e) {
        cb(decompressError(file, (e as Error).message, e));
      }
    },
    flush(cb) {
      try {
        dec.push(new Uint8Array(0), true);
        cb();
      } catch (e) {
        cb(decompressError(file, (e as Error).message, e));
      }
    },
  });
  const dec = new Decompress((data) => {
    t.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  return t;
}

/** A readable of the uncompressed bytes of `file`. */
export async function openDecompressed(file: string): Promise<{ stream: Readable; compression: Compression }> {
  const compression = await detectCompression(file);
  if (compression === 'none') return { stream: createReadStream(file), compression };
  if (compression === 'gzip') {
    const gz = createGunzip();
    const src = createReadStream(file);
    src.on('error', (e) => gz.destroy(fromNodeError(e, 'decompress', { path: file })));
    return { stream: src.pipe(gz), compression };
  }
  if (await haveZstdCli()) return { stream: zstdCliStream(file), compression };
  const src = createReadStream(file);
  const t = fzstdTransform(file);
  src.on('error', (e) => t.destroy(fromNodeError(e, 'decompress', { path: file })));
  return { stream: src.pipe(t), compression };
}

/**
 * Decompress `file` into `out` (created, must not exist); resolves to the compression found. For
 * 'none' nothing is written and the caller should read `file` directly.
 */
export async function decompressToFile(file: string, out: string, label = file): Promise<Compression> {
  const compression = await detectCompression(file);
  if (compression === 'none') return compression;
  if (compression === 'zstd' && (await haveZstdCli())) {
    await new Promise<void>((resolve, reject) => {
      const p = spawn('zstd', ['-d', '-q', '--no-progress', '-o', out, '--', file], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d: Buffer) => {
        if (err.length < 4096) err += d.toString();
      });
      p.on('error', (e) => reject(decompressError(label, e.message, e)));
      p.on('close', (code) => (code === 0 ? resolve() : reject(decompressError(label, `zstd exited ${code}: ${err.trim()}`))));
    });
    return compression;
  }
  const transform = compression === 'gzip' ? createGunzip() : fzstdTransform(label);
  try {
    await pipeline(createReadStream(file), transform, createWriteStream(out, { flags: 'wx' }));
  } catch (e) {
    if (e instanceof OverlayError) throw e;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('Z_')) throw decompressError(label, (e as Error).message, e);
    if (isNotFound(e)) throw fromNodeError(e, 'decompress', { path: file });
    throw fromNodeError(e, 'decompress', { path: label });
  }
  return compression;
}
