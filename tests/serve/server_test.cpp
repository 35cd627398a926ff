// The HTTP server in process, with an httplib client on loopback and a fake backend:
// routes, JSON shapes, batching of concurrent requests, 429 on a full queue, 413/400,
// metrics, graceful stop.
#include "ellm/serve/server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <thread>

using namespace ellm;

namespace {

// p(grade) from the title's length; the CoT echoes the title. Each batch sleeps `delay`.
struct FakeBackend : ServeBackend {
  GradeScale scale;
  std::chrono::milliseconds delay{0};
  std::atomic<int> batches{0}, max_batch_seen{0}, entered{0};
  std::shared_future<void> gate;  // when valid, every batch waits for it
  std::string model_name() const override { return "fake-teacher"; }
  const GradeScale& grades() const override { return scale; }
  std::vector<RelevanceAnswer> relevance(const std::vector<RelevanceQuery>& batch) override {
    entered++;
    if (gate.valid()) gate.wait();
    std::this_thread::sleep_for(delay);
    batches++;
    max_batch_seen = std::max<int>(max_batch_seen, static_cast<int>(batch.size()));
    std::vector<RelevanceAnswer> out;
    for (const auto& q : batch) {
      RelevanceAnswer a;
      double n = static_cast<double>(q.pair.item.title.size());
      a.grade_probs = {1 / (n + 2), 1 / (n + 2), n / (n + 2)};
      a.score = 0.5 / (n + 2) + n / (n + 2);
      a.pred = n > 1 ? 2 : 0;
      a.has_cot = q.cot;
      if (q.cot) a.cot = "[category] query: \"" + q.pair.query + "\" | item: \"" + q.pair.item.title + "\" | match\n";
      out.push_back(a);
    }
    return out;
  }
  std::vector<ChatAnswer> chat(const std::vector<ChatQuery>& batch) override {
    std::vector<ChatAnswer> out;
    for (const auto& q : batch) {
      ChatAnswer a;
      a.content = "echo: " + q.messages.back().content;
      a.prompt_tokens = 3;
      a.completion_tokens = static_cast<int64_t>(std::min<size_t>(a.content.size(), static_cast<size_t>(q.max_tokens)));
      a.finish_reason = a.completion_tokens < static_cast<int64_t>(a.content.size()) ? "length" : "stop";
      out.push_back(a);
    }
    return out;
  }
};

ServeOptions test_options() {
  ServeOptions o;
  o.port = 0;
  o.max_wait_ms = 20;
  return o;
}

}  // namespace

