import { describe, expect, it } from 'vitest';
import {
  containerCreateOptions,
  containerEnv,
  containerName,
  pinnedImageRef,
  workingDir,
} from '../../../../runner/executors/docker/container-spec.js';
import type { ContainerSpecOptions } from '../../../../runner/executors/docker/container-spec.js';
import { isHpcflowError } from '../../../../runner/errors.js';
import { makeStage, makeTask } from '../../../helpers/docker.js';

const IMAGE_ID = `sha256:${'ab'.repeat(32)}`;
const image = { ref: IMAGE_ID, digest: IMAGE_ID, tag: 'local/openmp:1' };
const opts: ContainerSpecOptions = {
  user: '1000:1000',
  network: 'host',
  name: 'hpcflow-4242-a1b2c3-heat-solve-n-4',
  owner: { pid: 4242, host: 'login01' },
};

function task(stage = makeStage()) {
  return makeTask({ stage, image, workspace: '/home/u/ws', runId: 'run-1', fingerprint: 'fp-1' });
}

describe('containerCreateOptions', () => {
  it('builds the full create body for a typical stage', () => {
    const stage = makeStage({
      id: 'heat/solve@n=4',
      cmd: './solve --n 4 > out/n4.txt',
      wdir: 'src/heat',
      env: { ZED: 'last', ALPHA: 'first' },
      resources: { cpusPerTask: 4, tasksPerNode: 2, memoryBytes: 2 * 1024 ** 3, timeLimitSec: 600 },
    });
    expect(containerCreateOptions(task(stage), { ...opts, maxCpus: 16, cgroupParent: '/hpcflow/x' }))
      .toMatchInlineSnapshot(`
        {
          "AttachStderr": true,
          "AttachStdin": false,
          "AttachStdout": true,
          "Cmd": [
            "/bin/sh",
            "-c",
            "./solve --n 4 > out/n4.txt",
          ],
          "Entrypoint": [],
          "Env": [
            "ALPHA=first",
            "HPCFLOW_RUN_ID=run-1",
            "HPCFLOW_STAGE=heat/solve@n=4",
            "OMP_NUM_THREADS=4",
            "ZED=last",
          ],
          "HostConfig": {
            "AutoRemove": false,
            "Binds": [
              "/home/u/ws:/home/u/ws",
            ],
            "CgroupParent": "/hpcflow/x",
            "LogConfig": {
              "Config": {},
              "Type": "none",
            },
            "Memory": 2147483648,
            "NanoCpus": 8000000000,
            "NetworkMode": "host",
          },
          "Image": "sha256:abababababababababababababababababababababababababababababababab",
          "Labels": {
            "hpcflow.cgroup-parent": "/hpcflow/x",
            "hpcflow.fingerprint": "fp-1",
            "hpcflow.owner-host": "login01",
            "hpcflow.owner-pid": "4242",
            "hpcflow.run-id": "run-1",
            "hpcflow.stage": "heat/solve@n=4",
          },
          "OpenStdin": false,
          "Tty": false,
          "User": "1000:1000",
          "WorkingDir": "/home/u/ws/src/heat",
          "name": "hpcflow-4242-a1b2c3-heat-solve-n-4",
        }
      `);
  });

  it('leaves Memory and CgroupParent out when not set, and adds extra binds and labels', () => {
    const o = containerCreateOptions(task(), {
      ...opts,
      network: 'none',
      extraBinds: ['/scratch:/scratch:ro'],
      labels: { 'site.project': 'p1', 'hpcflow.run-id': 'cannot-override' },
    });
    expect(o.HostConfig).toMatchInlineSnapshot(`
      {
        "AutoRemove": false,
        "Binds": [
          "/home/u/ws:/home/u/ws",
          "/scratch:/scratch:ro",
        ],
        "LogConfig": {
          "Config": {},
          "Type": "none",
        },
        "NanoCpus": 1000000000,
        "NetworkMode": "none",
      }
    `);
    expect(o.Labels?.['site.project']).toBe('p1');
    expect(o.Labels?.['hpcflow.run-id']).toBe('run-1');
    expect(o.WorkingDir).toBe('/home/u/ws');
  });

  it('caps NanoCpus at the CPUs the engine has', () => {
    const stage = makeStage({ resources: { cpusPerTask: 8, tasksPerNode: 4 } });
    expect(containerCreateOptions(task(stage), { ...opts, maxCpus: 2 }).HostConfig?.NanoCpus).toBe(2e9);
  });
});

describe('containerEnv', () => {
  it('keeps a user OMP_NUM_THREADS but never lets the stage override HPCFLOW_*', () => {
    const stage = makeStage({ env: { OMP_NUM_THREADS: '3', HPCFLOW_STAGE: 'spoofed', B: '2', A: '1' } });
    expect(containerEnv(task(stage))).toEqual([
      'A=1',
      'B=2',
      'HPCFLOW_RUN_ID=run-1',
      'HPCFLOW_STAGE=demo/step',
      'OMP_NUM_THREADS=3',
    ]);
  });
});

describe('pinnedImageRef', () => {
  it('prefers an image id or repo digest over the ref', () => {
    expect(pinnedImageRef(image)).toBe(IMAGE_ID);
    const repoDigest = `debian@sha256:${'cd'.repeat(32)}`;
    expect(pinnedImageRef({ ref: 'debian:12', digest: repoDigest, tag: 'debian:12' })).toBe(repoDigest);
    expect(pinnedImageRef({ ref: 'debian:12', digest: 'unknown', tag: 'debian:12' })).toBe('debian:12');
  });
});

describe('workingDir', () => {
  it('joins the workspace and wdir', () => {
    expect(workingDir('/ws/', '')).toBe('/ws');
    expect(workingDir('/ws', 'a/b')).toBe('/ws/a/b');
  });

  it('refuses a wdir that leaves the workspace, and relative workspaces', () => {
    const escape = (() => {
      try {
        workingDir('/ws', '../etc');
      } catch (e) {
        return e;
      }
    })();
    expect(isHpcflowError(escape, 'HPCFLOW_PATH_ESCAPE')).toBe(true);
    expect(() => workingDir('ws', '')).toThrow(/absolute/);
    expect(workingDir('/ws', 'a/../b')).toBe('/ws/b');
  });
});

describe('containerName', () => {
  it('is a valid, readable docker name', () => {
    expect(containerName('heat/solve@n=4,m=x', 12, 'abc123')).toBe('hpcflow-12-abc123-heat-solve-n-4-m-x');
    expect(containerName('///', 12, 'abc123')).toBe('hpcflow-12-abc123');
    expect(containerName('x'.repeat(200), 1, 's').length).toBeLessThanOrEqual(64);
  });
});
