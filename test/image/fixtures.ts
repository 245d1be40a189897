/** Small images built in code for the image tests: layer tars, docker-save archives, OCI layouts. */
import { mkdirSync, readdirSync, lstatSync, readlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import tar from 'tar-stream';
import { writeDockerSave } from '../../src/image/save.js';
import { chainIds, sha256Digest } from '../../src/image/digest.js';
import { parseTagRef } from '../../src/image/reference.js';

export interface FixtureEntry { name: string; type?: 'file' | 'directory' | 'symlink'; content?: string; mode?: number; linkname?: string }

export async function layerTar(entries: FixtureEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => { for await (const c of pack) chunks.push(c as Buffer); })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), uid: 0, gid: 0, mtime: new Date(1_700_000_000_000), ...(e.linkname ? { linkname: e.linkname } : {}) };
    await new Promise<void>((res, rej) => {
      const cb = (err?: Error | null): void => (err ? rej(err) : res());
      if (type === 'file') pack.entry(header, e.content ?? '', cb);
      else pack.entry(header, cb).end(undefined);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export function imageConfig(diffIds: string[], created = '2024-01-02T03:04:05.123456789Z'): Buffer {
  return Buffer.from(JSON.stringify({
    architecture: 'amd64',
    config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] },
    created,
    history: diffIds.map(() => ({ created, created_by: 'fixture' })),
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: diffIds },
  }));
}

/** Three small layers: files, a dir, a whiteout of a lower file, a symlink. */
export async function threeLayers(): Promise<Buffer[]> {
  return [
    await layerTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/a.txt', content: 'alpha\n' }, { name: 'etc/b.txt', content: 'beta\n' }]),
    await layerTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/.wh.b.txt' }, { name: 'usr/', type: 'directory' }, { name: 'usr/c', content: 'gamma' }]),
    await layerTar([{ name: 'usr/', type: 'directory' }, { name: 'usr/link', type: 'symlink', linkname: 'c' }, { name: 'usr/d', content: 'delta'.repeat(300) }]),
  ];
}

/**
 * A docker-save archive of `layers` tagged `tag`, as Docker 20.10 writes it; each `layer.tar` member
 * holds `blob(layer, i)` when given (a compressed or damaged blob), the plain layer otherwise.
 */
export async function dockerSaveArchive(dir: string, layers: Buffer[], tag: string, created?: string, blob?: (layer: Buffer, i: number) => Buffer): Promise<{ archive: string; id: string; diffIds: string[] }> {
  mkdirSync(dir, { recursive: true });
  const diffIds = layers.map(sha);
  const chains = chainIds(diffIds);
  const files = new Map<string, string>();
  layers.forEach((l, i) => {
    const f = join(dir, `layer${i}.tar`);
    writeFileSync(f, blob === undefined ? l : blob(l, i));
    files.set(chains[i] as string, f);
  });
  const configBytes = imageConfig(diffIds, created);
  const id = sha256Digest(configBytes);
  const archive = join(dir, 'image.tar');
  const ref = parseTagRef(tag);
  await writeDockerSave(archive, [{ id, configBytes, refs: ref === null ? [] : [ref], parent: null }], async (c) => files.get(c) as string);
  return { archive, id, diffIds };
}

/** A layer blob as stored, with the media type its descriptor gives. */
export interface LayerBlob { mediaType: string; blob: Buffer }

/**
 * An OCI image layout dir; gzip layers when `gzip`, or each layer as `blob(layer, i)` makes it;
 * `badDiffId` replaces diff_ids[i] in the config.
 */
export function ociLayout(dir: string, layers: Buffer[], refName: string, opts: { gzip?: boolean; badDiffId?: number; blob?: (layer: Buffer, i: number) => LayerBlob } = {}): { id: string } {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer): { digest: string; size: number } => {
    const digest = sha(b);
    writeFileSync(join(blobs, digest.slice(7)), b);
    return { digest, size: b.length };
  };
  const diffIds = layers.map(sha);
  if (opts.badDiffId !== undefined) diffIds[opts.badDiffId] = sha(Buffer.from('not this layer'));
  const config = imageConfig(diffIds);
  const cfg = put(config);
  const asStored = opts.blob ?? ((l: Buffer): LayerBlob => (opts.gzip === true
    ? { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', blob: gzipSync(l) }
    : { mediaType: 'application/vnd.oci.image.layer.v1.tar', blob: l }));
  const layerDescs = layers.map((l, i) => {
    const { mediaType, blob } = asStored(l, i);
    return { mediaType, ...put(blob) };
  });
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg }, layers: layerDescs }));
  const man = put(manifest);
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...man, annotations: { 'org.opencontainers.image.ref.name': refName } }] }));
  return { id: cfg.digest };
}

/** Every path under `root` with type, mode, size (and content hash for files): the store's state. */
export function treeSnapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(p);
      const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? `l->${readlinkSync(p)}` : st.isFile() ? `f ${st.size} ${st.size < 65536 ? sha(readFileSync(p)).slice(7, 19) : ''}` : 'o';
      out.push(`${r} ${(st.mode & 0o7777).toString(8)} ${kind}`);
      if (st.isDirectory()) walk(p, r);
    }
  };
  walk(root, '');
  return out;
}
