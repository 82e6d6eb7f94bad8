/**
 * `hpcflow serve`: an HTTP endpoint for GitHub push webhooks (`POST /hooks/github`) that hands
 * each authentic, new push of a configured branch to a callback.
 *
 * Order of checks, so that nothing unauthenticated is ever parsed or acted on:
 *   route (404) → method (405) → body size (413) → signature over the raw body (401)
 *   → delivery id (400) → event type (ping: 200 `pong`; other: 202 ignored) → replay (200)
 *   → content type and JSON (415/400) → push shape (400) → deletion / tag / branch filter /
 *   results commit (202 with the reason) → remember → 202 `accepted` → onPush.
 *
 * Replays: the delivery id (`X-GitHub-Delivery`) is NOT covered by GitHub's signature, so a body
 * captured in transit could be resent under a fresh id. The server therefore also remembers the
 * SHA-256 of every accepted body: GitHub's payloads carry the push time (`pushed_at`), so a
 * genuine later push never has a byte-identical body, while a replay always does.
 *
 * Logging: one line per request: delivery id, event, ref and the decision. Header values are
 * sanitized (printable ASCII, truncated); the secret and the signature are never logged.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HpcflowError } from '../errors.js';
import { ReplayGuard, hasHpcflowTrailer, parsePushEvent, verifySignature } from './webhook.js';
import type { PushEvent } from './webhook.js';

/** The webhook path GitHub must be configured to deliver to. */
export const WEBHOOK_PATH = '/hooks/github';
/** GitHub caps webhook payloads at 25 MB; larger deliveries are not sent. */
export const DEFAULT_MAX_BODY_BYTES = 25 * 1024 * 1024;

/** A push accepted for a run, with the delivery that carried it. */
export type AcceptedPush = PushEvent & { readonly delivery: string };

export interface WebhookServerOptions {
  /** Interface to listen on (`127.0.0.1` behind a reverse proxy, `0.0.0.0` to expose). */
  readonly host: string;
  /** TCP port; 0 picks a free one (see the returned `port`). */
  readonly port: number;
  /** The webhook secret configured on GitHub. Required, non-empty. */
  readonly secret: string;
  /** JSON file remembering accepted deliveries across restarts. */
  readonly replayFile: string;
  /** Branches (exact names) whose pushes trigger a run. Default: every branch. */
  readonly branches?: readonly string[];
  /** Largest accepted body. Default 25 MiB, GitHub's own cap. */
  readonly maxBodyBytes?: number;
  /**
   * Called once per accepted push, after the 202 response went out. Errors (thrown or rejected)
   * are logged and never affect the server. `close()` waits for running calls.
   */
  onPush(e: AcceptedPush): void | Promise<void>;
  /** One line per request (without a newline). Default: stderr. */
  log?(line: string): void;
}

export interface WebhookServer {
  /** The port actually listened on. */
  readonly port: number;
  /** Stops accepting, finishes in-flight requests and running `onPush` calls. Idempotent. */
  close(): Promise<void>;
}

/** Printable ASCII only, bounded: header values are attacker-controlled until verified. */
function clean(v: unknown, max = 120): string {
  if (typeof v !== 'string' || v === '') return '-';
  const s = v.replace(/[^\x21-\x7e]/g, '?');
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** A message on one line: control characters become spaces; bounded. */
function oneLine(v: string, max = 300): string {
  // eslint-disable-next-line no-control-regex
  const s = v.replace(/[\x00-\x1f\x7f]+/g, ' ');
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

const DELIVERY_RE = /^[A-Za-z0-9-]{1,128}$/;
const EVENT_RE = /^[a-z_]{1,64}$/;

type BodyResult = { readonly ok: true; readonly body: Buffer } | { readonly ok: false; readonly reason: 'too-large' | 'aborted' };

/** Reads the request body, giving up (without buffering more) once it exceeds `max` bytes. */
function readBody(req: IncomingMessage, max: number): Promise<BodyResult> {
  const declared = header(req, 'content-length');
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > max) {
    return Promise.resolve({ ok: false, reason: 'too-large' });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (r: BodyResult): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        chunks.length = 0;
        finish({ ok: false, reason: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish({ ok: true, body: Buffer.concat(chunks, size) }));
    req.once('error', () => finish({ ok: false, reason: 'aborted' }));
    req.once('close', () => finish({ ok: false, reason: 'aborted' }));
  });
}

/** The JSON document in a webhook body: `application/json`, or form-encoded `payload=<json>`. */
function decodePayload(contentType: string | undefined, raw: Buffer): { ok: true; value: unknown } | { ok: false; status: number; message: string } {
  const mediaType = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  let text: string;
  if (mediaType === 'application/json') {
    text = raw.toString('utf8');
  } else if (mediaType === 'application/x-www-form-urlencoded') {
    const payload = new URLSearchParams(raw.toString('utf8')).get('payload');
    if (payload === null) return { ok: false, status: 400, message: 'missing payload field' };
    text = payload;
  } else {
    return { ok: false, status: 415, message: 'unsupported content type (application/json or application/x-www-form-urlencoded)' };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, status: 400, message: 'invalid JSON' };
  }
}

