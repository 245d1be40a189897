/**
 * The CLI as a user runs it (`node bin/overlay2.js …`, one process per command) on the bundled
 * example image: the README's story end to end, --json output, and bad input (clear one-line
 * error, non-zero exit, store unchanged).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync, existsSync, truncateSync, statSync, mkdirSync, readdirSync, lstatSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createHash } from 'node:crypto';
import { requiresOverlay, tempDir } from '../helpers/requires.js';
import { BIN, EXAMPLE, cli, ok } from '../helpers/cli.js';

/** Every path under `dir` with its mode, size and (files under 1 MiB) content hash: a store snapshot. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const content = st.isFile() && st.size < 1 << 20 ? createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16) : '';
      out.push(`${relative(dir, p)} ${st.mode.toString(8)} ${st.isFile() ? st.size : 0} ${content}`);
      if (st.isDirectory()) walk(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

test('the example: load, create, mount, change through the kernel mount, diff, commit, save round trip', async (t) => {
  if (!requiresOverlay(t)) return;
  const dir = tempDir(t);
  const root = join(dir, 'root');
  assert.deepEqual(lines(ok(root, ['load', EXAMPLE])), ['Loaded image: example:1']);
  const images = JSON.parse(ok(root, ['--json', 'images'])) as Array<{ tags: string[]; layers: string[] }>;
  assert.equal(images.length, 1);
  assert.deepEqual(images[0]?.tags, ['example:1']);
  assert.equal(images[0]?.layers.length, 3);

  // A second load stores nothing new.
  const layersBefore = snapshot(join(root, 'overlay2'));
  ok(root, ['load', EXAMPLE]);
  assert.deepEqual(snapshot(join(root, 'overlay2')), layersBefore);

  ok(root, ['create', '--name', 'demo', 'example:1']);
  const psRow = (): string[] => (lines(ok(root, ['ps']))[1] ?? '').split(/\s{3,}/);
  const created = psRow();
  assert.deepEqual([created[1], created[3], created[4]], ['example:1', 'Created', 'demo']);
  assert.match(created[2] ?? '', /^(Less than a second|\d+ seconds?) ago$/);
  const merged = ok(root, ['mount', 'demo']).trim();
  assert.equal(psRow()[3], 'Mounted');
  const ps = JSON.parse(ok(root, ['--json', 'ps'])) as Array<{ Name: string; Mounted: boolean; ID: string }>;
  assert.deepEqual(ps.map((c) => [c.Name, c.Mounted, c.ID.slice(0, 12)]), [['/demo', true, psRow()[0]]]);
  assert.ok(readFileSync('/proc/mounts', 'utf8').includes(` ${merged} overlay `), 'merged is a kernel overlay mount');
  // The image as its layers make it: whiteout, opaque dir, dir whiteout, hard link, symlink.
  assert.equal(existsSync(join(merged, 'etc/obsolete.conf')), false);
  assert.deepEqual(readdirSync(join(merged, 'var/cache/app')), ['fresh']);
  assert.equal(existsSync(join(merged, 'usr/share/doc')), false);
  assert.equal(statSync(join(merged, 'bin/greet')).ino, statSync(join(merged, 'bin/greet-hardlink')).ino);
  assert.equal(readFileSync(join(merged, 'etc/hostname'), 'utf8'), '');  // the init layer's, as Docker's

  writeFileSync(join(merged, 'etc/motd'), 'changed\n');
  mkdirSync(join(merged, 'srv/www'), { recursive: true });
  writeFileSync(join(merged, 'srv/www/index.html'), 'hi\n');
  spawnSync('rm', ['-r', join(merged, 'var/cache/app')]);
  const diff = lines(ok(root, ['diff', 'demo'])).sort();
  assert.deepEqual(diff, ['A /srv', 'A /srv/www', 'A /srv/www/index.html', 'C /etc', 'C /etc/motd', 'C /var', 'C /var/cache', 'D /var/cache/app']);
  const json = JSON.parse(ok(root, ['--json', 'diff', 'demo'])) as Array<{ kind: string; path: string }>;
  assert.deepEqual(json.map((c) => `${c.kind} ${c.path}`).sort(), diff);

  assert.deepEqual(JSON.parse(ok(root, ['--json', 'umount', 'demo'])), { container: 'demo', unmounted: true });
  assert.ok(!readFileSync('/proc/mounts', 'utf8').includes(` ${merged} `), 'unmounted');
  assert.deepEqual(JSON.parse(ok(root, ['--json', 'umount', 'demo'])), { container: 'demo', unmounted: false }, 'a second umount is a no-op');
  const id = ok(root, ['commit', 'demo', 'example:2']).trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);

  // The committed image shows the changes.
  ok(root, ['create', '--name', 'check', 'example:2']);
  const m2 = ok(root, ['mount', 'check']).trim();
  assert.equal(readFileSync(join(m2, 'etc/motd'), 'utf8'), 'changed\n');
  assert.equal(existsSync(join(m2, 'var/cache/app')), false);
  ok(root, ['umount', 'check']);

  // save of the loaded image is byte-identical to the archive it came from.
  const saved = join(dir, 'saved.tar');
  ok(root, ['save', 'example:1', '-o', saved]);
  assert.ok(readFileSync(saved).equals(readFileSync(EXAMPLE)), 'load → save is byte-identical');

  const info = JSON.parse(ok(root, ['--json', 'info'])) as { driverStatus: Record<string, string>; images: number; containers: number };
  assert.equal(info.driverStatus['Supports d_type'], 'true');
  assert.equal(info.images, 2);
  assert.equal(info.containers, 2);
  ok(root, ['rm', 'demo', 'check']);
  ok(root, ['rmi', 'example:2']);
  assert.equal((JSON.parse(ok(root, ['--json', 'images'])) as unknown[]).length, 1);
});

test('the example through the engine: fs ops with no mount, then diff and commit', async (t) => {
  if (!requiresOverlay(t)) return;
  const dir = tempDir(t);
  const root = join(dir, 'root');
  ok(root, ['load', EXAMPLE]);
  ok(root, ['create', '--name', 'eng', 'example:1']);
  // Only mounts under this test's root count: other test files run concurrently.
  const mountsUnder = (): string[] => readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(root));
  const mountsBefore = mountsUnder();
  ok(root, ['fs', 'eng', 'put', '/etc/motd'], 'engine\n');
  ok(root, ['fs', 'eng', 'mkdir', '-p', '/srv/a/b']);
  ok(root, ['fs', 'eng', 'ln', '-s', '../etc/motd', '/srv/a/motd']);
  ok(root, ['fs', 'eng', 'mv', '/home', '/home2']);  // a lower dir: EXDEV → copy + delete
  ok(root, ['fs', 'eng', 'rm', '-r', '/var/cache']);
  assert.deepEqual(mountsUnder(), mountsBefore, 'fs made no mount');
  assert.equal(ok(root, ['fs', 'eng', 'cat', '/etc/motd']), 'engine\n');
  assert.deepEqual(lines(ok(root, ['fs', 'eng', 'ls', '/home2/user'])), ['notes.txt']);
  const st = JSON.parse(ok(root, ['--json', 'fs', 'eng', 'stat', '/home2/user/notes.txt'])) as { uid: number; mode: string };
  assert.equal(st.uid, 1000);
  assert.equal(st.mode, '0600');
  assert.deepEqual(lines(ok(root, ['diff', 'eng'])).sort(), [
    'A /home2', 'A /home2/user', 'A /home2/user/notes.txt', 'A /srv', 'A /srv/a', 'A /srv/a/b', 'A /srv/a/motd',
    'C /etc', 'C /etc/motd', 'C /var', 'D /home', 'D /var/cache',
  ]);
  // Failing ops name the errno and the path, exit 1.
  const r = cli(root, ['fs', 'eng', 'rm', '/nonexistent']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^overlay2: ENOENT: .*'\/nonexistent'/);
  const r2 = cli(root, ['fs', 'eng', 'mkdir', '/etc']);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /EEXIST/);
  // The kernel sees what the engine wrote.
  ok(root, ['commit', 'eng', 'example:engine']);
  ok(root, ['create', '--name', 'kern', 'example:engine']);
  const merged = ok(root, ['mount', 'kern']).trim();
  assert.equal(readFileSync(join(merged, 'etc/motd'), 'utf8'), 'engine\n');
  assert.equal(existsSync(join(merged, 'home')), false);
  assert.equal(existsSync(join(merged, 'var/cache')), false);
  ok(root, ['umount', 'kern']);
});

test('bad input: clear one-line error naming the thing, exit 1, store unchanged', async (t) => {
  if (!requiresOverlay(t)) return;
  const dir = tempDir(t);
  const root = join(dir, 'root');
  ok(root, ['load', EXAMPLE]);
  const before = snapshot(root);
  /** A failed command: exit 1, one stderr line matching every pattern, nothing on stdout, store as before. */
  const fails = (args: string[], ...patterns: RegExp[]): void => {
    const r = cli(root, args);
    assert.equal(r.status, 1, `overlay2 ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    assert.equal(r.stdout, '', `overlay2 ${args.join(' ')} printed to stdout`);
    assert.equal(lines(r.stderr).length, 1, `one error line: ${r.stderr}`);
    for (const p of patterns) assert.match(r.stderr, p);
    assert.deepEqual(snapshot(root), before, `store changed by overlay2 ${args.join(' ')}`);
  };

  // Unknown image, through every command that takes one; unknown container likewise.
  fails(['create', '--name', 'xx', 'nosuch:1'], /No such image: nosuch:1$/m);
  fails(['save', 'nosuch:1', '-o', join(dir, 'out.tar')], /No such image: nosuch:1$/m);
  assert.equal(existsSync(join(dir, 'out.tar')), false, 'a failed save writes no output file');
  fails(['rmi', 'nosuch:1'], /No such image: nosuch:1$/m);
  fails(['rmi', 'nosuch'], /No such image: nosuch:latest$/m);
  fails(['tag', 'nosuch:1', 'other:2'], /No such image: nosuch:1$/m);
  for (const cmd of [['mount'], ['umount'], ['diff'], ['commit'], ['rm']]) fails([...cmd, 'nosuch'], /No such container: nosuch$/m);

  // Truncated archive.
  const truncated = join(dir, 'truncated.tar');
  copyFileSync(EXAMPLE, truncated);
  truncateSync(truncated, Math.floor(statSync(EXAMPLE).size / 2));
  fails(['load', truncated], /truncated\.tar/, /EINVAL/);
  fails(['load', join(dir, 'nope.tar')], /ENOENT.*nope\.tar/);

  // Wrong digests: a layer byte flipped (its diffID no longer matches the config), and an edited
  // config (its content digest no longer matches its name), as a directory and as a tar.
  const unpacked = join(dir, 'unpacked');
  mkdirSync(unpacked);
  spawnSync('tar', ['-xf', EXAMPLE, '-C', unpacked]);
  const manifest = JSON.parse(readFileSync(join(unpacked, 'manifest.json'), 'utf8')) as Array<{ Config: string; Layers: string[] }>;
  const layer = join(unpacked, manifest[0]?.Layers[2] ?? '');
  const bytes = readFileSync(layer);
  const at = bytes.indexOf('ustar') + 100; // inside the first header, past the magic: still a tar, a different digest
  bytes[at] = (bytes[at] ?? 0) ^ 1;
  writeFileSync(layer, bytes);
  fails(['load', unpacked], /diffid-mismatch/, /does not match rootfs\.diff_ids\[2\]/);
  const badLayerTar = join(dir, 'bad-layer.tar');
  spawnSync('tar', ['-cf', badLayerTar, '-C', unpacked, '.']);
  fails(['load', badLayerTar], /bad-layer\.tar/, /diffid-mismatch/);
  rmSync(unpacked, { recursive: true });
  mkdirSync(unpacked);
  spawnSync('tar', ['-xf', EXAMPLE, '-C', unpacked]);
  const config = join(unpacked, manifest[0]?.Config ?? '');
  writeFileSync(config, readFileSync(config, 'utf8').replace('"architecture"', '"Architecture"'));
  fails(['load', unpacked], /digest-mismatch/, /does not match its expected digest sha256:/);

  // Invalid daemon.json: the default <root>/daemon.json and an explicit --config, with the file, line and column.
  const cfg = join(root, 'daemon.json');
  writeFileSync(cfg, '{\n  "storage-driver": "overlay2",\n  "bogus": 1\n}\n');
  const withBadConfig = snapshot(root);
  for (const args of [['info'], ['load', EXAMPLE], ['create', '--name', 'yy', 'example:1']]) {
    const r = cli(root, args);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(lines(r.stderr).length, 1);
    assert.ok(r.stderr.includes(`${cfg}`), r.stderr);
    assert.match(r.stderr, /don't match any configuration option: bogus \(line 3, column 3\)/);
    assert.deepEqual(snapshot(root), withBadConfig, `store changed by overlay2 ${args.join(' ')} with a bad config`);
  }
  rmSync(cfg);
  const explicit = join(dir, 'daemon.json');
  writeFileSync(explicit, '{\n  "storage-driver": "overlay2"\n  "storage-opts": []\n}\n');
  fails(['--config', explicit, 'load', EXAMPLE], /daemon\.json.*line 3, column 3/);
  writeFileSync(explicit, '{"storage-opts": ["overlay2.size=12Q"]}');
  fails(['--config', explicit, 'info'], /invalid suffix: 'q'/);
  // Without --root, the config's own data-root is used: a config naming line/column still refuses first.
  writeFileSync(explicit, '{\n  "data-root": "/x",\n  "storage-driver": "overlay2",\n  "bogus": 1\n}\n');
  const bad = spawnSync(process.execPath, [BIN, '--config', explicit, 'info'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /daemon\.json/);
  assert.match(bad.stderr, /line 4, column 3/);
  assert.equal(existsSync('/x'), false);

  const usage = cli(root, ['create', 'example:1']);
  assert.equal(usage.status, 2, 'missing --name is a usage error');
  assert.match(usage.stderr, /^overlay2: required option '--name <name>' not specified \(run `overlay2 help`.*\)\n$/);
  // Usage errors, at the top level and in `fs`, are one line — JSON with --json.
  for (const args of [['nosuch'], ['fs', 'ctr', 'badop'], ['fs', 'ctr', 'mkdir'], ['create', 'example:1']]) {
    const human = cli(root, args);
    assert.equal(human.status, 2, args.join(' '));
    assert.equal(lines(human.stderr).length, 1, human.stderr);
    const j = cli(root, ['--json', ...args]);
    assert.equal(j.status, 2, args.join(' '));
    const err = (JSON.parse(j.stderr) as { error: { code: string; reason: string; message: string } }).error;
    assert.equal(err.code, 'EUSAGE');
    assert.equal(err.message, human.stderr.replace(/^overlay2: /, '').replace(/ \(run `overlay2 help`.*\n$/, ''));
  }
  assert.deepEqual(snapshot(root), before);
});

test('rmi -f of an image a mounted container uses is refused like Docker\'s running container: exit 1, one line, store unchanged', async (t) => {
  if (!requiresOverlay(t)) return;
  const dir = tempDir(t);
  const root = join(dir, 'root');
  ok(root, ['load', EXAMPLE]);
  const cid = ok(root, ['create', '--name', 'live', 'example:1']).trim();
  ok(root, ['mount', 'live']);
  const [image] = JSON.parse(ok(root, ['--json', 'images'])) as Array<{ id: string }>;
  const short = (image as { id: string }).id.slice(7, 19);
  const before = snapshot(root);
  for (const ref of [short, (image as { id: string }).id]) {
    const r = cli(root, ['rmi', '-f', ref]);
    assert.equal(r.status, 1, r.stdout);
    assert.deepEqual(lines(r.stderr), [`overlay2: EBUSY: resource busy or locked, rmi (image-in-use): conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${cid.slice(0, 12)}`]);
    assert.equal(r.stdout, '');
    assert.deepEqual(snapshot(root), before, 'store unchanged');
  }
  // rm says the same thing of the container itself.
  const rm = cli(root, ['rm', 'live']);
  assert.equal(rm.status, 1);
  assert.match(rm.stderr, /You cannot remove a mounted container/);
  ok(root, ['umount', 'live']);
  assert.deepEqual(lines(ok(root, ['rmi', '-f', short])), [`Untagged: example:1`, `Deleted: ${(image as { id: string }).id}`]);
});

test('prune removes driver layers nothing references and leaves images intact', async (t) => {
  if (!requiresOverlay(t)) return;
  const dir = tempDir(t);
  const root = join(dir, 'root');
  ok(root, ['load', EXAMPLE]);
  // An orphan as a load killed between layer extraction and its layerdb record leaves one.
  const { ImageStore } = await import('../../src/image/index.js');
  const store = await ImageStore.open(root);
  const orphan = 'f'.repeat(64);
  await store.driver.create(orphan, null);
  assert.ok(existsSync(join(root, 'overlay2', orphan)));
  const before = lines(ok(root, ['layers']));
  assert.match(ok(root, ['prune']), new RegExp(`removed orphan layer ${orphan}`));
  assert.equal(existsSync(join(root, 'overlay2', orphan)), false);
  assert.deepEqual(lines(ok(root, ['layers'])), before);
  assert.equal(ok(root, ['prune']).trim(), 'nothing to remove');
  // Leftovers of a dead process (a load killed with SIGKILL): prune's own open sweeps them, and says so.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  mkdirSync(join(root, 'tmp', `load-${dead}-abcdef`));
  mkdirSync(join(root, 'overlay2', `.staging-${'e'.repeat(64)}-${dead}-abcdef`));
  assert.deepEqual(lines(ok(root, ['prune'])).sort(), [`removed scratch load-${dead}-abcdef`, `removed staging .staging-${'e'.repeat(64)}-${dead}-abcdef`]);
  assert.equal(ok(root, ['prune']).trim(), 'nothing to remove');
  ok(root, ['create', '--name', 'after-prune', 'example:1']);
  const merged = ok(root, ['mount', 'after-prune']).trim();
  assert.equal(readFileSync(join(merged, 'etc/os-release'), 'utf8').includes('overlay2 example'), true);
  ok(root, ['umount', 'after-prune']);
});

test('--config without --root: the data root is the config\'s data-root', async (t) => {
  if (!requiresOverlay(t)) return;
  const dir = tempDir(t);
  const dataRoot = join(dir, 'from-config');
  const cfg = join(dir, 'daemon.json');
  writeFileSync(cfg, JSON.stringify({ 'data-root': dataRoot, 'storage-driver': 'overlay2', 'storage-opts': [] }, null, 2));
  const run = (args: string[]): string => {
    const r = spawnSync(process.execPath, [BIN, '--config', cfg, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  assert.deepEqual(lines(run(['load', EXAMPLE])), ['Loaded image: example:1']);
  assert.ok(existsSync(join(dataRoot, 'overlay2', 'l')), 'the driver home is under the configured data-root');
  assert.equal((statSync(join(dataRoot, 'overlay2')).mode & 0o7777).toString(8), '710');
  const info = JSON.parse(run(['--json', 'info'])) as { dataRoot: string; images: number };
  assert.equal(info.dataRoot, dataRoot);
  assert.equal(info.images, 1);
  assert.ok(lines(run(['info'])).includes(`Data Root: ${dataRoot}`));
});

test('load from standard input and save to standard output, as docker load < x / docker save > x', (t) => {
  if (!requiresOverlay(t)) return;
  const dir = tempDir(t);
  const root = join(dir, 'root');
  const input = readFileSync(EXAMPLE);
  const run = (args: string[], stdin?: Buffer): { status: number; stdout: Buffer; stderr: string } => {
    const r = spawnSync(process.execPath, [BIN, '--root', root, ...args], { input: stdin ?? Buffer.alloc(0) });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
  };
  // A truncated stream: one error line, nothing stored, no scratch left.
  ok(root, ['images']);
  const empty = snapshot(root);
  const bad = run(['load'], input.subarray(0, 1000));
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stderr, /archive-truncated/);
  assert.equal(lines(bad.stderr).length, 1, bad.stderr);
  assert.deepEqual(snapshot(root), empty);

  for (const args of [['load'], ['load', '-']]) {
    const r = run(args, input);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'Loaded image: example:1\n');
  }
  assert.deepEqual(readdirSync(join(root, 'tmp')), [], 'the spooled stream is removed');
  const saved = run(['save', 'example:1']);
  assert.equal(saved.status, 0, saved.stderr);
  assert.ok(saved.stdout.equals(input), 'save to stdout is byte-identical to the loaded archive');
  // -i as docker load -i; a path and -i together is a usage mistake.
  assert.equal(run(['load', '-i', EXAMPLE]).status, 0);
  const both = run(['load', '-i', EXAMPLE, EXAMPLE]);
  assert.equal(both.status, 1);
  assert.match(both.stderr, /not both/);
});

test('rm and rmi with several arguments handle each (as Docker): failures are reported, the rest still run, exit 1', (t) => {
  if (!requiresOverlay(t)) return;
  const root = join(tempDir(t), 'root');
  ok(root, ['load', EXAMPLE]);
  ok(root, ['tag', 'example:1', 't1:1']);
  ok(root, ['tag', 'example:1', 't2:1']);
  const r = cli(root, ['rmi', 't1:1', 'nosuch:1', 't2:1']);
  assert.equal(r.status, 1);
  assert.deepEqual(lines(r.stdout), ['Untagged: t1:1', 'Untagged: t2:1']);
  assert.deepEqual(lines(r.stderr).map((l) => /No such image: nosuch:1$/.test(l)), [true]);
  ok(root, ['create', '--name', 'c1', 'example:1']);
  ok(root, ['create', '--name', 'c2', 'example:1']);
  const j = cli(root, ['--json', 'rm', 'c1', 'nosuch', 'c2']);
  assert.equal(j.status, 1);
  assert.deepEqual(JSON.parse(j.stdout), { removed: ['c1', 'c2'] });
  assert.equal((JSON.parse(j.stderr) as { error: { reason: string } }).error.reason, 'container-not-found');
  assert.deepEqual(JSON.parse(ok(root, ['--json', 'ps'])), []);
  // A reader that goes away early gets no stack trace: one line, exit 1.
  // (The reader exits first; the writer starts after it, so its first write meets a pipe with no reader.)
  const p = spawnSync('sh', ['-c', `(sleep 0.5; "${process.execPath}" "${BIN}" --root "${root}" --json layers; echo "status=$?" >&2) | true`], { encoding: 'utf8' });
  assert.deepEqual(lines(p.stderr), ['overlay2: EPIPE: standard output was closed by its reader', 'status=1']);
});
