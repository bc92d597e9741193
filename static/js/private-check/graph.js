// Runs a network exported by `python -m ml export-web` (format "deepfake-web-graph/1") with
// TF.js (the global `tf`): each layer of the graph's list is one or two TF.js ops, in order.
// ml/web_reference.py is the same interpreter in numpy, the format's executable definition.
//
//   const net = await networkLoad({graph, weights});   // graph: parsed JSON, weights: ArrayBuffer
//   const y = net.predict(x);   // x: float32 NHWC tf.Tensor4D -> tf.Tensor, or tf.Tensor[] when
//                               // the graph has several outputs (in its "outputs" order)
//   net.dispose();
//
// Only ops that the cpu and wasm backends both implement are used.

const GRAPH_FORMAT = "deepfake-web-graph/1";

function activate(name, x) {
  switch (name) {
    case "linear":
      return x;
    case "relu":
      return tf.relu(x);
    case "sigmoid":
      return tf.sigmoid(x);
    case "softmax":
      return tf.softmax(x, -1);
    default:
      throw new Error(`unknown activation "${name}"`);
  }
}

const ACTIVATIONS = new Set(["linear", "relu", "sigmoid", "softmax"]);

function activationCheck(name) {
  if (!ACTIVATIONS.has(name)) {
    throw new Error(`unknown activation "${name}"`);
  }
}

// TF.js's fused ops apply these activations in the same kernel (same numbers, fewer passes).
const FUSABLE = new Set(["linear", "relu", "sigmoid"]);

function pair(v, what) {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((n) => Number.isInteger(n) && n > 0)) {
    throw new Error(`${what} must be two positive integers, not ${JSON.stringify(v)}`);
  }
  return v;
}

function padding(p) {
  if (p !== "same" && p !== "valid") {
    throw new Error(`padding must be "same" or "valid", not ${JSON.stringify(p)}`);
  }
  return p;
}

// x minus its 2x nearest-neighbour down- then up-sampled copy, times scale (ml/layers.py
// NeighbourResidual). The upsampling is done by stacking copies, not tf.image.resize, so no
// coordinate rounding can creep in.
function neighbourResidual(x, scale) {
  const [n, h, w, c] = x.shape;
  const down = tf.stridedSlice(x, [0, 0, 0, 0], [n, h, w, c], [1, 2, 2, 1]);
  const [, h2, w2] = down.shape;
  const rows = tf.reshape(tf.stack([down, down], 2), [n, 2 * h2, w2, c]);
  const up = tf.reshape(tf.stack([rows, rows], 3), [n, 2 * h2, 2 * w2, c]);
  const cropped = 2 * h2 === h && 2 * w2 === w ? up : tf.slice(up, [0, 0, 0, 0], [n, h, w, c]);
  return tf.mul(tf.sub(x, cropped), tf.scalar(scale, "float32"));
}

// One function per op: (layer, inputs, weights) -> tensor. Parameters are checked at load time
// by `check`, so a malformed graph fails before any image is looked at.
const OPS = {
  rescale: {
    check: (l) => Number.isFinite(l.scale) && Number.isFinite(l.offset),
    run: (l, [x]) => tf.add(tf.mul(x, tf.scalar(l.scale, "float32")), tf.scalar(l.offset, "float32")),
  },
  neighbour_residual: {
    check: (l) => Number.isFinite(l.scale),
    run: (l, [x]) => neighbourResidual(x, l.scale),
  },
  conv2d: {
    weights: 2,
    check: (l) => {
      pair(l.kernel_size, "kernel_size");
      const s = pair(l.strides, "strides");
      const d = pair(l.dilation || [1, 1], "dilation");
      padding(l.padding);
      activationCheck(l.activation || "linear");
      if ((s[0] > 1 || s[1] > 1) && (d[0] > 1 || d[1] > 1)) {
        throw new Error("TF.js cannot combine strides and dilation in one convolution");
      }
      return true;
    },
    run: (l, [x], [kernel, bias]) => {
      const act = l.activation || "linear";
      const fused = FUSABLE.has(act);
      const y = tf.fused.conv2d({
        x, filter: kernel, strides: l.strides, pad: l.padding, dataFormat: "NHWC",
        dilations: l.dilation || [1, 1], bias, activation: fused ? act : "linear",
      });
      return fused ? y : activate(act, y);
    },
  },
  dense: {
    weights: 2,
    check: (l) => {
      activationCheck(l.activation || "linear");
      return true;
    },
    run: (l, [x], [kernel, bias]) => {
      const act = l.activation || "linear";
      const fused = FUSABLE.has(act);
      const y = tf.fused.matMul({ a: x, b: kernel, bias, activation: fused ? act : "linear" });
      return fused ? y : activate(act, y);
    },
  },
  prelu: {
    weights: 1,
    check: () => true,
    // As the format says: alpha broadcast against the trailing dimensions of x.
    run: (l, [x], [alpha]) => tf.where(tf.greater(x, 0), x, tf.mul(x, alpha)),
  },
  activation: {
    check: (l) => {
      activationCheck(l.activation);
      return true;
    },
    run: (l, [x]) => activate(l.activation, x),
  },
  max_pool2d: {
    check: (l) => {
      pair(l.pool_size, "pool_size");
      pair(l.strides, "strides");
      padding(l.padding);
      return true;
    },
    run: (l, [x]) => tf.maxPool(x, l.pool_size, l.strides, l.padding),
  },
  global_avg_pool2d: { check: () => true, run: (l, [x]) => tf.mean(x, [1, 2]) },
  global_max_pool2d: { check: () => true, run: (l, [x]) => tf.max(x, [1, 2]) },
  concat: {
    inputs: "many",
    check: (l) => Number.isInteger(l.axis),
    run: (l, xs) => tf.concat(xs, l.axis),
  },
  flatten: { check: () => true, run: (l, [x]) => tf.reshape(x, [x.shape[0], -1]) },
  permute: {
    check: (l) => Array.isArray(l.perm) && l.perm[0] === 0 &&
      [...l.perm].sort((a, b) => a - b).every((v, i) => v === i),
    run: (l, [x]) => tf.transpose(x, l.perm),
  },
};

