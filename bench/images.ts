/**
 * The real `edge` image (../shared/realimages/edge.tar.zst, 14 layers), decompressed once into the
 * same cache the tests use (<tmp>/overlay2-realimages-cache), so a benchmark after `npm test` reads
 * no zstd. Re-implemented here so bench/ does not depend on test code.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cacheRoot = join(tmpdir(), 'overlay2-realimages-cache');

export function sharedDir(): string {
  return process.env['OVERLAY2_SHARED'] ?? join(process.cwd(), '..', 'shared');
}

export function realImagesDir(): string {
  const d = join(sharedDir(), 'realimages');
  if (!existsSync(join(d, 'edge.tar.zst'))) {
    throw new Error(`bench: ${d}/edge.tar.zst not found; set OVERLAY2_SHARED to the shared dir (e.g. /work/shared)`);
  }
  return d;
}

/** edge.tar (docker save archive). */
export function edgeArchive(): string {
  const out = join(cacheRoot, 'edge.tar');
  if (existsSync(out)) return out;
  mkdirSync(cacheRoot, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  execFileSync('zstd', ['-q', '-d', '-f', join(realImagesDir(), 'edge.tar.zst'), '-o', tmp]);
  renameSync(tmp, out);
  return out;
}

/** The archive unpacked (manifest.json, <id>/layer.tar). */
export function edgeDir(): string {
  const out = join(cacheRoot, 'edge.d');
  if (existsSync(join(out, 'manifest.json'))) return out;
  const archive = edgeArchive();
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync('tar', ['-xf', archive, '-C', tmp]);
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  return out;
}

/** Layer tar paths, bottom layer first. */
export function edgeLayers(): string[] {
  const dir = edgeDir();
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
  return (manifest[0]?.Layers ?? []).map((l) => join(dir, l));
}
