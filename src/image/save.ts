/**
 * `save`: images → a `docker save` archive exactly as Docker 20.10 writes it, so that an image
 * loaded from such an archive saves back byte for byte (verified against the real archives).
 *
 * Docker builds a temp dir and tars it: per layer a legacy v1 dir `<v1-id>/` with `VERSION`
 * ("1.0"), `json` (moby image.V1Image; the top layer carries the image's V1 fields, lower ones
 * only created=Unix 0) and `layer.tar` (the layer's original bytes, re-assembled from tar-split),
 * all with mtime = the image's `created`; `<config-hex>.json` (config bytes, same mtime);
 * `manifest.json` and `repositories` (mtime 0, JSON + newline). v1 ids are moby `v1.CreateID`
 * (go-json.ts). Members are in lexical walk order, headers as in tar-header.ts.
 * Deviation: a layer.tar that repeats an earlier diffID is a symlink (as Docker does); Docker's
 * symlink mtime is the save time, ours is `created`.
 */
import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { assembleLayer } from '../archive/index.js';
import { OverlayError, fromNodeError, pathOf } from '../errors.js';
import { chainIds, digestHex, sha256File } from './digest.js';
import { createV1Id, goMarshal, goObject, goString, timeSeconds, v1EmptyFields, v1ImageFields, v1Json } from './go-json.js';
import type { JsonObject } from './json-types.js';
import { formatTag, idPrefix, parseTagRef, type TagRef } from './reference.js';
import { ImageStore } from './store.js';
import { END_OF_ARCHIVE, encodeHeader, padding, type OuterEntry } from './tar-header.js';

interface Member extends OuterEntry { data?: Buffer; file?: string }

/** Docker's parseNames: tags keep their ref; a bare repo takes all its tags; an id takes none. */
async function selectImages(store: ImageStore, refs: readonly string[]): Promise<Array<{ id: string; refs: TagRef[] }>> {
  const out: Array<{ id: string; refs: TagRef[] }> = [];
  const add = (id: string, ref: TagRef | null): void => {
    let e = out.find((x) => x.id === id);
    if (e === undefined) out.push((e = { id, refs: [] }));
    if (ref !== null && !e.refs.some((r) => formatTag(r) === formatTag(ref))) e.refs.push(ref);
  };
  const tags = await store.meta.readTags();
  for (const ref of refs) {
    const t = parseTagRef(ref);
    const explicitTag = t !== null && (ref.lastIndexOf(':') > ref.lastIndexOf('/'));
    if (t !== null && explicitTag) {
      const id = tags.get(formatTag(t));
      if (id !== undefined) { add(id, t); continue; }
    } else if (t !== null) {
      const all = [...tags.entries()].filter(([k]) => k.slice(0, k.lastIndexOf(':')) === t.repo).sort(([a], [b]) => (a < b ? -1 : 1));
      if (all.length > 0 && idPrefix(ref) === null) {
        for (const [k, id] of all) add(id, parseTagRef(k));
        continue;
      }
    }
    add(await store.resolveImage(ref), null);
  }
  return out;
}

export interface SaveImageInput {
  id: string;
  configBytes: Buffer;
  /** Tags to record (RepoTags, repositories); empty when saved by id. */
  refs: TagRef[];
  /** Parent image id from the image metadata, if any. */
  parent: string | null;
}

/** A readable file with the layer's exact tar bytes (uncompressed), for chainID/diffID. */
export type LayerFileSource = (chainId: string, diffId: string) => Promise<string>;

/**
 * `docker save` of `refs` into `outFile` (see the file comment). Reads the store and uses a scratch
 * dir under tmp/ (pid-named, so a concurrent `open` leaves it alone): callers in several processes
 * must hold at least `withRootLock(root, 'shared', …)` (src/fsutil/lock.ts) so no writer removes
 * an image or layer mid-save; the library takes no lock.
 */
