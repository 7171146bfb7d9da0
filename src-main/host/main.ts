// Electron main: one window, the menu, native dialogs and the IPC bridge to the compute
// process (a utilityProcess running the engine). Kept thin: the decisions live in plain,
// tested modules (security, compute-host, compute-config, menu); this file wires them up.
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  nativeTheme,
  protocol,
  session,
  shell,
  utilityProcess,
  type IpcMainInvokeEvent,
  type WebContents,
} from 'electron';
import type { ApiEvent } from '../api/contract';
import { appPaths, computeArgv } from './compute-config';
import { ComputeHost, type ComputeChild } from './compute-host';
import { IPC, type CallResult } from '../wire/ipc-protocol';
import { ChosenPaths } from './chosen-paths';
import { isPickPurpose, menuTemplate, pickDialogOptions } from './menu';
import { APP_HOST, APP_SCHEME, contentSecurityPolicy, externalUrl, isRendererUrl, isTrustedSender, rendererEntry, rendererLocation, withSecurityHeaders } from './security';
import { contentType, resolveStaticPath } from '../wire/static-path';

const APP_NAME = 'LoftQ Studio';

// Before anything reads userData: the same folder in development and when packaged.
app.setName(APP_NAME);

// The dashboard is served as app://studio/ (standard and secure like https, so the renderer
// gets a real origin and none of file://'s privileges); must be registered before ready.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  run();
}

