#include "ellm/text/item_text.h"

namespace ellm {

std::string item_text(const Item& item) {
  std::string s = item.title;
  auto field = [&](const std::string& name, const std::string& value) {
    if (value.empty()) return;
    s += " | ";
    s += name;
    s += ": ";
    s += value;
  };
  field("category", item.category);
  field("brand", item.brand);
  field("model", item.model);
  for (const auto& [name, value] : item.attributes) field(name, value);
  return s;
}

}  // namespace ellm