function layerCheck(layer, known, weightNames) {
  const what = `layer "${layer.name}"`;
  const op = OPS[layer.op];
  if (!op) {
    throw new Error(`${what}: unknown op "${layer.op}"`);
  }
  if (!Array.isArray(layer.inputs) || layer.inputs.length < 1) {
    throw new Error(`${what}: no inputs`);
  }
  if (op.inputs !== "many" && layer.inputs.length !== 1) {
    throw new Error(`${what}: "${layer.op}" takes one input, not ${layer.inputs.length}`);
  }
  for (const name of layer.inputs) {
    if (!known.has(name)) {
      throw new Error(`${what}: input "${name}" is not computed before it`);
    }
  }
  const weights = layer.weights || [];
  if (weights.length !== (op.weights || 0)) {
    throw new Error(`${what}: "${layer.op}" takes ${op.weights || 0} weights, not ${weights.length}`);
  }
  for (const name of weights) {
    if (!weightNames.has(name)) {
      throw new Error(`${what}: weight "${name}" is not in the weights manifest`);
    }
  }
  let ok;
  try {
    ok = op.check(layer);
  } catch (error) {
    throw new Error(`${what}: ${error.message}`);
  }
  if (!ok) {
    throw new Error(`${what}: bad parameters for "${layer.op}"`);
  }
}

function weightsDecode(graph, weights) {
  const specs = [];
  for (const group of graph.weights_manifest || []) {
    for (const spec of group.weights) {
      if (spec.dtype !== "float32") {
        throw new Error(`weight "${spec.name}": dtype ${spec.dtype}, only float32 is supported`);
      }
      specs.push(spec);
    }
  }
  const expected = specs.reduce((sum, s) => sum + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
  if (weights.byteLength !== expected) {
    throw new Error(`the weights file has ${weights.byteLength} bytes; the graph describes ${expected}`);
  }
  return tf.io.decodeWeights(weights, specs);
}

export async function networkLoad({ graph, weights }) {
  if (typeof tf === "undefined") {
    throw new Error("TensorFlow.js is not loaded");
  }
  if (!graph || graph.format !== GRAPH_FORMAT) {
    throw new Error(`not a ${GRAPH_FORMAT} graph: ${graph && JSON.stringify(graph.format)}`);
  }
  const input = graph.input;
  if (!input || !Array.isArray(input.shape) || input.shape.length !== 4) {
    throw new Error(`graph "${graph.name}": the input must be NHWC (rank 4)`);
  }
  const tensors = weightsDecode(graph, weights);
  try {
    const known = new Set([input.name]);
    const weightNames = new Set(Object.keys(tensors));
    for (const layer of graph.layers) {
      layerCheck(layer, known, weightNames);
      known.add(layer.name);
    }
    for (const name of graph.outputs) {
      if (!known.has(name)) {
        throw new Error(`graph "${graph.name}": output "${name}" is no layer`);
      }
    }
  } catch (error) {
    Object.values(tensors).forEach((t) => t.dispose());
    throw error;
  }
  const layers = graph.layers;
  const outputs = graph.outputs;
  const spec = input.shape;
  let disposed = false;

  function predict(x) {
    if (disposed) {
      throw new Error(`network "${graph.name}" was disposed`);
    }
    if (x.rank !== 4 || spec.some((s, i) => s !== null && s !== x.shape[i])) {
      throw new Error(`network "${graph.name}": input shape [${x.shape}] does not fit [${spec}]`);
    }
    return tf.tidy(() => {
      const values = new Map([[input.name, x.dtype === "float32" ? x : tf.cast(x, "float32")]]);
      for (const layer of layers) {
        const args = layer.inputs.map((name) => values.get(name));
        const ws = (layer.weights || []).map((name) => tensors[name]);
        values.set(layer.name, OPS[layer.op].run(layer, args, ws));
      }
      const out = outputs.map((name) => values.get(name));
      return out.length === 1 ? out[0] : out;
    });
  }

  return {
    name: graph.name,
    predict,
    dispose() {
      if (!disposed) {
        disposed = true;
        Object.values(tensors).forEach((t) => t.dispose());
      }
    },
  };
}
