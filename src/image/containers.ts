/**
 * Containers on top of the store, as Docker's layer store makes them: an init layer
 * `<mount-id>-init` (rw, on the image's top layer) holding Docker's init files, then the
 * container's rw layer `<mount-id>` on top of it. `docker diff` and `docker commit` compare the rw
 * layer against the init layer, so the init files never show up as user changes.
 *
 * Init layer (moby daemon/initlayer): for each of /dev/pts, /dev/shm, /proc, /sys (dirs),
 * /.dockerenv, /etc/resolv.conf, /etc/hosts, /etc/hostname, /dev/console (empty files, mode 0755)
 * and /etc/mtab (symlink → /proc/mounts): unlink every path component (removing image files there),
 * and create the entry if it does not exist, parents 0755, owner root.
 *
 * Concurrency: these functions take no lock. Callers in several processes on one data root must
 * hold `withRootLock(root, 'exclusive', …)` (src/fsutil/lock.ts) around each mutating call
 * (create, mount/umount, commit, rm, rmi, tag) and `'shared'` around reads (find, diff); otherwise
 * e.g. two concurrent `createContainer(…, 'x', …)` can both pass the name check.
 */
import { chmod, mkdir, open, readFile, stat, symlink, unlink } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { OverlayError, fromNodeError, hasCode, isNotFound } from '../errors.js';
import type { Change } from '../archive/types.js';
import { EMPTY_LAYER_DIFF_ID, chainIds, chainOf, layerDepthError, randomId, sha256Digest } from './digest.js';
import { goContainerConfig, goMarshal, goObject, goString } from './go-json.js';
import type { JsonObject, JsonValue } from './json-types.js';
import type { ContainerRecord, MountRecord } from './metadata.js';
import { formatTag, parseTagRef, requireTagRef } from './reference.js';
import { ImageStore } from './store.js';
import { layerPaths } from '../store/index.js';

const INIT_ENTRIES: ReadonlyArray<readonly [string, string]> = [
  ['/dev/pts', 'dir'], ['/dev/shm', 'dir'], ['/proc', 'dir'], ['/sys', 'dir'], ['/.dockerenv', 'file'],
  ['/etc/resolv.conf', 'file'], ['/etc/hosts', 'file'], ['/etc/hostname', 'file'], ['/dev/console', 'file'],
  ['/etc/mtab', '/proc/mounts'],
];

/** Create Docker's init files under `root` (the mounted init layer). */
export async function setupInitLayer(root: string): Promise<void> {
  for (const [pth, typ] of INIT_ENTRIES) {
    const parts = pth.split('/').slice(1);
    let prev = '';
    for (const p of parts) {
      prev = `${prev}/${p}`;
      try {
        await unlink(join(root, prev));
      } catch (e) {
        if (!hasCode(e, 'ENOENT', 'EISDIR', 'EPERM', 'ENOTDIR')) throw fromNodeError(e, 'setupInitLayer', { path: join(root, prev) });
      }
    }
    const target = join(root, pth);
    try {
      await stat(target);
      continue;
    } catch (e) {
      if (!isNotFound(e)) throw fromNodeError(e, 'setupInitLayer', { path: target });
    }
    const parent = join(target, '..');
    await mkdirAll(parent);
    if (typ === 'dir') {
      await mkdirAll(target);
    } else if (typ === 'file') {
      const fh = await open(target, 'a', 0o755);
      await fh.chmod(0o755);
      await fh.chown(0, 0);
      await fh.close();
    } else {
      await symlink(typ, target);
    }
  }
}

async function mkdirAll(dir: string): Promise<void> {
  const made = await mkdir(dir, { recursive: true, mode: 0o755 });
  if (made !== undefined) {
    // mkdir -p reports the first dir it made; fix modes below umask for all new ones.
    for (let d = dir; d.length >= made.length; d = join(d, '..')) await chmod(d, 0o755);
  }
}

const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Find a container by name ("/x" or "x"), full id or unique id prefix. */
export async function findContainer(store: ImageStore, ref: string): Promise<ContainerRecord> {
  const all = await store.meta.listContainers();
  const name = ref.startsWith('/') ? ref : `/${ref}`;
  const byName = all.find((c) => c.Name === name);
  if (byName !== undefined) return byName;
  const byId = all.filter((c) => /^[0-9a-f]+$/.test(ref) && c.ID.startsWith(ref));
  if (byId.length === 1) return byId[0] as ContainerRecord;
  throw new OverlayError('ENOENT', 'container', { reason: 'container-not-found', detail: `No such container: ${ref}` });
}

