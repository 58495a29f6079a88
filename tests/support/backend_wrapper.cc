#include "support/backend_wrapper.h"

#include <thread>
#include <utility>

namespace cachekit::testing {

void Gate::open() {
  {
    std::lock_guard lock(mutex_);
    open_ = true;
  }
  opened_.notify_all();
}

void Gate::wait() {
  std::unique_lock lock(mutex_);
  ++waiting_;
  opened_.wait(lock, [this] { return open_; });
  --waiting_;
}

int Gate::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

BackendWrapper::BackendWrapper(std::shared_ptr<Backend> inner, BackendWrapperOptions options)
    : inner_(std::move(inner)), info_(inner_->info()), hide_keys_(options.hide_keys) {
  if (!options.name.empty()) info_.name = std::move(options.name);
  if (options.key_policy) info_.key_policy = *options.key_policy;
  if (options.hide_keys) info_.supports_keys = false;
}

void BackendWrapper::set_down(bool down) {
  std::lock_guard lock(mutex_);
  down_ = down;
}

void BackendWrapper::fail_calls(Op op, int first, int last, StatusCode code) {
  std::lock_guard lock(mutex_);
  rules_.push_back({op, first, last < first ? first : last, code});
}

void BackendWrapper::clear_faults() {
  std::lock_guard lock(mutex_);
  down_ = false;
  rules_.clear();
}

void BackendWrapper::set_delay(Op op, std::chrono::milliseconds delay) {
  std::lock_guard lock(mutex_);
  delays_[static_cast<std::size_t>(op)] = delay;
}

void BackendWrapper::hold(Op op, std::shared_ptr<Gate> gate) {
  std::lock_guard lock(mutex_);
  gates_[static_cast<std::size_t>(op)] = std::move(gate);
}

int BackendWrapper::calls(Op op) const {
  std::lock_guard lock(mutex_);
  return calls_[static_cast<std::size_t>(op)];
}

void BackendWrapper::reset_calls() {
  std::lock_guard lock(mutex_);
  calls_.fill(0);
}

// The rules are read under the lock, but the delay and the gate are waited for outside it, so
// a held call never blocks the test thread that opens the gate or the calls of other threads.
Status BackendWrapper::enter(Op op) {
  const auto index = static_cast<std::size_t>(op);
  const auto any = static_cast<std::size_t>(Op::kAny);
  Status fault;
  std::chrono::milliseconds delay{};
  std::shared_ptr<Gate> gate;
  {
    std::lock_guard lock(mutex_);
    const int nth = ++calls_[index];
    const int nth_any = ++calls_[any];
    if (down_) fault = unavailable_error("injected fault: store down");
    for (const FailRule& rule : rules_) {
      const int n = rule.op == Op::kAny ? nth_any : rule.op == op ? nth : 0;
      if (fault.ok() && n >= rule.first && n <= rule.last) {
        fault = Status(rule.code, "injected fault: call " + std::to_string(n));
      }
    }
    delay = delays_[index] + delays_[any];
    gate = gates_[index] ? gates_[index] : gates_[any];
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  if (gate) gate->wait();
  return fault;
}

Result<std::optional<Bytes>> BackendWrapper::get(std::string_view key) {
  if (Status s = enter(Op::kGet); !s.ok()) return s;
  return inner_->get(key);
}

Status BackendWrapper::set(std::string_view key, std::string_view value, Expiry expiry) {
  if (Status s = enter(Op::kSet); !s.ok()) return s;
  return inner_->set(key, value, expiry);
}

Result<bool> BackendWrapper::add(std::string_view key, std::string_view value, Expiry expiry) {
  if (Status s = enter(Op::kAdd); !s.ok()) return s;
  return inner_->add(key, value, expiry);
}

Result<bool> BackendWrapper::touch(std::string_view key, Expiry expiry) {
  if (Status s = enter(Op::kTouch); !s.ok()) return s;
  return inner_->touch(key, expiry);
}

Result<bool> BackendWrapper::erase(std::string_view key) {
  if (Status s = enter(Op::kErase); !s.ok()) return s;
  return inner_->erase(key);
}

Result<std::int64_t> BackendWrapper::incr(std::string_view key, std::int64_t delta) {
  if (Status s = enter(Op::kIncr); !s.ok()) return s;
  return inner_->incr(key, delta);
}

Status BackendWrapper::clear() {
  if (Status s = enter(Op::kClear); !s.ok()) return s;
  return inner_->clear();
}

Result<Ttl> BackendWrapper::ttl(std::string_view key) {
  if (Status s = enter(Op::kTtl); !s.ok()) return s;
  return inner_->ttl(key);
}

Result<std::vector<std::string>> BackendWrapper::keys(std::string_view pattern) {
  if (Status s = enter(Op::kKeys); !s.ok()) return s;
  if (hide_keys_) return unimplemented_error("keys() hidden by the test");
  return inner_->keys(pattern);
}

Result<StatPairs> BackendWrapper::stats() {
  if (Status s = enter(Op::kStats); !s.ok()) return s;
  return inner_->stats();
}

}  // namespace cachekit::testing
