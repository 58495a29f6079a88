#pragma once
// The dummy backend: Django's DummyCache. Every operation answers as if the store had just
// dropped whatever it was given, so code under test runs its miss path every time. All
// methods, including the batch ones, are overridden so no default loop does needless work;
// the Cache façade still validates keys before they get here.
// Users see only include/cachekit/backends/dummy.h.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cachekit/backend.h"

namespace cachekit::dummy_internal {

class DummyBackend final : public Backend {
 public:
  DummyBackend() {
    info_.name = "dummy";
    info_.stores_values = false;
    info_.supports_keys = true;  // the answer is always "no keys", which is true
    info_.supports_stats = false;
  }

  [[nodiscard]] const BackendInfo& info() const noexcept override { return info_; }

  Result<std::optional<Bytes>> get(std::string_view) override { return std::nullopt; }
  Status set(std::string_view, std::string_view, Expiry) override { return {}; }
  // Django reports success: the value was "stored" and is gone at once.
  Result<bool> add(std::string_view, std::string_view, Expiry) override { return true; }
  Result<bool> touch(std::string_view, Expiry) override { return false; }
  Result<bool> erase(std::string_view) override { return false; }
  Result<std::int64_t> incr(std::string_view key, std::int64_t) override {
    return not_found_error("key '" + std::string(key) + "' not found");
  }
  Status clear() override { return {}; }
  Result<Ttl> ttl(std::string_view) override { return Ttl::missing(); }

  Result<bool> contains(std::string_view) override { return false; }
  Result<std::vector<std::optional<Bytes>>> get_many(
      std::span<const std::string_view> keys) override {
    return std::vector<std::optional<Bytes>>(keys.size());
  }
  Result<std::vector<std::size_t>> set_many(std::span<const KeyValue>, Expiry) override {
    return std::vector<std::size_t>{};
  }
  Result<std::size_t> erase_many(std::span<const std::string_view>) override {
    return std::size_t{0};
  }
  Result<std::vector<std::string>> keys(std::string_view) override {
    return std::vector<std::string>{};
  }

 private:
  BackendInfo info_;
};

}  // namespace cachekit::dummy_internal
