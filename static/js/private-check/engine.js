// The browser copy of the server's inference engine (ml/inference.py Engine.predict): the same
// face detector (MTCNN, mtcnn.js), the same crops and Lanczos resizing (resample.js, bit-exact
// with Pillow), the same network (graph.js), calibration and labels (ml/calibration.py).
//
//   const engine = await engineLoad({baseUrl: "/static/private-check/model/", onProgress});
//   engine.manifest; engine.backend;          // "wasm" or "cpu" (engine.backendNote: why cpu)
//   const result = await engine.predict({rgb, width, height});   // decode.js imageDecode's output
//
// The model files come from the site once, then from the Cache Storage API (a cache per model
// version, each file checked against the manifest's sha256), so the page works offline later.
// The manifest is asked of the site every time (a new model version replaces the cached one);
// only when it cannot be reached (offline) is the copy kept beside the cached files used.

import { networkLoad } from "./graph.js";
import { FaceDetector } from "./mtcnn.js";
import { centreSquareBox, crop, cropBoxFor, fit } from "./resample.js";

const MODEL_FORMAT = "deepfake-web-model/1";
const CACHE_PREFIX = "deepfake-web-model:";
const NETWORKS = ["classifier", "pnet", "rnet", "onet"];
const NO_FACE = "no_face";

// -- ml/calibration.py, in float64 like numpy --------------------------------------------------
const EPS = 1e-7;

export function logit(p) {
  const q = Math.min(Math.max(p, EPS), 1 - EPS);
  return Math.log(q) - Math.log1p(-q);
}

export function sigmoid(z) {
  const e = Math.exp(-Math.abs(z));
  return z >= 0 ? 1 / (1 + e) : e / (1 + e);
}

export function calibrate(p, calib) {
  if (!calib) {
    return p;
  }
  return sigmoid(Number(calib.a) * logit(p) + Number(calib.b));
}

export function labelFor(p, threshold, low, high) {
  if (low <= p && p <= high) {
    return "uncertain";
  }
  return p >= threshold ? "fake" : "real";
}

// -- loading --------------------------------------------------------------------------------

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

// sha256 of the bytes, or null where the browser has no WebCrypto (pages served over plain
// http from another host than localhost): the check is then skipped, the size still holds.
async function sha256(buffer) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) {
    return null;
  }
  return hex(await subtle.digest("SHA-256", buffer));
}

async function intact(buffer, file) {
  if (buffer.byteLength !== file.bytes) {
    return false;
  }
  const digest = await sha256(buffer);
  return digest === null || digest === file.sha256;
}

async function cacheOpen(name) {
  if (!globalThis.caches) {
    return null; // not a secure context, or storage blocked: download every time
  }
  try {
    const cache = await caches.open(name);
    // Files of older model versions are never needed again.
    for (const key of await caches.keys()) {
      if (key.startsWith(CACHE_PREFIX) && key !== name) {
        await caches.delete(key);
      }
    }
    return cache;
  } catch (error) {
    return null;
  }
}

// The manifest kept beside the cached model files, for a page opened offline: that of the newest
// model cache holding one (cacheOpen leaves only one), or null.
async function manifestCached(url) {
  if (!globalThis.caches) {
    return null;
  }
  try {
    // caches.keys() lists the caches in the order they were made: the newest last.
    const names = (await caches.keys()).filter((key) => key.startsWith(CACHE_PREFIX)).reverse();
    for (const name of names) {
      const hit = await (await caches.open(name)).match(url);
      if (hit) {
        const manifest = await hit.json();
        if (manifest.format === MODEL_FORMAT && manifest.model && CACHE_PREFIX + manifest.model.version === name) {
          return manifest;
        }
      }
    }
  } catch (error) {
    // an unreadable cache: as if there were none
  }
  return null;
}

