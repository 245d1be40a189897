import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_DATA_ROOT, loadDaemonConfig, parseDaemonConfig } from '../../src/config/index.js';
import { parseJsonWithPositions, JsonSyntaxError } from '../../src/config/json-parse.js';
import { OverlayError } from '../../src/errors.js';
import { tempDir } from '../helpers/requires.js';

const refuses = (text: string, reason: string, detail: RegExp | string) => {
  assert.throws(() => parseDaemonConfig(text, '/etc/x/daemon.json'), (e: unknown) => {
    assert.ok(e instanceof OverlayError, String(e));
    assert.equal(e.code, 'EINVAL');
    assert.equal(e.reason, reason);
    assert.equal(e.path, '/etc/x/daemon.json');
    if (typeof detail === 'string') assert.ok(e.message.includes(detail), e.message);
    else assert.match(e.message, detail);
    return true;
  });
};

test('parseDaemonConfig() accepts the three keys', () => {
  const c = parseDaemonConfig('{"data-root": "/srv/ovl", "storage-driver": "overlay2", "storage-opts": ["overlay2.size=10G"]}', '/f');
  assert.deepEqual(c, { dataRoot: '/srv/ovl', storageDriver: 'overlay2', storageOpts: ['overlay2.size=10G'], file: '/f' });
  assert.equal(parseDaemonConfig('{}', '/f').dataRoot, DEFAULT_DATA_ROOT);
});

test('invalid JSON is refused with the file, line and column', () => {
  refuses('{\n  "data-root": "/x",\n  "storage-driver": overlay2\n}', 'config-invalid-json', '(line 3, column 21)');
  refuses('{\n  "data-root": "/x",\n}', 'config-invalid-json', '(line 3, column 1)');
  refuses('{"data-root": "/x"', 'config-invalid-json', /unexpected end of JSON input \(line 1, column 19\)/);
  refuses('{"a": 1} x', 'config-invalid-json', '(line 1, column 10)');
  refuses('', 'config-invalid-json', '(line 1, column 1)');
  refuses('{"data-root": "/x"', 'config-invalid-json', 'unable to configure the daemon with file /etc/x/daemon.json:');
});

test('an unknown top-level key is refused at its line and column', () => {
  refuses('{\n  "data-root": "/x",\n    "debugg": true\n}', 'config-unknown-key', /don't match any configuration option: debugg \(line 3, column 5\)/);
});

test("dockerd's own directives (a copy of /etc/docker/daemon.json) are accepted and ignored", () => {
  const c = parseDaemonConfig('{"data-root": "/srv/d", "debug": true, "log-level": "warn", "registry-mirrors": ["https://m"], "storage-driver": "overlay2", "storage-opts": []}', '/etc/docker/daemon.json');
  assert.deepEqual({ dataRoot: c.dataRoot, storageDriver: c.storageDriver, storageOpts: c.storageOpts }, { dataRoot: '/srv/d', storageDriver: 'overlay2', storageOpts: [] });
  // A key next to them that Docker does not know is still refused, at its position.
  refuses('{"debug": true,\n "log-levle": "warn"}', 'config-unknown-key', /don't match any configuration option: log-levle \(line 2, column 2\)/);
  refuses('[1]', 'config-not-object', '(line 1, column 1)');
});

test('storage-driver: overlay2 only; aufs/devicemapper/overlay are "deprecated and removed"', () => {
  for (const d of ['aufs', 'devicemapper', 'overlay']) {
    refuses(`{"storage-driver": "${d}"}`, 'storage-driver-removed', `[graphdriver] ERROR: the ${d} storage-driver has been deprecated and removed; visit https://docs.docker.com/go/storage-driver/ for more information`);
  }
  refuses('{"storage-driver": "btrfs"}', 'storage-driver-unsupported', 'driver not supported: btrfs');
});

test('storage-opts are validated with Docker\'s messages', () => {
  refuses('{"storage-opts": ["overlay2.size=10Q"]}', 'invalid-suffix', "invalid suffix: 'q'");
  refuses('{"storage-opts": ["overlay2.size=abc"]}', 'invalid-size', "invalid size: 'abc'");
  refuses('{"storage-opts": ["overlay2.foo=1"]}', 'unknown-storage-opt', 'overlay2: unknown option overlay2.foo');
  refuses('{"storage-opts": ["overlay2.size"]}', 'storage-opt-syntax', 'unable to parse storage-opt key/value: overlay2.size');
  refuses('{"storage-opts": "overlay2.size=1G"}', 'config-bad-value', 'storage-opts must be an array of strings');
  refuses('{"data-root": "relative/dir"}', 'config-bad-value', 'data-root must be an absolute path');
});

test('loadDaemonConfig(): explicit file must exist; default <root>/daemon.json may be absent', async (t) => {
  const d = tempDir(t);
  await assert.rejects(loadDaemonConfig({ configFile: join(d, 'nope.json') }), (e: unknown) => e instanceof OverlayError && e.code === 'ENOENT');
  // A --root that is a file is named as the problem, not the daemon.json looked for inside it.
  writeFileSync(join(d, 'afile'), '');
  await assert.rejects(loadDaemonConfig({ root: join(d, 'afile') }), (e: unknown) =>
    e instanceof OverlayError && e.code === 'ENOTDIR' && e.reason === 'data-root-not-a-directory' && e.path === join(d, 'afile'));
  assert.deepEqual(await loadDaemonConfig({ root: d }), { dataRoot: d, storageDriver: 'overlay2', storageOpts: [] });
  writeFileSync(join(d, 'daemon.json'), '{"storage-opts": ["overlay2.size=1g"]}');
  const c = await loadDaemonConfig({ root: d });
  assert.deepEqual(c.storageOpts, ['overlay2.size=1g']);
  assert.equal(c.file, join(d, 'daemon.json'));
  writeFileSync(join(d, 'bad.json'), '{\n"x": 1}');
  await assert.rejects(loadDaemonConfig({ configFile: join(d, 'bad.json') }), (e: unknown) => e instanceof OverlayError && e.message.includes(`${join(d, 'bad.json')}`) && e.message.includes('(line 2, column 1)'));
});

test('parseJsonWithPositions() agrees with JSON.parse on valid input and rejects what it rejects', () => {
  const good = ['{"a":[1,2.5,-3e2,true,false,null,"x\\u0041\\n"],"b":{}}', '[]', '"s"', '0', ' {"k" : "v" } '];
  for (const g of good) assert.deepEqual(parseJsonWithPositions(g).value, JSON.parse(g));
  const bad = ['{"a":01}', '{"a":1,}', "{'a':1}", '{"a":"\t"}', '[1 2]', '{"a" 1}', 'tru', '{"a":.5}', '"\\x"'];
  for (const b of bad) {
    assert.throws(() => JSON.parse(b));
    assert.throws(() => parseJsonWithPositions(b), JsonSyntaxError, b);
  }
});

test('--root and a different data-root in the config conflict (Docker refuses flag/file conflicts)', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'daemon.json'), '{"data-root": "/elsewhere"}');
  await assert.rejects(loadDaemonConfig({ root: dir }), (e: unknown) => {
    const err = e as { code?: string; reason?: string; message: string };
    return err.code === 'EINVAL' && err.reason === 'config-conflict' && err.message.includes('from flag: ' + dir) && err.message.includes('/elsewhere');
  });
  writeFileSync(join(dir, 'daemon.json'), JSON.stringify({ 'data-root': dir }));
  assert.equal((await loadDaemonConfig({ root: dir })).dataRoot, dir);
});