export async function saveImages(store: ImageStore, refs: readonly string[], outFile: string): Promise<void> {
  if (refs.length === 0) throw new OverlayError('EINVAL', 'save', { reason: 'no-images', detail: 'nothing to save' });
  const selected = await selectImages(store, refs);
  const inputs: SaveImageInput[] = [];
  for (const sel of selected) {
    inputs.push({ id: sel.id, configBytes: (await store.config(sel.id)).bytes, refs: sel.refs, parent: await store.meta.imageParent(sel.id) });
  }
  const scratch = await store.scratch('save');
  try {
    await writeDockerSave(outFile, inputs, async (chain, diffId) => {
      const rec = await store.layer(chain);
      const file = join(scratch, `${digestHex(chain)}.tar`);
      const fh = createWriteStream(file);
      const closed = new Promise<void>((res, rej) => { fh.on('close', res); fh.on('error', rej); });
      await assembleLayer(store.meta.tarSplitPath(chain), store.diffDir(rec.cacheId), fh);
      fh.end();
      await closed;
      const actual = await sha256File(file);
      if (actual !== diffId) {
        throw new OverlayError('EIO', 'save', { layer: chain, reason: 'layer-digest-verification-failed', detail: `re-assembled layer is ${actual}, expected ${diffId}` });
      }
      return file;
    });
  } finally {
    await store.removeScratch(scratch);
  }
}

/** Write the `docker save` archive for `images` (in order) to `outFile` (atomically: temp + rename). */
export async function writeDockerSave(outFile: string, images: readonly SaveImageInput[], layerFile: LayerFileSource): Promise<void> {
  const tmpOut = `${outFile}.tmp-${process.pid}`;
  try {
    const members = new Map<string, Member>();
    const diffIdPaths = new Map<string, string>();
    const manifest: Array<{ config: string; repoTags: string[] | null; layers: string[]; id: string; parent: string | null }> = [];
    const reposLegacy = new Map<string, Map<string, string>>();
    for (const sel of images) {
      const bytes = sel.configBytes;
      const config = JSON.parse(bytes.toString('utf8')) as JsonObject;
      const diffIds = ImageStore.diffIdsOf(config);
      if (diffIds.length === 0) throw new OverlayError('EINVAL', 'save', { reason: 'empty-image', detail: `${sel.id}: empty export - not implemented` });
      const chains = chainIds(diffIds);
      const created = typeof config['created'] === 'string' ? config['created'] : undefined;
      const mtime = timeSeconds(created);
      const os = typeof config['os'] === 'string' ? config['os'] : undefined;
      let parent: string | null = null;
      const layerNames: string[] = [];
      for (const [i, chain] of chains.entries()) {
        const top = i === chains.length - 1;
        const fields = top ? v1ImageFields(config) : v1EmptyFields();
        const v1Id = createV1Id(fields, chain, parent);
        layerNames.push(`${v1Id}/layer.tar`);
        if (!members.has(`${v1Id}/`)) {
          members.set(`${v1Id}/`, { name: `${v1Id}/`, type: 'dir', mode: 0o755, size: 0, mtime });
          const version = Buffer.from('1.0');
          members.set(`${v1Id}/VERSION`, { name: `${v1Id}/VERSION`, type: 'file', mode: 0o644, size: version.length, mtime, data: version });
          const json = Buffer.from(v1Json(v1Id, parent, fields, os));
          members.set(`${v1Id}/json`, { name: `${v1Id}/json`, type: 'file', mode: 0o644, size: json.length, mtime, data: json });
          const diffId = diffIds[i] as string;
          const prev = diffIdPaths.get(diffId);
          if (prev !== undefined) {
            members.set(`${v1Id}/layer.tar`, { name: `${v1Id}/layer.tar`, type: 'symlink', mode: 0o777, size: 0, mtime, linkname: `../${prev}` });
          } else {
            const file = await layerFile(chain, diffId);
            const size = (await stat(file)).size;
            members.set(`${v1Id}/layer.tar`, { name: `${v1Id}/layer.tar`, type: 'file', mode: 0o644, size, mtime, file });
            diffIdPaths.set(diffId, `${v1Id}/layer.tar`);
          }
        }
        parent = v1Id;
      }
      const cfgName = `${digestHex(sel.id)}.json`;
      members.set(cfgName, { name: cfgName, type: 'file', mode: 0o644, size: bytes.length, mtime, data: bytes });
      manifest.push({ config: cfgName, repoTags: sel.refs.length === 0 ? null : sel.refs.map(formatTag), layers: layerNames, id: sel.id, parent: sel.parent });
      for (const r of sel.refs) {
        let m = reposLegacy.get(r.repo);
        if (m === undefined) reposLegacy.set(r.repo, (m = new Map()));
        m.set(r.tag, parent as string);
      }
    }
    // Parent links only between images saved together (Docker's validatedParentLinks).
    const ids = new Set(manifest.map((m) => m.id));
    const items = manifest.map((m) => {
      const fields: Array<[string, string]> = [
        ['Config', goString(m.config)],
        ['RepoTags', m.repoTags === null ? 'null' : goMarshal(m.repoTags)],
        ['Layers', goMarshal(m.layers)],
      ];
      if (m.parent !== null && ids.has(m.parent)) fields.push(['Parent', goString(m.parent)]);
      return goObject(fields);
    });
    const manifestBytes = Buffer.from(`[${items.join(',')}]\n`);
    members.set('manifest.json', { name: 'manifest.json', type: 'file', mode: 0o644, size: manifestBytes.length, mtime: 0, data: manifestBytes });
    if (reposLegacy.size > 0) {
      const repos: JsonObject = {};
      for (const repo of [...reposLegacy.keys()].sort()) {
        const tags: JsonObject = {};
        const m = reposLegacy.get(repo) as Map<string, string>;
        for (const tag of [...m.keys()].sort()) tags[tag] = m.get(tag) as string;
        repos[repo] = tags;
      }
      const reposBytes = Buffer.from(`${goMarshal(repos)}\n`);
      members.set('repositories', { name: 'repositories', type: 'file', mode: 0o644, size: reposBytes.length, mtime: 0, data: reposBytes });
    }
    await writeOuterTar(tmpOut, walkOrder(members));
    await rename(tmpOut, outFile);
  } catch (e) {
    await rm(tmpOut, { force: true });
    const at = pathOf(e);
    throw fromNodeError(e, 'save', { path: at ?? outFile, detail: at !== undefined && at !== outFile ? `writing ${outFile}` : undefined });
  }
}

