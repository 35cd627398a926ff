// ellm annotate: the attribute annotator against ground truth, title-only lexicon
// mining, self-consistency and kappa, the file annotator, the OpenAI-compatible
// client against a scripted local server (429, 5xx, timeouts, malformed JSON,
// cache resume), and the stage end to end.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "ellm/annotate/attribute.h"
#include "ellm/annotate/consistency.h"
#include "ellm/annotate/file_annotator.h"
#include "ellm/annotate/openai.h"
#include "ellm/annotate/run.h"
#include "ellm/data/synth.h"
#include "ellm/io/jsonl.h"
#include "ellm/util/config.h"
#include "ellm/util/build_paths.h"

using namespace ellm;
namespace fs = std::filesystem;

namespace {

const std::string kSource = ellm::source_dir();

json lexicon() { return read_json_file(kSource + "/configs/lexicons/attributes.json"); }

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("ellm_annotate_test_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

Pair title_pair(const std::string& id, const std::string& query, const std::string& title, int label = -1) {
  Pair p;
  p.id = id;
  p.query_id = "q-" + query;
  p.query = query;
  p.item.id = "i-" + title;
  p.item.title = title;
  p.label = label;
  return p;
}

std::string verdict_of(const Cot& cot, const std::string& dim) {
  for (const auto& s : cot.steps)
    if (s.dimension == dim) return verdict_name(s.verdict);
  return "(none)";
}

const char* kCotExact =
    "[category] query: \"drill\" | item: \"Drill\" | match\n[brand] query: - | item: \"Acme\" | absent\n[conclusion] exact\n";
const char* kCotPartial =
    "[category] query: \"drill\" | item: \"Drill\" | match\n[brand] query: \"zeta\" | item: \"Acme\" | mismatch\n"
    "[conclusion] partial\n";

}  // namespace

// ---- the rule annotator on the demo data (ground truth known) ----

TEST(AttributeAnnotator, AgreesWithDemoGroundTruth) {
  std::string path = kSource + "/data/demo/pairs.jsonl";
  auto pairs = read_pairs(path);
  GradeScale grades = grade_scale_for(path);
  AttributeAnnotator ann(pairs, lexicon(), "lexicon", grades);
  TruthAgreement agree;
  int unlocated = 0, noiseless_grade = 0;
  for (const auto& p : pairs) {
    Cot cot = ann.judge(p);
    // What it writes parses back to the same judgement.
    Cot back = parse_cot(write_cot(cot), grades);
    ASSERT_EQ(back.steps.size(), cot.steps.size()) << p.id;
    ASSERT_EQ(back.grade, cot.grade);
    locate_terms(back, p.query, item_text(p.item));
    unlocated += unlocated_terms(back);
    agree.add(cot, p.truth);
    // Its conclusion follows the same rule as the generator's noiseless grade.
    noiseless_grade += cot.grade == synth_grade_from_truth(p.truth);
  }
  // Figures reported in docs/annotate.md.
  std::cout << "truth agreement " << agree.to_json().dump() << "\n";
  EXPECT_GE(agree.rate(), 0.9);
  for (const auto& [dim, c] : agree.by_dimension)
    if (c.second >= 100) {
      EXPECT_GE(static_cast<double>(c.first) / c.second, 0.8) << dim;
    }
  EXPECT_EQ(unlocated, 0) << "every quoted term is copied from the query or the item text";
  EXPECT_GE(noiseless_grade, static_cast<int>(0.85 * pairs.size()));
}

TEST(AttributeAnnotator, StructuredVerdicts) {
  Pair p;
  p.id = "x";
  p.query = "grey linen couch 84 inch";
  p.item.id = "i";
  p.item.title = "Harbor 84 in. Charcoal Linen Sofa";
  p.item.category = "Furniture / Living Room / Sofas";
  p.item.brand = "Harbor";
  p.item.attributes = {{"color", "charcoal"}, {"material", "linen"}, {"size", "84 in."}};
  Pair other = p;
  other.item.category = "Furniture / Accessories / Sofa Covers";
  AttributeAnnotator ann({p, other}, lexicon(), "lexicon", GradeScale{});
  Cot c = ann.judge(p);
  EXPECT_EQ(verdict_of(c, "category"), "match");  // couch → sofa (synonym)
  EXPECT_EQ(verdict_of(c, "brand"), "absent");
  EXPECT_EQ(verdict_of(c, "attribute:color"), "partial");  // grey vs charcoal: same family
  EXPECT_EQ(verdict_of(c, "attribute:material"), "match");
  EXPECT_EQ(verdict_of(c, "attribute:size"), "match");  // 84 inch = 84 in.
  EXPECT_EQ(c.conclusion, "partial");
  Cot d = ann.judge(other);
  EXPECT_EQ(verdict_of(d, "category"), "mismatch");  // an accessory for sofas is not a sofa
  EXPECT_EQ(d.conclusion, "irrelevant");
}

TEST(AttributeAnnotator, TitleOnlyMinesBrandsAndHeads) {
  std::vector<Pair> cat = {
      title_pair("1", "acme drill", "Acme 20-Volt Cordless Drill", 2),
      title_pair("2", "x", "Acme 18-Volt Compact Drill"),
      title_pair("3", "x", "Acme 12-Volt Impact Driver"),
      title_pair("4", "x", "Zeta Tools 1/2 in. Drill Bit Set for Drills"),
      title_pair("5", "x", "Zeta Tools Steel Hammer"),
      title_pair("6", "x", "Zeta Tools Claw Hammer"),
      title_pair("7", "x", "Zeta Tools 16 oz. Framing Hammer"),
      title_pair("8", "x", "Bright 60-Watt LED Light Bulb"),
  };
  AttributeAnnotator ann(cat, lexicon(), "lexicon", GradeScale{});
  EXPECT_EQ(ann.mined_brand("Acme 20-Volt Cordless Drill"), "Acme");
  EXPECT_EQ(ann.mined_brand("Zeta Tools Claw Hammer"), "Zeta Tools");
  EXPECT_EQ(ann.mined_brand("Bright 60-Watt LED Light Bulb"), "");  // one product: not a recurring prefix

  Cot a = ann.judge(title_pair("a", "acme 20v drill", "Acme 20-Volt Cordless Drill"));
  EXPECT_EQ(verdict_of(a, "category"), "match");
  EXPECT_EQ(verdict_of(a, "brand"), "match");
  EXPECT_EQ(verdict_of(a, "attribute:voltage"), "match");
  EXPECT_EQ(a.conclusion, "exact");
  Cot b = ann.judge(title_pair("b", "acme 20v drill", "Zeta Tools 1/2 in. Drill Bit Set for Drills"));
  EXPECT_EQ(verdict_of(b, "category"), "mismatch");  // "for Drills": an accessory
  EXPECT_EQ(verdict_of(b, "brand"), "mismatch");
  EXPECT_EQ(b.conclusion, "irrelevant");
  Cot c = ann.judge(title_pair("c", "18v drill", "Acme 20-Volt Cordless Drill"));
  EXPECT_EQ(verdict_of(c, "attribute:voltage"), "partial");  // 18 vs 20: within 25 %
  Cot h = ann.judge(title_pair("h", "hammer 20 oz", "Zeta Tools 16 oz. Framing Hammer"));
  EXPECT_EQ(verdict_of(h, "category"), "match");
  EXPECT_EQ(verdict_of(h, "attribute:weight"), "partial");
}

// ---- self-consistency ----

TEST(Consistency, KappaByHand) {
  // p_o = 3/4; p_e = 1/4*1/4 + 2/4*3/4 + 1/4*0 = 7/16; kappa = (12/16 - 7/16) / (9/16) = 5/9.
  EXPECT_NEAR(cohen_kappa({0, 1, 2, 1}, {0, 1, 1, 1}, 3), 5.0 / 9.0, 1e-12);
  EXPECT_NEAR(cohen_kappa({0, 1, 2}, {0, 1, 2}, 3), 1.0, 1e-12);
  EXPECT_NEAR(cohen_kappa({1, 1}, {1, 1}, 3), 1.0, 1e-12);
  // Opposite raters: p_o = 0, p_e = 1/2 → kappa = -1.
  EXPECT_NEAR(cohen_kappa({0, 1}, {1, 0}, 2), -1.0, 1e-12);
  EXPECT_EQ(majority_grade({2, 1, 1, 2}), 2);  // tie: the first seen
  EXPECT_EQ(majority_grade({}), -1);
}

TEST(Consistency, Policies) {
  GradeScale g;
  auto vote = [&](std::vector<std::string> texts) {
    AnnotatorAnswer a;
    a.samples = std::move(texts);
    return parse_answer(a, g);
  };
  AnnotatorVote exact = vote({kCotExact, kCotExact, kCotPartial});
  EXPECT_EQ(exact.grade, 2);
  AnnotatorVote partial = vote({kCotPartial});
  AnnotatorVote broken = vote({"[category] query: \"x\" | item: \"y\"\n[conclusion] exact\n"});
  EXPECT_EQ(broken.grade, -1);
  EXPECT_EQ(broken.samples[0].error, "missing_verdict");
  AnnotatorVote failed;
  failed.failed = true;

  Decision d = decide({exact, exact}, 2, Policy::all_agree, false);
  EXPECT_TRUE(d.keep);
  EXPECT_FALSE(d.flagged);
  EXPECT_EQ(d.grade, 2);
  EXPECT_DOUBLE_EQ(d.fraction, 1.0);
  EXPECT_EQ(d.annotator, 0);
  EXPECT_EQ(d.sample, 0);
  EXPECT_EQ(decide({exact, partial}, 2, Policy::all_agree, false).drop_reason, "annotators_disagree");
  EXPECT_EQ(decide({exact, exact}, 1, Policy::all_agree, false).drop_reason, "disagrees_with_human");
  Decision f = decide({exact, partial}, 1, Policy::all_agree, true);
  EXPECT_TRUE(f.keep);
  EXPECT_TRUE(f.flagged);
  EXPECT_EQ(f.grade, 1);  // the human grade, which one annotator voted
  // The kept CoT concludes the final grade (here the first annotator's third sample).
  EXPECT_EQ((std::vector<AnnotatorVote>{exact, partial})[f.annotator].samples[f.sample].cot.grade, 1);
  Decision m = decide({exact, partial}, 2, Policy::majority, false);
  EXPECT_TRUE(m.keep);
  EXPECT_TRUE(m.flagged);
  EXPECT_EQ(m.grade, 2);
  EXPECT_NEAR(m.fraction, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(decide({exact, partial}, 0, Policy::majority, false).drop_reason, "no_majority");
  Decision h = decide({exact, partial}, 1, Policy::human_only, false);
  EXPECT_TRUE(h.keep);
  EXPECT_EQ(h.grade, 1);
  EXPECT_TRUE(h.flagged);
  EXPECT_EQ(decide({broken}, 2, Policy::all_agree, false).drop_reason, "parse_failure");
  EXPECT_EQ(decide({failed}, 2, Policy::all_agree, false).drop_reason, "failed");
  // A failed annotator does not veto the others.
  EXPECT_TRUE(decide({exact, failed}, 2, Policy::all_agree, false).keep);
}

// ---- file annotator ----

TEST(FileAnnotator, JoinsById) {
  fs::path dir = temp_dir("file");
  std::ofstream(dir / "cots.jsonl") << json({{"id", "a"}, {"cot", kCotExact}}).dump() << "\n"
                                    << json({{"id", "a"}, {"cot", json::array({"[category] query: \"drill\" | item: \"Drill\" | match",
                                                                                "[conclusion] exact"})}})
                                           .dump()
                                    << "\n"
                                    << json({{"id", "zz"}, {"samples", {kCotPartial}}}).dump() << "\n";
  FileAnnotator f((dir / "cots.jsonl").string());
  auto out = f.annotate({title_pair("a", "drill", "Acme Drill"), title_pair("b", "drill", "Acme Drill")});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].samples.size(), 2u);
  EXPECT_EQ(out[0].samples[1], "[category] query: \"drill\" | item: \"Drill\" | match\n[conclusion] exact\n");
  EXPECT_TRUE(out[1].failed);
  EXPECT_EQ(f.stats()["unmatched_ids"], 1);
  std::ofstream(dir / "bad.jsonl") << "{\"cot\": \"x\"}\n";
  try {
    FileAnnotator bad((dir / "bad.jsonl").string());
    FAIL() << "a line without id must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:1"), std::string::npos) << e.what();
  }
}

