#include "socketio/packet.hpp"

#include "socketio/json_shape.hpp"

namespace sidewire::sio {

namespace {
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_reserved_event(std::string_view name) {
  return name == "connect" || name == "connect_error" || name == "disconnect" || name == "disconnecting" ||
         name == "newListener" || name == "removeListener";
}
}  // namespace

bool parse_packet(std::string_view s, Packet& p, std::string& error, std::uint32_t max_attachments) {
  p = Packet{};
  if (s.empty() || !is_digit(s[0]) || s[0] > '6') {
    error = "unknown packet type";
    return false;
  }
  p.type = s[0] - '0';
  std::size_t i = 1;
  if (p.type == kBinaryEvent || p.type == kBinaryAck) {
    const std::size_t dash = s.find('-', i);
    if (dash == std::string_view::npos || dash == i || dash - i > 6) {
      error = "malformed attachment count";
      return false;
    }
    std::uint32_t n = 0;
    for (std::size_t k = i; k < dash; ++k) {
      if (!is_digit(s[k])) {
        error = "malformed attachment count";
        return false;
      }
      n = n * 10 + static_cast<std::uint32_t>(s[k] - '0');
    }
    if (n == 0 || n > max_attachments) {
      error = "too many attachments";
      return false;
    }
    p.attachments = n;
    i = dash + 1;
  }
  if (i < s.size() && s[i] == '/') {
    const std::size_t comma = s.find(',', i);
    if (comma == std::string_view::npos) {
      p.nsp = s.substr(i);
      i = s.size();
    } else {
      p.nsp = s.substr(i, comma - i);
      i = comma + 1;
    }
  }
  if (i < s.size() && is_digit(s[i])) {
    std::int64_t id = 0;
    std::size_t k = i;
    while (k < s.size() && is_digit(s[k])) {
      if (k - i >= 15) {
        error = "ack id too long";
        return false;
      }
      id = id * 10 + (s[k] - '0');
      ++k;
    }
    p.ack_id = id;
    i = k;
  }
  p.data = s.substr(i);

  JsonShape shape;
  switch (p.type) {
    case kConnect:
      if (!p.data.empty() && (!scan_json(p.data, shape) || shape.top != JsonKind::kObject)) {
        error = "CONNECT payload must be an object";
        return false;
      }
      return true;
    case kDisconnect:
      if (!p.data.empty()) {
        error = "DISCONNECT carries no payload";
        return false;
      }
      return true;
    case kEvent:
    case kBinaryEvent:
      if (!scan_json(p.data, shape) || shape.top != JsonKind::kArray || shape.empty) {
        error = "EVENT payload must be a non-empty JSON array";
        return false;
      }
      if (!(shape.first == JsonKind::kNumber ||
            (shape.first == JsonKind::kString && !is_reserved_event(shape.first_string)))) {
        error = "invalid event name";
        return false;
      }
      return true;
    case kAck:
    case kBinaryAck:
      if (p.ack_id < 0) {
        error = "ACK without an id";
        return false;
      }
      if (!scan_json(p.data, shape) || shape.top != JsonKind::kArray) {
        error = "ACK payload must be an array";
        return false;
      }
      return true;
    default:
      error = "a client may not send this packet type";
      return false;
  }
}

std::string encode_message(int type, std::string_view nsp, std::int64_t ack_id, std::uint32_t attachments,
                           std::string_view data) {
  std::string out;
  out.reserve(8 + nsp.size() + data.size());
  out.push_back('4');
  out.push_back(static_cast<char>('0' + type));
  if (type == kBinaryEvent || type == kBinaryAck) {
    out.append(std::to_string(attachments));
    out.push_back('-');
  }
  if (nsp != "/") {
    out.append(nsp);
    out.push_back(',');
  }
  if (ack_id >= 0) out.append(std::to_string(ack_id));
  out.append(data);
  return out;
}

}  // namespace sidewire::sio
