#include "http/header_list.h"

#include <charconv>
#include <cstdio>
#include <random>

namespace cachekit::http::detail {

namespace {

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::optional<std::uint64_t> parse_hex64(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return v;
}

}  // namespace

std::string encode_header_list(const HeaderList& list) {
  std::string out = "v1 " + hex64(list.epoch) + " " + std::to_string(list.until_ms);
  for (const std::string& name : list.names) {
    out += '\n';
    out += name;
  }
  return out;
}

std::optional<HeaderList> decode_header_list(std::string_view bytes) {
  // Anything else (another version, a truncated value, another writer's data) is a miss.
  if (!bytes.starts_with("v1 ") || bytes.size() < 3 + 16 + 2) return std::nullopt;
  HeaderList out;
  auto epoch = parse_hex64(bytes.substr(3, 16));
  if (!epoch || *epoch == 0 || bytes[19] != ' ') return std::nullopt;
  out.epoch = *epoch;
  std::size_t line_end = bytes.find('\n', 20);
  std::string_view until =
      bytes.substr(20, line_end == std::string_view::npos ? bytes.npos : line_end - 20);
  auto [ptr, ec] = std::from_chars(until.data(), until.data() + until.size(), out.until_ms);
  if (ec != std::errc() || ptr != until.data() + until.size()) return std::nullopt;
  while (line_end != std::string_view::npos) {
    std::size_t start = line_end + 1;
    line_end = bytes.find('\n', start);
    std::string_view name =
        bytes.substr(start, line_end == std::string_view::npos ? bytes.npos : line_end - start);
    if (name.empty()) return std::nullopt;
    out.names.emplace_back(name);
  }
  return out;
}

std::uint64_t new_epoch() {
  // Per-thread generator: no lock on the miss path; seeded once from the OS.
  thread_local std::mt19937_64 gen{std::random_device{}()};
  std::uint64_t e;
  do {
    e = gen();
  } while (e == 0);
  return e;
}

HeaderList learn_header_list(Cache& cache, const std::string& header_key,
                             std::vector<std::string> names,
                             const std::optional<HeaderList>& existing,
                             std::chrono::milliseconds lifetime, TimePoint now) {
  HeaderList list;
  list.names = std::move(names);
  list.until_ms = (now + lifetime).time_since_epoch().count();
  if (existing && existing->names == list.names) {
    list.epoch = existing->epoch;
    list.until_ms = std::max(list.until_ms, existing->until_ms);
  } else {
    list.epoch = new_epoch();
  }
  auto ttl = std::chrono::milliseconds(list.until_ms - now.time_since_epoch().count());
  if (ttl.count() > 0) (void)cache.set(header_key, encode_header_list(list), Timeout(ttl));
  return list;
}

std::optional<HeaderList> read_header_list(const Cache& cache, const std::string& header_key) {
  auto bytes = cache.get(header_key);
  if (!bytes) return std::nullopt;
  return decode_header_list(bytes->view());
}

}  // namespace cachekit::http::detail
