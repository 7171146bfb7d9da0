// `loftq serve`: the dashboard in a browser, the engine behind it in this process. The port
// and access token are kept in the user's config folder (service/user-config.ts), so a restart
// comes back at the same address and open tabs reconnect by themselves; --port and
// --new-token change them.
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { UserError } from '../../engine/errors';
import { jobThreadRunner } from '../../engine/jobs/job-thread';
import { startServer, type RunningServer } from '../../server/server';
import { StudioService } from '../../service/studio-service';
import { UserConfigStore, userConfigDir } from '../../service/user-config';
import { demoModelPath, rendererPath } from '../paths';
import { VERSION } from '../version';

export interface ServeArgs {
  /** Undefined: the port of the last start (any free one the first time). */
  port?: number;
  /** Replace the kept token by a new one. */
  newToken?: boolean;
  host: string;
  runs: string;
  /** Resolves with the URL once listening (tests, `npm start`). */
  onListening?: (url: string) => void;
}

export async function serveCommand(args: ServeArgs, signal: AbortSignal): Promise<void> {
  const config = new UserConfigStore(userConfigDir());
  const kept = (await config.read()).serve;
  const token = !args.newToken && kept ? kept.token : randomBytes(24).toString('base64url');
  const port = args.port ?? kept?.port ?? 0;
  // CPU jobs on threads of their own: the server's loop answers while they compute.
  const service = new StudioService({ runsDir: resolve(args.runs), demoModel: demoModelPath(), version: VERSION, transport: 'websocket', config, runJob: jobThreadRunner() });
  const staticDir = rendererPath();
  let server: RunningServer;
  try {
    server = await startServer({ api: service, port, host: args.host, staticDir, token });
  } catch (e) {
    await service.close();
    if (e instanceof UserError && args.port === undefined && kept && /in use/.test(e.message)) {
      throw new UserError(`port ${port} (kept from the last start in ${config.file}) is in use: is LoftQ Studio already running? --port N chooses another (0: any free one)`);
    }
    throw e;
  }
  let keptNote = `port and token kept in ${config.file}: open tabs reconnect after a restart (--new-token makes a new token)`;
  try {
    await config.update((c) => ({ ...c, serve: { port: server.port, token } }));
  } catch (e) {
    keptNote = `warning: could not keep the port and token in ${config.file} (${(e as Error).message}): the next start gets a new address`;
  }
  process.stdout.write(`LoftQ Studio is running at\n\n  ${server.url}\n\nruns folder: ${service.runsDir}\n${keptNote}\n`);
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
