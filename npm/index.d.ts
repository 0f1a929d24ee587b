// Types of the browser entry of {{NAME}} (index.js). Shared types: types.d.cts.
import type { AccessoryContext, AccessoryKind, Backend, BackendChoice, Face, FaceAnalyzer, GuidedExplainer, GuidedExplainerOptions,
  LoadedModel, Manifest, ModelConfig, ModelName } from './types.cjs';

export type * from './types.cjs';
export { MODEL_SPECS } from './model-specs.cjs';

/** The face pipeline; modelConfig.modelUrl (the URL of the copied models/ folder) is required in a browser. */
export function createFaceAnalyzer(modelConfig: ModelConfig & { modelUrl: string | URL }): Promise<FaceAnalyzer>;
/** Model `name` of the bundle at dirOrUrl (required in a browser). */
export function loadModel<N extends ModelName>(name: N, dirOrUrl: string | URL): Promise<LoadedModel<N>>;
/** The generic loader of lib/generic.js: load(dirOrUrl, name). */
export function load<N extends string>(dirOrUrl: string, name: N): Promise<LoadedModel<N>>;
export function readManifest(dirOrUrl: string | URL): Promise<Manifest>;
/** Guided backprop / guided Grad-CAM of the beauty score (lib/guided.js); modelUrl (the copied models/ folder) is required; err.code 'guided-unavailable' for a non-ReLU backbone. */
export function createGuidedExplainer(modelUrl: string | URL, opts?: GuidedExplainerOptions): Promise<GuidedExplainer>;
/** Draw sunglasses / a hat on every face from its keypoints (lib/accessories.js), in image pixels; spec: analyzer.manifest.spec. */
export function drawAccessories(ctx: AccessoryContext, faces: Array<Pick<Face, 'keypoints'>>, kinds: AccessoryKind[],
  spec: Manifest['spec']): void;
export const ACCESSORIES: readonly AccessoryKind[];
/** Switch TF.js to a backend; resolves to the name in use (a named backend that cannot start throws). */
export function useBackend(requested: Backend, opts?: { wasmPaths?: string | Record<string, string> | null; wasmThreads?: 'auto' | number }): Promise<string>;
export function selectBackend(requested: Backend, opts?: { wasmPaths?: string | Record<string, string> | null; wasmThreads?: 'auto' | number }): Promise<BackendChoice>;
