#include "ellm/annotate/openai.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "ellm/io/jsonl.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"
#include "ellm/util/progress.h"
#include "ellm/util/strings.h"

namespace ellm {

json OpenAiOptions::to_json() const {
  return {{"base_url", base_url},
          {"model", model},
          {"api_key_env", api_key_env},
          {"prompt", prompt},
          {"temperature", temperature},
          {"n", n},
          {"max_tokens", max_tokens},
          {"concurrency", concurrency},
          {"tries", tries},
          {"backoff_initial_s", backoff_initial_s},
          {"backoff_max_s", backoff_max_s},
          {"timeout_s", timeout_s},
          {"cache", cache}};
}

json openai_default_options() { return OpenAiOptions{}.to_json(); }

OpenAiOptions parse_openai_spec(const std::string& rest, const json& defaults, const std::string& cache_dir) {
  json cfg = openai_default_options();
  merge_config(cfg, defaults, "annotate config 'openai'");
  auto parts = split(rest, ',');
  size_t first = 0;
  if (!parts.empty() && !parts[0].empty() && parts[0].find('=') == std::string::npos) {
    if (ends_with(parts[0], ".json")) merge_config(cfg, read_json_file(parts[0]), parts[0]);
    else cfg["base_url"] = parts[0];
    first = 1;
  }
  for (size_t i = first; i < parts.size(); ++i) {
    if (trim(parts[i]).empty()) continue;
    apply_override(cfg, trim(parts[i]));
  }
  OpenAiOptions o;
  try {
    o.base_url = cfg.at("base_url").get<std::string>();
    o.model = cfg.at("model").get<std::string>();
    o.api_key_env = cfg.at("api_key_env").get<std::string>();
    o.prompt = cfg.at("prompt").get<std::string>();
    o.temperature = cfg.at("temperature").get<double>();
    o.n = cfg.at("n").get<int>();
    o.max_tokens = cfg.at("max_tokens").get<int>();
    o.concurrency = cfg.at("concurrency").get<int>();
    o.tries = cfg.at("tries").get<int>();
    o.backoff_initial_s = cfg.at("backoff_initial_s").get<double>();
    o.backoff_max_s = cfg.at("backoff_max_s").get<double>();
    o.timeout_s = cfg.at("timeout_s").get<double>();
    o.cache = cfg.at("cache").get<std::string>();
  } catch (const json::exception& e) {
    fail("annotator 'openai:{}': {}", rest, e.what());
  }
  if (o.base_url.empty()) fail("annotator 'openai:{}': no base URL (openai:http://host:port/v1,...)", rest);
  if (o.n < 1 || o.tries < 1 || o.concurrency < 1 || o.max_tokens < 1)
    fail("annotator 'openai:{}': n, tries, concurrency and max_tokens must be >= 1", rest);
  if (o.cache.empty() && !cache_dir.empty()) {
    std::string safe;
    for (char c : o.model) safe += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
    o.cache = (std::filesystem::path(cache_dir) / ("openai-" + safe + ".jsonl")).string();
  }
  return o;
}

OpenAiAnnotator::OpenAiAnnotator(OpenAiOptions options, const GradeScale& grades)
    : opt_(std::move(options)), grades_(grades), prompt_(load_prompt_template(opt_.prompt, grades)) {
  const char* key = std::getenv(opt_.api_key_env.c_str());
  if (key) api_key_ = key;
  // "http://host:port/v1" → client "http://host:port", path "/v1/chat/completions".
  auto scheme = opt_.base_url.find("://");
  if (scheme == std::string::npos) fail("openai base URL '{}' needs a scheme (http:// or https://)", opt_.base_url);
  auto slash = opt_.base_url.find('/', scheme + 3);
  host_ = slash == std::string::npos ? opt_.base_url : opt_.base_url.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : opt_.base_url.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  path_ = prefix + "/chat/completions";
  if (!opt_.cache.empty() && std::filesystem::exists(opt_.cache)) {
    JsonlOptions jo;
    jo.allow_truncated_tail = true;
    for_each_jsonl(
        opt_.cache,
        [&](const json& j, const JsonlReader& r) {
          if (!j.is_object() || !j.contains("key") || !j.contains("samples"))
            fail("{}: cache lines need 'key' and 'samples'", r.where());
          cache_[j["key"].get<std::string>()] = j["samples"].get<std::vector<std::string>>();
        },
        jo);
  }
  spdlog::info("annotator openai: {} model {} (n={}, temperature={}, concurrency={}, key {}), cache {} ({} entries)",
               opt_.base_url, opt_.model, opt_.n, opt_.temperature, opt_.concurrency,
               api_key_.empty() ? "not set" : "from $" + opt_.api_key_env, opt_.cache.empty() ? "off" : opt_.cache,
               cache_.size());
}

std::string OpenAiAnnotator::cache_key(const json& messages) const {
  std::string s = fmt::format("{}\n{}\n{}\n{}\n{}", opt_.model, opt_.temperature, opt_.n, opt_.max_tokens, messages.dump());
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  uint64_t h2 = 0x84222325cbf29ce4ull;  // a second hash so that keys do not collide in practice
  for (unsigned char c : s) h2 = (h2 ^ c) * 0x100000001b3ull + 0x9e3779b9ull;
  return fmt::format("{:016x}{:016x}", h, h2);
}

AnnotatorAnswer OpenAiAnnotator::ask(const Pair& pair, const std::string& key, const json& messages) {
  AnnotatorAnswer ans;
  httplib::Client cli(host_);
  auto secs = [](double s) {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::duration<double>(s));
  };
  cli.set_connection_timeout(secs(opt_.timeout_s));
  cli.set_read_timeout(secs(opt_.timeout_s));
  cli.set_write_timeout(secs(opt_.timeout_s));
  httplib::Headers headers;
  if (!api_key_.empty()) headers.emplace("Authorization", "Bearer " + api_key_);
  std::string last_error;
  int attempt = 0;
  while (static_cast<int>(ans.samples.size()) < opt_.n) {
    if (attempt >= opt_.tries) {
      ans.failed = true;
      ans.error = fmt::format("gave up after {} tries: {}", attempt, last_error);
      ans.samples.clear();
      return ans;
    }
    ++attempt;
    ++requests_;
    json body = {{"model", opt_.model},
                 {"messages", messages},
                 {"temperature", opt_.temperature},
                 {"n", opt_.n - static_cast<int>(ans.samples.size())},
                 {"max_tokens", opt_.max_tokens}};
    auto res = cli.Post(path_, headers, body.dump(), "application/json");
    double retry_after = -1;
    bool retry = true;
    if (!res) {
      last_error = "request failed: " + httplib::to_string(res.error());
      ++timeouts_;
    } else if (res->status == 200) {
      json j = json::parse(res->body, nullptr, false);
      bool ok = !j.is_discarded() && j.is_object() && j.contains("choices") && j["choices"].is_array() &&
                !j["choices"].empty();
      std::vector<std::string> got;
      if (ok)
        for (const auto& c : j["choices"]) {
          if (!c.is_object() || !c.contains("message") || !c["message"].is_object() ||
              !c["message"].contains("content") || !c["message"]["content"].is_string()) {
            ok = false;
            break;
          }
          got.push_back(c["message"]["content"].get<std::string>());
        }
      if (ok) {
        for (auto& g : got)
          if (static_cast<int>(ans.samples.size()) < opt_.n) ans.samples.push_back(std::move(g));
        continue;  // more samples needed: ask again at once
      }
      ++malformed_;
      last_error = "malformed response: " + res->body.substr(0, 200);
    } else {
      ++http_errors_;
      last_error = fmt::format("HTTP {}: {}", res->status, res->body.substr(0, 200));
      retry = res->status == 429 || res->status >= 500;
      if (res->has_header("Retry-After")) {
        try {
          retry_after = std::stod(res->get_header_value("Retry-After"));
        } catch (...) {
          retry_after = -1;  // an HTTP date: fall back to the backoff
        }
      }
    }
    if (!retry) {
      ans.failed = true;
      ans.error = last_error;
      ans.samples.clear();
      return ans;
    }
    if (attempt >= opt_.tries) continue;
    ++retries_;
    double wait = retry_after >= 0 ? std::min(retry_after, opt_.backoff_max_s)
                                   : std::min(opt_.backoff_max_s, opt_.backoff_initial_s * std::pow(2.0, attempt - 1));
    spdlog::debug("openai: pair {}: {} — retry {} in {:.2f}s", pair.id, last_error, attempt, wait);
    std::this_thread::sleep_for(secs(wait));
  }
  return ans;
}

