// The Private check page: loads the browser copy of the model (engine.js) as soon as the page
// opens, so a check works with the network cut afterwards, then judges a picked or dropped image
// on this device. The image never leaves the browser: the only request a check can make is the
// optional save, which sends the verdict (model version, image size, face boxes and scores).
// The result is drawn with the server's result-page classes and wording
// (templates/detection/_result.html and its partials) so both read the same.
import { engineLoad } from "./engine.js";
import { imageDecode } from "./decode.js";

const root = document.getElementById("private-check");
const LABELS = { real: "Real", fake: "Fake", uncertain: "Uncertain", no_face: "No face" };
const SVG = "http://www.w3.org/2000/svg";

const config = {
  modelUrl: root.dataset.modelUrl,
  wasmPaths: {
    "tfjs-backend-wasm.wasm": root.dataset.wasmPlain,
    "tfjs-backend-wasm-simd.wasm": root.dataset.wasmSimd,
    "tfjs-backend-wasm-threaded-simd.wasm": root.dataset.wasmThreadedSimd,
  },
  maxPixels: parseInt(root.dataset.maxPixels, 10) || 0,
  signedIn: root.dataset.signedIn === "true",
  saveUrl: root.dataset.saveUrl || "",
  modelCardUrl: root.dataset.modelCardUrl || "",
  loginUrl: root.dataset.loginUrl || "",
  // Whether the server's own engine runs this version now (the view compares them).
  sameModel: root.dataset.sameModel === "true",
  serverModelVersion: root.dataset.serverModelVersion || "",
};

const el = {
  modelName: document.getElementById("pc-model-name"),
  modelSize: document.getElementById("pc-model-size"),
  progress: document.getElementById("pc-progress"),
  progressText: document.getElementById("pc-progress-text"),
  dropZone: document.getElementById("pc-drop-zone"),
  file: document.getElementById("pc-file"),
  error: document.getElementById("pc-error"),
  busy: document.getElementById("pc-busy"),
  result: document.getElementById("pc-result"),
  image: document.getElementById("pc-image"),
  overlay: document.getElementById("pc-overlay"),
  caption: document.getElementById("pc-caption"),
  panel: document.getElementById("pc-verdict-panel"),
  again: document.getElementById("pc-again"),
};

let engine = null;
let imageUrl = null;
let busy = false;

// -- small helpers ---------------------------------------------------------------------------

function node(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined && value !== false) {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      element.append(child);
    }
  }
  return element;
}

function svgNode(tag, attrs) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    element.setAttribute(name, String(value));
  }
  return element;
}

// As the server shows a probability: Python's round(p * 100, 1), printed as a float ("87.3").
function percent(probability) {
  return (Math.round(probability * 1000) / 10).toFixed(1);
}

// Django's filesizeformat, near enough: "12.3 KB", "3.7 MB".
function sizeText(bytes) {
  if (bytes < 1024) { return `${bytes} bytes`; }
  if (bytes < 1024 * 1024) { return `${(bytes / 1024).toFixed(1)} KB`; }
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// detection.models.box_percent: [x, y, w, h] in pixels as percentages of the image.
function boxPercent(box, width, height) {
  const round3 = (v) => Math.round(v * 1000) / 1000;
  return {
    left: round3((100 * box[0]) / width),
    top: round3((100 * box[1]) / height),
    width: round3((100 * box[2]) / width),
    height: round3((100 * box[3]) / height),
  };
}

// Python's max(range(n), key=...): the first face with the highest P(fake) decides.
function decidingIndex(faces) {
  let best = -1;
  faces.forEach((face, i) => {
    if (best < 0 || face.fake_probability > faces[best].fake_probability) { best = i; }
  });
  return best;
}

// An error's message after a colon: "The image is damaged" -> "the image is damaged" (but
// "JPEG ..." and "TensorFlow.js ..." stay as they are).
function sentenceTail(error) {
  const message = String(error && error.message ? error.message : error);
  return /^[A-Z][a-z]*(?=[\s,;:])/.test(message) ? message[0].toLowerCase() + message.slice(1) : message;
}

function setState(state) {
  root.dataset.state = state;
}

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = false;
}

