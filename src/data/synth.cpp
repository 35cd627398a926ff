#include "ellm/data/synth.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "ellm/data/prepare.h"
#include "ellm/io/jsonl.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm {
namespace {

// splitmix64: tiny, well mixed, and identical on every platform (std
// distributions are not), so a seed always gives the same bytes.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 0x5851F42D4C957F2Dull) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  bool chance(double p) { return uniform() < p; }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }

 private:
  uint64_t s_;
};

// ---- the world ----------------------------------------------------------------

struct Colour {
  const char* name;
  const char* family;
};
// Colour families: a different shade of the same family is "partial".
const std::vector<Colour> kColours = {
    {"gray", "gray"},     {"charcoal", "gray"},  {"slate", "gray"},    {"blue", "blue"},     {"navy", "blue"},
    {"teal", "blue"},     {"green", "green"},    {"sage", "green"},    {"olive", "green"},   {"white", "white"},
    {"ivory", "white"},   {"cream", "white"},    {"black", "black"},   {"brown", "brown"},   {"espresso", "brown"},
    {"tan", "brown"},     {"red", "red"},        {"burgundy", "red"},  {"gold", "metallic"}, {"silver", "metallic"},
    {"bronze", "metallic"}, {"copper", "metallic"}};

struct Material {
  const char* name;
  const char* family;  // the generic word ("wood") covers every member
};
const std::vector<Material> kMaterials = {
    {"oak", "wood"},          {"walnut", "wood"},       {"pine", "wood"},    {"teak", "wood"},
    {"steel", "metal"},       {"stainless steel", "metal"}, {"aluminum", "metal"}, {"cast iron", "metal"},
    {"carbon steel", "metal"}, {"brass", "metal"},      {"titanium", "metal"}, {"linen", "fabric"},
    {"velvet", "fabric"},     {"cotton", "fabric"},     {"leather", "leather"}, {"glass", "glass"},
    {"plastic", "plastic"},   {"resin", "plastic"},     {"ceramic", "ceramic"}, {"wicker", "wicker"},
    {"rattan", "wicker"}};
const std::set<std::string> kGenericMaterials = {"wood", "metal", "fabric", "plastic"};

const char* colour_family(const std::string& c) {
  for (const auto& x : kColours)
    if (c == x.name) return x.family;
  fail("synth: unknown colour '{}'", c);
}
const char* material_family(const std::string& m) {
  for (const auto& x : kMaterials)
    if (m == x.name) return x.family;
  fail("synth: unknown material '{}'", m);
}

// A numeric attribute: its name is fixed by its unit (every inch measure is "size").
struct Unit {
  const char* unit;   // "in", "V", "W", "qt", "gal", "oz"
  const char* attr;   // attribute name
  double to_base;     // factor to a common base within the attribute (gal → qt)
};
const std::vector<Unit> kUnits = {{"in", "size", 1}, {"V", "voltage", 1}, {"W", "wattage", 1},
                                  {"qt", "capacity", 1}, {"gal", "capacity", 4}, {"oz", "weight", 1}};
const Unit& unit_of(const std::string& u) {
  for (const auto& x : kUnits)
    if (u == x.unit) return x;
  fail("synth: unknown unit '{}'", u);
}

struct NumValue {
  double value;
  std::string unit;
};

struct Leaf {
  std::string path;                      // "Tools / Power Tools / Drills"
  std::vector<std::string> query_forms;  // how shoppers name it; first is the plain name
  std::vector<std::string> title_forms;  // how titles name it
  bool accessory = false;
  std::string serves;                    // accessory: the leaf path whose products it serves
  std::vector<std::string> colours, materials;
  std::vector<NumValue> values;          // the numeric attribute's possible values
  int weight = 10;                       // popularity: rare leaves make the long tail
};

