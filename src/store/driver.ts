// CONTRACT STUB — owned by the store work; replace the bodies, keep the signatures (add freely).
/**
 * The overlay2 graphdriver: Docker's on-disk layout under `home` (= <data-root>/overlay2):
 * `<home>/<id>/{diff,link,lower,work,merged,committed}` and `<home>/l/<LINKID> -> ../<id>/diff`.
 *
 * Vocabulary: `id` (layer dir name), `parent` (id or null), `lowers` (top→bottom, as in `lower`),
 * `link` (26-char short id). Methods mirror Docker's graphdriver API.
 */
import type { Writable } from 'node:stream';
import { OverlayError } from '../errors.js';
import type { ApplyLayerOptions, ApplyLayerResult, Change, DiffLayerResult } from '../archive/types.js';

export interface DriverOptions {
  /** `overlay2.*` storage options from daemon.json (`overlay2.size=10G`). */
  storageOpts?: string[];
  /** How `get` provides a merged view: the kernel overlay mount (default) or the userspace engine. */
  mountMode?: 'kernel' | 'engine';
}

export interface CreateOptions {
  /** Per-layer storage options (`size`), as `docker run --storage-opt`. */
  storageOpt?: Record<string, string>;
  mountLabel?: string;
}

export class Overlay2Driver {
  private constructor(readonly home: string, readonly options: DriverOptions) {}

  /** Run the prerequisite checks (overlay mount, d_type, backing fs, …) and create `home` and `home/l`. */
  static async init(home: string, options: DriverOptions = {}): Promise<Overlay2Driver> {
    void home; void options;
    throw new OverlayError('ENOSYS', 'init', { path: home });
  }

  async create(id: string, parent: string | null, opts: CreateOptions = {}): Promise<void> { void id; void parent; void opts; throw new OverlayError('ENOSYS', 'create'); }
  async createReadWrite(id: string, parent: string | null, opts: CreateOptions = {}): Promise<void> { void id; void parent; void opts; throw new OverlayError('ENOSYS', 'createReadWrite'); }
  /**
   * Create a read-only layer from a layer tar atomically: nothing named `<id>` is visible until the
   * whole tar applied; on any error nothing is left behind.
   */
  async createFromTar(id: string, parent: string | null, tarFile: string, opts: ApplyLayerOptions = {}): Promise<ApplyLayerResult> { void id; void parent; void tarFile; void opts; throw new OverlayError('ENOSYS', 'createFromTar'); }
  async remove(id: string): Promise<void> { void id; throw new OverlayError('ENOSYS', 'remove'); }
  async exists(id: string): Promise<boolean> { void id; throw new OverlayError('ENOSYS', 'exists'); }
  /** Mount (reference-counted) and return the merged path; base layers return their diff dir. */
  async get(id: string, mountLabel = ''): Promise<string> { void id; void mountLabel; throw new OverlayError('ENOSYS', 'get'); }
  async put(id: string): Promise<void> { void id; throw new OverlayError('ENOSYS', 'put'); }
  /** Docker's Status() pairs, in Docker's order. */
  async status(): Promise<Array<[string, string]>> { throw new OverlayError('ENOSYS', 'status'); }
  async metadata(id: string): Promise<Record<string, string>> { void id; throw new OverlayError('ENOSYS', 'metadata'); }
  async cleanup(): Promise<void> { throw new OverlayError('ENOSYS', 'cleanup'); }
  async diff(id: string, parent: string | null, out: Writable): Promise<DiffLayerResult> { void id; void parent; void out; throw new OverlayError('ENOSYS', 'diff'); }
  async changes(id: string, parent: string | null): Promise<Change[]> { void id; void parent; throw new OverlayError('ENOSYS', 'changes'); }
  async applyDiff(id: string, parent: string | null, tarFile: string, opts: ApplyLayerOptions = {}): Promise<ApplyLayerResult> { void id; void parent; void tarFile; void opts; throw new OverlayError('ENOSYS', 'applyDiff'); }
  async diffSize(id: string, parent: string | null): Promise<number> { void id; void parent; throw new OverlayError('ENOSYS', 'diffSize'); }
}