async function mountOf(store: ImageStore, c: ContainerRecord): Promise<MountRecord> {
  const m = await store.meta.readMount(c.ID);
  if (m === null) throw new OverlayError('ENOENT', 'container', { reason: 'rw-layer-missing', detail: `container ${c.ID} has no rw layer record` });
  return m;
}

/** The merged mount point the driver uses for a layer (Docker's layout). */
const mergedPath = (store: ImageStore, mountId: string): string => layerPaths(store.driver.home, mountId).merged;

/** Whether `path` is a mount point now (from /proc/self/mountinfo). */
export async function isMountPoint(path: string): Promise<boolean> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text.split('\n').some((line) => unescape(line.split(' ')[4] ?? '') === path);
}

export interface CreateContainerResult { id: string; name: string; mountId: string; image: string }

/**
 * `docker create`: the init layer and the rw layer on the image's top layer, then the records.
 * The name check and the record write are not atomic across processes:
 * Mutates the store: callers in several processes must hold `withRootLock(root, 'exclusive', …)`
 * (src/fsutil/lock.ts) around the call; the library takes no lock.
 * @throws EINVAL (invalid-container-name), EEXIST (container-name-in-use), ENOENT (image-not-found).
 */
export async function createContainer(store: ImageStore, name: string, imageRef: string): Promise<CreateContainerResult> {
  if (!NAME_RE.test(name)) {
    throw new OverlayError('EINVAL', 'create', { reason: 'invalid-container-name', detail: `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed` });
  }
  const fullName = name.startsWith('/') ? name : `/${name}`;
  const taken = (await store.meta.listContainers()).find((c) => c.Name === fullName);
  if (taken !== undefined) {
    throw new OverlayError('EEXIST', 'create', {
      reason: 'container-name-in-use',
      detail: `Conflict. The container name "${fullName}" is already in use by container "${taken.ID}". You have to remove (or rename) that container to be able to reuse that name.`,
    });
  }
  const imageId = await store.resolveImage(imageRef);
  const { config } = await store.config(imageId);
  const chains = chainIds(ImageStore.diffIdsOf(config));
  const top = chains.length === 0 ? null : await store.layer(chains[chains.length - 1] as string);
  const id = randomId();
  const mountId = randomId();
  const initId = `${mountId}-init`;
  const undo: Array<() => Promise<void>> = [];
  try {
    await store.driver.createReadWrite(initId, top?.cacheId ?? null);
    undo.push(() => store.driver.remove(initId));
    const initRoot = await store.driver.get(initId);
    try {
      await setupInitLayer(initRoot);
    } finally {
      await store.driver.put(initId);
    }
    await store.driver.createReadWrite(mountId, initId);
    undo.push(() => store.driver.remove(mountId));
    await store.meta.writeMount({ containerId: id, mountId, initId, parent: top?.chainId ?? null });
    undo.push(() => store.meta.removeMount(id));
    const imageCfg = (config['config'] ?? {}) as JsonObject;
    const cfg: JsonObject = { ...imageCfg, Hostname: id.slice(0, 12), Image: imageRef };
    await store.meta.writeContainer({
      ID: id, Name: fullName, Image: imageId, ImageRef: imageRef, Created: new Date().toISOString(), Driver: 'overlay2', Config: cfg,
    });
    return { id, name: fullName.slice(1), mountId, image: imageId };
  } catch (e) {
    for (const u of undo.reverse()) await u().catch((err: unknown) => process.emitWarning(`create rollback: ${(err as Error).message}`));
    throw fromNodeError(e, 'create', { detail: `container ${name}` });
  }
}

/** Mount the container's rw layer (kernel overlay via the driver); returns the merged path. */
export async function mountContainer(store: ImageStore, ref: string): Promise<string> {
  const c = await findContainer(store, ref);
  const m = await mountOf(store, c);
  return store.driver.get(m.mountId);
}

export async function umountContainer(store: ImageStore, ref: string): Promise<void> {
  const c = await findContainer(store, ref);
  const m = await mountOf(store, c);
  await store.driver.put(m.mountId);
}

/** Whether the container (a name or id, or a record already read, as `ps` has) is kernel-mounted. */
export async function isContainerMounted(store: ImageStore, ref: string | ContainerRecord): Promise<boolean> {
  const c = typeof ref === 'string' ? await findContainer(store, ref) : ref;
  return isMountPoint(mergedPath(store, (await mountOf(store, c)).mountId));
}

