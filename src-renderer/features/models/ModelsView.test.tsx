import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { useModel, readRecent } from '../../stores/model';
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

  it('lists the models opened before, newest first, and reopens the last one after a reload', async () => {
    render(<ModelsView />);
    for (const p of ['/models/a', '/models/b', '/models/a']) {
      fireEvent.change(screen.getByLabelText(/Model folder/), { target: { value: p } });
      await act(async () => {
        fireEvent.click(screen.getByRole('button', { name: 'Open' }));
      });
    }
    expect(readRecent()).toEqual(['/models/a', '/models/b']);
    const recent = screen.getByRole('group', { name: 'Recent models' });
    expect(within(recent).getAllByRole('button', { name: /^\/models/ }).map((b) => b.textContent)).toEqual(['/models/a', '/models/b']);

    // A reload: the store starts empty and the last model opens again.
    useModel.setState({ path: '', summary: null });
    await act(async () => {
      await useModel.getState().restore();
    });
    expect(api.inspectModel).toHaveBeenLastCalledWith('/models/a');
    expect(useModel.getState().summary?.path).toBe('/models/a');

    fireEvent.click(within(recent).getByRole('button', { name: 'Forget /models/b' }));
    expect(readRecent()).toEqual(['/models/a']);
  });

  it('ignores damaged storage', () => {
    localStorage.setItem('loftq.recentModels', '{"not": "a list"');
    expect(readRecent()).toEqual([]);
    localStorage.setItem('loftq.recentModels', JSON.stringify(['/ok', 7, null, '']));
    expect(readRecent()).toEqual(['/ok']);
  });
});
