// gguf_check.mjs - llama.cpp (through node-llama-cpp's prebuilt binaries) on a GGUF that
// `upq export --format gguf` wrote. Not a test of the default suite: gguf_check.sh and
// decode_vs_llamacpp.sh run it (docs/export.md "GGUF").
//   node gguf_check.mjs ppl MODEL.gguf TOKENS.txt CTX MAX_WINDOWS THREADS
//     TOKENS.txt: comma-separated ids (upq tokenize --no-special). floor(n/CTX) windows of
//     CTX tokens (at most MAX_WINDOWS, 0 = all), no BOS, tokens 1..CTX-1 scored from the
//     full-vocabulary softmax of llama.cpp's logits: prints "ppl=.. nll=.. windows=.. predicted=.."
//   node gguf_check.mjs gen MODEL.gguf "PROMPT" MAX_TOKENS THREADS
//     greedy answer (until </s>) in the GGUF's chat template (tokenizer.chat_template rendered
//     with @huggingface/jinja, node-llama-cpp's dependency); prints the prompt, ids and answer
//   node gguf_check.mjs decode MODEL.gguf N THREADS REPEATS
//     tokens/s of N greedy KV-cached decode steps after a 16-token prompt (median of REPEATS)
// NLC_DIR: the folder where `npm install node-llama-cpp@3.21.1` was run.
import { pathToFileURL } from "node:url";
import fs from "node:fs";

const nlcDir = process.env.NLC_DIR || "/tmp/gguf_nlc";
const { getLlama, LlamaChatSession, LlamaLogLevel } = await import(
  pathToFileURL(`${nlcDir}/node_modules/node-llama-cpp/dist/index.js`).href);

const [mode, modelPath, ...rest] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: "never" });

async function ppl() {
  const [tokFile, ctxS, maxWS, thrS] = rest;
  const ctx = +ctxS, maxW = +maxWS, threads = +thrS;
  const ids = fs.readFileSync(tokFile, "utf8").trim().split(",").map(Number);
  let nw = Math.floor(ids.length / ctx);
  if (maxW > 0 && maxW < nw) nw = maxW;
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: ctx, batchSize: ctx, threads, sequences: 1 });
  const seq = context.getSequence();
  let nll = 0, n = 0;
  const t0 = performance.now();
  for (let w = 0; w < nw; w++) {
    const win = ids.slice(w * ctx, (w + 1) * ctx);
    await seq.clearHistory();
    const input = win.map((t, i) => (i < ctx - 1 ? [t, { generateNext: { probabilities: true } }] : t));
    const out = await seq.controlledEvaluate(input);
    for (let i = 0; i < ctx - 1; i++) {
      const p = out[i]?.next?.probabilities?.get(win[i + 1]);
      if (!(p > 0)) throw new Error(`window ${w} token ${i + 1}: probability ${p}`);
      nll -= Math.log(p);
      n++;
    }
  }
  const s = (performance.now() - t0) / 1000;
  console.log(`ppl=${Math.exp(nll / n).toFixed(6)} nll=${(nll / n).toFixed(8)} windows=${nw} predicted=${n} seconds=${s.toFixed(1)}`);
}

async function gen() {
  const [prompt, maxS, thrS] = rest;
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: 512, threads: +thrS, sequences: 1 });
  const seq = context.getSequence();
  // the GGUF's own tokenizer.chat_template, rendered with the Jinja engine node-llama-cpp uses
  const { Template } = await import(pathToFileURL(`${nlcDir}/node_modules/@huggingface/jinja/dist/index.js`).href);
  const tmpl = model.fileInfo.metadata.tokenizer.chat_template;
  const text = new Template(tmpl).render({ messages: [{ role: "user", content: prompt }], add_generation_prompt: true,
                                           bos_token: "<s>", eos_token: "</s>" });
  console.log(`rendered prompt: ${JSON.stringify(text)}`);
  const ids = model.tokenize(text, true); // special tokens (<|user|>, </s>) as tokens, no BOS
  const eos = model.tokens.eos;
  let out = await seq.controlledEvaluate(ids.map((t, i) => (i === ids.length - 1 ? [t, { generateNext: { token: true } }] : t)));
  let tok = out[ids.length - 1].next.token;
  const gen = [];
  while (tok !== eos && tok != null && gen.length < +maxS) {
    gen.push(tok);
    out = await seq.controlledEvaluate([[tok, { generateNext: { token: true } }]]);
    tok = out[0].next.token;
  }
  console.log(`prompt ids: ${ids.join(",")}`);
  console.log(`answer ids: ${gen.join(",")}${tok === eos ? " (then </s>)" : ""}`);
  console.log(`answer: ${JSON.stringify(model.detokenize(gen))}`);
}

async function decode() {
  const [nS, thrS, repS] = rest;
  const N = +nS, threads = +thrS, reps = +repS;
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: 512, threads, sequences: 1 });
  const seq = context.getSequence();
  const prompt = model.tokenize("The old man looked at the sea and said", false).slice(0, 16);
  while (prompt.length < 16) prompt.push(prompt[prompt.length - 1]);
  const times = [];
  for (let r = 0; r < reps + 1; r++) {
    await seq.clearHistory();
    const first = await seq.controlledEvaluate(prompt.map((t, i) => (i === 15 ? [t, { generateNext: { token: true } }] : t)));
    let tok = first[15].next.token, got = 0;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const o = await seq.controlledEvaluate([[tok, { generateNext: { token: true } }]]);
      tok = o[0].next.token;
      got++;
    }
    const dt = (performance.now() - t0) / 1000;
    if (r > 0) times.push(dt); // the first repeat warms up
    if (got !== N) throw new Error("decode stopped early");
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)];
  console.log(`decode N=${N} threads=${threads} median_s=${med.toFixed(5)} tok_s=${(N / med).toFixed(1)}`);
}

if (mode === "ppl") await ppl();
else if (mode === "gen") await gen();
else if (mode === "decode") await decode();
else { console.error("usage: gguf_check.mjs ppl|gen|decode MODEL.gguf ..."); process.exit(1); }
process.exit(0);
