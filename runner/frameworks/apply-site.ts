/**
 * Re-plans the kernel stages of a loaded pipeline for a site and a placement: the spec plans
 * every kernel for a local run with built-in defaults; a site configuration (images, launcher
 * settings) or the Slurm executor changes images, commands and environments — never the
 * pipeline file.
 */
import type { SiteConfig } from '../config/site-config.js';
import type { Pipeline, Stage } from '../model/pipeline.js';
import { kernelCommand, planKernel } from './index.js';
import type { Placement } from './types.js';

export function applySite(pipeline: Pipeline, site: SiteConfig, placement: Placement): Pipeline {
  if (site.file === null && placement === 'local') return pipeline; // already planned for exactly this
  let changed = false;
  const stages = pipeline.stages.map((s) => {
    if (s.kernel === undefined) return s;
    changed = true;
    return replan(s, site, placement);
  });
  return changed ? { ...pipeline, stages } : pipeline;
}

function replan(stage: Stage, site: SiteConfig, placement: Placement): Stage {
  const k = stage.kernel as NonNullable<Stage['kernel']>;
  const fw = site.frameworks[k.spec.framework] ?? {};
  const plan = planKernel({ kernel: k.spec, shape: stage.resources, placement, site: fw, launch: site.launch });
  const { cmd, env } = kernelCommand(plan);
  const merged: Record<string, string> = { ...env, ...k.env };
  const siteImage = plan.mode === 'locales' ? fw.multilocaleImage : fw.image;
  return {
    ...stage,
    image: siteImage ?? stage.image,
    cmd,
    env: Object.fromEntries(Object.keys(merged).sort().map((key) => [key, merged[key] as string])),
    kernel: { ...k, mode: plan.mode, build: plan.build },
  };
}
