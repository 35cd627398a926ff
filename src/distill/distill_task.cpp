#include "ellm/distill/distill_task.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ellm/text/item_text.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm {

double binary_auc(const std::vector<double>& scores, const std::vector<int>& positive) {
  ELLM_CHECK(scores.size() == positive.size(), "auc: {} scores but {} labels", scores.size(), positive.size());
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Mann–Whitney U from average ranks (ties share their mean rank).
  double rank_sum = 0;
  int64_t n_pos = 0, n_neg = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    double mean_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (size_t k = i; k < j; ++k) {
      if (positive[order[k]]) rank_sum += mean_rank, ++n_pos;
      else ++n_neg;
    }
    i = j;
  }
  if (n_pos == 0 || n_neg == 0) return std::nan("");
  return (rank_sum - static_cast<double>(n_pos) * (n_pos + 1) / 2.0) / (static_cast<double>(n_pos) * n_neg);
}

namespace {

// The teacher's row must hold exactly the student's cross-encoder encoding.
void check_row_matches(const TeacherTargets& t, int64_t row, const StudentTokens& cross, const std::string& pair_id) {
  ELLM_CHECK(static_cast<int64_t>(cross.size()) <= t.length(),
             "{}: pair {}: the student's input has {} tokens but the targets' rows hold {} (max_length differs?)", t.dir,
             pair_id, cross.size(), t.length());
  auto all_ids = t.input_ids.accessor<int64_t, 2>();
  auto ids = all_ids[row];
  for (size_t j = 0; j < cross.size(); ++j) {
    int64_t file_id = ids[j];
    if (file_id != cross.ids[j])
      fail("{}: pair {}: targets input_ids differ from the student's encoding at token {} (teacher file {}, "
           "student {}): run `ellm teacher` with this student's tokenizer and max_length",
           t.dir, pair_id, j, file_id, cross.ids[j]);
  }
}

// Factors of one segment of the teacher row, moved onto a tower's tokens.
std::vector<float> tower_factors(const std::vector<float>& seg_factors, const StudentTokens& tower) {
  float smallest = 0;
  for (float f : seg_factors)
    if (f > 0 && (smallest == 0 || f < smallest)) smallest = f;
  if (smallest == 0) smallest = 1;
  std::vector<float> out(tower.size(), 0.0f);
  size_t j = 0;
  double sum = 0;
  for (size_t t = 0; t < tower.size(); ++t) {
    if (tower.alignment.segment[t] == Segment::special) continue;
    out[t] = j < seg_factors.size() ? seg_factors[j] : smallest;
    ++j;
    sum += out[t];
  }
  if (sum > 0)
    for (auto& f : out) f = static_cast<float>(f / sum);
  return out;
}

}  // namespace

