// ellm serve: the teacher behind an HTTP server (OpenAI chat completions + /v1/relevance).
#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include "commands.h"
#include "ellm/serve/server.h"
#include "ellm/teacher/decoder_teacher.h"
#include "ellm/util/device.h"
#include "ellm/util/log.h"

namespace ellm::cli {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

}  // namespace

void add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "serve a model over HTTP: /v1/chat/completions, /v1/relevance, /health, /metrics");
  static std::string model, adapter, grades_path, device = "auto", dtype = "fp32", prompt_template, chat_template;
  static ServeOptions opt;
  static int64_t max_new_tokens = 256;
  cmd->add_option("--model", model, "model directory (HF layout)")->required();
  cmd->add_option("--adapter", adapter, "LoRA adapter directory (PEFT layout) to apply");
  cmd->add_option("--grades", grades_path, "dataset.json (or a pairs file beside one) naming the grade scale");
  cmd->add_option("--host", opt.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", opt.port, "port (0: any free port)")->capture_default_str();
  cmd->add_option("--max-queue", opt.max_queue, "waiting items per route before answering 429")->capture_default_str();
  cmd->add_option("--max-batch", opt.max_batch, "items per model batch")->capture_default_str();
  cmd->add_option("--max-wait-ms", opt.max_wait_ms, "how long a batch waits to fill")->capture_default_str();
  cmd->add_option("--max-body-bytes", opt.max_body_bytes, "request size limit (413 above)")->capture_default_str();
  cmd->add_option("--max-items", opt.max_items, "items per relevance request (413 above)")->capture_default_str();
  cmd->add_option("--threads", opt.threads, "HTTP worker threads")->capture_default_str();
  cmd->add_option("--max-new-tokens", max_new_tokens, "CoT length limit for /v1/relevance")->capture_default_str();
  cmd->add_option("--prompt-template", prompt_template, "teacher prompt template (default: the model dir's)");
  cmd->add_option("--chat-template", chat_template, "chat template name or file (default: the model dir's)");
  cmd->add_option("--device", device, "cpu | cuda | cuda:N | auto")->capture_default_str();
  cmd->add_option("--dtype", dtype, "fp32 | bf16 | fp16")->capture_default_str();
  cmd->callback([] {
    DecoderTeacherOptions o;
    o.model_dir = model;
    o.adapter_dir = adapter;
    o.prompt_template = prompt_template;
    o.chat_template = chat_template;
    o.grades = grades_path.empty() ? teacher_grades(model) : grade_scale_for(grades_path);
    o.max_new_tokens = max_new_tokens;
    o.dtype = parse_dtype(dtype);
    o.device = resolve_device(device);
    auto teacher = std::make_shared<DecoderTeacher>(o);
    RelevanceServer server(teacher, opt);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    server.start();
    // The port line on stdout lets a parent process (bench, tests) find a --port 0 server.
    std::printf("listening on http://%s:%d\n", opt.host.c_str(), server.port());
    std::fflush(stdout);
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    spdlog::info("signal received: finishing requests in flight");
    server.stop();
  });
}

}  // namespace ellm::cli
