// SPDX-License-Identifier: Apache-2.0
// Type declarations for the Anomalens browser library (anomalens.js) and its custom element.

export type AnomalensErrorCode =
  | 'invalid_model'      // the .alm file is malformed
  | 'unsupported'        // the model uses a layer or option this core does not support
  | 'decode_failed'      // the image could not be decoded
  | 'invalid_argument'   // the input is not something classify() accepts (or has no pixels yet)
  | 'out_of_memory'
  | 'network'            // the model URL could not be fetched
  | 'core_load_failed'   // the wasm core could not be loaded or started
  | 'worker_failed'      // the worker died
  | 'closed'             // close() was called
  | 'not_ready'
  | 'internal'
  | (string & {});

export class AnomalensError extends Error {
  readonly name: 'AnomalensError';
  readonly code: AnomalensErrorCode;
  /** Name of the File that failed, when the input was a File. */
  file?: string;
  /** Anomalens.fit: 'base' when the base model itself was refused. */
  phase?: 'base';
}

export type Label = 'normal' | 'abnormal';

export interface ClassifyResult {
  label: Label;
  /** P(abnormal), 0..1: for a model with meta test_time_flips (the default model), the mean
   * over the listed mirrors of the input, one network pass each (timings.infer covers all). */
  score: number;
  scores: { normal: number; abnormal: number };
  /** The model's decision threshold: label is 'abnormal' when score >= threshold. */
  threshold: number;
  /** Wall time of this call in milliseconds, from classify() to the result (excluding time queued). */
  elapsedMs: number;
  /** Time spent in the core, milliseconds. */
  timings: { decode: number; preprocess: number; infer: number; worker: number };
  /** One-class models: the raw distance (threshold at score 0.5). */
  distance?: number;
  /** One-class models: per-location scores on the feature grid (0.5 = threshold). */
  anomalyMap?: Heatmap;
  /** With { heatmap: true }: per-pixel scores at the image's size; null if not one-class. */
  heatmap?: Heatmap | null;
}

export interface Heatmap {
  width: number;
  height: number;
  /** Row-major scores in 0..1; 0.5 is the model's threshold. */
  data: Float32Array;
}

export interface ClassifyOptions {
  /** One-class models: also return result.heatmap. */
  heatmap?: boolean;
}

export interface FitProgress {
  phase: 'normal' | 'abnormal' | 'finish';
  /** Images sent so far (normal, then abnormal). */
  done: number;
  total: number;
}

export interface FitOptions {
  /** Normal images (at least 2); any classify() input. */
  normal: ClassifyInput[];
  /** Optional abnormal examples: the threshold is then chosen by best F1. */
  abnormal?: ClassifyInput[];
  /** Base model: a classifier .alm, a backbone (scripts/oneclass_backbone.py) or a fitted one-class model. */
  base: string | URL | ArrayBuffer | ArrayBufferView | Blob;
  /** Target false-positive rate on held-out normal images, [0, 1) (default 0.01). */
  fpr?: number;
  /** Feature projection size, 0..4096 (0 keeps all channels; default: the base's own, else 128). */
  dim?: number;
  /** How finer feature maps reach the grid: 'max' (default) or 'avg'. */
  pool?: 'max' | 'avg';
  /** Gaussian smoothing of the anomaly map, sigma in grid cells, [0, 8] (default 0). */
  smooth?: number;
  /** Covariance shrinkage: += shrinkage * trace/D * I, [0, 100] (default 0.01). */
  shrinkage?: number;
  /** Global ridge: += ridge * (trace/D averaged over all locations) * I, [0, 100] (default 0.1). */
  ridge?: number;
  /** Storage of the fitted statistics: 'f16' (default; half the size) or 'f32'. */
  storage?: 'f16' | 'f32';
  /** Fit-time augmentation: 'none' (default), 'hflip', 'vflip', 'rot180', 'flips' or a comma list. */
  augment?: string;
  onProgress?: (progress: FitProgress) => void;
  coreUrl?: string | URL;
  noSimdCoreUrl?: string | URL;
  mtCoreUrl?: string | URL;
  threads?: 'auto' | number;
  workerUrl?: string | URL;
  wasmBinary?: ArrayBuffer | ArrayBufferView;
}

export interface FitSummary {
  fitImages: number;
  holdoutImages: number;
  abnormalImages: number;
  /** Raw distance at score 0.5. */
  threshold: number;
  scale: number;
  /** Fraction of held-out normal images at or above the threshold. */
  holdoutFpr: number;
  /** -1 without abnormal examples. */
  abnormalRecall: number;
  f1: number;
  rocAuc: number;
  refinedByF1: boolean;
  /**
   * True when too few normal images were held out to measure the target rate directly
   * ((held out + 1) * fpr < 1): the threshold is a prediction bound fitted to their distances.
   */
  thresholdExtrapolated: boolean;
  /** How the model stores its statistics: 'f16' unless asked for 'f32' or a value is beyond the half range. */
  storage: 'f16' | 'f32';
  modelBytes: number;
  peakFitBytes: number;
  /** Inputs that could not be read (skipped). */
  skipped: { index: number; phase: 'normal' | 'abnormal'; file?: string; code: AnomalensErrorCode; message: string }[];
}

