#pragma once
// Request batching for model servers: callers submit work items from any
// thread; one worker thread takes up to `max_batch` items at a time (waiting
// at most `max_wait` for a batch to fill once the first item arrived) and runs
// them through one handler call, so a model sees batches instead of single
// requests. The queue is bounded: submit() on a full queue fails fast (an
// HTTP server answers 429), never blocks.
#include <chrono>
#include <atomic>
#include <condition_variable>
#include <stdexcept>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace ellm {

class QueueFull : public std::runtime_error {
 public:
  QueueFull() : std::runtime_error("the request queue is full") {}
};

template <typename Request, typename Response>
class Batcher {
 public:
  using Handler = std::function<std::vector<Response>(std::vector<Request>&)>;

  Batcher(Handler handler, size_t max_batch, size_t max_queue, std::chrono::milliseconds max_wait)
      : handler_(std::move(handler)), max_batch_(max_batch), max_queue_(max_queue), max_wait_(max_wait) {
    worker_ = std::thread([this] { run(); });
  }
  ~Batcher() { stop(); }
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Throws QueueFull when `max_queue` items are already waiting.
  std::future<Response> submit(Request request) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) throw std::runtime_error("the server is shutting down");
    if (queue_.size() >= max_queue_) throw QueueFull();
    queue_.push_back({std::move(request), std::promise<Response>()});
    auto f = queue_.back().promise.get_future();
    cv_.notify_one();
    return f;
  }

  // Finishes queued work, then joins the worker.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ && !worker_.joinable()) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  size_t queued() const {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }
  size_t batches_run() const { return batches_; }
  size_t items_run() const { return items_; }

 private:
  struct Entry {
    Request request;
    std::promise<Response> promise;
  };

  void run() {
    while (true) {
      std::vector<Entry> batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        // Give a batch a moment to fill, unless it is already full or we are stopping.
        auto deadline = std::chrono::steady_clock::now() + max_wait_;
        while (!stopping_ && queue_.size() < max_batch_ &&
               cv_.wait_until(lock, deadline) != std::cv_status::timeout) {
        }
        size_t n = std::min(max_batch_, queue_.size());
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      std::vector<Request> requests;
      for (auto& e : batch) requests.push_back(std::move(e.request));
      // Counted before any caller is answered, so that a caller sees its own batch counted.
      batches_ += 1;
      items_ += batch.size();
      try {
        std::vector<Response> responses = handler_(requests);
        if (responses.size() != batch.size()) throw std::runtime_error("batch handler returned the wrong number of responses");
        for (size_t i = 0; i < batch.size(); ++i) batch[i].promise.set_value(std::move(responses[i]));
      } catch (...) {
        for (auto& e : batch) e.promise.set_exception(std::current_exception());
      }
    }
  }

  Handler handler_;
  size_t max_batch_, max_queue_;
  std::chrono::milliseconds max_wait_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> queue_;
  bool stopping_ = false;
  std::thread worker_;
  std::atomic<size_t> batches_{0}, items_{0};
};

}  // namespace ellm
