// Socket.IO packets as socket.io-msgpack-parser writes them: one binary Engine.IO message per
// packet, a MessagePack map { type, nsp, data, id }, binary values inline (no attachments).
// The engine speaks it when the Server was given that parser; JS still sees JSON text with
// binary values as placeholders and attachments, as with the default parser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sidewire::sio {

struct MsgpackPacket {
  int type = 0;
  std::string nsp = "/";
  std::int64_t ack_id = -1;
  std::string data;  // JSON text ("" when the packet has none); binary values as placeholders
  std::vector<std::string> attachments;
};

// Decodes and checks a packet from a client as socket.io-msgpack-parser's Decoder does (type
// 0..4, nsp a string, data of the type's shape, id an integer), and as the default parser's
// rules for what a client may send (no CONNECT_ERROR, an event name that is not reserved).
// `error` gets the message socket.io's error event would carry.
bool decode_msgpack_packet(std::string_view bytes, MsgpackPacket& out, std::string& error,
                           std::uint32_t max_binaries = 64);

// Encodes a packet the engine sends: `data_json` is JSON text whose placeholders
// ({"_placeholder":true,"num":i}) stand for `attachments[i]`. Empty `data_json`: no data.
// Throws std::invalid_argument on data that is not JSON.
std::string encode_msgpack_packet(int type, std::string_view nsp, std::int64_t ack_id, std::string_view data_json,
                                  const std::vector<std::string>& attachments);

// The pieces the cluster adapter shares (its messages carry socket.io packets in MessagePack):
// a non-recursive check of MessagePack bytes (no truncation, no nesting past `max_depth`)
// before the recursive parser sees them; binary values out of a tree into attachments with
// placeholders in their place (false past `max_binaries`, for an extension other than notepack's
// `undefined`, or for an object that has a "_placeholder" key of its own); and back.
bool msgpack_well_formed(std::string_view bytes, std::size_t max_depth);
bool extract_binaries(nlohmann::json& v, std::vector<std::string>& out, std::uint32_t max_binaries, int depth = 0);
void insert_binaries(nlohmann::json& v, const std::vector<std::string>& attachments);

}  // namespace sidewire::sio
