// Where an evaluation or a fine-tuning runs: the device (auto, CPU, GPU — named, or why there
// is none) and, when it will be the GPU, the precision of its products.
import type { DeviceChoice } from '../../src-main/api/contract';
import { useConnection } from '../stores/connection';
import { SelectField } from './common';

export type GpuPrecision = 'bf16' | 'fp32';

/** The connected engine's GPU by name, or null where it has none it can use. */
export function useGpuName(): string | null {
  const info = useConnection((s) => s.info);
  return info?.device.cuda.available ? info.device.name : null;
}

/** Whether a job with this device choice runs on the GPU of the connected engine. */
export function runsOnGpu(device: DeviceChoice, gpuName: string | null): boolean {
  return device === 'cuda' || (device === 'auto' && gpuName !== null);
}

export function DeviceFields(props: { device: DeviceChoice; precision: GpuPrecision; onDevice(d: DeviceChoice): void; onPrecision(p: GpuPrecision): void; deviceHint?: string }) {
  const info = useConnection((s) => s.info);
  const gpu = useGpuName();
  const onGpu = runsOnGpu(props.device, gpu);
  return (
    <>
      <SelectField
        label="Device"
        value={props.device}
        options={[
          { value: 'auto', label: gpu ? `Auto (GPU: ${gpu})` : 'Auto (CPU here)' },
          { value: 'cpu', label: 'CPU' },
          { value: 'cuda', label: gpu ? `GPU (${gpu})` : 'GPU (not available)' },
        ]}
        hint={info && !gpu ? `No GPU: ${info.device.cuda.reason}` : props.deviceHint}
        onChange={props.onDevice}
      />
      <SelectField
        label="GPU precision"
        value={props.precision}
        options={[
          { value: 'bf16', label: 'bf16 products, fp32 accumulation' },
          { value: 'fp32', label: 'fp32 throughout (slower, exact)' },
        ]}
        disabled={!onGpu}
        hint={onGpu ? undefined : 'on the CPU every product is float32'}
        onChange={props.onPrecision}
      />
    </>
  );
}
