// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate out, all three historical forms in — the same
// grammar Django's parse_http_date accepts (its three regular expressions), written as a
// scanner so a hostile header costs linear time and no allocation.

#include <array>
#include <cstdio>

#include "cachekit/http/cache_control.h"

namespace cachekit::http {

namespace {

using namespace std::chrono;

constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_word(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

class Scanner {
 public:
  explicit Scanner(std::string_view s) noexcept : s_(s) {}
  [[nodiscard]] bool done() const noexcept { return pos_ == s_.size(); }
  bool literal(std::string_view lit) noexcept {
    if (s_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }
  // Exactly n digits (a leading space allowed when `space_pad`).
  bool number(int n, int& out, bool space_pad = false) noexcept {
    if (pos_ + static_cast<std::size_t>(n) > s_.size()) return false;
    out = 0;
    for (int i = 0; i < n; ++i) {
      char c = s_[pos_ + static_cast<std::size_t>(i)];
      if (i == 0 && space_pad && c == ' ') continue;
      if (!is_digit(c)) return false;
      out = out * 10 + (c - '0');
    }
    pos_ += static_cast<std::size_t>(n);
    return true;
  }
  // A run of word characters whose length is within [min, max].
  bool word(std::size_t min, std::size_t max) noexcept {
    std::size_t start = pos_;
    while (pos_ < s_.size() && is_word(s_[pos_])) ++pos_;
    std::size_t n = pos_ - start;
    return n >= min && n <= max;
  }
  bool month(int& out) noexcept {
    if (pos_ + 3 > s_.size()) return false;
    std::string_view m = s_.substr(pos_, 3);
    for (std::size_t i = 0; i < kMonths.size(); ++i) {
      if (iequals(m, kMonths[i])) {
        out = static_cast<int>(i) + 1;
        pos_ += 3;
        return true;
      }
    }
    return false;
  }
  bool time(int& h, int& m, int& s) noexcept {
    return number(2, h) && literal(":") && number(2, m) && literal(":") && number(2, s);
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

struct Fields {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
};

std::optional<TimePoint> to_time(const Fields& f) {
  year_month_day ymd{year{f.year}, std::chrono::month{static_cast<unsigned>(f.month)},
                     std::chrono::day{static_cast<unsigned>(f.day)}};
  if (!ymd.ok() || f.hour > 23 || f.minute > 59 || f.second > 59) return std::nullopt;
  sys_seconds t = sys_days(ymd) + hours(f.hour) + minutes(f.minute) + seconds(f.second);
  return time_point_cast<milliseconds>(t);
}

// RFC 9110: a two-digit year that appears more than 50 years in the future is in the past.
int full_year(int two_digits) {
  auto today = year_month_day(floor<days>(system_clock::now()));
  int current = static_cast<int>(today.year());
  int year = current - current % 100 + two_digits;
  if (year > current + 50) year -= 100;
  return year;
}

std::optional<Fields> parse_imf(std::string_view text) {
  Scanner s(text);
  Fields f;
  if (s.word(3, 3) && s.literal(", ") && s.number(2, f.day) && s.literal(" ") && s.month(f.month) &&
      s.literal(" ") && s.number(4, f.year) && s.literal(" ") &&
      s.time(f.hour, f.minute, f.second) && s.literal(" GMT") && s.done()) {
    return f;
  }
  return std::nullopt;
}

std::optional<Fields> parse_rfc850(std::string_view text) {
  Scanner s(text);
  Fields f;
  int yy = 0;
  if (s.word(6, 9) && s.literal(", ") && s.number(2, f.day) && s.literal("-") && s.month(f.month) &&
      s.literal("-") && s.number(2, yy) && s.literal(" ") && s.time(f.hour, f.minute, f.second) &&
      s.literal(" GMT") && s.done()) {
    f.year = full_year(yy);
    return f;
  }
  return std::nullopt;
}

std::optional<Fields> parse_asctime(std::string_view text) {
  Scanner s(text);
  Fields f;
  if (s.word(3, 3) && s.literal(" ") && s.month(f.month) && s.literal(" ") &&
      s.number(2, f.day, /*space_pad=*/true) && s.literal(" ") &&
      s.time(f.hour, f.minute, f.second) && s.literal(" ") && s.number(4, f.year) && s.done()) {
    return f;
  }
  return std::nullopt;
}

}  // namespace

std::string format_http_date(TimePoint t) {
  sys_seconds secs = floor<seconds>(t);
  sys_days day = floor<days>(secs);
  year_month_day ymd(day);
  hh_mm_ss<seconds> hms(secs - day);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                kDays[weekday(day).c_encoding()].data(), static_cast<unsigned>(ymd.day()),
                kMonths[static_cast<unsigned>(ymd.month()) - 1].data(),
                static_cast<int>(ymd.year()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  return buf;
}

std::optional<TimePoint> parse_http_date(std::string_view text) {
  std::optional<Fields> f = parse_imf(text);
  if (!f) f = parse_rfc850(text);
  if (!f) f = parse_asctime(text);
  if (!f) return std::nullopt;
  return to_time(*f);
}

}  // namespace cachekit::http
