// Types of the Node ES module entry of {{NAME}} (node.js): those of node.cjs (node.d.cts).
export * from './node.cjs';
export type * from './node.cjs';
