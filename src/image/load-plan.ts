/**
 * What to load from an input: each image's config bytes, its tags and its layer blobs, with every
 * digest that can be checked without touching the store already checked (blob digests, config
 * digests, layer count vs rootfs.diff_ids, the diffID of each uncompressed layer). The diffID of a
 * compressed layer is checked against what the driver computed while applying it.
 *
 * Inputs: `docker save` (manifest.json; legacy `<id>/layer.tar` or OCI-shaped `blobs/sha256/…`)
 * and the OCI image layout (oci-layout + index.json, nested indexes, OCI and Docker media types).
 */
import { OverlayError } from '../errors.js';
import { digestHex, isDigest, sha256Digest } from './digest.js';
import type { JsonObject } from './json-types.js';
import { formatTag, parseTagRef } from './reference.js';
import { type ImageSource } from './source.js';
import { detectCompression } from '../archive/compression.js';

export interface PlannedLayer {
  /** Member name in the source (for messages). */
  name: string;
  file: string;
  size: number;
  compression: 'none' | 'gzip' | 'zstd';
  /** The diffID the config promises (rootfs.diff_ids[i]). */
  diffId: string;
}

export interface PlannedImage {
  configBytes: Buffer;
  config: JsonObject;
  /** "sha256:<hex>" of configBytes. */
  id: string;
  /** Familiar `repo:tag` names. */
  tags: string[];
  layers: PlannedLayer[];
}

const bad = (label: string, reason: string, detail: string): OverlayError => new OverlayError('EINVAL', 'load', { path: label, reason, detail });

/** EINVAL (reason no-images): the input is well-formed but names no image. */
const noImages = (label: string, why: string): OverlayError => bad(label, 'no-images', `no images in archive ${label} (${why})`);

const isObj = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

function diffIdsOf(label: string, configName: string, config: JsonObject): string[] {
  const rootfs = config['rootfs'];
  const ids = isObj(rootfs) ? rootfs['diff_ids'] : undefined;
  if (!Array.isArray(ids) || !ids.every((d): d is string => typeof d === 'string' && isDigest(d))) {
    throw bad(label, 'invalid-config', `${configName}: rootfs.diff_ids missing or not sha256 digests`);
  }
  return ids;
}

async function planLayers(src: ImageSource, names: string[], blobDigests: Array<string | undefined>, blobSizes: Array<number | undefined>, diffIds: string[], configName: string): Promise<PlannedLayer[]> {
  if (names.length !== diffIds.length) {
    throw bad(src.label, 'layer-count-mismatch', `${configName} lists ${diffIds.length} diff_ids but the manifest has ${names.length} layers`);
  }
  const out: PlannedLayer[] = [];
  for (const [i, name] of names.entries()) {
    const m = await src.get(name);
    const want = blobDigests[i];
    const actual = await src.digest(name);
    if (want !== undefined && actual !== want) {
      throw bad(src.label, 'digest-mismatch', `layer ${i} ${name}: content digest ${actual} does not match its expected digest ${want}`);
    }
    const wantSize = blobSizes[i];
    if (wantSize !== undefined && wantSize !== m.size) {
      throw bad(src.label, 'size-mismatch', `layer ${i} ${name}: ${m.size} bytes, descriptor says ${wantSize}`);
    }
    const compression = await detectCompression(m.file);
    const diffId = diffIds[i] as string;
    if (compression === 'none' && actual !== diffId) {
      throw bad(src.label, 'diffid-mismatch', `layer ${i} ${name}: diffID ${actual} does not match rootfs.diff_ids[${i}] ${diffId} in ${configName}`);
    }
    out.push({ name, file: m.file, size: m.size, compression, diffId });
  }
  return out;
}

/** The hex a member name encodes (`<hex>.json`, `blobs/sha256/<hex>`), if any. */
function nameDigest(name: string): string | undefined {
  const m = /(?:^|\/)(?:blobs\/sha256\/)?([0-9a-f]{64})(?:\.json)?$/.exec(name);
  return m?.[1] === undefined ? undefined : `sha256:${m[1]}`;
}

async function readConfig(src: ImageSource, name: string, expected: string | undefined): Promise<{ bytes: Buffer; config: JsonObject; id: string }> {
  const { bytes, value } = await src.readJson(name);
  const id = sha256Digest(bytes);
  if (expected !== undefined && id !== expected) {
    throw bad(src.label, 'digest-mismatch', `config ${name}: content digest ${id} does not match its expected digest ${expected}`);
  }
  if (!isObj(value)) throw bad(src.label, 'invalid-config', `${name} is not a JSON object`);
  return { bytes, config: value, id };
}