function clearError() {
  el.error.textContent = "";
  el.error.hidden = true;
}

// -- loading the model -----------------------------------------------------------------------

function describeModel(manifest) {
  const model = manifest.model;
  el.modelName.replaceChildren(
    "Model: ",
    node("strong", {}, model.name),
    ", version ",
    config.modelCardUrl
      ? node("a", { href: config.modelCardUrl.replace("__version__", encodeURIComponent(model.version)),
        id: "pc-model-card-link", title: "The model card: how this version was trained and tested" },
      node("code", {}, model.version))
      : node("code", {}, model.version),
    config.sameModel
      ? ". It is the same model the server uses for uploads, exported for the browser together with its face detector, calibration and “uncertain” band."
      : `. The server now judges uploads with another version${config.serverModelVersion ? ` (${config.serverModelVersion})` : ""}, so a verdict here may differ from an upload's.`,
  );
  el.modelName.dataset.sameModel = config.sameModel ? "true" : "false";
  el.modelName.dataset.modelVersion = model.version;
  el.modelSize.textContent = `Download size: ${sizeText(manifest.total_bytes)}.`;
  el.modelSize.dataset.totalBytes = String(manifest.total_bytes);
}

const progressBox = document.getElementById("pc-progress-box");
progressBox.setAttribute("aria-busy", "true"); // read out once ready, not at every chunk

// Set once the load has failed or finished: downloads still running after a failed one report
// on, and must not write over the message.
let loadSettled = false;

function onProgress({ loaded, total, cached }) {
  if (loadSettled) { return; }
  el.progress.max = total || 1;
  el.progress.value = Math.min(loaded, total || 1);
  el.progressText.dataset.state = "loading";
  el.progressText.textContent = cached
    ? `Loading the model from this browser's cache: ${sizeText(loaded)} of ${sizeText(total)}`
    : `Downloading the model: ${sizeText(loaded)} of ${sizeText(total)}`;
  el.progressText.dataset.cached = cached ? "true" : "false";
}

async function manifestPeek() {
  // Only to name the model and its size while it downloads; engine.js reads the manifest itself.
  try {
    const response = await fetch(`${config.modelUrl}manifest.json`, { credentials: "same-origin" });
    if (response.ok) { describeModel(await response.json()); }
  } catch (error) {
    // engineLoad reports a failed download; this is only a description.
  }
}

async function modelLoad() {
  setState("loading");
  if (typeof window.tf === "undefined") {
    throw new Error("TensorFlow.js did not load.");
  }
  const peek = manifestPeek();
  let lastCached = false;
  const loaded = await engineLoad({
    baseUrl: config.modelUrl,
    // The WebAssembly binaries by their static URLs (hashed names in production).
    wasmPaths: config.wasmPaths,
    onProgress(progress) {
      lastCached = Boolean(progress.cached);
      onProgress(progress);
    },
  });
  await peek;
  return { loaded, cached: lastCached };
}

function modelReady(loaded, cached) {
  loadSettled = true;
  engine = loaded;
  describeModel(engine.manifest);
  const total = engine.manifest.total_bytes;
  el.progress.max = total || 1;
  el.progress.value = total || 1;
  const runtime = engine.backend === "wasm" ? "WebAssembly" : "plain JavaScript (slower)";
  el.progressText.dataset.state = "ready";
  el.progressText.dataset.cached = cached ? "true" : "false";
  el.progressText.dataset.backend = engine.backend || "";
  el.progressText.textContent = cached
    ? `Ready. The model (${sizeText(total)}) is cached in this browser: nothing was downloaded. It runs on ${runtime}.`
    : `Ready. The model (${sizeText(total)}) was downloaded and is now cached in this browser for next time. It runs on ${runtime}.`;
  progressBox.setAttribute("aria-busy", "false");
  el.file.disabled = false;
  el.dropZone.classList.add("js-enabled");
  setState("ready");
}

