#include "engineio/packet.hpp"

#include "net/ws_codec.hpp"

namespace sidewire::eio {

bool is_valid_type(char c) { return c >= kOpen && c <= kNoop; }

bool decode_payload(std::string_view body, std::vector<Packet>& out) {
  if (body.empty()) return false;
  while (true) {
    const std::size_t sep = body.find(kRecordSeparator);
    const std::string_view item = body.substr(0, sep);
    if (item.empty()) return false;
    Packet p;
    if (item[0] == 'b') {
      p.type = kMessage;
      p.binary = true;
      if (!ws::base64_decode(item.substr(1), p.data)) return false;
    } else {
      if (!is_valid_type(item[0])) return false;
      p.type = item[0];
      p.data.assign(item.substr(1));
    }
    out.push_back(std::move(p));
    if (sep == std::string_view::npos) return true;
    body.remove_prefix(sep + 1);
  }
}

void append_to_payload(std::string& body, std::string_view payload, bool binary) {
  if (!body.empty()) body.push_back(kRecordSeparator);
  if (binary) {
    body.push_back('b');
    body.append(ws::base64_encode(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()));
  } else {
    body.append(payload);
  }
}

}  // namespace sidewire::eio
