/**
 * Worker-thread entry for layer extraction. A worker is long-lived (starting one and loading koffi
 * costs ~60 ms, more than a small layer takes): it answers {id, params} requests one at a time with
 * {id, reply}, where reply is the result or the error's fields (an OverlayError does not survive
 * structured cloning with its class, so apply-layer.ts rebuilds it from these fields).
 */
import { parentPort } from 'node:worker_threads';
import { extractLayerSync, type ExtractParams } from './apply-worker-extract.js';

export interface SerializedError {
  code: string;
  op: string;
  message: string;
  stack?: string | undefined;
  path?: string | undefined;
  dest?: string | undefined;
  layer?: string | undefined;
  reason?: string | undefined;
}

export type WorkerReply = { ok: true; result: ReturnType<typeof extractLayerSync> } | { ok: false; error: SerializedError };

function serialize(e: unknown): SerializedError {
  const o = (e ?? {}) as Record<string, unknown>;
  const str = (k: string): string | undefined => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  return {
    code: str('code') ?? 'EIO',
    op: str('op') ?? str('syscall') ?? 'applyLayer',
    message: e instanceof Error ? e.message : String(e),
    stack: e instanceof Error ? e.stack : undefined,
    path: str('path'),
    dest: str('dest'),
    layer: str('layer'),
    reason: str('reason'),
  };
}

export interface WorkerRequest {
  id: number;
  params: ExtractParams;
}

const port = parentPort;
if (port) {
  port.on('message', (req: WorkerRequest) => {
    let reply: WorkerReply;
    try {
      reply = { ok: true, result: extractLayerSync(req.params) };
    } catch (e) {
      reply = { ok: false, error: serialize(e) };
    }
    port.postMessage({ id: req.id, reply });
  });
}
