/** The site file's identity for the no-op `status` fast path: node built-ins only (no YAML parser). */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const SITE_ENV_VAR = 'HPCFLOW_SITE';

/** The site file named by `--site` (explicit) or `$HPCFLOW_SITE`, or undefined for none. */
export function namedSiteFile(explicit: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const named = explicit ?? env[SITE_ENV_VAR];
  return named === undefined || named === '' ? undefined : named;
}

/**
 * The digest of the site file that `loadSiteConfig` would read, without parsing it (the no-op
 * `status` fast path must not load the YAML library). '' when there is none or it is unreadable.
 */
export function siteDigest(explicit: string | undefined, env: NodeJS.ProcessEnv, cwd: string): string {
  const named = namedSiteFile(explicit, env);
  if (named === undefined) return '';
  try {
    return createHash('sha256').update(readFileSync(resolve(cwd, named), 'utf8')).digest('hex');
  } catch {
    return '';
  }
}
