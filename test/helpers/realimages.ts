/**
 * The real Docker-made images in ../shared/realimages, decompressed once per machine into a cache
 * under the temp dir (../shared is read-only in CI). Returns paths; callers must not modify them.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { sharedDir } from './requires.js';

const cacheRoot = join(tmpdir(), 'overlay2-realimages-cache');

export function realImagesDir(): string {
  const dir = join(sharedDir(), 'realimages');
  if (!existsSync(join(dir, 'README.md'))) {
    throw new Error(`the real images are not at ${dir}: these tests need the shared folder beside the repository (../shared), or OVERLAY2_SHARED=/path/to/shared`);
  }
  return dir;
}

/** `<name>.tar` (the docker-save archive), decompressed from `<name>.tar.zst`. */
export function realImageArchive(name: 'realbase' | 'edge'): string {
  // Keyed by the compressed file's size and mtime, so a changed input never reuses a stale copy.
  const src = statSync(join(realImagesDir(), `${name}.tar.zst`));
  const out = join(cacheRoot, `${name}-${src.size}-${Math.floor(src.mtimeMs)}.tar`);
  if (existsSync(out)) return out;
  mkdirSync(cacheRoot, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  execFileSync('zstd', ['-q', '-d', '-f', join(realImagesDir(), `${name}.tar.zst`), '-o', tmp]);
  renameSync(tmp, out);
  return out;
}

/** The docker-save archive unpacked into a directory (manifest.json, <id>/layer.tar, config). */
export function realImageDir(name: 'realbase' | 'edge'): string {
  const out = realImageArchive(name).replace(/\.tar$/, '.d');
  if (existsSync(join(out, 'manifest.json'))) return out;
  const archive = realImageArchive(name);
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync('tar', ['-xf', archive, '-C', tmp]);
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  return out;
}

/** Layer tar paths of a real image, bottom layer first, as listed in its manifest.json. */
export function realImageLayers(name: 'realbase' | 'edge'): string[] {
  const dir = realImageDir(name);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const manifest = JSON.parse(execFileSync('cat', [join(dir, 'manifest.json')]).toString()) as Array<{ Layers: string[] }>;
  return (manifest[0]?.Layers ?? []).map((l) => join(dir, l));
}
