// ellm: the command-line entry point. Parses, dispatches, and turns errors into
// one clear message and a non-zero exit.
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <thread>
#include <unistd.h>

#include "commands.h"
#include "ellm/util/error.h"
#include "ellm/util/log.h"

namespace ellm::cli {
// `ellm pretrain` (pretrain.cpp). TODO(merge): move into commands.h with the others;
// declared here for now so that adding it did not invalidate every cached CLI object.
void add_pretrain(CLI::App& app);
}  // namespace ellm::cli

int main(int argc, char** argv) {
  // Process-wide settings that libraries read once at load time: set the missing ones and
  // start again (the user's own values win).
  // - How long an idle OpenMP thread spins before it sleeps. libgomp's default (~3 ms) steals
  //   the cores from any other process on a small machine (ctest -j2 ran 10x slower); no
  //   spinning at all (OMP_WAIT_POLICY=PASSIVE, used until 2026-12-03) pays a futex wake-up
  //   for every parallel region, and a model step runs hundreds of them: tiny-model
  //   generation ran 2-4x slower and decoder training 1.2-1.5x (docs/decoder.md, "Threads").
  //   ~0.3 ms bridges the gaps inside a step and yields between steps. A user's
  //   OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
  // - glibc hands every freed block over 128 KiB back to the kernel and maps it afresh on the
  //   next allocation, so each step of a model re-faults its activations page by page: the
  //   teacher stage spent over a third of its time in page faults. Keep freed memory instead.
  bool changed = false;
  auto default_env = [&](const char* name, const char* value) {
    if (!std::getenv(name)) {
      setenv(name, value, 1);
      changed = true;
    }
  };
  if (!std::getenv("OMP_WAIT_POLICY")) default_env("GOMP_SPINCOUNT", "30000");
  default_env("MALLOC_MMAP_THRESHOLD_", "4294967296");
  default_env("MALLOC_TRIM_THRESHOLD_", "68719476736");
  default_env("MALLOC_TOP_PAD_", "536870912");
  if (changed) execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
  CLI::App app{"ellm: explainable LLM relevance (ELLM-rele) and multi-dimensional distillation (MKD) for "
               "e-commerce search"};
  app.require_subcommand(1);
  app.fallthrough();
  std::string log_level = "info";
  int threads = 0;
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads (default: libtorch's choice, usually the core count)");
  app.set_version_flag("--version", [] { return ellm::cli::version_text(); }, "print version, libtorch, BLAS and devices");
  app.parse_complete_callback([&] {
    ellm::init_logging(log_level);
    if (threads > 0) at::set_num_threads(threads);
  });

  // libtorch may default to one thread here; use every core unless told otherwise.
  if (!std::getenv("OMP_NUM_THREADS")) at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));

  ellm::cli::add_inspect(app);
  ellm::cli::add_prepare(app);
  ellm::cli::add_launch(app);
  ellm::cli::add_tokenizer(app);
  ellm::cli::add_bench(app);
  ellm::cli::add_synth(app);
  ellm::cli::add_eval(app);
  ellm::cli::add_annotate(app);
  ellm::cli::add_distill(app);
  ellm::cli::add_pretrain(app);
  ellm::cli::add_plan(app);
  ellm::cli::add_model(app);
  ellm::cli::add_generate(app);
  ellm::cli::add_finetune(app);
  ellm::cli::add_teacher(app);
  ellm::cli::add_serve(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ellm::Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("unexpected error: {}", e.what());
    return 1;
  }
  return 0;
}
