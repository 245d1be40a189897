/**
 * daemon.json-style configuration: `data-root`, `storage-driver`, `storage-opts`.
 * The file is `--config`, else `<root>/daemon.json` when a root is given, else
 * /etc/overlay2/daemon.json; a missing default file means defaults, a missing explicit one is an
 * error. Any problem names the file and, for syntax and unknown keys, the line and column.
 * dockerd's other directives are accepted and ignored, so Docker's own file can be used as is.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { OverlayError, fromNodeError, hasCode } from '../errors.js';
import { parseDriverOptions } from '../store/options.js';
import { JsonSyntaxError, parseJsonWithPositions, type JsonPosition } from './json-parse.js';

export const DEFAULT_DATA_ROOT = '/var/lib/overlay2';
export const DEFAULT_CONFIG_FILE = '/etc/overlay2/daemon.json';
export const DRIVER_NAME = 'overlay2';
const REMOVED_DRIVERS = ['aufs', 'devicemapper', 'overlay'];
const KNOWN_KEYS = ['data-root', 'storage-driver', 'storage-opts'];
/**
 * dockerd's other daemon.json directives: valid in Docker's file, so a copy of
 * /etc/docker/daemon.json is accepted; none of them concerns storage, so they are ignored.
 */
const DOCKER_ONLY_KEYS = new Set([
  'allow-nondistributable-artifacts', 'api-cors-header', 'authorization-plugins', 'bip', 'bip6', 'bridge', 'builder',
  'cdi-spec-dirs', 'cgroup-parent', 'containerd', 'containerd-namespace', 'containerd-plugins-namespace', 'debug',
  'default-address-pools', 'default-cgroupns-mode', 'default-gateway', 'default-gateway-v6', 'default-ipc-mode',
  'default-network-opts', 'default-runtime', 'default-shm-size', 'default-ulimits', 'dns', 'dns-opts', 'dns-search',
  'exec-opts', 'exec-root', 'experimental', 'features', 'fixed-cidr', 'fixed-cidr-v6', 'group', 'host-gateway-ip',
  'hosts', 'icc', 'init', 'init-path', 'insecure-registries', 'ip', 'ip-forward', 'ip-masq', 'ip6tables', 'iptables',
  'ipv6', 'labels', 'live-restore', 'log-driver', 'log-format', 'log-level', 'log-opts', 'max-concurrent-downloads',
  'max-concurrent-uploads', 'max-download-attempts', 'metrics-addr', 'min-api-version', 'mtu', 'no-new-privileges',
  'node-generic-resources', 'oom-score-adjust', 'pidfile', 'proxies', 'raw-logs', 'registry-mirrors', 'runtimes',
  'seccomp-profile', 'selinux-enabled', 'shutdown-timeout', 'swarm-default-advertise-addr', 'tls', 'tlscacert',
  'tlscert', 'tlskey', 'tlsverify', 'userland-proxy', 'userland-proxy-path', 'userns-remap',
]);

export interface DaemonConfig {
  dataRoot: string;
  storageDriver: 'overlay2';
  storageOpts: string[];
  /** The file read, or undefined when defaults were used. */
  file?: string;
}

export interface LoadConfigOptions {
  /** `--config FILE` (explicit: must exist). */
  configFile?: string;
  /** `--root DIR`: the default config file is then `<root>/daemon.json`, and it is the default data root. */
  root?: string;
}

function configError(file: string, reason: string, detail: string, pos?: JsonPosition): OverlayError {
  const where = pos ? ` (line ${pos.line}, column ${pos.column})` : '';
  return new OverlayError('EINVAL', 'load config', {
    path: file,
    reason,
    detail: `unable to configure the daemon with file ${file}: ${detail}${where}`,
  });
}

/** Docker's check for a removed driver, and refusal of anything but overlay2. */
export function checkStorageDriver(name: string, file = '<flags>', pos?: JsonPosition): void {
  if (name === DRIVER_NAME) return;
  if (REMOVED_DRIVERS.includes(name)) {
    throw configError(file, 'storage-driver-removed', `[graphdriver] ERROR: the ${name} storage-driver has been deprecated and removed; visit https://docs.docker.com/go/storage-driver/ for more information`, pos);
  }
  throw configError(file, 'storage-driver-unsupported', `driver not supported: ${name} (only ${DRIVER_NAME} is available)`, pos);
}

