// Types of the browser entry of {{NAME}} (index.js). Shared types: types.d.cts.
import type { Backend, BackendChoice, FaceAnalyzer, LoadedModel, Manifest, ModelConfig, ModelName } from './types.cjs';

export type * from './types.cjs';
export { MODEL_SPECS } from './model-specs.cjs';

/** The face pipeline; modelConfig.modelUrl (the URL of the copied models/ folder) is required in a browser. */
export function createFaceAnalyzer(modelConfig: ModelConfig & { modelUrl: string | URL }): Promise<FaceAnalyzer>;
/** Model `name` of the bundle at dirOrUrl (required in a browser). */
export function loadModel<N extends ModelName>(name: N, dirOrUrl: string | URL): Promise<LoadedModel<N>>;
/** The generic loader of lib/generic.js: load(dirOrUrl, name). */
export function load<N extends string>(dirOrUrl: string, name: N): Promise<LoadedModel<N>>;
export function readManifest(dirOrUrl: string | URL): Promise<Manifest>;
/** Switch TF.js to a backend; resolves to the name in use (a named backend that cannot start throws). */
export function useBackend(requested: Backend, opts?: { wasmPaths?: string | Record<string, string> | null }): Promise<string>;
export function selectBackend(requested: Backend, opts?: { wasmPaths?: string | Record<string, string> | null }): Promise<BackendChoice>;
