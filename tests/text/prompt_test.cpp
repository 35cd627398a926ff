// Prompt templates: placeholders, few-shot validation, the shipped annotate prompt.
#include <gtest/gtest.h>

#include "ellm/text/cot.h"
#include "ellm/text/prompt.h"

using namespace ellm;

namespace {
Pair demo_pair() {
  Pair p;
  p.id = "p1";
  p.query = "grey sofa";
  p.item.title = "Harbor Sofa";
  p.item.brand = "Harbor";
  p.item.description = std::string(50, 'x');
  return p;
}
}  // namespace

TEST(Prompt, FillsPlaceholdersAndLiteralBraces) {
  GradeScale g;
  json j = {{"system", "grades: {grades} {{json}}"}, {"user", "Q={query} T={title} I={item_text}\n{item_fields}"},
            {"max_description_chars", 10}};
  PromptTemplate tpl = prompt_template_from_json(j, "t.json", g);
  EXPECT_EQ(render_system(tpl, g), "grades: irrelevant, partial, exact {json}");
  EXPECT_EQ(render_prompt(tpl, demo_pair(), g),
            "Q=grey sofa T=Harbor Sofa I=Harbor Sofa | brand: Harbor\ntitle: Harbor Sofa\nbrand: Harbor\ndescription: "
            "xxxxxxxxxx…");
  auto chat = render_chat(tpl, demo_pair(), g);
  ASSERT_EQ(chat.size(), 2u);
  EXPECT_EQ(chat[0].role, "system");
  EXPECT_EQ(chat[1].role, "user");
}

TEST(Prompt, RejectsUnknownPlaceholdersAndBadExamples) {
  GradeScale g;
  try {
    prompt_template_from_json({{"user", "{qurey}"}}, "t.json", g);
    FAIL() << "accepted an unknown placeholder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean {query}"), std::string::npos) << e.what();
  }
  EXPECT_THROW(prompt_template_from_json({{"system", "{query}"}, {"user", "x"}}, "t.json", g), Error);
  EXPECT_THROW(prompt_template_from_json({{"user", "x"}, {"extra", 1}}, "t.json", g), Error);
  json bad_example = {{"user", "{query}"},
                      {"examples", {{{"query", "q"}, {"item", {{"title", "t"}}}, {"cot", "[brand] query: - | item: \"t\" | match\n[conclusion] exact"}}}}};
  EXPECT_THROW(prompt_template_from_json(bad_example, "t.json", g), Error);
}

TEST(Prompt, ShippedAnnotatePromptLoadsAndItsExamplesLocate) {
  GradeScale g;
  PromptTemplate tpl = load_prompt_template("configs/prompts/annotate-cot.json", g);
  ASSERT_EQ(tpl.examples.size(), 3u);
  auto chat = render_chat(tpl, demo_pair(), g);
  ASSERT_EQ(chat.size(), 1u + 2 * 3 + 1);
  EXPECT_NE(chat[0].content.find("irrelevant, partial, exact"), std::string::npos);
  EXPECT_EQ(chat[2].role, "assistant");
  // The examples teach copying words: every term of every example locates.
  for (const auto& ex : tpl.examples) {
    Cot c = parse_cot(ex.cot, g);
    locate_terms(c, ex.pair.query, item_text(ex.pair.item));
    EXPECT_EQ(unlocated_terms(c), 0) << ex.cot;
  }
  // A dataset with other grade names cannot use these few-shot answers.
  GradeScale other;
  other.labels = {"bad", "good"};
  other.values = {0, 1};
  EXPECT_THROW(load_prompt_template("configs/prompts/annotate-cot.json", other), Error);
}