function run(): void {
  app.enableSandbox();
  nativeTheme.themeSource = 'system';

  const location = rendererLocation(app.isPackaged, process.env.ELECTRON_RENDERER_URL, join(__dirname, '../renderer'));
  const csp = contentSecurityPolicy(location);
  const paths = appPaths({
    isPackaged: app.isPackaged,
    resourcesPath: process.resourcesPath,
    appPath: app.getAppPath(),
    mainDir: __dirname,
    userData: app.getPath('userData'),
    runsDirOverride: process.env.LOFTQ_RUNS_DIR,
  });
  mkdirSync(paths.runsDir, { recursive: true });

  let win: BrowserWindow | null = null;
  const send = (event: ApiEvent) => {
    if (win && !win.isDestroyed()) win.webContents.send(IPC.event, event);
  };

  // Exports from the app go only where the user chose in the dialog (kept here, in main).
  const chosen = new ChosenPaths();
  const compute = new ComputeHost({
    spawn: () => spawnCompute(join(__dirname, 'compute.cjs'), computeArgv({ ...paths, version: app.getVersion() })),
    onEvent: send,
    log: (line) => console.error(`[loftq] ${line}`),
    guard: (method, params) => chosen.check(method, params),
  });

  // --- IPC: trusted senders only, payloads validated like the WebSocket path --------------

  const trusted = (event: IpcMainInvokeEvent): boolean => {
    const w = win;
    if (!w || w.isDestroyed() || event.sender !== w.webContents) return false;
    let frame: Electron.WebFrameMain | null = null;
    try {
      frame = event.senderFrame;
    } catch {
      frame = null;
    }
    return isTrustedSender({ fromOurWindow: true, isMainFrame: frame !== null && frame.parent === null, frameUrl: frame?.url ?? null }, location);
  };
  const refused: CallResult = { ok: false, error: { message: 'request refused: it did not come from the app window', user: false } };

  ipcMain.handle(IPC.request, (event, payload: unknown) => (trusted(event) ? compute.request(payload) : refused));
  ipcMain.handle(IPC.pickFolder, async (event, purpose: unknown): Promise<CallResult> => {
    if (!trusted(event) || !win) return refused;
    if (!isPickPurpose(purpose)) return { ok: false, error: { message: `unknown dialog purpose ${JSON.stringify(purpose)}`, user: true } };
    const picked = await dialog.showOpenDialog(win, pickDialogOptions(purpose));
    const path = picked.canceled || picked.filePaths.length === 0 ? null : picked.filePaths[0];
    if (path) chosen.remember(purpose, path);
    return { ok: true, result: path };
  });

  ipcMain.handle(IPC.reveal, async (event, path: unknown): Promise<CallResult> => {
    if (!trusted(event)) return refused;
    // Read-only (the file manager opens at it), and only for something that exists.
    if (typeof path !== 'string' || !existsSync(path)) return { ok: false, error: { message: `no such file or folder: ${String(path)}`, user: true } };
    shell.showItemInFolder(path);
    return { ok: true, result: null };
  });

  // --- hardening of every web contents ----------------------------------------------------

  app.on('web-contents-created', (_event, contents: WebContents) => {
    contents.on('will-frame-navigate', (e) => {
      if (!isRendererUrl(e.url, location)) e.preventDefault();
    });
    contents.on('will-redirect', (e) => {
      if (!isRendererUrl(e.url, location)) e.preventDefault();
    });
    contents.on('will-attach-webview', (e) => e.preventDefault());
    contents.setWindowOpenHandler(({ url }) => {
      const external = externalUrl(url);
      if (external) void shell.openExternal(external);
      return { action: 'deny' };
    });
  });

  // --- menu and window -----------------------------------------------------------------

  const openModelFolder = async () => {
    const options = pickDialogOptions('model');
    const picked = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
    if (!picked.canceled && picked.filePaths.length > 0) send({ type: 'open-model', path: picked.filePaths[0] });
  };
  const openRunsFolder = async () => {
    const error = await shell.openPath(paths.runsDir);
    if (error) dialog.showErrorBox('Cannot open the runs folder', `${paths.runsDir}: ${error}`);
  };

  const createWindow = () => {
    const w = new BrowserWindow({
      width: 1280,
      height: 800,
      minWidth: 1024,
      minHeight: 700,
      show: false,
      title: APP_NAME,
      backgroundColor: nativeTheme.shouldUseDarkColors ? '#16181d' : '#ffffff',
      webPreferences: {
        preload: join(__dirname, '../preload/preload.cjs'),
        contextIsolation: true,
        sandbox: true,
        nodeIntegration: false,
        nodeIntegrationInSubFrames: false,
        nodeIntegrationInWorker: false,
        webviewTag: false,
        webSecurity: true,
        allowRunningInsecureContent: false,
        navigateOnDragDrop: false,
        spellcheck: false,
      },
    });
    win = w;
    w.once('ready-to-show', () => w.show());
    w.on('closed', () => {
      if (win === w) win = null;
    });
    w.webContents.on('render-process-gone', (_e, details) => console.error(`[loftq] the window's renderer stopped: ${details.reason}`));
    const loaded = w.loadURL(rendererEntry(location));
    loaded.catch((e: unknown) => console.error(`[loftq] cannot load the dashboard: ${e instanceof Error ? e.message : String(e)}`));
  };

  app.on('second-instance', () => {
    if (!win) return;
    if (win.isMinimized()) win.restore();
    win.focus();
  });

  let quitting = false;
  app.on('before-quit', (e) => {
    if (quitting) return;
    quitting = true;
    e.preventDefault();
    // Running jobs are cancelled (their runs marked so) before the process goes.
    void compute.stop(5000).finally(() => app.quit());
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });

  void app.whenReady().then(() => {
    if (location.kind === 'app') {
      const root = location.root;
      protocol.handle(APP_SCHEME, async (request) => {
        const url = new URL(request.url);
        if (url.host !== APP_HOST || request.method !== 'GET') return new Response(null, { status: 403 });
        const target = resolveStaticPath(root, url.pathname);
        if ('status' in target) return new Response(null, { status: target.status });
        const headers = { 'Content-Type': contentType(target.path), 'Content-Security-Policy': csp, 'X-Content-Type-Options': 'nosniff' };
        return new Response(await readFile(target.path), { headers });
      });
    }
    session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
      callback({ responseHeaders: withSecurityHeaders(details.responseHeaders, csp) });
    });
    session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
    session.defaultSession.setPermissionCheckHandler(() => false);
    app.setAboutPanelOptions({ applicationName: APP_NAME, applicationVersion: app.getVersion(), copyright: 'MIT License' });
    Menu.setApplicationMenu(
      Menu.buildFromTemplate(
        menuTemplate({
          appName: APP_NAME,
          platform: process.platform,
          isPackaged: app.isPackaged,
          openModelFolder: () => void openModelFolder(),
          openRunsFolder: () => void openRunsFolder(),
          showAbout: () => app.showAboutPanel(),
        }),
      ),
    );
    compute.start();
    createWindow();
    app.on('activate', () => {
      if (BrowserWindow.getAllWindows().length === 0) createWindow();
    });
  });
}

/** The engine's process: Electron's utilityProcess behind the ComputeChild interface. */
function spawnCompute(modulePath: string, args: string[]): ComputeChild {
  const child = utilityProcess.fork(modulePath, args, { serviceName: 'LoftQ Studio compute', stdio: 'inherit' });
  return {
    postMessage: (message) => child.postMessage(message),
    onMessage: (listener) => child.on('message', listener),
    onExit: (listener) => child.on('exit', listener),
    kill: () => void child.kill(),
  };
}
