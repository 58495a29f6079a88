#pragma once
// Backend::async_reads for Redis: GETs pipelined on one connection that an Asio io_context
// drives (a server's io thread), so that a page hit on Redis costs one round trip and no
// thread hand-off. Internal to the Redis backend.
//
// The connection is opened on first use (asynchronously: resolve, connect, then AUTH / SELECT
// written ahead of the first GETs) and kept. Every call's GETs go out in the next write, with
// whatever other calls the loop queued meanwhile; replies are matched to calls in order. A
// call not answered within the I/O timeout, a transport failure or an error reply during the
// handshake fails every pending call (answered nullopt) and closes the connection; for the
// next second calls are answered nullopt at once (the caller's blocking path, with its
// breaker, takes them), then the connection is opened again.

#include <memory>
#include <string>

#include "backends/redis/connection.h"
#include "backends/redis/url.h"
#include "cachekit/backend.h"

namespace cachekit::redis_internal {

[[nodiscard]] std::unique_ptr<AsyncReads> make_async_reads(boost::asio::io_context& loop,
                                                           Endpoint endpoint,
                                                           std::string key_namespace,
                                                           Timeouts timeouts);

}  // namespace cachekit::redis_internal
