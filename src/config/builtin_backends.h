#pragma once
// The backends built into cachekit, one entry each. X(name) stands for the function
// `void register_<name>_backend(BackendRegistry&)`, defined in src/backends/<name>/config.cc,
// which adds the backend's factory (or factories: sql adds "sqlite" and "postgres") to a
// registry. BackendRegistry::with_builtins() calls every one of them.
//
// Adding a backend: a folder src/backends/<name>/ (with its CMakeLists.txt, which puts its
// config.cc into the umbrella library) and one entry here. The registration is an explicit
// call, not a static initialiser, so static linking can neither drop a backend's object file
// nor run registrations in an unexpected order.

namespace cachekit {

class BackendRegistry;

#define CACHEKIT_BUILTIN_BACKENDS(X) \
  X(locmem)                          \
  X(file)                            \
  X(dummy)                           \
  X(redis)                           \
  X(memcached)                       \
  X(sql)

#define CACHEKIT_DECLARE_BACKEND_REGISTRATION(name) \
  void register_##name##_backend(BackendRegistry&);
CACHEKIT_BUILTIN_BACKENDS(CACHEKIT_DECLARE_BACKEND_REGISTRATION)
#undef CACHEKIT_DECLARE_BACKEND_REGISTRATION

}  // namespace cachekit