// ---- the OpenAI-compatible client against a scripted server ----

namespace {

// Scripted chat-completions server: behaviour chosen by a word of the query.
struct ScriptedServer {
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::map<std::string, int> calls;  // script word → requests seen
  std::atomic<int> total{0};
  bool one_choice = false;            // answer n=1 whatever is asked

  ScriptedServer() {
    svr.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      json body = json::parse(req.body);
      std::string user = body["messages"].back()["content"];
      std::string word = "ok";
      for (const char* w : {"q429", "q500", "qbad", "q400", "qslow", "qnever"})
        if (user.find(w) != std::string::npos) word = w;
      int k;
      {
        std::lock_guard<std::mutex> lock(mu);
        k = ++calls[word];
      }
      ++total;
      if (word == "q429" && k == 1) {
        res.status = 429;
        res.set_header("Retry-After", "0");
        res.set_content("{\"error\": \"rate limited\"}", "application/json");
        return;
      }
      if (word == "q500" && k <= 2) {
        res.status = 503;
        res.set_content("overloaded", "text/plain");
        return;
      }
      if (word == "qbad" && k == 1) {
        res.set_content("{\"choices\": [{\"message\": ", "application/json");  // cut JSON
        return;
      }
      if (word == "q400") {
        res.status = 400;
        res.set_content("{\"error\": \"bad request\"}", "application/json");
        return;
      }
      if (word == "qnever") {
        res.status = 500;
        res.set_content("down", "text/plain");
        return;
      }
      if (word == "qslow" && k == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1200));
      int n = one_choice ? 1 : body.value("n", 1);
      json choices = json::array();
      for (int i = 0; i < n; ++i)
        choices.push_back({{"index", i}, {"message", {{"role", "assistant"}, {"content", kCotExact}}}});
      res.set_content(json({{"choices", choices}}).dump(), "application/json");
    });
    port = svr.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { svr.listen_after_bind(); });
    while (!svr.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~ScriptedServer() {
    svr.stop();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/v1"; }
};

OpenAiOptions fast_options(const std::string& url, const std::string& cache) {
  OpenAiOptions o = parse_openai_spec(url + ",model=test-model,n=1,concurrency=3,timeout_s=0.4,backoff_initial_s=0.01",
                                      json::object(), "");
  o.prompt = kSource + "/configs/prompts/annotate-cot.json";
  o.cache = cache;
  return o;
}

}  // namespace

