// The CoT line format: writer, strict parser (a corpus of malformed CoTs, each with
// its documented reason code and line), term location, item text.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "ellm/io/jsonl.h"
#include "ellm/text/cot.h"
#include "ellm/util/build_paths.h"

using namespace ellm;

namespace {

Cot sample_cot() {
  Cot c;
  c.steps.push_back({"category", "sectional sofa", "Sectional Sofa", Verdict::match, {}, {}, false, false, 0});
  c.steps.push_back({"brand", "", "Ashley", Verdict::absent, {}, {}, false, false, 0});
  c.steps.push_back({"attribute:color", "grey", "gray", Verdict::match, {}, {}, false, false, 0});
  c.steps.push_back({"attribute:size", "36\" x 80\"", "36 in. x 80 in.", Verdict::partial, {}, {}, false, false, 0});
  c.steps.push_back({"model", "a \\ b \"quoted\"", "café ü", Verdict::mismatch, {}, {}, false, false, 0});
  c.conclusion = "exact";
  c.grade = 2;
  return c;
}

std::string text_of(const std::string& s, const Span& sp) { return s.substr(sp.begin, sp.end - sp.begin); }

}  // namespace

TEST(Cot, WritesTheDocumentedFormat) {
  Cot c;
  c.steps.push_back({"category", "sectional sofa", "sectional sofa", Verdict::match, {}, {}, false, false, 0});
  c.steps.push_back({"brand", "", "Ashley", Verdict::absent, {}, {}, false, false, 0});
  c.steps.push_back({"attribute:color", "grey", "gray", Verdict::match, {}, {}, false, false, 0});
  c.conclusion = "exact";
  EXPECT_EQ(write_cot(c),
            "[category] query: \"sectional sofa\" | item: \"sectional sofa\" | match\n"
            "[brand] query: - | item: \"Ashley\" | absent\n"
            "[attribute:color] query: \"grey\" | item: \"gray\" | match\n"
            "[conclusion] exact\n");
}

TEST(Cot, RoundTripsQuotesBackslashesAndUtf8) {
  GradeScale g;
  Cot c = sample_cot();
  std::string text = write_cot(c);
  Cot back = parse_cot(text, g);
  ASSERT_EQ(back.steps.size(), c.steps.size());
  for (size_t i = 0; i < c.steps.size(); ++i) {
    EXPECT_EQ(back.steps[i].dimension, c.steps[i].dimension);
    EXPECT_EQ(back.steps[i].query_term, c.steps[i].query_term);
    EXPECT_EQ(back.steps[i].item_term, c.steps[i].item_term);
    EXPECT_EQ(back.steps[i].verdict, c.steps[i].verdict);
    EXPECT_EQ(back.steps[i].line, static_cast<int>(i) + 1);
  }
  EXPECT_EQ(back.conclusion, "exact");
  EXPECT_EQ(back.grade, 2);
  EXPECT_EQ(write_cot(back), text);
}

TEST(Cot, ToleratesWhitespaceCaseBlankLinesAndCrlf) {
  GradeScale g;
  std::string text =
      "\r\n  [ Category ]  QUERY :  \"Sofa\"   |ITEM:\"sofas\"|  MATCH  \r\n"
      "\n"
      "[Attribute:  Colour  Name] query: \"grey\" | item: - | Absent\r\n"
      "\t[CONCLUSION]   Partial  \r\n\n";
  Cot c = parse_cot(text, g);
  ASSERT_EQ(c.steps.size(), 2u);
  EXPECT_EQ(c.steps[0].dimension, "category");
  EXPECT_EQ(c.steps[0].query_term, "Sofa");
  EXPECT_EQ(c.steps[0].item_term, "sofas");
  EXPECT_EQ(c.steps[0].line, 2);
  EXPECT_EQ(c.steps[1].dimension, "attribute:colour_name");
  EXPECT_EQ(c.steps[1].item_term, "");
  EXPECT_EQ(c.steps[1].verdict, Verdict::absent);
  EXPECT_EQ(c.steps[1].line, 4);
  EXPECT_EQ(c.conclusion, "partial");
  EXPECT_EQ(c.grade, 1);
}

