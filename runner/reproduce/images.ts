/**
 * Re-running with the recorded images. The lockfile records each stage's image tag and digest
 * (the engine's image id). Before the re-run, each recorded digest is looked up in the engine:
 *
 * - the tag still names it: nothing to do;
 * - the tag moved (or is gone) but the engine still has the recorded image: the stage is pinned
 *   to it, by writing `image: <digest>` into the stage in the temporary worktree's pipeline file
 *   (all cells of a matrix stage must have recorded the same image for that);
 * - the engine no longer has it: a warning; the stage runs with what the tag names now, and the
 *   report says so next to the comparison.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import type { Stage } from '../model/pipeline.js';

/** What the container engine has. */
export interface ImageProbe {
  /** The image id (`sha256:…`) that `ref` (a tag or an id) names in the engine, or null. */
  digestOf(ref: string): Promise<string | null>;
}

export type ImageAction =
  /** The recorded tag names the recorded image. */
  | 'same'
  /** Pinned to the recorded image, which the tag no longer names. */
  | 'pinned'
  /** The engine no longer has the recorded image. */
  | 'unavailable'
  /** The recorded image is there, but the stage could not be pinned to it (matrix cells differ). */
  | 'not-pinned'
  /** Nothing known: no digest recorded, or the engine could not be asked. */
  | 'unknown';

export interface ImagePlan {
  readonly stage: string;
  readonly tag: string;
  readonly recorded: string;
  /** What the recorded tag names in the engine now (null: nothing, e.g. an image still to be built). */
  readonly current: string | null;
  readonly action: ImageAction;
}

const DIGEST_RE = /^(?:sha256:[0-9a-f]{64}|\S+@sha256:[0-9a-f]{64})$/;

export const shortDigest = (d: string): string => {
  const m = /sha256:([0-9a-f]{12})/.exec(d);
  return m === null ? d : `sha256:${m[1] as string}`;
};

/**
 * Decides, per recorded stage, whether its image is available and whether to pin it; returns the
 * plans and the pipeline edits (file → stage name → image) that pin.
 */
export async function planImages(
  recorded: readonly (readonly [string, { readonly tag: string; readonly digest: string }])[],
  stages: ReadonlyMap<string, Stage>,
  probe: ImageProbe,
): Promise<{ plans: ImagePlan[]; pins: Map<string, Map<string, string>>; warnings: string[] }> {
  const warnings: string[] = [];
  const plans: ImagePlan[] = [];
  const memo = new Map<string, Promise<string | null>>();
  const digestOf = (ref: string): Promise<string | null> => {
    let p = memo.get(ref);
    if (p === undefined) {
      p = probe.digestOf(ref);
      memo.set(ref, p);
    }
    return p;
  };
  let probeFailed: string | null = null;
  const want = new Map<string, { stage: Stage; digest: string }[]>();
  for (const [id, img] of recorded) {
    const stage = stages.get(id);
    if (stage === undefined) continue;
    if (!DIGEST_RE.test(img.digest) || probeFailed !== null) {
      plans.push({ stage: id, tag: img.tag, recorded: img.digest, current: null, action: 'unknown' });
      continue;
    }
    let current: string | null;
    let available: boolean;
    try {
      current = img.tag === '' ? null : await digestOf(img.tag);
      available = current === img.digest || (await digestOf(img.digest)) !== null;
    } catch (e) {
      probeFailed = (e as Error).message;
      plans.push({ stage: id, tag: img.tag, recorded: img.digest, current: null, action: 'unknown' });
      continue;
    }
    const action: ImageAction = current === img.digest ? 'same' : available ? 'pinned' : 'unavailable';
    plans.push({ stage: id, tag: img.tag, recorded: img.digest, current, action });
    const key = `${stage.pos.file}\0${stage.name}`;
    want.set(key, [...(want.get(key) ?? []), { stage, digest: img.digest }]);
  }
  if (probeFailed !== null) warnings.push(`could not ask the container engine about the recorded images (${probeFailed}); the stages run with what their tags name now`);

  // A stage (all its cells) can be pinned when every recorded cell used one image.
  const pins = new Map<string, Map<string, string>>();
  for (const [i, p] of plans.entries()) {
    if (p.action !== 'pinned') continue;
    const stage = stages.get(p.stage) as Stage;
    const cells = want.get(`${stage.pos.file}\0${stage.name}`) ?? [];
    if (cells.some((c) => c.digest !== p.recorded)) {
      plans[i] = { ...p, action: 'not-pinned' };
      continue;
    }
    const byName = pins.get(stage.pos.file) ?? new Map<string, string>();
    byName.set(stage.name, p.recorded);
    pins.set(stage.pos.file, byName);
  }
  return { plans, pins, warnings };
}

/** Writes `image: <digest>` into the named stages of the worktree's pipeline files. */
export async function applyPins(worktree: string, pins: ReadonlyMap<string, ReadonlyMap<string, string>>): Promise<string[]> {
  const problems: string[] = [];
  for (const [file, byName] of pins) {
    const abs = join(worktree, file);
    const doc = parseDocument(await readFile(abs, 'utf8'));
    if (doc.errors.length > 0) {
      problems.push(`${file}: cannot pin images (${doc.errors[0]?.message ?? 'YAML error'})`);
      continue;
    }
    for (const [name, digest] of byName) doc.setIn(['stages', name, 'image'], digest);
    await writeFile(abs, doc.toString());
  }
  return problems;
}
