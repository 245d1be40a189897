// CONTRACT STUB — owned by the archive-apply work; replace the bodies, keep the signatures.
import type { Readable } from 'node:stream';
import { OverlayError } from '../errors.js';
import type { Compression } from './types.js';

/** Compression of a file from its first bytes (gzip 1f 8b; zstd 28 b5 2f fd or a skippable frame). */
export async function detectCompression(file: string): Promise<Compression> {
  throw new OverlayError('ENOSYS', 'detectCompression', { path: file });
}

/** A readable of the uncompressed bytes of `file`. */
export async function openDecompressed(file: string): Promise<{ stream: Readable; compression: Compression }> {
  throw new OverlayError('ENOSYS', 'openDecompressed', { path: file });
}