std::vector<Leaf> make_leaves() {
  auto nums = [](std::vector<double> vs, const std::string& u) {
    std::vector<NumValue> out;
    for (double v : vs) out.push_back({v, u});
    return out;
  };
  std::vector<Leaf> L;
  // Furniture
  L.push_back({"Furniture / Living Room / Sofas", {"sofa", "couch", "loveseat sofa"}, {"Sofa", "3-Seat Sofa", "Upholstered Sofa"}, false, "",
               {"gray", "charcoal", "navy", "blue", "sage", "ivory", "brown", "tan"}, {"linen", "velvet", "leather", "cotton"}, nums({72, 84, 96}, "in"), 14});
  L.push_back({"Furniture / Living Room / Coffee Tables", {"coffee table", "cocktail table"}, {"Coffee Table", "Rectangular Coffee Table"}, false, "",
               {"brown", "espresso", "black", "white"}, {"oak", "walnut", "pine", "glass", "steel"}, nums({36, 42, 48}, "in"), 10});
  L.push_back({"Furniture / Living Room / Accent Chairs", {"accent chair", "armchair"}, {"Accent Chair", "Upholstered Accent Chair"}, false, "",
               {"gray", "slate", "navy", "teal", "olive", "cream", "burgundy"}, {"linen", "velvet", "leather"}, {}, 10});
  L.push_back({"Furniture / Bedroom / Dressers", {"dresser", "chest of drawers"}, {"6-Drawer Dresser", "Dresser"}, false, "",
               {"white", "black", "espresso", "gray"}, {"oak", "pine", "walnut"}, {}, 8});
  L.push_back({"Furniture / Bedroom / Nightstands", {"nightstand", "bedside table"}, {"Nightstand", "2-Drawer Nightstand"}, false, "",
               {"white", "black", "espresso", "gray"}, {"oak", "pine", "walnut"}, {}, 8});
  L.push_back({"Furniture / Outdoor / Patio Chairs", {"patio chair", "outdoor chair"}, {"Patio Dining Chair", "Outdoor Patio Chair"}, false, "",
               {"black", "white", "brown", "gray"}, {"aluminum", "teak", "wicker", "rattan", "resin"}, {}, 6});
  L.push_back({"Furniture / Accessories / Sofa Covers", {"sofa cover", "slipcover"}, {"Sofa Cover for 3-Seat Sofa", "Stretch Slipcover for Sofa and Couch"}, true,
               "Furniture / Living Room / Sofas", {"gray", "navy", "ivory", "brown"}, {"cotton", "velvet"}, nums({72, 84, 96}, "in"), 5});
  // Tools
  L.push_back({"Tools / Power Tools / Drills", {"cordless drill", "drill", "drill driver"}, {"Cordless Drill/Driver Kit", "Cordless Compact Drill"}, false, "",
               {}, {}, nums({12, 18, 20}, "V"), 14});
  L.push_back({"Tools / Power Tools / Impact Drivers", {"impact driver"}, {"Cordless Impact Driver", "Brushless Impact Driver Kit"}, false, "",
               {}, {}, nums({12, 18, 20}, "V"), 8});
  L.push_back({"Tools / Power Tools / Circular Saws", {"circular saw", "skil saw"}, {"Cordless Circular Saw", "Circular Saw"}, false, "",
               {}, {}, nums({18, 20, 40}, "V"), 8});
  L.push_back({"Tools / Accessories / Drill Bits", {"drill bit set", "drill bits"}, {"Drill Bit Set for Cordless Drills", "Twist Drill Bit Kit"}, true,
               "Tools / Power Tools / Drills", {}, {"steel", "titanium"}, {}, 6});
  L.push_back({"Tools / Accessories / Saw Blades", {"saw blade", "circular saw blade"}, {"Circular Saw Blade", "Saw Blade for Circular Saws"}, true,
               "Tools / Power Tools / Circular Saws", {}, {"steel", "carbon steel"}, nums({6, 7, 10}, "in"), 5});
  L.push_back({"Tools / Hand Tools / Hammers", {"hammer", "claw hammer"}, {"Claw Hammer", "Framing Hammer"}, false, "",
               {}, {"steel", "oak"}, nums({16, 20, 22}, "oz"), 7});
  L.push_back({"Tools / Hand Tools / Screwdrivers", {"screwdriver set", "screwdriver"}, {"Screwdriver Set", "Precision Screwdriver"}, false, "",
               {}, {"steel"}, {}, 6});
  L.push_back({"Tools / Hand Tools / Chisels", {"wood chisel", "chisel"}, {"Wood Chisel Set"}, false, "", {}, {"steel"}, {}, 2});
  // Lighting
  L.push_back({"Lighting / Ceiling / Pendant Lights", {"pendant light", "hanging light"}, {"Pendant Light", "1-Light Mini Pendant"}, false, "",
               {"black", "white", "gold", "bronze", "copper"}, {"glass", "brass", "steel"}, {}, 9});
  L.push_back({"Lighting / Ceiling / Ceiling Fans", {"ceiling fan"}, {"Ceiling Fan with Light Kit", "Indoor Ceiling Fan"}, false, "",
               {"white", "black", "bronze", "silver"}, {}, nums({44, 52, 60}, "in"), 9});
  L.push_back({"Lighting / Lamps / Table Lamps", {"table lamp", "desk lamp"}, {"Table Lamp", "Bedside Table Lamp"}, false, "",
               {"white", "black", "gold", "blue", "sage"}, {"ceramic", "glass", "brass"}, {}, 8});
  L.push_back({"Lighting / Lamps / Floor Lamps", {"floor lamp", "standing lamp"}, {"Floor Lamp", "Arc Floor Lamp"}, false, "",
               {"black", "white", "gold", "bronze"}, {"steel", "brass", "oak"}, {}, 7});
  L.push_back({"Lighting / Bulbs / LED Bulbs", {"led bulb", "light bulb"}, {"LED Light Bulb", "A19 LED Bulb (4-Pack)"}, false, "",
               {}, {}, nums({40, 60, 100}, "W"), 9});
  L.push_back({"Lighting / Accessories / Lamp Shades", {"lamp shade", "lampshade"}, {"Lamp Shade for Table Lamp", "Drum Lamp Shade"}, true,
               "Lighting / Lamps / Table Lamps", {"white", "ivory", "gray", "black"}, {"linen", "cotton"}, {}, 5});
  // Kitchen
  L.push_back({"Kitchen / Faucets / Kitchen Faucets", {"kitchen faucet", "kitchen tap"}, {"Pull-Down Kitchen Faucet", "Single-Handle Kitchen Faucet"}, false, "",
               {"black", "silver", "gold", "bronze"}, {"stainless steel", "brass"}, {}, 10});
  L.push_back({"Kitchen / Cookware / Frying Pans", {"frying pan", "skillet"}, {"Frying Pan", "Nonstick Skillet"}, false, "",
               {"black", "red", "copper", "silver"}, {"cast iron", "stainless steel", "aluminum", "carbon steel"}, nums({8, 10, 12}, "in"), 10});
  L.push_back({"Kitchen / Cookware / Stock Pots", {"stock pot", "stockpot"}, {"Stock Pot with Lid", "Stockpot"}, false, "",
               {"silver", "black", "red"}, {"stainless steel", "aluminum"}, nums({6, 8, 12}, "qt"), 7});
  L.push_back({"Kitchen / Cookware / Woks", {"wok"}, {"Wok with Lid", "Flat Bottom Wok"}, false, "", {"black", "silver"}, {"carbon steel", "cast iron"},
               nums({12, 14}, "in"), 2});
  L.push_back({"Kitchen / Faucet Parts / Aerators", {"faucet aerator", "aerator"}, {"Faucet Aerator for Kitchen Faucet", "Faucet Aerator Replacement Cartridge"}, true,
               "Kitchen / Faucets / Kitchen Faucets", {"silver", "gold"}, {"brass", "plastic"}, {}, 4});
  // Paint
  L.push_back({"Paint / Interior / Wall Paint", {"interior paint", "wall paint", "paint"}, {"Interior Wall Paint", "Eggshell Interior Paint and Primer"}, false, "",
               {"white", "gray", "sage", "navy", "cream", "charcoal"}, {}, {{1, "gal"}, {5, "gal"}, {1, "qt"}}, 10});
  L.push_back({"Paint / Supplies / Paint Rollers", {"paint roller", "roller cover"}, {"Paint Roller Kit for Wall Paint", "Paint Roller Cover (3-Pack)"}, true,
               "Paint / Interior / Wall Paint", {}, {"cotton", "plastic"}, nums({4, 9}, "in"), 5});
  return L;
}

