#pragma once
// A synthetic e-commerce relevance dataset with known ground truth (`ellm synth`).
//
// The generator invents a small world: a category tree (top / mid / leaf, plus
// accessory leaves such as "Drill Bits" whose titles share words with the
// products they serve), brands with model-number series, and per-category
// attributes (colour with colour families, material with material families,
// one numeric attribute with a unit: size in inches, voltage, wattage,
// capacity, weight). Each query is written from a specification (a leaf
// category and some of brand, model, colour, material, numeric value), with
// surface variation: category synonyms (couch/sofa), colour synonyms
// (grey/gray), unit spellings (18v, 18 volt, 18-volt), model numbers without
// the dash, one-letter typos, and a long tail of rare words and rare categories.
//
// Each query gets pairs_per_query candidate items drawn to make lexical
// overlap misleading: the exact product, the same kind with one attribute
// changed (often within the colour family or a near size), a sibling category
// (drill vs impact driver), an accessory whose title repeats the query's noun
// ("Drill Bit Set for Cordless Drills"), the same series with a different model
// number, and random items.
//
// Pair::truth holds the generator's verdict per dimension (category, brand,
// model, attribute:<name>) in the CoT vocabulary (match / partial / mismatch /
// absent), following the rules written in synth.cpp (verdict_* functions). The
// label is a 3-grade human-like judgement derived from the truth:
//   category mismatch                                      → irrelevant
//   category partial, or any other dimension partial/mismatch → partial
//   otherwise                                              → exact
// then moved one grade up or down with probability label_noise (rater noise).
//
// Splits are by query (data/prepare.h split_for_query with seed "ellm-demo").
// Output is a pure function of the options: same seed, same bytes, on any
// platform (a self-contained splitmix64 generator, no std distributions).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ellm/data/pairs.h"

namespace ellm {

struct SynthOptions {
  uint64_t seed = 1;
  int pairs = 3000;          // target number of pairs (rounded up to whole queries)
  int pairs_per_query = 5;
  double label_noise = 0.08;  // probability of moving the label one grade
  double typo_rate = 0.10;    // probability that a query gets one typo
  int dev_pct = 15;
  int test_pct = 15;
};

struct SynthDataset {
  std::vector<Item> catalogue;
  std::vector<Pair> pairs;
  GradeScale grades;
  json stats;  // counts per split and grade, queries, items, options
};

SynthDataset synthesize(const SynthOptions& options);

// The noiseless grade of a truth map under the rule above (0, 1, 2).
int synth_grade_from_truth(const std::map<std::string, std::string>& truth);

// Writes <out>/pairs.jsonl (all splits, "split" field set) and <out>/dataset.json.
void write_synth(const std::string& out_dir, const SynthDataset& data);

}  // namespace ellm