/** `docker save` archive (manifest.json). */
export async function planDockerSave(src: ImageSource): Promise<PlannedImage[]> {
  const { value } = await src.readJson('manifest.json');
  if (!Array.isArray(value)) throw bad(src.label, 'invalid-manifest', 'manifest.json is not a JSON array');
  if (value.length === 0) throw noImages(src.label, 'manifest.json is an empty list');
  const out: PlannedImage[] = [];
  for (const [n, item] of value.entries()) {
    if (!isObj(item) || typeof item['Config'] !== 'string' || !Array.isArray(item['Layers']) || !item['Layers'].every((l) => typeof l === 'string')) {
      throw bad(src.label, 'invalid-manifest', `manifest.json entry ${n} lacks Config/Layers`);
    }
    const configName = item['Config'];
    const { bytes, config, id } = await readConfig(src, configName, nameDigest(configName));
    const diffIds = diffIdsOf(src.label, configName, config);
    const layerNames = item['Layers'] as string[];
    const blobDigests = layerNames.map((l) => (/(^|\/)blobs\/sha256\/[0-9a-f]{64}$/.test(l) ? nameDigest(l) : undefined));
    const layers = await planLayers(src, layerNames, blobDigests, layerNames.map(() => undefined), diffIds, configName);
    const tags: string[] = [];
    const repoTags = item['RepoTags'];
    if (Array.isArray(repoTags)) {
      for (const t of repoTags) {
        const r = typeof t === 'string' ? parseTagRef(t) : null;
        if (r === null) throw bad(src.label, 'invalid-reference', `manifest.json entry ${n}: invalid RepoTag ${JSON.stringify(t)}`);
        tags.push(formatTag(r));
      }
    }
    out.push({ configBytes: bytes, config, id, tags, layers });
  }
  return out;
}

const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar', 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar', 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  // Not in the Docker spec, but written by some tools and accepted by containerd; the bytes decide anyway.
  'application/vnd.docker.image.rootfs.diff.tar.zstd',
]);

interface Descriptor { mediaType: string; digest: string; size: number; annotations: Record<string, string>; platform?: JsonObject }

function descriptor(label: string, where: string, v: unknown): Descriptor {
  if (!isObj(v) || typeof v['digest'] !== 'string' || !isDigest(v['digest']) || typeof v['size'] !== 'number') {
    throw bad(label, 'invalid-descriptor', `${where}: descriptor without a sha256 digest and size`);
  }
  const ann: Record<string, string> = {};
  if (isObj(v['annotations'])) for (const [k, x] of Object.entries(v['annotations'])) if (typeof x === 'string') ann[k] = x;
  const d: Descriptor = { mediaType: typeof v['mediaType'] === 'string' ? v['mediaType'] : '', digest: v['digest'], size: v['size'], annotations: ann };
  if (isObj(v['platform'])) d.platform = v['platform'];
  return d;
}

const blobName = (digest: string): string => `blobs/sha256/${digestHex(digest)}`;