DistillTask::DistillTask(Student& student, std::string tokenizer_path, std::vector<Pair> train, std::vector<Pair> dev,
                         const TeacherTargets* teacher, DistillLossConfig loss, int64_t eval_batch)
    : student_(student),
      tokenizer_path_(std::move(tokenizer_path)),
      train_(std::move(train)),
      dev_(std::move(dev)),
      teacher_(teacher),
      loss_(loss),
      eval_batch_(eval_batch) {
  const bool cross = student_.kind() == StudentKind::cross_encoder;
  if (!teacher_)
    ELLM_CHECK(loss_.score == 0 && loss_.bio == 0 && loss_.attn == 0 && !loss_.adjust_pooling,
               "loss.score, loss.bio, loss.attn and loss.adjust_pooling need teacher targets: pass --teacher DIR "
               "(or set them to 0/false)");
  if (cross && (loss_.attn > 0 || loss_.adjust_pooling))
    fail("loss.attn and loss.adjust_pooling are two-tower terms; the cross-encoder learns the CoT through loss.bio");
  if (!cross && loss_.bio > 0)
    fail("loss.bio is the cross-encoder's term; the two-tower learns the CoT through loss.attn / loss.adjust_pooling");
  ELLM_CHECK(loss_.ce > 0 || loss_.score > 0 || loss_.bio > 0 || loss_.attn > 0, "every loss weight is 0");
  const bool need_cot = loss_.bio > 0 || loss_.attn > 0 || loss_.adjust_pooling;
  if (teacher_ && need_cot) {
    // Fail early, with the reason, when the targets were built for another layout.
    auto it = teacher_->metadata.find("max_length");
    if (it != teacher_->metadata.end())
      ELLM_CHECK(it->second == std::to_string(student_.config().limits.max_length),
                 "{}: targets were built with max_length {} but the student uses {} (inputs.max_length)", teacher_->dir,
                 it->second, student_.config().limits.max_length);
    it = teacher_->metadata.find("max_query_tokens");
    if (it != teacher_->metadata.end())
      ELLM_CHECK(it->second == std::to_string(student_.config().limits.max_query_tokens),
                 "{}: targets were built with max_query_tokens {} but the student uses {} (inputs.max_query_tokens)",
                 teacher_->dir, it->second, student_.config().limits.max_query_tokens);
  }
  const auto& in = student_.inputs();
  examples_.reserve(train_.size());
  for (const Pair& p : train_) {
    Example ex;
    ex.label = p.label;
    ELLM_CHECK(p.label < student_.config().grades.size(), "pair {}: label {} is outside the {} grades", p.id, p.label,
               student_.config().grades.size());
    std::string text = item_text(p.item);
    StudentTokens cross_in = in.cross(p.query, text);
    if (teacher_) {
      ex.teacher_row = teacher_->row(p.id);
      if (ex.teacher_row >= 0) {
        ++with_teacher_;
        ex.has_cot = need_cot && teacher_->has_cot[ex.teacher_row];
      }
    }
    if (ex.has_cot) {
      ++with_cot_;
      check_row_matches(*teacher_, ex.teacher_row, cross_in, p.id);
    }
    if (cross) {
      if (ex.has_cot) {
        auto all_bio = teacher_->bio.accessor<int64_t, 2>();
        auto bio = all_bio[ex.teacher_row];
        ex.tags.resize(cross_in.size());
        for (size_t t = 0; t < cross_in.size(); ++t)
          ex.tags[t] = cross_in.alignment.segment[t] == Segment::special ? -1 : bio[t];
      }
      ex.cross = std::move(cross_in);
    } else {
      ex.query = in.query_tower(p.query);
      ex.item = in.item_tower(text);
      if (ex.has_cot) {
        auto all_f = teacher_->attn_factor.accessor<float, 2>();
        auto f = all_f[ex.teacher_row];
        std::vector<float> qf, itf;
        std::vector<int64_t> qids, iids;
        for (size_t t = 0; t < cross_in.size(); ++t) {
          if (cross_in.alignment.segment[t] == Segment::query) qf.push_back(f[t]), qids.push_back(cross_in.ids[t]);
          if (cross_in.alignment.segment[t] == Segment::item) itf.push_back(f[t]), iids.push_back(cross_in.ids[t]);
        }
        // The towers tokenize the same texts: counting text tokens only (tower_factors skips
        // special and empty-span ones the same way), one of the two sequences is a prefix of
        // the other — whichever the length limits cut shorter.
        auto check_prefix = [&](const std::vector<int64_t>& row_ids, const StudentTokens& tower, const char* which) {
          size_t j = 0;
          for (size_t t = 0; t < tower.size() && j < row_ids.size(); ++t) {
            if (tower.alignment.segment[t] == Segment::special) continue;
            ELLM_CHECK(tower.ids[t] == row_ids[j], "pair {}: {} tower text token {} differs from the targets' row", p.id,
                       which, j);
            ++j;
          }
        };
        check_prefix(qids, ex.query, "query");
        check_prefix(iids, ex.item, "item");
        ex.query_factors = tower_factors(qf, ex.query);
        ex.item_factors = tower_factors(itf, ex.item);
      }
    }
    examples_.push_back(std::move(ex));
  }
  if (teacher_)
    spdlog::info("distill: {} training pairs, {} with teacher scores, {} with CoT targets", train_.size(), with_teacher_,
                 with_cot_);
  if (teacher_ && with_teacher_ == 0)
    spdlog::warn("distill: no training pair id occurs in {}/teacher.jsonl: only L_ce applies", teacher_->dir);
}

