// Engine.IO v4 packets and HTTP long-polling payloads.
//   packet:  <type digit><data>      e.g. "4hello", "2", "3probe"
//   payload: packets joined by \x1e; a binary message in a payload is "b<base64>"
// Over WebSocket a text packet is one text frame; a binary message is one binary frame (no type).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sidewire::eio {

enum PacketType : char {
  kOpen = '0',
  kClose = '1',
  kPing = '2',
  kPong = '3',
  kMessage = '4',
  kUpgrade = '5',
  kNoop = '6',
};

struct Packet {
  char type = kMessage;
  bool binary = false;  // a binary message: `data` is the raw bytes
  std::string data;
};

constexpr char kRecordSeparator = '\x1e';

// Decodes a polling POST body. False on anything malformed (unknown type, bad base64, empty
// packet); `out` then holds what came before.
bool decode_payload(std::string_view body, std::vector<Packet>& out);

// Appends one packet to a polling GET body (`payload` as carried in a WebSocket frame).
void append_to_payload(std::string& body, std::string_view payload, bool binary);

bool is_valid_type(char c);

}  // namespace sidewire::eio
