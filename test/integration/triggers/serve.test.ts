/**
 * The webhook server over real HTTP on 127.0.0.1 (no Docker): signatures, replays (also across a
 * restart), ping, the loop guard, form-encoded payloads, body limits, and what gets logged.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isHpcflowError } from '../../../runner/errors.js';
import { DEFAULT_MAX_BODY_BYTES, startWebhookServer } from '../../../runner/triggers/serve.js';
import type { AcceptedPush, WebhookServer, WebhookServerOptions } from '../../../runner/triggers/serve.js';

const SECRET = 'integration-secret-5f0c2a';
const SHA_A = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const SHA_B = '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c';

let dir: string;
let replayFile: string;
let servers: WebhookServer[];
let logs: string[];
let pushes: AcceptedPush[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hpcflow-serve-'));
  replayFile = join(dir, 'state', 'webhook-deliveries.json');
  servers = [];
  logs = [];
  pushes = [];
});
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

async function start(over: Partial<WebhookServerOptions> = {}): Promise<WebhookServer> {
  const s = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    secret: SECRET,
    replayFile,
    onPush: (e) => void pushes.push(e),
    log: (l) => void logs.push(l),
    ...over,
  });
  servers.push(s);
  return s;
}

/** A push payload shaped like GitHub's (only the fields that matter plus a few extras). */
function pushPayload(over: { ref?: string; after?: string; message?: string; deleted?: boolean; pushedAt?: number } = {}): string {
  const after = over.after ?? SHA_B;
  const deleted = over.deleted ?? false;
  return JSON.stringify({
    ref: over.ref ?? 'refs/heads/main',
    before: SHA_A,
    after,
    created: false,
    deleted,
    forced: false,
    base_ref: null,
    compare: 'https://github.com/Codertocat/Hello-World/compare/6113728f27ae...0d1a26e67d8f',
    commits: [],
    head_commit: deleted ? null : { id: after, tree_id: SHA_A, distinct: true, message: over.message ?? 'Tune the solver', timestamp: '2019-05-15T15:20:30Z' },
    repository: {
      id: 186853002,
      name: 'Hello-World',
      full_name: 'Codertocat/Hello-World',
      clone_url: 'https://github.com/Codertocat/Hello-World.git',
      pushed_at: over.pushedAt ?? 1557933657,
    },
    pusher: { name: 'Codertocat', email: '21031067+Codertocat@users.noreply.github.com' },
    sender: { login: 'Codertocat', id: 21031067 },
  });
}

const sign = (body: string | Buffer, secret = SECRET): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

interface Delivery {
  body?: string | Buffer;
  event?: string;
  delivery?: string;
  secret?: string;
  /** Overrides the computed signature header; null leaves it out. */
  signature?: string | null;
  contentType?: string;
  extraHeaders?: Record<string, string>;
  method?: string;
  path?: string;
}

async function deliver(server: WebhookServer, d: Delivery = {}): Promise<{ status: number; text: string }> {
  const body = d.body ?? pushPayload();
  const headers: Record<string, string> = {
    'content-type': d.contentType ?? 'application/json',
    'user-agent': 'GitHub-Hookshot/044aadd',
    'x-github-event': d.event ?? 'push',
    'x-github-delivery': d.delivery ?? randomUUID(),
    'x-github-hook-id': '292430182',
    ...d.extraHeaders,
  };
  const signature = d.signature === undefined ? sign(body, d.secret) : d.signature;
  if (signature !== null) headers['x-hub-signature-256'] = signature;
  const method = d.method ?? 'POST';
  const res = await fetch(`http://127.0.0.1:${server.port}${d.path ?? '/hooks/github'}`, {
    method,
    headers,
    ...(method === 'GET' || method === 'HEAD' ? {} : { body }),
  });
  return { status: res.status, text: await res.text() };
}

