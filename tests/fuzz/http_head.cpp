// HTTP request heads (native/net/http_upgrade.*): what Engine::listen's peek sees before anyone
// else, and the target and query of every upgrade and polling request.
//
// Input: the bytes of a request head (anything after the empty line is ignored by the parser).
// Checked:
//   - parse_request_head: what it accepts is well-formed as Node's parser wants it (method, a
//     visible-ASCII target, token names, trimmed values without control characters but HTAB)
//     and written back out parses to the same request;
//   - check_websocket_upgrade on it: a known status; 101 only for an origin-form target within
//     the limits, with the 28-character accept key of the request's key;
//   - path_of / query_of on the target and on the raw input: the path is a prefix of the target
//     without '?' or '#', the query is what follows the first '?' up to the next '#';
//   - percent_decode against a reference and on a full encoding of the input; query_param against
//     a reference over the pairs;
//   - trustProxy's client address (net/guard.hpp) from its headers: a peer that is not a trusted
//     proxy is taken at its word, a trusted one yields itself or an address, in canonical form,
//     that one of its X-Forwarded-For hops or its X-Real-IP named; every hop to its right in
//     X-Forwarded-For is a trusted proxy.
#include <cstring>
#include <optional>
#include <string>

#include "fuzz_check.hpp"
#include <arpa/inet.h>

#include <vector>

#include "net/guard.hpp"
#include "net/http_upgrade.hpp"
#include "net/ws_codec.hpp"

namespace http = sidewire::http;
using sidewire::UpgradeRequest;

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> ref_percent_decode(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size();) {
    if (in[i] == '+') {
      out.push_back(' ');
      ++i;
    } else if (in[i] == '%') {
      if (in.size() - i < 3 || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0) return std::nullopt;
      out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
      i += 3;
    } else {
      out.push_back(in[i++]);
    }
  }
  return out;
}

std::optional<std::string> ref_query_param(std::string_view query, std::string_view key) {
  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view pair = query.substr(start, end - start);
    const std::size_t eq = pair.find('=');
    const auto name = ref_percent_decode(pair.substr(0, eq));
    if (name && *name == key) {
      if (eq == std::string_view::npos) return std::string();
      return ref_percent_decode(pair.substr(eq + 1));
    }
    start = end + 1;
  }
  return std::nullopt;
}

void check_target(std::string_view t) {
  const std::string_view path = http::path_of(t);
  FUZZ_CHECK(path.data() == t.data() && path.size() <= t.size());
  FUZZ_CHECK(path.find_first_of("?#") == std::string_view::npos);
  if (path.size() < t.size()) FUZZ_CHECK(t[path.size()] == '?' || t[path.size()] == '#');

  // The query runs from the first '?' to the next '#', as js/http-head.js's splitTarget reads it
  // (a target with a '#' is refused before either matters).
  const std::string_view query = http::query_of(t);
  FUZZ_CHECK(query.find('#') == std::string_view::npos);
  const std::size_t q = t.find('?');
  if (q == std::string_view::npos) {
    FUZZ_CHECK(query.empty());
  } else {
    const std::string_view rest = t.substr(q + 1);
    FUZZ_CHECK(query == rest.substr(0, rest.find('#')));
    FUZZ_CHECK(query.empty() || query.data() == t.data() + q + 1);
  }

  const auto decoded = http::percent_decode(query);
  const auto want = ref_percent_decode(query);
  FUZZ_CHECK(decoded.has_value() == want.has_value());
  if (decoded) FUZZ_CHECK(*decoded == *want && decoded->size() <= query.size());

  // The first pair's key, and the keys the engine asks for.
  std::string first_key;
  if (auto k = http::percent_decode(query.substr(0, query.find_first_of("=&")))) first_key = *k;
  for (std::string_view key : {std::string_view("EIO"), std::string_view("transport"), std::string_view("sid"),
                               std::string_view(""), std::string_view(first_key)}) {
    FUZZ_CHECK(http::query_param(query, key) == ref_query_param(query, key));
  }
}

void check_percent_round_trip(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : s) {
    encoded.push_back('%');
    encoded.push_back(kHex[c >> 4]);
    encoded.push_back(kHex[c & 15]);
  }
  const auto back = http::percent_decode(encoded);
  FUZZ_CHECK(back && *back == s);
}

// An address in the form inet_ntop writes it, or nullopt.
std::optional<std::string> canonical(std::string_view text) {
  std::string s(http::trim(text));
  if (const std::size_t zone = s.find('%'); zone != std::string::npos) s.resize(zone);  // fe80::1%eth0
  unsigned char bytes[16];
  char out[INET6_ADDRSTRLEN] = {};
  if (s.size() < 64 && inet_pton(AF_INET, s.c_str(), bytes) == 1) return std::string(inet_ntop(AF_INET, bytes, out, sizeof out));
  if (s.size() < 64 && inet_pton(AF_INET6, s.c_str(), bytes) == 1) {
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes, kMapped, 12) == 0) return std::string(inet_ntop(AF_INET, bytes + 12, out, sizeof out));
    return std::string(inet_ntop(AF_INET6, bytes, out, sizeof out));
  }
  return std::nullopt;
}

