#pragma once
// Handlers and middleware: how an application answers requests.
//
// A Handler turns a Request into a Response (it may block, like a Django view: the server
// runs handlers on a bounded pool). A Middleware wraps the rest of the chain: it may answer
// by itself, or call `next` and adjust the response. Middleware listed first is outermost:
// it sees the request first and the response last (Django's order).

#include <functional>

#include "cachekit/http/message.h"

namespace cachekit::http {

using Handler = std::function<Response(Request&)>;
using Next = std::function<Response(Request&)>;
using Middleware = std::function<Response(Request&, const Next& next)>;

}  // namespace cachekit::http
