/**
 * Builds an image from a context directory with the engine's classic builder (`POST /build`):
 * no BuildKit session, no registry; `networkmode: host` so `RUN apt-get …` reaches the mirror.
 * Loaded lazily (it pulls in tar-fs; the caller already has dockerode).
 */
import path from 'node:path';
import type Dockerode from 'dockerode';
import { pack } from 'tar-fs';
import { HpcflowError } from '../../errors.js';
import { parseBuildEvent } from './build-events.js';
import { hashBuildContext } from './context-hash.js';
import { describeEngineError, engineUnavailable, isConnectionError } from './engine-api.js';
import { createLineSplitter, createTail } from './log-lines.js';

export interface BuildOptions {
  readonly contextDir: string;
  /** Relative to the context, POSIX. */
  readonly dockerfile: string;
  readonly tag: string;
  onLog(line: string): void;
  readonly signal: AbortSignal;
  /**
   * Exactly what to send (relative paths: dirs, files, symlinks), normally `ContextHash.paths`, so
   * the built content is the hashed content. Default: the context minus `.dockerignore`.
   */
  readonly paths?: readonly string[];
  /** For error messages. */
  readonly socketPath?: string;
}

export interface BuiltImage {
  /** `sha256:…` image id. */
  readonly id: string;
  readonly tag: string;
}

const TAIL_LINES = 30;

function aborted(tag: string, cause?: unknown): HpcflowError {
  return new HpcflowError('HPCFLOW_ABORTED', `build of ${tag} was aborted`, { cause });
}

export async function buildImage(docker: Dockerode, opts: BuildOptions): Promise<BuiltImage> {
  const { tag, signal } = opts;
  if (signal.aborted) throw aborted(tag);
  const paths =
    opts.paths ??
    (await hashBuildContext({ dir: opts.contextDir, name: path.basename(opts.contextDir), dockerfile: opts.dockerfile }))
      .paths;
  const send = new Set(paths);
  const root = path.resolve(opts.contextDir);
  const tarStream = pack(root, {
    // tar-fs asks about every directory entry it meets (absolute path); keep what was hashed.
    ignore: (name) => !send.has(path.relative(root, name).split(path.sep).join('/')),
  });

  const tail = createTail(TAIL_LINES);
  let errorMessage: string | null = null;
  let auxId: string | null = null;
  const lines = createLineSplitter((line) => {
    tail.add(line);
    opts.onLog(line);
  });

  let response: NodeJS.ReadableStream;
  try {
    response = await docker.buildImage(tarStream as unknown as NodeJS.ReadableStream, {
      t: tag,
      dockerfile: opts.dockerfile,
      networkmode: 'host',
      rm: true,
      forcerm: true,
      // Closing the connection cancels the build in the daemon (and removes its container).
      abortSignal: signal,
    });
  } catch (e) {
    tarStream.destroy();
    if (signal.aborted) throw aborted(tag, e);
    if (isConnectionError(e)) throw engineUnavailable(opts.socketPath ?? 'docker.sock', e);
    throw new HpcflowError('HPCFLOW_IMAGE_BUILD_FAILED', `building ${tag} failed: ${describeEngineError(e)}`, {
      cause: e,
      hint: `check ${path.join(opts.contextDir, opts.dockerfile)}`,
    });
  }

  // The progress stream: one JSON object a line (build-events.ts). The engine cuts build output
  // into small messages; the bound only keeps a broken stream from growing without end.
  const ndjson = createLineSplitter(
    (line) => {
      for (const ev of parseBuildEvent(line)) {
        if (ev.kind === 'log') lines.push(Buffer.from(ev.text));
        else if (ev.kind === 'image-id') auxId = ev.id;
        else errorMessage ??= ev.message;
      }
    },
    { maxLine: 16 * 2 ** 20 },
  );
  let onAbort = (): void => {};
  try {
    await new Promise<void>((resolve, reject) => {
      response.on('data', (chunk: Buffer) => ndjson.push(chunk));
      response.on('end', resolve);
      response.on('close', resolve);
      response.on('error', reject);
      onAbort = () => reject(aborted(tag));
      signal.addEventListener('abort', onAbort, { once: true });
    });
  } catch (e) {
    (response as unknown as { destroy?: () => void }).destroy?.();
    if (signal.aborted) throw aborted(tag, e);
    throw new HpcflowError('HPCFLOW_IMAGE_BUILD_FAILED', `building ${tag} failed: ${describeEngineError(e)}`, {
      cause: e,
    });
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  ndjson.flush();
  lines.flush();
  if (signal.aborted) throw aborted(tag);

  if (errorMessage !== null) {
    throw new HpcflowError(
      'HPCFLOW_IMAGE_BUILD_FAILED',
      `building ${tag} failed: ${errorMessage}\n--- last lines of the build ---\n${tail.lines().join('\n')}`,
      { hint: `check ${path.join(opts.contextDir, opts.dockerfile)}` },
    );
  }

  // The tag is the truth (aux.ID is only sent by newer engines and not for every build path).
  try {
    const info = await docker.getImage(tag).inspect();
    return { id: info.Id, tag };
  } catch (e) {
    throw new HpcflowError(
      'HPCFLOW_IMAGE_BUILD_FAILED',
      `the build of ${tag} ended without an image${auxId === null ? '' : ` (engine reported ${auxId})`}: ${describeEngineError(e)}`,
      { cause: e },
    );
  }
}
