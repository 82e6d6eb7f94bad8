/**
 * PURE: which hpcflow containers / cgroup parents no live process owns any more.
 * A container is an orphan when it was created on THIS host (`hpcflow.owner-host`) by a process
 * that is gone (`hpcflow.owner-pid`). Containers of other hosts sharing the engine are never
 * touched; a container without a parsable pid is left alone (not ours to judge).
 * Caveat: a reused pid makes a dead owner look alive; the container then waits for the next
 * cleanup after that process ends — the safe direction.
 */
import { LABELS } from './container-spec.js';

export interface LabelledContainer {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
}

export function selectOrphans(
  containers: readonly LabelledContainer[],
  host: string,
  isAlive: (pid: number) => boolean,
): LabelledContainer[] {
  return containers.filter((c) => {
    if (c.labels[LABELS.ownerHost] !== host) return false;
    const pid = Number(c.labels[LABELS.ownerPid]);
    return Number.isInteger(pid) && pid > 0 && !isAlive(pid);
  });
}

/** The owner pid encoded in a container (and cgroup parent) name `hpcflow-<pid>-…`, or null. */
export function ownerPidFromName(name: string): number | null {
  const m = /^hpcflow-(\d+)-/.exec(name);
  return m === null ? null : Number(m[1]);
}