function validateOptions(o: WebhookServerOptions): number {
  if (typeof o.secret !== 'string' || o.secret.length === 0) {
    throw new HpcflowError('HPCFLOW_USAGE', 'the webhook secret is empty', {
      hint: 'set the same secret on GitHub (webhook settings) and for hpcflow serve',
    });
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new HpcflowError('HPCFLOW_USAGE', `invalid port ${String(o.port)}`);
  }
  const max = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isInteger(max) || max < 1) {
    throw new HpcflowError('HPCFLOW_USAGE', `invalid maximum body size ${String(max)}`);
  }
  return max;
}

/** Starts the webhook server; resolves once it listens. */
export async function startWebhookServer(o: WebhookServerOptions): Promise<WebhookServer> {
  const maxBodyBytes = validateOptions(o);
  const { secret, onPush } = o;
  const branches = o.branches === undefined ? null : new Set(o.branches);
  const log = o.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const guard = await ReplayGuard.open(o.replayFile);
  const running = new Set<Promise<void>>();

  const safeLog = (line: string): void => {
    try {
      log(line);
    } catch {
      // A failing logger must not take a delivery down with it.
    }
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const delivery = header(req, 'x-github-delivery');
    const event = header(req, 'x-github-event');
    /** Filled in once known (after authentication), for the log line. */
    const ctx: { ref?: string } = {};
    const reply = (status: number, message: string, extra: Record<string, string> = {}): void => {
      safeLog(`webhook delivery=${clean(delivery)} event=${clean(event)} ref=${clean(ctx.ref, 200)} -> ${status} ${message}`);
      if (res.headersSent) return;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...extra });
      res.end(message);
    };

    const path = (req.url ?? '').split('?')[0];
    if (path !== WEBHOOK_PATH) return reply(404, 'not found');
    if (req.method !== 'POST') return reply(405, 'method not allowed', { allow: 'POST' });

    const body = await readBody(req, maxBodyBytes);
    if (!body.ok) {
      if (body.reason === 'aborted') {
        safeLog(`webhook delivery=${clean(delivery)} event=${clean(event)} ref=- -> aborted by the client`);
        return;
      }
      // Close the connection: the rest of the body is not read. Discard what still arrives so the
      // client sees the response instead of a reset, while the socket drains and closes.
      reply(413, 'payload too large', { connection: 'close' });
      req.resume();
      return;
    }
    const raw = body.body;

    if (!verifySignature(secret, raw, header(req, 'x-hub-signature-256'))) return reply(401, 'invalid signature');
    if (delivery === undefined || !DELIVERY_RE.test(delivery)) return reply(400, 'missing or malformed X-GitHub-Delivery');
    if (event === undefined || !EVENT_RE.test(event)) return reply(400, 'missing or malformed X-GitHub-Event');
    if (event === 'ping') return reply(200, 'pong');
    if (event !== 'push') return reply(202, `ignored event ${event}`);

    const bodyKey = `body-sha256:${createHash('sha256').update(raw).digest('hex')}`;
    if (guard.seen(delivery) || guard.seen(bodyKey)) return reply(200, 'duplicate delivery ignored');

    const decoded = decodePayload(header(req, 'content-type'), raw);
    if (!decoded.ok) return reply(decoded.status, decoded.message);
    const push = parsePushEvent(decoded.value);
    if (push === null) return reply(400, 'invalid push payload');
    ctx.ref = push.ref;

    if (push.deleted) return reply(202, 'ignored: branch deleted');
    if (push.branch === null) return reply(202, 'ignored: not a branch');
    if (branches !== null && !branches.has(push.branch)) return reply(202, 'ignored: branch not configured');
    if (push.headCommit !== null && hasHpcflowTrailer(push.headCommit.message)) {
      return reply(202, 'ignored: hpcflow results commit');
    }

    // No await between the replay check above and this synchronous in-memory remember: two
    // concurrent copies of one delivery cannot both get here. The file write is awaited before
    // accepting, so an accepted delivery stays a duplicate after a restart.
    try {
      await guard.remember([delivery, bodyKey]);
    } catch (e) {
      safeLog(`webhook delivery=${clean(delivery)} replay file not written: ${oneLine(e instanceof Error ? e.message : String(e))}`);
      return reply(500, 'cannot record the delivery; not triggered');
    }
    reply(202, 'accepted');

    const accepted: AcceptedPush = { ...push, delivery };
    const call = (async () => {
      try {
        await onPush(accepted);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        safeLog(`webhook delivery=${clean(delivery)} onPush failed: ${oneLine(msg)}`);
      }
    })();
    running.add(call);
    void call.finally(() => running.delete(call));
  }

  const inFlight = new Set<Promise<void>>();
  const server = createServer((req, res) => {
    const p = handle(req, res).catch((e: unknown) => {
      safeLog(`webhook internal error: ${oneLine(e instanceof Error ? e.message : String(e))}`);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('internal error');
      }
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  });
  // Slow clients cannot hold sockets forever (GitHub sends the whole delivery at once).
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void => {
      reject(
        new HpcflowError('HPCFLOW_USAGE', `cannot listen on ${o.host}:${o.port}: ${e.message}`, {
          cause: e,
          hint: 'choose another --port or --host',
        }),
      );
    };
    server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (e) => safeLog(`webhook server error: ${oneLine(e.message)}`));

  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    close(): Promise<void> {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await Promise.allSettled([...inFlight]);
        server.closeIdleConnections();
        await closed;
        await Promise.allSettled([...running]);
      })();
      return closing;
    },
  };
}
