#pragma once

#include <spdlog/spdlog.h>

namespace sidewire {
// The engine's logger ("sidewire", to stderr). Level from SIDEWIRE_LOG_LEVEL, default info.
spdlog::logger& log();
}  // namespace sidewire