struct Brand {
  std::string name, prefix, top;
};
const std::vector<Brand> kBrands = {
    {"Harbor", "HB", "Furniture"},    {"Linden", "LD", "Furniture"},     {"Ashgrove", "AG", "Furniture"},
    {"Corbel", "CB", "Furniture"},    {"Velmora", "VM", "Furniture"},    {"Norhaus", "NH", "Furniture"},
    {"Kestrel", "KS", "Tools"},       {"Ironclad", "IC", "Tools"},       {"Torvik", "TV", "Tools"},
    {"Brackett", "BK", "Tools"},      {"Voltline", "VL", "Tools"},       {"Hexa", "HX", "Tools"},
    {"Lumina", "LU", "Lighting"},     {"Brightwell", "BW", "Lighting"},  {"Glowhaus", "GH", "Lighting"},
    {"Arcline", "AL", "Lighting"},    {"Sunmere", "SM", "Lighting"},     {"Cuisiva", "CV", "Kitchen"},
    {"Copperleaf", "CL", "Kitchen"},  {"Ferrow", "FR", "Kitchen"},       {"Blanca", "BL", "Kitchen"},
    {"Stovell", "ST", "Kitchen"},     {"Colorhaus", "CH", "Paint"},      {"Tintwell", "TW", "Paint"},
    {"Brushcraft", "BC", "Paint"},    {"Covera", "CO", "Paint"}};