void check_client_address(const UpgradeRequest& r) {
  static const sidewire::guard::ProxyTrust trust = [] {
    sidewire::guard::ProxyTrust t;
    for (const char* e : {"loopback", "10.0.0.0/8", "fd00::/8"}) t.add(e);
    return t;
  }();
  FUZZ_CHECK(trust.client_address("203.0.113.9", r.headers) == "203.0.113.9");
  const std::string got = trust.client_address("10.0.0.1", r.headers);
  std::vector<std::string> hops;  // canonical, or "" for a hop that is no address
  std::optional<std::string> real_ip;
  bool forwarded = false;
  for (const auto& [name, value] : r.headers) {
    if (http::iequals(name, "x-forwarded-for")) {
      if (value.empty()) continue;  // an empty line names no hop
      forwarded = true;
      std::string_view rest(value);
      while (true) {
        const std::size_t comma = rest.find(',');
        hops.push_back(canonical(rest.substr(0, comma)).value_or(""));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (!real_ip && http::iequals(name, "x-real-ip")) {
      real_ip = canonical(value).value_or("");
    }
  }
  if (got == "10.0.0.1") return;
  FUZZ_CHECK(canonical(got) == got);
  if (!forwarded) {
    FUZZ_CHECK(real_ip && *real_ip == got);
    return;
  }
  // got is a hop; every hop to its right is a trusted proxy's.
  bool found = false;
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    if (*it == got) {
      found = true;
      break;
    }
    FUZZ_CHECK(!it->empty() && trust.trusts(*it));
  }
  FUZZ_CHECK(found);
  (void)sidewire::guard::address_key(got);
}

void check_request(const UpgradeRequest& r) {
  check_client_address(r);
  FUZZ_CHECK(!r.method.empty());
  for (char c : r.method) FUZZ_CHECK(c >= 'A' && c <= 'Z');
  FUZZ_CHECK(!r.target.empty() && r.target[0] == '/');
  for (char c : r.target) {  // visible ASCII, as Node's parser wants it
    const auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u > 0x20 && u < 0x7f);
  }
  FUZZ_CHECK(r.head.empty() && r.remote_address.empty());
  static constexpr std::string_view kTokenPunctuation = "!#$%&'*+-.^_`|~";
  for (const auto& [name, value] : r.headers) {
    FUZZ_CHECK(!name.empty());
    for (char c : name) {  // a token (RFC 9110 5.6.2)
      FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c != '\0' && kTokenPunctuation.find(c) != std::string_view::npos));
    }
    for (char c : value) {  // no control character but HTAB (RFC 9110 5.5: never CR, LF, NUL)
      const auto u = static_cast<unsigned char>(c);
      FUZZ_CHECK(c == '\t' || (u >= 0x20 && u != 0x7f));
    }
    if (!value.empty()) {
      FUZZ_CHECK(value.front() != ' ' && value.front() != '\t');
      FUZZ_CHECK(value.back() != ' ' && value.back() != '\t');
    }
    FUZZ_CHECK(http::find_header(r, name) != nullptr);
  }

  // Written back out, it parses to the same request.
  std::string head = r.method + " " + r.target + " HTTP/1.1\r\n";
  for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
  head += "\r\n";
  const auto again = http::parse_request_head(head);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->method == r.method && again->target == r.target && again->headers == r.headers);

  const http::UpgradeCheck check = http::check_websocket_upgrade(r);
  FUZZ_CHECK(check.status == 101 || check.status == 400 || check.status == 405 || check.status == 414 ||
             check.status == 426 || check.status == 431);
  if (check.status == 101) {
    FUZZ_CHECK(r.method == "GET");
    // origin-form: no fragment, no space or control byte, bounded.
    FUZZ_CHECK(r.target.size() <= http::kMaxTarget && r.headers.size() <= http::kMaxHeaders);
    for (char c : r.target) {
      const auto u = static_cast<unsigned char>(c);
      FUZZ_CHECK(u > 0x20 && u < 0x7f && c != '#');
    }
    FUZZ_CHECK(check.message.empty() && check.accept.size() == 28);
    const std::string* key = http::find_header(r, "sec-websocket-key");
    FUZZ_CHECK(key != nullptr);
    std::string raw;
    FUZZ_CHECK(sidewire::ws::base64_decode(*key, raw) && raw.size() == 16);
    FUZZ_CHECK(check.accept == sidewire::ws::accept_key(*key));
    const std::string response = http::switching_protocols_response(check.accept);
    FUZZ_CHECK(response.size() > 4 && response.compare(response.size() - 4, 4, "\r\n\r\n") == 0);
  } else {
    FUZZ_CHECK(!check.message.empty() && check.accept.empty());
    const std::string response = http::error_response(check.status, check.message);
    const std::string status_line = "HTTP/1.1 " + std::to_string(check.status) + " ";
    FUZZ_CHECK(response.compare(0, status_line.size(), status_line) == 0);
    FUZZ_CHECK(response.find("\r\n\r\n") != std::string::npos);
  }
  check_target(r.target);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  // The raw bytes as a target, as a query, and through a full percent-encoding.
  check_target(text);
  check_percent_round_trip(text.substr(0, 256));
  {
    const auto got = http::percent_decode(text);
    const auto want = ref_percent_decode(text);
    FUZZ_CHECK(got == want);
  }
  if (auto r = http::parse_request_head(text)) check_request(*r);
  return 0;
}
