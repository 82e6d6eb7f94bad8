import { describe, expect, it } from 'vitest';
import {
  accountingDisabled,
  expandHostlist,
  finalFromScontrol,
  parseDuration,
  parseSacct,
  parseScontrolJob,
  parseSize,
  parseSqueue,
} from '../../../runner/executors/slurm/slurm-cli.js';

const US = '\u001f';

describe('Slurm output parsers', () => {
  it('expands host lists with ranges, lists and zero padding', () => {
    expect(expandHostlist('n[1-3,7]')).toEqual(['n1', 'n2', 'n3', 'n7']);
    expect(expandHostlist('gpu[08-10],login1')).toEqual(['gpu08', 'gpu09', 'gpu10', 'login1']);
    expect(expandHostlist('n2')).toEqual(['n2']);
  });

  it('reads Slurm durations and sizes', () => {
    expect(parseDuration('00:01.250')).toBe(1250);
    expect(parseDuration('01:02:03')).toBe(3_723_000);
    expect(parseDuration('2-00:00:01')).toBe(2 * 86_400_000 + 1000);
    expect(parseDuration('garbage')).toBeNull();
    expect(parseSize('1024K')).toBe(1024 * 1024);
    expect(parseSize('1.5M')).toBe(1.5 * 1024 * 1024);
    expect(parseSize('')).toBeNull();
  });

  it('parses squeue lines, comments included', () => {
    const text = [`17${US}RUNNING${US}None${US}n[1-2]${US}hpcflow:p/a${US}hpcflow run=r1 stage=p/a key=k1`, `18${US}PENDING${US}Dependency${US}${US}hpcflow:p/b${US}(null)`].join('\n');
    const m = parseSqueue(`${text}\n`);
    expect(m.get('17')).toMatchObject({ state: 'RUNNING', nodes: 'n[1-2]', comment: 'hpcflow run=r1 stage=p/a key=k1' });
    expect(m.get('18')).toMatchObject({ state: 'PENDING', reason: 'Dependency', nodes: '', comment: '' });
  });

  it('takes state, exit code and nodes from the job line and the largest MaxRSS of its steps', () => {
    const rows = [
      ['42', 'FAILED', '3:0', '7', '00:02.500', '', 'n[1-2]', '2026-11-24T10:00:00', '2026-11-24T10:00:01', '2026-11-24T10:00:08'],
      ['42.batch', 'FAILED', '3:0', '7', '00:00.100', '2048K', 'n1', 'x', 'x', 'x'],
      ['42.0', 'COMPLETED', '0:0', '6', '00:02.400', '8M', 'n[1-2]', 'x', 'x', 'x'],
      ['43', 'CANCELLED by 0', '0:15', '1', '00:00:00', '', 'n3', 'Unknown', 'None', 'Unknown'],
    ];
    const m = parseSacct(rows.map((r) => r.join(US)).join('\n'));
    expect(m.get('42')).toMatchObject({ state: 'FAILED', exitCode: 3, signal: 0, elapsedMs: 7000, cpuMs: 2500, maxRssBytes: 8 * 1024 * 1024, nodes: ['n1', 'n2'], start: '2026-11-24T10:00:01', source: 'sacct' });
    expect(m.get('43')).toMatchObject({ state: 'CANCELLED', signal: 15, start: null, maxRssBytes: null });
  });

  it('falls back to scontrol show job -o when there is no accounting', () => {
    const line =
      'JobId=9 JobName=hpcflow:p/a UserId=root(0) JobState=TIMEOUT Reason=TimeLimit Dependency=(null) ExitCode=0:15 RunTime=00:01:02 TimeLimit=00:01:00 SubmitTime=2026-11-24T10:00:00 StartTime=2026-11-24T10:00:01 EndTime=2026-11-24T10:01:03 NodeList=n[1-2] Comment=hpcflow run=r stage=p/a key=k';
    const f = parseScontrolJob(line);
    expect(f?.JobState).toBe('TIMEOUT');
    const fin = finalFromScontrol(f as Record<string, string>);
    expect(fin).toMatchObject({ id: '9', state: 'TIMEOUT', elapsedMs: 62_000, nodes: ['n1', 'n2'], cpuMs: null, source: 'scontrol' });
    expect(accountingDisabled('Slurm accounting storage is disabled')).toBe(true);
    expect(accountingDisabled('sacct: error: Invalid field requested')).toBe(false);
  });
});
