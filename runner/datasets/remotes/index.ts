/**
 * Opens the remote a workspace config names: `s3://bucket/prefix` is an S3-compatible object
 * store, `file://…` or a plain path (relative to the workspace root) a directory. The S3 SDK is
 * imported only when an S3 remote is opened, so commands that never touch one start fast.
 */
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HpcflowError } from '../../errors.js';
import { FsRemote } from './fs.js';
import type { Remote } from './remote.js';

export type { Remote } from './remote.js';

export interface RemoteConfig {
  readonly url: string;
  /** S3 only: the service endpoint, e.g. `https://s3.example.org` (default: AWS). */
  readonly endpoint?: string;
  /** S3 only (default us-east-1). */
  readonly region?: string;
  /** S3 only: `endpoint/bucket/key` addressing (default: true when `endpoint` is set). */
  readonly forcePathStyle?: boolean;
  /** S3 only: objects larger than this use a resumable multipart upload (default 64 MiB). */
  readonly multipartThreshold?: number;
  /** S3 only: multipart part size (default 16 MiB; S3 itself needs ≥ 5 MiB). */
  readonly partSize?: number;
}

const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const S3_ONLY = ['endpoint', 'region', 'forcePathStyle', 'multipartThreshold', 'partSize'] as const;
const FORMS = 'a filesystem path, file:///absolute/path, or s3://bucket/prefix';

export async function openRemote(name: string, cfg: RemoteConfig, workspaceRoot: string): Promise<Remote> {
  const url = cfg.url.trim();
  if (url === '') throw new HpcflowError('HPCFLOW_USAGE', `remote "${name}" has an empty url`, { hint: `use ${FORMS}` });
  const scheme = SCHEME_RE.exec(url)?.[1]?.toLowerCase();

  if (scheme === 's3') {
    const { bucket, prefix } = parseS3Url(name, url);
    if (cfg.endpoint !== undefined) checkEndpoint(name, cfg.endpoint);
    const { S3Remote } = await import('./s3.js');
    return new S3Remote(name, {
      bucket,
      prefix,
      ...(cfg.endpoint !== undefined ? { endpoint: cfg.endpoint } : {}),
      ...(cfg.region !== undefined ? { region: cfg.region } : {}),
      ...(cfg.forcePathStyle !== undefined ? { forcePathStyle: cfg.forcePathStyle } : {}),
      ...(cfg.multipartThreshold !== undefined ? { multipartThreshold: cfg.multipartThreshold } : {}),
      ...(cfg.partSize !== undefined ? { partSize: cfg.partSize } : {}),
    });
  }

  if (scheme !== undefined && scheme !== 'file') {
    throw new HpcflowError('HPCFLOW_USAGE', `remote "${name}": unsupported url scheme "${scheme}://"`, { hint: `use ${FORMS}` });
  }
  const extra = S3_ONLY.filter((k) => cfg[k] !== undefined);
  if (extra.length > 0) {
    throw new HpcflowError('HPCFLOW_USAGE', `remote "${name}": ${extra.join(', ')} only apply to s3:// remotes`, {
      hint: 'remove them, or point the url at s3://bucket/prefix',
    });
  }
  let path: string;
  if (scheme === 'file') {
    try {
      path = fileURLToPath(url);
    } catch (e) {
      throw new HpcflowError('HPCFLOW_USAGE', `remote "${name}": invalid file url ${JSON.stringify(url)}: ${(e as Error).message}`, {
        hint: 'use file:///absolute/path (three slashes), or a plain path',
      });
    }
  } else {
    path = isAbsolute(url) ? url : resolve(workspaceRoot, url);
  }
  return new FsRemote(name, resolve(path));
}

function parseS3Url(name: string, url: string): { bucket: string; prefix: string } {
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '');
  // S3 bucket naming rules, loosely (compatible servers allow a little more, e.g. underscores).
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(bucket)) {
    throw new HpcflowError('HPCFLOW_USAGE', `remote "${name}": ${JSON.stringify(url)} names no valid bucket`, {
      hint: 'use s3://bucket or s3://bucket/prefix',
    });
  }
  if (/[?#]/.test(prefix) || prefix.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new HpcflowError('HPCFLOW_USAGE', `remote "${name}": invalid key prefix in ${JSON.stringify(url)}`, {
      hint: 'use s3://bucket/prefix with a plain prefix (no ?, #, . or .. segments)',
    });
  }
  return { bucket, prefix };
}

/** Never echoes the endpoint: it is the one setting where a user might have put a secret. */
function checkEndpoint(name: string, endpoint: string): void {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new HpcflowError('HPCFLOW_USAGE', `remote "${name}": the endpoint is not a URL`, {
      hint: 'e.g. endpoint: https://s3.example.org',
    });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new HpcflowError('HPCFLOW_USAGE', `remote "${name}": endpoint must be an http:// or https:// URL`);
  }
  if (u.username !== '' || u.password !== '') {
    throw new HpcflowError('HPCFLOW_USAGE', `remote "${name}": the endpoint contains credentials`, {
      hint: 'remove them from hpcflow.yaml (it is committed to git) and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment instead',
    });
  }
}
