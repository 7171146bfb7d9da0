// Choosing the device a job runs on, once per job: `auto` takes the GPU when the CUDA addon
// loads and a GPU answers, else the CPU, and says why either way (recorded in run.json and
// shown in the app); `cuda` fails with the reason when the GPU cannot be used.
import { UserError } from '../errors';
import { CpuDevice } from './cpu-device';
import { CudaDevice, CudaUnavailable } from './cuda-device';
import type { ComputeDevice, DeviceInfo } from './device';
import type { ComputePrecision, NeuralOps } from './nn';

export type DeviceChoice = 'auto' | 'cpu' | 'cuda';
export const DEVICE_CHOICES: readonly DeviceChoice[] = ['auto', 'cpu', 'cuda'];

export interface OpenedDevice {
  device: ComputeDevice;
  choice: DeviceChoice;
  /** Why this device: "--device cpu", "auto: NVIDIA H200 answered", "auto: CPU, because …". */
  reason: string;
}

export interface OpenDeviceOptions {
  env?: NodeJS.ProcessEnv;
  /** CPU threads (0: every core). */
  threads?: number;
}

/** Why CUDA cannot be used here, or null when it can (opens and closes the GPU to find out). */
export async function cudaStatus(env: NodeJS.ProcessEnv = process.env): Promise<{ info: DeviceInfo | null; reason: string }> {
  try {
    const device = CudaDevice.open(env);
    await device.dispose();
    return { info: device.info, reason: `${device.info.name} answered` };
  } catch (e) {
    if (e instanceof CudaUnavailable) return { info: null, reason: e.message };
    throw e;
  }
}

export function checkDeviceChoice(choice: string): DeviceChoice {
  if (!(DEVICE_CHOICES as readonly string[]).includes(choice)) {
    throw new UserError(`--device must be one of ${DEVICE_CHOICES.join(', ')}, got '${choice}'`);
  }
  return choice as DeviceChoice;
}

export async function openDevice(choice: DeviceChoice, options: OpenDeviceOptions = {}): Promise<OpenedDevice> {
  const env = options.env ?? process.env;
  if (choice === 'cpu') return { device: new CpuDevice(options.threads), choice, reason: 'chosen with --device cpu' };
  try {
    const device = CudaDevice.open(env);
    return { device, choice, reason: choice === 'auto' ? `auto: ${device.info.name} answered` : 'chosen with --device cuda' };
  } catch (e) {
    if (!(e instanceof CudaUnavailable)) throw e;
    if (choice === 'cuda') throw new UserError(`--device cuda: ${e.message}`);
    return { device: new CpuDevice(options.threads), choice, reason: `auto: CPU, because ${e.message}` };
  }
}

/** Whether a GPU computes bf16 products: Ampere (compute capability 8.0) and newer. */
export function supportsBf16(info: DeviceInfo): boolean {
  return info.kind === 'cuda' && Number(info.details.compute_capability ?? 0) >= 8;
}

/** A model's compute precision where the user chose none: bf16 where the GPU has it. */
export function defaultPrecision(info: DeviceInfo): ComputePrecision {
  return supportsBf16(info) ? 'bf16' : 'fp32';
}

/** A device opened for running a model: its neural-network operations where it has them (GPU), else null (the CPU's graphs). */
export interface ModelDevice {
  opened: OpenedDevice;
  nn: NeuralOps | null;
  /** Where the model runs, for records and progress: "CPU", "NVIDIA H200 (bf16)". */
  where: string;
}

/** Opens the device of an eval or train job; the precision defaults to bf16 where the GPU has it. */
export async function openModelDevice(choice: DeviceChoice, precision?: ComputePrecision): Promise<ModelDevice> {
  const opened = await openDevice(choice);
  const p = precision ?? defaultPrecision(opened.device.info);
  const nn = opened.device.neuralOps?.(p) ?? null;
  return { opened, nn, where: nn ? `${opened.device.info.name} (${p})` : 'CPU' };
}

/** What run.json records about the device of a job. */
export function deviceRecord(opened: OpenedDevice): Record<string, unknown> {
  const { info } = opened.device;
  return { kind: info.kind, name: info.name, memory_bytes: info.memoryBytes, cores: info.cores, choice: opened.choice, reason: opened.reason, ...info.details };
}
