// SFT of the decoder teacher: annotations → chat-formatted examples → TrainTask.
#include "ellm/train/sft.h"

#include <algorithm>
#include <filesystem>

#include "ellm/io/atomic_file.h"
#include "ellm/io/jsonl.h"
#include "ellm/text/cot.h"
#include "ellm/util/error.h"
#include "ellm/util/log.h"
#include "ellm/util/strings.h"

namespace ellm {
namespace fs = std::filesystem;

namespace {

std::string cot_text(const json& j, const std::string& where) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_array()) {
    std::string s;
    for (const auto& line : j) {
      if (!line.is_string()) fail("{}: 'cot' lines must be strings", where);
      s += line.get<std::string>() + "\n";
    }
    return s;
  }
  if (j.is_object() && j.contains("text") && j["text"].is_string()) return j["text"].get<std::string>();
  fail("{}: 'cot' must be a string, a list of lines or an object with \"text\"", where);
}

int record_grade(const json& j, const Pair& pair, const GradeScale& grades, const std::string& where) {
  if (!j.contains("grade") || j["grade"].is_null()) {
    if (pair.label < 0) fail("{}: no 'grade' and no 'label'", where);
    return pair.label;
  }
  const json& g = j["grade"];
  int idx = -1;
  if (g.is_number_integer()) idx = g.get<int>();
  else if (g.is_string()) idx = grades.index_of(g.get<std::string>());
  if (idx < 0 || idx >= grades.size())
    fail("{}: grade {} is not one of the dataset's grades ({})", where, g.dump(), json(grades.labels).dump());
  return idx;
}

}  // namespace

std::vector<SftRecord> read_sft_records(const std::string& path, const GradeScale& grades, bool cot,
                                        SftReadStats* stats) {
  SftReadStats local;
  SftReadStats& st = stats ? *stats : local;
  std::vector<SftRecord> out;
  for_each_jsonl(path, [&](const json& j, const JsonlReader& reader) {
    std::string where = reader.where();
    ++st.read;
    if (j.value("flagged", false)) {
      ++st.flagged;
      return;
    }
    SftRecord r;
    r.pair = pair_from_json(j, where);
    int grade = record_grade(j, r.pair, grades, where);
    const std::string conclusion = "[conclusion] " + grades.labels[grade] + "\n";
    if (!cot) {
      r.target = conclusion;
    } else {
      if (!j.contains("cot")) fail("{}: no 'cot' (set data.cot=false to train on grades alone)", where);
      std::string text = cot_text(j["cot"], where);
      if (to_lower_ascii(text).find("[conclusion]") == std::string::npos) {
        if (!text.empty() && text.back() != '\n') text += '\n';
        text += conclusion;
      }
      try {
        Cot parsed = parse_cot(text, grades);
        parsed.conclusion = grades.labels[grade];  // the record's (agreed) grade is the target
        parsed.grade = grade;
        r.target = write_cot(parsed);
      } catch (const CotParseError& e) {
        ++st.unparsed;
        spdlog::warn("{}: CoT does not parse, dropped: {}", where, e.what());
        return;
      }
    }
    out.push_back(std::move(r));
  });
  return out;
}

std::vector<SftExample> encode_sft(const std::vector<SftRecord>& records, const PromptTemplate& prompt,
                                   const ChatTemplate& chat, const Tokenizer& tok, const GradeScale& grades,
                                   int64_t max_length, int64_t* dropped) {
  std::vector<SftExample> out;
  int64_t too_long = 0;
  for (const auto& r : records) {
    std::vector<ChatMessage> messages = render_chat(prompt, r.pair, grades);
    messages.push_back({"assistant", r.target});
    ChatEncoding enc = chat.encode(messages, tok);
    if (max_length > 0 && static_cast<int64_t>(enc.ids.size()) > max_length) {
      ++too_long;
      continue;
    }
    SftExample ex;
    ex.id = r.pair.id;
    ex.ids = std::move(enc.ids);
    ex.response_mask = std::move(enc.response_mask);
    for (size_t t = 1; t < ex.response_mask.size(); ++t) ex.units += ex.response_mask[t] ? 1 : 0;
    if (ex.units == 0) fail("pair {}: the chat template marks no response tokens", ex.id);
    out.push_back(std::move(ex));
  }
  if (too_long > 0) spdlog::warn("{} examples longer than max_length {} dropped", too_long, max_length);
  if (dropped) *dropped = too_long;
  return out;
}

SftTask::SftTask(Decoder model, std::vector<SftExample> train, std::vector<SftExample> eval, SftOptions options)
    : model_(std::move(model)), train_(std::move(train)), eval_(std::move(eval)), options_(std::move(options)) {
  ELLM_CHECK(!train_.empty(), "fine-tuning needs at least one training example");
  if (options_.lora) apply_lora(model_, options_.lora_config, options_.seed);
  model_->set_gradient_checkpointing(options_.gradient_checkpointing);
  model_->train();
}

