import { join, resolve } from 'node:path';
import { HpcflowError } from '../errors.js';
import { parse } from './args.js';
import { runOptions } from './cmd-watch.js';
import { EXIT } from './exit-codes.js';
import type { CliIO } from './io.js';
import { HELP } from './main.js';

/**
 * `hpcflow serve --url URL [--host 127.0.0.1] [--port 8080] [--branches a,b] [--workdir DIR] [-- run options]`:
 * receives GitHub push webhooks (secret from HPCFLOW_WEBHOOK_SECRET; signatures checked, replays
 * ignored) and runs the pushed branch's newest commit, cloned from URL, like `hpcflow watch`.
 */
export async function cmdServe(args: readonly string[], io: CliIO): Promise<number> {
  const dash = args.indexOf('--');
  const own = dash < 0 ? args : args.slice(0, dash);
  const extra = dash < 0 ? [] : args.slice(dash + 1);
  const { values } = parse(own, {
    url: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    branches: { type: 'string' },
    workdir: { type: 'string', default: '.hpcflow-serve' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  if (values.url === undefined) throw new HpcflowError('HPCFLOW_USAGE', 'serve needs --url: the http(s) URL runners clone and push through (a mirror of the GitHub repository, or GitHub itself)');
  const secret = io.env.HPCFLOW_WEBHOOK_SECRET;
  if (secret === undefined || secret === '') throw new HpcflowError('HPCFLOW_USAGE', 'serve needs the webhook secret in HPCFLOW_WEBHOOK_SECRET (the one configured on GitHub)');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new HpcflowError('HPCFLOW_USAGE', `--port must be a TCP port (got '${values.port}')`);
  const root = resolve(io.cwd, values.workdir);
  const { startWebhookServer } = await import('../triggers/serve.js');
  const { BranchQueue } = await import('../triggers/watch.js');
  const abort = new AbortController();
  const say = (line: string): void => io.out(`${new Date().toISOString()} ${line}\n`);
  const run = await runOptions(io, values.url, extra, abort.signal);
  const queue = new BranchQueue((branch) => ({
    ...run,
    branch,
    workdir: join(root, branch.replace(/[^A-Za-z0-9._-]+/g, '_')),
    intervalMs: 0,
    once: true,
    log: (line) => say(`[${branch}] ${line}`),
  }));
  const server = await startWebhookServer({
    host: values.host,
    port,
    secret,
    replayFile: join(root, 'deliveries.json'),
    ...(values.branches !== undefined ? { branches: values.branches.split(',').map((b) => b.trim()).filter(Boolean) } : {}),
    onPush: (e) => {
      if (e.branch !== null) void queue.trigger(e.branch);
    },
    log: say,
  });
  say(`listening on http://${values.host}:${server.port}/hooks/github; runs in ${root}`);
  await new Promise<void>((res) => {
    const stop = (): void => res();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  abort.abort();
  await server.close();
  await queue.idle();
  return EXIT.ok;
}