/** onPush runs after the response; give it a turn of the event loop. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

describe('hpcflow serve (GitHub webhooks)', () => {
  it('accepts a correctly signed push and calls onPush once with the event', async () => {
    const s = await start();
    const id = randomUUID();
    expect(await deliver(s, { delivery: id })).toEqual({ status: 202, text: 'accepted' });
    await settle();
    expect(pushes).toHaveLength(1);
    expect(pushes[0]).toEqual({
      delivery: id,
      ref: 'refs/heads/main',
      branch: 'main',
      before: SHA_A,
      after: SHA_B,
      deleted: false,
      repository: { fullName: 'Codertocat/Hello-World', cloneUrl: 'https://github.com/Codertocat/Hello-World.git' },
      headCommit: { id: SHA_B, message: 'Tune the solver' },
      pusher: 'Codertocat',
    });
    expect(logs).toEqual([`webhook delivery=${id} event=push ref=refs/heads/main -> 202 accepted`]);
  });

  it('rejects a wrong secret, a missing signature and a legacy SHA-1 signature with 401', async () => {
    const s = await start();
    const body = pushPayload();
    expect(await deliver(s, { body, secret: 'not-the-secret' })).toEqual({ status: 401, text: 'invalid signature' });
    expect(await deliver(s, { body, signature: null })).toEqual({ status: 401, text: 'invalid signature' });
    const sha1 = `sha1=${createHmac('sha1', SECRET).update(body).digest('hex')}`;
    expect(await deliver(s, { body, signature: null, extraHeaders: { 'x-hub-signature': sha1 } })).toMatchObject({ status: 401 });
    expect(await deliver(s, { body, signature: 'sha256=zz' })).toMatchObject({ status: 401 });
    // A valid signature of a different body.
    expect(await deliver(s, { body, signature: sign(pushPayload({ ref: 'refs/heads/other' })) })).toMatchObject({ status: 401 });
    await settle();
    expect(pushes).toEqual([]);
  });

  it('checks the signature before looking at the body or the event', async () => {
    const s = await start();
    // Garbage that would be a 400/415 if it were parsed: unauthenticated, so 401 and nothing else.
    expect((await deliver(s, { body: '{not json', signature: null })).status).toBe(401);
    expect((await deliver(s, { body: 'x', contentType: 'text/plain', signature: 'sha256=' + '0'.repeat(64) })).status).toBe(401);
    expect((await deliver(s, { event: 'ping', signature: null })).status).toBe(401);
  });

  it('ignores a replayed delivery, also after a restart with the same replay file', async () => {
    const s1 = await start();
    const id = randomUUID();
    const body = pushPayload();
    expect((await deliver(s1, { body, delivery: id })).status).toBe(202);
    expect(await deliver(s1, { body, delivery: id })).toEqual({ status: 200, text: 'duplicate delivery ignored' });
    await settle();
    expect(pushes).toHaveLength(1);
    await s1.close();

    const s2 = await start();
    expect(await deliver(s2, { body, delivery: id })).toEqual({ status: 200, text: 'duplicate delivery ignored' });
    // The delivery id is not signed: the same signed body under a fresh id is a replay too.
    expect(await deliver(s2, { body, delivery: randomUUID() })).toEqual({ status: 200, text: 'duplicate delivery ignored' });
    // A genuinely new push (GitHub's payload carries the push time) still goes through.
    expect((await deliver(s2, { body: pushPayload({ pushedAt: 1557933999 }) })).status).toBe(202);
    await settle();
    expect(pushes).toHaveLength(2);
  });

  it('lets only one of two concurrent copies of a delivery through', async () => {
    const s = await start();
    const id = randomUUID();
    const body = pushPayload();
    const results = await Promise.all([deliver(s, { body, delivery: id }), deliver(s, { body, delivery: id }), deliver(s, { body, delivery: id })]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 202]);
    await settle();
    expect(pushes).toHaveLength(1);
  });

  it('answers ping with pong and ignores other events', async () => {
    const s = await start();
    const ping = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 292430182, hook: { type: 'Repository', events: ['push'] } });
    expect(await deliver(s, { event: 'ping', body: ping })).toEqual({ status: 200, text: 'pong' });
    expect(await deliver(s, { event: 'pull_request', body: '{}' })).toEqual({ status: 202, text: 'ignored event pull_request' });
    await settle();
    expect(pushes).toEqual([]);
  });

  it('does not trigger on an hpcflow results commit (loop guard)', async () => {
    const s = await start();
    const body = pushPayload({ message: 'hpcflow: results of run 2024-05-01-abc\n\nStages: train, eval\n\nHpcflow-Run: 2024-05-01-abc\n' });
    expect(await deliver(s, { body })).toEqual({ status: 202, text: 'ignored: hpcflow results commit' });
    // The words in prose are not a trailer.
    expect((await deliver(s, { body: pushPayload({ message: 'Mention Hpcflow-Run: 1 in a subject', pushedAt: 2 }) })).text).toBe('accepted');
    await settle();
    expect(pushes.map((p) => p.headCommit?.message)).toEqual(['Mention Hpcflow-Run: 1 in a subject']);
  });

  it('ignores branch deletions, tags and branches not configured', async () => {
    const s = await start({ branches: ['main', 'release/1.x'] });
    expect(await deliver(s, { body: pushPayload({ after: '0'.repeat(40), deleted: true }) })).toEqual({ status: 202, text: 'ignored: branch deleted' });
    expect(await deliver(s, { body: pushPayload({ ref: 'refs/tags/v1' }) })).toEqual({ status: 202, text: 'ignored: not a branch' });
    expect(await deliver(s, { body: pushPayload({ ref: 'refs/heads/feature' }) })).toEqual({ status: 202, text: 'ignored: branch not configured' });
    expect((await deliver(s, { body: pushPayload({ ref: 'refs/heads/release/1.x' }) })).text).toBe('accepted');
    await settle();
    expect(pushes.map((p) => p.branch)).toEqual(['release/1.x']);
  });

  it('accepts a form-encoded payload (signature over the raw form body)', async () => {
    const s = await start();
    const form = new URLSearchParams({ payload: pushPayload() }).toString();
    expect(await deliver(s, { body: form, contentType: 'application/x-www-form-urlencoded' })).toEqual({ status: 202, text: 'accepted' });
    await settle();
    expect(pushes).toHaveLength(1);
    expect(pushes[0]?.after).toBe(SHA_B);
  });

  it('answers malformed but signed deliveries with 4xx and no run', async () => {
    const s = await start();
    expect((await deliver(s, { body: '{not json' })).status).toBe(400);
    expect((await deliver(s, { body: '{"zen":"not a push"}' })).text).toBe('invalid push payload');
    expect((await deliver(s, { body: 'a=b', contentType: 'application/x-www-form-urlencoded' })).text).toBe('missing payload field');
    expect((await deliver(s, { contentType: 'text/plain' })).status).toBe(415);
    expect((await deliver(s, { delivery: 'bad id\twith tab' })).status).toBe(400);
    expect((await deliver(s, { event: 'Push!' })).status).toBe(400);
    await settle();
    expect(pushes).toEqual([]);
  });

  it('rejects a body over the limit with 413 (streamed, declared, and at the 25 MiB default)', async () => {
    const s = await start({ maxBodyBytes: 64 * 1024 });
    const big = pushPayload({ message: 'x'.repeat(200 * 1024) });
    expect(await deliver(s, { body: big })).toEqual({ status: 413, text: 'payload too large' });

    // Chunked (no Content-Length): cut off while reading.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: s.port, path: '/hooks/github', method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 8; i++) req.write(Buffer.alloc(16 * 1024, 0x20));
      req.end();
    });
    expect(chunked).toBe(413);

    // Exactly at the limit is fine (and then judged on its signature).
    const atLimit = Buffer.alloc(64 * 1024, 0x20);
    expect((await deliver(s, { body: atLimit, signature: null })).status).toBe(401);

    const d = await start();
    const tooBig = Buffer.alloc(DEFAULT_MAX_BODY_BYTES + 1, 0x20);
    expect((await deliver(d, { body: tooBig })).status).toBe(413);
    await settle();
    expect(pushes).toEqual([]);
  });

  it('routes only POST /hooks/github', async () => {
    const s = await start();
    expect((await deliver(s, { path: '/' })).status).toBe(404);
    expect((await deliver(s, { path: '/hooks/gitlab' })).status).toBe(404);
    expect((await deliver(s, { method: 'GET' })).status).toBe(405);
    expect((await deliver(s, { method: 'PUT' })).status).toBe(405);
    expect((await deliver(s, { path: '/hooks/github?x=1' })).status).toBe(202);
  });

  it('survives onPush failures (thrown and rejected) and keeps serving', async () => {
    let calls = 0;
    const s = await start({
      onPush: (e) => {
        calls++;
        if (e.branch === 'sync') throw new Error('sync boom');
        return Promise.reject(new Error('async boom\nsecond line'));
      },
    });
    expect((await deliver(s, { body: pushPayload({ ref: 'refs/heads/sync' }) })).status).toBe(202);
    expect((await deliver(s, { body: pushPayload({ ref: 'refs/heads/async' }) })).status).toBe(202);
    await settle();
    expect(calls).toBe(2);
    expect(logs.filter((l) => l.includes('onPush failed'))).toHaveLength(2);
    expect(logs.some((l) => l.includes('async boom second line'))).toBe(true);
    expect((await deliver(s, { event: 'ping', body: '{}' })).text).toBe('pong');
  });

  it('close() waits for running onPush calls', async () => {
    let finished = false;
    const s = await start({
      onPush: async () => {
        await new Promise((r) => setTimeout(r, 200));
        finished = true;
      },
    });
    expect((await deliver(s)).status).toBe(202);
    await s.close();
    expect(finished).toBe(true);
  });

  it('never logs the secret or a signature, and logs one sanitized line per delivery', async () => {
    const s = await start();
    const body = pushPayload();
    const sig = sign(body);
    await deliver(s, { body });
    await deliver(s, { body, secret: 'wrong' });
    // HTTP clients refuse CR/LF and most control characters in header values; tabs, spaces and
    // non-ASCII bytes get through to us.
    expect((await deliver(s, { body, delivery: 'evil\tid FAKE caf\u00e9' })).status).toBe(400);
    await deliver(s, { event: 'ping', body: '{}' });
    const all = logs.join('\n');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(sig.slice('sha256='.length));
    expect(all).not.toContain(sign(body, 'wrong').slice('sha256='.length));
    expect(all).not.toMatch(/sha256=/);
    expect(logs).toHaveLength(4);
    // eslint-disable-next-line no-control-regex
    expect(logs.every((l) => !/[\x00-\x1f\x7f]/.test(l))).toBe(true);
    expect(logs[2]).toMatch(/^webhook delivery=evil\?id\?FAKE\?caf\?+ event=push ref=- -> 400 /);
    expect(logs[1]).toMatch(/event=push ref=- -> 401 invalid signature$/);
  });

  it('refuses to start without a secret, and reports a busy port', async () => {
    const e1: unknown = await start({ secret: '' }).catch((x: unknown) => x);
    expect(isHpcflowError(e1, 'HPCFLOW_USAGE')).toBe(true);
    const s = await start();
    const e2: unknown = await start({ port: s.port }).catch((x: unknown) => x);
    expect(isHpcflowError(e2, 'HPCFLOW_USAGE')).toBe(true);
    expect((e2 as Error).message).toContain(`127.0.0.1:${s.port}`);
  });
});
