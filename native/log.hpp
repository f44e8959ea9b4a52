#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace sidewire {
// The engine's logger ("sidewire", to stderr). Level from SIDEWIRE_LOG_LEVEL, default info;
// format from SIDEWIRE_LOG_FORMAT ("text", or "json": one JSON object a line).
spdlog::logger& log();
bool json_logs();
// The fields of a connection's line in JSON logs, marked for the formatter (log_conn).
std::string conn_fields(std::string_view kind, std::uint64_t id, std::string_view address, std::string_view reason,
                        std::string_view text);

// A line about one connection ("session" for Engine.IO, "connection" for a WebSocket): in JSON
// logs its id ("conn"), the client's address ("address") and the reason ("reason", "" when the
// line has none) are fields of their own beside "msg"; in text they lead the line.
template <typename... Args>
void log_conn(spdlog::level::level_enum level, std::string_view kind, std::uint64_t id, std::string_view address,
              std::string_view reason, fmt::format_string<Args...> format, Args&&... args) {
  spdlog::logger& l = log();
  if (!l.should_log(level)) return;
  const std::string text = fmt::format(format, std::forward<Args>(args)...);
  if (json_logs()) {
    l.log(level, "{}", conn_fields(kind, id, address, reason, text));
  } else if (address.empty()) {
    l.log(level, "{} {}: {}", kind, id, text);
  } else {
    l.log(level, "{} {} from {}: {}", kind, id, address, text);
  }
}
}  // namespace sidewire
