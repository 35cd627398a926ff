#include "ellm/annotate/annotator.h"

#include <filesystem>

#include "ellm/annotate/attribute.h"
#include "ellm/annotate/file_annotator.h"
#include "ellm/annotate/openai.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"
#include "ellm/util/build_paths.h"

namespace ellm {

// A relative path that does not exist from here is looked up in the source tree
// (shipped configs), like prompt templates.
static std::string resolve_shipped(const std::string& path) {
  if (path.empty() || std::filesystem::exists(path) || std::filesystem::path(path).is_absolute()) return path;
  auto shipped = std::filesystem::path(ellm::source_dir()) / path;
  return std::filesystem::exists(shipped) ? shipped.string() : path;
}

std::unique_ptr<Annotator> make_annotator(const std::string& spec, const AnnotatorContext& ctx) {
  if (spec == "attribute" || starts_with(spec, "attribute:")) {
    std::string lex = resolve_shipped(spec == "attribute" ? ctx.lexicon : spec.substr(10));
    if (!std::filesystem::exists(lex)) fail("annotator '{}': lexicon file '{}' not found", spec, lex);
    return std::make_unique<AttributeAnnotator>(ctx.catalogue, read_json_file(lex), lex, ctx.grades);
  }
  if (starts_with(spec, "file:")) {
    std::string path = spec.substr(5);
    if (!std::filesystem::exists(path)) fail("annotator '{}': file '{}' not found", spec, path);
    return std::make_unique<FileAnnotator>(path);
  }
  if (starts_with(spec, "openai:")) {
    OpenAiOptions o = parse_openai_spec(spec.substr(7), ctx.openai, ctx.cache_dir);
    o.prompt = resolve_shipped(o.prompt);
    return std::make_unique<OpenAiAnnotator>(o, ctx.grades);
  }
  fail("unknown annotator '{}' (attribute, attribute:LEXICON.json, file:PATH, openai:BASE_URL[,k=v...])", spec);
}

}  // namespace ellm
