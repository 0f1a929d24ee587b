// Types of the Node ES module entry of {{NAME}} (node.js): those of node.cjs (node.d.cts).
import type { AccessoryContext, AccessoryKind, Face, Manifest } from './types.cjs';

export * from './node.cjs';
export type * from './node.cjs';
/** As node.cjs's, called directly (no promise) through import. */
export function drawAccessories(ctx: AccessoryContext, faces: Array<Pick<Face, 'keypoints'>>, kinds: AccessoryKind[],
  spec: Manifest['spec']): void;
export const ACCESSORIES: readonly AccessoryKind[];
