/* global tf */
/* Face detection in the browser: the server's face step (ml/faces.py FaceDetector.detect, which
 * wraps the `mtcnn` 1.0.0 package) re-done step by step, so that the page finds the same faces,
 * with the same boxes, as an upload would.
 *
 * Why so literal: a box a pixel off changes the crop the classifier sees, and a confidence on the
 * other side of a threshold adds or loses a face. So every step does what the Python does, in the
 * same number type:
 *  - cv2.resize INTER_AREA (uint8, OpenCV's float32 area weights or its integer-factor fast path),
 *  - tf.image.resize(method=AREA) (TensorFlow's ResizeArea kernel, float32 arithmetic; TF.js has
 *    no area resize), the size `shape * scale` truncated as TF converts it to int32,
 *  - tf.image.crop_and_resize (TensorFlow's CPU kernel, float32 arithmetic, 0 outside the image),
 *  - the box maths in float64 (JS numbers), except where the package multiplies a float32 tensor
 *    by a numpy array (the float32 product) or compares a float32 array with a Python float
 *    (numpy 2 compares in float32),
 *  - Python's round() and numpy's round() round half to even (Math.round does not),
 *  - numpy's argsort (the package orders boxes by confidence with it) is not stable, and PNet's
 *    confidences are often exactly equal (1.0), so the order of ties decides which box NMS keeps;
 *    npArgsort reproduces numpy 2's order on an x86 CPU with AVX-512 (x86-simd-sort).
 * Only the three networks run in TF.js (graph.js), so their float32 results differ from
 * TensorFlow's in the last bits; everything around them is exact. Known gaps: a server whose numpy
 * sorts without AVX-512 (AVX2 or another CPU) orders ties differently; numpy's float64 power
 * (0.709 ** k, a SIMD routine) is one last bit off the exact power used here for k = 6, which
 * changes no pyramid level's size (checked for image sides 1 to 5000).
 */

const f32 = Math.fround;

/** Python's round() / numpy's rint: halves go to the even neighbour. */
export function roundHalfEven(x) {
  const fl = Math.floor(x);
  const d = x - fl;
  if (d < 0.5) return fl;
  if (d > 0.5) return fl + 1;
  return fl % 2 === 0 ? fl : fl + 1;
}

/** cv2.resize(src, (dw, dh), interpolation=cv2.INTER_AREA) for an RGB uint8 image, shrinking only
 * (the detector never enlarges). */
export function cvResizeArea(src, sw, sh, dw, dh) {
  const cn = 3;
  const dst = new Uint8Array(dw * dh * cn);
  const scaleX = 1 / (dw / sw);
  const scaleY = 1 / (dh / sh);
  const iscaleX = roundHalfEven(scaleX);
  const iscaleY = roundHalfEven(scaleY);
  if (Math.abs(scaleX - iscaleX) < Number.EPSILON && Math.abs(scaleY - iscaleY) < Number.EPSILON) {
    // OpenCV's integer-factor path: 2x2 rounds (sum + 2) >> 2, other factors round sum * (1/area)
    // in float32, halves to even.
    const rowStride = sw * cn;
    if (iscaleX === 2 && iscaleY === 2) {
      for (let dy = 0; dy < dh; dy++) {
        const s0 = 2 * dy * rowStride;
        const s1 = s0 + rowStride;
        const d0 = dy * dw * cn;
        for (let dx = 0; dx < dw * cn; dx += 3) {
          const i = dx * 2;
          for (let c = 0; c < 3; c++) {
            dst[d0 + dx + c] = (src[s0 + i + c] + src[s0 + i + 3 + c] + src[s1 + i + c]
              + src[s1 + i + 3 + c] + 2) >> 2;
          }
        }
      }
      return dst;
    }
    const area = iscaleX * iscaleY;
    const scale = f32(1 / area);
    for (let dy = 0; dy < dh; dy++) {
      for (let dx = 0; dx < dw; dx++) {
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          for (let sy = 0; sy < iscaleY; sy++) {
            const row = (dy * iscaleY + sy) * rowStride;
            for (let sx = 0; sx < iscaleX; sx++) sum += src[row + (dx * iscaleX + sx) * cn + c];
          }
          dst[(dy * dw + dx) * cn + c] = Math.min(255, roundHalfEven(f32(sum * scale)));
        }
      }
    }
    return dst;
  }
  // OpenCV's general area path: per-axis tables of (dest, source, float32 weight), rows summed
  // into a float32 buffer in table order.
  const xtab = areaTab(sw, dw, scaleX);
  const ytab = areaTab(sh, dh, scaleY);
  const width = dw * cn;
  const buf = new Float32Array(width);
  const sum = new Float32Array(width);
  const nx = xtab.length;
  const xs = Int32Array.from(xtab, (t) => t.s * cn);
  const xd = Int32Array.from(xtab, (t) => t.d * cn);
  const xa = Float32Array.from(xtab, (t) => t.alpha);
  let prevDy = ytab.length ? ytab[0].d : 0;
  for (let j = 0; j < ytab.length; j++) {
    const beta = ytab[j].alpha;
    const dy = ytab[j].d;
    const srow = ytab[j].s * sw * cn;
    buf.fill(0);
    for (let k = 0; k < nx; k++) {
      const sxn = srow + xs[k];
      const dxn = xd[k];
      const alpha = xa[k];
      buf[dxn] = f32(buf[dxn] + f32(src[sxn] * alpha));
      buf[dxn + 1] = f32(buf[dxn + 1] + f32(src[sxn + 1] * alpha));
      buf[dxn + 2] = f32(buf[dxn + 2] + f32(src[sxn + 2] * alpha));
    }
    if (dy !== prevDy) {
      const d0 = prevDy * width;
      for (let dx = 0; dx < width; dx++) {
        dst[d0 + dx] = saturateU8(sum[dx]);
        sum[dx] = f32(beta * buf[dx]);
      }
      prevDy = dy;
    } else {
      for (let dx = 0; dx < width; dx++) sum[dx] = f32(sum[dx] + f32(beta * buf[dx]));
    }
  }
  const d0 = prevDy * width;
  for (let dx = 0; dx < width; dx++) dst[d0 + dx] = saturateU8(sum[dx]);
  return dst;
}

