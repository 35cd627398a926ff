// DecoderConfig ↔ Hugging Face config.json (Qwen2ForCausalLM, LlamaForCausalLM).
#include <filesystem>

#include "ellm/models/decoder.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"

namespace ellm {
namespace {

const json* find(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

int64_t get_int(const json& j, const char* key, const std::string& where, std::optional<int64_t> fallback = {}) {
  const json* v = find(j, key);
  if (!v) {
    if (fallback) return *fallback;
    fail("{}: config field '{}' is missing", where, key);
  }
  if (!v->is_number_integer()) fail("{}: config field '{}' must be an integer, got {}", where, key, v->dump());
  return v->get<int64_t>();
}

double get_double(const json& j, const char* key, const std::string& where, double fallback) {
  const json* v = find(j, key);
  if (!v) return fallback;
  if (!v->is_number()) fail("{}: config field '{}' must be a number, got {}", where, key, v->dump());
  return v->get<double>();
}

bool get_bool(const json& j, const char* key, const std::string& where, bool fallback) {
  const json* v = find(j, key);
  if (!v) return fallback;
  if (!v->is_boolean()) fail("{}: config field '{}' must be true or false, got {}", where, key, v->dump());
  return v->get<bool>();
}

// Keys this struct models; everything else goes to `extra` unchanged.
const char* kKnown[] = {"model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                        "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
                        "rms_norm_eps", "rope_theta", "initializer_range", "tie_word_embeddings", "attention_bias",
                        "mlp_bias", "rope_scaling", "torch_dtype", "bos_token_id", "eos_token_id", "architectures",
                        "hidden_act"};

}  // namespace

DecoderConfig DecoderConfig::from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: a model config must be a JSON object", where);
  DecoderConfig c;
  const json* mt = find(j, "model_type");
  if (!mt || !mt->is_string()) fail("{}: config field 'model_type' is missing (expected \"qwen2\" or \"llama\")", where);
  c.model_type = mt->get<std::string>();
  if (c.model_type != "qwen2" && c.model_type != "llama")
    fail("{}: model_type '{}' is not supported (expected \"qwen2\" or \"llama\")", where, c.model_type);
  c.vocab_size = get_int(j, "vocab_size", where);
  c.hidden_size = get_int(j, "hidden_size", where);
  c.intermediate_size = get_int(j, "intermediate_size", where);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", where);
  c.num_attention_heads = get_int(j, "num_attention_heads", where);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", where, c.num_attention_heads);
  c.head_dim = get_int(j, "head_dim", where,
                       c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : int64_t{0});
  c.max_position_embeddings = get_int(j, "max_position_embeddings", where, c.max_position_embeddings);
  c.rms_norm_eps = get_double(j, "rms_norm_eps", where, c.model_type == "llama" ? 1e-5 : 1e-6);
  c.rope_theta = get_double(j, "rope_theta", where, 10000.0);
  c.initializer_range = get_double(j, "initializer_range", where, 0.02);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", where, false);
  c.attention_bias = get_bool(j, "attention_bias", where, false);
  c.mlp_bias = get_bool(j, "mlp_bias", where, false);
  if (const json* act = find(j, "hidden_act"); act && *act != "silu")
    fail("{}: hidden_act {} is not supported (the Qwen2/LLaMA MLP is SwiGLU: \"silu\")", where, act->dump());
  if (get_bool(j, "use_sliding_window", where, false))
    fail("{}: use_sliding_window=true is not supported (full attention only)", where);
  if (const json* rs = find(j, "rope_scaling")) {
    if (!rs->is_object()) fail("{}: rope_scaling must be an object or null", where);
    std::string type = rs->value("rope_type", rs->value("type", std::string()));
    if (type == "default") {
      // Plain RoPE, written explicitly.
    } else if (type == "llama3") {
      RopeScaling s;
      s.type = type;
      std::string sub = where + " rope_scaling";
      s.factor = get_double(*rs, "factor", sub, s.factor);
      s.low_freq_factor = get_double(*rs, "low_freq_factor", sub, s.low_freq_factor);
      s.high_freq_factor = get_double(*rs, "high_freq_factor", sub, s.high_freq_factor);
      s.original_max_position_embeddings =
          get_int(*rs, "original_max_position_embeddings", sub, s.original_max_position_embeddings);
      if (s.high_freq_factor <= s.low_freq_factor)
        fail("{}: rope_scaling high_freq_factor ({}) must exceed low_freq_factor ({})", where, s.high_freq_factor,
             s.low_freq_factor);
      c.rope_scaling = s;
    } else {
      fail("{}: rope_scaling type '{}' is not supported (only \"llama3\")", where, type);
    }
  }
  if (const json* dt = find(j, "torch_dtype")) {
    if (!dt->is_string()) fail("{}: torch_dtype must be a string", where);
    c.torch_dtype = dt->get<std::string>();
    hf_dtype_from_name(c.torch_dtype, where);
  }
  if (find(j, "bos_token_id")) c.bos_token_id = get_int(j, "bos_token_id", where);
  if (const json* eos = find(j, "eos_token_id")) {
    if (eos->is_number_integer()) {
      c.eos_token_ids = {eos->get<int64_t>()};
    } else if (eos->is_array()) {
      for (const auto& e : *eos) {
        if (!e.is_number_integer()) fail("{}: eos_token_id entries must be integers, got {}", where, e.dump());
        c.eos_token_ids.push_back(e.get<int64_t>());
      }
    } else {
      fail("{}: eos_token_id must be an integer or a list of integers", where);
    }
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.key().empty() && it.key()[0] == '_') continue;  // comments in our config files
    bool known = false;
    for (const char* k : kKnown) known = known || it.key() == k;
    if (!known) c.extra[it.key()] = it.value();
  }
  c.validate(where);
  return c;
}

