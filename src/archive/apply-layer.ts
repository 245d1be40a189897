/**
 * applyLayer: detect compression, decompress a compressed layer into a temp file next to the
 * destination (so the extractor can use large positional reads), then run the synchronous extractor
 * (apply-worker-extract.ts) on a worker thread, or inline with `worker: false`. assembleLayer replays
 * a tar-split record (tar-split.ts) against the layer dir to reproduce the original tar exactly.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { OverlayError, hasCode } from '../errors.js';
import { extractLayerSync, type ExtractParams, type ExtractResult } from './apply-worker-extract.js';
import type { SerializedError, WorkerReply } from './apply-worker.js';
import { decompressToFile } from './compression.js';
import { assembleFromSplit } from './tar-split.js';
import type { ApplyLayerOptions, ApplyLayerResult } from './types.js';

/**
 * The process umask, for the workers (which cannot read it). Read from /proc (no race); the
 * set-and-restore fallback briefly changes it, so it is used only where /proc is missing.
 */
function umask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return parseInt(m[1] as string, 8);
  } catch (e) {
    if (!hasCode(e, 'ENOENT', 'EACCES')) throw e;
  }
  const old = process.umask(0o022);
  process.umask(old);
  return old;
}

function rebuild(s: SerializedError): OverlayError {
  const e = new OverlayError(s.code, s.op, { path: s.path, dest: s.dest, layer: s.layer, reason: s.reason });
  e.message = s.message;
  if (s.stack !== undefined) e.stack = s.stack;
  return e;
}

interface Job {
  id: number;
  params: ExtractParams;
  resolve: (r: ExtractResult) => void;
  reject: (e: unknown) => void;
}

/**
 * A small pool of long-lived extraction workers (one layer at a time each, at most 2: the probe
 * found more parallel layers buy nothing on this machine kind). Idle workers are unref'd so they
 * never keep the process alive, and are terminated after a few idle seconds.
 */
class WorkerPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  private readonly timers = new Map<Worker, NodeJS.Timeout>();
  private nextId = 1;
  constructor(private readonly max: number) {}

  run(params: ExtractParams): Promise<ExtractResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, params, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let w = this.idle.pop();
      if (!w) {
        if (this.busy.size >= this.max) return;
        w = this.spawn();
      }
      const t = this.timers.get(w);
      if (t) clearTimeout(t);
      this.timers.delete(w);
      const job = this.queue.shift() as Job;
      this.busy.set(w, job);
      w.ref();
      w.postMessage({ id: job.id, params: job.params });
    }
  }

  private spawn(): Worker {
    const w = new Worker(new URL('./apply-worker.js', import.meta.url));
    w.on('message', (m: { id: number; reply: WorkerReply }) => {
      const job = this.busy.get(w);
      if (!job || job.id !== m.id) return;
      this.busy.delete(w);
      if (m.reply.ok) job.resolve(m.reply.result);
      else job.reject(rebuild(m.reply.error));
      this.release(w);
    });
    const die = (detail: string, cause?: unknown): void => {
      const job = this.busy.get(w);
      this.busy.delete(w);
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
      const t = this.timers.get(w);
      if (t) clearTimeout(t);
      this.timers.delete(w);
      if (job) {
        job.reject(new OverlayError('EIO', 'applyLayer', { path: job.params.label, dest: job.params.destDir, reason: 'apply-worker-failed', detail, cause }));
      }
      this.pump();
    };
    w.on('error', (e) => die(e.message, e));
    w.on('exit', (code) => die(`worker exited with ${code}`));
    return w;
  }

  private release(w: Worker): void {
    w.unref();
    this.idle.push(w);
    const t = setTimeout(() => {
      const i = this.idle.indexOf(w);
      if (i >= 0) {
        this.idle.splice(i, 1);
        this.timers.delete(w);
        void w.terminate();
      }
    }, 5000);
    t.unref();
    this.timers.set(w, t);
    this.pump();
  }
}

const pool = new WorkerPool(2);

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
    const r = opts.worker === false ? extractLayerSync(params) : await pool.run(params);
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
