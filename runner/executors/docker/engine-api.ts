/**
 * A tiny Docker Engine API client over the unix socket, for the hot read-only calls.
 *
 * Why not dockerode here: `hpcflow status` must answer in < 150 ms end-to-end and importing
 * dockerode alone costs ~110–140 ms; `node:http` costs ~4 ms. dockerode is imported lazily
 * (`load-dockerode.ts`) only when something is built or run.
 *
 * Only unix sockets are supported (`DOCKER_HOST=unix://…` or `/var/run/docker.sock`): hpcflow runs
 * stages on the engine of the machine it runs on (the workspace is bind-mounted at the same path).
 */
import http from 'node:http';
import { HpcflowError } from '../../errors.js';

export const DEFAULT_SOCKET_PATH = '/var/run/docker.sock';
const ENGINE_HINT = 'start dockerd, or run scripts/ensure-docker.sh';

/** What `status` needs of an image: its content identity and names. */
export interface ImageInspect {
  /** `sha256:…` image id (the config digest: changes whenever the image's content changes). */
  readonly id: string;
  readonly repoDigests: string[];
  readonly repoTags: string[];
}

/** The engine facts the executor adapts to (read once per executor). */
export interface EngineInfo {
  /** 'cgroupfs' | 'systemd' | '' (unknown). */
  readonly cgroupDriver: string;
  /** '1' | '2' | '' (unknown; engines before API 1.40 do not say). */
  readonly cgroupVersion: string;
  /** CPUs the engine can hand out (Docker refuses NanoCpus above this). */
  readonly ncpu: number;
  readonly serverVersion: string;
}

export interface EngineApi {
  readonly socketPath: string;
  /** Resolves when the engine answers `GET /_ping`; throws HPCFLOW_ENGINE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  /** `GET /images/{ref}/json`; null when the engine has no such image. */
  inspectImage(ref: string): Promise<ImageInspect | null>;
  info(): Promise<EngineInfo>;
}

/**
 * The engine socket: an explicit path wins, then `DOCKER_HOST=unix://…`, then the default.
 * Pure (the environment is passed in).
 */
export function resolveSocketPath(
  env: Readonly<Record<string, string | undefined>>,
  explicit?: string,
): string {
  if (explicit !== undefined && explicit !== '') return explicit;
  const host = env['DOCKER_HOST'];
  if (host === undefined || host === '') return DEFAULT_SOCKET_PATH;
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  throw new HpcflowError(
    'HPCFLOW_ENGINE_UNAVAILABLE',
    `DOCKER_HOST=${host} is not supported: hpcflow talks to the local engine over a unix socket`,
    { hint: 'unset DOCKER_HOST or set it to unix:///path/to/docker.sock' },
  );
}

/**
 * True for errors that mean "no engine listens there" (or it went away mid-request) rather than
 * "the engine said no".
 */
export function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || code === 'ECONNRESET' || code === 'EPIPE';
}

/** Whether an engine answers `GET /_ping` on a fresh connection within `timeoutMs`. Never throws. */
export async function engineReachable(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  try {
    return (await request(socketPath, '/_ping', timeoutMs)).status === 200;
  } catch {
    return false;
  }
}

/** HTTP status of a dockerode error, if it has one. */
export function statusCode(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** The engine's own message of a dockerode error (`{"message": …}`), else the error's message. */
export function describeEngineError(e: unknown): string {
  const json = (e as { json?: { message?: unknown } } | null)?.json;
  if (json !== undefined && json !== null && typeof json.message === 'string') return json.message;
  return e instanceof Error ? e.message : String(e);
}

export function engineUnavailable(socketPath: string, cause: unknown): HpcflowError {
  const code = (cause as { code?: unknown } | null)?.code;
  const why = code === 'EACCES' ? 'permission denied' : typeof code === 'string' ? code : String(cause);
  return new HpcflowError(
    'HPCFLOW_ENGINE_UNAVAILABLE',
    `cannot reach the Docker engine at unix://${socketPath} (${why})`,
    {
      hint: code === 'EACCES' ? `${ENGINE_HINT}; or add your user to the docker group` : ENGINE_HINT,
      cause,
    },
  );
}

/** Keeps `/`, `:` and `@` readable in paths (`/images/local/x:1/json`); the engine routes on them. */
function encodeRef(ref: string): string {
  return encodeURIComponent(ref).replace(/%2F/gi, '/').replace(/%3A/gi, ':').replace(/%40/g, '@');
}

interface RawResponse {
  readonly status: number;
  readonly body: string;
}

function request(socketPath: string, path: string, timeoutMs: number): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    // agent: false → one connection per call, closed afterwards: nothing keeps the CLI alive.
    const req = http.request({ socketPath, path, method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

function parseJsonObject(body: string): Record<string, unknown> {
  const v: unknown = JSON.parse(body);
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};
}

function stringArray(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function engineMessage(body: string): string {
  try {
    const m = parseJsonObject(body)['message'];
    return typeof m === 'string' ? m : body.trim();
  } catch {
    return body.trim();
  }
}

export function createEngineApi(opts: { socketPath: string; timeoutMs?: number }): EngineApi {
  const { socketPath } = opts;
  const timeoutMs = opts.timeoutMs ?? 10_000;

  async function get(path: string): Promise<RawResponse> {
    try {
      return await request(socketPath, path, timeoutMs);
    } catch (e) {
      throw engineUnavailable(socketPath, e);
    }
  }

  function unexpected(what: string, res: RawResponse): HpcflowError {
    return new HpcflowError(
      'HPCFLOW_ENGINE_UNAVAILABLE',
      `Docker engine answered ${res.status} to ${what}: ${engineMessage(res.body)}`,
      { hint: ENGINE_HINT },
    );
  }

  return {
    socketPath,
    async ping() {
      const res = await get('/_ping');
      if (res.status !== 200) throw unexpected('GET /_ping', res);
    },
    async inspectImage(ref) {
      const res = await get(`/images/${encodeRef(ref)}/json`);
      if (res.status === 404) return null;
      if (res.status !== 200) throw unexpected(`inspect image ${ref}`, res);
      const o = parseJsonObject(res.body);
      return {
        id: typeof o['Id'] === 'string' ? o['Id'] : '',
        repoDigests: stringArray(o['RepoDigests']),
        repoTags: stringArray(o['RepoTags']),
      };
    },
    async info() {
      const res = await get('/info');
      if (res.status !== 200) throw unexpected('GET /info', res);
      const o = parseJsonObject(res.body);
      const str = (k: string): string => (typeof o[k] === 'string' ? (o[k] as string) : '');
      return {
        cgroupDriver: str('CgroupDriver'),
        cgroupVersion: str('CgroupVersion'),
        ncpu: typeof o['NCPU'] === 'number' ? o['NCPU'] : 0,
        serverVersion: str('ServerVersion'),
      };
    },
  };
}
