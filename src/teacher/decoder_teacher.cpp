#include "ellm/teacher/decoder_teacher.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include "ellm/models/generate.h"
#include "ellm/models/lora.h"
#include "ellm/teacher/grade_distribution.h"
#include "ellm/teacher/record.h"
#include "ellm/util/error.h"
#include "ellm/util/log.h"
#include "ellm/util/strings.h"

namespace fs = std::filesystem;

namespace ellm {

std::string cot_body(const std::string& generated) {
  size_t pos = to_lower_ascii(generated).rfind("[conclusion]");
  std::string body = generated.substr(0, pos == std::string::npos ? generated.size() : pos);
  while (!body.empty() && (body.back() == ' ' || body.back() == '\t')) body.pop_back();
  if (!body.empty() && body.back() != '\n') body += '\n';
  return body;
}

namespace {

// The small JSON `ellm finetune` leaves next to the model: which prompt and chat templates it trained with.
json read_teacher_json(const std::string& dir) {
  fs::path p = fs::path(dir) / "ellm_teacher.json";
  if (!fs::is_regular_file(p)) return json::object();
  std::ifstream in(p);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("{}: not a JSON object", p.string());
  return j;
}

}  // namespace

GradeScale teacher_grades(const std::string& model_dir) {
  json meta = read_teacher_json(model_dir);
  if (meta.contains("grades")) return GradeScale::from_json(meta["grades"], model_dir + "/ellm_teacher.json");
  return GradeScale{};
}

DecoderTeacher::DecoderTeacher(DecoderTeacherOptions options) : options_(std::move(options)) {
  json meta = read_teacher_json(options_.model_dir);
  DecoderConfig cfg = DecoderConfig::load(options_.model_dir);
  if (options_.chat_template.empty())
    options_.chat_template =
        meta.value("chat_template", cfg.model_type == "llama" ? std::string("llama3") : std::string("qwen2"));
  if (options_.prompt_template.empty()) {
    options_.prompt_template = meta.value("prompt_template", std::string("configs/prompts/teacher.json"));
    // finetune copies the prompt it trained with into the model dir and names it relative to it.
    fs::path inside = fs::path(options_.model_dir) / options_.prompt_template;
    if (fs::path(options_.prompt_template).is_relative() && fs::is_regular_file(inside))
      options_.prompt_template = inside.string();
  }
  // A final/ kept as base + PEFT adapter (finetune without merging) carries its adapter inside.
  if (options_.adapter_dir.empty() && fs::is_regular_file(fs::path(options_.model_dir) / "adapter_config.json"))
    options_.adapter_dir = options_.model_dir;
  chat_ = ChatTemplate::load(options_.chat_template);
  prompt_ = load_prompt_template(options_.prompt_template, options_.grades);
  tok_ = load_tokenizer(options_.model_dir);
  model_ = load_decoder(options_.model_dir, options_.dtype, options_.device);
  if (!options_.adapter_dir.empty()) {
    load_adapter(model_, options_.adapter_dir);
    merge_lora(model_);  // inference only: fold the adapter in once
  }
  model_->eval();
  spdlog::info("teacher: {}", describe());
}

DecoderTeacher::DecoderTeacher(DecoderTeacherOptions options, Decoder model, std::shared_ptr<Tokenizer> tok,
                               ChatTemplate chat, PromptTemplate prompt)
    : options_(std::move(options)), model_(std::move(model)), tok_(std::move(tok)), chat_(std::move(chat)),
      prompt_(std::move(prompt)) {
  if (options_.chat_template.empty()) options_.chat_template = chat_.name();
  if (options_.prompt_template.empty()) options_.prompt_template = prompt_.source;
  model_->eval();
}

std::string DecoderTeacher::describe() const {
  return fmt::format("{}{} (chat {}, prompt {}{})", options_.model_dir,
                     options_.adapter_dir.empty() ? "" : " + adapter " + options_.adapter_dir, chat_.name(),
                     options_.prompt_template, options_.no_cot ? ", no CoT" : "");
}

std::string DecoderTeacher::model_name() const { return fs::path(options_.model_dir).filename().string(); }

std::vector<int64_t> DecoderTeacher::prompt_ids(const Pair& pair) const {
  return chat_.encode_prompt(render_chat(prompt_, pair, options_.grades), *tok_);
}

int64_t DecoderTeacher::cost(const Pair& pair) const { return static_cast<int64_t>(prompt_ids(pair).size()); }

std::vector<int64_t> DecoderTeacher::stop_ids() const {
  std::vector<int64_t> ids;
  for (const auto& s : chat_.stop_tokens())
    if (auto id = tok_->token_to_id(s)) ids.push_back(*id);
  if (auto eos = tok_->eos_id()) ids.push_back(*eos);
  return ids;
}

std::vector<std::string> DecoderTeacher::generate_cots(const std::vector<Pair>& pairs) {
  std::vector<std::vector<int64_t>> prompts;
  for (const Pair& p : pairs) prompts.push_back(prompt_ids(p));
  GenerateOptions g;
  g.max_new_tokens = options_.max_new_tokens;
  g.temperature = 0;
  g.stop_ids = stop_ids();
  c10::InferenceMode inference;  // read-only scoring: nothing here meets autograd
  auto out = generate(model_, prompts, g, tok_.get());
  std::vector<std::string> texts;
  for (const auto& ids : out) texts.push_back(tok_->decode(ids, true));
  return texts;
}

std::vector<std::vector<double>> DecoderTeacher::token_logprobs(const std::vector<std::vector<int64_t>>& sequences,
                                                                const std::vector<std::vector<int64_t>>& wanted) {
  c10::InferenceMode inference;  // read-only scoring: nothing here meets autograd
  std::vector<std::vector<double>> out(sequences.size());
  // Similar lengths together: less padding per forward.
  std::vector<size_t> order(sequences.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sequences[a].size() > sequences[b].size(); });
  int64_t pad = tok_->pad_id().value_or(0);
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(options_.score_batch)) {
    size_t end = std::min(order.size(), start + static_cast<size_t>(options_.score_batch));
    int64_t len = static_cast<int64_t>(sequences[order[start]].size());
    int64_t b = static_cast<int64_t>(end - start);
    auto ids = torch::full({b, len}, pad, torch::kInt64);
    auto mask = torch::zeros({b, len}, torch::kInt64);
    for (size_t r = start; r < end; ++r) {
      const auto& s = sequences[order[r]];
      int64_t off = len - static_cast<int64_t>(s.size());  // left padding: every row ends at the last column
      auto row = torch::tensor(s, torch::kInt64);
      ids[static_cast<int64_t>(r - start)].slice(0, off, len).copy_(row);
      mask[static_cast<int64_t>(r - start)].slice(0, off, len).fill_(1);
    }
    auto logits = model_->forward(ids.to(options_.device), mask.to(options_.device), nullptr, 1);  // [b,1,V]
    auto lp = torch::log_softmax(logits.select(1, 0).to(torch::kFloat64), -1).cpu();
    auto acc = lp.accessor<double, 2>();
    for (size_t r = start; r < end; ++r)
      for (int64_t t : wanted[order[r]]) out[order[r]].push_back(acc[static_cast<int64_t>(r - start)][t]);
  }
  return out;
}