function saturateU8(v) {
  const r = roundHalfEven(v);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

// OpenCV's computeResizeAreaTab (double maths, float32 weights).
function areaTab(ssize, dsize, scale) {
  const tab = [];
  for (let dx = 0; dx < dsize; dx++) {
    const fsx1 = dx * scale;
    const fsx2 = fsx1 + scale;
    const cellWidth = Math.min(scale, ssize - fsx1);
    let sx1 = Math.ceil(fsx1);
    let sx2 = Math.floor(fsx2);
    sx2 = Math.min(sx2, ssize - 1);
    sx1 = Math.min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) tab.push({ d: dx, s: sx1 - 1, alpha: f32((sx1 - fsx1) / cellWidth) });
    for (let sx = sx1; sx < sx2; sx++) tab.push({ d: dx, s: sx, alpha: f32(1.0 / cellWidth) });
    if (fsx2 - sx2 > 1e-3) {
      tab.push({ d: dx, s: sx2, alpha: f32(Math.min(Math.min(fsx2 - sx2, 1.0), cellWidth) / cellWidth) });
    }
  }
  return tab;
}

/** cv2.copyMakeBorder(src, pad, pad, pad, pad, cv2.BORDER_REPLICATE) for an RGB uint8 image. */
export function padReplicate(src, w, h, pad) {
  const pw = w + 2 * pad;
  const ph = h + 2 * pad;
  const dst = new Uint8Array(pw * ph * 3);
  for (let y = 0; y < ph; y++) {
    const sy = Math.min(h - 1, Math.max(0, y - pad));
    for (let x = 0; x < pw; x++) {
      const sx = Math.min(w - 1, Math.max(0, x - pad));
      const s = (sy * w + sx) * 3;
      const d = (y * pw + x) * 3;
      dst[d] = src[s];
      dst[d + 1] = src[s + 1];
      dst[d + 2] = src[s + 2];
    }
  }
  return dst;
}

/** The package's normalisation, (x - 127.5) / 128: exact in float32 for every uint8 value. */
export function normalise(rgb) {
  const out = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) out[i] = (rgb[i] - 127.5) / 128;
  return out;
}

