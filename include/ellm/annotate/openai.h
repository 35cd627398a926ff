#pragma once
// An annotator that asks an OpenAI-compatible chat-completions server (vLLM,
// SGLang, llama.cpp server, hosted APIs) for CoTs.
//
// Spec: openai:BASE_URL[,key=value...] or openai:CONFIG.json[,key=value...]
// (keys below; a JSON file holds the same keys). Per pair it renders the
// prompt template (text/prompt.h: system, few-shot turns, the pair) and POSTs
// {model, messages, temperature, n, max_tokens} to BASE_URL/chat/completions,
// asking again for the rest when a server returns fewer than n choices.
//
// Failures: connection errors and timeouts, HTTP 429 and 5xx, and malformed
// responses (not JSON, no choices, no message content) are retried up to
// `tries` requests in all (default 6), sleeping min(backoff_max_s,
// backoff_initial_s * 2^(attempt-1)) between tries, or the server's Retry-After
// (seconds) when it sends one (capped at backoff_max_s). Other HTTP errors (400,
// 401, 404 ...) fail the pair at once. A pair that fails is recorded as a
// failed answer with the last error; the run goes on.
//
// Cache: every answered pair is appended (one flushed JSONL line:
// {"key", "id", "samples"}) to `cache`, keyed by a hash of the model, the
// temperature, n, max_tokens and the rendered messages. A later run with the
// same cache asks only for what is missing (a line cut by a crash is dropped):
// an interrupted run resumes without asking anything twice. Failures are not
// cached, so a rerun retries them.
//
// The API key is read from the environment variable named by api_key_env
// (default OPENAI_API_KEY; unset = no Authorization header). It is never logged
// or written anywhere.
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ellm/annotate/annotator.h"
#include "ellm/text/prompt.h"

namespace ellm {

struct OpenAiOptions {
  std::string base_url;  // "http://127.0.0.1:8000/v1"
  std::string model = "default";
  std::string api_key_env = "OPENAI_API_KEY";
  std::string prompt = "configs/prompts/annotate-cot.json";
  double temperature = 0.7;
  int n = 1;
  int max_tokens = 512;
  int concurrency = 4;
  int tries = 6;
  double backoff_initial_s = 1.0;
  double backoff_max_s = 60.0;
  double timeout_s = 120.0;
  std::string cache;  // JSONL path; empty: no cache

  json to_json() const;  // every key; never the key's value
};

// The keys and defaults (the "openai" section of the annotate config).
json openai_default_options();
// Defaults ← JSON file (if the first element is a .json path) ← key=value pairs.
// `cache_dir` non-empty and no cache given: cache = cache_dir/openai-<model>.jsonl.
OpenAiOptions parse_openai_spec(const std::string& spec_rest, const json& defaults, const std::string& cache_dir);

class OpenAiAnnotator : public Annotator {
 public:
  OpenAiAnnotator(OpenAiOptions options, const GradeScale& grades);
  std::string name() const override { return "openai:" + opt_.model; }
  std::string kind() const override { return "llm"; }
  std::vector<AnnotatorAnswer> annotate(const std::vector<Pair>& pairs) override;
  json stats() const override;

 private:
  AnnotatorAnswer ask(const Pair& pair, const std::string& key, const json& messages);
  std::string cache_key(const json& messages) const;

  OpenAiOptions opt_;
  GradeScale grades_;
  PromptTemplate prompt_;
  std::string api_key_;
  std::string host_, path_;  // "http://127.0.0.1:8000", "/v1/chat/completions"
  std::map<std::string, std::vector<std::string>> cache_;
  std::mutex mu_;
  std::atomic<int64_t> requests_{0}, retries_{0}, timeouts_{0}, malformed_{0}, http_errors_{0}, cache_hits_{0},
      failed_{0}, answered_{0};
};

}  // namespace ellm
