// Pixel-exact copies of the server's image preprocessing (ml/preprocess.py fit, ml/faces.py
// crop_box_for) for RGB uint8 images held as {rgb: Uint8Array (H*W*3), width, height}.
//
// The model looks at neighbour differences between single pixels, so "close" resizing is not
// good enough: resizeLanczos reproduces Pillow 13's fixed-point Lanczos (src/libImaging/
// Resample.c) bit for bit, including its two passes (each only when that dimension changes, in
// Pillow 13's order), the rounding of every filter window's bounds and the 8-bit clipping
// between the passes.

// Pillow keeps 22 fraction bits: 8 bits of result, 2 spare for the filter's negative lobes.
const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);
const LANCZOS_SUPPORT = 3.0;

// Python's round() on a float: halves go to the even neighbour (JS Math.round sends them up).
export function pyRound(x) {
  const f = Math.floor(x);
  const diff = x - f; // exact for doubles
  let r;
  if (diff < 0.5) {
    r = f;
  } else if (diff > 0.5) {
    r = f + 1;
  } else {
    r = f % 2 === 0 ? f : f + 1;
  }
  return r + 0; // no -0
}

// Python's // for the integer offsets of the centre square.
function floorDiv(a, b) {
  return Math.floor(a / b);
}

function sinc(x) {
  if (x === 0.0) {
    return 1.0;
  }
  const y = x * Math.PI;
  return Math.sin(y) / y;
}

function lanczos(x) {
  if (-3.0 <= x && x < 3.0) {
    return sinc(x) * sinc(x / 3);
  }
  return 0.0;
}

