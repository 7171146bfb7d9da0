// Connection state and the server's facts (runs folder, demo model, version).
import { create } from 'zustand';
import type { StudioApi } from '../../src-main/api/contract';
import type { ConnectionStatus } from '../transport/types';

export type ServerInfo = Awaited<ReturnType<StudioApi['info']>>;

interface ConnectionStore {
  status: ConnectionStatus;
  info: ServerInfo | null;
  transport: 'ipc' | 'websocket' | null;
}

export const useConnection = create<ConnectionStore>(() => ({
  status: { state: 'connecting', attempt: 0 },
  info: null,
  transport: null,
}));