// The body of `response`, reporting each chunk's size to `progress` as it arrives.
async function bodyRead(response, progress) {
  if (!response.body || typeof response.body.getReader !== "function") {
    const buffer = await response.arrayBuffer();
    progress(buffer.byteLength);
    return buffer;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    chunks.push(value);
    size += value.byteLength;
    progress(value.byteLength);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out.buffer;
}

async function fileFetch(url, file, cache, report) {
  if (cache) {
    try {
      const hit = await cache.match(url);
      if (hit) {
        const buffer = await hit.arrayBuffer();
        if (await intact(buffer, file)) {
          report(buffer.byteLength, true);
          return buffer;
        }
        await cache.delete(url);
      }
    } catch (error) {
      // an unreadable cache entry: download it again
    }
  }
  // The file names stay the same from one model version to the next, so a copy in the HTTP
  // cache may be an older model's: a mismatch is fetched once more, bypassing that cache.
  for (const mode of ["no-cache", "reload"]) {
    let got = 0;
    let response;
    try {
      response = await fetch(url, { cache: mode, credentials: "same-origin" });
    } catch (error) {
      throw new Error(`the model file ${file.path} could not be downloaded (no connection?)`);
    }
    if (!response.ok) {
      throw new Error(`the model file ${file.path} could not be downloaded (HTTP ${response.status})`);
    }
    const buffer = await bodyRead(response, (n) => {
      got += n;
      report(n, false);
    });
    if (await intact(buffer, file)) {
      if (cache) {
        try {
          await cache.put(url, new Response(buffer, {
            headers: { "Content-Type": response.headers.get("Content-Type") || "application/octet-stream" },
          }));
        } catch (error) {
          // storage full or refused: the model still runs, it is downloaded again next time
        }
      }
      return buffer;
    }
    report(-got, false); // that attempt does not count toward the progress
  }
  throw new Error(`the model file ${file.path} is not the one the manifest describes (size or sha256)`);
}

async function backendPick({ wasmPaths, backend }) {
  const wanted = backend || "wasm";
  let note = null;
  if (wanted === "wasm") {
    try {
      if (!tf.wasm || typeof tf.wasm.setWasmPaths !== "function") {
        throw new Error("the WebAssembly backend is not loaded");
      }
      if (typeof WebAssembly !== "object") {
        throw new Error("this browser has no WebAssembly");
      }
      tf.wasm.setWasmPaths(wasmPaths || new URL("../../vendor/tfjs/", import.meta.url).href);
      if (await tf.setBackend("wasm")) {
        await tf.ready();
        return { backend: "wasm", note: null };
      }
      throw new Error("the WebAssembly backend did not start");
    } catch (error) {
      note = error && error.message ? error.message : String(error);
    }
  }
  if (!(await tf.setBackend("cpu"))) {
    throw new Error("no TensorFlow.js backend could start");
  }
  await tf.ready();
  return { backend: "cpu", note };
}

// engineLoad({baseUrl, onProgress, wasmPaths?, backend?}): `baseUrl` is the model folder's URL
// (with or without the trailing slash); onProgress({loaded, total, cached}) is called as bytes
// arrive (cached: every byte so far came from this browser's cache); `wasmPaths` is passed to
// tf.wasm.setWasmPaths (a folder URL, or {file name: URL}; default: static/vendor/tfjs/);
// `backend` ("wasm" | "cpu") only forces one, for tests.
export async function engineLoad({ baseUrl, onProgress = null, wasmPaths = null, backend = null } = {}) {
  if (typeof tf === "undefined") {
    throw new Error("TensorFlow.js did not load");
  }
  const base = new URL(String(baseUrl).replace(/\/?$/, "/"), globalThis.location ? location.href : undefined);
  const manifestUrl = new URL("manifest.json", base).href;
  let manifest = null;
  let response = null;
  try {
    response = await fetch(manifestUrl, { cache: "no-cache", credentials: "same-origin" });
  } catch (error) {
    // No connection: the model cached on an earlier visit, if any (its files are checked below).
    manifest = await manifestCached(manifestUrl);
    if (!manifest) {
      throw new Error("the model manifest could not be downloaded (no connection?)");
    }
  }
  if (response) {
    if (!response.ok) {
      throw new Error(`the model manifest could not be downloaded (HTTP ${response.status})`);
    }
    manifest = await response.json();
  }
  if (manifest.format !== MODEL_FORMAT) {
    throw new Error(`the model manifest is not in the format ${MODEL_FORMAT}`);
  }
  const files = manifest.files;
  const total = files.reduce((sum, f) => sum + f.bytes, 0);
  let loaded = 0;
  let allCached = true;
  const report = (n, cached) => {
    loaded += n;
    allCached = allCached && cached;
    if (onProgress) {
      onProgress({ loaded, total, cached: allCached });
    }
  };
  if (onProgress) {
    onProgress({ loaded: 0, total, cached: false });
  }
  const picking = backendPick({ wasmPaths, backend });
  picking.catch(() => {}); // awaited below; this only keeps a failed download from also
  // reporting the backend's failure as unhandled
  const cache = await cacheOpen(CACHE_PREFIX + manifest.model.version);
  const buffers = new Map();
  await Promise.all(files.map(async (file) => {
    buffers.set(file.path, await fileFetch(new URL(file.path, base).href, file, cache, report));
  }));
  if (cache && response) {
    // Kept once every file it lists is cached, for the next visit made offline (manifestCached).
    try {
      await cache.put(manifestUrl, new Response(JSON.stringify(manifest), {
        headers: { "Content-Type": "application/json" },
      }));
    } catch (error) {
      // storage full or refused: only an offline visit needs it
    }
  }
  const { backend: used, note } = await picking;

  const nets = {};
  const text = new TextDecoder();
  try {
    for (const name of NETWORKS) {
      const entry = manifest.networks[name];
      if (!entry || !buffers.has(entry.graph) || !buffers.has(entry.weights)) {
        throw new Error(`the model manifest lists no files for the ${name} network`);
      }
      nets[name] = await networkLoad({
        graph: JSON.parse(text.decode(buffers.get(entry.graph))),
        weights: buffers.get(entry.weights),
      });
    }
  } catch (error) {
    Object.values(nets).forEach((n) => n.dispose());
    throw error;
  }
  const detector = new FaceDetector({
    pnet: nets.pnet, rnet: nets.rnet, onet: nets.onet, faces: manifest.faces,
  });
  return new Engine({ manifest, nets, detector, backend: used, backendNote: note });
}

// -- predicting ------------------------------------------------------------------------------

class Engine {
  constructor({ manifest, nets, detector, backend, backendNote }) {
    const m = manifest.model;
    this.manifest = manifest;
    this.backend = backend;
    this.backendNote = backendNote; // why the wasm backend is not used, when it is not
    this.name = m.name;
    this.version = m.version;
    this.imageSize = m.image_size;
    this.threshold = m.threshold;
    this.uncertainLow = m.uncertain_low;
    this.uncertainHigh = m.uncertain_high;
    this.calibration = m.calibration;
    this.flips = Boolean(m.test_time_flips);
    this.detector = detector;
    this._nets = nets;
  }

  // Engine._prepare_decoded: the model input of every face, [{array, region}], and the faces.
  async prepare(image) {
    const { width, height } = image;
    const faces = await this.detector.detect(image);
    const inputs = faces.map((face) => {
      // With several faces each gets its own crop, even a large one: the whole image would
      // show them all and give every face the same verdict.
      const box = cropBoxFor(face.box, width, height, {
        wholeImageOk: faces.length === 1, faces: this.manifest.faces,
      });
      if (box === null) {
        return { array: fit(image, this.imageSize), region: centreSquareBox(width, height) };
      }
      const [x, y, w, h] = box;
      return { array: fit(crop(image, x, y, x + w, y + h), this.imageSize), region: box };
    });
    return { faces, inputs };
  }

  // Engine._raw: uncalibrated P(fake) per uint8 S x S x 3 array, one batched model call; with
  // test-time flips the mean logit of each image and its mirror.
  async rawProbabilities(arrays) {
    const n = arrays.length;
    if (!n) {
      return [];
    }
    const s = this.imageSize;
    const pixels = new Float32Array(n * s * s * 3);
    arrays.forEach((a, i) => pixels.set(a, i * s * s * 3));
    const out = tf.tidy(() => {
      let x = tf.tensor4d(pixels, [n, s, s, 3], "float32");
      if (this.flips) {
        x = tf.concat([x, tf.reverse(x, 2)], 0);
      }
      return this._nets.classifier.predict(x);
    });
    let p;
    try {
      p = Array.from(await out.data());
    } finally {
      out.dispose();
    }
    if (!this.flips) {
      return p;
    }
    return p.slice(0, n).map((q, i) => sigmoid((logit(q) + logit(p[n + i])) / 2));
  }

  calibrated(raw) {
    return calibrate(raw, this.calibration);
  }

  label(p) {
    return labelFor(p, this.threshold, this.uncertainLow, this.uncertainHigh);
  }

  // Engine.predict for one decoded image ({rgb, width, height}, as imageDecode returns it).
  async predict(image) {
    const t0 = performance.now();
    const { faces, inputs } = await this.prepare(image);
    const raw = await this.rawProbabilities(inputs.map((i) => i.array));
    const verdicts = faces.map((face, i) => {
      const p = this.calibrated(raw[i]);
      return {
        box: face.box.map((v) => Math.trunc(v)),
        region: inputs[i].region,
        fake_probability: p,
        label: this.label(p),
        detector_confidence: Number(Number(face.confidence).toFixed(4)),
      };
    });
    let deciding = null;
    verdicts.forEach((v, i) => {
      if (deciding === null || v.fake_probability > verdicts[deciding].fake_probability) {
        deciding = i;
      }
    });
    return {
      label: deciding === null ? NO_FACE : verdicts[deciding].label,
      fake_probability: deciding === null ? null : verdicts[deciding].fake_probability,
      deciding_face: deciding,
      faces: verdicts,
      model_name: this.name,
      model_version: this.version,
      inference_ms: performance.now() - t0,
    };
  }

  dispose() {
    Object.values(this._nets).forEach((n) => n.dispose());
  }
}
