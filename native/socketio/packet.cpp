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

bool parse_packet(std::string_view s, Packet& p, std::string& error, std::uint32_t max_attachments,
                  std::string* sio_error) {
  p = Packet{};
  auto fail = [&](const char* why, std::string sio) {
    error = why;
    if (sio_error) *sio_error = std::move(sio);
    return false;
  };
  if (s.empty()) {
    // socket.io reads the type as Number(""), which is 0: an empty packet is a CONNECT to "/".
    p.type = kConnect;
    return true;
  }
  if (!is_digit(s[0]) || s[0] > '6') {
    // As socket.io's parser words it: Number(first character).
    return fail("unknown packet type", std::string("unknown packet type ") + (is_digit(s[0]) ? std::string(1, s[0]) : "NaN"));
  }
  p.type = s[0] - '0';
  std::size_t i = 1;
  if (p.type == kBinaryEvent || p.type == kBinaryAck) {
    const std::size_t dash = s.find('-', i);
    if (dash == std::string_view::npos || dash == i || dash - i > 6) {
      return fail("malformed attachment count", "Illegal attachments");
    }
    std::uint32_t n = 0;
    for (std::size_t k = i; k < dash; ++k) {
      if (!is_digit(s[k])) return fail("malformed attachment count", "Illegal attachments");
      n = n * 10 + static_cast<std::uint32_t>(s[k] - '0');
    }
    if (n == 0) return fail("malformed attachment count", "Illegal attachments");
    if (n > max_attachments) return fail("too many attachments", "too many attachments");
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
      if (k - i >= 15) return fail("ack id too long", "invalid payload");
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
        return fail("CONNECT payload must be an object", "invalid payload");
      }
      return true;
    case kDisconnect:
      if (!p.data.empty()) return fail("DISCONNECT carries no payload", "invalid payload");
      return true;
    case kEvent:
    case kBinaryEvent:
      if (!scan_json(p.data, shape) || shape.top != JsonKind::kArray || shape.empty) {
        return fail("EVENT payload must be a non-empty JSON array", "invalid payload");
      }
      if (!(shape.first == JsonKind::kNumber ||
            (shape.first == JsonKind::kString && !is_reserved_event(shape.first_string)))) {
        return fail("invalid event name", "invalid payload");
      }
      return true;
    case kAck:
    case kBinaryAck:
      if (p.ack_id < 0) return fail("ACK without an id", "invalid payload");
      if (!scan_json(p.data, shape) || shape.top != JsonKind::kArray) {
        return fail("ACK payload must be an array", "invalid payload");
      }
      return true;
    default:
      // CONNECT_ERROR: socket.io's parser takes it and its server closes the connection.
      return fail("a client may not send this packet type", "");
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