std::vector<AnnotatorAnswer> OpenAiAnnotator::annotate(const std::vector<Pair>& pairs) {
  std::vector<AnnotatorAnswer> out(pairs.size());
  std::vector<std::string> keys(pairs.size());
  std::vector<json> messages(pairs.size());
  std::vector<size_t> todo;
  for (size_t i = 0; i < pairs.size(); ++i) {
    json m = json::array();
    for (const auto& msg : render_chat(prompt_, pairs[i], grades_)) m.push_back({{"role", msg.role}, {"content", msg.content}});
    keys[i] = cache_key(m);
    messages[i] = std::move(m);
    auto hit = cache_.find(keys[i]);
    if (hit != cache_.end()) {
      out[i].samples = hit->second;
      ++cache_hits_;
    } else {
      todo.push_back(i);
    }
  }
  if (todo.empty()) return out;
  std::unique_ptr<JsonlAppender> appender;
  if (!opt_.cache.empty()) {
    auto parent = std::filesystem::path(opt_.cache).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    appender = std::make_unique<JsonlAppender>(opt_.cache);
  }
  Progress progress("annotate " + name(), static_cast<int64_t>(todo.size()), "pairs");
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t t = next++; t < todo.size(); t = next++) {
      size_t i = todo[t];
      AnnotatorAnswer a = ask(pairs[i], keys[i], messages[i]);
      std::lock_guard<std::mutex> lock(mu_);
      if (a.failed) {
        ++failed_;
        spdlog::warn("openai: pair {} failed: {}", pairs[i].id, a.error);
      } else {
        ++answered_;
        cache_[keys[i]] = a.samples;
        if (appender) appender->write({{"key", keys[i]}, {"id", pairs[i].id}, {"samples", a.samples}});
      }
      out[i] = std::move(a);
      progress.advance();
    }
  };
  std::vector<std::thread> threads;
  int n_threads = std::min<int>(opt_.concurrency, static_cast<int>(todo.size()));
  for (int t = 0; t < n_threads; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  progress.finish();
  return out;
}

json OpenAiAnnotator::stats() const {
  json o = opt_.to_json();
  return {{"options", o},
          {"requests", requests_.load()},
          {"retries", retries_.load()},
          {"timeouts_or_connection_errors", timeouts_.load()},
          {"malformed_responses", malformed_.load()},
          {"http_errors", http_errors_.load()},
          {"cache_hits", cache_hits_.load()},
          {"answered", answered_.load()},
          {"failed", failed_.load()}};
}

}  // namespace ellm
