// The application menu and the native dialogs' options.
import type { MenuItemConstructorOptions } from 'electron';
import { describe, expect, it, vi } from 'vitest';
import { isPickPurpose, menuTemplate, pickDialogOptions } from './menu';

function flatten(items: MenuItemConstructorOptions[]): MenuItemConstructorOptions[] {
  return items.flatMap((i) => [i, ...(Array.isArray(i.submenu) ? flatten(i.submenu) : [])]);
}

const options = (platform: NodeJS.Platform, isPackaged: boolean) => ({
  appName: 'LoftQ Studio',
  platform,
  isPackaged,
  openModelFolder: vi.fn(),
  openRunsFolder: vi.fn(),
  showAbout: vi.fn(),
});

describe('menuTemplate', () => {
  it('has File, Edit, View and Help with the app actions', () => {
    const o = options('linux', false);
    const menu = menuTemplate(o);
    expect(menu.map((m) => m.label ?? m.role)).toEqual(['&File', 'editMenu', '&View', 'windowMenu', 'help']);
    const items = flatten(menu);
    const byLabel = (label: string) => items.find((i) => i.label === label);
    (byLabel('Open Model Folder…')?.click as () => void)();
    (byLabel('Open Runs Folder')?.click as () => void)();
    (byLabel('About LoftQ Studio')?.click as () => void)();
    expect(o.openModelFolder).toHaveBeenCalledOnce();
    expect(o.openRunsFolder).toHaveBeenCalledOnce();
    expect(o.showAbout).toHaveBeenCalledOnce();
    expect(byLabel('Open Model Folder…')?.accelerator).toBe('CmdOrCtrl+O');
    const roles = items.map((i) => i.role).filter(Boolean);
    expect(roles).toEqual(expect.arrayContaining(['quit', 'reload', 'toggleDevTools', 'resetZoom', 'zoomIn', 'zoomOut']));
  });

  it('has no developer tools when packaged', () => {
    const roles = flatten(menuTemplate(options('win32', true))).map((i) => i.role);
    expect(roles).not.toContain('toggleDevTools');
    expect(roles).not.toContain('forceReload');
    expect(roles).toContain('reload');
  });

  it('puts About and Quit in the app menu on macOS', () => {
    const menu = menuTemplate(options('darwin', true));
    expect(menu[0].label).toBe('LoftQ Studio');
    const appItems = flatten([menu[0]]);
    expect(appItems.map((i) => i.role)).toContain('quit');
    expect(appItems.some((i) => i.label === 'About LoftQ Studio')).toBe(true);
  });
});

describe('pick dialogs', () => {
  it('knows the three purposes only', () => {
    for (const p of ['model', 'export', 'data']) expect(isPickPurpose(p)).toBe(true);
    for (const p of ['Model', '', null, 1, 'openFile', '__proto__']) expect(isPickPurpose(p)).toBe(false);
  });

  it('chooses folders for models and exports (export may create one), a dataset file for data', () => {
    expect(pickDialogOptions('model').properties).toEqual(['openDirectory']);
    expect(pickDialogOptions('export').properties).toEqual(['openDirectory', 'createDirectory']);
    const data = pickDialogOptions('data');
    expect(data.properties).toEqual(['openFile']);
    expect(data.filters?.[0].extensions).toEqual(['txt', 'jsonl', 'parquet']);
  });
});
