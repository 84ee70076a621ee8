#!/usr/bin/env node
// ort_bench.js - times one ONNX model with ONNX Runtime (onnxruntime-node, CPU provider).
//
//   NODE_PATH=<dir>/node_modules node bench/moe_vs_ort/ort_bench.js --model M.onnx
//       --sets DIR0,DIR1,... [--warmup N] [--repeat N] [--threads N] [--output FILE]
//
// Each DIR holds input.f32 and router_probs.f32 (raw little-endian float32) and
// shapes.json (make_models.py writes them). The session runs with intraOpNumThreads
// --threads (2), interOpNumThreads 1, sequential execution, every graph optimisation.
// Two timings, each after its own warm-up, as `moe-exec --bench` does them:
//   rotated: the sets in turn (warm-up run i and timed run i use set i mod sets), so the
//            routing (and the experts read) change every run;
//   fixed:   DIR0 again and again.
// Prints one JSON object: median/min/mean ms of both, the session creation time and the
// versions. --output writes the output of DIR0 as raw float32 (for the parity check).
'use strict';
const fs = require('fs');
const path = require('path');

function usage(msg) {
  if (msg) process.stderr.write(`ort_bench: error: ${msg}\n`);
  process.stderr.write('usage: ort_bench.js --model M.onnx --sets DIR0,DIR1,... [--warmup N] ' +
                       '[--repeat N] [--threads N] [--output FILE]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = {warmup: 3, repeat: 20, threads: 2, sets: [], model: null, output: null};
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} wants a value`));
    if (a === '--model') o.model = next();
    else if (a === '--sets') o.sets = next().split(',').filter((s) => s);
    else if (a === '--warmup') o.warmup = Number(next());
    else if (a === '--repeat') o.repeat = Number(next());
    else if (a === '--threads') o.threads = Number(next());
    else if (a === '--output') o.output = next();
    else if (a === '--help') usage();
    else usage(`unknown argument '${a}'`);
  }
  if (!o.model || o.sets.length === 0) usage('--model and --sets are required');
  for (const k of ['warmup', 'repeat', 'threads'])
    if (!Number.isInteger(o[k]) || o[k] < (k === 'warmup' ? 0 : 1)) usage(`bad --${k}`);
  return o;
}

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  const r = (v) => Math.round(v * 1e4) / 1e4;
  return {median_ms: r(median), min_ms: r(s[0]), mean_ms: r(ms.reduce((a, b) => a + b, 0) / n),
          runs: n};
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const ort = require('onnxruntime-node');
  const feeds = o.sets.map((dir) => {
    const shapes = JSON.parse(fs.readFileSync(path.join(dir, 'shapes.json'), 'utf8'));
    const feed = {};
    for (const name of Object.keys(shapes))
      feed[name] = new ort.Tensor('float32', readF32(path.join(dir, `${name}.f32`)), shapes[name]);
    return feed;
  });
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(o.model, {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
  });
  const createMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const outName = session.outputNames[0];

  const time = async (feed) => {
    const s = process.hrtime.bigint();
    const r = await session.run(feed);
    const ms = Number(process.hrtime.bigint() - s) / 1e6;
    return [ms, r[outName]];
  };

  // Output of set 0 (also the first warm-up run).
  const [, first] = await time(feeds[0]);
  if (o.output) fs.writeFileSync(o.output, Buffer.from(first.data.buffer, first.data.byteOffset,
                                                      first.data.byteLength));

  const rotated = [];
  for (let i = 0; i < o.warmup; ++i) await time(feeds[i % feeds.length]);
  for (let i = 0; i < o.repeat; ++i) rotated.push((await time(feeds[i % feeds.length]))[0]);

  const fixed = [];
  for (let i = 0; i < o.warmup; ++i) await time(feeds[0]);
  for (let i = 0; i < o.repeat; ++i) fixed.push((await time(feeds[0]))[0]);

  let version = ort.env && ort.env.versions ? ort.env.versions.common : undefined;
  try {
    version = require('onnxruntime-node/package.json').version;
  } catch (e) { /* keep the env version */ }
  process.stdout.write(JSON.stringify({
    model: o.model, threads: o.threads, warmup: o.warmup, sets: o.sets.length,
    output_dims: first.dims, session_create_ms: Math.round(createMs),
    rotated: stats(rotated), fixed: stats(fixed),
    onnxruntime_node: version, node: process.version,
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`ort_bench: error: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