/** `docker diff`: the rw layer against the init layer (so init files are not user changes). */
export async function containerChanges(store: ImageStore, ref: string): Promise<Change[]> {
  const c = await findContainer(store, ref);
  const m = await mountOf(store, c);
  return store.driver.changes(m.mountId, m.initId);
}

export interface CommitOptions { message?: string; author?: string }
export interface CommitResult { id: string; tag: string | null; diffId: string; chainId: string | null; emptyLayer: boolean }

/** Go time.Time JSON of "now" (RFC 3339, UTC, sub-second digits trimmed). */
function nowGo(): string {
  const iso = new Date().toISOString(); // 2026-12-03T19:30:03.123Z
  return iso.replace(/\.?0+Z$/, 'Z');
}

/**
 * `docker commit`: the container's diff (native, against the init layer) becomes a new layer
 * (re-applied with tar-split, as Docker's layer store registers it) and a new image whose config
 * is the parent's with the new diff_id and a history entry. An empty diff gives `empty_layer`.
 * Mutates the store: callers in several processes must hold `withRootLock(root, 'exclusive', …)`
 * (src/fsutil/lock.ts) around the call; the library takes no lock.
 */
export async function commitContainer(store: ImageStore, ref: string, repoTag: string | null, opts: CommitOptions = {}): Promise<CommitResult> {
  const tag = repoTag === null ? null : formatTag(requireTagRef(repoTag, 'commit'));
  const c = await findContainer(store, ref);
  const m = await mountOf(store, c);
  const { config: parentCfg } = await store.config(c.Image);
  const parentDiffIds = ImageStore.diffIdsOf(parentCfg);
  const parentChain = parentDiffIds.length === 0 ? null : (chainIds(parentDiffIds).at(-1) as string);
  const parentCache = parentChain === null ? null : (await store.layer(parentChain)).cacheId;
  // Docker registers the commit's layer (even an empty one) on the image's chain: depth-limited.
  const tooDeep = layerDepthError('commit', parentDiffIds.length, `container ${c.Name}: its image has ${parentDiffIds.length} layers and the commit adds one`);
  if (tooDeep !== null) throw tooDeep;
  const scratch = await store.scratch('commit');
  const undo: Array<() => Promise<void>> = [];
  try {
    const tarFile = join(scratch, 'layer.tar');
    const out = createWriteStream(tarFile);
    const closed = new Promise<void>((res, rej) => { out.on('close', res); out.on('error', rej); });
    const diff = await store.driver.diff(m.mountId, m.initId, out);
    out.end();
    await closed;
    const cacheId = randomId();
    const tarSplit = join(scratch, 'tar-split');
    const applied = await store.driver.createFromTar(cacheId, parentCache, tarFile, { tarSplitPath: tarSplit, label: `commit of ${c.Name}` });
    let keepLayer = false;
    try {
      if (applied.diffId !== diff.diffId) {
        throw new OverlayError('EIO', 'commit', { reason: 'diffid-mismatch', detail: `diff wrote ${diff.diffId}, re-applying it gave ${applied.diffId}` });
      }
      const emptyLayer = applied.diffId === EMPTY_LAYER_DIFF_ID;
      let chainId: string | null = null;
      if (!emptyLayer) {
        chainId = chainOf(parentChain, applied.diffId);
        if ((await store.meta.readLayer(chainId)) === null) {
          await store.meta.writeLayer({ chainId, diffId: applied.diffId, cacheId, parent: parentChain, size: applied.size }, tarSplit);
          keepLayer = true;
          const made = chainId;
          undo.push(async () => { await store.meta.removeLayer(made); await store.driver.remove(cacheId); });
        }
      }
      const bytes = Buffer.from(commitConfig(parentCfg, c, emptyLayer ? null : applied.diffId, opts));
      const id = sha256Digest(bytes);
      if ((await store.meta.readImageConfig(id)) === null) {
        await store.meta.writeImageConfig(id, bytes);
        undo.push(() => store.meta.removeImage(id));
      }
      await store.meta.setImageParent(id, c.Image);
      if (tag !== null) await store.setTag(tag, id);
      return { id, tag, diffId: applied.diffId, chainId, emptyLayer };
    } finally {
      if (!keepLayer) await store.driver.remove(cacheId);
    }
  } catch (e) {
    for (const u of undo.reverse()) await u().catch((err: unknown) => process.emitWarning(`commit rollback: ${(err as Error).message}`));
    throw fromNodeError(e, 'commit', { detail: `container ${c.Name}` });
  } finally {
    await store.removeScratch(scratch);
  }
}