/** Parse and validate the text of a config file. */
export function parseDaemonConfig(text: string, file: string, defaults: { dataRoot?: string } = {}): DaemonConfig {
  let parsed;
  try {
    parsed = parseJsonWithPositions(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw configError(file, 'config-invalid-json', e.what, e.position);
    throw e;
  }
  const v = parsed.value;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw configError(file, 'config-not-object', 'the configuration must be a JSON object', { offset: 0, line: 1, column: 1 });
  }
  const obj = v as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((k) => !KNOWN_KEYS.includes(k) && !DOCKER_ONLY_KEYS.has(k));
  if (unknown.length > 0) {
    const first = unknown[0] ?? '';
    throw configError(file, 'config-unknown-key', `the following directives don't match any configuration option: ${unknown.join(', ')}`, parsed.keyPositions.get(first));
  }
  const cfg: DaemonConfig = { dataRoot: defaults.dataRoot ?? DEFAULT_DATA_ROOT, storageDriver: DRIVER_NAME, storageOpts: [], file };
  if ('data-root' in obj) {
    const d = obj['data-root'];
    if (typeof d !== 'string' || d === '') throw configError(file, 'config-bad-value', 'data-root must be a non-empty string', parsed.keyPositions.get('data-root'));
    if (!isAbsolute(d)) throw configError(file, 'config-bad-value', `data-root must be an absolute path: ${d}`, parsed.keyPositions.get('data-root'));
    // Docker refuses a directive given both as a flag and in the file when they differ, rather
    // than silently picking one: a store the user did not ask for must never be written.
    if (defaults.dataRoot !== undefined && resolve(d) !== defaults.dataRoot) {
      throw configError(
        file,
        'config-conflict',
        `the following directives are specified both as a flag and in the configuration file: data-root: (from flag: ${defaults.dataRoot}, from file: ${resolve(d)})`,
        parsed.keyPositions.get('data-root'),
      );
    }
    cfg.dataRoot = resolve(d);
  }
  if ('storage-driver' in obj) {
    const d = obj['storage-driver'];
    if (typeof d !== 'string') throw configError(file, 'config-bad-value', 'storage-driver must be a string', parsed.keyPositions.get('storage-driver'));
    if (d !== '') checkStorageDriver(d, file, parsed.keyPositions.get('storage-driver'));
  }
  if ('storage-opts' in obj) {
    const o = obj['storage-opts'];
    const pos = parsed.keyPositions.get('storage-opts');
    if (!Array.isArray(o) || !o.every((x): x is string => typeof x === 'string')) {
      throw configError(file, 'config-bad-value', 'storage-opts must be an array of strings', pos);
    }
    try {
      parseDriverOptions(o);
    } catch (e) {
      if (e instanceof OverlayError) {
        const marker = `(${e.reason ?? ''}): `;
        const at = e.message.indexOf(marker);
        const inner = at >= 0 ? e.message.slice(at + marker.length) : e.message;
        throw configError(file, e.reason ?? 'storage-opt-invalid', inner, pos);
      }
      throw e;
    }
    cfg.storageOpts = [...o];
  }
  return cfg;
}

/** Find, read and validate the config. */
export async function loadDaemonConfig(opts: LoadConfigOptions = {}): Promise<DaemonConfig> {
  const explicit = opts.configFile !== undefined;
  const file = opts.configFile ?? (opts.root !== undefined ? join(opts.root, 'daemon.json') : DEFAULT_CONFIG_FILE);
  const defaults = opts.root !== undefined ? { dataRoot: resolve(opts.root) } : {};
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (!explicit && hasCode(e, 'ENOENT')) return { dataRoot: defaults.dataRoot ?? DEFAULT_DATA_ROOT, storageDriver: DRIVER_NAME, storageOpts: [] };
    if (!explicit && opts.root !== undefined && hasCode(e, 'ENOTDIR')) {
      // `<root>/daemon.json` is only looked for: the real problem is the root itself.
      throw new OverlayError('ENOTDIR', 'open data root', { path: resolve(opts.root), reason: 'data-root-not-a-directory', detail: `data root ${resolve(opts.root)} is not a directory` });
    }
    throw fromNodeError(e, 'load config', { path: file });
  }
  return parseDaemonConfig(text, file, defaults);
}