// Common words around queries, and a long tail of rare ones (each used at most once).
const std::vector<std::string> kStyleWords = {"modern", "small", "large", "outdoor", "heavy duty", "cheap", "best",
                                              "compact", "rustic", "farmhouse", "industrial", "set", "for kitchen",
                                              "for bedroom", "for garage", "new"};
const std::vector<std::string> kRareWords = {
    "scandinavian", "boho", "victorian", "ergonomic", "lightweight", "waterproof", "minimalist", "coastal",
    "japandi", "brutalist", "chesterfield", "tufted", "mission", "shaker", "artisan", "hammered",
    "brushless", "reversible", "dimmable", "stackable", "foldable", "weatherproof", "commercial", "professional",
    "vintage", "retro", "nautical", "cottage", "lodge", "cabin", "loft", "studio", "dorm", "rv", "camper",
    "nursery", "mudroom", "sunroom", "basement", "attic", "patio", "balcony", "veranda", "gazebo", "workshop",
    "jobsite", "contractor", "diy", "beginner", "heirloom", "handmade", "artisanal", "sustainable", "recycled",
    "organic", "hypoallergenic", "antimicrobial", "fireproof", "scratchproof", "stainproof", "quiet", "silent",
    "whisper", "turbo", "magnetic", "telescoping", "articulating", "swivel", "tilting", "cantilever", "modular",
    "sectional", "convertible", "oversized", "petite", "slim", "narrow", "wide", "deep", "tall", "low profile",
    "wall mounted", "freestanding", "portable", "rechargeable", "wireless", "smart", "wifi", "bluetooth",
    "energy star", "ul listed", "dishwasher safe", "oven safe", "induction", "gift", "clearance", "sale"};

// ---- query specifications and verdicts -----------------------------------------

struct QuerySpec {
  int leaf = -1;  // -1: the query names no category
  std::string brand, model, colour, material;  // canonical; empty = not stated
  bool has_value = false;
  NumValue value{0, ""};
};

struct SynthItem {
  Item item;
  int leaf = 0;
  std::string colour, material;
  bool has_value = false;
  NumValue value{0, ""};
};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string parent_path(const std::string& path) {
  auto pos = path.rfind(" / ");
  return pos == std::string::npos ? "" : path.substr(0, pos);
}

// Same leaf: match. Two main-product leaves under the same parent (drill vs impact
// driver): partial. Anything else, accessories included: mismatch.
std::string verdict_category(const std::vector<Leaf>& leaves, int q, int i) {
  if (q == i) return "match";
  if (!leaves[q].accessory && !leaves[i].accessory && parent_path(leaves[q].path) == parent_path(leaves[i].path))
    return "partial";
  return "mismatch";
}

std::string verdict_colour(const std::string& q, const std::string& i) {
  if (q == i) return "match";
  // The query may name a family ("gray" for charcoal): close, not the same.
  if (q == colour_family(i) || std::string(colour_family(q)) == colour_family(i)) return "partial";
  return "mismatch";
}