TEST(Server, HealthRelevanceAndChat) {
  auto backend = std::make_shared<FakeBackend>();
  RelevanceServer server(backend, test_options());
  server.start();
  httplib::Client cli("127.0.0.1", server.port());

  auto h = cli.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["model"], "fake-teacher");

  json req = {{"query", "sofa"}, {"items", {{{"title", "Harbor Sofa"}}, {{"title", "x"}, {"brand", "B"}}}}};
  auto r = cli.Post("/v1/relevance", req.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json out = json::parse(r->body);
  ASSERT_EQ(out["results"].size(), 2u);
  EXPECT_NEAR(out["results"][0]["grade_probs"]["exact"].get<double>(), 11.0 / 13, 1e-9);
  EXPECT_EQ(out["results"][0]["pred"], "exact");
  EXPECT_EQ(out["results"][1]["pred"], "irrelevant");  // item order kept
  EXPECT_NE(out["results"][0]["cot"].get<std::string>().find("Harbor Sofa"), std::string::npos);

  // Single "item" and cot: false.
  auto r2 = cli.Post("/v1/relevance", json({{"query", "q"}, {"item", {{"title", "t"}}}, {"cot", false}}).dump(),
                     "application/json");
  ASSERT_EQ(r2->status, 200);
  EXPECT_TRUE(json::parse(r2->body)["results"][0]["cot"].is_null());

  json chat = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hello"}}}}, {"max_tokens", 5}};
  auto c = cli.Post("/v1/chat/completions", chat.dump(), "application/json");
  ASSERT_EQ(c->status, 200) << c->body;
  json co = json::parse(c->body);
  EXPECT_EQ(co["object"], "chat.completion");
  EXPECT_EQ(co["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(co["choices"][0]["message"]["content"], "echo: hello");
  EXPECT_EQ(co["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(co["usage"]["total_tokens"], 8);
  server.stop();
}

TEST(Server, BadRequestsAreNamed) {
  auto backend = std::make_shared<FakeBackend>();
  auto opt = test_options();
  opt.max_items = 2;
  opt.max_body_bytes = 4096;
  RelevanceServer server(backend, opt);
  server.start();
  httplib::Client cli("127.0.0.1", server.port());
  auto bad = cli.Post("/v1/relevance", "{not json", "application/json");
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(json::parse(bad->body)["error"]["message"].get<std::string>().find("JSON"), std::string::npos);
  auto noquery = cli.Post("/v1/relevance", R"({"items": [{"title": "x"}]})", "application/json");
  EXPECT_EQ(noquery->status, 400);
  auto notitle = cli.Post("/v1/relevance", R"({"query": "q", "items": [{"brand": "x"}]})", "application/json");
  EXPECT_EQ(notitle->status, 400);
  EXPECT_NE(notitle->body.find("items[0]"), std::string::npos);
  auto many = cli.Post("/v1/relevance", R"({"query": "q", "items": [{"title": "a"}, {"title": "b"}, {"title": "c"}]})",
                       "application/json");
  EXPECT_EQ(many->status, 413);
  auto big = cli.Post("/v1/relevance", std::string(8000, ' '), "application/json");
  EXPECT_EQ(big->status, 413);
  auto stream = cli.Post("/v1/chat/completions",
                         R"({"stream": true, "messages": [{"role": "user", "content": "x"}]})", "application/json");
  EXPECT_EQ(stream->status, 400);
  auto temp = cli.Post("/v1/chat/completions",
                       R"({"temperature": 9, "messages": [{"role": "user", "content": "x"}]})", "application/json");
  EXPECT_EQ(temp->status, 400);
  EXPECT_NE(temp->body.find("temperature"), std::string::npos);
  auto missing = cli.Get("/nope");
  EXPECT_EQ(missing->status, 404);
  server.stop();
}

TEST(Server, QueuedRequestsShareABatchAndAFullQueueAnswers429) {
  auto backend = std::make_shared<FakeBackend>();
  std::promise<void> release;
  backend->gate = release.get_future().share();
  auto opt = test_options();
  opt.max_batch = 4;
  opt.max_queue = 4;
  RelevanceServer server(backend, opt);
  server.start();
  auto post = [&](int i) {
    httplib::Client cli("127.0.0.1", server.port());
    json req = {{"query", "q"}, {"items", {{{"title", std::string(static_cast<size_t>(i + 1), 'a')}}}}};
    auto r = cli.Post("/v1/relevance", req.dump(), "application/json");
    return r ? r->status : -1;
  };
  auto wait_for = [](const std::function<bool()>& cond) {
    for (int i = 0; i < 500 && !cond(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return cond();
  };
  // One request occupies the model (held at the gate); four more fill the queue.
  std::vector<std::thread> clients;
  std::vector<int> status(5, 0);
  clients.emplace_back([&] { status[0] = post(0); });
  ASSERT_TRUE(wait_for([&] { return backend->entered.load() == 1; }));
  for (int i = 1; i <= 4; ++i) clients.emplace_back([&, i] { status[static_cast<size_t>(i)] = post(i); });
  ASSERT_TRUE(wait_for([&] { return server.metrics().render().find("ellm_queue_depth 4\n") != std::string::npos; }));
  // The queue is full: the next request is refused at once, not queued.
  EXPECT_EQ(post(9), 429);
  httplib::Client cli("127.0.0.1", server.port());
  auto two = cli.Post("/v1/relevance", R"({"query": "q", "items": [{"title": "a"}, {"title": "b"}]})", "application/json");
  EXPECT_EQ(two->status, 429);
  release.set_value();
  for (auto& t : clients) t.join();
  for (int s : status) EXPECT_EQ(s, 200);
  EXPECT_EQ(backend->batches.load(), 2);  // the held one, then the four queued together
  EXPECT_EQ(backend->max_batch_seen.load(), 4);

  auto m = cli.Get("/metrics");
  ASSERT_EQ(m->status, 200);
  EXPECT_NE(m->body.find("ellm_requests_total{route=\"/v1/relevance\",code=\"429\"} 2"), std::string::npos);
  EXPECT_NE(m->body.find("ellm_queue_depth 0"), std::string::npos);
  EXPECT_NE(m->body.find("ellm_request_seconds{route=\"/v1/relevance\",quantile=\"0.99\"}"), std::string::npos);
  EXPECT_EQ(server.metrics().counter("ellm_requests_total", "route=\"/v1/relevance\",code=\"200\""), 5);
  server.stop();
  server.stop();  // idempotent
}

TEST(Server, StopFinishesRequestsInFlight) {
  auto backend = std::make_shared<FakeBackend>();
  backend->delay = std::chrono::milliseconds(200);
  RelevanceServer server(backend, test_options());
  server.start();
  int status = 0;
  std::thread client([&] {
    httplib::Client cli("127.0.0.1", server.port());
    auto r = cli.Post("/v1/relevance", R"({"query": "q", "item": {"title": "t"}})", "application/json");
    status = r ? r->status : -1;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  server.stop();
  client.join();
  EXPECT_EQ(status, 200);
}
