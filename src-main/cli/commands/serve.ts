// `loftq serve`: the dashboard in a browser, the engine behind it in this process.
import { resolve } from 'node:path';
import { startServer } from '../../server/server';
import { jobThreadRunner } from '../../engine/jobs/job-thread';
import { StudioService } from '../../service/studio-service';
import { demoModelPath, rendererPath } from '../paths';
import { VERSION } from '../version';

export interface ServeArgs {
  port: number;
  host: string;
  runs: string;
  /** Resolves with the URL once listening (tests, `npm start`). */
  onListening?: (url: string) => void;
}

export async function serveCommand(args: ServeArgs, signal: AbortSignal): Promise<void> {
  // CPU jobs on threads of their own: the server's loop answers while they compute.
  const service = new StudioService({ runsDir: resolve(args.runs), demoModel: demoModelPath(), version: VERSION, transport: 'websocket', runJob: jobThreadRunner() });
  const staticDir = rendererPath();
  const server = await startServer({ api: service, port: args.port, host: args.host, staticDir });
  process.stdout.write(`LoftQ Studio is running at\n\n  ${server.url}\n\nruns folder: ${service.runsDir}\n`);
  if (!staticDir) process.stdout.write('(the dashboard is not built: only the API is served; `npm start` builds it)\n');
  if (args.host !== '127.0.0.1' && args.host !== 'localhost' && args.host !== '::1') {
    process.stderr.write(`warning: listening on ${args.host}: anyone who can reach this address and has the URL's token can use the engine\n`);
  }
  process.stdout.write('Press Ctrl-C to stop.\n');
  args.onListening?.(server.url);
  await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
  await service.close();
  await server.close();
}