int64_t DistillTask::example_length(int64_t i) const {
  const Example& ex = examples_[i];
  return static_cast<int64_t>(ex.cross.size() + ex.query.size() + ex.item.size());
}

std::string DistillTask::describe(const std::vector<int64_t>& examples) const {
  std::vector<std::string> ids;
  for (size_t i = 0; i < examples.size() && i < 8; ++i) ids.push_back(train_[examples[i]].id);
  return "pairs " + join(ids, ", ") + (examples.size() > 8 ? ", …" : "");
}

MicroBatchLoss DistillTask::loss(const std::vector<int64_t>& batch) {
  const int64_t b = static_cast<int64_t>(batch.size());
  const int k = student_.config().grades.size();
  const auto& grades = student_.config().grades;
  std::vector<int64_t> labels;
  std::vector<float> has_teacher, has_cot, tprobs, tscore;
  for (int64_t i : batch) {
    const Example& ex = examples_[i];
    labels.push_back(ex.label);
    has_teacher.push_back(ex.teacher_row >= 0);
    has_cot.push_back(ex.has_cot);
    for (int g = 0; g < k; ++g)
      tprobs.push_back(ex.teacher_row >= 0 ? teacher_->grade_probs.accessor<float, 2>()[ex.teacher_row][g] : 1.0f / k);
    tscore.push_back(ex.teacher_row >= 0 ? teacher_->score.accessor<float, 1>()[ex.teacher_row]
                                         : static_cast<float>(grades.values.front()));
  }
  torch::Tensor label_t = torch::tensor(labels, torch::kLong);
  torch::Tensor has_t = torch::tensor(has_teacher), has_c = torch::tensor(has_cot);
  MicroBatchLoss out;
  torch::Tensor logits, total = torch::zeros({});
  auto add = [&](const char* name, double weight, const torch::Tensor& term) {
    total = total + weight * term;
    out.terms[name] = weight * term.item<double>();
  };

  if (student_.kind() == StudentKind::cross_encoder) {
    std::vector<const StudentTokens*> rows;
    for (int64_t i : batch) rows.push_back(&examples_[i].cross);
    TokenBatch tb = collate(rows, student_.inputs().special().pad);
    auto fwd = student_.cross()->forward(tb.ids, tb.types, tb.mask, loss_.bio > 0);
    logits = fwd.grade_logits;
    out.tokens = tb.mask.sum().item<int64_t>();
    if (loss_.bio > 0) {
      torch::Tensor tags = torch::full(tb.ids.sizes(), -1, torch::kLong);
      auto acc = tags.accessor<int64_t, 2>();
      for (int64_t r = 0; r < b; ++r) {
        const auto& t = examples_[batch[r]].tags;
        for (size_t j = 0; j < t.size(); ++j) acc[r][j] = t[j];
      }
      add("bio", loss_.bio, bio_loss(fwd.tag_logits, tags));
    }
  } else {
    std::vector<const StudentTokens*> qs, is;
    for (int64_t i : batch) qs.push_back(&examples_[i].query), is.push_back(&examples_[i].item);
    TokenBatch qb = collate(qs, student_.inputs().special().pad), ib = collate(is, student_.inputs().special().pad);
    out.tokens = qb.mask.sum().item<int64_t>() + ib.mask.sum().item<int64_t>();
    torch::Tensor qf, itf;
    const bool need_factors = loss_.attn > 0 || loss_.adjust_pooling;
    if (need_factors) {
      // Rows without CoT targets: factor 1 everywhere (log 1 = 0 leaves the pooling alone; masked in L_attn).
      qf = torch::ones(qb.ids.sizes());
      itf = torch::ones(ib.ids.sizes());
      auto qa = qf.accessor<float, 2>(), ia = itf.accessor<float, 2>();
      for (int64_t r = 0; r < b; ++r) {
        const Example& ex = examples_[batch[r]];
        if (!ex.has_cot) continue;
        for (int64_t j = 0; j < qf.size(1); ++j) qa[r][j] = j < static_cast<int64_t>(ex.query_factors.size()) ? ex.query_factors[j] : 0.f;
        for (int64_t j = 0; j < itf.size(1); ++j) ia[r][j] = j < static_cast<int64_t>(ex.item_factors.size()) ? ex.item_factors[j] : 0.f;
      }
    }
    auto& tt = student_.two_tower();
    bool adjust = loss_.adjust_pooling && student_.module().is_training();
    auto q = tt->encode(0, qb.ids, qb.mask, qb.content, adjust ? qf : torch::Tensor());
    auto it = tt->encode(1, ib.ids, ib.mask, ib.content, adjust ? itf : torch::Tensor());
    logits = tt->grade_logits(tt->score(q.embedding, it.embedding));
    if (loss_.attn > 0) {
      // Targets: the factors on rows with CoT (zeros elsewhere, masked anyway).
      auto mask = has_c.unsqueeze(1);
      add("attn", loss_.attn,
          attn_kl_loss(q.attention, qf * mask, has_c) + attn_kl_loss(it.attention, itf * mask, has_c));
    }
  }
  if (loss_.ce > 0) add("ce", loss_.ce, ce_loss(logits, label_t));
  if (loss_.score > 0) {
    torch::Tensor term;
    if (loss_.score_kind == "kl") {
      term = score_kl_loss(logits, torch::tensor(tprobs).view({b, k}), loss_.temperature, has_t);
    } else {
      torch::Tensor s = expected_score(logits, grades.values);
      torch::Tensor t = normalise_score(torch::tensor(tscore), grades.values).clamp(0, 1);
      term = loss_.score_kind == "mse" ? score_mse_loss(s, t, has_t) : score_bce_loss(s, t, has_t);
    }
    add("score", loss_.score, term);
  }
  out.loss_sum = total;
  return out;
}

