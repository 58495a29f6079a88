// The dummy backend's factory; the class, whose every call is one line, is in dummy_backend.h.
#include "cachekit/backends/dummy.h"

#include <memory>

#include "backends/dummy/dummy_backend.h"

namespace cachekit {

std::shared_ptr<Backend> make_dummy_backend() {
  // Stateless, so one shared instance would do; a fresh one keeps ownership simple for callers.
  return std::make_shared<dummy_internal::DummyBackend>();
}

}  // namespace cachekit