/** The committed image's config, as Docker's commit marshals image.Image (top-level keys sorted). */
function commitConfig(parent: JsonObject, c: ContainerRecord, diffId: string | null, opts: CommitOptions): string {
  const created = nowGo();
  const cfg = c.Config as JsonObject;
  const cmd = cfg['Cmd'];
  const createdBy = Array.isArray(cmd) ? cmd.map(String).join(' ') : typeof cmd === 'string' ? cmd : '';
  const hist: Array<[string, string]> = [['created', goString(created)]];
  if (opts.author) hist.push(['author', goString(opts.author)]);
  if (createdBy !== '') hist.push(['created_by', goString(createdBy)]);
  if (opts.message) hist.push(['comment', goString(opts.message)]);
  if (diffId === null) hist.push(['empty_layer', 'true']);
  const history = [...(Array.isArray(parent['history']) ? parent['history'] : []).map((h) => goMarshal(h)), goObject(hist)];
  const diffIds = [...ImageStore.diffIdsOf(parent), ...(diffId === null ? [] : [diffId])];
  const fields: Record<string, string> = {
    config: goContainerConfig(cfg),
    container: goString(c.ID),
    container_config: goContainerConfig(cfg),
    created: goString(created),
    history: `[${history.join(',')}]`,
    rootfs: goObject([['type', goString('layers')], ['diff_ids', goMarshal(diffIds)]]),
  };
  for (const k of ['architecture', 'os', 'variant', 'os.version', 'os.features'] as const) {
    const v = parent[k] as JsonValue | undefined;
    if (v !== undefined && v !== '' && v !== null) fields[k] = goMarshal(v);
  }
  if (opts.author) fields['author'] = goString(opts.author);
  if (opts.message) fields['comment'] = goString(opts.message);
  const keys = Object.keys(fields).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return `{${keys.map((k) => `${goString(k)}:${fields[k] as string}`).join(',')}}`;
}

export interface RmOptions { force?: boolean }

/**
 * Remove a container: its rw and init layers and records, then the layers of the chain it was
 * created on that no image or container references any more (e.g. the chain of an image removed
 * with `rmi -f` while this container used it). A mounted container needs `force` (it is unmounted first). A container whose
 * config.v2.json is corrupt is still removed when named by its full id.
 * Mutates the store: callers in several processes must hold `withRootLock(root, 'exclusive', …)`
 * (src/fsutil/lock.ts) around the call; the library takes no lock.
 * @throws ENOENT (container-not-found), EBUSY (container-mounted).
 */
export async function removeContainer(store: ImageStore, ref: string, opts: RmOptions = {}): Promise<void> {
  const id = await containerIdForRemoval(store, ref);
  const m = await store.meta.readMount(id);
  if (m !== null) {
    if (await isMountPoint(mergedPath(store, m.mountId))) {
      if (opts.force !== true) {
        throw new OverlayError('EBUSY', 'rm', {
          reason: 'container-mounted',
          detail: `You cannot remove a mounted container ${id}. Unmount it before attempting removal or force remove`,
        });
      }
      await store.driver.put(m.mountId);
    }
    await store.driver.remove(m.mountId);
    if (m.initId !== null) await store.driver.remove(m.initId);
    await store.meta.removeMount(id);
  }
  await store.meta.removeContainer(id);
  // The chain the container pinned, when no image uses it any more (its image gone by `rmi -f`).
  if (m !== null) await store.releaseLayers(await store.chainOf(m.parent));
}

/**
 * The id of the container `ref` names. Listing skips corrupt records, so a full 64-hex id that has
 * a container dir or a mount record names its container even when its config.v2.json is unreadable.
 */
async function containerIdForRemoval(store: ImageStore, ref: string): Promise<string> {
  try {
    return (await findContainer(store, ref)).ID;
  } catch (e) {
    if (!(e instanceof OverlayError && e.reason === 'container-not-found') || !/^[0-9a-f]{64}$/.test(ref)) throw e;
    let hasDir = true;
    try {
      await stat(store.paths.containerDir(ref));
    } catch (err) {
      if (!isNotFound(err)) throw fromNodeError(err, 'rm', { path: store.paths.containerDir(ref) });
      hasDir = false;
    }
    if (hasDir || (await store.meta.readMount(ref)) !== null) return ref;
    throw e;
  }
}

export interface RmiResult { Untagged?: string; Deleted?: string }

