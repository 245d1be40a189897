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
