// ellm generate: one prompt through a decoder (optionally + LoRA adapter); one JSON
// object on stdout (logs and the streamed text go to stderr).
#include <cmath>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "ellm/models/decoder.h"
#include "ellm/models/generate.h"
#include "ellm/models/lora.h"
#include "ellm/text/tokenizer.h"
#include "ellm/util/device.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm::cli {
namespace fs = std::filesystem;

namespace {

bool dir_has_tokenizer(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n == "tokenizer.json" || n == "vocab.txt" || e.path().extension() == ".model") return true;
  }
  return false;
}

}  // namespace

void add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "generate from a decoder model directory; prints JSON");
  static std::string model, adapter, prompt, prompt_ids, dtype = "fp32", device = "auto", tokenizer;
  static int64_t max_new = 64, logprobs = 0;
  static double temperature = 0, top_p = 1.0;
  static uint64_t seed = 0;
  static bool stream = false;
  static std::vector<std::string> stops;
  cmd->add_option("--model", model, "HF model directory (config.json + weights [+ tokenizer])")->required();
  cmd->add_option("--adapter", adapter, "PEFT LoRA adapter directory to apply");
  cmd->add_option("--tokenizer", tokenizer, "tokenizer (default: the one in --model or --adapter)");
  auto* p = cmd->add_option("--prompt", prompt, "prompt text (tokenized as is; special tokens written in it are matched)");
  auto* pi = cmd->add_option("--prompt-ids", prompt_ids, "prompt token ids, comma-separated");
  p->excludes(pi);
  cmd->add_option("--max-new-tokens", max_new, "tokens to generate at most")->capture_default_str();
  cmd->add_option("--temperature", temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-p", top_p, "nucleus sampling mass")->capture_default_str();
  cmd->add_option("--seed", seed, "sampling seed")->capture_default_str();
  cmd->add_option("--logprobs", logprobs, "report the top-K log-probabilities of every generated token")
      ->capture_default_str();
  cmd->add_option("--stop", stops, "stop string (repeatable)");
  cmd->add_option("--dtype", dtype, "compute dtype: fp32 | bf16 | fp16")->capture_default_str();
  cmd->add_option("--device", device, "cpu | cuda | auto")->capture_default_str();
  cmd->add_flag("--stream", stream, "print the text to stderr as it is generated");
  cmd->callback([] {
    if (prompt.empty() && prompt_ids.empty()) fail("give --prompt TEXT or --prompt-ids 1,2,3");
    Decoder m = load_decoder(model, parse_dtype(dtype), resolve_device(device));
    if (!adapter.empty()) load_adapter(m, adapter);
    std::shared_ptr<Tokenizer> tok;
    if (!tokenizer.empty()) tok = load_tokenizer(tokenizer);
    else if (dir_has_tokenizer(model)) tok = load_tokenizer(model);
    else if (!adapter.empty() && dir_has_tokenizer(adapter)) tok = load_tokenizer(adapter);
    std::vector<int64_t> ids;
    if (!prompt.empty()) {
      if (!tok) fail("{}: no tokenizer in the model directory; give --tokenizer or --prompt-ids", model);
      ids = tok->encode(prompt, /*add_special=*/true).ids;
    } else {
      for (const auto& part : split(prompt_ids, ',')) {
        try {
          ids.push_back(std::stoll(std::string(trim(part))));
        } catch (const std::exception&) {
          fail("--prompt-ids: '{}' is not an integer", part);
        }
      }
    }
    GenerateOptions opt;
    opt.max_new_tokens = max_new;
    opt.temperature = temperature;
    opt.top_p = top_p;
    opt.seed = seed;
    opt.stop_ids = m->config().eos_token_ids;
    if (tok && tok->eos_id()) opt.stop_ids.push_back(*tok->eos_id());
    opt.stop_strings = stops;
    json lp = json::array();
    std::unique_ptr<StreamDecoder> streamer;
    if (stream && tok) streamer = std::make_unique<StreamDecoder>(tok);
    auto on_step = [&](int64_t, const torch::Tensor& logits, const torch::Tensor& chosen) {
      int64_t id = chosen[0].item<int64_t>();
      if (streamer) std::cerr << streamer->push(id) << std::flush;
      if (logprobs <= 0) return;
      torch::Tensor logp = torch::log_softmax(logits[0], -1);
      auto [vals, idx] = logp.topk(std::min<int64_t>(logprobs, logp.size(0)));
      json top = json::array();
      for (int64_t k = 0; k < vals.size(0); ++k)
        top.push_back({{"id", idx[k].item<int64_t>()}, {"logprob", vals[k].item<double>()}});
      json entry = {{"id", id}, {"logprob", logp[id].item<double>()}, {"top_logprobs", top}};
      if (tok) entry["token"] = tok->id_to_token(id);
      lp.push_back(entry);
    };
    auto out = generate(m, {ids}, opt, tok.get(), on_step);
    if (streamer) std::cerr << streamer->finish() << "\n";
    json result = {{"prompt_tokens", ids.size()}, {"ids", out[0]}};
    if (tok) result["text"] = tok->decode(out[0], /*skip_special=*/true);
    if (logprobs > 0) {
      lp.erase(lp.begin() + static_cast<std::ptrdiff_t>(out[0].size()), lp.end());  // drop the stop token
      result["logprobs"] = lp;
    }
    std::cout << result.dump() << "\n";
  });
}

}  // namespace ellm::cli
