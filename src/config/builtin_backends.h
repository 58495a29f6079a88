#pragma once
// The backends built into cachekit, one entry each. X(name) stands for a backend whose folder
// src/backends/<name>/ defines
//   void register_<name>_backend(BackendRegistry&)          in config.cc: adds the backend's
//       factory (or factories: sql adds "sqlite" and "postgres") to a registry;
//       BackendRegistry::with_builtins() calls every one of them;
//   void testing::append_<name>_conformance_cases(...)      in <name>_conformance.cc: its
//       cases of the conformance suite (tests/conformance/backend_cases.h gathers them).
//
// Adding a backend: a folder src/backends/<name>/ whose CMakeLists.txt calls cachekit_backend()
// (which puts config.cc into the umbrella library and <name>_conformance.cc into the
// conformance suite) and registers the backend's own tests, plus one entry here
// (docs/writing-a-backend.md walks through it). The registration is an explicit call, not a
// static initialiser, so static linking can neither drop a backend's object file nor run
// registrations in an unexpected order.

namespace cachekit {

class BackendRegistry;

#define CACHEKIT_BUILTIN_BACKENDS(X) \
  X(locmem)                          \
  X(file)                            \
  X(dummy)                           \
  X(redis)                           \
  X(memcached)                       \
  X(sql)                             \
  X(tiered)

#define CACHEKIT_DECLARE_BACKEND_REGISTRATION(name) \
  void register_##name##_backend(BackendRegistry&);
CACHEKIT_BUILTIN_BACKENDS(CACHEKIT_DECLARE_BACKEND_REGISTRATION)
#undef CACHEKIT_DECLARE_BACKEND_REGISTRATION

}  // namespace cachekit
