#pragma once
// redact(url): a URL (or a list of them, or text that only looks like one) made safe for logs,
// error messages and pages.
//
// Userinfo passwords are masked: "redis://user:secret@host:6379/0" becomes
// "redis://user:***@host:6379/0". The userinfo ends at the last '@', so passwords containing
// '/', '?', '#', ',', ':', '@' or percent-escapes are masked whole. Values of query parameters
// that carry secrets (password, pass, passwd, pwd, secret, token, auth, key) become "***".
// When the form is unclear — userinfo without ':', or an '@' after a '/', '?' or '#' — all of
// the text before the '@' is masked: redact() errs towards masking too much. Pure and
// thread-safe.

#include <string>
#include <string_view>

namespace cachekit {

[[nodiscard]] std::string redact(std::string_view url);

}  // namespace cachekit