/** TensorFlow's ResizeArea kernel (align_corners=False) on an HxWx3 float32 image. */
export function tfResizeArea(src, inH, inW, outH, outW) {
  const hs = f32(inH / outH);
  const ws = f32(inW / outW);
  const scale = f32(1 / f32(hs * ws));
  const bound = (v, limit) => Math.min(limit - 1, Math.max(0, v));
  const partScale = (v, a, b, full) => (v < a ? (v + 1 > b ? full : f32(v + 1 - a))
    : (v + 1 > b ? f32(b - v) : 1));
  const xStart = new Int32Array(outW);
  const xEnd = new Int32Array(outW);
  const xStartScale = new Float32Array(outW);
  const xEndScale = new Float32Array(outW);
  for (let x = 0; x < outW; x++) {
    const inX = f32(x * ws);
    const inX1 = f32((x + 1) * ws);
    const s = Math.floor(inX);
    xStart[x] = s;
    xStartScale[x] = partScale(s, inX, inX1, ws);
    const e = Math.ceil(inX1);
    xEnd[x] = e;
    xEndScale[x] = partScale(e - 1, inX, inX1, ws);
  }
  const out = new Float32Array(outH * outW * 3);
  const rowLen = inW * 3;
  const yRows = [];
  const yScales = [];
  let o = 0;
  for (let y = 0; y < outH; y++) {
    const inY = f32(y * hs);
    const inY1 = f32((y + 1) * hs);
    const yStart = Math.floor(inY);
    const yEnd = Math.ceil(inY1);
    yRows.length = 0;
    yScales.length = 0;
    for (let i = yStart; i < yEnd; i++) {
      yScales.push(partScale(i, inY, inY1, hs));
      yRows.push(bound(i, inH) * rowLen);
    }
    for (let x = 0; x < outW; x++) {
      const start = xStart[x];
      const end = xEnd[x];
      const so = bound(start, inW) * 3;
      const eo = bound(end - 1, inW) * 3;
      const ss = xStartScale[x];
      const es = xEndScale[x];
      let sum0 = 0;
      let sum1 = 0;
      let sum2 = 0;
      for (let i = 0; i < yRows.length; i++) {
        const r = yRows[i];
        let s0 = f32(src[r + so] * ss);
        let s1 = f32(src[r + so + 1] * ss);
        let s2 = f32(src[r + so + 2] * ss);
        if (start + 1 !== end) {
          for (let xx = start + 1; xx < end - 1; xx++) {
            const p = r + bound(xx, inW) * 3;
            s0 = f32(s0 + src[p]);
            s1 = f32(s1 + src[p + 1]);
            s2 = f32(s2 + src[p + 2]);
          }
          s0 = f32(s0 + f32(src[r + eo] * es));
          s1 = f32(s1 + f32(src[r + eo + 1] * es));
          s2 = f32(s2 + f32(src[r + eo + 2] * es));
        }
        const ys = yScales[i];
        sum0 = f32(sum0 + f32(s0 * ys));
        sum1 = f32(sum1 + f32(s1 * ys));
        sum2 = f32(sum2 + f32(s2 * ys));
      }
      out[o] = sum0 * scale;
      out[o + 1] = sum1 * scale;
      out[o + 2] = sum2 * scale;
      o += 3;
    }
  }
  return out;
}

/** TensorFlow's CropAndResize CPU kernel (bilinear, extrapolation 0) on one HxWx3 float32 image;
 * boxes in pixels [x1, y1, x2, y2], normalised by H and W as the package does. Returns null where
 * TensorFlow raises InvalidArgumentError (a box that is not finite). */
export function cropAndResize(img, H, W, boxes, size) {
  const out = new Float32Array(boxes.length * size * size * 3);
  const n = size - 1;
  let o = 0;
  for (const b of boxes) {
    const y1 = f32(b[1] / H);
    const x1 = f32(b[0] / W);
    const y2 = f32(b[3] / H);
    const x2 = f32(b[2] / W);
    if (![y1, x1, y2, x2].every(Number.isFinite)) return null;
    const hScale = f32(f32(f32(y2 - y1) * (H - 1)) / n);
    const wScale = f32(f32(f32(x2 - x1) * (W - 1)) / n);
    const y0 = f32(y1 * (H - 1));
    const x0 = f32(x1 * (W - 1));
    for (let y = 0; y < size; y++) {
      const inY = f32(y0 + f32(y * hScale));
      if (inY < 0 || inY > H - 1) {
        o += size * 3; // already 0
        continue;
      }
      const top = Math.floor(inY);
      const bottom = Math.ceil(inY);
      const yLerp = f32(inY - top);
      for (let x = 0; x < size; x++) {
        const inX = f32(x0 + f32(x * wScale));
        if (inX < 0 || inX > W - 1) {
          o += 3;
          continue;
        }
        const left = Math.floor(inX);
        const right = Math.ceil(inX);
        const xLerp = f32(inX - left);
        const tl = (top * W + left) * 3;
        const tr = (top * W + right) * 3;
        const bl = (bottom * W + left) * 3;
        const br = (bottom * W + right) * 3;
        for (let d = 0; d < 3; d++) {
          const t = f32(img[tl + d] + f32(f32(img[tr + d] - img[tl + d]) * xLerp));
          const bt = f32(img[bl + d] + f32(f32(img[br + d] - img[bl + d]) * xLerp));
          out[o++] = f32(t + f32(f32(bt - t) * yLerp));
        }
      }
    }
  }
  return out;
}

