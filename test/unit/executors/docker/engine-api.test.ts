import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_SOCKET_PATH,
  createEngineApi,
  resolveSocketPath,
} from '../../../../runner/executors/docker/engine-api.js';
import { isHpcflowError } from '../../../../runner/errors.js';

// A fake engine on a unix socket in a temp dir: answers like dockerd for the calls we make.
let dir: string;
let socketPath: string;
let server: http.Server;
const requests: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'hpcflow-engine-'));
  socketPath = path.join(dir, 'docker.sock');
  server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/_ping') return void res.end('OK');
    if (req.url === '/images/local/x:1/json') {
      return json(200, { Id: 'sha256:aa', RepoTags: ['local/x:1'], RepoDigests: [] });
    }
    if (req.url === '/info') return json(200, { CgroupDriver: 'cgroupfs', CgroupVersion: '1', NCPU: 2, ServerVersion: '20.10.24' });
    if (req.url?.startsWith('/images/')) return json(404, { message: 'No such image' });
    json(500, { message: 'boom' });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

describe('createEngineApi', () => {
  it('pings, inspects (404 → null) and reads info', async () => {
    const api = createEngineApi({ socketPath });
    await api.ping();
    expect(await api.inspectImage('local/x:1')).toEqual({ id: 'sha256:aa', repoDigests: [], repoTags: ['local/x:1'] });
    expect(await api.inspectImage('nope/y@sha256:00')).toBeNull();
    expect(requests).toContain('/images/nope/y@sha256:00/json');
    expect(await api.info()).toEqual({ cgroupDriver: 'cgroupfs', cgroupVersion: '1', ncpu: 2, serverVersion: '20.10.24' });
  });

  it('throws HPCFLOW_ENGINE_UNAVAILABLE with a hint when nothing listens', async () => {
    const api = createEngineApi({ socketPath: path.join(dir, 'missing.sock') });
    const err = await api.ping().catch((e: unknown) => e);
    expect(isHpcflowError(err, 'HPCFLOW_ENGINE_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toContain('missing.sock');
    expect((err as { hint?: string }).hint).toBe('start dockerd, or run scripts/ensure-docker.sh');
  });
});

describe('resolveSocketPath', () => {
  it('explicit > DOCKER_HOST unix:// > default; tcp is refused', () => {
    expect(resolveSocketPath({}, '/x.sock')).toBe('/x.sock');
    expect(resolveSocketPath({ DOCKER_HOST: 'unix:///run/d.sock' })).toBe('/run/d.sock');
    expect(resolveSocketPath({})).toBe(DEFAULT_SOCKET_PATH);
    expect(() => resolveSocketPath({ DOCKER_HOST: 'tcp://1.2.3.4:2375' })).toThrow(/not supported/);
  });
});
