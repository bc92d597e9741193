// Decodes an image file in the browser the way the server's ml/preprocess.py load_image does:
// JPEG, PNG or WebP only (by content, not by name), refused above maxPixels from its header
// before any pixel is decoded, EXIF orientation applied, no colour-profile conversion (Pillow
// ignores ICC profiles), transparency composited over white.
//
//   const {rgb, width, height} = await imageDecode(file, {maxPixels});   // rgb: Uint8Array(H*W*3)
//
// Errors are `Error`s whose message is written for the person who chose the file.

const NOT_AN_IMAGE = "This file is not a readable image; choose a JPEG, PNG or WebP picture.";
const DAMAGED = "The image is damaged or truncated; it could not be decoded.";

function u16be(b, i) {
  return (b[i] << 8) | b[i + 1];
}

function u32be(b, i) {
  return ((b[i] << 24) >>> 0) + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]);
}

function u24le(b, i) {
  return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);
}

function ascii(b, i, n) {
  return String.fromCharCode(...b.subarray(i, i + n));
}

// The format, from the first bytes (the signatures Pillow's JPEG, PNG and WebP plugins accept).
export function imageFormat(bytes) {
  const b = bytes;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    return "JPEG";
  }
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 3) === "PNG" && b[4] === 0x0d &&
      b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) {
    return "PNG";
  }
  if (b.length >= 16 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP") {
    return "WEBP";
  }
  return null;
}

// [width, height] as the file's header states them, or null when it cannot be read from there.
export function headerSize(bytes, format) {
  const b = bytes;
  if (format === "PNG") {
    if (b.length >= 24 && ascii(b, 12, 4) === "IHDR") {
      return [u32be(b, 16), u32be(b, 20)];
    }
    return null;
  }
  if (format === "WEBP") {
    const chunk = ascii(b, 12, 4);
    if (chunk === "VP8X" && b.length >= 30) {
      return [u24le(b, 24) + 1, u24le(b, 27) + 1];
    }
    if (chunk === "VP8 " && b.length >= 30 && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a) {
      return [(b[26] | (b[27] << 8)) & 0x3fff, (b[28] | (b[29] << 8)) & 0x3fff];
    }
    if (chunk === "VP8L" && b.length >= 25 && b[20] === 0x2f) {
      const w = 1 + (((b[22] & 0x3f) << 8) | b[21]);
      const h = 1 + (((b[24] & 0x0f) << 10) | (b[23] << 2) | ((b[22] & 0xc0) >> 6));
      return [w, h];
    }
    return null;
  }
  if (format === "JPEG") {
    // Walk the marker segments up to the first start-of-frame.
    let i = 2;
    while (i + 4 <= b.length) {
      if (b[i] !== 0xff) {
        return null;
      }
      const marker = b[i + 1];
      if (marker === 0xff) {
        i += 1; // fill byte
        continue;
      }
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
        i += 2; // no length
        continue;
      }
      if (marker === 0xd9 || marker === 0xda) {
        return null; // end of image or scan data before any frame header
      }
      const length = u16be(b, i + 2);
      const sof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
        marker !== 0xcc;
      if (sof) {
        if (i + 9 > b.length) {
          return null;
        }
        return [u16be(b, i + 7), u16be(b, i + 5)];
      }
      i += 2 + length;
    }
    return null;
  }
  return null;
}

// Whether a JPEG's data reaches its end-of-image marker. Pillow refuses a truncated JPEG while
// browsers draw what arrived (grey below), so the check is made here. Scan data cannot hold an
// FF D9 pair (an FF in it is always followed by 00 or a restart marker), so any FF D9 after the
// first start-of-scan is the real end; bytes after it (e.g. a motion photo's video) are allowed.
export function jpegComplete(bytes) {
  const b = bytes;
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) {
      return false;
    }
    const marker = b[i + 1];
    if (marker === 0xff) {
      i += 1;
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      i += 2;
      continue;
    }
    if (marker === 0xd9) {
      return false; // end of image before any scan
    }
    const next = i + 2 + u16be(b, i + 2);
    if (marker === 0xda) {
      for (let j = next; j + 1 < b.length; j++) {
        if (b[j] === 0xff && b[j + 1] === 0xd9) {
          return true;
        }
      }
      return false;
    }
    i = next;
  }
  return false;
}

function tooLarge(w, h, maxPixels) {
  return new Error(`The image is too large (${w}x${h} pixels; at most ` +
    `${maxPixels.toLocaleString("en-US")} allowed).`);
}

function canvasFor(w, h) {
  if (typeof OffscreenCanvas === "function") {
    return new OffscreenCanvas(w, h);
  }
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  return canvas;
}

// Pillow's paste(rgba, mask=alpha) onto white: (c*a + 255*(255-a)) / 255, its rounding.
function overWhite(c, a) {
  const t = c * a + 255 * (255 - a) + 128;
  return ((t >> 8) + t) >> 8;
}

export async function imageDecode(file, { maxPixels } = {}) {
  if (!Number.isInteger(maxPixels) || maxPixels < 1) {
    throw new Error("imageDecode needs maxPixels, a positive whole number");
  }
  if (!file || !file.size) {
    throw new Error("The file is empty.");
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  const format = imageFormat(bytes);
  if (!format) {
    throw new Error(NOT_AN_IMAGE);
  }
  const size = headerSize(bytes, format);
  if (size) {
    const [w, h] = size;
    if (w < 1 || h < 1) {
      throw new Error("The image has no pixels.");
    }
    if (w * h > maxPixels) {
      throw tooLarge(w, h, maxPixels);
    }
  }
  if (format === "JPEG" && !jpegComplete(bytes)) {
    throw new Error(DAMAGED);
  }
  const mime = { JPEG: "image/jpeg", PNG: "image/png", WEBP: "image/webp" }[format];
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes], { type: mime }), {
      imageOrientation: "from-image", // EXIF orientation, as ImageOps.exif_transpose
      colorSpaceConversion: "none", // Pillow ignores embedded colour profiles
      premultiplyAlpha: "none",
    });
  } catch (error) {
    throw new Error(size ? DAMAGED : NOT_AN_IMAGE);
  }
  try {
    const { width, height } = bitmap;
    if (width < 1 || height < 1) {
      throw new Error("The image has no pixels.");
    }
    if (width * height > maxPixels) {
      throw tooLarge(width, height, maxPixels);
    }
    const canvas = canvasFor(width, height);
    const ctx = canvas.getContext("2d", { willReadFrequently: true, alpha: true });
    if (!ctx) {
      throw new Error("This browser cannot read image pixels (no 2D canvas).");
    }
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, width, height).data;
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      const a = rgba[i + 3];
      if (a === 255) {
        rgb[j] = rgba[i];
        rgb[j + 1] = rgba[i + 1];
        rgb[j + 2] = rgba[i + 2];
      } else {
        rgb[j] = overWhite(rgba[i], a);
        rgb[j + 1] = overWhite(rgba[i + 1], a);
        rgb[j + 2] = overWhite(rgba[i + 2], a);
      }
    }
    if (canvas.width !== undefined) {
      canvas.width = 0; // frees the backing store now rather than at collection
      canvas.height = 0;
    }
    return { rgb, width, height };
  } finally {
    bitmap.close();
  }
}