/** mtcnn.utils.images.build_scale_pyramid (min_size is always its default, 12: the stage does not
 * pass its own). */
export function buildScalePyramid(width, height, minFaceSize, scaleFactor, minSize = 12) {
  const minDim = Math.min(width, height);
  const count = roundHalfEven(-((Math.log(minDim / minSize) / Math.log(scaleFactor)) + 1));
  const m = minSize / minFaceSize;
  const scales = [];
  for (let k = 0; k < count; k++) scales.push(m * powExact(scaleFactor, k));
  return scales;
}

// numpy's float64 power goes to the C library's pow(), correctly rounded for these arguments;
// browsers' Math.pow are not all so, so the power is taken exactly (BigInt) and rounded once.
function powExact(base, k) {
  if (k === 0) return 1;
  const [mant, exp] = decompose(base);
  let num = 1n;
  for (let i = 0; i < k; i++) num *= mant;
  return roundBigToDouble(num, exp * k);
}

function decompose(x) {
  // x = mant * 2^exp exactly, mant an odd-or-53-bit integer (x > 0, normal).
  let exp = 0;
  let m = x;
  while (!Number.isInteger(m)) {
    m *= 2;
    exp -= 1;
  }
  return [BigInt(m), exp];
}

function roundBigToDouble(num, exp) {
  // num * 2^exp rounded to the nearest double, ties to even (num > 0).
  const bits = num.toString(2).length;
  const shift = bits - 53;
  if (shift <= 0) return Number(num) * 2 ** exp;
  let q = num >> BigInt(shift);
  const rem = num - (q << BigInt(shift));
  const half = 1n << BigInt(shift - 1);
  if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
  return Number(q) * 2 ** (exp + shift);
}

// np.argsort(scores)[::-1]: the package orders boxes by confidence this way, and equal confidences
// are common (PNet's softmax saturates at exactly 1.0 in float32), so which of two tied boxes comes
// first decides which one NMS keeps. numpy's argsort is not stable: on an AVX-512 CPU it is
// x86-simd-sort's avx512_argsort (quicksort partitions, bitonic networks below 257 elements), whose
// order of ties is reproduced here step by step.
function sortByScoreDesc(boxes) {
  const order = npArgsort(boxes.map((b) => b[4]));
  const out = new Array(boxes.length);
  for (let i = 0; i < order.length; i++) out[order.length - 1 - i] = boxes[order[i]];
  return out;
}

const LANES = 8;
const SWAP_PAIRS = [1, 0, 3, 2, 5, 4, 7, 6]; // shuffle<SHUFFLE_MASK(1, 1, 1, 1)>
const NET1 = [3, 2, 1, 0, 7, 6, 5, 4];
const REVERSE = [7, 6, 5, 4, 3, 2, 1, 0]; // NETWORK_64BIT_2
const NET3 = [2, 3, 0, 1, 6, 7, 4, 5];
const NET4 = [4, 5, 6, 7, 0, 1, 2, 3];

/** np.argsort(values) (float64, no NaN) as numpy runs it on an AVX-512 CPU. */
export function npArgsort(values) {
  const n = values.length;
  const arg = new Array(n);
  for (let i = 0; i < n; i++) arg[i] = i;
  if (n < 2) return arg;
  let sorted = true; // its early exit: an already sorted array keeps the identity order
  for (let i = 1; i < n && sorted; i++) sorted = !(values[i] < values[i - 1]);
  if (!sorted) argsortRange(values, arg, 0, n - 1, 2 * Math.trunc(Math.log2(n)));
  return arg;
}

function argsortRange(arr, arg, left, right, maxIters) {
  if (maxIters <= 0) {
    // x86-simd-sort gives up on quicksort here (a subrange whose sampled pivot keeps being its
    // smallest value) and calls std::sort (libstdc++'s introsort).
    stdSort(arg, left, right + 1, (a, b) => arr[a] < arr[b]);
    return;
  }
  if (right + 1 - left <= 256) {
    argsortNetwork(arr, arg, left, right + 1 - left);
    return;
  }
  const size = Math.trunc((right - left) / 8);
  const sample = [];
  for (let k = 1; k <= 8; k++) sample.push(arr[arg[left + k * size]]);
  sample.sort((a, b) => a - b);
  const pivot = sample[4];
  const [pivotIndex, smallest, biggest] = partitionUnrolled(arr, arg, left, right + 1, pivot);
  if (pivot !== smallest) argsortRange(arr, arg, left, pivotIndex - 1, maxIters - 1);
  if (pivot !== biggest) argsortRange(arr, arg, pivotIndex, right, maxIters - 1);
}