std::string verdict_material(const std::string& q, const std::string& i) {
  if (q == i) return "match";
  if (kGenericMaterials.count(q)) return q == material_family(i) ? "match" : "mismatch";
  return std::string(material_family(q)) == material_family(i) ? "partial" : "mismatch";
}

// Within 25% of each other (after converting gallons to quarts): partial.
std::string verdict_value(const NumValue& q, const NumValue& i) {
  double a = q.value * unit_of(q.unit).to_base, b = i.value * unit_of(i.unit).to_base;
  if (std::fabs(a - b) < 1e-9) return "match";
  return std::fabs(a - b) / std::max(a, b) <= 0.25 ? "partial" : "mismatch";
}

std::string normalise_model(const std::string& m) {
  std::string out;
  for (char c : m)
    if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Same model: match; same prefix and series (the first two digits): partial.
std::string verdict_model(const std::string& q, const std::string& i) {
  std::string a = normalise_model(q), b = normalise_model(i);
  if (a == b) return "match";
  return a.size() >= 4 && b.size() >= 4 && a.compare(0, 4, b, 0, 4) == 0 ? "partial" : "mismatch";
}

std::map<std::string, std::string> truth_of(const std::vector<Leaf>& leaves, const QuerySpec& q, const SynthItem& it) {
  std::map<std::string, std::string> t;
  t["category"] = q.leaf < 0 ? "absent" : verdict_category(leaves, q.leaf, it.leaf);
  t["brand"] = q.brand.empty() ? "absent" : (q.brand == it.item.brand ? "match" : "mismatch");
  if (!q.model.empty() || !it.item.model.empty())
    t["model"] = q.model.empty() || it.item.model.empty() ? "absent" : verdict_model(q.model, it.item.model);
  if (!q.colour.empty()) t["attribute:color"] = it.colour.empty() ? "absent" : verdict_colour(q.colour, it.colour);
  if (!q.material.empty())
    t["attribute:material"] = it.material.empty() ? "absent" : verdict_material(q.material, it.material);
  if (q.has_value) {
    std::string name = std::string("attribute:") + unit_of(q.value.unit).attr;
    bool comparable = it.has_value && std::string(unit_of(it.value.unit).attr) == unit_of(q.value.unit).attr;
    t[name] = comparable ? verdict_value(q.value, it.value) : "absent";
  }
  return t;
}

// ---- surface forms ------------------------------------------------------------------

std::string capitalise_words(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    if (start && std::isalpha(static_cast<unsigned char>(c))) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    start = c == ' ' || c == '-';
  }
  return out;
}

std::string num_text(double v) { return fmt::format("{}", v); }

// The canonical attribute value stored on the item: "18V", "36 in.", "5 gal.".
std::string value_attr_text(const NumValue& v) {
  if (v.unit == "V" || v.unit == "W") return num_text(v.value) + v.unit;
  return num_text(v.value) + " " + v.unit + ".";
}

std::string value_title_text(Rng& rng, const NumValue& v) {
  std::string n = num_text(v.value);
  if (v.unit == "V") return rng.chance(0.5) ? n + "-Volt" : n + "V MAX";
  if (v.unit == "W") return rng.chance(0.5) ? n + "-Watt Equivalent" : n + "W";
  if (v.unit == "gal") return n + " Gal.";
  return n + " " + v.unit + ".";
}

std::string value_query_text(Rng& rng, const NumValue& v) {
  std::string n = num_text(v.value);
  const std::map<std::string, std::vector<std::string>> forms = {
      {"V", {"{}v", "{}-volt", "{} volt"}},          {"W", {"{}w", "{} watt", "{}-watt"}},
      {"in", {"{} in", "{} inch", "{}\"", "{}in"}},   {"gal", {"{} gal", "{} gallon"}},
      {"qt", {"{} qt", "{} quart"}},                  {"oz", {"{} oz", "{} ounce"}}};
  std::string f = rng.pick(forms.at(v.unit));
  return fmt::format(fmt::runtime(f), n);
}

