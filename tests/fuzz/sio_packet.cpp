// Socket.IO v5 packets (native/socketio/packet.*): every Engine.IO message a client sends.
//
// Input: byte 0 picks max_attachments; the rest is the packet (an Engine.IO message without its
// '4'). Checked, for what parse_packet accepts: a type a client may send, the namespace starts
// with '/' and holds no ',', the attachment count only on binary types and within the limit, an
// ack id only as digits that were there, the data a suffix of the text and of the shape socket.io
// requires (scan_json); encode_message of the fields parses back to the same fields.
// A refused packet always says why, in its own words and in socket.io's.
#include <string>

#include "fuzz_check.hpp"
#include "socketio/json_shape.hpp"
#include "socketio/packet.hpp"

namespace sio = sidewire::sio;

namespace {

constexpr std::uint32_t kMaxAttachments[8] = {64, 0, 1, 2, 10, 999999, 1000000, 0xFFFFFFFFu};

bool reserved(const std::string& name) {
  return name == "connect" || name == "connect_error" || name == "disconnect" || name == "disconnecting" ||
         name == "newListener" || name == "removeListener";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint32_t max_attachments = kMaxAttachments[data[0] & 7];
  const std::string_view text = fuzz::as_text(data + 1, size - 1);

  sio::Packet p;
  std::string error;
  std::string sio_error;
  if (!sio::parse_packet(text, p, error, max_attachments, &sio_error)) {
    FUZZ_CHECK(!error.empty());
    // socket.io's message for it, or none where socket.io's parser accepts the packet
    // (CONNECT_ERROR, which its server then refuses).
    FUZZ_CHECK(!sio_error.empty() || (!text.empty() && text[0] == '0' + sio::kConnectError));
    return 0;
  }
  if (text.empty()) {
    // Number("") is 0 to socket.io: an empty packet is a CONNECT to the main namespace.
    FUZZ_CHECK(p.type == sio::kConnect && p.nsp == "/" && p.data.empty());
    return 0;
  }
  FUZZ_CHECK(p.type >= 0 && p.type <= 6 && p.type != sio::kConnectError);
  FUZZ_CHECK(text[0] == '0' + p.type);
  FUZZ_CHECK(!p.nsp.empty() && p.nsp[0] == '/' && p.nsp.find(',') == std::string_view::npos);
  const bool binary = p.type == sio::kBinaryEvent || p.type == sio::kBinaryAck;
  FUZZ_CHECK(binary ? p.attachments >= 1 && p.attachments <= max_attachments : p.attachments == 0);
  FUZZ_CHECK(p.ack_id >= -1 && p.ack_id < 1000000000000000LL);
  FUZZ_CHECK(p.data.data() + p.data.size() == text.data() + text.size());
  if (p.ack_id >= 0) {
    // The id is the digits just before the data.
    const std::string digits = std::to_string(p.ack_id);
    const std::string_view before = text.substr(0, static_cast<std::size_t>(p.data.data() - text.data()));
    FUZZ_CHECK(!before.empty() && before.back() >= '0' && before.back() <= '9');
    std::size_t k = before.size();  // back over the digits, never into the type at [0]
    while (k > 1 && before[k - 1] >= '0' && before[k - 1] <= '9') --k;
    std::string_view written = before.substr(k);
    while (written.size() > 1 && written[0] == '0') written.remove_prefix(1);
    FUZZ_CHECK(written == digits);
  }

  sio::JsonShape shape;
  switch (p.type) {
    case sio::kConnect:
      if (!p.data.empty()) FUZZ_CHECK(sio::scan_json(p.data, shape) && shape.top == sio::JsonKind::kObject);
      break;
    case sio::kDisconnect:
      FUZZ_CHECK(p.data.empty());
      break;
    case sio::kEvent:
    case sio::kBinaryEvent:
      FUZZ_CHECK(sio::scan_json(p.data, shape) && shape.top == sio::JsonKind::kArray && !shape.empty);
      FUZZ_CHECK(shape.first == sio::JsonKind::kNumber ||
                 (shape.first == sio::JsonKind::kString && !reserved(shape.first_string)));
      break;
    case sio::kAck:
    case sio::kBinaryAck:
      FUZZ_CHECK(p.ack_id >= 0);
      FUZZ_CHECK(sio::scan_json(p.data, shape) && shape.top == sio::JsonKind::kArray);
      break;
  }

  // What the server would send with these fields reads back as the same packet.
  const std::string encoded = sio::encode_message(p.type, p.nsp, p.ack_id, p.attachments, p.data);
  FUZZ_CHECK(encoded.size() >= 2 && encoded[0] == '4');
  sio::Packet q;
  std::string error2;
  FUZZ_CHECK(sio::parse_packet(std::string_view(encoded).substr(1), q, error2, max_attachments));
  FUZZ_CHECK(q.type == p.type && q.nsp == p.nsp && q.ack_id == p.ack_id && q.attachments == p.attachments &&
             q.data == p.data);
  return 0;
}
