#include "ellm/serve/server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <future>
#include <mutex>
#include <thread>

#include "ellm/serve/batcher.h"
#include "ellm/util/log.h"

namespace ellm {

std::vector<RelevanceQuery> parse_relevance_request(const json& body, size_t max_items) {
  if (!body.is_object()) throw HttpError(400, "the body must be a JSON object");
  if (!body.contains("query") || !body["query"].is_string()) throw HttpError(400, "'query' must be a string");
  std::string query = body["query"].get<std::string>();
  if (query.empty()) throw HttpError(400, "'query' is empty");
  json items;
  if (body.contains("items")) {
    if (!body["items"].is_array()) throw HttpError(400, "'items' must be an array of items");
    items = body["items"];
  } else if (body.contains("item")) {
    items = json::array({body["item"]});
  } else {
    throw HttpError(400, "give 'items' (an array) or 'item'");
  }
  if (items.empty()) throw HttpError(400, "'items' is empty");
  if (items.size() > max_items)
    throw HttpError(413, fmt::format("{} items in one request; the limit is {}", items.size(), max_items));
  bool cot = true;
  if (body.contains("cot")) {
    if (!body["cot"].is_boolean()) throw HttpError(400, "'cot' must be true or false");
    cot = body["cot"].get<bool>();
  }
  std::vector<RelevanceQuery> out;
  for (size_t i = 0; i < items.size(); ++i) {
    RelevanceQuery q;
    q.cot = cot;
    q.pair.id = fmt::format("item-{}", i);
    q.pair.query = query;
    try {
      q.pair.item = item_from_json(items[i], fmt::format("items[{}]", i));
    } catch (const Error& e) {
      throw HttpError(400, e.what());
    }
    out.push_back(std::move(q));
  }
  return out;
}

json relevance_response(const std::vector<RelevanceAnswer>& answers, const GradeScale& grades) {
  json results = json::array();
  for (const auto& a : answers) {
    json probs = json::object();
    for (size_t k = 0; k < a.grade_probs.size(); ++k) probs[grades.labels.at(k)] = a.grade_probs[k];
    json r = {{"grade_probs", probs}, {"score", a.score}, {"pred", grades.labels.at(static_cast<size_t>(a.pred))}};
    r["cot"] = a.has_cot ? json(a.cot) : json(nullptr);
    r["flagged"] = a.flagged;
    results.push_back(std::move(r));
  }
  return {{"results", results}};
}

ChatQuery parse_chat_request(const json& body, int64_t max_tokens_cap) {
  if (!body.is_object()) throw HttpError(400, "the body must be a JSON object");
  if (body.value("stream", false)) throw HttpError(400, "'stream': true is not supported (use non-streaming requests)");
  if (body.contains("n") && !(body["n"].is_number_integer() && body["n"].get<int64_t>() == 1))
    throw HttpError(400, "only 'n': 1 is supported");
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
    throw HttpError(400, "'messages' must be a non-empty array");
  ChatQuery q;
  for (size_t i = 0; i < body["messages"].size(); ++i) {
    const json& m = body["messages"][i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      throw HttpError(400, fmt::format("messages[{}] needs string 'role' and 'content'", i));
    std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant")
      throw HttpError(400, fmt::format("messages[{}].role '{}' is not system, user or assistant", i, role));
    q.messages.push_back({role, m["content"].get<std::string>()});
  }
  auto number = [&](const char* key, double lo, double hi, double& out) {
    if (!body.contains(key) || body[key].is_null()) return;
    if (!body[key].is_number()) throw HttpError(400, fmt::format("'{}' must be a number", key));
    double v = body[key].get<double>();
    if (!(v >= lo && v <= hi)) throw HttpError(400, fmt::format("'{}' = {} is outside [{}, {}]", key, v, lo, hi));
    out = v;
  };
  double max_tokens = static_cast<double>(q.max_tokens);
  for (const char* key : {"max_tokens", "max_completion_tokens"}) number(key, 1, static_cast<double>(max_tokens_cap), max_tokens);
  q.max_tokens = static_cast<int64_t>(max_tokens);
  number("temperature", 0, 2, q.temperature);
  number("top_p", 0, 1, q.top_p);
  if (q.top_p == 0) q.top_p = 1;
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_integer()) throw HttpError(400, "'seed' must be an integer");
    q.seed = static_cast<uint64_t>(body["seed"].get<int64_t>());
  }
  if (body.contains("stop") && !body["stop"].is_null()) {
    const json& s = body["stop"];
    if (s.is_string()) {
      q.stop.push_back(s.get<std::string>());
    } else if (s.is_array() && s.size() <= 4) {
      for (const auto& x : s) {
        if (!x.is_string()) throw HttpError(400, "'stop' must be a string or up to 4 strings");
        q.stop.push_back(x.get<std::string>());
      }
    } else {
      throw HttpError(400, "'stop' must be a string or up to 4 strings");
    }
  }
  return q;
}

