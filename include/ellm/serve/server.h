#pragma once
// `ellm serve`: an HTTP server (cpp-httplib) in front of a model (issue 7).
//
//   POST /v1/chat/completions  OpenAI-compatible, non-streaming:
//        {"model", "messages": [{"role", "content"}], "max_tokens", "temperature",
//         "top_p", "seed", "stop": str | [str]}  →  {"id", "object": "chat.completion",
//        "created", "model", "choices": [{"index": 0, "message": {"role": "assistant",
//        "content"}, "finish_reason": "stop" | "length"}], "usage": {...}}
//   POST /v1/relevance  {"query": "...", "items": [{Item fields}] (or "item": {...}),
//        "cot": true}  →  {"results": [{"grade_probs": {"<grade>": p, ...}, "score",
//        "pred", "cot", "flagged"}]} in item order
//   GET  /health   {"status": "ok", "model"}
//   GET  /metrics  Prometheus text: requests by route and code, items, batches,
//        queue depth, latency summaries
//
// Every item of a relevance request (and every chat request) goes through a
// bounded Batcher (serve/batcher.h), so concurrent requests share model
// batches; when the queue cannot take a request it is answered 429 at once.
// Bodies above max_body_bytes get 413, more than max_items items 413, bad JSON
// or fields 400 with a message naming the field. stop() stops accepting,
// finishes queued work, and returns (graceful shutdown).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ellm/data/pairs.h"
#include "ellm/serve/metrics.h"
#include "ellm/text/prompt.h"
#include "ellm/util/error.h"

namespace ellm {

// A request the server refuses, with the HTTP status to answer (400, 413, 429).
class HttpError : public Error {
 public:
  HttpError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct RelevanceQuery {
  Pair pair;
  bool cot = true;
};

struct RelevanceAnswer {
  std::vector<double> grade_probs;
  double score = 0;
  int pred = -1;
  bool has_cot = false;
  std::string cot;
  bool flagged = false;  // the CoT did not parse (its distribution is still valid)
};

struct ChatQuery {
  std::vector<ChatMessage> messages;
  int64_t max_tokens = 256;
  double temperature = 0.0;  // 0 = greedy
  double top_p = 1.0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
};

struct ChatAnswer {
  std::string content;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  std::string finish_reason = "stop";  // "stop" | "length"
};

// The model behind the server. Calls come from one batching thread per route;
// an implementation serialises access to a shared model itself.
class ServeBackend {
 public:
  virtual ~ServeBackend() = default;
  virtual std::string model_name() const = 0;
  virtual const GradeScale& grades() const = 0;
  virtual std::vector<RelevanceAnswer> relevance(const std::vector<RelevanceQuery>& batch) = 0;
  virtual std::vector<ChatAnswer> chat(const std::vector<ChatQuery>& batch) = 0;
};

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                // 0: any free port (see RelevanceServer::port())
  size_t max_queue = 64;          // waiting items (relevance) / requests (chat) per route
  size_t max_batch = 8;
  int64_t max_wait_ms = 5;        // how long a batch may wait to fill
  size_t max_body_bytes = 1u << 20;
  size_t max_items = 64;          // items per relevance request
  int64_t max_tokens_cap = 2048;  // upper bound on a chat request's max_tokens
  int threads = 16;               // HTTP worker threads
};

class RelevanceServer {
 public:
  RelevanceServer(std::shared_ptr<ServeBackend> backend, ServeOptions options);
  ~RelevanceServer();
  RelevanceServer(const RelevanceServer&) = delete;
  RelevanceServer& operator=(const RelevanceServer&) = delete;

  // Binds (errors name host:port) and serves on a background thread.
  void start();
  // Blocks until stop() is called (from another thread or a signal watcher).
  void wait();
  // Stops accepting connections, finishes queued work. Idempotent.
  void stop();
  int port() const;
  Metrics& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The request/response JSON of /v1/relevance, for clients and tests.
std::vector<RelevanceQuery> parse_relevance_request(const json& body, size_t max_items);
json relevance_response(const std::vector<RelevanceAnswer>& answers, const GradeScale& grades);
ChatQuery parse_chat_request(const json& body, int64_t max_tokens_cap);

}  // namespace ellm
