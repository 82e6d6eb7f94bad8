import type Dockerode from 'dockerode';

/**
 * dockerode costs ~110–140 ms to import, so it is loaded only when an image is built or a stage
 * runs, never for `status` (which uses `engine-api.ts`).
 */
export async function loadDockerode(socketPath: string): Promise<Dockerode> {
  const { default: Docker } = await import('dockerode');
  return new Docker({ socketPath });
}
