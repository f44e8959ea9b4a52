#include "net/http_upgrade.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cctype>

#include "net/ws_codec.hpp"

namespace sidewire::http {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string redact_query(std::string_view target, std::string_view key) {
  const std::size_t q = target.find('?');
  if (key.empty() || q == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, q + 1));
  std::string_view rest = target.substr(q + 1);
  bool first = true;
  while (true) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    if (!first) out.push_back('&');
    first = false;
    const std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == key) {
      out.append(pair.substr(0, eq + 1)).append("***");
    } else {
      out.append(pair);
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return out;
}

std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const std::size_t semi = header.find(';');
    const std::string_view pair = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != name) continue;
    std::string_view value = trim(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    return value;
  }
  return std::nullopt;
}

namespace {
int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
// A header name is a token (RFC 9110 5.6.2).
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
// A control character (RFC 5234 CTL); a field value may hold HTAB only (RFC 9110 5.5).
bool is_ctl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}
}  // namespace

const std::string* find_header(const UpgradeRequest& request, std::string_view name) {
  for (const auto& [k, v] : request.headers) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view item = trim(value.substr(0, comma));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

UpgradeCheck check_websocket_upgrade(const UpgradeRequest& request) {
  UpgradeCheck out;
  auto refuse = [&](int status, std::string message) {
    out.status = status;
    out.message = std::move(message);
    return out;
  };
  if (request.method != "GET") return refuse(405, "a WebSocket upgrade must be a GET request");
  // origin-form only (RFC 9112 3.2.1): a path and a query, never a fragment. A '#' would make
  // one reader's path another reader's query.
  if (request.target.size() > kMaxTarget) return refuse(414, "request target too long");
  if (request.target.empty() || request.target[0] != '/') return refuse(400, "the request target must be a path");
  for (const char c : request.target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '#') return refuse(400, "invalid character in the request target");
  }
  if (request.headers.size() > kMaxHeaders) return refuse(431, "too many header fields");
  const std::string* upgrade = find_header(request, "upgrade");
  if (!upgrade || !has_token(*upgrade, "websocket")) return refuse(400, "missing 'Upgrade: websocket'");
  const std::string* connection = find_header(request, "connection");
  if (!connection || !has_token(*connection, "upgrade")) return refuse(400, "missing 'Connection: Upgrade'");
  const std::string* version = find_header(request, "sec-websocket-version");
  if (!version || trim(*version) != "13") return refuse(426, "unsupported Sec-WebSocket-Version; 13 is required");
  const std::string* key = find_header(request, "sec-websocket-key");
  std::string decoded;
  if (!key || !ws::base64_decode(trim(*key), decoded) || decoded.size() != 16) {
    return refuse(400, "missing or malformed Sec-WebSocket-Key");
  }
  out.accept = ws::accept_key(trim(*key));
  return out;
}

std::string switching_protocols_response(std::string_view accept, std::string_view extensions) {
  std::string r;
  r.reserve(160 + extensions.size());
  r.append("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
  r.append(accept);
  if (!extensions.empty()) {
    r.append("\r\nSec-WebSocket-Extensions: ");
    r.append(extensions);
  }
  r.append("\r\n\r\n");
  return r;
}

const char* status_text(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

std::string error_response(int status, std::string_view message) {
  std::string body(message);
  body.push_back('\n');
  return error_response(status, body, "text/plain; charset=utf-8");
}

std::string error_response(int status, std::string_view body, std::string_view content_type,
                           std::string_view extra_headers) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
  if (status == 426) r += "Sec-WebSocket-Version: 13\r\n";
  r += extra_headers;
  r += "Content-Type: ";
  r += content_type;
  r += "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  r += body;
  return r;
}

void send_and_close(int fd, std::string_view response) {
  [[maybe_unused]] const ssize_t n = ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

std::optional<UpgradeRequest> parse_request_head(std::string_view head) {
  auto next_line = [&head](std::string_view& line) {
    const std::size_t eol = head.find("\r\n");
    if (eol == std::string_view::npos) return false;
    line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    return true;
  };
  std::string_view line;
  if (!next_line(line)) return std::nullopt;
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1) return std::nullopt;
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return std::nullopt;
  UpgradeRequest r;
  r.method.assign(line.substr(0, sp1));
  r.target.assign(line.substr(sp1 + 1, sp2 - sp1 - 1));
  if (r.target.empty() || r.target[0] != '/') return std::nullopt;
  // What Node's parser refuses (400) is left to it: a target is visible ASCII, a name a token,
  // a value free of control characters but HTAB (a CR, LF or NUL in one is "invalid and
  // dangerous", RFC 9110 5.5).
  for (char c : r.target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return std::nullopt;
  }
  for (char c : r.method) {
    if (c < 'A' || c > 'Z') return std::nullopt;
  }
  while (next_line(line)) {
    if (line.empty()) return r;
    if (line[0] == ' ' || line[0] == '\t') return std::nullopt;  // obs-fold
    const std::size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
    const std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!is_tchar(c)) return std::nullopt;
    }
    const std::string_view value = line.substr(colon + 1);
    for (char c : value) {
      if (is_ctl(c) && c != '\t') return std::nullopt;
    }
    r.headers.emplace_back(std::string(name), std::string(trim(value)));
  }
  return std::nullopt;  // no empty line: not a whole head
}

std::string_view path_of(std::string_view target) {
  const std::size_t q = target.find_first_of("?#");
  return q == std::string_view::npos ? target : target.substr(0, q);
}

std::string_view query_of(std::string_view target) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  const std::size_t hash = rest.find('#');
  return hash == std::string_view::npos ? rest : rest.substr(0, hash);
}

std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::size_t query_param_count(std::string_view query, std::string_view key) {
  std::size_t count = 0;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (auto name = percent_decode(pair.substr(0, pair.find('='))); name && *name == key) ++count;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return count;
}

std::optional<std::string> query_param(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    const std::string_view k = pair.substr(0, eq);
    if (auto name = percent_decode(k); name && *name == key) {
      if (eq == std::string_view::npos) return std::string();
      return percent_decode(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace sidewire::http
