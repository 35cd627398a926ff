#include "ellm/models/student.h"

#include <filesystem>

#include "ellm/io/atomic_file.h"
#include "ellm/io/checkpoint.h"
#include "ellm/text/item_text.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"

namespace fs = std::filesystem;

namespace ellm {

const char* student_model_type(StudentKind kind) {
  return kind == StudentKind::cross_encoder ? "ellm-cross-encoder" : "ellm-two-tower";
}

json StudentConfig::to_json() const {
  json j = bert.to_json();
  j["model_type"] = student_model_type(kind);
  j["architectures"] = json::array({kind == StudentKind::cross_encoder ? "EllmCrossEncoder" : "EllmTwoTower"});
  json id2label = json::object(), label2id = json::object();
  for (int k = 0; k < grades.size(); ++k) {
    id2label[std::to_string(k)] = grades.labels[k];
    label2id[grades.labels[k]] = k;
  }
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  j["ellm"] = {{"grade_labels", grades.labels},
               {"grade_values", grades.values},
               {"positive_from", grades.positive_from},
               {"max_length", limits.max_length},
               {"max_query_length", limits.max_query_length},
               {"max_item_length", limits.max_item_length},
               {"max_query_tokens", limits.max_query_tokens},
               {"shared_towers", shared_towers},
               {"projection_dim", projection_dim},
               {"tokenizer", tokenizer_file}};
  return j;
}

StudentConfig StudentConfig::from_json(const json& j, const std::string& where) {
  StudentConfig c;
  std::string type = j.value("model_type", "");
  if (type == "ellm-cross-encoder")
    c.kind = StudentKind::cross_encoder;
  else if (type == "ellm-two-tower")
    c.kind = StudentKind::two_tower;
  else
    fail("{}: model_type '{}' is not a student (ellm-cross-encoder or ellm-two-tower)", where, type);
  c.bert = BertConfig::from_json(j, where);
  ELLM_CHECK(j.contains("ellm") && j["ellm"].is_object(), "{}: the 'ellm' object is missing", where);
  const json& e = j["ellm"];
  try {
    c.grades.labels = e.at("grade_labels").get<std::vector<std::string>>();
    c.grades.values = e.at("grade_values").get<std::vector<double>>();
    c.grades.positive_from = e.at("positive_from").get<int>();
    c.limits.max_length = e.at("max_length").get<int64_t>();
    c.limits.max_query_length = e.at("max_query_length").get<int64_t>();
    c.limits.max_item_length = e.at("max_item_length").get<int64_t>();
    c.limits.max_query_tokens = e.at("max_query_tokens").get<int64_t>();
    c.shared_towers = e.at("shared_towers").get<bool>();
    c.projection_dim = e.at("projection_dim").get<int64_t>();
    c.tokenizer_file = e.at("tokenizer").get<std::string>();
  } catch (const json::exception& ex) {
    fail("{}: bad 'ellm' object: {}", where, ex.what());
  }
  ELLM_CHECK(c.grades.labels.size() == c.grades.values.size() && c.grades.size() >= 2,
             "{}: ellm.grade_labels and ellm.grade_values must have the same length (≥ 2)", where);
  ELLM_CHECK(c.limits.max_length <= c.bert.max_position_embeddings &&
                 c.limits.max_item_length <= c.bert.max_position_embeddings &&
                 c.limits.max_query_length <= c.bert.max_position_embeddings,
             "{}: input lengths exceed max_position_embeddings {}", where, c.bert.max_position_embeddings);
  return c;
}

Student::Student(StudentConfig config, std::shared_ptr<const Tokenizer> tokenizer, uint64_t seed)
    : config_(std::move(config)), tokenizer_(std::move(tokenizer)), inputs_(tokenizer_, config_.limits) {
  ELLM_CHECK(tokenizer_->vocab_size() <= config_.bert.vocab_size,
             "the tokenizer ({}) has {} tokens but the model's vocab_size is {}", tokenizer_->describe(),
             tokenizer_->vocab_size(), config_.bert.vocab_size);
  if (config_.kind == StudentKind::cross_encoder) {
    cross_ = CrossEncoder(config_.bert, config_.grades.size());
    cross_->init_weights(seed);
  } else {
    tower_ = TwoTower(config_.bert, config_.shared_towers, config_.projection_dim, config_.grades.size());
    tower_->init_weights(seed);
  }
}

torch::nn::Module& Student::module() {
  if (cross_) return *cross_;
  return *tower_;
}

std::vector<std::pair<std::string, torch::Tensor>> Student::named_weights() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& item : module().named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

void Student::set_inference_dtype(c10::ScalarType dtype) {
  if (cross_) {
    cross_->bert()->set_inference_dtype(dtype);
  } else {
    tower_->tower(0)->set_inference_dtype(dtype);
    tower_->tower(1)->set_inference_dtype(dtype);
  }
  inference_dtype_ = dtype;
}

torch::Tensor Student::grade_probs(const std::vector<Pair>& pairs, int64_t batch) {
  ELLM_CHECK(batch > 0, "batch must be positive");
  c10::InferenceMode inference;
  bool was_training = module().is_training();
  module().eval();
  std::vector<torch::Tensor> parts;
  for (size_t start = 0; start < pairs.size(); start += batch) {
    size_t end = std::min(pairs.size(), start + static_cast<size_t>(batch));
    if (config_.kind == StudentKind::cross_encoder) {
      std::vector<StudentTokens> rows;
      for (size_t i = start; i < end; ++i) rows.push_back(inputs_.cross(pairs[i].query, item_text(pairs[i].item)));
      std::vector<const StudentTokens*> ptrs;
      for (auto& r : rows) ptrs.push_back(&r);
      TokenBatch b = collate(ptrs, inputs_.special().pad);
      parts.push_back(torch::softmax(cross_->forward(b.ids, b.types, b.mask, false).grade_logits, -1));
    } else {
      std::vector<StudentTokens> qs, is;
      for (size_t i = start; i < end; ++i) {
        qs.push_back(inputs_.query_tower(pairs[i].query));
        is.push_back(inputs_.item_tower(item_text(pairs[i].item)));
      }
      std::vector<const StudentTokens*> qp, ip;
      for (auto& r : qs) qp.push_back(&r);
      for (auto& r : is) ip.push_back(&r);
      TokenBatch qb = collate(qp, inputs_.special().pad), ib = collate(ip, inputs_.special().pad);
      auto q = tower_->encode(0, qb.ids, qb.mask, qb.content), it = tower_->encode(1, ib.ids, ib.mask, ib.content);
      parts.push_back(torch::softmax(tower_->grade_logits(tower_->score(q.embedding, it.embedding)), -1));
    }
  }
  module().train(was_training);
  if (parts.empty()) return torch::zeros({0, config_.grades.size()});
  return torch::cat(parts, 0);
}

torch::Tensor Student::item_embeddings(const std::vector<Item>& items, int64_t batch) {
  ELLM_CHECK(config_.kind == StudentKind::two_tower, "item embeddings exist only for two-tower students");
  ELLM_CHECK(batch > 0, "batch must be positive");
  c10::InferenceMode inference;
  bool was_training = module().is_training();
  module().eval();
  std::vector<torch::Tensor> parts;
  for (size_t start = 0; start < items.size(); start += batch) {
    size_t end = std::min(items.size(), start + static_cast<size_t>(batch));
    std::vector<StudentTokens> rows;
    for (size_t i = start; i < end; ++i) rows.push_back(inputs_.item_tower(item_text(items[i])));
    std::vector<const StudentTokens*> ptrs;
    for (auto& r : rows) ptrs.push_back(&r);
    TokenBatch b = collate(ptrs, inputs_.special().pad);
    parts.push_back(tower_->encode(1, b.ids, b.mask, b.content).embedding);
  }
  module().train(was_training);
  if (parts.empty()) return torch::zeros({0, config_.projection_dim});
  return torch::cat(parts, 0);
}

std::string tokenizer_source_path(const Tokenizer& tokenizer) {
  std::string d = tokenizer.describe();
  auto colon = d.find(':');
  ELLM_CHECK(colon != std::string::npos, "tokenizer description '{}' names no file", d);
  return d.substr(colon + 1);
}

void save_student(Student& student, const std::string& dir, const std::string& tokenizer_path) {
  ensure_dir(dir);
  StudentConfig config = student.config();
  if (!tokenizer_path.empty()) {
    ELLM_CHECK(fs::is_regular_file(tokenizer_path), "student tokenizer file {} does not exist", tokenizer_path);
    config.tokenizer_file = fs::path(tokenizer_path).filename().string();
    fs::path dest = fs::path(dir) / config.tokenizer_file;
    std::error_code ec;
    if (!fs::exists(dest) || !fs::equivalent(dest, tokenizer_path, ec))
      write_file_atomic(dest.string(), read_file(tokenizer_path));
  }
  write_file_atomic((fs::path(dir) / "config.json").string(), config.to_json().dump(2) + "\n");
  NamedTensors weights;
  for (auto& [name, p] : student.named_weights()) weights.emplace_back(name, p.detach());
  save_checkpoint(dir, weights);
}

std::unique_ptr<Student> load_student(const std::string& dir, std::shared_ptr<const Tokenizer> tokenizer) {
  std::string cfg_path = (fs::path(dir) / "config.json").string();
  StudentConfig config = StudentConfig::from_json(read_json_file(cfg_path), cfg_path);
  auto student = std::make_unique<Student>(config, std::move(tokenizer), 0);
  std::map<std::string, at::Tensor> params;
  for (auto& [name, p] : student->named_weights()) params[name] = p;
  CheckpointReader reader(dir);
  load_strict(params, reader, student_model_type(config.kind));
  student->set_training(false);
  return student;
}

bool is_student_dir(const std::string& dir) {
  fs::path p = fs::path(dir) / "config.json";
  if (!fs::is_regular_file(p)) return false;
  try {
    std::string type = read_json_file(p.string()).value("model_type", "");
    return type == "ellm-cross-encoder" || type == "ellm-two-tower";
  } catch (const std::exception&) {
    return false;
  }
}

torch::Tensor relevance_probability(const torch::Tensor& grade_probs, int positive_from) {
  ELLM_CHECK(positive_from >= 0 && positive_from < grade_probs.size(1), "positive_from {} is outside the {} grades",
             positive_from, grade_probs.size(1));
  return grade_probs.slice(1, positive_from).sum(1);
}

}  // namespace ellm
