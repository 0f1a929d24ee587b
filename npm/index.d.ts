// Types of the package entry (index.js) and the parts of lib/ it re-exports.
import type * as tf from '@tensorflow/tfjs';

/** Folder (Node) or URL (browser) of this package's bundled models. */
export const MODELS_DIR: string;

export type Backend = 'webgl' | 'wasm' | 'cpu' | 'auto';

export interface ModelConfig {
  /** Bundle root (default: this package's models). */
  modelUrl?: string;
  /** Default 'auto': WASM then CPU in Node; WebGL, WASM, CPU in a browser. */
  backend?: Backend;
  /** Default all three. */
  models?: Array<'detector' | 'beauty' | 'keypoints'>;
  /** Where the WASM backend's .wasm files are; default next to @tensorflow/tfjs-backend-wasm. */
  wasmPaths?: string | Record<string, string> | null;
}

export interface AnalyzeOptions {
  /** Keep at most this many faces (highest score first); default null: all. */
  maxFaces?: number | null;
  /** Smallest face, input pixels; default null: the manifest's spec.mtcnn.min_face_size_px. */
  minFaceSize?: number | null;
  /** Grad-CAM heatmap per face; default false. */
  heatmaps?: boolean;
}

export interface Box { x: number; y: number; width: number; height: number; }

export interface Face {
  box: Box;
  score: number;
  landmarks5: Record<'left_eye' | 'right_eye' | 'nose' | 'mouth_left' | 'mouth_right', [number, number]>;
  keypoints?: Array<[number, number]>;
  beauty?: { score: number; distribution: number[] };
  /** Grad-CAM grid over the beauty crop (options.heatmaps); see lib/gradcam.js:heatmapToCrop. */
  heatmap?: { grid: number[][]; crop_size: number; square: { x: number; y: number; side: number } };
}

/** Decoded pixels (RGB or RGBA bytes), a tf.Tensor3D, or a browser image/canvas/video/Blob. */
export type ImageInput = tf.Tensor3D | { data: ArrayLike<number>; width: number; height: number } | unknown;

export interface FaceAnalyzer {
  analyze(input: ImageInput, options?: AnalyzeOptions): Promise<{
    faces: Face[]; backend: string; timings: Record<string, number>; image: { width: number; height: number };
  }>;
  dispose(): void;
  backend: string;
  manifest: Manifest;
  models: string[];
}

export interface ManifestModel {
  path: string;
  format: 'layers-model' | 'graph-model';
  inputs: Array<{ name: string; shape: Array<number | null> }>;
  outputs: Array<{ name: string; shape: Array<number | null> }>;
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
}

export interface LoadedModel {
  name: string;
  entry: ManifestModel;
  manifest: Manifest;
  model: tf.LayersModel | tf.GraphModel;
  /** Raw inputs (image models: RGB 0..255, NHWC float32); caller disposes the result. */
  predict(input: tf.Tensor | { data: ArrayLike<number>; shape: number[] }): tf.Tensor | tf.Tensor[];
  dispose(): void;
}

/** The face pipeline with this package's models (modelUrl defaults to MODELS_DIR). */
export function createFaceAnalyzer(modelConfig?: ModelConfig): Promise<FaceAnalyzer>;
/** Model `name` of models/manifest.json (or of the bundle at dirOrUrl). */
export function loadModel(name: string, dirOrUrl?: string): Promise<LoadedModel>;
/** The generic loader of lib/generic.js: load(dirOrUrl, name). */
export function load(dirOrUrl: string, name: string): Promise<LoadedModel>;
export function readManifest(dirOrUrl?: string): Promise<Manifest>;
/** Switch TF.js to a backend (falls back in order); resolves to the name in use. */
export function useBackend(requested: Backend, opts?: { wasmPaths?: string | Record<string, string> | null }): Promise<string>;
