// The "dummy" entry of the backend registry.
#include "cachekit/backends/dummy.h"
#include "cachekit/caches.h"
#include "config/builtin_backends.h"

namespace cachekit {
namespace {

// Django's DummyCache ignores LOCATION; so does this.
std::shared_ptr<Backend> make_dummy(const BackendSpec& spec) {
  spec.reject_unknown_options({});
  return make_dummy_backend();
}

}  // namespace

void register_dummy_backend(BackendRegistry& registry) { registry.add("dummy", make_dummy); }

}  // namespace cachekit