function modelFailed(error) {
  loadSettled = true;
  el.progressText.dataset.state = "failed";
  el.progressText.textContent =
    `The model could not be loaded: ${sentenceTail(error).replace(/\.$/, "")}. Reload the page to try again.`;
  el.progressText.classList.add("form-error");
  progressBox.setAttribute("aria-busy", "false");
  setState("load-failed");
}

// -- checking an image -----------------------------------------------------------------------

async function check(file) {
  if (busy) { return; }
  if (!engine) {
    showError("The model is still loading. Try again when it says “Ready”.");
    return;
  }
  clearError();
  if (!file.size) {
    showError(`“${file.name}” is empty: choose an image file (JPEG, PNG or WebP).`);
    return;
  }
  busy = true;
  el.file.disabled = true;
  el.busy.hidden = false;
  setState("checking");
  try {
    const decoded = await imageDecode(file, { maxPixels: config.maxPixels });
    const result = await engine.predict(decoded);
    // The save sends the decoded size, the one the boxes are in.
    render(file, decoded, { ...result, width: decoded.width, height: decoded.height });
    setState("done");
  } catch (error) {
    showError(`“${file.name}” cannot be checked: ${sentenceTail(error)}`);
    el.file.value = ""; // so that choosing the same file again (fixed) starts a new check
    setState("ready");
  } finally {
    busy = false;
    el.busy.hidden = true;
    el.file.disabled = false;
  }
}

function render(file, decoded, result) {
  const { width, height } = decoded;
  const faces = result.faces || [];
  const deciding = decidingIndex(faces);

  if (imageUrl) { URL.revokeObjectURL(imageUrl); }
  imageUrl = URL.createObjectURL(file);
  el.image.src = imageUrl;
  el.image.width = width;
  el.image.height = height;
  el.image.alt = `The image you chose, ${file.name}`;

  el.overlay.replaceChildren();
  faces.forEach((face, i) => {
    const box = boxPercent(face.box, width, height);
    const group = svgNode("g", { class: i === deciding ? "face face-deciding" : "face", "data-face": i + 1 });
    group.append(
      svgNode("rect", { class: "face-box", x: `${box.left}%`, y: `${box.top}%`, width: `${box.width}%`, height: `${box.height}%` }),
      svgNode("rect", { class: "face-tag", x: `${box.left}%`, y: `${box.top}%`, width: 22, height: 22 }),
    );
    const number = svgNode("text", { class: "face-number", x: `${box.left}%`, y: `${box.top}%`, dx: 11, dy: 16 });
    number.textContent = String(i + 1);
    group.append(number);
    el.overlay.append(group);
  });
  el.overlay.hidden = faces.length === 0;

  let facesNote = "";
  if (faces.length === 1) { facesNote = " · the outlined face is what the model examined"; }
  if (faces.length > 1) { facesNote = " · each outlined face was examined; the highlighted one decided"; }
  el.caption.textContent = `${width} × ${height} px · ${sizeText(file.size)} · checked on this device, not uploaded${facesNote}`;

  el.panel.replaceChildren(...verdictPanel(result, faces, deciding));
  el.result.hidden = false;
  el.again.focus({ preventScroll: true });
  const still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  el.result.scrollIntoView({ block: "start", behavior: still ? "auto" : "smooth" });
}

