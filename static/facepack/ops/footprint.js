/**
 * Footprint corners of area sampling along one axis, shared by the area-sampled face crops
 * (ops/area_crop.js:cropAreaAxis) and R/O-Net patches (ops/area_patches.js:areaAxis), which
 * differ only in where their sample centres sit. Mirrors facepack/crop.py:footprint_corners.
 */

/**
 * Each sample's footprint [centre - foot / 2, centre + foot / 2] clamped into [0, length], as
 * (cell, fraction) of its low and high corners: cell = min(floor(t), length - 1), frac = t - cell
 * (float64, the Python twin's operations in the same order).
 * @param {Float64Array} centres sample centres (continuous pixels of the axis)
 * @param {number} foot footprint width (pixels, >= 1)
 * @param {number} length the axis's length (pixels)
 * @returns {{lowCell: Int32Array, lowFrac: Float64Array, highCell: Int32Array, highFrac: Float64Array, foot: number}}
 */
export function footprintCorners(centres, foot, length) {
  const size = centres.length;
  const lowCell = new Int32Array(size);
  const highCell = new Int32Array(size);
  const lowFrac = new Float64Array(size);
  const highFrac = new Float64Array(size);
  for (let o = 0; o < size; o++) {
    const centre = centres[o];
    const lo = Math.min(Math.max(centre - 0.5 * foot, 0), length);
    const hi = Math.min(Math.max(centre + 0.5 * foot, 0), length);
    lowCell[o] = Math.min(Math.floor(lo), length - 1);
    lowFrac[o] = lo - lowCell[o];
    highCell[o] = Math.min(Math.floor(hi), length - 1);
    highFrac[o] = hi - highCell[o];
  }
  return { lowCell, lowFrac, highCell, highFrac, foot };
}
