// socket.io-msgpack-parser packets (native/socketio/msgpack.*): every binary message a client
// sends when the Server runs with that parser.
//
// Checked, for what decode_msgpack_packet accepts: a type a client may send, a namespace that
// starts with '/', data that is JSON of the shape the type requires with one attachment per
// placeholder; encoding the fields again decodes to the same fields (the same binaries too,
// unless invalid UTF-8 made two keys one). A refusal always says why.
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_check.hpp"
#include "socketio/msgpack.hpp"
#include "socketio/packet.hpp"

namespace sio = sidewire::sio;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sio::MsgpackPacket p;
  std::string error;
  if (!sio::decode_msgpack_packet(fuzz::as_text(data, size), p, error)) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  FUZZ_CHECK(p.type >= sio::kConnect && p.type <= sio::kAck);
  FUZZ_CHECK(!p.nsp.empty() && p.nsp[0] == '/');
  FUZZ_CHECK(p.attachments.size() <= 64);
  if (!p.data.empty()) {
    const auto j = nlohmann::json::parse(p.data, nullptr, false);
    FUZZ_CHECK(!j.is_discarded());
    FUZZ_CHECK(p.type == sio::kConnect ? j.is_object() : j.is_array());
  } else {
    FUZZ_CHECK(p.type == sio::kConnect || p.type == sio::kDisconnect);
  }
  const std::string again = sio::encode_msgpack_packet(p.type, p.nsp, p.ack_id, p.data, p.attachments);
  sio::MsgpackPacket q;
  std::string error2;
  FUZZ_CHECK(sio::decode_msgpack_packet(again, q, error2));
  FUZZ_CHECK(q.type == p.type && q.nsp == p.nsp && q.ack_id == p.ack_id);
  // Strings that were not UTF-8 came out with U+FFFD in them (as notepack decodes them), and two
  // keys may then be one: the later wins, and a binary under the other is no longer referenced.
  if (p.data.find("\xEF\xBF\xBD") == std::string::npos) FUZZ_CHECK(q.attachments == p.attachments);
  return 0;
}
