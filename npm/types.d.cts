// Types shared by the browser entry (index.d.ts) and the Node entries (node.d.ts, node.d.cts) of
// {{NAME}}; they describe the runtime objects of lib/ (checked by tests/test_npm.py with tsc).
import type * as tf from '@tensorflow/tfjs';
import type { MODEL_SPECS } from './model-specs.cjs';

export type Backend = 'webgl' | 'wasm' | 'cpu' | 'auto';

/** Load-time settings (lib/options.js MODEL_CONFIG_DEFAULTS); unknown keys throw. */
export interface ModelConfig {
  /** Bundle root: URL (browser; required there) or folder path (Node; default this package's models/). */
  modelUrl?: string | URL;
  /** Default 'auto' (lib/backend.js selectBackend); a name that cannot start throws. */
  backend?: Backend;
  /** Default: the first three, plus 'attributes' when the bundle has an attributes model. */
  models?: ModelSetName[];
  /** Where the WASM backend's .wasm files are (URL/folder prefix or {file: url}); default: resolved from node_modules (Node). */
  wasmPaths?: string | Record<string, string> | null;
  /** WASM threads: 'auto' (default: TF.js's half of the logical cores) or 1-8 (faster on an idle machine, slower on a busy one); needs a cross-origin isolated page; Node: 1. */
  wasmThreads?: 'auto' | number;
}

/** Per-call settings of analyze (lib/options.js ANALYZE_DEFAULTS); unknown keys throw. */
export interface AnalyzeOptions {
  /** Keep at most this many faces (highest score first); default null: all. */
  maxFaces?: number | null;
  /** Smallest face the detector looks for, detection-image pixels; default null: the manifest's. */
  minFaceSize?: number | null;
  /** Detector preset, a name of the manifest's spec.mtcnn_presets ('fast', 'packageCompatible'); default null: spec.mtcnn. */
  detectorPreset?: string | null;
  /** Drop faces whose detector confidence (0..1) is below this; default null: the manifest's spec.face_filter. */
  minConfidence?: number | null;
  /** Drop faces whose box's longer side is under this many pixels; default null: the manifest's spec.face_filter. */
  minBoxSize?: number | null;
  /** Grad-CAM heatmap per face; default false. */
  heatmaps?: boolean;
  /**
   * Run keypoints, beauty and Grad-CAM on the k largest faces only (crowds); the other faces keep
   * box, score and landmarks5. Integer >= 0; default null: every face. Applied after maxFaces.
   */
  perFaceLimit?: number | null;
  /**
   * Keypoints by test-time mirror averaging: the keypoint model also runs on each face's mirrored
   * crop (twice the keypoint cost) and the un-mirrored points are averaged with the direct ones;
   * default null: the manifest's spec.keypoints.mirror_average.
   */
  mirrorKeypoints?: boolean | null;
}

/** The model sets createFaceAnalyzer loads (lib/pipeline.js MODEL_SETS). */
export type ModelSetName = 'detector' | 'beauty' | 'keypoints' | 'attributes';

export interface Box { x: number; y: number; width: number; height: number; }
export type Point = [number, number];

export interface Face {
  /** Input-image pixels. */
  box: Box;
  /** Detector confidence, 0..1. */
  score: number;
  landmarks5: Record<'left_eye' | 'right_eye' | 'nose' | 'mouth_left' | 'mouth_right', Point>;
  /** Facial keypoints (68 for the shipped model), input-image pixels; absent without the keypoints model. */
  keypoints?: Point[];
  /** score: expected score 0..100; score_1to5: the same on the dataset's 1..5 scale; distribution: 101 probabilities. */
  beauty?: { score: number; score_1to5: number; distribution: number[] };
  /** Grad-CAM grid over the beauty crop (options.heatmaps); see lib/gradcam.js heatmapToCrop. */
  heatmap?: { grid: number[][]; crop_size: number; square: { x: number; y: number; side: number } };
  /**
   * Per attribute name (the manifest's models.attributes.attributes.names, e.g. CelebA's 40):
   * probability 0..1 and on (probability >= the attribute's threshold); present when the bundle
   * has an attributes model (the same names and values as Python's FacePipeline).
   */
  attributes?: Record<string, { probability: number; on: boolean }>;
}

/** Decoded pixels: RGB or RGBA bytes, row-major (e.g. readImageFile, ImageData). */
export interface PixelData { data: ArrayLike<number>; width: number; height: number; }

/** Browser sources (decoded with the browser's own decoder; Blob/File via createImageBitmap). */
export type BrowserImage = HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | HTMLVideoElement | ImageBitmap
  | ImageData | Blob;

/** What analyze takes: decoded pixels, a tf.Tensor3D [H, W, 3|4], or a browser image source. */
export type ImageInput = PixelData | tf.Tensor3D | BrowserImage;

export interface AnalyzeResult {
  faces: Face[];
  backend: string;
  /** Milliseconds per stage: decode, detect, crop, beauty, keypoints, gradcam, total (and attributes, with that model). */
  timings: Record<string, number>;
  image: { width: number; height: number };
}