TEST(Cot, KeepsBareInchMarksInsideTerms) {
  GradeScale g;
  Cot c = parse_cot("[attribute:size] query: \"36\" vanity\" | item: \"36 in.\" | match\n[conclusion] exact", g);
  EXPECT_EQ(c.steps[0].query_term, "36\" vanity");
  c = parse_cot("[attribute:size] query: \"6\"\" | item: \"6 in\" | match\n[conclusion] exact", g);
  EXPECT_EQ(c.steps[0].query_term, "6\"");
}

TEST(Cot, UsesTheDatasetsGradeNames) {
  GradeScale binary;
  binary.labels = {"bad", "good"};
  binary.values = {0, 1};
  Cot c = parse_cot("[brand] query: \"a\" | item: \"a\" | match\n[conclusion] GOOD", binary);
  EXPECT_EQ(c.conclusion, "good");
  EXPECT_EQ(c.grade, 1);
  EXPECT_THROW(parse_cot("[brand] query: \"a\" | item: \"a\" | match\n[conclusion] exact", binary), CotParseError);
}

TEST(Cot, MalformedCorpusGivesEachDocumentedError) {
  GradeScale g;
  std::set<std::string> seen;
  int cases = 0;
  for (const json& rec : read_jsonl((ellm::source_dir() + "/tests/data") + "/cot/malformed.jsonl")) {
    std::string text = rec["cot"], reason = rec["reason"];
    int line = rec["line"];
    ++cases;
    try {
      parse_cot(text, g);
      ADD_FAILURE() << "parsed, but should fail with " << reason << ":\n" << text;
    } catch (const CotParseError& e) {
      EXPECT_EQ(e.reason(), reason) << e.what() << "\n" << text;
      EXPECT_EQ(e.line(), line) << e.what() << "\n" << text;
      EXPECT_NE(std::string(e.what()).find("line " + std::to_string(line)), std::string::npos) << e.what();
      seen.insert(e.reason());
    }
  }
  EXPECT_GE(cases, 30);
  // Every reason code the header documents is exercised by the corpus, and no other.
  std::ifstream header(ellm::source_dir() + "/include/ellm/text/cot.h");
  std::string line;
  std::set<std::string> documented;
  std::regex code_line(R"(^//   ([a-z_]+)\s{2,})");
  while (std::getline(header, line)) {
    std::smatch m;
    if (std::regex_search(line, m, code_line)) documented.insert(m[1]);
  }
  EXPECT_EQ(documented.size(), 19u);
  EXPECT_EQ(seen, documented);
}

TEST(Cot, ParseErrorIsAnEllmError) {
  GradeScale g;
  EXPECT_THROW(parse_cot("nonsense", g), Error);
}

TEST(Locate, CaseAndWhitespaceInsensitive) {
  std::string text = "Harbor 3-Piece  Sectional\tSofa in Gray Linen";
  auto loc = locate_term(text, "sectional sofa");
  ASSERT_TRUE(loc.located);
  ASSERT_EQ(loc.spans.size(), 1u);
  EXPECT_EQ(text_of(text, loc.spans[0]), "Sectional\tSofa");
  EXPECT_FALSE(loc.by_words);
  loc = locate_term("Drill 1/2in. chuck", "1/2 in.");
  ASSERT_TRUE(loc.located);
  EXPECT_EQ(text_of("Drill 1/2in. chuck", loc.spans[0]), "1/2in.");
}

TEST(Locate, PrefersWordBoundariesAndFindsEveryOccurrence) {
  std::string text = "Ashley sofa | brand: Ashley";
  auto loc = locate_term(text, "ASHLEY");
  ASSERT_EQ(loc.spans.size(), 2u);
  EXPECT_EQ(loc.spans[0], (Span{0, 6}));
  EXPECT_EQ(loc.spans[1], (Span{21, 27}));
  // "in" inside "finish" is not taken when a whole-word "in" exists.
  std::string t2 = "satin finish in white";
  loc = locate_term(t2, "in");
  ASSERT_EQ(loc.spans.size(), 1u);
  EXPECT_EQ(loc.spans[0].begin, 13);
  // Prefix of a word (plural) beats an infix.
  std::string t3 = "resofa sofas";
  loc = locate_term(t3, "sofa");
  ASSERT_EQ(loc.spans.size(), 1u);
  EXPECT_EQ(text_of(t3, loc.spans[0]), "sofa");
  EXPECT_EQ(loc.spans[0].begin, 7);
}

