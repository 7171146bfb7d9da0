// Small shared pieces: labelled fields, notes, badges, progress bars, segmented choices.
import { useId, type ReactNode } from 'react';

export function Field(props: { label: string; hint?: ReactNode; error?: string; children: (id: string, describedBy?: string) => ReactNode; className?: string }) {
  const id = useId();
  const noteId = `${id}-note`;
  const note = props.error ?? props.hint;
  return (
    <div className={`field ${props.className ?? ''}`}>
      <label htmlFor={id}>{props.label}</label>
      {props.children(id, note ? noteId : undefined)}
      {props.error ? (
        <span id={noteId} className="error" role="alert">
          {props.error}
        </span>
      ) : props.hint ? (
        <span id={noteId} className="hint">
          {props.hint}
        </span>
      ) : null}
    </div>
  );
}

export function TextField(props: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  hint?: ReactNode;
  error?: string;
  placeholder?: string;
  type?: 'text' | 'number';
  min?: number;
  step?: number | 'any';
  className?: string;
  mono?: boolean;
  disabled?: boolean;
  readOnly?: boolean;
  onEnter?: () => void;
}) {
  return (
    <Field label={props.label} hint={props.hint} error={props.error} className={props.className}>
      {(id, describedBy) => (
        <input
          id={id}
          type={props.type ?? 'text'}
          inputMode={props.type === 'number' ? 'decimal' : undefined}
          className={props.mono ? 'mono' : undefined}
          value={props.value}
          disabled={props.disabled}
          readOnly={props.readOnly}
          min={props.min}
          step={props.step}
          placeholder={props.placeholder}
          aria-invalid={props.error ? true : undefined}
          aria-describedby={describedBy}
          spellCheck={false}
          onChange={(e) => props.onChange(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && props.onEnter) props.onEnter();
          }}
        />
      )}
    </Field>
  );
}

export function SelectField<T extends string>(props: {
  label: string;
  value: T;
  options: readonly { value: T; label: string }[];
  onChange: (v: T) => void;
  hint?: ReactNode;
  error?: string;
  className?: string;
  disabled?: boolean;
}) {
  return (
    <Field label={props.label} hint={props.hint} error={props.error} className={props.className}>
      {(id, describedBy) => (
        <select id={id} value={props.value} disabled={props.disabled} aria-invalid={props.error ? true : undefined} aria-describedby={describedBy} onChange={(e) => props.onChange(e.target.value as T)}>
          {props.options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

/** A row of toggle buttons for one choice (aria-pressed marks the chosen one). */
export function Segmented<T extends string | number>(props: {
  label: string;
  value: T;
  options: readonly { value: T; label: string }[];
  onChange: (v: T) => void;
}) {
  return (
    <div className="segmented" role="group" aria-label={props.label}>
      {props.options.map((o) => (
        <button key={String(o.value)} type="button" aria-pressed={o.value === props.value} onClick={() => props.onChange(o.value)}>
          {o.label}
        </button>
      ))}
    </div>
  );
}

export function ErrorNote({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return (
    <div className="note error" role="alert">
      {error}
    </div>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge ${status}`}>{status}</span>;
}

export function ProgressBar({ value, label }: { value: number; label: string }) {
  const pct = Math.round(Math.min(1, Math.max(0, value)) * 1000) / 10;
  return (
    <div className="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct}>
      <div style={{ width: `${pct}%` }} />
    </div>
  );
}

export function Stat(props: { label: string; value: ReactNode; sub?: ReactNode }) {
  return (
    <div className="stat">
      <div className="label">{props.label}</div>
      <div className="value">{props.value}</div>
      {props.sub !== undefined && <div className="sub">{props.sub}</div>}
    </div>
  );
}