function verdictPanel(result, faces, deciding) {
  const parts = [];
  const manifest = engine.manifest;
  const label = result.label;
  const probability = result.fake_probability;
  const verdict = node("p", {
    class: `verdict verdict-${label}`, id: "pc-verdict", "data-label": label,
    "data-fake-probability": probability === null || probability === undefined ? "" : String(probability),
  }, "Verdict: ", node("span", { class: `badge badge-${label}`, id: "pc-label" }, LABELS[label] || label));
  parts.push(verdict);

  if (label === "no_face") {
    parts.push(node("div", { class: "no-face-note", id: "no-face-found" },
      node("p", {}, node("strong", {}, "No face found."),
        " The face detector found no face in this image. The model judges faces only, so there is no real or fake verdict for this image."),
      node("p", { class: "helptext" },
        "A photo without a face, a drawing, or a face that is very small or turned away from the camera gives this answer.")));
  } else {
    const low = percent(manifest.model.uncertain_low);
    const high = percent(manifest.model.uncertain_high);
    const bandWidth = (Math.round((Number(high) - Number(low)) * 10) / 10).toFixed(1);
    parts.push(node("div", { class: "confidence" },
      node("div", { class: "confidence-label" }, "Probability that the image is fake: ",
        node("strong", { id: "pc-fake-percent" }, `${percent(probability)}%`),
        faces.length > 1 ? ` (face ${deciding + 1}, the most likely fake)` : ""),
      confidenceBar(label, percent(probability), low, bandWidth),
      node("div", { class: "confidence-scale" }, node("span", {}, "0% · real"), node("span", {}, "100% · fake"))));
    parts.push(node("p", { class: "helptext" },
      `Between ${low}% and ${high}% the model is not confident either way, so it answers “uncertain”. Below that it says real, above it fake. The verdict is an estimate, not proof.`));
    parts.push(facesTable(faces, deciding));
  }

  const model = manifest.model;
  const cardLink = config.modelCardUrl
    ? node("a", { href: config.modelCardUrl.replace("__version__", encodeURIComponent(model.version)),
      title: "The model card: how this version was trained and tested" }, node("code", {}, model.version))
    : node("code", {}, model.version);
  parts.push(node("dl", { class: "facts" },
    node("dt", {}, "Model"), node("dd", {}, `${result.model_name || model.name} `, cardLink),
    node("dt", {}, "Checked"), node("dd", {}, "On this device, ",
      node("time", { datetime: new Date().toISOString() }, new Date().toLocaleString())),
    node("dt", {}, "Inference"), node("dd", {}, `${Math.round(result.inference_ms)} ms`),
    node("dt", {}, "Image"), node("dd", {}, "Not uploaded: it never left this browser")));
  parts.push(saveArea(result));
  return parts;
}