// libstdc++'s std::sort on arg[first, last): introsort (median of three, unguarded partition,
// heapsort past 2*log2(n) levels), then insertion sort; ties land where its swaps put them.
function stdSort(v, first, last, less) {
  if (first === last) return;
  const swap = (i, j) => {
    const t = v[i];
    v[i] = v[j];
    v[j] = t;
  };
  const adjustHeap = (base, hole, len, value) => {
    const top = hole;
    let child = hole;
    while (child < Math.trunc((len - 1) / 2)) {
      child = 2 * (child + 1);
      if (less(v[base + child], v[base + child - 1])) child--;
      v[base + hole] = v[base + child];
      hole = child;
    }
    if ((len & 1) === 0 && child === Math.trunc((len - 2) / 2)) {
      child = 2 * (child + 1);
      v[base + hole] = v[base + child - 1];
      hole = child - 1;
    }
    let parent = Math.trunc((hole - 1) / 2);
    while (hole > top && less(v[base + parent], value)) {
      v[base + hole] = v[base + parent];
      hole = parent;
      parent = Math.trunc((hole - 1) / 2);
    }
    v[base + hole] = value;
  };
  const heapSort = (f, l) => {
    const len = l - f;
    if (len >= 2) {
      for (let parent = Math.trunc((len - 2) / 2); ; parent--) {
        adjustHeap(f, parent, len, v[f + parent]);
        if (parent === 0) break;
      }
    }
    while (l - f > 1) {
      --l;
      const value = v[l];
      v[l] = v[f];
      adjustHeap(f, 0, l - f, value);
    }
  };
  const loop = (f, l, depth) => {
    while (l - f > 16) {
      if (depth === 0) {
        heapSort(f, l);
        return;
      }
      --depth;
      const mid = f + Math.trunc((l - f) / 2);
      const a = f + 1;
      const c = l - 1;
      if (less(v[a], v[mid])) {
        if (less(v[mid], v[c])) swap(f, mid);
        else if (less(v[a], v[c])) swap(f, c);
        else swap(f, a);
      } else if (less(v[a], v[c])) swap(f, a);
      else if (less(v[mid], v[c])) swap(f, c);
      else swap(f, mid);
      let lo = f + 1;
      let hi = l;
      for (;;) {
        while (less(v[lo], v[f])) ++lo;
        --hi;
        while (less(v[f], v[hi])) --hi;
        if (!(lo < hi)) break;
        swap(lo, hi);
        ++lo;
      }
      loop(lo, l, depth);
      l = lo;
    }
  };
  const linearInsert = (i) => {
    const value = v[i];
    let j = i - 1;
    while (less(value, v[j])) {
      v[j + 1] = v[j];
      j--;
    }
    v[j + 1] = value;
  };
  const insertion = (f, l) => {
    for (let i = f + 1; i < l; i++) {
      if (less(v[i], v[f])) {
        const value = v[i];
        for (let j = i; j > f; j--) v[j] = v[j - 1];
        v[f] = value;
      } else {
        linearInsert(i);
      }
    }
  };
  loop(first, last, 2 * Math.floor(Math.log2(last - first)));
  if (last - first > 16) {
    insertion(first, first + 16);
    for (let i = first + 16; i < last; i++) linearInsert(i);
  } else {
    insertion(first, last);
  }
}

// partition_avx512_unrolled<..., 4>: elements >= pivot go right, each vector compress-stored in
// lane order.
function partitionUnrolled(arr, arg, left, right, pivot) {
  const unroll = 4;
  let smallest = Infinity;
  let biggest = -Infinity;
  for (let i = (right - left) % (unroll * LANES); i > 0; --i) {
    const v = arr[arg[left]];
    smallest = Math.min(smallest, v);
    biggest = Math.max(biggest, v);
    if (!(v < pivot)) {
      --right;
      const t = arg[left];
      arg[left] = arg[right];
      arg[right] = t;
    } else {
      ++left;
    }
  }
  if (left === right) return [left, smallest, biggest];
  const load = (at) => arg.slice(at, at + LANES);
  const argLeft = [];
  const argRight = [];
  for (let ii = 0; ii < unroll; ii++) {
    argLeft.push(load(left + LANES * ii));
    argRight.push(load(right - LANES * (unroll - ii)));
  }
  let rStore = right - LANES;
  let lStore = left;
  left += unroll * LANES;
  right -= unroll * LANES;
  const partitionVec = (vecArgs) => {
    const lo = [];
    const hi = [];
    for (const a of vecArgs) {
      const v = arr[a];
      smallest = Math.min(smallest, v);
      biggest = Math.max(biggest, v);
      if (v >= pivot) hi.push(a);
      else lo.push(a);
    }
    for (let k = 0; k < lo.length; k++) arg[lStore + k] = lo[k];
    const at = rStore + LANES - hi.length;
    for (let k = 0; k < hi.length; k++) arg[at + k] = hi[k];
    lStore += LANES - hi.length;
    rStore -= hi.length;
  };
  while (right - left !== 0) {
    const vecs = [];
    if ((rStore + LANES) - right < left - lStore) {
      right -= unroll * LANES;
      for (let ii = 0; ii < unroll; ii++) vecs.push(load(right + ii * LANES));
    } else {
      for (let ii = 0; ii < unroll; ii++) vecs.push(load(left + ii * LANES));
      left += unroll * LANES;
    }
    vecs.forEach(partitionVec);
  }
  argLeft.forEach(partitionVec);
  argRight.forEach(partitionVec);
  return [lStore, smallest, biggest];
}

