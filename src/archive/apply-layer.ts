/**
 * applyLayer: detect compression, decompress a compressed layer into a temp file next to the
 * destination (so the extractor can use large positional reads), then run the synchronous extractor
 * (apply-worker-extract.ts) on a worker thread, or inline with `worker: false`. assembleLayer replays
 * a tar-split record (tar-split.ts) against the layer dir to reproduce the original tar exactly.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { OverlayError } from '../errors.js';
import { extractLayerSync, type ExtractParams, type ExtractResult } from './apply-worker-extract.js';
import type { SerializedError, WorkerReply } from './apply-worker.js';
import { decompressToFile } from './compression.js';
import { assembleFromSplit } from './tar-split.js';
import type { ApplyLayerOptions, ApplyLayerResult } from './types.js';

let cachedUmask: number | undefined;
/** The process umask (read once on the main thread; workers cannot read it). */
function umask(): number {
  if (cachedUmask === undefined) {
    const old = process.umask(0o022);
    process.umask(old);
    cachedUmask = old;
  }
  return cachedUmask;
}

function rebuild(s: SerializedError): OverlayError {
  const e = new OverlayError(s.code, s.op, { path: s.path, dest: s.dest, layer: s.layer, reason: s.reason });
  e.message = s.message;
  if (s.stack !== undefined) e.stack = s.stack;
  return e;
}

function runWorker(params: ExtractParams): Promise<ExtractResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./apply-worker.js', import.meta.url), { workerData: params });
    let settled = false;
    w.once('message', (m: WorkerReply) => {
      settled = true;
      if (m.ok) resolve(m.result);
      else reject(rebuild(m.error));
    });
    w.once('error', (e) => {
      if (settled) return;
      settled = true;
      reject(new OverlayError('EIO', 'applyLayer', { path: params.label, dest: params.destDir, reason: 'apply-worker-failed', cause: e, detail: e.message }));
    });
    w.once('exit', (code) => {
      if (settled) return;
      settled = true;
      reject(new OverlayError('EIO', 'applyLayer', { path: params.label, dest: params.destDir, reason: 'apply-worker-failed', detail: `worker exited with ${code}` }));
    });
  });
}

/**
 * Apply an OCI/Docker layer tar (plain, gzip or zstd, detected by magic) into `destDir`
 * (an existing, normally empty, layer `diff` dir), converting `.wh.` entries to 0/0 char devices
 * and `.wh..wh..opq` to the opaque xattr. Hostile entries are refused (EINVAL, reason slug).
 * On error, `destDir` may hold partial content: the caller (store) discards the whole layer.
 * @throws OverlayError EINVAL (reasons tar-entry-escapes-root, tar-entry-through-symlink,
 *   tar-entry-link-escapes-root, tar-entry-overlay-xattr, tar-invalid-whiteout, tar-bad-checksum,
 *   tar-truncated, …), ENOENT (hardlink-target-missing), EEXIST, EOPNOTSUPP (tar-sparse-unsupported).
 */
export async function applyLayer(tarFile: string, destDir: string, opts: ApplyLayerOptions = {}): Promise<ApplyLayerResult> {
  const label = opts.label ?? tarFile;
  const tmp = join(dirname(destDir), `.${basename(destDir)}-apply-${process.pid}-${randomBytes(6).toString('hex')}.tar`);
  try {
    const compression = await decompressToFile(tarFile, tmp, label);
    const created = compression !== 'none';
    const params: ExtractParams = {
      tarFile: created ? tmp : tarFile,
      destDir,
      label,
      userxattr: opts.userxattr === true,
      tarSplitPath: opts.tarSplitPath,
      umask: umask(),
    };
    const r = opts.worker === false ? extractLayerSync(params) : await runWorker(params);
    return { ...r, compression };
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Re-create the exact original (uncompressed) tar from a tar-split record and the layer dir.
 * Writes to `out` with backpressure and leaves it open (the caller ends it).
 * @throws OverlayError EINVAL (tar-split-corrupt), EIO (tar-split-content-mismatch), ENOENT.
 */
export async function assembleLayer(tarSplitPath: string, diffDir: string, out: Writable): Promise<void> {
  await assembleFromSplit(tarSplitPath, diffDir, out);
}