/**
 * `docker rmi`: untag; delete the image when no tag is left; then the layers of its chain nothing
 * references any more (other unreferenced layers are `cleanupOrphans`' to remove).
 * Refuses (EBUSY, Docker's wording) when a container uses the image, unless forced. A mounted
 * container counts as a running one (Docker's hard conflict): removing the image by id is refused
 * even when forced ("cannot be forced"), and a forced removal by its last tag only untags it, as
 * Docker does for a running container's image.
 * Mutates the store: callers in several processes must hold `withRootLock(root, 'exclusive', …)`
 * (src/fsutil/lock.ts) around the call; the library takes no lock.
 */
export async function removeImage(store: ImageStore, ref: string, opts: RmOptions = {}): Promise<RmiResult[]> {
  const id = await store.resolveImage(ref);
  const tags = await store.meta.readTags();
  const t = parseTagRef(ref);
  const byTag = t !== null && tags.get(formatTag(t)) === id ? formatTag(t) : null;
  const myTags = [...tags.entries()].filter(([, v]) => v === id).map(([k]) => k).sort();
  const short = ImageStore.shortId(id);
  const out: RmiResult[] = [];
  if (byTag !== null && myTags.length > 1) {
    tags.delete(byTag);
    await store.meta.writeTags(tags);
    return [{ Untagged: byTag }];
  }
  const users = (await store.meta.listContainers()).filter((c) => c.Image === id);
  // A mounted container counts as a running one (as `rm` treats it): a hard conflict, even forced.
  let running: ContainerRecord | undefined;
  for (const c of users) {
    const m = await store.meta.readMount(c.ID);
    if (m !== null && (await isMountPoint(mergedPath(store, m.mountId)))) {
      running = c;
      break;
    }
  }
  if (running !== undefined && byTag === null) {
    throw new OverlayError('EBUSY', 'rmi', {
      reason: 'image-in-use',
      detail: `conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${running.ID.slice(0, 12)}`,
    });
  }
  if (users.length > 0 && opts.force !== true) {
    const cshort = (users[0] as ContainerRecord).ID.slice(0, 12);
    const detail = byTag !== null
      ? `conflict: unable to remove repository reference "${byTag}" (must force) - container ${cshort} is using its referenced image ${short}`
      : `conflict: unable to delete ${short} (must be forced) - image is being used by stopped container ${cshort}`;
    throw new OverlayError('EBUSY', 'rmi', { reason: 'image-in-use', detail });
  }
  if (byTag === null && myTags.length > 1 && opts.force !== true) {
    throw new OverlayError('EBUSY', 'rmi', { reason: 'image-has-multiple-tags', detail: `conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories` });
  }
  const children: string[] = [];
  for (const other of await store.meta.listImageIds()) if (other !== id && (await store.meta.imageParent(other)) === id) children.push(other);
  const untag = byTag !== null ? [byTag] : myTags;
  if (children.length > 0 && byTag === null) {
    throw new OverlayError('EBUSY', 'rmi', { reason: 'image-has-children', detail: `conflict: unable to delete ${short} (cannot be forced) - image has dependent child images` });
  }
  for (const k of untag) { tags.delete(k); out.push({ Untagged: k }); }
  await store.meta.writeTags(tags);
  if (children.length > 0) return out; // untagged; kept as the parent of other images
  if (running !== undefined) return out; // `rmi -f TAG`: untagged; kept while a mounted container uses it (Docker's quiet conflict)
  const chain = chainIds(ImageStore.diffIdsOf((await store.config(id)).config));
  await store.meta.removeImage(id);
  out.push({ Deleted: id });
  // The layers of this image's chain that nothing references now. Layers that were unreferenced
  // before (a killed load's) are not this removal's: `cleanupOrphans` (prune) takes them.
  for (const c of await store.releaseLayers(chain)) out.push({ Deleted: c });
  return out;
}

/**
 * Tag an existing image (`docker tag`): `repoTag` (`repo[:tag]`, tag defaults to latest) now names
 * the image `ref` resolves to. Returns that image's id ("sha256:<hex>").
 * Mutates the store: callers in several processes must hold `withRootLock(root, 'exclusive', …)`
 * (src/fsutil/lock.ts) around the call; the library takes no lock.
 * @throws ENOENT (image-not-found), EINVAL (invalid-reference).
 */
export async function tagImage(store: ImageStore, ref: string, repoTag: string): Promise<string> {
  const id = await store.resolveImage(ref);
  const tag = formatTag(requireTagRef(repoTag, 'tag'));
  await store.setTag(tag, id);
  return id;
}