async function readBlobJson(src: ImageSource, d: Descriptor, what: string): Promise<JsonObject> {
  const name = blobName(d.digest);
  const actual = await src.digest(name);
  if (actual !== d.digest) throw bad(src.label, 'digest-mismatch', `${what} ${name}: content digest ${actual} does not match its expected digest ${d.digest}`);
  const { bytes, value } = await src.readJson(name);
  if (bytes.length !== d.size) throw bad(src.label, 'size-mismatch', `${what} ${name}: ${bytes.length} bytes, descriptor says ${d.size}`);
  if (!isObj(value)) throw bad(src.label, 'invalid-manifest', `${what} ${name} is not a JSON object`);
  return value;
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** Tags from an index entry: `io.containerd.image.name` (full name), else a ref.name that is a full reference, else `repository:ref.name`. */
function tagsOf(d: Descriptor, repository: string | undefined): string[] {
  const full = d.annotations['io.containerd.image.name'];
  const refName = d.annotations['org.opencontainers.image.ref.name'];
  for (const cand of [full, refName]) {
    if (cand !== undefined && (cand.includes(':') || cand.includes('/'))) {
      const r = parseTagRef(cand);
      if (r !== null) return [formatTag(r)];
    }
  }
  if (refName !== undefined && repository !== undefined) {
    const r = parseTagRef(`${repository}:${refName}`);
    if (r !== null) return [formatTag(r)];
  }
  return [];
}

/** OCI image layout (oci-layout + index.json). `repository` names images whose ref.name is a bare tag. */
export async function planOciLayout(src: ImageSource, repository?: string): Promise<PlannedImage[]> {
  const layout = await src.readJson('oci-layout');
  if (!isObj(layout.value) || typeof layout.value['imageLayoutVersion'] !== 'string') {
    throw bad(src.label, 'invalid-oci-layout', 'oci-layout lacks imageLayoutVersion');
  }
  const { value: index } = await src.readJson('index.json');
  if (!isObj(index) || !Array.isArray(index['manifests'])) throw bad(src.label, 'invalid-oci-layout', 'index.json lacks manifests');
  if (index['manifests'].length === 0) throw noImages(src.label, 'index.json lists no manifests');
  const out: PlannedImage[] = [];
  const visit = async (d: Descriptor, tags: string[], depth: number): Promise<void> => {
    if (depth > 4) throw bad(src.label, 'invalid-oci-layout', 'indexes nested too deeply');
    if (INDEX_TYPES.has(d.mediaType)) {
      const idx = await readBlobJson(src, d, 'index');
      const children = Array.isArray(idx['manifests']) ? idx['manifests'].map((m, i) => descriptor(src.label, `index ${d.digest} manifests[${i}]`, m)) : [];
      const arch = GOARCH[process.arch] ?? process.arch;
      const pick = children.find((c) => c.platform?.['os'] === 'linux' && c.platform['architecture'] === arch)
        ?? children.find((c) => c.platform === undefined) ?? children[0];
      if (pick === undefined) throw bad(src.label, 'invalid-oci-layout', `index ${d.digest} has no manifests`);
      await visit(pick, tags, depth + 1);
      return;
    }
    if (d.mediaType !== '' && !MANIFEST_TYPES.has(d.mediaType)) {
      throw bad(src.label, 'unsupported-media-type', `manifest ${d.digest}: media type ${d.mediaType}`);
    }
    const man = await readBlobJson(src, d, 'manifest');
    const cfgDesc = descriptor(src.label, `manifest ${d.digest} config`, man['config']);
    const cfgName = blobName(cfgDesc.digest);
    const { bytes, config, id } = await readConfig(src, cfgName, cfgDesc.digest);
    if (bytes.length !== cfgDesc.size) throw bad(src.label, 'size-mismatch', `config ${cfgName}: ${bytes.length} bytes, descriptor says ${cfgDesc.size}`);
    const layerDescs = Array.isArray(man['layers']) ? man['layers'].map((l, i) => descriptor(src.label, `manifest ${d.digest} layers[${i}]`, l)) : [];
    for (const l of layerDescs) {
      if (l.mediaType !== '' && !LAYER_TYPES.has(l.mediaType)) throw bad(src.label, 'unsupported-media-type', `layer ${l.digest}: media type ${l.mediaType}`);
    }
    const diffIds = diffIdsOf(src.label, cfgName, config);
    const layers = await planLayers(src, layerDescs.map((l) => blobName(l.digest)), layerDescs.map((l) => l.digest), layerDescs.map((l) => l.size), diffIds, cfgName);
    const existing = out.find((p) => p.id === id);
    if (existing !== undefined) {
      for (const t of tags) if (!existing.tags.includes(t)) existing.tags.push(t);
    } else {
      out.push({ configBytes: bytes, config, id, tags, layers });
    }
  };
  for (const [i, m] of index['manifests'].entries()) {
    const d = descriptor(src.label, `index.json manifests[${i}]`, m);
    await visit(d, tagsOf(d, repository), 0);
  }
  if (out.length === 0) throw noImages(src.label, 'index.json lists no images');
  return out;
}

/**
 * Pick the format: manifest.json wins (docker save, also the OCI-shaped one), else the OCI layout.
 * `repository` (already validated) applies to OCI layouts only; a docker-save archive carries its
 * own RepoTags, so it is refused there (EINVAL, reason repository-not-applicable) rather than ignored.
 */
export async function planLoad(src: ImageSource, repository?: string): Promise<PlannedImage[]> {
  if (await src.has('manifest.json')) {
    if (repository !== undefined) {
      throw bad(src.label, 'repository-not-applicable', `--repository applies only to OCI image layouts whose ref.name is a bare tag; ${src.label} is a docker-save archive (manifest.json), whose images are tagged by their RepoTags (use tag after loading)`);
    }
    return planDockerSave(src);
  }
  if (await src.has('index.json')) return planOciLayout(src, repository);
  throw bad(src.label, 'unknown-archive-format', 'neither manifest.json (docker save) nor index.json (OCI image layout) found');
}
