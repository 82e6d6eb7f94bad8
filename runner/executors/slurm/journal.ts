/**
 * The workspace's record of the Slurm jobs it submitted (`.hpcflow/slurm/journal.json`): written
 * (atomically) right after every sbatch and after every collection, so that a runner that was
 * killed finds its jobs again — running ones to wait for, finished ones to collect — instead of
 * submitting them twice. Runs of one workspace are serialised by the workspace lock.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/fs-atomic.js';

export interface JournalEntry {
  readonly stage: string;
  /** The execution key (the job's comment has it too). */
  readonly key: string;
  readonly jobId: string;
  readonly runId: string;
  readonly submittedAt: string;
  /** Set once the runner stored the job's outputs: the fingerprint they were stored under. */
  readonly collected?: string;
}

const KEEP = 2000;

export class Journal {
  private entries: JournalEntry[] = [];
  private writing: Promise<void> = Promise.resolve();
  private readonly file: string;

  private constructor(dir: string) {
    this.file = join(dir, 'journal.json');
  }

  static async open(dir: string): Promise<Journal> {
    const j = new Journal(dir);
    try {
      const doc = JSON.parse(await readFile(j.file, 'utf8')) as { schema?: number; jobs?: JournalEntry[] };
      if (doc.schema === 1 && Array.isArray(doc.jobs)) j.entries = doc.jobs;
    } catch (e) {
      // Absent: a first run. Unreadable: start afresh (the jobs are still tagged in Slurm).
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') j.entries = [];
    }
    return j;
  }

  /** The newest job for this stage execution that was not collected yet. */
  pending(stage: string, key: string): JournalEntry | undefined {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i] as JournalEntry;
      if (e.stage === stage && e.key === key) return e.collected === undefined ? e : undefined;
    }
    return undefined;
  }

  /** The key a stage's job had when its outputs were stored under `fingerprint`. */
  keyOf(stage: string, fingerprint: string): string | undefined {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i] as JournalEntry;
      if (e.stage === stage && e.collected === fingerprint) return e.key;
    }
    return undefined;
  }

  add(e: JournalEntry): Promise<void> {
    this.entries.push(e);
    if (this.entries.length > KEEP) this.entries.splice(0, this.entries.length - KEEP);
    return this.save();
  }

  markCollected(stage: string, key: string, jobId: string, fingerprint: string): Promise<void> {
    this.entries = this.entries.map((e) => (e.stage === stage && e.key === key && e.jobId === jobId ? { ...e, collected: fingerprint } : e));
    return this.save();
  }

  private save(): Promise<void> {
    const text = `${JSON.stringify({ schema: 1, jobs: this.entries }, null, 1)}\n`;
    this.writing = this.writing.then(() => writeFileAtomic(this.file, text, { fsync: true }));
    return this.writing;
  }
}
