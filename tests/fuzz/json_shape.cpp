// The JSON scanner behind every Socket.IO payload check (native/socketio/json_shape.*), against
// nlohmann::json.
//
// Input: any text. They must agree where both follow the JSON grammar:
//   - whatever nlohmann accepts, scan_json accepts;
//   - whatever scan_json accepts, nlohmann accepts too, except where JSON.parse (and so
//     scan_json) is deliberately laxer: lone UTF-16 surrogate escapes, numbers beyond double's
//     range (Infinity in JavaScript), and bytes that are not UTF-8 (a WebSocket text frame is
//     checked before this; a polling body is not);
//   - for accepted text, the shape (top kind, empty, first element's kind and string) is what
//     nlohmann parsed (the string only without surrogate escapes: scan_json keeps UTF-16 code
//     units as three bytes each).
// Text with a NUL byte is only checked to be refused: nlohmann stops at a NUL as at the end; and
// so is text after a UTF-8 byte order mark, which nlohmann skips and JSON.parse does not.
#include <nlohmann/json.hpp>

#include <string>

#include "fuzz_check.hpp"
#include "net/ws_codec.hpp"
#include "socketio/json_shape.hpp"

namespace sio = sidewire::sio;
using nlohmann::json;

namespace {

// "\u" followed by a surrogate's first hex digits: lone surrogates are legal only to JSON.parse.
bool has_surrogate_escape(std::string_view s) {
  for (std::size_t i = 0; i + 3 < s.size(); ++i) {
    if (s[i] == '\\' && s[i + 1] == 'u' && (s[i + 2] == 'd' || s[i + 2] == 'D')) {
      const char c = s[i + 3];
      if ((c >= '8' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) return true;
    }
  }
  return false;
}

sio::JsonKind kind_of(const json& j) {
  switch (j.type()) {
    case json::value_t::object: return sio::JsonKind::kObject;
    case json::value_t::array: return sio::JsonKind::kArray;
    case json::value_t::string: return sio::JsonKind::kString;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return sio::JsonKind::kNumber;
    case json::value_t::boolean:
    case json::value_t::null: return sio::JsonKind::kLiteral;
    default: return sio::JsonKind::kInvalid;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  sio::JsonShape shape;
  const bool ok = sio::scan_json(text, shape);

  // nlohmann takes a NUL byte for the end of the input (for C strings); scan_json, as JSON.parse,
  // never accepts one outside an escape.
  if (text.find('\0') != std::string::npos) {
    FUZZ_CHECK(!ok);
    return 0;
  }
  json j;
  bool nl_ok = false;
  int nl_error = 0;
  try {
    j = json::parse(text);
    nl_ok = true;
  } catch (const json::exception& e) {
    nl_error = e.id;
  }
  const bool surrogates = has_surrogate_escape(text);

  // nlohmann skips a UTF-8 byte order mark; JSON.parse (and scan_json) takes U+FEFF for no
  // whitespace at all.
  const bool bom = text.compare(0, 3, "\xEF\xBB\xBF") == 0;
  if (nl_ok && bom) FUZZ_CHECK(!ok);
  if (nl_ok && !ok && !bom) {
    std::fprintf(stderr, "nlohmann accepts what scan_json refuses\n");
    __builtin_trap();
  }
  if (ok && !nl_ok) {
    const bool lax = surrogates || nl_error == 406 /* number overflow: Infinity to JS */ ||
                     !sidewire::ws::is_valid_utf8(text);
    if (!lax) {
      std::fprintf(stderr, "scan_json accepts what nlohmann refuses (error %d)\n", nl_error);
      __builtin_trap();
    }
  }
  if (!ok) return 0;
  FUZZ_CHECK(shape.top != sio::JsonKind::kInvalid);
  if (!nl_ok || bom) return 0;

  FUZZ_CHECK(shape.top == kind_of(j));
  if (j.is_array() || j.is_object()) FUZZ_CHECK(shape.empty == j.empty());
  if (j.is_array() && !j.empty()) {
    FUZZ_CHECK(shape.first == kind_of(j[0]));
    if (j[0].is_string() && !surrogates) FUZZ_CHECK(shape.first_string == j[0].get<std::string>());
  } else {
    FUZZ_CHECK(shape.first == sio::JsonKind::kInvalid);
  }
  if (shape.first != sio::JsonKind::kString) FUZZ_CHECK(shape.first_string.empty());
  return 0;
}