export interface ModelInfo {
  name: string;
  labels: string[];
  inputWidth: number;
  inputHeight: number;
  channels: 'rgb' | 'bgr' | 'gray';
  threshold: number;
  /** A one-class model (fitted from normal images; has heatmaps). */
  oneclass: boolean;
  parameters: number;
  macs: number;
  /** Free-form metadata: description, license, task, training_data, metric.* ... */
  meta: Record<string, string>;
}

export type ClassifyInput =
  | Blob
  | File
  | ArrayBuffer
  | ArrayBufferView
  | ImageData
  | ImageBitmap
  | HTMLCanvasElement
  | OffscreenCanvas
  | HTMLImageElement
  | HTMLVideoElement;

export type ModelSource = string | URL | ArrayBuffer | ArrayBufferView | Blob;

export interface CreateOptions {
  /** The .alm model: a URL to fetch, or its bytes; or a promise of one (the core starts loading meanwhile). */
  model: ModelSource | Promise<ModelSource>;
  /** URL of anomalens_core.js (default: core/ next to anomalens.js). */
  coreUrl?: string | URL;
  /**
   * The non-SIMD build, loaded instead of coreUrl when the browser lacks WebAssembly SIMD
   * (default: coreUrl with "_nosimd" before ".js", i.e. core/anomalens_core_nosimd.js).
   */
  noSimdCoreUrl?: string | URL;
  /** The pthread build (default: coreUrl with "_mt" before ".js"). */
  mtCoreUrl?: string | URL;
  /**
   * Engine threads: 'auto' (default: one per core, at most 4) or a number. More than one runs
   * the pthread build, which needs a cross-origin isolated page (COOP/COEP headers); elsewhere,
   * or if that build cannot start, one thread runs (see RuntimeInfo).
   */
  threads?: 'auto' | number;
  /** URL of worker.js (default: next to anomalens.js). */
  workerUrl?: string | URL;
  /** The core's .wasm bytes, if the app already has them (the core then fetches nothing). */
  wasmBinary?: ArrayBuffer | ArrayBufferView;
  /**
   * Images whose header declares more pixels are refused before decoding, with code
   * 'out_of_memory' (default 64,000,000).
   */
  maxPixels?: number;
}

export interface RuntimeInfo {
  /** The core module that was loaded. */
  coreUrl: string;
  /**
   * 'simd', 'simd-mt' (pthread build, on cross-origin isolated pages) or 'nosimd' (chosen by
   * probing the browser), 'given' when wasmBinary was passed.
   */
  build: 'simd' | 'simd-mt' | 'nosimd' | 'given';
  /** Whether this browser supports WebAssembly SIMD128. */
  simd: boolean;
  /** Engine threads running each layer. */
  threads: number;
  /** Set when the pthread build was chosen but could not start: why (one thread runs). */
  fallback?: string;
  /** Size of the wasm heap in bytes; it only grows, so this is its peak so far. */
  wasmMemoryBytes: number | null;
}

export interface SniffResult {
  format: 'png' | 'jpeg' | 'gif' | 'bmp' | 'webp' | 'avif' | 'heif' | 'ico' | 'svg' | 'unknown';
  /** 'core': bytes go to the wasm decoder; 'browser'/'svg': the browser decodes to pixels. */
  route: 'core' | 'browser' | 'svg';
}

export function sniffFormat(head: ArrayBuffer | Uint8Array, mimeType?: string): SniffResult;

/** Colours a heatmap as an overlay (transparent-yellow below the threshold, orange-red above). */
export function heatmapToImageData(heatmap: Heatmap, options?: { opacity?: number }): ImageData;

export class Anomalens {
  /** Loads the core and the model in a new Web Worker. Rejects with AnomalensError. */
  static create(options: CreateOptions): Promise<Anomalens>;
  /**
   * Fits a one-class model from normal images in a new worker; resolves to a classifier of it.
   * Rejects with AnomalensError (phase 'base' when the base is refused).
   */
  static fit(options: FitOptions): Promise<Anomalens>;
  /** Classifies one image; calls run one at a time, in call order. Rejects with AnomalensError. */
  classify(input: ClassifyInput, options?: ClassifyOptions): Promise<ClassifyResult>;
  /** After fit(): the fitted .alm bytes (a copy); null for create(). */
  modelBytes(): Uint8Array | null;
  /** After fit(): what was fitted and the threshold chosen; null for create(). */
  fitSummary(): FitSummary | null;
  /** The model card (a copy), or null after a failed create. */
  info(): ModelInfo | null;
  /** Which core build runs (SIMD or not) and the wasm heap size; queued like classify(). */
  runtime(): Promise<RuntimeInfo>;
  /** Frees the C++ classifier and the worker once queued calls finish. Idempotent. */
  close(): Promise<void>;
}

export default Anomalens;

/** <anomalens-classifier model="..." core-url="...">; import 'anomalens/element' to define it. */
export class AnomalensClassifierElement extends HTMLElement {
  /** Resolves with the model info once the model is loaded. */
  readonly ready: Promise<ModelInfo>;
  readonly classifier: Anomalens | null;
  classify(input: ClassifyInput): Promise<ClassifyResult>;
}

export interface AnomalensElementEventMap {
  ready: CustomEvent<ModelInfo>;
  result: CustomEvent<ClassifyResult & { file?: string }>;
  error: CustomEvent<{ code: AnomalensErrorCode; message: string; file?: string }>;
}

declare global {
  interface HTMLElementTagNameMap {
    'anomalens-classifier': AnomalensClassifierElement;
  }
}