TEST(OpenAiAnnotator, RetriesWhatIsRetryableAndRecordsFailures) {
  ScriptedServer server;
  fs::path dir = temp_dir("openai");
  OpenAiAnnotator ann(fast_options(server.url(), (dir / "cache.jsonl").string()), GradeScale{});
  EXPECT_EQ(ann.name(), "openai:test-model");
  std::vector<Pair> pairs = {title_pair("1", "ok drill", "Acme Drill"), title_pair("2", "q429 drill", "Acme Drill"),
                             title_pair("3", "q500 drill", "Acme Drill"), title_pair("4", "qbad drill", "Acme Drill"),
                             title_pair("5", "q400 drill", "Acme Drill"), title_pair("6", "qslow drill", "Acme Drill"),
                             title_pair("7", "qnever drill", "Acme Drill")};
  auto out = ann.annotate(pairs);
  ASSERT_EQ(out.size(), pairs.size());
  for (int i : {0, 1, 2, 3, 5}) {
    EXPECT_FALSE(out[i].failed) << pairs[i].query << ": " << out[i].error;
    ASSERT_EQ(out[i].samples.size(), 1u);
    EXPECT_EQ(out[i].samples[0], kCotExact);
  }
  EXPECT_TRUE(out[4].failed);  // 400: not retryable
  EXPECT_NE(out[4].error.find("HTTP 400"), std::string::npos) << out[4].error;
  EXPECT_TRUE(out[6].failed);  // 500 every time: gives up after 6 tries
  EXPECT_NE(out[6].error.find("6 tries"), std::string::npos) << out[6].error;
  EXPECT_EQ(server.calls["q429"], 2);
  EXPECT_EQ(server.calls["q500"], 3);
  EXPECT_EQ(server.calls["qbad"], 2);
  EXPECT_EQ(server.calls["q400"], 1);
  EXPECT_EQ(server.calls["qslow"], 2);
  EXPECT_EQ(server.calls["qnever"], 6);
  json s = ann.stats();
  EXPECT_EQ(s["failed"], 2);
  EXPECT_EQ(s["answered"], 5);
  EXPECT_EQ(s["malformed_responses"], 1);
  EXPECT_GE(s["timeouts_or_connection_errors"].get<int>(), 1);
  EXPECT_EQ(s["options"].dump().find("Bearer"), std::string::npos);

  // Resume: a new run with the same cache asks only the two that failed.
  int before = server.total;
  OpenAiAnnotator again(fast_options(server.url(), (dir / "cache.jsonl").string()), GradeScale{});
  auto out2 = again.annotate(pairs);
  EXPECT_EQ(again.stats()["cache_hits"], 5);
  EXPECT_EQ(server.total - before, 1 + 6);  // q400 once, qnever six times; nothing else asked twice
  EXPECT_EQ(out2[1].samples, out[1].samples);
}