/** Go filepath.Walk order over the temp dir: names sorted bytewise per directory, dirs recursed in place. */
function walkOrder(members: Map<string, Member>): Member[] {
  const key = (m: Member): string[] => m.name.replace(/\/$/, '').split('/');
  const list = [...members.values()];
  list.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
      const c = Buffer.compare(Buffer.from(ka[i] as string), Buffer.from(kb[i] as string));
      if (c !== 0) return c;
    }
    return ka.length - kb.length;
  });
  return list;
}

async function writeOuterTar(file: string, members: Member[]): Promise<void> {
  const out = await open(file, 'w', 0o600);
  try {
    for (const m of members) {
      await out.write(encodeHeader(m));
      if (m.data !== undefined) {
        await out.write(m.data);
      } else if (m.file !== undefined) {
        await copyInto(out, m.file, m.size);
      }
      const pad = padding(m.type === 'file' ? m.size : 0);
      if (pad.length > 0) await out.write(pad);
    }
    await out.write(END_OF_ARCHIVE);
    await out.sync();
  } finally {
    await out.close();
  }
}

async function copyInto(out: FileHandle, file: string, size: number): Promise<void> {
  const src = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, size - done), done);
      if (bytesRead === 0) throw new OverlayError('EIO', 'save', { path: file, reason: 'layer-shrank' });
      await out.write(buf.subarray(0, bytesRead));
      done += bytesRead;
    }
  } finally {
    await src.close();
  }
}