EvalResult DistillTask::evaluate() {
  EvalResult r;
  if (dev_.empty()) return r;
  torch::Tensor probs = student_.grade_probs(dev_, eval_batch_);
  torch::Tensor rel = relevance_probability(probs, student_.config().grades.positive_from);
  std::vector<double> scores;
  std::vector<int> positive;
  int64_t correct = 0, labelled = 0;
  double ce = 0;
  auto pa = probs.accessor<float, 2>();
  for (size_t i = 0; i < dev_.size(); ++i) {
    int y = dev_[i].label;
    if (y < 0) continue;
    ++labelled;
    scores.push_back(rel[i].item<double>());
    positive.push_back(student_.config().grades.positive(y));
    int64_t pred = probs[i].argmax().item<int64_t>();
    correct += pred == y;
    ce -= std::log(std::max(1e-12, static_cast<double>(pa[i][y])));
  }
  if (labelled == 0) return r;
  double auc = binary_auc(scores, positive);
  r.metrics = {{"dev_pairs", labelled}, {"accuracy", static_cast<double>(correct) / labelled}, {"ce", ce / labelled}};
  if (std::isfinite(auc)) {
    r.metrics["auc"] = auc;
    r.score = auc;
    r.has_score = true;
  }
  return r;
}

void DistillTask::save_model(const std::string& dir) { save_student(student_, dir, tokenizer_path_); }

}  // namespace ellm
