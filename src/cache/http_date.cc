// HTTP-date: RFC 9110 5.6.7. Parsed by hand (no locale, no strptime, no timegm with its TZ
// lookups) because the cache reads up to three dates per response.
#include "ringway/cache/http_date.h"

#include "ringway/core/ascii.h"

namespace ringway::cache {
namespace {

constexpr std::string_view kDays[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view kLongDays[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                           "Thursday", "Friday", "Saturday"};
constexpr std::string_view kMonths[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned kLen[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kLen[m - 1];
}

// A cursor over the text; every reader fails the whole parse by returning false.
struct Cursor {
  std::string_view s;
  size_t i = 0;
  bool lit(char c) {
    if (i < s.size() && s[i] == c) { ++i; return true; }
    return false;
  }
  bool digits(size_t n, int64_t& out) {
    if (i + n > s.size()) return false;
    out = 0;
    for (size_t k = 0; k < n; ++k) {
      const char c = s[i + k];
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    i += n;
    return true;
  }
  bool word(const std::string_view* table, size_t n, unsigned& idx) {
    for (size_t k = 0; k < n; ++k) {
      if (s.substr(i, table[k].size()) == table[k]) {  // case-sensitive: 5.6.7
        i += table[k].size();
        idx = static_cast<unsigned>(k);
        return true;
      }
    }
    return false;
  }
  bool month(unsigned& m) {
    unsigned idx = 0;
    if (!word(kMonths, 12, idx)) return false;
    m = idx + 1;
    return true;
  }
  bool time_of_day(int64_t& h, int64_t& mi, int64_t& sec) {
    return digits(2, h) && lit(':') && digits(2, mi) && lit(':') && digits(2, sec);
  }
  bool done() const { return i == s.size(); }
};

std::optional<int64_t> assemble(int64_t y, unsigned m, int64_t d, int64_t h, int64_t mi,
                                int64_t sec) {
  if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) return std::nullopt;
  // 5.6.7: hour 0-23, minute 0-59, second 0-60 (a leap second).
  if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
  return days_from_civil(y, m, static_cast<unsigned>(d)) * 86400 + h * 3600 + mi * 60 + sec;
}

}  // namespace

std::optional<int64_t> parse_http_date(std::string_view s, int64_t now_unix) {
  Cursor c{s};
  int64_t d = 0, y = 0, h = 0, mi = 0, sec = 0;
  unsigned m = 0, wd = 0;
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (s.size() == kHttpDateLen && s[3] == ',') {
    if (c.word(kDays, 7, wd) && c.lit(',') && c.lit(' ') && c.digits(2, d) && c.lit(' ') &&
        c.month(m) && c.lit(' ') && c.digits(4, y) && c.lit(' ') && c.time_of_day(h, mi, sec) &&
        c.lit(' ') && c.lit('G') && c.lit('M') && c.lit('T') && c.done()) {
      return assemble(y, m, d, h, mi, sec);
    }
    return std::nullopt;
  }
  // rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"
  const size_t comma = s.find(',');
  if (comma != std::string_view::npos) {
    unsigned idx = 0;
    Cursor day{s.substr(0, comma)};
    if (!day.word(kLongDays, 7, idx) || !day.done()) return std::nullopt;
    c.i = comma;
    if (c.lit(',') && c.lit(' ') && c.digits(2, d) && c.lit('-') && c.month(m) && c.lit('-') &&
        c.digits(2, y) && c.lit(' ') && c.time_of_day(h, mi, sec) && c.lit(' ') && c.lit('G') &&
        c.lit('M') && c.lit('T') && c.done()) {
      // 5.6.7: a two-digit year more than 50 years in the future is the most recent past year
      // with the same last two digits.
      const int64_t now_year = 1970 + now_unix / 31556952;  // mean Gregorian year; +-1 day
      int64_t full = (now_year / 100) * 100 + y;
      if (full > now_year + 50) full -= 100;
      if (full < now_year - 49) full += 100;
      return assemble(full, m, d, h, mi, sec);
    }
    return std::nullopt;
  }
  // asctime-date: "Sun Nov  6 08:49:37 1994" (day padded with a space)
  if (c.word(kDays, 7, wd) && c.lit(' ') && c.month(m) && c.lit(' ')) {
    if (c.lit(' ')) {
      if (!c.digits(1, d)) return std::nullopt;
    } else if (!c.digits(2, d)) {
      return std::nullopt;
    }
    if (c.lit(' ') && c.time_of_day(h, mi, sec) && c.lit(' ') && c.digits(4, y) && c.done()) {
      return assemble(y, m, d, h, mi, sec);
    }
  }
  return std::nullopt;
}

void format_http_date(int64_t t, char* out) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t rem = t - days * 86400;
  const unsigned wday = static_cast<unsigned>(((days % 7) + 11) % 7);  // 1970-01-01: Thursday
  // civil_from_days (H. Hinnant).
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  auto two = [&](size_t at, int64_t v) {
    out[at] = static_cast<char>('0' + v / 10);
    out[at + 1] = static_cast<char>('0' + v % 10);
  };
  const std::string_view dn = kDays[wday], mn = kMonths[m - 1];
  out[0] = dn[0]; out[1] = dn[1]; out[2] = dn[2]; out[3] = ','; out[4] = ' ';
  two(5, d);
  out[7] = ' ';
  out[8] = mn[0]; out[9] = mn[1]; out[10] = mn[2]; out[11] = ' ';
  two(12, (y / 100) % 100);
  two(14, y % 100);
  out[16] = ' ';
  two(17, rem / 3600);
  out[19] = ':';
  two(20, (rem / 60) % 60);
  out[22] = ':';
  two(23, rem % 60);
  out[25] = ' '; out[26] = 'G'; out[27] = 'M'; out[28] = 'T';
}

}  // namespace ringway::cache
