// The WebSocket opening handshake on a request Node already parsed: checks (RFC 6455 4.2.1),
// the 101 answer, HTTP error answers, and the query string.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sidewire/engine.hpp"

namespace sidewire::http {

struct UpgradeCheck {
  int status = 101;     // 101, or the HTTP status to refuse with
  std::string message;  // why it was refused
  std::string accept;   // Sec-WebSocket-Accept, when status is 101
};

UpgradeCheck check_websocket_upgrade(const UpgradeRequest& request);

// `extensions`: the Sec-WebSocket-Extensions value to answer with (none when empty).
std::string switching_protocols_response(std::string_view accept, std::string_view extensions = {});
// A complete HTTP/1.1 response that closes the connection; 426 carries Sec-WebSocket-Version.
std::string error_response(int status, std::string_view message);
// `extra_headers`: whole lines ("Retry-After: 3\r\n"), the engine's own.
std::string error_response(int status, std::string_view body, std::string_view content_type,
                           std::string_view extra_headers = {});
// Writes a short answer on a fresh non-blocking socket (it fits the send buffer) and closes it.
void send_and_close(int fd, std::string_view response);
const char* status_text(int status);

const std::string* find_header(const UpgradeRequest& request, std::string_view name);
// Does a comma-separated header value hold `token` (case-insensitive)?
bool has_token(std::string_view value, std::string_view token);

// Parses a request head (request line and header lines, ending with the empty line) into
// method, target and headers. Strict: anything unusual (obs-fold, a bad line, no HTTP/1.x, a
// byte Node's parser refuses in the target, a name or a value) gives nullopt, and the caller
// leaves the request to Node's parser.
std::optional<UpgradeRequest> parse_request_head(std::string_view head);

std::string_view path_of(std::string_view target);
std::string_view query_of(std::string_view target);
// The first value of `key` in a query string, percent-decoded ('+' is a space).
std::optional<std::string> query_param(std::string_view query, std::string_view key);
// `target` with the values of query parameter `key` replaced by "***" (a token kept out of log
// lines); `target` itself when `key` is empty or absent.
std::string redact_query(std::string_view target, std::string_view key);
// ASCII case-insensitive equality (header names), and optional whitespace trimmed (RFC 9110 OWS).
bool iequals(std::string_view a, std::string_view b);
std::string_view trim(std::string_view s);
// The value of cookie `name` in a Cookie header ("a=1; b=2"), as sent, without its quotes.
std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name);
// How many times `key` appears in a query string.
std::size_t query_param_count(std::string_view query, std::string_view key);

// Limits on what an upgrade request may carry (answered 414 and 431).
inline constexpr std::size_t kMaxTarget = 8 * 1024;
inline constexpr std::size_t kMaxHeaders = 100;
std::optional<std::string> percent_decode(std::string_view in);

}  // namespace sidewire::http
