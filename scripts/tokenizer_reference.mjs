#!/usr/bin/env node
// Reference encodings from @lenml/tokenizers (a JavaScript port of Hugging Face's tokenizers),
// installed by scripts/fetch_reference_tokenizers.sh into ~/.cache/ellm/npm (ELLM_NPM_CACHE).
// The tokenizer tests compare ellm's ids with these, token for token.
//   node scripts/tokenizer_reference.mjs TOKENIZER_DIR CORPUS.jsonl OUT.jsonl [--bench SECONDS]
// TOKENIZER_DIR holds tokenizer.json (+ tokenizer_config.json). CORPUS: one JSON string per line.
// OUT: one {"ids": [...], "decoded": "..."} per line (add_special_tokens: false).
// With --bench, also prints {"texts", "bytes", "seconds", "mb_per_s"} for encoding the corpus
// repeatedly for at least SECONDS (single thread).
import fs from "fs";
import os from "os";
import path from "path";
import { createRequire } from "module";

const [dir, corpusPath, outPath, flag, secondsArg] = process.argv.slice(2);
if (!dir || !corpusPath || !outPath) {
  console.error("usage: tokenizer_reference.mjs TOKENIZER_DIR CORPUS.jsonl OUT.jsonl [--bench SECONDS]");
  process.exit(2);
}
const cache = process.env.ELLM_NPM_CACHE || path.join(os.homedir(), ".cache/ellm/npm");
const require = createRequire(path.join(cache, "package.json"));
const { TokenizerLoader } = require("@lenml/tokenizers");

const readJson = (p) => JSON.parse(fs.readFileSync(p, "utf8"));
const cfgPath = path.join(dir, "tokenizer_config.json");
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: readJson(path.join(dir, "tokenizer.json")),
  tokenizerConfig: fs.existsSync(cfgPath) ? readJson(cfgPath) : {},
});
const texts = fs.readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));
const out = [];
for (const t of texts) {
  const ids = tok.encode(t, { add_special_tokens: false });
  // (decode refuses an empty list)
  const decoded = ids.length ? tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "";
  out.push(JSON.stringify({ ids, decoded }));
}
fs.writeFileSync(outPath, out.join("\n") + "\n");
if (flag === "--bench") {
  const seconds = Number(secondsArg || 2);
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, "utf8"), 0);
  let rounds = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds || rounds < 1) {
    for (const t of texts) tok.encode(t, { add_special_tokens: false });
    rounds += 1;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  console.log(JSON.stringify({ texts: texts.length, bytes: bytes * rounds, seconds: elapsed, mb_per_s: (bytes * rounds) / elapsed / 1e6 }));
}
