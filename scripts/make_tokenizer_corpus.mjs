#!/usr/bin/env node
// Writes tests/data/tokenizer/generated.jsonl: ~10,000 deterministic strings for the tokenizer
// reference tests, next to the hand-written corpus.jsonl. Sources: the shipped demo catalogue
// (queries, titles, descriptions, brands, models, attribute values) and generated text aimed at
// the hard parts of byte-level BPE: numbers with units and fractions, CJK and other scripts,
// emoji sequences (ZWJ, skin tones, flags), whitespace runs, tabs and newlines, contractions in
// any case, combining marks, and special tokens in the middle of text.
//   node scripts/make_tokenizer_corpus.mjs [DEMO_PAIRS.jsonl] [OUT.jsonl]
// The expectations are not stored: the tests compute them with scripts/tokenizer_reference.mjs.
import fs from "fs";
import path from "path";
import { fileURLToPath } from "url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pairsPath = process.argv[2] || path.join(root, "data/demo/pairs.jsonl");
const outPath = process.argv[3] || path.join(root, "tests/data/tokenizer/generated.jsonl");

// mulberry32: a small seeded PRNG, so the corpus is the same on every run.
let state = 20261201;
const rand = () => {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

const seen = new Set();
const out = [];
const add = (s) => {
  if (s.length === 0 || seen.has(s)) return;
  seen.add(s);
  out.push(s);
};

// 1. The demo catalogue, verbatim.
const catalogue = [];
for (const line of fs.readFileSync(pairsPath, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const p = JSON.parse(line);
  const it = p.item || {};
  for (const s of [p.query, it.title, it.description, it.brand, it.model, it.category,
                   ...Object.entries(it.attributes || {}).map(([k, v]) => `${k}: ${v}`)])
    if (typeof s === "string") { add(s); catalogue.push(s); }
}

// 2. Numbers with units, fractions and dimensions.
const units = ["in.", "in", "inch", "\"", "'", "ft.", "ft", "mm", "cm", "m", "L", "ml", "oz.", "fl. oz.", "gal.",
               "lb.", "lbs", "kg", "V", "W", "Ah", "mAh", "BTU", "psi", "°F", "°C", "-gauge", "-Gauge", "-pack",
               "-Pack", " Watt", " Volt", "K", "%", "GB", "TB", "Hz", "rpm", "sq. ft.", "cu. ft."];
const num = () => {
  switch (int(0, 7)) {
    case 0: return String(int(0, 99));
    case 1: return String(int(100, 99999));
    case 2: return `${int(0, 99)}.${int(0, 999)}`;
    case 3: return `${int(1, 15)}/${pick([2, 4, 8, 16, 32])}`;
    case 4: return `${int(1, 12)}-${int(1, 15)}/${pick([2, 4, 8, 16])}`;
    case 5: return `${int(1, 9)},${String(int(0, 999)).padStart(3, "0")}`;
    case 6: return `${int(1, 99)}x${int(1, 99)}`;
    default: return `${int(1, 48)} x ${int(1, 96)} x ${int(1, 12)}`;
  }
};
const nouns = ["Copper Pipe", "Hex Bolt", "Deck Screw", "Stud", "Plywood Sheet", "Extension Cord", "LED Bulb",
               "Garden Hose", "Drill Bit", "Wire", "Shelf Bracket", "Paint", "Sandpaper", "Storage Bin"];
for (let i = 0; i < 2200; ++i) {
  const sep = pick(["", " ", "-", " ", ""]);
  const a = `${num()}${sep}${pick(units)}`;
  switch (int(0, 4)) {
    case 0: add(a); break;
    case 1: add(`${a} ${pick(nouns)}`); break;
    case 2: add(`${pick(nouns)} ${a} (${int(2, 100)}-Pack)`); break;
    case 3: add(`${a} x ${num()}${pick(units)} ${pick(nouns).toLowerCase()}`); break;
    default: add(`$${int(1, 9999)}.${String(int(0, 99)).padStart(2, "0")} ${a}`);
  }
}

// 3. Other scripts: Chinese / Japanese / Korean product text, Cyrillic, Greek, Arabic, Hindi, Thai.
const zh = ["沙发", "灰色", "三人位", "北欧风格", "实木", "餐桌", "不锈钢", "水槽", "加厚", "吸顶灯", "客厅", "简约",
            "现代", "手机壳", "无线", "充电器", "电钻", "锂电池", "螺丝刀", "套装", "防水", "户外", "led灯带", "米",
            "厘米", "包邮", "正品", "黑色", "白色", "大号", "小号", "儿童", "家用", "工具箱", "油漆", "地板"];
const ja = ["日本製", "ステンレス", "包丁", "三徳", "電動ドリル", "コードレス", "収納ボックス", "ホワイト", "送料無料"];
const ko = ["무선", "청소기", "추천", "스테인리스", "주방", "수납장", "화이트", "세트"];
const other = ["Кухонный смеситель", "с выдвижным изливом", "Ηλεκτρικό δράπανο", "مثقاب كهربائي", "बिजली ड्रिल",
               "สว่านไฟฟ้า", "Ein großer Schrank", "für die Küche", "café crème", "Øresund", "łódź", "İstanbul"];
for (let i = 0; i < 1800; ++i) {
  const n = int(1, 5);
  const words = [];
  for (let k = 0; k < n; ++k) words.push(pick(pick([zh, zh, zh, ja, ko, other])));
  const glue = pick(["", " ", "", "，", "、", " "]);
  let s = words.join(glue);
  if (rand() < 0.4) s += pick([" ", ""]) + num() + pick(["", "米", "cm", "寸", "W", "V", "個", "개"]);
  if (rand() < 0.3) s = pick(["Huawei ", "小米 ", "DEWALT ", "Bosch", "iPhone 15 "]) + s;
  add(s);
}

// 4. Emoji and symbols.
const emoji = ["😀", "🔨", "🛠️", "🪛", "💡", "🏠", "👍🏽", "👩‍🔧", "👨‍👩‍👧‍👦", "🇺🇸", "🇨🇳", "❤️", "✔", "★", "☆",
               "™", "®", "©", "→", "•", "…", "½", "¾", "⅜", "×", "÷", "±", "≥", "≤", "µ", "Ω", "€", "£", "¥", "№"];
for (let i = 0; i < 1200; ++i) {
  const base = pick(catalogue);
  const e = Array.from({ length: int(1, 3) }, () => pick(emoji)).join(pick(["", " "]));
  add(pick([`${e} ${base}`, `${base} ${e}`, `${base}${e}`, e, `${base.split(" ")[0]}${e}${num()}`]));
}

// 5. Whitespace, case, contractions, combining marks, punctuation runs.
const spaces = ["  ", "   ", "\t", "\n", "\r\n", "\n\n", " \t ", "\u00a0", "\u3000", "\u2009"];
const contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D"];
for (let i = 0; i < 2000; ++i) {
  const words = pick(catalogue).split(" ");
  switch (int(0, 6)) {
    case 0: add(words.join(pick(spaces))); break;
    case 1: add(pick(spaces) + words.join(" ") + pick(spaces)); break;
    case 2: add(words.map((w) => (rand() < 0.5 ? w.toUpperCase() : w)).join(" ")); break;
    case 3: add(`${words[0]}${pick(contractions)} ${words.slice(1).join(" ")}`); break;
    case 4: add(words.join(" ").normalize(pick(["NFD", "NFC", "NFKD"])) + pick(["", "\u0301", "e\u0301"])); break;
    case 5: add(words.join(pick(["...", "!!", "--", "//", " | ", ";", "::", "_", "=="]))); break;
    default: add(words.join(" ") + pick(["?!", "...", " :)", " (new)", " [2 pack]", " {set}", " <b>", "&amp;"]));
  }
}

// 6. Special tokens in the middle of text (both families' tokens; each model treats the
//    other's as plain text).
const specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>",
                  "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<think>", "</think>"];
for (let i = 0; i < 1200; ++i) {
  const words = pick(catalogue).split(" ");
  const at = int(0, words.length);
  const sp = pick(specials);
  const glue = pick(["", " ", "\n"]);
  words.splice(at, 0, glue + sp + glue);
  add(words.join(" "));
}

fs.writeFileSync(outPath, out.map((s) => JSON.stringify(s)).join("\n") + "\n");
console.error(`make_tokenizer_corpus: ${out.length} strings -> ${outPath}`);
