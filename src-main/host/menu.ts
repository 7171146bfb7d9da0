// The application menu as data (main.ts builds it with Menu.buildFromTemplate).
import type { MenuItemConstructorOptions, OpenDialogOptions } from 'electron';
import type { PickPurpose } from '../api/contract';
import { PICK_PURPOSES } from '../wire/ipc-protocol';

export interface MenuOptions {
  appName: string;
  platform: NodeJS.Platform;
  /** Packaged builds get no developer tools. */
  isPackaged: boolean;
  openModelFolder(): void;
  openRunsFolder(): void;
  showAbout(): void;
}

export function menuTemplate(o: MenuOptions): MenuItemConstructorOptions[] {
  const mac = o.platform === 'darwin';
  const view: MenuItemConstructorOptions[] = [
    { role: 'reload' },
    ...(o.isPackaged ? [] : ([{ role: 'forceReload' }, { role: 'toggleDevTools' }] as MenuItemConstructorOptions[])),
    { type: 'separator' },
    { role: 'resetZoom' },
    { role: 'zoomIn' },
    { role: 'zoomOut' },
    { type: 'separator' },
    { role: 'togglefullscreen' },
  ];
  return [
    ...(mac
      ? ([
          {
            label: o.appName,
            submenu: [
              { label: `About ${o.appName}`, click: () => o.showAbout() },
              { type: 'separator' },
              { role: 'services' },
              { type: 'separator' },
              { role: 'hide' },
              { role: 'hideOthers' },
              { role: 'unhide' },
              { type: 'separator' },
              { role: 'quit' },
            ],
          },
        ] as MenuItemConstructorOptions[])
      : []),
    {
      label: '&File',
      submenu: [
        { label: 'Open Model Folder…', accelerator: 'CmdOrCtrl+O', click: () => o.openModelFolder() },
        { label: 'Open Runs Folder', click: () => o.openRunsFolder() },
        { type: 'separator' },
        mac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    { label: '&View', submenu: view },
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: mac ? [] : [{ label: `About ${o.appName}`, click: () => o.showAbout() }],
    },
  ];
}

export function isPickPurpose(value: unknown): value is PickPurpose {
  return typeof value === 'string' && (PICK_PURPOSES as readonly string[]).includes(value);
}

/** The native dialog for each purpose: folders for models and exports, a file for datasets. */
export function pickDialogOptions(purpose: PickPurpose): OpenDialogOptions {
  switch (purpose) {
    case 'model':
      return { title: 'Open model folder', buttonLabel: 'Open', properties: ['openDirectory'] };
    case 'export':
      return { title: 'Export to folder', buttonLabel: 'Choose', properties: ['openDirectory', 'createDirectory'] };
    case 'data':
      return {
        title: 'Choose dataset',
        buttonLabel: 'Choose',
        properties: ['openFile'],
        filters: [
          { name: 'Text datasets', extensions: ['txt', 'jsonl', 'parquet'] },
          { name: 'All files', extensions: ['*'] },
        ],
      };
  }
}
