// Wires the API to the stores: connection state, pushed events, and a refresh of runs and
// jobs whenever the connection (re)opens, since events may have been missed meanwhile.
import type { ClientApi } from '../transport/types';
import { setApi } from './api';
import { useConnection } from './connection';
import { ingestJobEvent, useJobs } from './jobs';
import { useModel } from './model';
import { useNav } from './nav';
import { useRuns } from './runs';

export function startStores(client: ClientApi): () => void {
  setApi(client);
  useConnection.setState({ transport: client.transport, status: client.status() });
  const onOpen = () => {
    client
      .info()
      .then((info) => useConnection.setState({ info }))
      .catch(() => undefined);
    useJobs
      .getState()
      .refresh()
      .catch(() => undefined);
    useRuns.getState().changed(); // reloads the list and marks cached run details stale
    void useModel.getState().restore(); // the model open before a reload
  };
  const offStatus = client.onStatus((status) => {
    const was = useConnection.getState().status.state;
    useConnection.setState({ status });
    if (status.state === 'open' && was !== 'open') onOpen();
  });
  const offEvent = client.onEvent((event) => {
    if (event.type === 'job') ingestJobEvent(event);
    else if (event.type === 'runs-changed') useRuns.getState().changed();
    else if (event.type === 'open-model') {
      // The app's File → Open Model Folder… menu.
      useNav.getState().go('models');
      void useModel.getState().open(event.path);
    }
  });
  if (client.status().state === 'open') onOpen();
  return () => {
    offStatus();
    offEvent();
    setApi(null);
  };
}
