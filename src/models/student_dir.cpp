// Loading a student with the tokenizer its directory holds (text/tokenizer.h's
// load_tokenizer), and the scoring entry point `ellm eval --model` uses.
#include <filesystem>

#include "ellm/models/student.h"
#include "ellm/util/config.h"

namespace fs = std::filesystem;

namespace ellm {

std::unique_ptr<Student> load_student(const std::string& dir) {
  std::string cfg_path = (fs::path(dir) / "config.json").string();
  StudentConfig config = StudentConfig::from_json(read_json_file(cfg_path), cfg_path);
  fs::path tok = fs::path(dir) / config.tokenizer_file;
  ELLM_CHECK(!config.tokenizer_file.empty() && fs::exists(tok), "{}: the tokenizer file '{}' named by ellm.tokenizer is missing",
             cfg_path, config.tokenizer_file);
  return load_student(dir, load_tokenizer(tok.string()));
}

std::vector<std::vector<float>> student_grade_probs(const std::string& model_dir, const std::vector<Pair>& pairs,
                                                    int64_t batch, c10::ScalarType dtype) {
  auto student = load_student(model_dir);
  student->set_inference_dtype(dtype);
  torch::Tensor probs = student->grade_probs(pairs, batch).contiguous();
  std::vector<std::vector<float>> out(pairs.size());
  auto a = probs.accessor<float, 2>();
  for (size_t i = 0; i < pairs.size(); ++i) out[i].assign(&a[i][0], &a[i][0] + probs.size(1));
  return out;
}

}  // namespace ellm