// argsort_n<zmm_vector<double>, 256>: bitonic networks on 8-lane (key, index) vectors; a lane
// keeps its own index whenever its key is unchanged, so ties never swap within one step.
function argsortNetwork(arr, arg, off, n) {
  let numVecs = 32;
  while (numVecs > 1 && n * 2 <= numVecs * LANES) numVecs /= 2;
  const keys = [];
  const idx = [];
  for (let i = 0; i < numVecs; i++) {
    const k = new Array(LANES);
    const x = new Array(LANES);
    const count = i < (numVecs >> 1) ? LANES : Math.min(Math.max(0, n - i * LANES), LANES);
    for (let l = 0; l < LANES; l++) {
      if (l < count) {
        x[l] = arg[off + i * LANES + l];
        k[l] = arr[x[l]];
      } else {
        x[l] = -1;
        k[l] = Infinity;
      }
    }
    keys.push(k);
    idx.push(x);
  }
  for (let i = 0; i < numVecs; i++) sortVector(keys, idx, i);
  for (let per = 2; per <= numVecs; per *= 2) {
    for (let g = 0; g < numVecs / per; g++) mergeVectors(keys, idx, g * per, per);
  }
  for (let i = 0; i < numVecs; i++) {
    const count = i < (numVecs >> 1) ? LANES : Math.min(Math.max(0, n - i * LANES), LANES);
    for (let l = 0; l < count; l++) arg[off + i * LANES + l] = idx[i][l];
  }
}

function cmpMerge(keys, idx, v, perm, mask) {
  const k = keys[v];
  const x = idx[v];
  const nk = new Array(LANES);
  const nx = new Array(LANES);
  for (let l = 0; l < LANES; l++) {
    const a = k[l];
    const b = k[perm[l]];
    const t = (mask >> l) & 1 ? (a > b ? a : b) : (a < b ? a : b);
    nk[l] = t;
    nx[l] = t === a ? x[l] : x[perm[l]];
  }
  keys[v] = nk;
  idx[v] = nx;
}

function sortVector(keys, idx, v) {
  cmpMerge(keys, idx, v, SWAP_PAIRS, 0xaa);
  cmpMerge(keys, idx, v, NET1, 0xcc);
  cmpMerge(keys, idx, v, SWAP_PAIRS, 0xaa);
  cmpMerge(keys, idx, v, REVERSE, 0xf0);
  cmpMerge(keys, idx, v, NET3, 0xcc);
  cmpMerge(keys, idx, v, SWAP_PAIRS, 0xaa);
}

function coex(keys, idx, a, b) {
  const ka = keys[a];
  const kb = keys[b];
  const xa = idx[a];
  const xb = idx[b];
  for (let l = 0; l < LANES; l++) {
    const lo = kb[l] < ka[l] ? kb[l] : ka[l];
    const hi = kb[l] > ka[l] ? kb[l] : ka[l];
    if (lo !== ka[l]) {
      const t = xa[l];
      xa[l] = xb[l];
      xb[l] = t;
    }
    ka[l] = lo;
    kb[l] = hi;
  }
}

function mergeVectors(keys, idx, start, count) {
  for (let i = 0; i < count / 2; i++) {
    const j = start + count - i - 1;
    keys[j].reverse();
    idx[j].reverse();
    coex(keys, idx, start + i, j);
    keys[j].reverse();
    idx[j].reverse();
  }
  for (let num = count / 2; num >= 2; num /= 2) {
    for (let j = 0; j < count; j += num) {
      for (let i = 0; i < num / 2; i++) coex(keys, idx, start + i + j, start + i + j + num / 2);
    }
  }
  for (let i = start; i < start + count; i++) {
    cmpMerge(keys, idx, i, NET4, 0xf0);
    cmpMerge(keys, idx, i, NET3, 0xcc);
    cmpMerge(keys, idx, i, SWAP_PAIRS, 0xaa);
  }
}