void DecoderConfig::validate(const std::string& where) const {
  auto positive = [&](int64_t v, const char* name) {
    if (v <= 0) fail("{}: config field '{}' must be positive, got {}", where, name, v);
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(intermediate_size, "intermediate_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(num_key_value_heads, "num_key_value_heads");
  positive(head_dim, "head_dim");
  if (num_attention_heads % num_key_value_heads != 0)
    fail("{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", where, num_attention_heads,
         num_key_value_heads);
  if (head_dim % 2 != 0) fail("{}: head_dim ({}) must be even for rotary embeddings", where, head_dim);
}

DecoderConfig DecoderConfig::load(const std::string& dir_or_file) {
  namespace fs = std::filesystem;
  std::string path = dir_or_file;
  if (fs::is_directory(path)) path = (fs::path(path) / "config.json").string();
  if (!fs::exists(path)) fail("{}: no model config (expected a model directory with config.json, or a JSON file)", path);
  return from_json(read_json_file(path), path);
}

json DecoderConfig::to_json() const {
  json j = extra;
  j["architectures"] = {model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  if (head_dim != hidden_size / num_attention_heads) j["head_dim"] = head_dim;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["initializer_range"] = initializer_range;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["hidden_act"] = "silu";
  if (model_type == "llama") {
    j["attention_bias"] = attention_bias;
    j["mlp_bias"] = mlp_bias;
  }
  if (rope_scaling) {
    j["rope_scaling"] = {{"rope_type", rope_scaling->type},
                         {"factor", rope_scaling->factor},
                         {"low_freq_factor", rope_scaling->low_freq_factor},
                         {"high_freq_factor", rope_scaling->high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling->original_max_position_embeddings}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["torch_dtype"] = torch_dtype;
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  else if (!eos_token_ids.empty()) j["eos_token_id"] = eos_token_ids;
  return j;
}

std::string hf_dtype_name(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: fail("dtype {} is not a model weight dtype (float32, bfloat16, float16)", c10::toString(dtype));
  }
}

torch::Dtype hf_dtype_from_name(const std::string& name, const std::string& where) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kFloat16;
  fail("{}: torch_dtype '{}' is not supported (float32, bfloat16, float16)", where, name);
}

}  // namespace ellm