TEST(OpenAiAnnotator, InterruptedRunResumesFromCacheAndCollectsNSamples) {
  ScriptedServer server;
  server.one_choice = true;  // a server that ignores n: the client asks again
  fs::path dir = temp_dir("openai_resume");
  std::string cache = (dir / "cache.jsonl").string();
  std::vector<Pair> pairs;
  for (int i = 0; i < 6; ++i) pairs.push_back(title_pair(std::to_string(i), "drill " + std::to_string(i), "Acme Drill"));
  OpenAiOptions o = fast_options(server.url(), cache);
  o.n = 2;
  {
    // "Killed" after the first half: only those were asked and cached.
    OpenAiAnnotator first(o, GradeScale{});
    auto out = first.annotate(std::vector<Pair>(pairs.begin(), pairs.begin() + 3));
    for (const auto& a : out) EXPECT_EQ(a.samples.size(), 2u);
  }
  EXPECT_EQ(server.total, 6);  // 3 pairs × 2 requests of one choice
  std::ofstream(cache, std::ios::app) << "{\"key\": \"cut-by-a-cra";  // a line cut by the crash
  OpenAiAnnotator second(o, GradeScale{});
  auto out = second.annotate(pairs);
  EXPECT_EQ(server.total, 12);  // only the other 3 pairs were asked
  EXPECT_EQ(second.stats()["cache_hits"], 3);
  for (const auto& a : out) {
    EXPECT_FALSE(a.failed);
    EXPECT_EQ(a.samples.size(), 2u);
  }
}