/** mtcnn.utils.bboxes.smart_nms_from_bboxes for one image: a box goes when any box before it (kept
 * or not) overlaps it by more than the threshold. Boxes are [x1, y1, x2, y2, score]. */
export function nms(boxes, threshold, method, initialSort) {
  const list = initialSort ? sortByScoreDesc(boxes) : boxes;
  const n = list.length;
  const area = list.map((b) => (b[2] - b[0]) * (b[3] - b[1]));
  const kept = [];
  for (let j = 0; j < n; j++) {
    const bj = list[j];
    let suppressed = false;
    for (let i = 0; i < j && !suppressed; i++) {
      const bi = list[i];
      const ih = Math.max(0, Math.min(bi[2], bj[2]) - Math.max(bi[0], bj[0]));
      const iw = Math.max(0, Math.min(bi[3], bj[3]) - Math.max(bi[1], bj[1]));
      const inter = ih * iw;
      const ratio = method === 'min'
        ? inter / Math.min(area[i], area[j])
        : inter / (area[i] + area[j] - inter);
      if (ratio > threshold) suppressed = true;
    }
    if (!suppressed) kept.push(bj);
  }
  return kept;
}

/** mtcnn.utils.bboxes.resize_to_square. */
export function resizeToSquare(boxes) {
  return boxes.map((b) => {
    const h = b[3] - b[1];
    const w = b[2] - b[0];
    const largest = Math.max(w, h);
    const x1 = b[0] + w * 0.5 - largest * 0.5;
    const y1 = b[1] + h * 0.5 - largest * 0.5;
    return [x1, y1, x1 + largest, y1 + largest, b[4]];
  });
}

/** generate_bounding_box + upscale_bboxes for one pyramid level (PNet outputs as flat arrays). */
export function pnetBoxes(reg, cls, outH, outW, threshold, scale) {
  const thr = f32(threshold); // float32 array vs Python float: numpy 2 compares in float32
  const found = [];
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const p = y * outW + x;
      const conf = cls[p * 2 + 1];
      if (!(conf > thr)) continue;
      const r = p * 4;
      found.push([
        2 * x + 1 + reg[r] * 11,
        2 * y + 1 + reg[r + 1] * 11,
        2 * x + 12 + reg[r + 2] * 11,
        2 * y + 12 + reg[r + 3] * 11,
        conf,
      ]);
    }
  }
  return sortByScoreDesc(found).map((b) => [b[0] / scale, b[1] / scale, b[2] / scale,
    b[3] / scale, b[4]]);
}

// replace_confidence + adjust_bboxes (offset * size is a float32 tensor product) + pick_matches.
function refine(boxes, reg, cls, threshold) {
  const out = [];
  for (let i = 0; i < boxes.length; i++) {
    const b = boxes[i];
    const conf = cls[i * 2 + 1];
    const w = f32(b[2] - b[0] + 1);
    const h = f32(b[3] - b[1] + 1);
    const r = i * 4;
    const nb = [
      b[0] + f32(reg[r] * w),
      b[1] + f32(reg[r + 1] * h),
      b[2] + f32(reg[r + 2] * w),
      b[3] + f32(reg[r + 3] * h),
      conf,
    ];
    if (conf > threshold) out.push(nb);
  }
  return out;
}

class NoFaces extends Error {}

export class FaceDetector {
  constructor({ pnet, rnet, onet, faces }) {
    this.pnet = pnet;
    this.rnet = rnet;
    this.onet = onet;
    this.faces = faces;
  }

