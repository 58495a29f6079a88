#include "cachekit/lease.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <utility>

#include "cachekit/cache.h"

namespace cachekit {

std::string Lease::make_token() {
  thread_local std::mt19937_64 gen{[] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }()};
  return fmt::format("{:016x}{:016x}", gen(), gen());
}

Result<Lease> Lease::try_acquire(Cache& cache, std::string_view name,
                                 std::chrono::milliseconds ttl) {
  ttl = std::max(ttl, std::chrono::milliseconds(1));
  std::string token = make_token();
  if (!cache.backend_info().stores_values) return Lease(&cache, std::string(name), token, true);
  auto added = cache.strict().add(name, token, Timeout(ttl));
  if (!added.ok()) return added.status();
  return Lease(&cache, std::string(name), std::move(token), *added);
}

Lease::Lease(Lease&& other) noexcept
    : cache_(other.cache_),
      name_(std::move(other.name_)),
      token_(std::move(other.token_)),
      held_(std::exchange(other.held_, false)) {}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    cache_ = other.cache_;
    name_ = std::move(other.name_);
    token_ = std::move(other.token_);
    held_ = std::exchange(other.held_, false);
  }
  return *this;
}

Lease::~Lease() { release(); }

bool Lease::renew(std::chrono::milliseconds ttl) {
  if (!held_) return false;
  if (!cache_->backend_info().stores_values) return true;
  auto current = cache_->strict().get(name_);
  if (!current.ok() || !current->has_value() || (*current)->view() != token_) {
    held_ = false;
    return false;
  }
  auto touched =
      cache_->strict().touch(name_, Timeout(std::max(ttl, std::chrono::milliseconds(1))));
  held_ = touched.ok() && *touched;
  return held_;
}

void Lease::release() noexcept {
  if (!held_) return;
  held_ = false;
  if (!cache_->backend_info().stores_values) return;
  try {
    // A failure leaves the claim to expire on its own: nothing else to do.
    (void)cache_->strict().erase_if_value(name_, token_);
  } catch (...) {  // NOLINT(bugprone-empty-catch): release must not throw
  }
}

}  // namespace cachekit
