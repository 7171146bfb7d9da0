// The sandboxed preload: window.studio is the StudioApi over IPC, and nothing else.
import { contextBridge, ipcRenderer } from 'electron';
import { buildStudioBridge } from './studio-bridge';

contextBridge.exposeInMainWorld('studio', buildStudioBridge(ipcRenderer));