std::vector<std::vector<double>> DecoderTeacher::distributions(const std::vector<Pair>& pairs,
                                                               const std::vector<const std::string*>& cots) {
  std::vector<GradeTokens> items;
  for (size_t i = 0; i < pairs.size(); ++i) {
    std::string before = chat_.render(render_chat(prompt_, pairs[i], options_.grades), true);
    if (cots[i]) before += cot_body(*cots[i]);
    before += "[conclusion] ";
    items.push_back(grade_tokens(*tok_, {}, before, options_.grades.labels));
  }
  return grade_distributions(
      [this](const auto& s, const auto& w) { return token_logprobs(s, w); }, items);
}

std::vector<TeacherOutput> DecoderTeacher::run(const std::vector<Pair>& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TeacherOutput> out(batch.size());
  std::vector<const std::string*> cots(batch.size(), nullptr);
  if (!options_.no_cot) {
    auto texts = generate_cots(batch);
    for (size_t i = 0; i < batch.size(); ++i) out[i].cot = std::move(texts[i]);
    for (size_t i = 0; i < batch.size(); ++i) cots[i] = &out[i].cot;
  }
  auto dists = distributions(batch, cots);
  for (size_t i = 0; i < batch.size(); ++i) out[i].grade_probs = std::move(dists[i]);
  return out;
}

std::vector<RelevanceAnswer> DecoderTeacher::relevance(const std::vector<RelevanceQuery>& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Pair> with_cot, pairs;
  for (const auto& q : batch) {
    pairs.push_back(q.pair);
    if (q.cot) with_cot.push_back(q.pair);
  }
  auto texts = with_cot.empty() ? std::vector<std::string>{} : generate_cots(with_cot);
  std::vector<const std::string*> cots(batch.size(), nullptr);
  for (size_t i = 0, c = 0; i < batch.size(); ++i)
    if (batch[i].cot) cots[i] = &texts[c++];
  auto dists = distributions(pairs, cots);
  std::vector<RelevanceAnswer> out;
  for (size_t i = 0; i < batch.size(); ++i) {
    TeacherRecord r = make_teacher_record(batch[i].pair, cots[i], dists[i], options_.grades);
    RelevanceAnswer a;
    a.grade_probs = r.grade_probs;
    a.score = r.score;
    a.pred = r.pred;
    a.has_cot = r.has_cot;
    a.cot = r.cot;
    a.flagged = r.flagged;
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<ChatAnswer> DecoderTeacher::chat(const std::vector<ChatQuery>& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ChatAnswer> out(batch.size());
  // Requests with the same decoding options share one generate() call.
  std::map<std::tuple<int64_t, double, double, uint64_t, std::vector<std::string>>, std::vector<size_t>> groups;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& q = batch[i];
    groups[{q.max_tokens, q.temperature, q.top_p, q.seed, q.stop}].push_back(i);
  }
  c10::InferenceMode inference;  // read-only scoring: nothing here meets autograd
  for (const auto& [key, members] : groups) {
    std::vector<std::vector<int64_t>> prompts;
    for (size_t i : members) prompts.push_back(chat_.encode_prompt(batch[i].messages, *tok_));
    GenerateOptions g;
    g.max_new_tokens = std::get<0>(key);
    g.temperature = std::get<1>(key);
    g.top_p = std::get<2>(key);
    g.seed = std::get<3>(key);
    g.stop_ids = stop_ids();
    g.stop_strings = std::get<4>(key);
    auto gen = generate(model_, prompts, g, tok_.get());
    for (size_t m = 0; m < members.size(); ++m) {
      ChatAnswer& a = out[members[m]];
      a.content = tok_->decode(gen[m], true);
      // A stop string ends the text where it starts (OpenAI leaves it out).
      for (const auto& s : std::get<4>(key)) {
        size_t p = a.content.find(s);
        if (!s.empty() && p != std::string::npos) a.content.resize(p);
      }
      a.prompt_tokens = static_cast<int64_t>(prompts[m].size());
      a.completion_tokens = static_cast<int64_t>(gen[m].size());
      a.finish_reason = a.completion_tokens >= g.max_new_tokens ? "length" : "stop";
    }
  }
  return out;
}

}  // namespace ellm
