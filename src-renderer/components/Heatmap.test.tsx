import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LLAMA_MODULES, modulePath } from '../../src-main/engine/rules/modules';
import { Heatmap, type HeatCell } from './Heatmap';

function cells(layers: number): HeatCell[] {
  const out: HeatCell[] = [];
  for (let layer = 0; layer < layers; layer++) {
    LLAMA_MODULES.forEach((module, j) => out.push({ name: modulePath(layer, module), layer, module, value: 0.3 + 0.01 * layer + 0.001 * j }));
  }
  return out;
}

describe('Heatmap', () => {
  afterEach(cleanup);

  it('draws 560 cells (80 layers × 7 modules) in one SVG, quickly', () => {
    const data = cells(80);
    const t0 = performance.now();
    const { container } = render(<Heatmap cells={data} valueLabel="err_init" label="test" />);
    const ms = performance.now() - t0;
    expect(container.querySelectorAll('rect[data-name]')).toHaveLength(560);
    expect(container.querySelectorAll('svg')).toHaveLength(1);
    // jsdom is far slower than a browser; this only catches accidental quadratic work.
    expect(ms).toBeLessThan(1500);
  });

  it('selects by click and by arrow keys', () => {
    const onSelect = vi.fn();
    const data = cells(3);
    const { container, rerender } = render(<Heatmap cells={data} valueLabel="err_init" label="test" selected={data[0].name} onSelect={onSelect} />);
    fireEvent.click(container.querySelector(`rect[data-name="${data[9].name}"]`)!);
    expect(onSelect).toHaveBeenLastCalledWith(data[9].name);
    rerender(<Heatmap cells={data} valueLabel="err_init" label="test" selected={data[9].name} onSelect={onSelect} />);
    const focusable = screen.getByRole('group');
    fireEvent.keyDown(focusable, { key: 'ArrowDown' });
    expect(onSelect).toHaveBeenLastCalledWith(modulePath(2, 'v_proj'));
    fireEvent.keyDown(focusable, { key: 'ArrowLeft' });
    expect(onSelect).toHaveBeenLastCalledWith(modulePath(1, 'k_proj'));
    fireEvent.keyDown(focusable, { key: 'ArrowUp' });
    expect(onSelect).toHaveBeenLastCalledWith(modulePath(0, 'v_proj'));
  });

  it('labels the colour scale with the data range', () => {
    const { container } = render(<Heatmap cells={cells(2)} valueLabel="err_init" label="test" />);
    const texts = [...container.querySelectorAll('svg > text')].map((t) => t.textContent);
    expect(texts.slice(-4)).toEqual(['err_init', '0.3', '0.308', '0.316']);
  });

  it('keeps its legend inside the drawing, and scales down to a narrower panel instead of cutting it off', () => {
    const { container } = render(<Heatmap cells={cells(16).map((c, i) => ({ ...c, value: 0.00554 + i * 1e-4 }))} valueLabel="predicted err" label="test" />);
    const svg = container.querySelector('svg')!;
    const width = Number(svg.getAttribute('width'));
    // 11 px text is at most ~6.6 px a character: every label ends inside the drawing.
    for (const t of container.querySelectorAll('svg > text')) {
      expect(Number(t.getAttribute('x')) + (t.textContent ?? '').length * 6.6, t.textContent ?? '').toBeLessThanOrEqual(width);
    }
    expect(svg.getAttribute('viewBox')).toBe(`0 0 ${width} ${svg.getAttribute('height')}`);
    expect(svg.style.maxWidth).toBe('100%');
  });
});