double SftTask::count_units(const std::vector<int64_t>& examples) const {
  double n = 0;
  for (int64_t i : examples) n += static_cast<double>(train_[i].units);
  return n;
}

at::Tensor SftTask::batch_loss(const std::vector<const SftExample*>& batch, int64_t* tokens) {
  int64_t B = static_cast<int64_t>(batch.size()), T = 0, n_tokens = 0;
  for (const auto* e : batch) T = std::max<int64_t>(T, e->ids.size());
  auto ids = torch::full({B, T}, options_.pad_id, torch::kInt64);
  auto resp = torch::zeros({B, T}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) {
    const auto& e = *batch[b];
    int64_t n = e.ids.size();
    n_tokens += n;
    std::copy(e.ids.begin(), e.ids.end(), ids[b].data_ptr<int64_t>());
    auto* r = resp[b].data_ptr<bool>();
    for (int64_t t = 0; t < n; ++t) r[t] = e.response_mask[t] != 0;
  }
  if (tokens) *tokens = n_tokens;
  const torch::Device dev = model_->device();
  ids = ids.to(dev);
  resp = resp.to(dev);
  // Right padding needs no attention mask: causal attention never lets a real token see the
  // padding after it, and positions of real tokens are unchanged.
  torch::Tensor h = model_->hidden_states(ids);
  torch::Tensor sel = resp.narrow(1, 1, T - 1);  // token t is predicted at position t-1
  torch::Tensor hs = h.narrow(1, 0, T - 1).index({sel});
  torch::Tensor targets = ids.narrow(1, 1, T - 1).index({sel});
  // Logits only where the loss is, one chunk of rows at a time (never the whole [N, V]
  // full-vocabulary head, the biggest tensor of a step).
  return model_->lm_loss(hs, targets, /*sum=*/true);
}

MicroBatchLoss SftTask::loss(const std::vector<int64_t>& examples) {
  std::vector<const SftExample*> batch;
  for (int64_t i : examples) batch.push_back(&train_[i]);
  int64_t tokens = 0;
  at::Tensor l = batch_loss(batch, &tokens);
  return {l, {{"ce", l.item<double>()}}, tokens};
}

std::pair<double, int64_t> SftTask::loss_of(const std::vector<SftExample>& examples, int64_t batch) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  int64_t units = 0;
  for (size_t start = 0; start < examples.size(); start += static_cast<size_t>(batch)) {
    std::vector<const SftExample*> b;
    for (size_t i = start; i < std::min(examples.size(), start + static_cast<size_t>(batch)); ++i) {
      b.push_back(&examples[i]);
      units += examples[i].units;
    }
    sum += batch_loss(b, nullptr).item<double>();
  }
  return {sum, units};
}

std::vector<std::pair<std::string, at::Tensor>> SftTask::trainable_parameters() {
  return options_.lora ? lora_parameters(model_) : model_->base_parameters();
}

void SftTask::set_training(bool training) { model_->train(training); }

EvalResult SftTask::evaluate() {
  EvalResult r;
  if (eval_.empty()) return r;
  auto [sum, units] = loss_of(eval_, options_.eval_batch);
  double loss = sum / std::max<int64_t>(units, 1);
  r.metrics = {{"eval_loss", loss}, {"eval_tokens", units}, {"eval_examples", eval_.size()}};
  r.score = -loss;
  r.has_score = true;
  return r;
}

void SftTask::save_model(const std::string& dir) {
  ensure_dir(dir);
  save_decoder(model_, dir);
  if (options_.lora) {
    LoraConfig cfg = options_.lora_config;
    cfg.base_model_name_or_path = ".";
    save_adapter(model_, cfg, dir);
    if (options_.merge_final) {
      // Merge a copy loaded from what was just written, so that the live model keeps training.
      Decoder merged = load_decoder(dir, model_->dtype(), torch::kCPU);
      load_adapter(merged, dir);
      merge_lora(merged);
      save_decoder(merged, dir);
      fs::remove(fs::path(dir) / "adapter_config.json");
      fs::remove(fs::path(dir) / "adapter_model.safetensors");
    }
  }
  for (const auto& [src, name] : options_.files_to_copy)
    fs::copy_file(src, fs::path(dir) / name, fs::copy_options::overwrite_existing);
  json info = options_.teacher_info;
  info["lora"] = options_.lora;
  info["merged"] = !options_.lora || options_.merge_final;
  write_file_atomic((fs::path(dir) / "ellm_teacher.json").string(), info.dump(2) + "\n");
}

std::string SftTask::describe(const std::vector<int64_t>& examples) const {
  std::string s = "pairs ";
  for (size_t i = 0; i < examples.size() && i < 8; ++i) s += (i ? ", " : "") + train_[examples[i]].id;
  if (examples.size() > 8) s += fmt::format(", … ({} in all)", examples.size());
  return s;
}

}  // namespace ellm
