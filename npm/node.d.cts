// Types of the Node entries of {{NAME}} (node.js for import, node.cjs for require). Shared types: types.d.cts.
import type { AccessoryContext, AccessoryKind, Backend, BackendChoice, AnalyzeOptions, AnalyzeResult, Face, FaceAnalyzer,
  GuidedExplainer, GuidedExplainerOptions, LoadedModel, Manifest, ModelConfig, ModelName, PixelData } from './types.cjs';

export type * from './types.cjs';
export { MODEL_SPECS } from './model-specs.cjs';

/** Folder of this package's models/manifest.json. */
export const MODELS_DIR: string;

export interface NodeFaceAnalyzer extends FaceAnalyzer {
  /** readImageFile(path) then analyze: a JPEG or PNG file, EXIF orientation applied; readImageFile's errors (err.code). */
  analyzeFile(path: string, options?: AnalyzeOptions): Promise<AnalyzeResult>;
}

/** The face pipeline; modelUrl defaults to MODELS_DIR, backend 'auto' (WASM, CPU if WASM cannot start). */
export function createFaceAnalyzer(modelConfig?: ModelConfig): Promise<NodeFaceAnalyzer>;
/** Model `name` of this package's models (or of the bundle at dirOrUrl). */
export function loadModel<N extends ModelName>(name: N, dirOrUrl?: string): Promise<LoadedModel<N>>;
/** The generic loader of lib/generic.js: load(dirOrUrl, name). */
export function load<N extends string>(dirOrUrl: string, name: N): Promise<LoadedModel<N>>;
export function readManifest(dirOrUrl?: string): Promise<Manifest>;
/** Guided backprop / guided Grad-CAM of the beauty score (lib/guided.js); modelUrl defaults to MODELS_DIR; err.code 'guided-unavailable' for a non-ReLU backbone. */
export function createGuidedExplainer(modelUrl?: string | URL, opts?: GuidedExplainerOptions): Promise<GuidedExplainer>;
/**
 * Draw sunglasses / a hat on every face from its keypoints (lib/accessories.js) onto a 2D context
 * (e.g. @napi-rs/canvas, which has Path2D), in image pixels; spec: analyzer.manifest.spec.
 * require() gives it as a promise, like every function; import (node.d.ts) calls it directly.
 */
export function drawAccessories(ctx: AccessoryContext, faces: Array<Pick<Face, 'keypoints'>>, kinds: AccessoryKind[],
  spec: Manifest['spec']): Promise<void>;
/**
 * A JPEG or PNG file decoded without native code (pngjs; libjpeg-turbo as WASM): RGBA bytes, upright.
 * Errors are one line naming the file, with err.code: 'not-image' (not PNG/JPEG), 'corrupt-image'
 * (damaged or truncated), 'image-too-large' (over 108 MP), or the system's for an unreadable file ('ENOENT', ...).
 */
export function readImageFile(path: string): Promise<{ data: Uint8Array; width: number; height: number }>;
/** decodeImage of decode.js: PNG/JPEG bytes -> upright pixels (JPEG by libjpeg-turbo as WASM: the same pixels as PIL); err.code as readImageFile's. */
export function decodeImage(bytes: Uint8Array, name?: string): Promise<PixelData>;
export function useBackend(requested: Backend, opts?: { wasmPaths?: string | Record<string, string> | null; wasmThreads?: 'auto' | number }): Promise<string>;
export function selectBackend(requested: Backend, opts?: { wasmPaths?: string | Record<string, string> | null; wasmThreads?: 'auto' | number }): Promise<BackendChoice>;
