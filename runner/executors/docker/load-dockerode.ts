import { Agent } from 'node:http';
import type Dockerode from 'dockerode';

/**
 * dockerode costs ~110–140 ms to import, so it is loaded only when an image is built or a stage
 * runs, never for `status` (which uses `engine-api.ts`).
 *
 * Its requests go through our own keep-alive agent: Node 20's global agent keeps idle sockets
 * open for 5 s, which kept the CLI alive for 5 s after a run had finished. `closeDockerode`
 * destroys the agent's sockets.
 */
const agents = new WeakMap<Dockerode, Agent>();

export async function loadDockerode(socketPath: string): Promise<Dockerode> {
  const { default: Docker } = await import('dockerode');
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const docker = new Docker({ socketPath, agent } as ConstructorParameters<typeof Docker>[0]);
  agents.set(docker, agent);
  return docker;
}

/** Close idle connections so that nothing keeps the process alive. */
export function closeDockerode(docker: Dockerode): void {
  agents.get(docker)?.destroy();
}
