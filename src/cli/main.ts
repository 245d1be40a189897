/**
 * The `overlay2` command line: parse (commander), call the library, print (human or --json).
 * Every command is one process; errors print one line naming what failed and why, exit 1
 * (2 for usage errors).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Command, CommanderError, Option } from 'commander';
import { OverlayError } from '../errors.js';
import { loadDaemonConfig, type DaemonConfig } from '../config/index.js';
import { acquireRootLock, type LockMode } from '../fsutil/lock.js';
import type { DriverOptions } from '../store/driver.js';
import {
  ImageStore, loadImages, saveImages, createContainer, mountContainer, umountContainer, isContainerMounted, containerChanges,
  commitContainer, removeContainer, removeImage, tagImage,
} from '../image/index.js';
import { ownerPid } from '../image/store.js';
import { createdAgo, errorJson, errorLine, exitCodeFor, humanSize, printJson, shortId, table, type Output } from './render.js';
import { registerFsCommand } from './fs-command.js';

interface GlobalOptions {
  root?: string;
  config?: string;
  json?: boolean;
}

export interface CliContext {
  output: Output;
  /**
   * Opens the store once per command, after the config is read, holding the data root's lock
   * (`exclusive` for commands that change the store, `shared` for reads) until the command ends.
   */
  store: (mode?: LockMode) => Promise<ImageStore>;
  /** The store with the driver in engine mode: no kernel mount, no privilege needed. */
  engineStore: (mode?: LockMode) => Promise<ImageStore>;
  config: () => Promise<DaemonConfig>;
}

function makeContext(program: Command, output: Output, releases: Array<() => void>): CliContext {
  let cfg: Promise<DaemonConfig> | undefined;
  let store: Promise<ImageStore> | undefined;
  const open = (mode: LockMode, driver: DriverOptions): Promise<ImageStore> => {
    store ??= config().then(async (c) => {
      const onWait = (): void => output.err(`overlay2: waiting for another overlay2 process to release ${c.dataRoot}\n`);
      releases.push(await acquireRootLock(c.dataRoot, mode, { onWait }));
      return ImageStore.open(c.dataRoot, { driver: { storageOpts: c.storageOpts, ...driver } });
    });
    return store;
  };
  const config = (): Promise<DaemonConfig> => {
    const g = program.opts<GlobalOptions>();
    const opts: { configFile?: string; root?: string } = {};
    if (g.config !== undefined) opts.configFile = g.config;
    if (g.root !== undefined) opts.root = g.root;
    cfg ??= loadDaemonConfig(opts);
    return cfg;
  };
  return {
    output,
    config,
    store: (mode = 'exclusive') => open(mode, {}),
    engineStore: (mode = 'exclusive') => open(mode, { mountMode: 'engine' }),
  };
}

function kernelVersion(): string {
  return release();
}

