// Types of the Node entries of {{NAME}} (node.js for import, node.cjs for require). Shared types: types.d.cts.
import type { Backend, BackendChoice, AnalyzeOptions, AnalyzeResult, FaceAnalyzer, LoadedModel, Manifest, ModelConfig,
  ModelName, PixelData } from './types.cjs';

export type * from './types.cjs';
export { MODEL_SPECS } from './model-specs.cjs';

/** Folder of this package's models/manifest.json. */
export const MODELS_DIR: string;

export interface NodeFaceAnalyzer extends FaceAnalyzer {
  /** readImageFile(path) then analyze: a JPEG or PNG file, EXIF orientation applied. */
  analyzeFile(path: string, options?: AnalyzeOptions): Promise<AnalyzeResult>;
}

/** The face pipeline; modelUrl defaults to MODELS_DIR, backend 'auto' (WASM, CPU if WASM cannot start). */
export function createFaceAnalyzer(modelConfig?: ModelConfig): Promise<NodeFaceAnalyzer>;
/** Model `name` of this package's models (or of the bundle at dirOrUrl). */
export function loadModel<N extends ModelName>(name: N, dirOrUrl?: string): Promise<LoadedModel<N>>;
/** The generic loader of lib/generic.js: load(dirOrUrl, name). */
export function load<N extends string>(dirOrUrl: string, name: N): Promise<LoadedModel<N>>;
export function readManifest(dirOrUrl?: string): Promise<Manifest>;
/** A JPEG or PNG file decoded without native code (pngjs; libjpeg-turbo as WASM): RGBA bytes, upright; over 108 MP refused (code image-too-large). */
export function readImageFile(path: string): Promise<{ data: Uint8Array; width: number; height: number }>;
/** decodeImage of decode.js: PNG/JPEG bytes -> upright pixels (JPEG by libjpeg-turbo as WASM: the same pixels as PIL). */
export function decodeImage(bytes: Uint8Array, name?: string): Promise<PixelData>;
export function useBackend(requested: Backend, opts?: { wasmPaths?: string | Record<string, string> | null }): Promise<string>;
export function selectBackend(requested: Backend, opts?: { wasmPaths?: string | Record<string, string> | null }): Promise<BackendChoice>;
