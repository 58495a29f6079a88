#include "cachekit/backend.h"

#include <charconv>
#include <limits>

namespace cachekit {

Result<bool> Backend::contains(std::string_view key) {
  auto value = get(key);
  if (!value.ok()) return value.status();
  return value->has_value();
}

Result<std::vector<std::optional<Bytes>>> Backend::get_many(
    std::span<const std::string_view> keys) {
  std::vector<std::optional<Bytes>> out;
  out.reserve(keys.size());
  for (std::string_view key : keys) {
    auto value = get(key);
    if (!value.ok()) return value.status();
    out.push_back(std::move(*value));
  }
  return out;
}

Result<std::vector<std::size_t>> Backend::set_many(std::span<const KeyValue> items, Expiry expiry) {
  std::vector<std::size_t> failed;
  std::size_t errors = 0;
  Status last;
  for (std::size_t i = 0; i < items.size(); ++i) {
    Status s = set(items[i].key, items[i].value, expiry);
    if (!s.ok()) {
      failed.push_back(i);
      ++errors;
      last = std::move(s);
    }
  }
  // When nothing at all could be stored the store itself is failing: report that instead.
  if (errors == items.size() && errors > 0 && last.is_transient()) return last;
  return failed;
}

Result<std::size_t> Backend::erase_many(std::span<const std::string_view> keys) {
  std::size_t removed = 0;
  for (std::string_view key : keys) {
    auto r = erase(key);
    if (!r.ok()) return r.status();
    removed += *r ? 1 : 0;
  }
  return removed;
}

Result<bool> Backend::erase_if_value(std::string_view key, std::string_view expected) {
  auto value = get(key);
  if (!value.ok()) return value.status();
  if (!value->has_value() || (*value)->view() != expected) return false;
  return erase(key);
}

std::optional<Result<std::optional<Bytes>>> Backend::get_if_in_process(std::string_view key) {
  if (info().outlives_process) return std::nullopt;
  return get(key);
}

Result<std::optional<StoredEntry>> Backend::get_entry(std::string_view key) {
  auto value = get(key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return std::optional<StoredEntry>();
  auto left = ttl(key);
  if (!left.ok()) return left.status();
  if (left->is_missing()) return std::optional<StoredEntry>();
  return std::optional<StoredEntry>(StoredEntry{std::move(**value), *left});
}

Result<std::unique_ptr<ChangeFeed>> Backend::watch_changes(ChangeListener&) {
  return unimplemented_error("the " + info().name + " backend cannot report changes");
}

std::unique_ptr<AsyncReads> Backend::async_reads(boost::asio::io_context&) { return nullptr; }

Result<std::vector<std::string>> Backend::keys(std::string_view) {
  return unimplemented_error("the " + info().name + " backend cannot list keys");
}

Result<StatPairs> Backend::stats() {
  return unimplemented_error("the " + info().name + " backend reports no statistics");
}

// Iterative glob matching with single-star backtracking: linear in practice, never recursive,
// so a hostile pattern cannot blow the stack.
namespace {
// Matches one class "[...]" at pattern[p] against c; sets `end` past the closing bracket.
bool match_class(std::string_view pattern, std::size_t p, char c, std::size_t& end) {
  std::size_t i = p + 1;
  bool negate = i < pattern.size() && (pattern[i] == '^' || pattern[i] == '!');
  if (negate) ++i;
  bool matched = false;
  bool first = true;
  while (i < pattern.size() && (first || pattern[i] != ']')) {
    first = false;
    char lo = pattern[i];
    if (lo == '\\' && i + 1 < pattern.size()) lo = pattern[++i];
    char hi = lo;
    if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      hi = pattern[i + 2];
      if (hi == '\\' && i + 3 < pattern.size()) hi = pattern[++i + 2];
      i += 2;
    }
    if (lo > hi) std::swap(lo, hi);
    if (c >= lo && c <= hi) matched = true;
    ++i;
  }
  end = i < pattern.size() ? i + 1 : i;  // an unterminated class runs to the end
  return matched != negate;
}
}  // namespace

std::string escape_glob(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  std::size_t p = 0, t = 0;
  std::size_t star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      char pc = pattern[p];
      if (pc == '*') {
        star_p = p++;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '[') {
        std::size_t end = p;
        if (match_class(pattern, p, text[t], end)) {
          p = end;
          ++t;
          continue;
        }
      } else {
        if (pc == '\\' && p + 1 < pattern.size()) pc = pattern[++p];
        if (pc == text[t]) {
          ++p;
          ++t;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::optional<std::int64_t> parse_decimal(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

Result<std::int64_t> checked_add(std::int64_t value, std::int64_t delta) {
  std::int64_t out = 0;
  if (__builtin_add_overflow(value, delta, &out)) {
    return Status(StatusCode::kOutOfRange, "incr would overflow a 64-bit integer");
  }
  return out;
}

}  // namespace cachekit