export interface FaceAnalyzer {
  analyze(input: ImageInput, options?: AnalyzeOptions): Promise<AnalyzeResult>;
  dispose(): void;
  /** The TF.js backend in use and why it was chosen (lib/backend.js selectBackend). */
  backend: string;
  backendReason: string;
  /** Threads of the WASM backend's pool (1 in Node or a page that is not cross-origin isolated); null off WASM. */
  wasmThreads: number | null;
  manifest: Manifest;
  models: ModelSetName[];
  /**
   * The loaded models by set, to run other stages of the library on them instead of loading a
   * second copy (the page's camera tracker does). Owned by the analyzer: released by dispose(),
   * do not dispose them yourself. Layers models have conv, batch norm and ReLU fused
   * (lib/ops/fuse_layers.js); createGuidedExplainer(url, {models: modelSets.beauty}) takes the fusion off while it explains.
   */
  modelSets: ModelSets;
}

/** A model as loaded by lib/io.js loadModel. */
export interface LoadedSetModel {
  model: tf.LayersModel | tf.GraphModel;
  format: 'layers-model' | 'graph-model';
  entry: ManifestModel;
}

/** analyzer.modelSets: the sets of modelConfig.models (lib/pipeline.js MODEL_SETS). */
export interface ModelSets {
  detector: { pnet: LoadedSetModel; rnet: LoadedSetModel; onet: LoadedSetModel };
  beauty?: { features: LoadedSetModel; head: LoadedSetModel };
  keypoints?: { model: LoadedSetModel };
  attributes?: { model: LoadedSetModel };
}

/** One map over a face's beauty crop, row-major, 0..1 (the face's 99th percentile = 1, clipped). */
export interface GuidedMap { width: number; height: number; data: Float32Array; }

export interface GuidedFaceMaps {
  /** The beauty crop's square, input-image pixels: draw the maps over it. */
  square: { x: number; y: number; side: number };
  crop_size: number;
  /** Guided backpropagation (Springenberg et al. 2015) of the expected beauty score. */
  guided: GuidedMap;
  /** Guided backpropagation x the upsampled Grad-CAM (Selvaraju et al. 2017). */
  guidedGradcam: GuidedMap;
}

/** createGuidedExplainer's options: the manifest if loaded; models: analyzer.modelSets.beauty to share (else it loads its own copy). */
export interface GuidedExplainerOptions {
  manifest?: Manifest;
  models?: { features: LoadedSetModel; head: LoadedSetModel };
}

/** createGuidedExplainer's result (lib/guided.js). */
export interface GuidedExplainer {
  /** Maps for faces analyze() found in the same input (each needs its box). */
  explain(input: ImageInput, faces: Array<Pick<Face, 'box'>>): Promise<GuidedFaceMaps[]>;
  dispose(): void;
  manifest: Manifest;
}

/** Names of lib/accessories.js ACCESSORIES. */
export type AccessoryKind = 'sunglasses' | 'hat';

/** The 2D context calls drawAccessories makes (a CanvasRenderingContext2D or OffscreenCanvasRenderingContext2D has them; Path2D must exist). */
export interface AccessoryContext {
  save(): void;
  restore(): void;
  transform(a: number, b: number, c: number, d: number, e: number, f: number): void;
  fillStyle: unknown;
  fill(path: any): void;
}

export interface TensorSpec { name: string; shape: Array<number | null>; dtype?: string; signature_key?: string; }

export interface ManifestModel {
  path: string;
  format: 'layers-model' | 'graph-model';
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  input_size: number | null;
  backbone: string | null;
  precision: 'float32' | 'float16' | 'uint8';
  parity: { max_abs_diff: number; tolerance: number; probe: string };
  [key: string]: unknown;
}

export interface Manifest {
  spec: Record<string, unknown>;
  models: Record<string, ManifestModel>;
  synthetic: boolean;
  versions: Record<string, string>;
  created: string;
  [key: string]: unknown;
}

/** The models of this package and their input/output names, shapes and dtypes (model-specs.js). */
export type ModelSpecs = typeof MODEL_SPECS;
export type ModelName = keyof ModelSpecs & string;
type Specs<N extends ModelName, K extends 'inputs' | 'outputs'> = ModelSpecs[N][K] extends readonly (infer S)[] ? S : never;
/** The input names of model N. */
export type InputName<N extends ModelName> = Specs<N, 'inputs'> extends { name: infer T } ? T : never;
/** The output names of model N. */
export type OutputName<N extends ModelName> = Specs<N, 'outputs'> extends { name: infer T } ? T : never;

/** A tensor, or values and a shape (dtype defaults to the manifest's, else float32). */
export type TensorLike = tf.Tensor | { data: ArrayLike<number> | ArrayLike<boolean>; shape: number[]; dtype?: tf.DataType };
/** One input, an array in the manifest's input order, or an object keyed by input name. */
export type ModelInput<N extends string = string> = TensorLike | TensorLike[]
  | (N extends ModelName ? { [K in InputName<N>]: TensorLike } : Record<string, TensorLike>);

export interface LoadedModel<N extends string = string> {
  name: N;
  entry: ManifestModel;
  manifest: Manifest;
  model: tf.LayersModel | tf.GraphModel;
  /** The inputs' {name, shape, dtype?} in order (from the manifest). */
  inputs: N extends ModelName ? ModelSpecs[N]['inputs'] : TensorSpec[];
  /** True when only predictAsync can run the model (control flow). */
  async: boolean;
  /** Raw inputs (image models: RGB 0..255, NHWC float32); one tensor, or an array for several outputs; caller disposes. */
  predict(input: ModelInput<N>): tf.Tensor | tf.Tensor[];
  predictAsync(input: ModelInput<N>): Promise<tf.Tensor | tf.Tensor[]>;
  dispose(): void;
}

export interface BackendChoice { backend: string; requested: Backend; reason: string; failures: string[]; }
