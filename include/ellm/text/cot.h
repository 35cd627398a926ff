#pragma once
// The chain-of-thought (CoT) relevance judgement: its line format, a writer, a
// strict parser, and the location of its quoted terms (DESIGN §2).
//
//   [category] query: "sectional sofa" | item: "Sectional Sofa" | match
//   [brand] query: - | item: "Ashley" | absent
//   [attribute:color] query: "grey" | item: "gray" | match
//   [conclusion] exact
//
// One step per line, then one conclusion line naming a grade of the dataset's
// GradeScale. Dimensions: category, brand, model, attribute:<name> (the name is
// lower-cased, inner whitespace becomes '_'). Verdicts: match, partial,
// mismatch, absent. A term is "-" (the side does not state the dimension) or a
// double-quoted string; inside quotes \" and \\ are escapes, and a bare "
// that is not followed by optional spaces and '|' (or, for the item term, the
// verdict separator) is kept literally, so inch marks (36") survive unescaped.
//
// The parser is strict about structure and tolerant of whitespace and case.
// Blank lines are skipped. Every other problem throws CotParseError with the
// 1-based line number and one of these reason codes:
//   empty                       no non-blank line at all
//   missing_tag                 a line does not start with "[...]"
//   unclosed_tag                "[" without "]"
//   unknown_dimension           tag not category|brand|model|attribute:<name>|conclusion
//   empty_attribute_name        "attribute:" with no name
//   duplicate_dimension         a dimension stated twice
//   missing_query               no "query:" after the tag
//   missing_item                no "| item:" after the query term
//   missing_verdict             no "| <verdict>" after the item term
//   bad_term                    a term that is neither - nor a closed "quoted string"
//   empty_term                  "" (use - for a side that does not state the dimension)
//   unknown_verdict             verdict not match|partial|mismatch|absent
//   trailing_text               text after the verdict
//   verdict_needs_both_terms    match/partial/mismatch with a "-" side
//   absent_needs_missing_term   absent with both terms present
//   no_steps                    the conclusion comes before any step
//   missing_conclusion          no [conclusion] line
//   unknown_grade               conclusion is not a grade label of the scale
//   text_after_conclusion       a non-blank line after the conclusion
//
// Spans: query spans are byte offsets into Pair::query; item spans are byte
// offsets into item_text(item) (text/item_text.h). locate_terms() fills them
// with locate_term() (text/locate.h); terms it cannot find stay unlocated.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ellm/data/pairs.h"
#include "ellm/text/item_text.h"
#include "ellm/text/locate.h"
#include "ellm/util/error.h"

namespace ellm {

enum class Verdict { match, partial, mismatch, absent };

const char* verdict_name(Verdict v);
// Case-insensitive; false for an unknown name.
bool parse_verdict(std::string_view name, Verdict& out);

struct CotStep {
  std::string dimension;   // "category", "brand", "model", "attribute:<name>"
  std::string query_term;  // empty when "-"
  std::string item_term;   // empty when "-"
  Verdict verdict = Verdict::absent;
  std::vector<Span> query_spans, item_spans;  // filled by locate_terms
  bool query_located = false, item_located = false;
  int line = 0;  // 1-based line in the parsed text (0 when built in code)
};

struct Cot {
  std::vector<CotStep> steps;
  std::string conclusion;  // the grade label as in the GradeScale
  int grade = -1;          // index into GradeScale::labels
};

class CotParseError : public Error {
 public:
  CotParseError(int line, std::string reason, const std::string& detail);
  int line() const { return line_; }
  const std::string& reason() const { return reason_; }  // one of the codes above

 private:
  int line_;
  std::string reason_;
};

// The canonical text: one step per line, then the conclusion; '\n' after every line.
std::string write_cot(const Cot& cot);

Cot parse_cot(std::string_view text, const GradeScale& grades);

// Normalises a dimension tag ("Attribute: Colour Name" → "attribute:colour_name");
// returns false when it is not a valid dimension.
bool normalise_dimension(std::string_view tag, std::string& out);

// Fills every step's spans and located flags. Empty terms stay unlocated.
void locate_terms(Cot& cot, const std::string& query, const std::string& item_text);
// Number of non-empty terms that could not be located.
int unlocated_terms(const Cot& cot);

// The parsed CoT as JSON: {"conclusion", "grade", "steps": [{"dimension", "query",
// "item", "verdict", "query_spans": [[b, e], ...], "item_spans", "query_located",
// "item_located"}]}; empty terms are null.
json cot_to_json(const Cot& cot);

}  // namespace ellm
