#pragma once
// Codec<T>: how a typed value becomes bytes in the store and back.
//
//  - strings and Bytes are stored as they are;
//  - integers (not bool) as decimal text, so incr() and other languages' clients work on them;
//  - everything else through nlohmann::json: any type with to_json/from_json works, written as
//    JSON text or, with Serializer::kMsgpack, as compact MessagePack.
// Specialise Codec<T> for a type of your own to choose another form. decode() returns
// nullopt when the bytes are not a valid T, including when from_json throws anything (the
// Cache then treats the entry as a miss counted as an error); it never throws.
// Never a language-specific pickle: every form is readable from any language.

#include <charconv>
#include <concepts>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "cachekit/bytes.h"

namespace cachekit {

enum class Serializer : std::uint8_t { kJson, kMsgpack };

template <class T>
struct Codec {
  static std::string encode(const T& value, Serializer s) {
    nlohmann::json j = value;
    if (s == Serializer::kMsgpack) {
      std::string out;
      nlohmann::json::to_msgpack(j, out);
      return out;
    }
    return j.dump();
  }
  static std::optional<T> decode(std::string_view bytes, Serializer s) noexcept {
    try {
      nlohmann::json j = s == Serializer::kMsgpack
                             ? nlohmann::json::from_msgpack(bytes, true, false)
                             : nlohmann::json::parse(bytes, nullptr, false);
      if (j.is_discarded()) return std::nullopt;
      return j.template get<T>();
    } catch (...) {
      // Whatever a user's from_json throws (not only nlohmann's exceptions), or bad_alloc on a
      // huge document: the entry is unreadable as a T, which the Cache counts and treats as a
      // miss. Letting it escape a noexcept function would terminate the process.
      return std::nullopt;
    }
  }
};

template <>
struct Codec<std::string> {
  static std::string encode(const std::string& v, Serializer) { return v; }
  static std::optional<std::string> decode(std::string_view b, Serializer) {
    return std::string(b);
  }
};

template <>
struct Codec<Bytes> {
  static std::string encode(const Bytes& v, Serializer) { return v.str(); }
  static std::optional<Bytes> decode(std::string_view b, Serializer) { return Bytes(b); }
};

template <class T>
requires std::integral<T> &&(!std::same_as<T, bool>)struct Codec<T> {
  static std::string encode(T v, Serializer) { return std::to_string(v); }
  // Trailing spaces are allowed: memcached's arithmetic rewrites a counter in place, and one
  // that lost a digit keeps its length padded with spaces ("1000" minus 2 reads "998 ").
  static std::optional<T> decode(std::string_view b, Serializer) noexcept {
    while (b.ends_with(' ')) b.remove_suffix(1);
    T v{};
    auto [end, ec] = std::from_chars(b.data(), b.data() + b.size(), v);
    if (ec != std::errc() || end != b.data() + b.size() || b.empty()) return std::nullopt;
    return v;
  }
};

}  // namespace cachekit