TEST(OpenAiAnnotator, SpecParsing) {
  json defaults = {{"model", "m0"}, {"temperature", 0.2}};
  OpenAiOptions o = parse_openai_spec("http://h:1/v1,model=qwen2-72b,n=3,concurrency=8", defaults, "/tmp/x");
  EXPECT_EQ(o.base_url, "http://h:1/v1");
  EXPECT_EQ(o.model, "qwen2-72b");
  EXPECT_EQ(o.n, 3);
  EXPECT_EQ(o.concurrency, 8);
  EXPECT_DOUBLE_EQ(o.temperature, 0.2);
  EXPECT_EQ(o.tries, 6);
  EXPECT_EQ(o.cache, "/tmp/x/openai-qwen2-72b.jsonl");
  EXPECT_THROW(parse_openai_spec("http://h/v1,modle=x", json::object(), ""), Error);  // unknown key
  EXPECT_THROW(parse_openai_spec("model=x", json::object(), ""), Error);               // no URL
}

// ---- the stage end to end ----

TEST(AnnotateStage, TwoAnnotatorsAgreementAndDrops) {
  fs::path dir = temp_dir("stage");
  std::string pairs_path = kSource + "/data/demo/pairs.jsonl";
  auto pairs = read_pairs(pairs_path, "dev");
  ASSERT_GE(pairs.size(), 100u);
  pairs.resize(100);
  // A second annotator "from a cluster": the rule CoTs, with pair 0 contradicted, pair 1
  // malformed and pair 2 missing.
  AttributeAnnotator rule(read_pairs(pairs_path), lexicon(), "lexicon", grade_scale_for(pairs_path));
  {
    JsonlWriter w((dir / "cluster.jsonl").string());
    for (size_t i = 0; i < pairs.size(); ++i) {
      if (i == 2) continue;
      Cot c = rule.judge(pairs[i]);
      std::string text = write_cot(c);
      if (i == 0) {
        c.grade = c.grade == 0 ? 2 : 0;
        c.conclusion = GradeScale{}.labels[c.grade];
        text = write_cot(c);
      }
      if (i == 1) text = "[category] no quotes here\n[conclusion] exact\n";
      w.write({{"id", pairs[i].id}, {"cot", text}});
    }
    w.commit();
  }
  json cfg = annotate_default_config();
  cfg["annotators"] = {"attribute", "file:" + (dir / "cluster.jsonl").string()};
  cfg["split"] = "dev";
  cfg["limit"] = 100;
  json stats = run_annotate(pairs_path, (dir / "out").string(), cfg);
  EXPECT_EQ(stats["total"], 100);
  auto anns = read_jsonl((dir / "out" / "annotations.jsonl").string());
  EXPECT_EQ(static_cast<int64_t>(anns.size()), stats["kept"].get<int64_t>());
  EXPECT_EQ(stats["annotators"][1]["failed"], 1);
  int64_t parse_failures = 0;
  for (auto& [reason, n] : stats["annotators"][1]["parse_failures"].items()) parse_failures += n.get<int64_t>();
  EXPECT_EQ(parse_failures, 1);
  EXPECT_EQ(stats["inter_annotator"][0]["pairs"], 98);  // both voted
  EXPECT_NEAR(stats["inter_annotator"][0]["agreement"].get<double>(), 97.0 / 98.0, 1e-9);
  EXPECT_GE(stats["dropped"]["annotators_disagree"].get<int>(), 1);
  // Kept + dropped = total; every kept record carries its CoT and agreement.
  int64_t dropped = 0;
  for (auto& [reason, n] : stats["dropped"].items()) dropped += n.get<int64_t>();
  EXPECT_EQ(stats["kept"].get<int64_t>() + dropped, 100);
  ASSERT_FALSE(anns.empty());
  const json& r = anns[0];
  for (const char* k : {"id", "query", "item", "label", "cot", "grade", "annotators", "agreement"})
    EXPECT_TRUE(r.contains(k)) << k;
  EXPECT_EQ(r["grade"], r["label"]);  // all-agree includes the human grade
  EXPECT_TRUE(r["cot"].contains("text"));
  EXPECT_TRUE(r["cot"]["steps"][0].contains("query_spans"));
  EXPECT_GE(stats["annotators"][0]["truth_agreement"]["rate"].get<double>(), 0.9);
  EXPECT_TRUE(fs::exists(dir / "out" / "annotate-stats.json"));
}
