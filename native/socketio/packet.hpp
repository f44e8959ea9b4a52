// Socket.IO v5 packets, carried in Engine.IO message packets:
//   <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
// e.g. 2["chat",{"a":1}]   0/admin,{"token":"x"}   51-["file",{"_placeholder":true,"num":0}]
// A packet with attachments is followed by that many binary Engine.IO messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sidewire::sio {

enum PacketType : int {
  kConnect = 0,
  kDisconnect = 1,
  kEvent = 2,
  kAck = 3,
  kConnectError = 4,
  kBinaryEvent = 5,
  kBinaryAck = 6,
};

struct Packet {
  int type = kEvent;
  std::string_view nsp = "/";
  std::int64_t ack_id = -1;
  std::uint32_t attachments = 0;
  std::string_view data;  // JSON text, possibly empty
};

// Parses the packet and checks its payload as socket.io does: CONNECT carries an object or
// nothing, DISCONNECT nothing, EVENT a non-empty array starting with a non-reserved name,
// ACK an array. `error` says what is wrong when it returns false, for the log; `sio_error`
// (when given) gets socket.io's own message for it, which the socket's 'error' event carries
// ("unknown packet type NaN", "Illegal attachments", "invalid payload"), or stays empty where
// socket.io's parser would have accepted the packet and its server closes without an error.
bool parse_packet(std::string_view text, Packet& out, std::string& error, std::uint32_t max_attachments = 64,
                  std::string* sio_error = nullptr);

// The Engine.IO message payload for a packet ("4" + the Socket.IO packet).
std::string encode_message(int type, std::string_view nsp, std::int64_t ack_id, std::uint32_t attachments,
                           std::string_view data);

}  // namespace sidewire::sio
