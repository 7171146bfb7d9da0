import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readLegacyRecent, useModel } from '../../stores/model';
import { startStores } from '../../stores/start';
import { fakeApi } from '../../test/fake-api';
import { ModelsView } from './ModelsView';

describe('Models view', () => {
  let stop: () => void;
  let api: ReturnType<typeof fakeApi>['api'];
  beforeEach(() => {
    localStorage.clear();
    useModel.setState({ path: '', summary: null, loading: false, error: null, recent: [] });
    ({ api } = fakeApi());
    stop = startStores(api);
  });
  afterEach(() => {
    cleanup();
    stop();
  });

  it('lists the models opened before (kept by the engine), newest first, and reopens the last one after a reload', async () => {
    render(<ModelsView />);
    for (const p of ['/models/a', '/models/b', '/models/a']) {
      fireEvent.change(screen.getByLabelText(/Model folder/), { target: { value: p } });
      await act(async () => {
        fireEvent.click(screen.getByRole('button', { name: 'Open' }));
      });
    }
    await expect(api.recentModels()).resolves.toEqual(['/models/a', '/models/b']);
    const recent = screen.getByRole('group', { name: 'Recent models' });
    expect(within(recent).getAllByRole('button', { name: /^\/models/ }).map((b) => b.textContent)).toEqual(['/models/a', '/models/b']);

    // A reload (or a restarted engine): the store starts empty, asks the engine, and the last model opens again.
    useModel.setState({ path: '', summary: null, recent: [] });
    await act(async () => {
      await useModel.getState().restore();
    });
    expect(api.inspectModel).toHaveBeenLastCalledWith('/models/a');
    expect(useModel.getState().summary?.path).toBe('/models/a');

    expect(useModel.getState().recent).toEqual(['/models/a', '/models/b']);
    await act(async () => {
      fireEvent.click(within(screen.getByRole('group', { name: 'Recent models' })).getByRole('button', { name: 'Forget /models/b' }));
    });
    expect(api.forgetModel).toHaveBeenCalledWith('/models/b');
    await expect(api.recentModels()).resolves.toEqual(['/models/a']);
    expect(localStorage.getItem('loftq.recentModels')).toBeNull(); // nothing kept in the browser
  });

  it("hands the list an older version kept in the browser to the engine, once", async () => {
    localStorage.setItem('loftq.recentModels', JSON.stringify(['/new', '/old']));
    await act(async () => {
      await useModel.getState().restore();
    });
    await expect(api.recentModels()).resolves.toEqual(['/new', '/old']);
    expect(localStorage.getItem('loftq.recentModels')).toBeNull();
  });

  it('ignores damaged legacy storage', () => {
    localStorage.setItem('loftq.recentModels', '{"not": "a list"');
    expect(readLegacyRecent()).toEqual([]);
    localStorage.setItem('loftq.recentModels', JSON.stringify(['/ok', 7, null, '']));
    expect(readLegacyRecent()).toEqual(['/ok']);
  });
});
