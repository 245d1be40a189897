/**
 * Image references in Docker's familiar form: `repo[:tag]` (tag defaults to `latest`), with
 * `docker.io/library/` stripped; or an image id (`sha256:<hex>`, full hex, or a unique hex prefix).
 */
import { OverlayError } from '../errors.js';

export interface TagRef { repo: string; tag: string }

const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const DOMAIN_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;

/** Parse `repo[:tag]`; null if it is not a valid tag reference (digest refs are not tags). */
export function parseTagRef(ref: string): TagRef | null {
  if (ref.includes('@')) return null;
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  let repo = ref;
  let tag = 'latest';
  if (colon > slash) {
    repo = ref.slice(0, colon);
    tag = ref.slice(colon + 1);
  }
  if (!TAG_RE.test(tag)) return null;
  const parts = repo.split('/');
  let path = repo;
  if (parts.length > 1 && (parts[0]?.includes('.') === true || parts[0]?.includes(':') === true || parts[0] === 'localhost')) {
    if (!DOMAIN_RE.test(parts[0] ?? '')) return null;
    path = parts.slice(1).join('/');
  }
  if (!REPO_RE.test(path) || repo.length > 255) return null;
  if (repo.startsWith('docker.io/library/')) repo = repo.slice('docker.io/library/'.length);
  else if (repo.startsWith('docker.io/')) repo = repo.slice('docker.io/'.length);
  return { repo, tag };
}

export const formatTag = (r: TagRef): string => `${r.repo}:${r.tag}`;

/**
 * Parse a repository name (no tag, no digest) by Docker's reference grammar: an optional registry
 * host (`host[:port]`, or `localhost`) then `/`-separated lowercase path components
 * `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`, at most 255 characters. Returns the familiar name
 * (`docker.io/library/` stripped), or null when invalid.
 */
export function parseRepository(name: string): string | null {
  if (name.includes('@') || name.length === 0) return null;
  const parts = name.split('/');
  const first = parts[0] ?? '';
  let path = name;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN_RE.test(first)) return null;
    path = parts.slice(1).join('/');
  }
  if (!REPO_RE.test(path) || name.length > 255) return null;
  if (name.startsWith('docker.io/library/')) return name.slice('docker.io/library/'.length);
  if (name.startsWith('docker.io/')) return name.slice('docker.io/'.length);
  return name;
}

/** parseRepository or EINVAL (reason invalid-reference) with Docker's "invalid reference format". */
export function requireRepository(name: string, op: string): string {
  const r = parseRepository(name);
  if (r === null) {
    throw new OverlayError('EINVAL', op, { reason: 'invalid-reference', detail: `invalid reference format: repository name ${JSON.stringify(name)} must be lowercase path components [a-z0-9]+ (separated by ".", "_", "__" or "-") joined by "/", with an optional registry host, and no tag or digest` });
  }
  return r;
}

export function requireTagRef(ref: string, op: string): TagRef {
  const r = parseTagRef(ref);
  if (r === null) throw new OverlayError('EINVAL', op, { reason: 'invalid-reference', detail: `invalid reference format: ${JSON.stringify(ref)}` });
  return r;
}

/** An id-like string: sha256:<hex…> or bare hex (≥ 1 char). Returns the hex part or null. */
export function idPrefix(ref: string): string | null {
  const s = ref.startsWith('sha256:') ? ref.slice(7) : ref;
  return /^[0-9a-f]{1,64}$/.test(s) ? s : null;
}
