#pragma once
// A student model as a whole: its configuration, its network (cross-encoder or
// two-tower), its tokenizer and input layout; saved as a Hugging Face-style
// directory and scored on pairs.
//
// Directory layout (written by save_student, read by load_student):
//   config.json        Hugging Face BERT fields (vocab_size, hidden_size, …) plus
//                      "model_type": "ellm-cross-encoder" | "ellm-two-tower",
//                      "id2label"/"label2id" (the grades) and an "ellm" object:
//                      {grade_labels, grade_values, positive_from, max_length,
//                       max_query_length, max_item_length, shared_towers,
//                       projection_dim, tokenizer: <file name>}
//   model.safetensors  the weights under HF BERT names (models/cross_encoder.h,
//                      models/two_tower.h), loaded strictly
//   <tokenizer file>   a copy of the student's tokenizer (tokenizer.model, vocab.txt, …)
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "ellm/data/pairs.h"
#include "ellm/distill/student_inputs.h"
#include "ellm/models/bert.h"
#include "ellm/models/cross_encoder.h"
#include "ellm/models/two_tower.h"

namespace ellm {

enum class StudentKind { cross_encoder, two_tower };
const char* student_model_type(StudentKind kind);  // "ellm-cross-encoder" | "ellm-two-tower"

struct StudentConfig {
  StudentKind kind = StudentKind::cross_encoder;
  BertConfig bert;
  GradeScale grades;
  InputLimits limits;
  bool shared_towers = true;    // two-tower: one encoder for queries and items
  int64_t projection_dim = 128; // two-tower embedding size
  std::string tokenizer_file;   // file name of the tokenizer inside the model directory

  json to_json() const;
  static StudentConfig from_json(const json& j, const std::string& where);
};

// A student ready to train or score.
class Student {
 public:
  Student(StudentConfig config, std::shared_ptr<const Tokenizer> tokenizer, uint64_t seed);

  const StudentConfig& config() const { return config_; }
  StudentKind kind() const { return config_.kind; }
  torch::nn::Module& module();
  CrossEncoder& cross() { return cross_; }
  TwoTower& two_tower() { return tower_; }
  const StudentInputBuilder& inputs() const { return inputs_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }

  // Every weight by its saved name.
  std::vector<std::pair<std::string, torch::Tensor>> named_weights();
  void set_training(bool training) { module().train(training); }

  // The dtype the encoders compute in when scoring (grade_probs, item_embeddings):
  // kFloat (default) or kBFloat16 (models/bert.h's inference path). Training is
  // unaffected (its precision is train.precision, util/autocast.h).
  void set_inference_dtype(c10::ScalarType dtype);
  c10::ScalarType inference_dtype() const { return inference_dtype_; }

  // Grade distributions [N,K] fp32 (eval mode, inference mode), in batches of `batch`.
  torch::Tensor grade_probs(const std::vector<Pair>& pairs, int64_t batch);
  // Two-tower only: unit item vectors [N,P] fp32 for item_text(item) of each item.
  torch::Tensor item_embeddings(const std::vector<Item>& items, int64_t batch);

 private:
  StudentConfig config_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  StudentInputBuilder inputs_;
  CrossEncoder cross_{nullptr};
  TwoTower tower_{nullptr};
  c10::ScalarType inference_dtype_ = c10::ScalarType::Float;
};

// Writes config.json, model.safetensors and a copy of `tokenizer_path` (the file
// the student's tokenizer came from) into dir.
void save_student(Student& student, const std::string& dir, const std::string& tokenizer_path);

// Loads a student directory with the given tokenizer (strict weights).
std::unique_ptr<Student> load_student(const std::string& dir, std::shared_ptr<const Tokenizer> tokenizer);
// The same, with the tokenizer file the directory holds.
std::unique_ptr<Student> load_student(const std::string& dir);

// True when dir/config.json has an ellm student model_type.
bool is_student_dir(const std::string& dir);

// Probability of grade ≥ positive_from per row of grade_probs [N,K] → [N].
torch::Tensor relevance_probability(const torch::Tensor& grade_probs, int positive_from);

// What `ellm eval --model DIR` calls for a student: grade distributions [N][K],
// the encoders computing in `dtype` (Student::set_inference_dtype).
std::vector<std::vector<float>> student_grade_probs(const std::string& model_dir, const std::vector<Pair>& pairs,
                                                    int64_t batch, c10::ScalarType dtype = c10::ScalarType::Float);

// The file a loaded tokenizer came from, from its describe() ("kind:/path").
std::string tokenizer_source_path(const Tokenizer& tokenizer);

}  // namespace ellm
