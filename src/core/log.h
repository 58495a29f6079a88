#pragma once
// The logger every part of cachekit writes to: the spdlog logger named "cachekit". An
// application may register its own logger under that name before the first message; by
// default it writes to stderr, so a tool printing values on stdout is never corrupted.

#include <spdlog/spdlog.h>

#include <memory>

namespace cachekit::detail {

std::shared_ptr<spdlog::logger> logger();

}  // namespace cachekit::detail
