// What the fleet's nodes say to each other through Redis, as bytes. Socket.IO broadcasts use
// @socket.io/redis-adapter's message exactly (MessagePack, as notepack.io writes it):
//   channel  <key>#<nsp>#            or <key>#<nsp>#<room>#  when the broadcast names one room
//   payload  [uid, { type: 2, data: [event, ...args], nsp }, { rooms, except, flags }]
// so that socket.io nodes with the official adapter, @socket.io/redis-emitter and sidewire
// nodes share one fleet. Raw channels are sidewire's own:
//   channel  <channelKey>#<path>#
//   payload  [uid, room, binary, payload]
// Pure functions, no I/O: fuzzed (tests/fuzz) and tested without a Redis.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sidewire::adapter {

struct SioBroadcast {
  std::string uid;
  std::string nsp = "/";
  std::vector<std::string> rooms;   // empty: the whole namespace
  std::vector<std::string> except;
  std::string data_json;            // the EVENT's data array; placeholders stand for attachments
  std::vector<std::string> attachments;
  bool is_volatile = false;
  std::optional<bool> compress;     // unset: as the sender's default
};

// The Redis channel and the payload of a broadcast. Throws std::invalid_argument when
// data_json is not a JSON array.
std::string sio_channel(std::string_view key, const SioBroadcast& b);
std::string encode_sio_broadcast(const SioBroadcast& b);
// False (with `error`) for anything that is not such a message; never throws. A packet of a
// type other than EVENT, or with more than `max_binaries` binary values, is refused too.
bool decode_sio_broadcast(std::string_view payload, SioBroadcast& out, std::string& error,
                          std::uint32_t max_binaries = 64);

struct ChannelBroadcast {
  std::string uid;
  std::string path;
  std::string room;  // "" = every client of the channel
  std::string payload;
  bool binary = false;
};

std::string channel_channel(std::string_view channel_key, std::string_view path);
std::string encode_channel_broadcast(const ChannelBroadcast& b);
bool decode_channel_broadcast(std::string_view payload, ChannelBroadcast& out, std::string& error);

}  // namespace sidewire::adapter
