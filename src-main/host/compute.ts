// The compute process (Electron utilityProcess): the engine behind the StudioApi. Main starts
// it with computeArgv's flags and talks to it over process.parentPort; all engine work runs
// here, never on Electron's main thread.
import { StudioService } from '../service/studio-service';
import { UserConfigStore, userConfigDir } from '../service/user-config';
import { parseComputeArgv } from './compute-config';
import { serveOverPort } from './compute-loop';

const config = parseComputeArgv(process.argv);
// Recent models live in the user's config folder, shared with `loftq serve`.
const service = new StudioService({ runsDir: config.runsDir, demoModel: config.demoModel, version: config.version, transport: 'ipc', config: new UserConfigStore(userConfigDir()) });

// No parentPort means this file was run outside a utilityProcess (by mistake): say so and stop.
const port = process.parentPort;
if (!port) {
  console.error('compute.cjs runs inside LoftQ Studio (an Electron utilityProcess), not on its own');
  process.exit(2);
}
serveOverPort(service, port, (code) => process.exit(code));
