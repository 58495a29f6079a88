#pragma once
// BackendWrapper: a Backend that forwards every call to another Backend, and can be told to
// misbehave — the test seam for faults, as LevelDB's EnvWrapper is for the file system.
//
//   auto store = std::make_shared<BackendWrapper>(make_locmem_backend());
//   store->set_down(true);                        // every call fails with kUnavailable
//   store->fail_calls(Op::kAny, 3);               // only the 3rd call (of any operation) fails
//   store->fail_calls(Op::kSet, 2, 4);            // the 2nd to 4th set() fail
//   store->set_delay(Op::kGet, 50ms);             // each get() takes 50 ms longer
//   store->hold(Op::kGet, gate);                  // get() waits until the test opens the gate
//   store->calls(Op::kKeys);                      // how many keys() calls reached the wrapper
//
// Calls are numbered from 1, per operation and across all operations (Op::kAny), in the order
// they reach the wrapper; a failed call counts. The batch forms (get_many, set_many,
// erase_many, contains) are not forwarded as batches: they loop over this wrapper's single-key
// primitives, so every rule applies per key, as it would to a store without a native batch.
// keys() and stats() are forwarded (keys() answers kUnimplemented when the wrapper hides it).
//
// Thread-safety: every member function may be called from any thread at any time, including
// while other threads are inside the wrapper (the tests run under TSan). A call that fails or
// is delayed never reaches the wrapped backend.

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cachekit/backend.h"

namespace cachekit::testing {

// The operations a BackendWrapper counts and can fault; kAny stands for all of them.
enum class Op : std::uint8_t {
  kGet,
  kSet,
  kAdd,
  kTouch,
  kErase,
  kIncr,
  kClear,
  kTtl,
  kKeys,
  kStats,
  kAny
};

// A one-way gate: threads wait() until the test open()s it; once open it stays open.
class Gate {
 public:
  void open();
  void wait();
  // How many threads are waiting right now: lets a test hold the leader until N have arrived.
  [[nodiscard]] int waiting() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
  int waiting_ = 0;
};

struct BackendWrapperOptions {
  std::string name{};                     // info().name; empty keeps the wrapped backend's
  std::optional<KeyPolicy> key_policy{};  // overrides the wrapped backend's key policy
  bool hide_keys = false;                 // keys() answers kUnimplemented, as memcached does
};

class BackendWrapper final : public Backend {
 public:
  explicit BackendWrapper(std::shared_ptr<Backend> inner, BackendWrapperOptions options = {});

  // While down, every call fails with kUnavailable ("injected fault: store down").
  void set_down(bool down);
  // Calls number `first`..`last` (1-based, inclusive) of `op` fail with `code`; Op::kAny counts
  // every call. Rules add up; clear_faults() removes them all (and the down state).
  void fail_calls(Op op, int first, int last = 0, StatusCode code = StatusCode::kUnavailable);
  void clear_faults();
  // Each call of `op` (Op::kAny: every call) sleeps `delay` before it is forwarded.
  void set_delay(Op op, std::chrono::milliseconds delay);
  // Each call of `op` waits for `gate` to open before it is forwarded; nullptr stops holding.
  void hold(Op op, std::shared_ptr<Gate> gate);

  // How many calls of `op` (Op::kAny: of all operations) have reached the wrapper.
  [[nodiscard]] int calls(Op op) const;
  void reset_calls();

  [[nodiscard]] const BackendInfo& info() const noexcept override { return info_; }
  Result<std::optional<Bytes>> get(std::string_view key) override;
  Status set(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> add(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> touch(std::string_view key, Expiry expiry) override;
  Result<bool> erase(std::string_view key) override;
  Result<std::int64_t> incr(std::string_view key, std::int64_t delta) override;
  Status clear() override;
  Result<Ttl> ttl(std::string_view key) override;
  Result<std::vector<std::string>> keys(std::string_view pattern) override;
  Result<StatPairs> stats() override;

 private:
  static constexpr std::size_t kOps = static_cast<std::size_t>(Op::kAny) + 1;
  struct FailRule {
    Op op;
    int first;
    int last;
    StatusCode code;
  };
  // Counts the call, applies delay and gate, and returns the injected failure, if any.
  Status enter(Op op);

  std::shared_ptr<Backend> inner_;
  BackendInfo info_;
  const bool hide_keys_;
  mutable std::mutex mutex_;
  std::array<int, kOps> calls_{};
  bool down_ = false;
  std::vector<FailRule> rules_;
  std::array<std::chrono::milliseconds, kOps> delays_{};
  std::array<std::shared_ptr<Gate>, kOps> gates_{};
};

}  // namespace cachekit::testing
