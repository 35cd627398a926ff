#pragma once
// The one rendering of an item as text that every stage shares: CoT item spans
// are byte offsets into it, students read it as their item input, prompts show it.
//
//   item_text(item) = title
//                     [" | category: " category] [" | brand: " brand] [" | model: " model]
//                     [" | " name ": " value  for each attribute, in name order]
//
// A title-only item (Home Depot) renders as its bare title. The description is
// left out (long, and not what the CoT quotes); prompts may show it separately.
#include <string>

#include "ellm/data/pairs.h"

namespace ellm {

std::string item_text(const Item& item);

}  // namespace ellm
