#include "ellm/annotate/attribute.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <cstring>
#include <functional>
#include <optional>

#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm {
// Named (not anonymous): AttributeAnnotator::Impl holds these types, and an anonymous
// namespace would give its fields internal linkage when the file is compiled in a unity batch.
namespace attribute_detail {

bool is_word_byte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }
bool is_alpha(unsigned char c) { return std::isalpha(c) != 0; }

// A word of a text: lower-cased ASCII letters and digits, with its byte range.
struct Tok {
  std::string w;
  size_t b = 0, e = 0;
};

std::vector<Tok> tokenize(const std::string& s) {
  std::vector<Tok> out;
  size_t i = 0;
  while (i < s.size()) {
    if (!is_word_byte(static_cast<unsigned char>(s[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_word_byte(static_cast<unsigned char>(s[j]))) ++j;
    out.push_back({to_lower_ascii(std::string_view(s).substr(i, j - i)), i, j});
    i = j;
  }
  return out;
}

std::vector<std::string> words_of(const std::string& s) {
  std::vector<std::string> out;
  for (auto& t : tokenize(s)) out.push_back(t.w);
  return out;
}

std::string singular(const std::string& w) {
  size_t n = w.size();
  if (n > 4 && ends_with(w, "ies")) return w.substr(0, n - 3) + "y";
  if (n > 4 && (ends_with(w, "ches") || ends_with(w, "shes") || ends_with(w, "xes") || ends_with(w, "sses")))
    return w.substr(0, n - 2);
  if (n > 3 && w.back() == 's' && w[n - 2] != 's' && w[n - 2] != 'u' && w[n - 2] != 'i') return w.substr(0, n - 1);
  return w;
}

bool has_digit(const std::string& w) {
  return std::any_of(w.begin(), w.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// A query word stands for a lexicon word: equal, equal after singularising, or
// (both >= 5 letters, same first letter, no digits) one edit apart — a typo.
// `known`: words that are themselves in a lexicon are never typos of another
// word ("linen" is not a typo of the brand "Linden").
bool word_eq(const std::string& q, const std::string& lex, const std::set<std::string>* known = nullptr) {
  if (q == lex) return true;
  if (has_digit(q) || has_digit(lex)) return false;
  std::string sq = singular(q), sl = singular(lex);
  if (sq == sl) return true;
  if (known && known->count(q)) return false;
  return q.size() >= 5 && sl.size() >= 5 && q[0] == lex[0] && (levenshtein(q, lex) <= 1 || levenshtein(sq, sl) <= 1);
}

struct Match {
  size_t i = 0, n = 0;  // tokens [i, i + n)
  std::string value;    // what the phrase stands for
};

// Phrases (word sequences) → values, matched against tokens not yet consumed.
class PhraseTable {
 public:
  void add(const std::string& phrase, const std::string& value) {
    auto w = words_of(phrase);
    if (w.empty()) return;
    for (const auto& [p, v] : entries_)
      if (p == w) return;  // first definition wins
    entries_.push_back({w, value});
    max_len_ = std::max(max_len_, w.size());
  }
  size_t size() const { return entries_.size(); }
  void set_known(const std::set<std::string>* known) { known_ = known; }
  void collect_words(std::set<std::string>& out) const {
    for (const auto& e : entries_) out.insert(e.first.begin(), e.first.end());
  }
  // Every match, longest first at each start; matches do not overlap and skip consumed tokens.
  // overlapping: the longest match at every start (for picking the rightmost category phrase).
  std::vector<Match> find_all(const std::vector<Tok>& toks, const std::vector<bool>& used, bool overlapping = false) const {
    std::vector<Match> out;
    for (size_t i = 0; i < toks.size();) {
      const Match* best = nullptr;
      Match m;
      for (const auto& [p, v] : entries_) {
        if (i + p.size() > toks.size() || (best && p.size() <= best->n)) continue;
        bool ok = true;
        for (size_t k = 0; k < p.size() && ok; ++k) ok = !used[i + k] && word_eq(toks[i + k].w, p[k], known_);
        if (ok) {
          m = {i, p.size(), v};
          best = &m;
        }
      }
      if (best) {
        out.push_back(m);
        i += overlapping ? 1 : m.n;
      } else {
        ++i;
      }
    }
    return out;
  }

 private:
  std::vector<std::pair<std::vector<std::string>, std::string>> entries_;
  size_t max_len_ = 0;
  const std::set<std::string>* known_ = nullptr;
};

struct UnitInfo {
  std::string unit, attr;
  double factor = 1;
};

struct NumMention {
  double value = 0, base = 0;
  std::string unit, attr;
  size_t b = 0, e = 0;  // byte range of "18-volt"
};

std::string cut(const std::string& s, size_t b, size_t e) { return s.substr(b, e - b); }

int verdict_rank(const std::string& v) { return v == "match" ? 3 : v == "partial" ? 2 : v == "mismatch" ? 1 : 0; }

}  // namespace attribute_detail
using namespace attribute_detail;

struct AttributeAnnotator::Impl {
  GradeScale grades;
  // Lexicons.
  std::map<std::string, std::string> colour_family;  // canonical colour → family
  std::set<std::string> colour_family_names;
  PhraseTable colours;                                // surface → canonical colour
  std::map<std::string, std::string> material_family;
  std::set<std::string> material_generics;
  PhraseTable materials;                              // surface → canonical material (or generic)
  std::vector<std::pair<std::string, UnitInfo>> unit_aliases;  // longest first
  double tolerance = 0.25;
  std::vector<std::string> accessory_segments, head_breaks;
  std::set<std::string> stop_words;
  std::map<std::string, std::string> synonyms;        // phrase → canonical phrase
  // Mined from the catalogue.
  PhraseTable brands;                                 // query surface → brand key
  std::map<std::string, std::string> title_brand;     // title → mined brand (title-only items)
  std::map<std::string, int> prefix_count;            // lower-cased title prefixes → products
  PhraseTable leaves;                                 // category phrase → leaf path (structured)
  PhraseTable heads;                                  // head noun phrase → head noun (title-only)
  int n_leaves = 0, n_heads = 0, n_brands = 0;
  std::set<std::string> known_words;  // every lexicon word: exact, never a typo

  void load_lexicon(const json& j, const std::string& src);
  void mine(const std::vector<Pair>& catalogue);

  std::vector<NumMention> numbers(const std::string& text) const;
  std::vector<std::pair<size_t, size_t>> models(const std::string& text, const std::vector<NumMention>& nums) const;
  std::string brand_key(const std::string& brand) const { return to_lower_ascii(collapse_whitespace(brand)); }
  std::string title_brand_of(const std::string& title) const;
  // The product noun of a title: (head noun, [b, e) of the head phrase, head segment end).
  bool title_head(const std::string& title, std::string& head, size_t& b, size_t& e, size_t& seg_end) const;
  bool is_accessory(const std::string& path) const;
  // A colour, material or unit word: never a product noun.
  bool is_attribute_word(const std::string& w) const {
    if (colour_family.count(w) || material_family.count(w) || material_generics.count(w)) return true;
    for (const auto& [alias, u] : unit_aliases)
      if (alias == w) return true;
    return false;
  }
  std::string verdict_colour(const std::string& q, const std::string& i) const;
  std::string verdict_material(const std::string& q, const std::string& i) const;
  std::string verdict_number(const NumMention& q, const NumMention& i) const;
  int conclude(const std::vector<CotStep>& steps) const;
  Cot judge(const Pair& p) const;
};

void AttributeAnnotator::Impl::load_lexicon(const json& j, const std::string& src) {
  try {
    for (auto& [fam, list] : j.at("colors").items())
      for (const auto& c : list) {
        colour_family[c.get<std::string>()] = fam;
        colours.add(c.get<std::string>(), c.get<std::string>());
      }
    for (auto& [syn, canon] : j.at("color_synonyms").items()) {
      if (!colour_family.count(canon.get<std::string>()))
        fail("{}: color_synonyms['{}'] names '{}', which is in no colour family", src, syn, canon.get<std::string>());
      colour_family[syn] = colour_family[canon.get<std::string>()];
    }
    for (const auto& f : j.at("color_family_names")) {
      colour_family_names.insert(f.get<std::string>());
      colours.add(f.get<std::string>(), f.get<std::string>());
    }
    for (auto& [fam, list] : j.at("materials").items())
      for (const auto& m : list) {
        material_family[m.get<std::string>()] = fam;
        materials.add(m.get<std::string>(), m.get<std::string>());
      }
    for (const auto& g : j.at("material_generics")) {
      material_generics.insert(g.get<std::string>());
      materials.add(g.get<std::string>(), g.get<std::string>());
    }
    for (auto& [unit, info] : j.at("units").items()) {
      UnitInfo u{unit, info.at("attribute").get<std::string>(), info.at("factor").get<double>()};
      for (const auto& a : info.at("aliases")) unit_aliases.push_back({to_lower_ascii(a.get<std::string>()), u});
    }
    std::stable_sort(unit_aliases.begin(), unit_aliases.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    tolerance = j.at("numeric_partial_tolerance").get<double>();
    for (auto& [syn, canon] : j.at("category_synonyms").items()) synonyms[syn] = canon.get<std::string>();
    accessory_segments = j.at("accessory_segments").get<std::vector<std::string>>();
    head_breaks = j.at("title_head_breaks").get<std::vector<std::string>>();
    for (const auto& w : j.at("stop_words")) stop_words.insert(w.get<std::string>());
  } catch (const json::exception& e) {
    fail("{}: bad lexicon: {}", src, e.what());
  }
}

std::vector<NumMention> AttributeAnnotator::Impl::numbers(const std::string& s) const {
  std::vector<NumMention> out;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    unsigned char prev = i ? static_cast<unsigned char>(s[i - 1]) : ' ';
    if (!std::isdigit(c) || is_word_byte(prev) || prev == '/' || prev == '.' || prev == '#') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
      ++j;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    }
    if (j < s.size() && s[j] == '/') {  // a fraction: not a plain number
      i = j + 1;
      continue;
    }
    double value = std::stod(s.substr(i, j - i));
    size_t k = j;
    if (k < s.size() && s[k] == ' ') ++k;
    if (k < s.size() && s[k] == '-') ++k;
    bool found = false;
    for (const auto& [alias, u] : unit_aliases) {
      if (k + alias.size() > s.size()) continue;
      if (to_lower_ascii(std::string_view(s).substr(k, alias.size())) != alias) continue;
      size_t end = k + alias.size();
      if (end < s.size() && is_alpha(static_cast<unsigned char>(s[end])) && is_alpha(static_cast<unsigned char>(alias.back())))
        continue;
      out.push_back({value, value * u.factor, u.unit, u.attr, i, end});
      i = end;
      found = true;
      break;
    }
    if (!found) i = j;
  }
  return out;
}

// Model-like chunks: whitespace-separated, >= 2 letters and >= 2 digits, not a number with a unit.
std::vector<std::pair<size_t, size_t>> AttributeAnnotator::Impl::models(const std::string& s,
                                                                        const std::vector<NumMention>& nums) const {
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = 0;
  while (i < s.size()) {
    if (std::isspace(static_cast<unsigned char>(s[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    size_t b = i, e = j;
    while (b < e && (s[b] == '#' || s[b] == '(')) ++b;
    while (e > b && std::strchr(".,;:)", s[e - 1])) --e;
    int letters = 0, digits = 0;
    for (size_t k = b; k < e; ++k) {
      letters += is_alpha(static_cast<unsigned char>(s[k]));
      digits += std::isdigit(static_cast<unsigned char>(s[k])) != 0;
    }
    bool overlaps = false;
    for (const auto& n : nums) overlaps |= n.b < e && b < n.e;
    bool fraction = std::find(s.begin() + b, s.begin() + e, '/') != s.begin() + e;
    if (letters >= 2 && digits >= 2 && e - b >= 4 && !overlaps && !fraction) out.push_back({b, e});
    i = j;
  }
  return out;
}

bool AttributeAnnotator::Impl::is_accessory(const std::string& path) const {
  auto segs = split(path, '/');
  for (size_t k = 0; k + 1 < segs.size(); ++k) {
    std::string seg = to_lower_ascii(trim(segs[k]));
    for (const auto& a : accessory_segments)
      if (seg.find(a) != std::string::npos) return true;
  }
  return false;
}

std::string AttributeAnnotator::Impl::title_brand_of(const std::string& title) const {
  auto it = title_brand.find(title);
  return it == title_brand.end() ? "" : it->second;
}

bool AttributeAnnotator::Impl::title_head(const std::string& title, std::string& head, size_t& b, size_t& e,
                                          size_t& seg_end) const {
  std::string brand = title_brand_of(title);
  size_t start = brand.empty() ? 0 : brand.size();
  std::string lower = to_lower_ascii(title);
  seg_end = title.size();
  for (const auto& br : head_breaks) {
    size_t pos = lower.find(br, start);
    if (pos != std::string::npos && pos > start) seg_end = std::min(seg_end, pos);
  }
  auto toks = tokenize(title.substr(0, seg_end));
  auto nums = numbers(title.substr(0, seg_end));
  auto content = [&](const Tok& t) {
    if (t.b < start || t.w.size() < 3 || has_digit(t.w) || stop_words.count(t.w) || is_attribute_word(t.w)) return false;
    for (const auto& n : nums)
      if (n.b < t.e && t.b < n.e) return false;
    return std::all_of(t.w.begin(), t.w.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
  };
  for (size_t k = toks.size(); k-- > 0;) {
    if (!content(toks[k])) continue;
    head = singular(toks[k].w);
    e = toks[k].e;
    b = toks[k].b;
    // Two-word head ("lawn mower") when the word before is a plain content word.
    if (k > 0 && content(toks[k - 1]) && toks[k - 1].e + 1 == toks[k].b) {
      std::vector<bool> none(1, false);
      std::vector<Tok> one = {toks[k - 1]};
      if (colours.find_all(one, none).empty() && materials.find_all(one, none).empty()) b = toks[k - 1].b;
    }
    return true;
  }
  return false;
}

void AttributeAnnotator::Impl::mine(const std::vector<Pair>& catalogue) {
  std::map<std::string, const Item*> items;  // distinct by id, else by title
  for (const auto& p : catalogue) items.emplace(p.item.id.empty() ? p.item.title : p.item.id, &p.item);
  std::set<std::string> leaf_paths;
  std::vector<const Item*> title_only;
  for (const auto& [id, it] : items) {
    if (!it->brand.empty()) brands.add(it->brand, brand_key(it->brand));
    if (!it->category.empty()) leaf_paths.insert(it->category);
    if (it->category.empty() && it->brand.empty() && it->attributes.empty()) title_only.push_back(it);
  }
  // Structured categories: each leaf by its name, and synonyms that name a leaf.
  for (const auto& path : leaf_paths) {
    auto segs = split(path, '/');
    leaves.add(trim(segs.back()), path);
  }
  for (const auto& [syn, canon] : synonyms)
    for (const auto& path : leaf_paths) {
      auto lw = words_of(trim(split(path, '/').back()));
      auto cw = words_of(canon);
      bool same = lw.size() == cw.size();
      for (size_t k = 0; same && k < lw.size(); ++k) same = word_eq(cw[k], lw[k]);
      if (same) leaves.add(syn, path);
    }
  n_leaves = static_cast<int>(leaf_paths.size());

  // Title-only items: brands as recurring title prefixes.
  auto prefix = [](const std::string& title, size_t k) {
    auto w = split(collapse_whitespace(title), ' ');
    if (w.size() <= k) return std::string();  // the whole title is not a prefix
    std::vector<std::string> p(w.begin(), w.begin() + static_cast<long>(k));
    for (const auto& x : p)
      if (x.empty() || !(std::isupper(static_cast<unsigned char>(x[0])) || std::isdigit(static_cast<unsigned char>(x[0]))))
        return std::string();
    return join(p, " ");
  };
  for (const Item* it : title_only)
    for (size_t k = 1; k <= 3; ++k) {
      std::string p = prefix(it->title, k);
      if (!p.empty()) prefix_count[p]++;
    }
  std::map<std::string, int> brand_products;
  for (const Item* it : title_only) {
    std::string best;
    int prev = 0;
    for (size_t k = 1; k <= 3; ++k) {
      std::string p = prefix(it->title, k);
      if (p.empty()) break;
      int c = prefix_count[p];
      if (c < 3 || (k > 1 && c * 2 < prev)) break;
      best = p;
      prev = c;
    }
    if (best.empty()) continue;
    // A brand is a name, not a number or a unit ("3-Light", "48 in.").
    if (!numbers(best).empty() || has_digit(words_of(best).back())) continue;
    title_brand[it->title] = best;
    brand_products[best]++;
  }
  // Query side: a brand is searched only when its words are rarely ordinary title words.
  std::map<std::string, int> inner_words;  // word → products where it appears after the brand
  for (const Item* it : title_only) {
    std::string br = title_brand_of(it->title);
    std::set<std::string> seen;
    for (const auto& t : tokenize(it->title.substr(br.size()))) seen.insert(t.w);
    for (const auto& w : seen) inner_words[w]++;
  }
  for (const auto& [br, n] : brand_products) {
    auto w = words_of(br);
    if (w.empty()) continue;
    bool distinctive = inner_words[w[0]] * 5 < n && !stop_words.count(w[0]) && w[0].size() >= 2;
    if (w.size() == 1 && !distinctive) continue;
    brands.add(br, brand_key(br));
    if (w.size() > 1 && distinctive && w[0].size() >= 4) brands.add(w[0], brand_key(br));  // "behr" for "BEHR Premium"
  }
  n_brands = static_cast<int>(brands.size());

  // Title-only categories: head nouns seen on >= 2 products.
  std::map<std::string, int> head_count;
  std::map<std::string, std::string> head_phrase;
  for (const Item* it : title_only) {
    std::string h;
    size_t b, e, seg;
    if (!title_head(it->title, h, b, e, seg)) continue;
    head_count[h]++;
  }
  for (const auto& [h, n] : head_count)
    if (n >= 2 && !is_attribute_word(h)) heads.add(h, h);
  for (const auto& [syn, canon] : synonyms) {
    auto cw = words_of(canon);
    if (!cw.empty() && head_count.count(singular(cw.back()))) heads.add(syn, singular(cw.back()));
  }
  n_heads = static_cast<int>(heads.size());
}

std::string AttributeAnnotator::Impl::verdict_colour(const std::string& q, const std::string& i) const {
  auto fam = [&](const std::string& c) {
    auto it = colour_family.find(c);
    return it == colour_family.end() ? c : it->second;
  };
  auto canon = [&](const std::string& c) { return c == "grey" ? std::string("gray") : c; };
  std::string a = canon(q), b = canon(i);
  if (a == b) return "match";
  if (colour_family_names.count(a) && a == fam(b)) return "partial";
  return fam(a) == fam(b) ? "partial" : "mismatch";
}

std::string AttributeAnnotator::Impl::verdict_material(const std::string& q, const std::string& i) const {
  auto fam = [&](const std::string& m) {
    auto it = material_family.find(m);
    return it == material_family.end() ? m : it->second;
  };
  if (q == i) return "match";
  if (material_generics.count(q)) return q == fam(i) ? "match" : "mismatch";
  return fam(q) == fam(i) ? "partial" : "mismatch";
}

std::string AttributeAnnotator::Impl::verdict_number(const NumMention& q, const NumMention& i) const {
  double a = q.base, b = i.base;
  if (std::fabs(a - b) <= 1e-6 * std::max(1.0, std::max(a, b))) return "match";
  if (a <= 0 || b <= 0) return "mismatch";
  return std::fabs(a - b) / std::max(a, b) <= tolerance ? "partial" : "mismatch";
}

int AttributeAnnotator::Impl::conclude(const std::vector<CotStep>& steps) const {
  bool weak = false;
  for (const auto& s : steps) {
    if (s.dimension == "category" && s.verdict == Verdict::mismatch) return 0;
    weak |= s.verdict == Verdict::partial || s.verdict == Verdict::mismatch;
  }
  return weak ? grades.positive_from : grades.size() - 1;
}

Cot AttributeAnnotator::Impl::judge(const Pair& p) const {
  const std::string& q = p.query;
  const Item& item = p.item;
  const std::string itext = item_text(item);
  const bool structured = !item.category.empty() || !item.brand.empty() || !item.attributes.empty();
  auto toks = tokenize(q);
  std::vector<bool> used(toks.size(), false);
  auto consume = [&](size_t b, size_t e) {
    for (size_t k = 0; k < toks.size(); ++k)
      if (toks[k].b < e && b < toks[k].e) used[k] = true;
  };
  auto span_text = [&](const Match& m) { return cut(q, toks[m.i].b, toks[m.i + m.n - 1].e); };

  // Query side, in order of specificity.
  auto qnums = numbers(q);
  for (const auto& n : qnums) consume(n.b, n.e);
  auto qmodels = models(q, qnums);
  for (const auto& [b, e] : qmodels) consume(b, e);
  auto qbrands = brands.find_all(toks, used);
  if (!qbrands.empty()) consume(toks[qbrands[0].i].b, toks[qbrands[0].i + qbrands[0].n - 1].e);
  // Category: the rightmost phrase (English puts the product noun last), longest on ties.
  const PhraseTable& cats = structured ? leaves : heads;
  std::optional<Match> qcat;
  for (const auto& m : cats.find_all(toks, used, true))
    if (!qcat || m.i + m.n > qcat->i + qcat->n || (m.i + m.n == qcat->i + qcat->n && m.n > qcat->n)) qcat = m;
  if (qcat) consume(toks[qcat->i].b, toks[qcat->i + qcat->n - 1].e);
  auto qcolours = colours.find_all(toks, used);
  for (const auto& m : qcolours) consume(toks[m.i].b, toks[m.i + m.n - 1].e);
  auto qmaterials = materials.find_all(toks, used);
  for (const auto& m : qmaterials) consume(toks[m.i].b, toks[m.i + m.n - 1].e);
  // Title-only: a query noun outside the vocabulary still names what is wanted.
  std::string qcat_text, qhead;
  if (qcat) {
    qcat_text = span_text(*qcat);
    qhead = qcat->value;
  } else if (!structured) {
    for (size_t k = toks.size(); k-- > 0;) {
      const auto& w = toks[k].w;
      if (used[k] || w.size() < 3 || stop_words.count(w) || is_attribute_word(w) ||
          !std::all_of(w.begin(), w.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }))
        continue;
      qcat_text = cut(q, toks[k].b, toks[k].e);
      qhead = singular(w);
      auto syn = synonyms.find(w);
      if (syn != synonyms.end()) qhead = singular(words_of(syn->second).back());
      break;
    }
  }

  std::vector<CotStep> steps;
  auto step = [&](const std::string& dim, const std::string& qt, const std::string& it, const std::string& verdict) {
    CotStep s;
    s.dimension = dim;
    s.query_term = qt;
    s.item_term = it;
    if (qt.empty() || it.empty()) s.verdict = Verdict::absent;
    else parse_verdict(verdict, s.verdict);
    steps.push_back(std::move(s));
  };

  // ---- category ----
  if (structured) {
    std::string leaf = item.category.empty() ? "" : trim(split(item.category, '/').back());
    std::string verdict = "mismatch";
    if (qcat && !item.category.empty()) {
      const std::string& qpath = qcat->value;
      if (qpath == item.category) verdict = "match";
      else if (!is_accessory(qpath) && !is_accessory(item.category) &&
               qpath.substr(0, qpath.rfind(" / ")) == item.category.substr(0, item.category.rfind(" / ")))
        verdict = "partial";
    }
    step("category", qcat_text, leaf, verdict);
  } else {
    std::string head;
    size_t hb = 0, he = 0, seg_end = 0;
    bool has_head = title_head(item.title, head, hb, he, seg_end);
    std::string verdict = "mismatch";
    if (!qhead.empty() && has_head) {
      auto ttoks = tokenize(item.title);
      size_t for_pos = to_lower_ascii(item.title).find(" for ");
      if (word_eq(qhead, head) || word_eq(head, qhead)) {
        verdict = "match";
      } else {
        bool in_title = false, after_for = false, other_word = false;
        for (const auto& t : ttoks)
          if (word_eq(t.w, qhead)) {
            in_title = true;
            after_for |= for_pos != std::string::npos && t.b > for_pos;
          }
        for (size_t k = 0; k < toks.size() && !in_title; ++k) {
          if (stop_words.count(toks[k].w) || toks[k].w.size() < 3 || has_digit(toks[k].w)) continue;
          for (const auto& t : ttoks) other_word |= t.b < seg_end && word_eq(toks[k].w, t.w);
        }
        if (after_for) verdict = "mismatch";
        else if (in_title || other_word) verdict = "partial";
      }
    }
    step("category", qcat_text, has_head ? cut(item.title, hb, he) : "", verdict);
  }

  // ---- brand ----
  std::string ibrand = structured ? item.brand : title_brand_of(item.title);
  std::string qbrand = qbrands.empty() ? "" : span_text(qbrands[0]);
  step("brand", qbrand, ibrand,
       !qbrands.empty() && !ibrand.empty() && qbrands[0].value == brand_key(ibrand) ? "match" : "mismatch");

  // ---- model ----
  std::string imodel = item.model;
  if (imodel.empty() && !structured) {
    auto ms = models(item.title, numbers(item.title));
    if (!ms.empty()) imodel = cut(item.title, ms[0].first, ms[0].second);
  }
  std::string qmodel = qmodels.empty() ? "" : cut(q, qmodels[0].first, qmodels[0].second);
  if (!qmodel.empty() || !imodel.empty()) {
    auto norm = [](const std::string& m) {
      std::string o;
      for (char c : m)
        if (std::isalnum(static_cast<unsigned char>(c))) o += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return o;
    };
    std::string a = norm(qmodel), b = norm(imodel);
    std::string v = a == b ? "match"
                    : (a.size() == b.size() && a.size() >= 4 && a.compare(0, a.size() - 2, b, 0, b.size() - 2) == 0)
                        ? "partial"
                        : "mismatch";
    step("model", qmodel, imodel, v);
  }

  // ---- attributes, in query order ----
  struct Attr {
    size_t pos;
    std::function<void()> write;
  };
  std::vector<Attr> attrs;
  auto item_attr = [&](std::initializer_list<const char*> keys) -> std::string {
    for (const char* k : keys) {
      auto it = item.attributes.find(k);
      if (it != item.attributes.end()) return it->second;
    }
    return "";
  };
  auto title_match = [&](const PhraseTable& table, std::string& value) -> std::string {
    auto ttoks = tokenize(item.title);
    std::vector<bool> none(ttoks.size(), false);
    auto ms = table.find_all(ttoks, none);
    if (ms.empty()) return "";
    value = ms[0].value;
    return cut(item.title, ttoks[ms[0].i].b, ttoks[ms[0].i + ms[0].n - 1].e);
  };
  if (!qcolours.empty()) {
    const Match m = qcolours[0];
    attrs.push_back({toks[m.i].b, [&, m] {
                       std::string value, term = structured ? item_attr({"color", "colour"}) : title_match(colours, value);
                       if (structured) value = to_lower_ascii(term);
                       step("attribute:color", span_text(m), term, verdict_colour(m.value, value));
                     }});
  }
  if (!qmaterials.empty()) {
    const Match m = qmaterials[0];
    attrs.push_back({toks[m.i].b, [&, m] {
                       std::string value, term = structured ? item_attr({"material"}) : title_match(materials, value);
                       if (structured) value = to_lower_ascii(term);
                       step("attribute:material", span_text(m), term, verdict_material(m.value, value));
                     }});
  }
  std::set<std::string> attr_seen;
  for (const auto& n : qnums) {
    if (!attr_seen.insert(n.attr).second) continue;
    attrs.push_back({n.b, [&, n] {
                       // The item's values of the same measure: from its attributes, else its title.
                       std::string dim = n.attr, best_term, best = "";
                       auto consider = [&](const std::string& text, const std::string& key, bool whole) {
                         for (const auto& v : numbers(text)) {
                           if (v.attr != n.attr) continue;
                           std::string verdict = verdict_number(n, v);
                           if (verdict_rank(verdict) > verdict_rank(best)) {
                             best = verdict;
                             best_term = whole ? text : cut(text, v.b, v.e);
                             if (!key.empty()) dim = key;
                           }
                         }
                       };
                       if (structured)
                         for (const auto& [k, v] : item.attributes) consider(v, k, true);
                       else
                         consider(item.title, "", false);
                       step("attribute:" + dim, cut(q, n.b, n.e), best_term, best.empty() ? "absent" : best);
                     }});
  }
  std::stable_sort(attrs.begin(), attrs.end(), [](const Attr& a, const Attr& b) { return a.pos < b.pos; });
  for (auto& a : attrs) a.write();

  // One line per dimension: a repeated attribute name keeps its first line.
  std::set<std::string> dims;
  std::vector<CotStep> unique;
  for (auto& s : steps)
    if (dims.insert(s.dimension).second) unique.push_back(std::move(s));
  Cot cot;
  cot.steps = std::move(unique);
  cot.grade = conclude(cot.steps);
  cot.conclusion = grades.labels[cot.grade];
  (void)itext;
  return cot;
}

AttributeAnnotator::AttributeAnnotator(const std::vector<Pair>& catalogue, const json& lexicon,
                                       const std::string& source, const GradeScale& grades)
    : impl_(std::make_unique<Impl>()) {
  impl_->grades = grades;
  impl_->load_lexicon(lexicon, source);
  impl_->mine(catalogue);
  Impl& m = *impl_;
  for (const PhraseTable* t : {&m.colours, &m.materials, &m.brands, &m.leaves, &m.heads}) t->collect_words(m.known_words);
  m.known_words.insert(m.stop_words.begin(), m.stop_words.end());
  for (PhraseTable* t : {&m.colours, &m.materials, &m.brands, &m.leaves, &m.heads}) t->set_known(&m.known_words);
}

AttributeAnnotator::~AttributeAnnotator() = default;

Cot AttributeAnnotator::judge(const Pair& pair) const { return impl_->judge(pair); }

std::string AttributeAnnotator::mined_brand(const std::string& title) const { return impl_->title_brand_of(title); }

std::vector<AnnotatorAnswer> AttributeAnnotator::annotate(const std::vector<Pair>& pairs) {
  std::vector<AnnotatorAnswer> out(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) out[i].samples.push_back(write_cot(judge(pairs[i])));
  return out;
}

json AttributeAnnotator::stats() const {
  return {{"category_phrases", impl_->n_leaves ? impl_->leaves.size() : impl_->heads.size()},
          {"structured_categories", impl_->n_leaves},
          {"title_head_nouns", impl_->n_heads},
          {"brand_phrases", impl_->n_brands},
          {"mined_title_brands", impl_->title_brand.size()}};
}

}  // namespace ellm
