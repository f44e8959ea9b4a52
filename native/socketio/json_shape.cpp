#include "socketio/json_shape.hpp"

#include <vector>

namespace sidewire::sio {

namespace {

// Iterative, with an explicit stack of open containers: JSON.parse takes any depth, and so
// must we without growing the thread's stack.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool document(JsonShape& shape) {
    std::vector<char> open;  // '[' or '{'
    bool want_first = false; // the next value is the top-level array's first element
    for (;;) {
      // A value.
      skip_ws();
      if (pos_ >= s_.size()) return false;
      const bool top = open.empty();
      const bool capture = want_first && open.size() == 1;
      want_first = false;
      const char c = s_[pos_];
      JsonKind kind;
      if (c == '{' || c == '[') {
        kind = c == '{' ? JsonKind::kObject : JsonKind::kArray;
        ++pos_;
        skip_ws();
        const char close = c == '{' ? '}' : ']';
        const bool empty = eat(close);
        if (top) shape.empty = empty;
        if (!empty) {
          open.push_back(c);
          if (top && c == '[') want_first = true;
          if (top) shape.top = kind;
          if (capture) shape.first = kind;
          if (c == '{' && !key()) return false;
          continue;
        }
      } else if (c == '"') {
        kind = JsonKind::kString;
        if (!string(capture ? &shape.first_string : nullptr)) return false;
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        kind = JsonKind::kNumber;
        if (!number()) return false;
      } else if (literal("true") || literal("false") || literal("null")) {
        kind = JsonKind::kLiteral;
      } else {
        return false;
      }
      if (top) shape.top = kind;
      if (capture) shape.first = kind;
      // After a value: close containers, or move to the next element.
      for (;;) {
        skip_ws();
        if (open.empty()) return pos_ == s_.size();
        const char container = open.back();
        if (eat(',')) {
          if (container == '{' && !key()) return false;
          break;
        }
        if (eat(container == '{' ? '}' : ']')) {
          open.pop_back();
          continue;
        }
        return false;
      }
    }
  }

 private:
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool key() {
    skip_ws();
    if (!string(nullptr)) return false;
    skip_ws();
    return eat(':');
  }
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static void append_code_unit(std::string& out, unsigned cp) {
    // Lone surrogates come out as their three-byte form: enough to compare against names.
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool string(std::string* out) {
    if (!eat('"')) return false;
    while (pos_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') {
        if (out) out->push_back(static_cast<char>(c));
        continue;
      }
      if (pos_ >= s_.size()) return false;
      const char e = s_[pos_++];
      char plain;
      switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return false;
          unsigned cp = 0;
          for (int k = 0; k < 4; ++k) {
            const int h = hex(s_[pos_ + k]);
            if (h < 0) return false;
            cp = cp * 16 + static_cast<unsigned>(h);
          }
          pos_ += 4;
          if (out) append_code_unit(*out, cp);
          continue;
        }
        default:
          return false;
      }
      if (out) out->push_back(plain);
    }
    return false;
  }

  bool digits() {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  bool number() {
    eat('-');
    if (!eat('0') && !digits()) return false;  // no leading zeros: "0" stands alone
    if (eat('.') && !digits()) return false;
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (!eat('+')) eat('-');
      if (!digits()) return false;
    }
    return true;
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

bool scan_json(std::string_view text, JsonShape& shape) {
  shape = JsonShape{};
  return Scanner(text).document(shape);
}

}  // namespace sidewire::sio