function confidenceBar(label, fakePercent, low, bandWidth) {
  const bar = node("div", { class: "confidence-bar", role: "img", "aria-label": `${fakePercent}% likely fake` });
  const svg = svgNode("svg", { viewBox: "0 0 100 1", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" });
  svg.append(svgNode("rect", { class: `confidence-fill confidence-${label}`, x: 0, y: 0, width: fakePercent, height: 1 }));
  if (Number(bandWidth) > 0) {
    svg.append(svgNode("rect", { class: "confidence-band", x: low, y: 0, width: bandWidth, height: 1 }));
  }
  bar.append(svg);
  return bar;
}

function facesTable(faces, deciding) {
  const rows = faces.map((face, i) => {
    const isDeciding = i === deciding;
    return node("tr", {
      id: `pc-face-${i + 1}`, class: isDeciding ? "face-row-deciding" : null,
      "data-label": face.label, "data-fake-probability": String(face.fake_probability),
    },
    node("th", { scope: "row", "data-label": "Face" }, String(i + 1)),
    node("td", { "data-label": "Verdict" }, node("span", { class: `badge badge-${face.label}` }, LABELS[face.label] || face.label)),
    node("td", { class: "num", "data-label": "P(fake)" }, `${percent(face.fake_probability)}%`),
    node("td", { "data-label": "Decided" }, isDeciding ? "Yes, this face decided" : "–"));
  });
  const many = faces.length > 1;
  return node("div", { class: "table-wrap faces-wrap" },
    node("table", { class: "faces-table stack-table", id: "pc-faces-table" },
      node("caption", {}, `${faces.length} face${many ? "s" : ""} examined${many ? "; the most likely fake one decides the image's verdict" : ""}`),
      node("thead", {}, node("tr", {},
        node("th", { scope: "col" }, "Face"), node("th", { scope: "col" }, "Verdict"),
        node("th", { scope: "col", class: "num" }, "P(fake)"), node("th", { scope: "col" }, "Decided"))),
      node("tbody", {}, ...rows)));
}

// -- saving the verdict (signed in only; never the image) ------------------------------------

function csrfToken() {
  const cookie = document.cookie.split(";").map((part) => part.trim())
    .find((part) => part.startsWith("csrftoken="));
  if (cookie) { return decodeURIComponent(cookie.slice("csrftoken=".length)); }
  // The layout's sign-out form carries a token too.
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

function saveArea(result) {
  const area = node("div", { class: "pc-save", id: "pc-save" });
  if (!config.signedIn) {
    area.append(node("p", { class: "helptext", id: "pc-save-note" },
      node("a", { href: config.loginUrl }, "Sign in"),
      " to save verdicts like this one to your history: only the verdict is saved, never the image."));
    return area;
  }
  if (!config.saveUrl) { return area; }
  const button = node("button", { type: "button", class: "button button-secondary", id: "pc-save-button" },
    "Save this verdict to my history");
  const status = node("p", { class: "helptext", id: "pc-save-status", role: "status" },
    "Saves the verdict, the face boxes and their scores; the image stays here.");
  button.addEventListener("click", () => save(result, button, status));
  area.append(button, status);
  return area;
}

async function save(result, button, status) {
  button.disabled = true;
  status.textContent = "Saving…";
  const body = {
    model_version: result.model_version || engine.manifest.model.version,
    width: result.width,
    height: result.height,
    inference_ms: result.inference_ms,
    faces: (result.faces || []).map((face) => ({
      box: face.box, fake_probability: face.fake_probability, detector_confidence: face.detector_confidence,
    })),
  };
  try {
    const response = await fetch(config.saveUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    });
    let answer = {};
    try { answer = await response.json(); } catch (error) { answer = {}; }
    if (response.status === 201) {
      status.replaceChildren("Saved to your history. ",
        node("a", { href: answer.page_url, id: "pc-saved-link" }, "See the saved verdict"));
      status.dataset.saved = "true";
      button.hidden = true;
      return;
    }
    const reason = answer.detail || (response.status === 409
      ? "the server no longer knows this model version; reload the page"
      : `the server answered ${response.status}`);
    status.textContent = `Not saved: ${reason}`;
  } catch (error) {
    status.textContent = "Not saved: the server could not be reached. Try again when you are online.";
  }
  button.disabled = false;
}

// -- wiring ----------------------------------------------------------------------------------

function reset() {
  clearError();
  el.result.hidden = true;
  el.panel.replaceChildren();
  el.overlay.replaceChildren();
  if (imageUrl) { URL.revokeObjectURL(imageUrl); imageUrl = null; }
  el.image.removeAttribute("src");
  el.file.value = "";
  setState(engine ? "ready" : root.dataset.state);
  el.file.focus();
}

el.file.addEventListener("change", () => {
  if (el.file.files && el.file.files[0]) { check(el.file.files[0]); }
});
el.again.addEventListener("click", reset);

["dragenter", "dragover"].forEach((type) => el.dropZone.addEventListener(type, (event) => {
  event.preventDefault();
  el.dropZone.classList.add("drag-over");
}));
["dragleave", "drop"].forEach((type) => el.dropZone.addEventListener(type, () => {
  el.dropZone.classList.remove("drag-over");
}));
el.dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  const files = event.dataTransfer ? event.dataTransfer.files : null;
  if (!files || !files.length) { return; }
  if (files.length > 1) {
    showError("Drop one image at a time.");
    return;
  }
  check(files[0]);
});

// The service worker (templates/detection/private_check_sw.js) keeps this page and its files so
// that it opens offline next time. Without it the page still works online: a failure is only
// logged.
function offlineCopyKeep() {
  const url = root.dataset.serviceWorkerUrl;
  if (!url || !("serviceWorker" in navigator)) { return; }
  navigator.serviceWorker.register(url, { scope: root.dataset.serviceWorkerScope || undefined })
    .catch((error) => console.warn("Private check: this page will not open offline:", error));
}

offlineCopyKeep();
modelLoad()
  .then(({ loaded, cached }) => modelReady(loaded, cached))
  .catch(modelFailed);
