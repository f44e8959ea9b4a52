// A validating JSON scanner for Socket.IO payloads: it checks the syntax that JavaScript's
// JSON.parse accepts (lone UTF-16 surrogate escapes included, which browsers' JSON.stringify
// emits for half an emoji) and reports the shape socket.io checks, without building anything.
#pragma once

#include <string>
#include <string_view>

namespace sidewire::sio {

enum class JsonKind { kInvalid, kObject, kArray, kString, kNumber, kLiteral };

struct JsonShape {
  JsonKind top = JsonKind::kInvalid;
  bool empty = true;                   // an empty array or object
  JsonKind first = JsonKind::kInvalid; // an array's first element
  std::string first_string;            // its value, unescaped, when it is a string
};

// False when `text` is not exactly one JSON value (surrounding whitespace allowed). Any depth.
bool scan_json(std::string_view text, JsonShape& shape);

}  // namespace sidewire::sio