  /** Faces in the image's pixels, largest first: [{box: [x, y, w, h], confidence}]. */
  async detect({ rgb, width: w, height: h }) {
    const c = this.faces;
    if (Math.min(h, w) < c.min_face_px) return [];
    const want = Math.max(c.min_face_px, c.min_face_fraction * Math.min(h, w));
    const scale = Math.min(1.0, c.detect_max_side / Math.max(h, w), c.mtcnn_min_face / want);
    let small = rgb;
    let sw = w;
    let sh = h;
    if (scale < 1.0) {
      sw = Math.max(1, roundHalfEven(w * scale));
      sh = Math.max(1, roundHalfEven(h * scale));
      small = cvResizeArea(rgb, w, h, sw, sh);
    }
    const pad = roundHalfEven(c.pad_fraction * Math.max(sh, sw));
    const padded = padReplicate(small, sw, sh, pad);
    const pw = sw + 2 * pad;
    const ph = sh + 2 * pad;
    let found;
    try {
      found = await this.mtcnn(normalise(padded), pw, ph);
    } catch (err) {
      if (err instanceof NoFaces) return [];
      throw err;
    }
    const faces = [];
    for (const f of found) {
      const conf = f.confidence;
      if (conf < c.min_confidence) continue;
      const [bx, by, bw, bh] = f.box;
      const x0 = Math.max(0.0, (bx - pad) / scale);
      const y0 = Math.max(0.0, (by - pad) / scale);
      const x1 = Math.min(w, (bx - pad + bw) / scale);
      const y1 = Math.min(h, (by - pad + bh) / scale);
      if (x1 - x0 < c.min_face_px || y1 - y0 < c.min_face_px) continue;
      faces.push({
        box: [roundHalfEven(x0), roundHalfEven(y0), roundHalfEven(x1 - x0), roundHalfEven(y1 - y0)],
        confidence: conf,
      });
    }
    faces.sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3]); // stable, like list.sort
    return faces.slice(0, c.max_faces);
  }

  /** MTCNN.detect_faces(image, min_face_size=mtcnn_min_face, threshold_onet=min_confidence) on a
   * normalised HxWx3 image: [{box: [x, y, w, h] (ints), confidence}], most confident first. */
  async mtcnn(img, W, H) {
    const c = this.faces;
    const m = c.mtcnn;
    // Stage PNet: the pyramid, each level resized from the full image.
    const scales = buildScalePyramid(W, H, c.mtcnn_min_face, m.scale_factor);
    let perScale = [];
    for (const s of scales) {
      const lh = Math.trunc(H * s);
      const lw = Math.trunc(W * s);
      // TF raises InvalidArgumentError for an empty resize or a level too small for PNet's
      // convolutions; the package then answers "no faces".
      if (lh < 11 || lw < 11) throw new NoFaces();
      const level = tfResizeArea(img, H, W, lh, lw);
      const [reg, cls, oh, ow] = await runNet(this.pnet, level, [1, lh, lw, 3]);
      const boxes = pnetBoxes(reg, cls, oh, ow, m.threshold_pnet, s);
      perScale = perScale.concat(nms(boxes, m.nms_pnet1, 'union', false));
    }
    let boxes = resizeToSquare(nms(perScale, m.nms_pnet2, 'union', true));
    if (!boxes.length) return [];
    // Stage RNet.
    let patches = cropAndResize(img, H, W, boxes, 24);
    if (!patches) throw new NoFaces();
    let [reg, cls] = await runNet(this.rnet, patches, [boxes.length, 24, 24, 3]);
    boxes = refine(boxes, reg, cls, m.threshold_rnet);
    boxes = resizeToSquare(nms(boxes, m.nms_rnet, 'union', true));
    if (!boxes.length) return [];
    // Stage ONet.
    patches = cropAndResize(img, H, W, boxes, 48);
    if (!patches) throw new NoFaces();
    [reg, cls] = await runNet(this.onet, patches, [boxes.length, 48, 48, 3], true);
    boxes = refine(boxes, reg, cls, c.min_confidence);
    boxes = nms(boxes, m.nms_onet, 'min', true);
    // limit_bboxes (fit_to_image) and to_json (xywh, numpy round).
    return boxes.map((b) => {
      const x1 = Math.min(Math.max(b[0], 0), W - 1);
      const y1 = Math.min(Math.max(b[1], 0), H - 1);
      const x2 = Math.min(Math.max(b[2], 0), W - 1);
      const y2 = Math.min(Math.max(b[3], 0), H - 1);
      return {
        box: [roundHalfEven(x1), roundHalfEven(y1), roundHalfEven(x2 - x1), roundHalfEven(y2 - y1)],
        confidence: b[4],
      };
    });
  }
}

// Runs a network on one float32 batch; returns [bbox_reg, bbox_class] as flat arrays (ONet's
// landmarks are not needed) and, for PNet, its output height and width.
async function runNet(net, data, shape, hasLandmarks = false) {
  const outs = tf.tidy(() => {
    const x = tf.tensor4d(data, shape);
    const res = net.predict(x);
    return Array.isArray(res) ? res : [res];
  });
  try {
    const reg = outs[0];
    const cls = outs[hasLandmarks ? 2 : 1];
    const [regData, clsData] = await Promise.all([reg.data(), cls.data()]);
    const oh = reg.shape.length === 4 ? reg.shape[1] : 0;
    const ow = reg.shape.length === 4 ? reg.shape[2] : 0;
    return [regData, clsData, oh, ow];
  } finally {
    outs.forEach((t) => t.dispose());
  }
}
