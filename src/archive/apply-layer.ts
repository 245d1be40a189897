// CONTRACT STUB — owned by the archive-apply work; replace the bodies, keep the signatures.
import type { Writable } from 'node:stream';
import { OverlayError } from '../errors.js';
import type { ApplyLayerOptions, ApplyLayerResult } from './types.js';

/**
 * Apply an OCI/Docker layer tar (plain, gzip or zstd, detected by magic) into `destDir`
 * (an existing, normally empty, layer `diff` dir), converting `.wh.` entries to 0/0 char devices
 * and `.wh..wh..opq` to the opaque xattr. Hostile entries are refused (EINVAL, reason slug).
 * On error, `destDir` may hold partial content: the caller (store) discards the whole layer.
 */
export async function applyLayer(tarFile: string, destDir: string, opts: ApplyLayerOptions = {}): Promise<ApplyLayerResult> {
  void opts;
  throw new OverlayError('ENOSYS', 'applyLayer', { path: tarFile, dest: destDir });
}

/** Re-create the exact original (uncompressed) tar from a tar-split record and the layer dir. */
export async function assembleLayer(tarSplitPath: string, diffDir: string, out: Writable): Promise<void> {
  void out;
  throw new OverlayError('ENOSYS', 'assembleLayer', { path: tarSplitPath, dest: diffDir });
}
