#pragma once
// The attribute annotator: a deterministic RULE SYSTEM (not a language model)
// that writes a CoT for a query–item pair from the item's structured fields
// and word lists. It makes the pipeline run anywhere without an LLM, gives
// tests a known behaviour, and is the "rule BIO" control of the experiments.
// It understands only what its lexicons and rules cover; an LLM annotator is
// expected to do better on real queries.
//
// Lexicons (configs/lexicons/attributes.json): colour families and synonyms,
// material families and generic words, units (aliases, the attribute each
// measures, a factor to a common base), product-noun synonyms, stop words.
// Mined from the catalogue (all pairs given at construction):
//  - items with structured fields: brands (item.brand), category leaves
//    (item.category, "A / B / Leaf"), model numbers (item.model);
//  - title-only items (Home Depot): brands are title prefixes that recur across
//    products (the longest 1–3 word prefix shared by >= 3 products and by at
//    least half of the products sharing its shorter prefix); the product noun
//    ("head") is the last content word before the first " with ", " for ",
//    " in ", ",", "(" or " - " of the title after the brand; head nouns seen on
//    >= 2 products form the category vocabulary; colours, materials, numbers
//    with units and model-like tokens are read from the title.
//
// Query side: numbers with units first (18v, 36", 5 gallon), then model-like
// tokens (>= 2 letters and >= 2 digits: KS-4120, ks4120), a known brand, the
// category (the rightmost match of a category phrase or synonym; plural and
// one-letter typos of words >= 5 letters tolerated), then colours and materials
// among the remaining words.
//
// Verdicts:
//   category   same leaf: match; two non-accessory leaves with the same parent
//              (accessory = a parent segment named in accessory_segments): partial;
//              else mismatch. Title-only: the query noun is the item's head noun:
//              match; it occurs in the title after " for " (an accessory for it):
//              mismatch; it or another query word occurs in the title: partial;
//              else mismatch.
//   brand      same brand: match; different: mismatch; one side silent: absent.
//   model      same (ignoring case and punctuation): match; all but the last two
//              characters equal (same series): partial; else mismatch.
//   color      same colour (after synonyms): match; same family, or the query
//              names the item colour's family: partial; else mismatch.
//   material   same, or the query's generic word covers it (wood ⊇ oak): match;
//              same family: partial; else mismatch.
//   numbers    per attribute (voltage, size, ...) after unit conversion: equal:
//              match; within numeric_partial_tolerance (relative): partial; else
//              mismatch; the item has no value for it: absent.
// Conclusion (the prompt's grading guidance as a rule): category mismatch →
// the lowest grade; any partial or mismatch → positive_from; else the highest.
#include <memory>
#include <string>
#include <vector>

#include "ellm/annotate/annotator.h"
#include "ellm/text/cot.h"

namespace ellm {

class AttributeAnnotator : public Annotator {
 public:
  // lexicon: the parsed lexicon JSON; `source` names it in errors.
  AttributeAnnotator(const std::vector<Pair>& catalogue, const json& lexicon, const std::string& source,
                     const GradeScale& grades);
  ~AttributeAnnotator() override;

  std::string name() const override { return "attribute"; }
  std::string kind() const override { return "rule"; }
  std::vector<AnnotatorAnswer> annotate(const std::vector<Pair>& pairs) override;
  json stats() const override;

  // The judgement itself (steps with terms copied from the query and the item text).
  Cot judge(const Pair& pair) const;
  // The brand mined for a title-only item ("" when none), for inspection and tests.
  std::string mined_brand(const std::string& title) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ellm
