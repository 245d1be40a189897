/**
 * Content digests as Docker and OCI use them: "sha256:<64 hex>". A layer's diffID is the digest of
 * its uncompressed tar; its chainID is chain(diffIDs) per the OCI image spec
 * (chainID(1) = diffID(1); chainID(n) = sha256(chainID(n-1) + " " + diffID(n))); an image's ID is
 * the digest of its config bytes exactly as stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { OverlayError, fromNodeError } from '../errors.js';

/** diffID of the empty layer tar (1024 zero bytes); Docker marks such commits `empty_layer`. */
export const EMPTY_LAYER_DIFF_ID = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

/**
 * Docker's layer-store limit (maxLayerDepth): a layer may not be registered on a parent chain of
 * this depth, so an image has at most 125 layers and its container's init and rw layers still fit
 * the driver's 128 lowers. Exceeding it is EINVAL (reason max-depth-exceeded) "max depth exceeded".
 */
export const MAX_LAYER_DEPTH = 125;

/** The error for a layer registered on a chain of `parentDepth` layers, or null when it fits. */
export function layerDepthError(op: string, parentDepth: number, what: string): OverlayError | null {
  if (parentDepth < MAX_LAYER_DEPTH) return null;
  return new OverlayError('EINVAL', op, { reason: 'max-depth-exceeded', detail: `${what}, at most ${MAX_LAYER_DEPTH} layers per image: max depth exceeded` });
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const HEX_RE = /^[0-9a-f]{64}$/;

export const isDigest = (s: string): boolean => DIGEST_RE.test(s);
export const isHex64 = (s: string): boolean => HEX_RE.test(s);

/** The hex part of a "sha256:<hex>" digest (validated). */
export function digestHex(digest: string, what = 'digest'): string {
  if (!DIGEST_RE.test(digest)) {
    throw new OverlayError('EINVAL', 'parseDigest', { reason: 'invalid-digest', detail: `${what} ${JSON.stringify(digest)} is not sha256:<64 hex>` });
  }
  return digest.slice(7);
}

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** sha256 of a file's bytes, streamed. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  } catch (e) {
    throw fromNodeError(e, 'sha256File', { path: file });
  }
  return `sha256:${h.digest('hex')}`;
}

/** chainIDs for each prefix of `diffIds` (bottom layer first). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  let chain: string | undefined;
  for (const d of diffIds) {
    chain = chain === undefined ? d : sha256Digest(`${chain} ${d}`);
    out.push(chain);
  }
  return out;
}

/** chainID of `diffId` on top of `parentChain` (null for a base layer). */
export function chainOf(parentChain: string | null, diffId: string): string {
  return parentChain === null ? diffId : sha256Digest(`${parentChain} ${diffId}`);
}

/**
 * A random 64-hex id, as Docker uses for cache ids (layer dirs), mount ids and container ids
 * (stringid.GenerateRandomID): re-rolled while its 12-char short form is all digits, which would
 * read as a number (and is refused as a hostname). `bytes` is the random source (tests).
 */
export function randomId(bytes: (n: number) => Uint8Array = randomBytes): string {
  for (;;) {
    const id = Buffer.from(bytes(32)).toString('hex');
    if (!/^[0-9]{12}/.test(id)) return id;
  }
}