// The filter window of every output pixel along one axis: first input index, count, and the
// fixed-point weights (ksize per output), as Pillow's precompute_coeffs + normalize_coeffs_8bpc.
function coefficients(inSize, outSize) {
  const scale = inSize / outSize; // box (0, inSize): float32-exact for any image size we take
  const filterscale = scale < 1.0 ? 1.0 : scale;
  const support = LANCZOS_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) {
      xmin = 0;
    }
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) {
      xmax = inSize;
    }
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const v = lanczos((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0.0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

// Pillow's clip8: the top bits of the fixed-point sum, clamped to 0..255.
function clip8(ss) {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function horizontal(src, width, rowFirst, rows, outW) {
  const { ksize, bounds, kk } = coefficients(width, outW);
  const out = new Uint8Array(outW * rows * 3);
  for (let yy = 0; yy < rows; yy++) {
    const rowIn = (yy + rowFirst) * width * 3;
    const rowOut = yy * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2];
      const xmax = bounds[xx * 2 + 1];
      const k0 = xx * ksize;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      let p = rowIn + xmin * 3;
      for (let x = 0; x < xmax; x++, p += 3) {
        const k = kk[k0 + x];
        s0 += src[p] * k;
        s1 += src[p + 1] * k;
        s2 += src[p + 2] * k;
      }
      const o = rowOut + xx * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

function vertical(src, width, boundsShift, coeffs, outH) {
  const { ksize, bounds, kk } = coeffs;
  const out = new Uint8Array(width * outH * 3);
  const stride = width * 3;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2] - boundsShift;
    const ymax = bounds[yy * 2 + 1];
    const k0 = yy * ksize;
    const rowOut = yy * stride;
    for (let i = 0; i < stride; i++) {
      let s = HALF;
      let p = ymin * stride + i;
      for (let y = 0; y < ymax; y++, p += stride) {
        s += src[p] * kk[k0 + y];
      }
      out[rowOut + i] = clip8(s);
    }
  }
  return out;
}

function checkImage(img) {
  const { rgb, width, height } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 ||
      !rgb || rgb.length !== width * height * 3) {
    throw new Error("expected {rgb: Uint8Array(width*height*3), width, height}");
  }
}

// Image.resize((outW, outH), Image.Resampling.LANCZOS) of an RGB image, bit-exact.
export function resizeLanczos(img, outW, outH) {
  checkImage(img);
  const { rgb, width, height } = img;
  if (!Number.isInteger(outW) || !Number.isInteger(outH) || outW < 1 || outH < 1) {
    throw new Error(`bad output size ${outW}x${outH}`);
  }
  if (outW === width && outH === height) {
    return { rgb: rgb.slice(), width, height }; // Pillow returns a copy
  }
  const needH = outW !== width;
  const needV = outH !== height;
  const vCoeffs = coefficients(height, outH);
  // Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height shrinks
  // by more than twice as many pixels as the width; the order changes the 8-bit rounding
  // between the passes, so it is copied exactly (read from the compiled Pillow 13.0.0).
  if (needH && needV && height - outH > 0 && height - outH > 2 * (width - outW)) {
    const tall = vertical(rgb, width, 0, vCoeffs, outH);
    return { rgb: horizontal(tall, width, 0, outH, outW), width: outW, height: outH };
  }
  // The rows the vertical pass reads: the horizontal pass does only those.
  const first = vCoeffs.bounds[0];
  const last = vCoeffs.bounds[outH * 2 - 2] + vCoeffs.bounds[outH * 2 - 1];
  let data = rgb;
  let shift = 0;
  let w = width;
  if (needH) {
    data = horizontal(rgb, width, first, last - first, outW);
    shift = first;
    w = outW;
  }
  if (needV) {
    data = vertical(data, w, shift, vCoeffs, outH);
  }
  return { rgb: data, width: outW, height: outH };
}

// PIL's Image.crop((x0, y0, x1, y1)): pixels outside the image come out black.
export function crop(img, x0, y0, x1, y1) {
  checkImage(img);
  const { rgb, width, height } = img;
  const w = Math.max(0, x1 - x0);
  const h = Math.max(0, y1 - y0);
  const out = new Uint8Array(w * h * 3);
  const xa = Math.max(x0, 0);
  const xb = Math.min(x1, width);
  for (let y = 0; y < h; y++) {
    const sy = y0 + y;
    if (sy < 0 || sy >= height || xb <= xa) {
      continue;
    }
    out.set(rgb.subarray((sy * width + xa) * 3, (sy * width + xb) * 3), (y * w + (xa - x0)) * 3);
  }
  return { rgb: out, width: w, height: h };
}

// preprocess.centre_square's box (x, y, side, side), integer offsets floored like Python's //.
export function centreSquareBox(width, height) {
  const side = Math.min(width, height);
  return [floorDiv(width - side, 2), floorDiv(height - side, 2), side, side];
}

// preprocess.fit: centre square + Lanczos to size x size -> Uint8Array (size*size*3).
export function fit(img, size) {
  checkImage(img);
  const [x, y, side] = centreSquareBox(img.width, img.height);
  let sq = img;
  if (side !== img.width || side !== img.height) {
    sq = crop(img, x, y, x + side, y + side);
  }
  if (sq.width !== size || sq.height !== size) {
    sq = resizeLanczos(sq, size, size);
  }
  return sq.rgb === img.rgb ? sq.rgb.slice() : sq.rgb;
}

// ml/faces.py crop_box_for: the square crop [x, y, w, h] for a face box, or null when the whole
// image is the crop (one face filling the frame, when wholeImageOk). `faces` is the web
// manifest's "faces" section (face_margin, face_shift_up, small_face_fraction).
export function cropBoxFor(box, imageW, imageH, { wholeImageOk = true, faces }) {
  const [fx, fy, fw, fh] = box;
  if (wholeImageOk && fw >= faces.small_face_fraction * Math.min(imageW, imageH)) {
    return null;
  }
  const side = pyRound(Math.min(faces.face_margin * Math.max(fw, fh), imageW, imageH));
  const cx = fx + fw / 2.0;
  const cy = fy + fh / 2.0 - faces.face_shift_up * fh;
  const x0 = pyRound(Math.min(Math.max(cx - side / 2.0, 0), imageW - side));
  const y0 = pyRound(Math.min(Math.max(cy - side / 2.0, 0), imageH - side));
  return [x0, y0, side, side];
}
