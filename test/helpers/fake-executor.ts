import type { Executor, ImageState, ResolvedImage, RunHooks, StageRunResult, StageTask, MissingImage } from '../../runner/executors/executor.js';
import type { ImageSpec } from '../../runner/model/pipeline.js';

/** What a fake stage does: write its outputs (or not), log, take time, fail. */
export type FakeBehaviour = (task: StageTask, hooks: RunHooks, signal: AbortSignal) => Promise<Partial<StageRunResult> | void>;

/**
 * An in-memory Executor for unit tests of the engine's logic (scheduling, failure modes,
 * caching). The real Docker executor has its own integration tests; this one only lets the
 * tests control what each stage does and observe concurrency.
 */
export class FakeExecutor implements Executor {
  readonly name = 'fake';
  readonly started: string[] = [];
  running = 0;
  maxRunning = 0;
  constructor(
    private readonly behaviour: (stageId: string) => FakeBehaviour,
    private readonly digests: Record<string, string> = {},
  ) {}

  async missingImages(): Promise<MissingImage[]> {
    return [];
  }

  async imageState(spec: ImageSpec): Promise<ImageState> {
    const tag = spec.kind === 'ref' ? spec.ref : spec.context;
    return { state: 'present', image: { ref: tag, tag, digest: this.digests[tag] ?? `sha256:${'0'.repeat(64)}` } };
  }

  async prepareImage(spec: ImageSpec): Promise<ResolvedImage> {
    const s = await this.imageState(spec);
    if (s.state !== 'present') throw new Error('unreachable');
    return s.image;
  }

  async run(task: StageTask, hooks: RunHooks, signal: AbortSignal): Promise<StageRunResult> {
    this.started.push(task.stage.id);
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const t0 = Date.now();
    try {
      const r = (await this.behaviour(task.stage.id)(task, hooks, signal)) ?? {};
      return { exitCode: 0, signal: null, timedOut: false, canceled: signal.aborted, engineError: null, wallMs: Date.now() - t0, startOverheadMs: 0, commandMs: Date.now() - t0, cpuMs: null, peakMemBytes: null, nodes: ['fake'], ...r };
    } finally {
      this.running -= 1;
    }
  }

  async cleanupOrphans(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {}
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