export function buildProgram(output: Output, releases: Array<() => void> = []): Command {
  const program = new Command();
  const ctx = makeContext(program, output, releases);
  const json = (): boolean => program.opts<GlobalOptions>().json === true;
  /**
   * Docker's way with several arguments (rm, rmi): each is handled on its own, a failure is reported
   * and the rest still run; the command fails at the end if any did. With --json, what succeeded
   * goes to stdout (as `jsonOf` shapes it) either way.
   */
  const eachArgument = async <T>(args: string[], fn: (arg: string) => Promise<T>, jsonOf: (done: T[]) => unknown): Promise<void> => {
    const done: T[] = [];
    let failed = 0;
    for (const a of args) {
      try {
        done.push(await fn(a));
      } catch (e) {
        failed++;
        output.err(json() ? JSON.stringify({ error: errorJson(e) }) + '\n' : errorLine(e) + '\n');
      }
    }
    if (json()) printJson(output, jsonOf(done));
    if (failed > 0) throw new AlreadyReported();
  };
  const print = (human: string, value: unknown): void => {
    if (json()) printJson(output, value);
    else if (human !== '') output.out(human.endsWith('\n') ? human : human + '\n');
  };

  program
    .name('overlay2')
    .description("Docker's overlay2 storage driver, daemonless: load images, mount containers with the kernel, diff and commit")
    .option('--root <dir>', 'data root (default: data-root from the config, else /var/lib/overlay2)')
    .option('--config <file>', 'daemon.json-style config (default: <root>/daemon.json or /etc/overlay2/daemon.json)')
    .option('--json', 'machine-readable output')
    .enablePositionalOptions()
    .exitOverride()
    // Usage errors are printed by main() as one line (or JSON with --json), not by commander.
    .configureOutput({ writeOut: (s) => output.out(s), writeErr: (s) => output.err(s), outputError: () => undefined });

  program
    .command('info')
    .description('storage driver facts (as `docker info` prints them) and store counts')
    .action(async () => {
      const store = await ctx.store('shared');
      const info = await store.info();
      const status = Object.fromEntries(info.driverStatus);
      const value = { storageDriver: 'overlay2', driverStatus: status, dataRoot: info.dataRoot, kernelVersion: kernelVersion(), layers: info.layers, images: info.images, containers: info.containers };
      const lines = [
        'Storage Driver: overlay2',
        ...info.driverStatus.map(([k, v]) => ` ${k}: ${v}`),
        `Data Root: ${info.dataRoot}`,
        `Kernel Version: ${kernelVersion()}`,
        `Layers: ${info.layers}`,
        `Images: ${info.images}`,
        `Containers: ${info.containers}`,
      ];
      print(lines.join('\n'), value);
    });

  program
    .command('load')
    .description('load a `docker save` archive or an OCI image layout (directory or tar); standard input without a path, as `docker load`')
    .argument('[path]', 'archive file or OCI layout directory; - or none: standard input (an archive)')
    .option('-i, --input <file>', 'archive to read (as docker load -i)')
    .option('--repository <name>', 'repository for OCI images whose ref name is a bare tag')
    .action(async (path: string | undefined, o: { input?: string; repository?: string }) => {
      if (path !== undefined && o.input !== undefined) {
        throw new OverlayError('EINVAL', 'load', { reason: 'usage', detail: 'give the archive as an argument or with -i, not both' });
      }
      const source = path ?? o.input ?? '-';
      const opts = o.repository !== undefined ? { repository: o.repository } : {};
      if (source === '-' && process.stdin.isTTY === true) {
        throw new OverlayError('EINVAL', 'load', { reason: 'stdin-is-terminal', detail: 'requested load from stdin, but stdin is empty (give a path, -i FILE, or redirect an archive)' });
      }
      const store = await ctx.store();
      let r;
      if (source === '-') {
        // A stream cannot be read twice or seeked: spool it into scratch on the data root's fs.
        const dir = await store.scratch('stdin');
        try {
          const file = join(dir, 'stdin.tar');
          await pipeline(process.stdin, createWriteStream(file));
          r = await loadImages(store, file, opts);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      } else {
        r = await loadImages(store, source, opts);
      }
      print(r.messages.join('\n'), r);
    });

  program
    .command('images')
    .description('list images')
    .action(async () => {
      const store = await ctx.store('shared');
      // Newest first, as `docker images`.
      const createdMs = (c: string | null): number => (c === null ? 0 : Date.parse(c) || 0);
      const images = (await store.images()).sort((a, b) => createdMs(b.created) - createdMs(a.created));
      const rows: string[][] = [];
      for (const img of images) {
        const tags = img.tags.length > 0 ? img.tags : ['<none>:<none>'];
        for (const t of tags) {
          const i = t.lastIndexOf(':');
          rows.push([t.slice(0, i), t.slice(i + 1), shortId(img.id), createdAgo(img.created), humanSize(img.size)]);
        }
      }
      print(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows), images);
    });

  program
    .command('ps')
    .description('list containers (all of them, as `docker ps -a`): id, image, created, mounted or not, name')
    .action(async () => {
      const store = await ctx.store('shared');
      const containers = (await store.containers()).sort((a, b) => (Date.parse(b.Created) || 0) - (Date.parse(a.Created) || 0));
      const list = [];
      for (const c of containers) list.push({ ...c, Mounted: await isContainerMounted(store, c) });
      const rows = list.map((c) => [shortId(c.ID), c.ImageRef, createdAgo(c.Created), c.Mounted ? 'Mounted' : 'Created', c.Name.replace(/^\//, '')]);
      print(table(['CONTAINER ID', 'IMAGE', 'CREATED', 'STATUS', 'NAMES'], rows), list);
    });

  program
    .command('layers')
    .description('list layers: chain ID, diff ID, driver id (dir under overlay2/), parent, size')
    .action(async () => {
      const store = await ctx.store('shared');
      const layers = await store.layers();
      const rows = layers.map((l) => [shortId(l.chainId), shortId(l.diffId), l.cacheId, l.parent === null ? '-' : shortId(l.parent), humanSize(l.size)]);
      print(table(['CHAIN ID', 'DIFF ID', 'CACHE ID', 'PARENT', 'SIZE'], rows), layers);
    });

  program
    .command('create')
    .description("create a container (init + read-write layer) from an image")
    .requiredOption('--name <name>', 'container name')
    .argument('<image>', 'image reference (repo:tag, id or id prefix)')
    .action(async (image: string, o: { name: string }) => {
      const store = await ctx.store();
      const r = await createContainer(store, o.name, image);
      print(r.id, r);
    });

  program
    .command('mount')
    .description("mount a container's layers with the kernel and print the merged path")
    .argument('<container>', 'name or id')
    .action(async (name: string) => {
      const store = await ctx.store();
      const merged = await mountContainer(store, name);
      print(merged, { container: name, merged });
    });

  program
    .command('umount')
    .description("unmount a container's merged view")
    .argument('<container>', 'name or id')
    .action(async (name: string) => {
      const store = await ctx.store();
      // Idempotent, as the driver's put; --json tells whether there was a mount to take down.
      const wasMounted = await isContainerMounted(store, name);
      await umountContainer(store, name);
      print('', { container: name, unmounted: wasMounted });
    });

  program
    .command('diff')
    .description("changes in a container's filesystem, as `docker diff` prints them (A/C/D)")
    .argument('<container>', 'name or id')
    .action(async (name: string) => {
      const store = await ctx.store('shared');
      const changes = await containerChanges(store, name);
      // JSON: a path that is not UTF-8 also comes as its bytes, base64 (`pathBytes`).
      print(changes.map((c) => `${c.kind} ${c.path}`).join('\n'), changes.map((c) => (c.pathBytes === undefined ? c : { ...c, pathBytes: c.pathBytes.toString('base64') })));
    });

  program
    .command('commit')
    .description("create a new image from a container's changes")
    .argument('<container>', 'name or id')
    .argument('[repo:tag]', 'tag for the new image')
    .option('-m, --message <text>', 'commit message')
    .option('-a, --author <name>', 'author')
    .action(async (name: string, tag: string | undefined, o: { message?: string; author?: string }) => {
      const store = await ctx.store();
      const opts: { message?: string; author?: string } = {};
      if (o.message !== undefined) opts.message = o.message;
      if (o.author !== undefined) opts.author = o.author;
      const r = await commitContainer(store, name, tag ?? null, opts);
      print(r.id, r);
    });

  program
    .command('save')
    .description('save images to a `docker save` archive (standard output without -o, as `docker save`)')
    .argument('<images...>', 'image references')
    .option('-o, --output <file>', 'archive to write (default: standard output)')
    .action(async (images: string[], o: { output?: string }) => {
      if (o.output === undefined && process.stdout.isTTY === true) {
        throw new OverlayError('EINVAL', 'save', { reason: 'stdout-is-terminal', detail: 'cowardly refusing to save to a terminal. Use the -o flag or redirect' });
      }
      const store = await ctx.store('shared');
      if (o.output !== undefined) {
        await saveImages(store, images, o.output);
        print('', { images, output: o.output });
        return;
      }
      // The archive is complete and checked before its first byte reaches standard output.
      const dir = await store.scratch('stdout');
      try {
        const file = join(dir, 'archive.tar');
        await saveImages(store, images, file);
        await pipeline(createReadStream(file), process.stdout, { end: false });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

  program
    .command('tag')
    .description('add a tag to an image')
    .argument('<image>', 'source image')
    .argument('<repo:tag>', 'new tag')
    .action(async (image: string, tag: string) => {
      const store = await ctx.store();
      const id = await tagImage(store, image, tag);
      print('', { id, tag });
    });

  program
    .command('rm')
    .description('remove containers (their layers too)')
    .argument('<containers...>', 'names or ids')
    .option('-f, --force', 'unmount a mounted container first')
    .action(async (names: string[], o: { force?: boolean }) => {
      const store = await ctx.store();
      await eachArgument(names, async (n) => {
        await removeContainer(store, n, { force: o.force === true });
        if (!json()) output.out(`${n}\n`);
        return n;
      }, (removed) => ({ removed }));
    });

  program
    .command('rmi')
    .description('remove images (and layers no longer used)')
    .argument('<images...>', 'image references')
    .option('-f, --force', 'remove even when tagged more than once')
    .action(async (images: string[], o: { force?: boolean }) => {
      const store = await ctx.store();
      const line = (r: { Untagged?: string; Deleted?: string }): string => (r.Untagged !== undefined ? `Untagged: ${r.Untagged}` : `Deleted: ${r.Deleted ?? ''}`);
      await eachArgument(images, async (i) => {
        const r = await removeImage(store, i, { force: o.force === true });
        if (!json() && r.length > 0) output.out(r.map(line).join('\n') + '\n');
        return r;
      }, (all) => all.flat());
    });

  program
    .command('prune')
    .description('remove what interrupted commands left behind: scratch dirs, staging dirs, layers no image or container uses')
    .action(async () => {
      // The exclusive lock keeps other overlay2 commands out; a library user in another process may
      // not hold it, so cleanupOrphans still keeps whatever a live process owns.
      const store = await ctx.store('exclusive');
      const r = await store.cleanupOrphans();
      const lines = [
        ...r.scratch.map((n) => `removed scratch ${n}`), ...r.staging.map((n) => `removed staging ${n}`),
        ...r.chains.map((c) => `removed layer ${c}`), ...r.layers.map((n) => `removed orphan layer ${n}`),
        ...r.inUse.map((n) => `kept ${n}: process ${ownerPid(n.split('/').at(-1) ?? '') ?? '?'} is running`),
      ];
      if (r.inUse.length > 0) lines.push('kept unreferenced layers: a running process may be recording them (run prune again when it has finished)');
      print(lines.length > 0 ? lines.join('\n') : 'nothing to remove', r);
    });

  registerFsCommand(program, ctx, print);
  return program;
}

/** Some arguments of a command failed; each failure was printed when it happened. */
class AlreadyReported extends Error {
  constructor() {
    super('some arguments failed');
  }
}

/** Run the CLI; returns the exit status. */
export async function main(argv: string[], output?: Output): Promise<number> {
  const o: Output = output ?? {
    json: false,
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
  };
  if (output === undefined) {
    // A reader that went away (`overlay2 images | head -1`): one line, not an unhandled 'error' event.
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      process.stderr.write('overlay2: EPIPE: standard output was closed by its reader\n');
      process.exit(1);
    });
  }
  const releases: Array<() => void> = [];
  const program = buildProgram(o, releases);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version are not failures.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      const message = e.message.replace(/^error: /, '');
      if (argv.includes('--json')) o.err(JSON.stringify({ error: { code: 'EUSAGE', reason: 'usage', message } }) + '\n');
      else o.err(`overlay2: ${message} (run \`overlay2 help\` or \`overlay2 COMMAND --help\` for usage)\n`);
      return 2;
    }
    if (e instanceof AlreadyReported) return 1;
    if (argv.includes('--json')) o.err(JSON.stringify({ error: errorJson(e) }) + '\n');
    else o.err(errorLine(e) + '\n');
    if (process.env['OVERLAY2_DEBUG'] === '1' && e instanceof Error) o.err(`${e.stack ?? ''}\n`);
    return exitCodeFor(e);
  } finally {
    for (const release of releases) release();
  }
}

export { Option, OverlayError };