// One deletion or substitution inside a word of at least five letters.
std::string add_typo(Rng& rng, const std::string& word) {
  if (word.size() < 5) return word;
  size_t pos = 1 + rng.below(word.size() - 2);
  if (!std::isalpha(static_cast<unsigned char>(word[pos]))) return word;
  std::string out = word;
  if (rng.chance(0.5)) {
    out.erase(pos, 1);
  } else {
    static const char* letters = "aeiounrstlm";
    char c = letters[rng.below(11)];
    if (c == out[pos]) c = c == 'a' ? 'e' : 'a';
    out[pos] = c;
  }
  return out;
}

}  // namespace

int synth_grade_from_truth(const std::map<std::string, std::string>& truth) {
  auto cat = truth.find("category");
  if (cat != truth.end() && cat->second == "mismatch") return 0;
  for (const auto& [dim, v] : truth)
    if (v == "partial" || v == "mismatch") return 1;
  return 2;
}

SynthDataset synthesize(const SynthOptions& opt) {
  ELLM_CHECK(opt.pairs > 0 && opt.pairs_per_query > 0, "synth: pairs and pairs_per_query must be positive");
  ELLM_CHECK(opt.label_noise >= 0 && opt.label_noise <= 1, "synth: label_noise must be in [0, 1]");
  Rng rng(opt.seed);
  const std::vector<Leaf> leaves = make_leaves();

  // ---- catalogue: per leaf, products from the leaf's top-level brands ----
  std::vector<SynthItem> items;
  std::map<int, std::vector<size_t>> by_leaf;
  for (size_t li = 0; li < leaves.size(); ++li) {
    const Leaf& leaf = leaves[li];
    std::string top = leaf.path.substr(0, leaf.path.find(" / "));
    std::vector<const Brand*> brands;
    for (const auto& b : kBrands)
      if (b.top == top) brands.push_back(&b);
    int n = 4 + leaf.weight * 2;
    std::set<std::string> models;
    for (int k = 0; k < n; ++k) {
      SynthItem s;
      s.leaf = static_cast<int>(li);
      const Brand& b = *brands[rng.below(brands.size())];
      s.item.brand = b.name;
      // A few series per (brand, leaf), so near-identical model numbers exist.
      int series = 10 + static_cast<int>((fnv1a(b.name + leaf.path) + rng.below(2) * 37) % 90);
      std::string model;
      do model = fmt::format("{}-{}{:02d}", b.prefix, series, rng.below(100));
      while (models.count(model));
      models.insert(model);
      s.item.model = model;
      if (!leaf.colours.empty()) s.colour = rng.pick(leaf.colours);
      if (!leaf.materials.empty()) s.material = rng.pick(leaf.materials);
      if (!leaf.values.empty()) {
        s.has_value = true;
        s.value = rng.pick(leaf.values);
      }
      std::vector<std::string> title = {b.name};
      if (rng.chance(0.4)) title.push_back(model);
      if (s.has_value) title.push_back(value_title_text(rng, s.value));
      if (!s.colour.empty()) title.push_back(capitalise_words(s.colour));
      if (!s.material.empty()) title.push_back(capitalise_words(s.material));
      title.push_back(rng.pick(leaf.title_forms));
      s.item.title = join(title, " ");
      s.item.category = leaf.path;
      if (!s.colour.empty()) s.item.attributes["color"] = s.colour;
      if (!s.material.empty()) s.item.attributes["material"] = s.material;
      if (s.has_value) s.item.attributes[unit_of(s.value.unit).attr] = value_attr_text(s.value);
      std::string noun = to_lower_ascii(leaf.title_forms[0]);
      s.item.description = fmt::format("{} {} by {}{}{}.", s.material.empty() ? "A" : capitalise_words(s.material), noun,
                                       b.name, s.colour.empty() ? "" : ", finished in " + s.colour,
                                       s.has_value ? ", " + value_attr_text(s.value) : "");
      s.item.id = fmt::format("p{:04d}", items.size() + 1);
      by_leaf[static_cast<int>(li)].push_back(items.size());
      items.push_back(std::move(s));
    }
  }
  // Accessory leaves by the leaf they serve, and main leaves by parent: the traps.
  std::map<int, std::vector<int>> accessories_of, siblings_of;
  for (size_t a = 0; a < leaves.size(); ++a)
    for (size_t b = 0; b < leaves.size(); ++b) {
      if (leaves[a].accessory && leaves[a].serves == leaves[b].path) {
        accessories_of[static_cast<int>(b)].push_back(static_cast<int>(a));
        accessories_of[static_cast<int>(a)].push_back(static_cast<int>(b));  // and back: "drill bits" vs a drill
      }
      if (a != b && verdict_category(leaves, static_cast<int>(a), static_cast<int>(b)) == "partial")
        siblings_of[static_cast<int>(a)].push_back(static_cast<int>(b));
    }
  std::vector<size_t> target_pool;  // items weighted by their leaf's popularity
  for (size_t i = 0; i < items.size(); ++i)
    for (int w = 0; w < leaves[items[i].leaf].weight; ++w) target_pool.push_back(i);

  // ---- queries and their candidate items ----
  SynthDataset out;
  GradeScale grades;
  int n_queries = (opt.pairs + opt.pairs_per_query - 1) / opt.pairs_per_query;
  std::set<std::string> seen_queries;
  size_t rare_next = 0;
  std::vector<std::string> rare = kRareWords;
  for (size_t i = rare.size(); i > 1; --i) std::swap(rare[i - 1], rare[rng.below(i)]);
  int attempts = 0;
  while (static_cast<int>(seen_queries.size()) < n_queries) {
    ELLM_CHECK(++attempts < n_queries * 50, "synth: could not make {} distinct queries; lower --pairs", n_queries);
    const SynthItem& target = items[rng.pick(target_pool)];
    const Leaf& leaf = leaves[target.leaf];
    QuerySpec q;
    bool say_model = rng.chance(0.08);
    bool say_brand = rng.chance(say_model ? 0.6 : 0.3);
    bool say_category = rng.chance(0.92) || !(say_model || say_brand);
    if (say_category) q.leaf = target.leaf;
    if (say_brand) q.brand = target.item.brand;
    if (say_model) q.model = target.item.model;
    std::vector<std::string> words;  // in query order; typos may touch the plain words
    std::vector<bool> typo_ok;
    auto add = [&](const std::string& w, bool typo) {
      words.push_back(w);
      typo_ok.push_back(typo);
    };
    if (say_brand) add(to_lower_ascii(q.brand), false);
    if (say_model) {
      std::string m = rng.chance(0.5) ? q.model : normalise_model(q.model);
      add(rng.chance(0.5) ? to_lower_ascii(m) : m, false);
    }
    if (target.has_value && rng.chance(0.35)) {
      q.has_value = true;
      q.value = target.value;
      // Sometimes the shopper asks for another size than this product's: a near one or a far one.
      if (rng.chance(0.25)) q.value = rng.pick(leaf.values);
      add(value_query_text(rng, q.value), false);
    }
    if (!target.colour.empty() && rng.chance(0.4)) {
      q.colour = rng.chance(0.2) ? std::string(colour_family(target.colour)) : target.colour;
      if (q.colour == "metallic") q.colour = target.colour;
      std::string shown = q.colour == "gray" && rng.chance(0.4) ? "grey" : q.colour;
      add(shown, true);
    }
    if (!target.material.empty() && rng.chance(0.3)) {
      std::string fam = material_family(target.material);
      q.material = kGenericMaterials.count(fam) && rng.chance(0.3) ? fam : target.material;
      add(q.material, true);
    }
    if (rng.chance(0.25)) words.insert(words.begin(), rng.pick(kStyleWords)), typo_ok.insert(typo_ok.begin(), true);
    if (say_category) {
      const std::string& form = rng.chance(0.6) ? leaf.query_forms[0] : rng.pick(leaf.query_forms);
      add(form, true);
    }
    if (rare_next < rare.size() && rng.chance(0.15)) {
      if (rng.chance(0.5)) add(rare[rare_next++], true);
      else words.insert(words.begin(), rare[rare_next++]), typo_ok.insert(typo_ok.begin(), true);
    }
    if (rng.chance(opt.typo_rate)) {
      std::vector<size_t> cand;
      for (size_t w = 0; w < words.size(); ++w)
        if (typo_ok[w] && words[w].size() >= 5 && words[w].find(' ') == std::string::npos) cand.push_back(w);
      if (!cand.empty()) {
        size_t w = cand[rng.below(cand.size())];
        words[w] = add_typo(rng, words[w]);
      }
    }
    std::string query = join(words, " ");
    std::string norm = normalise_query(query);
    if (!seen_queries.insert(norm).second) continue;
    std::string qid = fmt::format("q{:04d}", seen_queries.size());
    std::string split = split_for_query(norm, "ellm-demo", opt.dev_pct, opt.test_pct);

    // Candidates: the target, then traps and fillers by kind.
    std::vector<size_t> chosen;
    auto push = [&](size_t i) {
      if (std::find(chosen.begin(), chosen.end(), i) != chosen.end()) return false;
      chosen.push_back(i);
      return true;
    };
    push(static_cast<size_t>(&target - items.data()));
    auto from_leaf = [&](int l) -> size_t { return by_leaf[l][rng.below(by_leaf[l].size())]; };
    int guard = 0;
    while (static_cast<int>(chosen.size()) < opt.pairs_per_query && ++guard < 200) {
      double r = rng.uniform();
      size_t pick;
      if (r < 0.35) {
        pick = from_leaf(target.leaf);  // same kind: attributes may or may not differ
      } else if (r < 0.50 && !siblings_of[target.leaf].empty()) {
        pick = from_leaf(rng.pick(siblings_of[target.leaf]));
      } else if (r < 0.68 && !accessories_of[target.leaf].empty()) {
        pick = from_leaf(rng.pick(accessories_of[target.leaf]));
      } else if (r < 0.78) {
        // Same series, different model number: near-identical titles.
        std::vector<size_t> same;
        for (size_t i : by_leaf[target.leaf])
          if (verdict_model(target.item.model, items[i].item.model) == "partial") same.push_back(i);
        pick = same.empty() ? from_leaf(target.leaf) : same[rng.below(same.size())];
      } else if (r < 0.86 && !q.brand.empty()) {
        std::vector<size_t> same;
        for (size_t i = 0; i < items.size(); ++i)
          if (items[i].item.brand == q.brand && items[i].leaf != target.leaf) same.push_back(i);
        pick = same.empty() ? rng.below(items.size()) : same[rng.below(same.size())];
      } else {
        pick = rng.below(items.size());
      }
      push(pick);
    }
    for (size_t i : chosen) {
      Pair p;
      p.item = items[i].item;
      p.query = query;
      p.query_id = qid;
      p.id = fmt::format("demo-{}-{}", qid, p.item.id);
      p.split = split;
      p.truth = truth_of(leaves, q, items[i]);
      int g = synth_grade_from_truth(p.truth);
      // Rater noise: one grade up or down.
      if (rng.chance(opt.label_noise)) g = g == 0 ? 1 : g == 2 ? 1 : (rng.chance(0.5) ? 0 : 2);
      p.label = g;
      out.pairs.push_back(std::move(p));
    }
  }
  for (const auto& s : items) out.catalogue.push_back(s.item);
  out.grades = grades;

  json counts = json::object();
  std::map<std::string, std::set<std::string>> queries;
  for (const auto& p : out.pairs) {
    json& c = counts[p.split];
    if (c.is_null()) c = {{"pairs", 0}, {"queries", 0}, {"grades", std::vector<int>(grades.size(), 0)}};
    c["pairs"] = c["pairs"].get<int>() + 1;
    c["grades"][p.label] = c["grades"][p.label].get<int>() + 1;
    queries[p.split].insert(p.query_id);
  }
  for (auto& [split, qs] : queries) counts[split]["queries"] = qs.size();
  out.stats = {{"counts", counts},
               {"items", items.size()},
               {"categories", leaves.size()},
               {"brands", kBrands.size()},
               {"generator",
                {{"command", "ellm synth"},
                 {"seed", opt.seed},
                 {"pairs", opt.pairs},
                 {"pairs_per_query", opt.pairs_per_query},
                 {"label_noise", opt.label_noise},
                 {"typo_rate", opt.typo_rate},
                 {"dev_pct", opt.dev_pct},
                 {"test_pct", opt.test_pct}}}};
  return out;
}

void write_synth(const std::string& out_dir, const SynthDataset& data) {
  ensure_dir(out_dir);
  write_pairs((std::filesystem::path(out_dir) / "pairs.jsonl").string(), data.pairs);
  json extra = data.stats;
  extra["synthetic"] = true;
  write_dataset_info(out_dir, data.grades, extra);
}

}  // namespace ellm