struct RelevanceServer::Impl {
  std::shared_ptr<ServeBackend> backend;
  ServeOptions opt;
  httplib::Server svr;
  Metrics metrics;
  std::unique_ptr<Batcher<RelevanceQuery, RelevanceAnswer>> relevance;
  std::unique_ptr<Batcher<ChatQuery, ChatAnswer>> chat;
  std::thread thread;
  int port = -1;
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, stopped = false;
  std::atomic<int64_t> next_id{0};

  void reply_json(httplib::Response& res, int status, const json& j) {
    res.status = status;
    res.set_content(j.dump() + "\n", "application/json");
  }
  void reply_error(httplib::Response& res, int status, const std::string& message) {
    const char* type = status == 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error";
    reply_json(res, status, {{"error", {{"message", message}, {"type", type}, {"code", status}}}});
  }

  // Runs a handler, turning errors into JSON answers and recording metrics.
  template <typename Fn>
  void handle(const std::string& route, const httplib::Request& req, httplib::Response& res, Fn fn) {
    auto t0 = std::chrono::steady_clock::now();
    try {
      fn(req, res);
    } catch (const HttpError& e) {
      reply_error(res, e.status(), e.what());
    } catch (const QueueFull&) {
      reply_error(res, 429, "the server is busy (request queue full); retry later");
    } catch (const json::exception& e) {
      reply_error(res, 400, std::string("bad JSON: ") + e.what());
    } catch (const std::exception& e) {
      spdlog::error("serve {}: {}", route, e.what());
      reply_error(res, 500, e.what());
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string labels = fmt::format("route=\"{}\",code=\"{}\"", route, res.status);
    metrics.inc("ellm_requests_total", labels);
    if (res.status == 200) metrics.observe("ellm_request_seconds", fmt::format("route=\"{}\"", route), s);
  }

  json body_of(const httplib::Request& req) {
    try {
      return json::parse(req.body);
    } catch (const json::exception& e) {
      throw HttpError(400, std::string("the body is not valid JSON: ") + e.what());
    }
  }

  void on_relevance(const httplib::Request& req, httplib::Response& res) {
    auto queries = parse_relevance_request(body_of(req), opt.max_items);
    // All or nothing: a request whose items do not all fit is refused before any runs.
    if (relevance->queued() + queries.size() > opt.max_queue) throw QueueFull();
    std::vector<std::future<RelevanceAnswer>> futures;
    for (auto& q : queries) futures.push_back(relevance->submit(std::move(q)));
    std::vector<RelevanceAnswer> answers;
    for (auto& f : futures) answers.push_back(f.get());
    metrics.inc("ellm_relevance_items_total", "", static_cast<double>(answers.size()));
    reply_json(res, 200, relevance_response(answers, backend->grades()));
  }

  void on_chat(const httplib::Request& req, httplib::Response& res) {
    json body = body_of(req);
    ChatQuery q = parse_chat_request(body, opt.max_tokens_cap);
    ChatAnswer a = chat->submit(std::move(q)).get();
    metrics.inc("ellm_generated_tokens_total", "", static_cast<double>(a.completion_tokens));
    json out = {{"id", fmt::format("chatcmpl-{}", next_id++)},
                {"object", "chat.completion"},
                {"created", static_cast<int64_t>(std::time(nullptr))},
                {"model", body.value("model", backend->model_name())},
                {"choices",
                 json::array({{{"index", 0},
                               {"message", {{"role", "assistant"}, {"content", a.content}}},
                               {"finish_reason", a.finish_reason}}})},
                {"usage",
                 {{"prompt_tokens", a.prompt_tokens},
                  {"completion_tokens", a.completion_tokens},
                  {"total_tokens", a.prompt_tokens + a.completion_tokens}}}};
    reply_json(res, 200, out);
  }
};

RelevanceServer::RelevanceServer(std::shared_ptr<ServeBackend> backend, ServeOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.backend = std::move(backend);
  s.opt = options;
  ELLM_CHECK(s.opt.max_batch >= 1 && s.opt.max_queue >= 1, "serve: max_batch and max_queue must be >= 1");
  auto wait = std::chrono::milliseconds(s.opt.max_wait_ms);
  Impl* self = &s;
  s.relevance = std::make_unique<Batcher<RelevanceQuery, RelevanceAnswer>>(
      [self](std::vector<RelevanceQuery>& batch) {
        self->metrics.inc("ellm_batches_total", "route=\"relevance\"");
        self->metrics.observe("ellm_batch_size", "route=\"relevance\"", static_cast<double>(batch.size()));
        return self->backend->relevance(batch);
      },
      s.opt.max_batch, s.opt.max_queue, wait);
  s.chat = std::make_unique<Batcher<ChatQuery, ChatAnswer>>(
      [self](std::vector<ChatQuery>& batch) {
        self->metrics.inc("ellm_batches_total", "route=\"chat\"");
        self->metrics.observe("ellm_batch_size", "route=\"chat\"", static_cast<double>(batch.size()));
        return self->backend->chat(batch);
      },
      s.opt.max_batch, s.opt.max_queue, wait);

  s.metrics.help("ellm_requests_total", "counter", "HTTP requests by route and status code");
  s.metrics.help("ellm_request_seconds", "summary", "latency of successful requests");
  s.metrics.help("ellm_batches_total", "counter", "model batches run");
  s.metrics.help("ellm_batch_size", "summary", "items per model batch");
  s.metrics.help("ellm_queue_depth", "gauge", "relevance items + chat requests waiting");
  s.metrics.gauge("ellm_queue_depth", [self] { return static_cast<double>(self->relevance->queued() + self->chat->queued()); });

  int threads = std::max(2, s.opt.threads);
  s.svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.svr.set_payload_max_length(s.opt.max_body_bytes);
  s.svr.set_error_handler([self](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a handler already answered
    if (res.status == 413)
      self->reply_error(res, 413, fmt::format("the body is larger than {} bytes", self->opt.max_body_bytes));
    else if (res.status == 404)
      self->reply_error(res, 404, fmt::format("no route {} {}", req.method, req.path));
    else
      self->reply_error(res, res.status, "request failed");
  });
  s.svr.Get("/health", [self](const httplib::Request& req, httplib::Response& res) {
    self->handle("/health", req, res, [self](const httplib::Request&, httplib::Response& r) {
      self->reply_json(r, 200, {{"status", "ok"}, {"model", self->backend->model_name()}});
    });
  });
  s.svr.Get("/metrics", [self](const httplib::Request& req, httplib::Response& res) {
    self->handle("/metrics", req, res, [self](const httplib::Request&, httplib::Response& r) {
      r.status = 200;
      r.set_content(self->metrics.render(), "text/plain; version=0.0.4");
    });
  });
  s.svr.Post("/v1/relevance", [self](const httplib::Request& req, httplib::Response& res) {
    self->handle("/v1/relevance", req, res, [self](const auto& q, auto& r) { self->on_relevance(q, r); });
  });
  s.svr.Post("/v1/chat/completions", [self](const httplib::Request& req, httplib::Response& res) {
    self->handle("/v1/chat/completions", req, res, [self](const auto& q, auto& r) { self->on_chat(q, r); });
  });
}

RelevanceServer::~RelevanceServer() { stop(); }

void RelevanceServer::start() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> l(s.mu);
  ELLM_CHECK(!s.started, "serve: already started");
  if (s.opt.port == 0) {
    s.port = s.svr.bind_to_any_port(s.opt.host);
    ELLM_CHECK(s.port > 0, "serve: cannot bind {} to any port", s.opt.host);
  } else {
    ELLM_CHECK(s.svr.bind_to_port(s.opt.host, s.opt.port), "serve: cannot bind {}:{} (in use, or not an address here)",
               s.opt.host, s.opt.port);
    s.port = s.opt.port;
  }
  s.started = true;
  s.thread = std::thread([&s] { s.svr.listen_after_bind(); });
  spdlog::info("serving {} on http://{}:{} (max batch {}, max queue {})", s.backend->model_name(), s.opt.host, s.port,
               s.opt.max_batch, s.opt.max_queue);
}

void RelevanceServer::wait() {
  Impl& s = *impl_;
  std::unique_lock<std::mutex> l(s.mu);
  s.cv.wait(l, [&] { return s.stopped || !s.started; });
}

void RelevanceServer::stop() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> l(s.mu);
  if (s.stopped) return;
  s.stopped = true;
  // Stop accepting; the pool finishes the requests in flight (which wait on the batchers).
  s.svr.stop();
  if (s.thread.joinable()) s.thread.join();
  s.relevance->stop();
  s.chat->stop();
  s.cv.notify_all();
  if (s.started) spdlog::info("server stopped");
}

int RelevanceServer::port() const { return impl_->port; }
Metrics& RelevanceServer::metrics() { return impl_->metrics; }

}  // namespace ellm
