#pragma once
// The dummy backend: implements the whole API and stores nothing, for "caching off" runs.
// add() reports success, get() misses, incr() reports kNotFound. Keys are still validated
// by the Cache façade. Thread-safe (it has no state).

#include <memory>

#include "cachekit/backend.h"

namespace cachekit {

[[nodiscard]] std::shared_ptr<Backend> make_dummy_backend();

}  // namespace cachekit
