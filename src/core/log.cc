#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace cachekit::detail {

std::shared_ptr<spdlog::logger> logger() {
  if (auto existing = spdlog::get("cachekit")) return existing;
  try {
    return spdlog::stderr_logger_mt("cachekit");
  } catch (const spdlog::spdlog_ex&) {  // another thread registered it first
    return spdlog::get("cachekit");
  }
}

}  // namespace cachekit::detail
