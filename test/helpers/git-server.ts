/**
 * A real git server for tests: a `node:http` server on 127.0.0.1 (ephemeral port) that runs the
 * git installation's own `git http-backend` as a CGI program for every request, over bare
 * repositories in a temp directory. It speaks smart HTTP exactly as a hosting server would, so
 * isomorphic-git's node http client (clone, fetch, push) and the git CLI both work against it.
 *
 * - Request bodies are streamed to the CGI's stdin; a gzip'ed body (`Content-Encoding: gzip`,
 *   which the git CLI sends for large fetch negotiations) is passed through with
 *   HTTP_CONTENT_ENCODING so http-backend inflates it itself. Chunked bodies (no Content-Length)
 *   are read by http-backend until EOF.
 * - Pushes are enabled per repository (`http.receivepack=true`); non-fast-forward updates are
 *   refused (`receive.denyNonFastForwards=true`), as on a protected branch of a hosting service.
 * - With `{ token }`, every request must carry it as the basic-auth password or username, else
 *   401 with `WWW-Authenticate: Basic`.
 * - `dropResponse(req)` lets a test simulate a lost answer: the request is fully processed by
 *   http-backend (a push lands) but the connection is then destroyed instead of answered.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';

export interface GitServerOptions {
  /** Require this token (basic-auth password or username) on every request. */
  readonly token?: string;
  /** Called per request: true = let http-backend run, then destroy the connection unanswered. */
  readonly dropResponse?: (req: { method: string; path: string; query: string }) => boolean;
}

export interface GitServer {
  /** `http://127.0.0.1:<port>/<repo>` (no credentials in it). */
  url(repo: string): string;
  /** The directory holding the bare repositories (GIT_PROJECT_ROOT). */
  readonly root: string;
  /** Creates a bare repository `root/<name>`; with initialFiles, a first commit on `branch` (default main). Returns its path. */
  createBare(name: string, opts?: { initialFiles?: Record<string, string>; branch?: string }): Promise<string>;
  /** Requests answered so far (method, path, status), in order of completion. */
  requests(): readonly { method: string; path: string; status: number }[];
  close(): Promise<void>;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'git-server',
  GIT_AUTHOR_EMAIL: 'git-server@localhost',
  GIT_COMMITTER_NAME: 'git-server',
  GIT_COMMITTER_EMAIL: 'git-server@localhost',
  GIT_CONFIG_NOSYSTEM: '1',
};

export async function startGitServer(opts: GitServerOptions = {}): Promise<GitServer> {
  const root = await mkdtemp(join(tmpdir(), 'hpcflow-git-server-'));
  const log: { method: string; path: string; status: number }[] = [];
  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`git-server: ${(e as Error).message}\n`);
      } else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const record = (status: number): void => void log.push({ method, path: u.pathname, status });
    if (opts.token !== undefined && !authorised(req.headers.authorization, opts.token)) {
      req.resume();
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="hpcflow-test-git"', 'Content-Type': 'text/plain' });
      res.end('authentication required\n');
      record(401);
      return;
    }
    const drop = opts.dropResponse?.({ method, path: u.pathname, query: u.search.slice(1) }) === true;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...GIT_ENV,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      REQUEST_METHOD: method,
      PATH_INFO: decodeURIComponent(u.pathname),
      QUERY_STRING: u.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    };
    if (opts.token !== undefined) env.REMOTE_USER = 'token';
    if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding'] !== undefined) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    if (req.headers['git-protocol'] !== undefined) env.GIT_PROTOCOL = String(req.headers['git-protocol']);
    const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stderr: Buffer[] = [];
    cgi.stderr.on('data', (b: Buffer) => stderr.push(b));
    cgi.stdin.on('error', () => undefined); // the CGI may exit before reading everything (an error answer)
    req.pipe(cgi.stdin);
    const exited = new Promise<number>((resolve) => cgi.once('close', (code) => resolve(code ?? -1)));

    // Parse the CGI header block, then stream the rest of stdout as the body.
    let head = Buffer.alloc(0);
    let status = 200;
    let started = false;
    const held: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      cgi.stdout.on('data', (chunk: Buffer) => {
        if (started) {
          if (drop) held.push(chunk);
          else res.write(chunk);
          return;
        }
        head = Buffer.concat([head, chunk]);
        const crlf = head.indexOf('\r\n\r\n');
        const lf = head.indexOf('\n\n');
        const end = crlf !== -1 && (lf === -1 || crlf < lf) ? crlf : lf;
        if (end === -1) return;
        const sep = end === crlf ? 4 : 2;
        const headers: Record<string, string> = {};
        for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
          const i = line.indexOf(':');
          if (i <= 0) continue;
          const k = line.slice(0, i).trim();
          const v = line.slice(i + 1).trim();
          if (k.toLowerCase() === 'status') status = Number.parseInt(v, 10) || 500;
          else headers[k] = v;
        }
        started = true;
        const body = head.subarray(end + sep);
        if (!drop) {
          res.writeHead(status, headers);
          if (body.length > 0) res.write(body);
        }
      });
      cgi.stdout.once('end', () => resolve());
      cgi.once('error', reject);
    });
    const code = await exited;
    if (drop) {
      record(-1);
      req.socket.destroy();
      return;
    }
    if (!started) {
      res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`git http-backend exited ${code} without a response: ${Buffer.concat(stderr).toString()}\n`);
      record(502);
      return;
    }
    res.end();
    record(status);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    root,
    url: (repo) => `http://127.0.0.1:${port}/${repo.replace(/^\/+/, '')}`,
    requests: () => [...log],
    async createBare(name, o = {}) {
      const branch = o.branch ?? 'main';
      const path = join(root, name);
      await mkdir(path, { recursive: true });
      const git = (args: string[], cwd: string): Promise<unknown> => execa('git', args, { cwd, env: GIT_ENV });
      await git(['init', '--quiet', '--bare', `--initial-branch=${branch}`, path], root);
      await git(['config', 'http.receivepack', 'true'], path);
      await git(['config', 'receive.denyNonFastForwards', 'true'], path);
      if (o.initialFiles !== undefined && Object.keys(o.initialFiles).length > 0) {
        const work = await mkdtemp(join(tmpdir(), 'hpcflow-git-seed-'));
        try {
          await git(['init', '--quiet', `--initial-branch=${branch}`], work);
          for (const [rel, text] of Object.entries(o.initialFiles)) {
            await mkdir(dirname(join(work, rel)), { recursive: true });
            await writeFile(join(work, rel), text);
          }
          await git(['add', '--all'], work);
          await git(['commit', '--quiet', '-m', 'initial commit'], work);
          await git(['push', '--quiet', path, `HEAD:refs/heads/${branch}`], work);
        } finally {
          await rm(work, { recursive: true, force: true });
        }
      }
      return path;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

function authorised(header: string | undefined, token: string): boolean {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (m === null) return false;
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  const user = i === -1 ? decoded : decoded.slice(0, i);
  const pass = i === -1 ? '' : decoded.slice(i + 1);
  return user === token || pass === token;
}
