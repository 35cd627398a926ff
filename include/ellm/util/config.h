#pragma once
// Stage configuration as data (torchtune-style): a stage declares its defaults
// as JSON; those defaults are also the schema. A user config file and then
// repeatable `--set a.b.c=value` overrides are merged on top:
//  - a key absent from the defaults is an error naming the key and the closest
//    known key; keys starting with '_' are comments and ignored;
//  - a default of `{}` is an open map (any keys accepted below it);
//  - a value's type must match its default's (integers and floats mix; a null
//    default accepts anything); arrays are replaced whole;
//  - `--set` values are parsed as JSON (numbers, bools, arrays, null, "quoted")
//    unless the default is a string, which takes the raw text.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ellm {

using json = nlohmann::json;

json resolve_config(const json& defaults, const std::string& config_file,
                    const std::vector<std::string>& overrides);

// Merges `layer` onto `base` under the rules above; `origin` names the layer in errors.
void merge_config(json& base, const json& layer, const std::string& origin, const std::string& path = "");

// Applies one "a.b.c=value" override.
void apply_override(json& config, const std::string& assignment);

// Reads a JSON file; errors name the file, line and column.
json read_json_file(const std::string& path);

// Typed lookup by dotted path ("train.lr"); errors name the path.
const json& config_at(const json& config, const std::string& dotted);

}  // namespace ellm
