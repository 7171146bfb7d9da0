// The layer × module bit grid: a click on a cell cycles it 2 → 3 → 4 → 8; a click on a
// layer or module header cycles the whole row or column. Overridden cells are outlined.
import { memo, useMemo } from 'react';
import { nextBits, type BitsTarget } from '../../lib/bits-map';
import { gridAxes, moduleLabel } from '../../lib/targets';

export interface GridProps {
  targets: readonly BitsTarget[];
  bits: readonly number[];
  overrides: Readonly<Record<string, number>>;
  onCycle: (targets: BitsTarget[], current: number) => void;
}

const Cell = memo(function Cell(props: { target: BitsTarget; bits: number; override: boolean; onCycle: GridProps['onCycle'] }) {
  const { target, bits } = props;
  return (
    <button
      type="button"
      className={`b${bits}${props.override ? ' override' : ''}`}
      aria-label={`layer ${target.layer} ${target.module}: ${bits} bits${props.override ? ' (set here)' : ''}; activate for ${nextBits(bits)}`}
      title={`${target.name}: ${bits} bits`}
      onClick={() => props.onCycle([target], bits)}
    >
      {bits}
    </button>
  );
});

export function BitsGrid({ targets, bits, overrides, onCycle }: GridProps) {
  const { layers, modules, index } = useMemo(() => {
    const axes = gridAxes(targets);
    const idx = new Map<string, number>();
    targets.forEach((t, i) => idx.set(`${t.layer}|${t.module}`, i));
    return { ...axes, index: idx };
  }, [targets]);

  const group = (f: (t: BitsTarget) => boolean) => {
    const members = targets.filter(f);
    const first = targets.indexOf(members[0]);
    return { members, current: first >= 0 ? bits[first] : 4 };
  };

  return (
    <div className="bits-grid-wrap">
      <div className="bits-grid" role="group" aria-label="Bits per matrix" style={{ gridTemplateColumns: `auto repeat(${modules.length}, auto)` }}>
        <span className="corner head rowhead" aria-hidden="true" />
        {modules.map((m) => {
          const g = group((t) => t.module === m);
          return (
            <button key={m} type="button" className="head" title={`all ${m}: next ${nextBits(g.current)} bits`} aria-label={`all ${m} matrices: set to ${nextBits(g.current)} bits`} onClick={() => onCycle(g.members, g.current)}>
              {moduleLabel(m)}
            </button>
          );
        })}
        {layers.map((layer) => {
          const g = group((t) => t.layer === layer);
          return [
            <button key={`r${layer}`} type="button" className="rowhead" title={`layer ${layer}: next ${nextBits(g.current)} bits`} aria-label={`all of layer ${layer}: set to ${nextBits(g.current)} bits`} onClick={() => onCycle(g.members, g.current)}>
              L{layer}
            </button>,
            ...modules.map((m) => {
              const i = index.get(`${layer}|${m}`);
              if (i === undefined) return <span key={`${layer}|${m}`} />;
              const t = targets[i];
              return <Cell key={t.name} target={t} bits={bits[i]} override={overrides[t.name] !== undefined} onCycle={onCycle} />;
            }),
          ];
        })}
      </div>
    </div>
  );
}