TEST(Locate, WordByWordWhenThePhraseIsNotThere) {
  std::string text = "Gray Linen Sectional Sofa";
  auto loc = locate_term(text, "grey sofa");
  EXPECT_FALSE(loc.located);  // "grey" is not in the text: nothing is invented
  EXPECT_TRUE(loc.spans.empty());
  loc = locate_term(text, "gray sofa");
  ASSERT_TRUE(loc.located);
  EXPECT_TRUE(loc.by_words);
  ASSERT_EQ(loc.spans.size(), 2u);
  EXPECT_EQ(text_of(text, loc.spans[0]), "Gray");
  EXPECT_EQ(text_of(text, loc.spans[1]), "Sofa");
}

TEST(Locate, EmptyAndMissingTermsAndUtf8) {
  EXPECT_FALSE(locate_term("abc", "").located);
  EXPECT_FALSE(locate_term("abc", "   ").located);
  EXPECT_FALSE(locate_term("abc", "xyz").located);
  std::string text = "Chaise Café Crème 30°";
  auto loc = locate_term(text, "CAFÉ crème");  // É is not ASCII: compared exactly, so not found as a phrase
  EXPECT_FALSE(loc.located);
  loc = locate_term(text, "café crème");
  ASSERT_TRUE(loc.located);
  EXPECT_EQ(text_of(text, loc.spans[0]), "Café Crème");
  loc = locate_term(text, "30°");
  ASSERT_TRUE(loc.located);
  EXPECT_EQ(text_of(text, loc.spans[0]), "30°");
  std::string cjk = "灰色 沙发 三人";
  loc = locate_term(cjk, "沙发");
  ASSERT_TRUE(loc.located);
  EXPECT_EQ(text_of(cjk, loc.spans[0]), "沙发");
}

TEST(Locate, LocateTermsFillsStepsAgainstQueryAndItemText) {
  GradeScale g;
  Item item;
  item.title = "Harbor Sectional Sofa";
  item.brand = "Harbor";
  item.attributes = {{"color", "gray"}};
  std::string it = item_text(item);
  EXPECT_EQ(it, "Harbor Sectional Sofa | brand: Harbor | color: gray");
  std::string query = "grey  sectional sofa";
  Cot c = parse_cot(
      "[category] query: \"sectional sofa\" | item: \"sectional sofa\" | match\n"
      "[brand] query: - | item: \"Harbor\" | absent\n"
      "[attribute:color] query: \"grey\" | item: \"grey\" | match\n"
      "[conclusion] exact\n",
      g);
  locate_terms(c, query, it);
  EXPECT_TRUE(c.steps[0].query_located);
  EXPECT_EQ(text_of(query, c.steps[0].query_spans[0]), "sectional sofa");
  EXPECT_EQ(text_of(it, c.steps[0].item_spans[0]), "Sectional Sofa");
  EXPECT_FALSE(c.steps[1].query_located);
  EXPECT_EQ(c.steps[1].item_spans.size(), 2u);  // in the title and in the brand field
  EXPECT_TRUE(c.steps[2].query_located);
  EXPECT_FALSE(c.steps[2].item_located);  // the item says "gray": "grey" is reported unlocated
  EXPECT_EQ(unlocated_terms(c), 1);
  json j = cot_to_json(c);
  EXPECT_EQ(j["steps"][1]["query"], nullptr);
  EXPECT_EQ(j["steps"][0]["query_spans"][0][0], 6);
  EXPECT_EQ(j["grade"], 2);
}

TEST(ItemText, TitleOnlyItemIsItsTitle) {
  Item item;
  item.title = "BEHR 1 gal. Deck Stain";
  EXPECT_EQ(item_text(item), "BEHR 1 gal. Deck Stain");
  item.category = "Paint / Exterior";
  item.model = "X-1";
  item.description = "not rendered";
  item.attributes = {{"size", "1 gal."}, {"color", "red"}};
  EXPECT_EQ(item_text(item), "BEHR 1 gal. Deck Stain | category: Paint / Exterior | model: X-1 | color: red | size: 1 gal.");
}
