// What the fleet's nodes say to each other through Redis, as bytes. Socket.IO broadcasts use
// @socket.io/redis-adapter's message exactly (MessagePack, as notepack.io writes it):
//   channel  <key>#<nsp>#            or <key>#<nsp>#<room>#  when the broadcast names one room
//   payload  [uid, { type: 2, data: [event, ...args], nsp }, { rooms, except, flags }]
// so that socket.io nodes with the official adapter, @socket.io/redis-emitter and sidewire
// nodes share one fleet. Raw channels are sidewire's own:
//   channel  <channelKey>#<path>#
//   payload  [uid, room, binary, payload]
// The sharded variant (@socket.io/redis-adapter's createShardedAdapter, Redis 7's SPUBLISH)
// speaks socket.io-adapter's ClusterAdapter message instead, JSON, or MessagePack when it
// carries binary values:
//   channel  <prefix>#<nsp>#   or <prefix>#<nsp>#<room>#  (one public room, dynamic modes)
//   payload  { uid, nsp, type: 3, data: { packet: { type: 2, data, nsp }, opts: { rooms, except, flags } } }
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
  // The streams adapter: the entry's id in the stream, which a client with connection state
  // recovery gets as the packet's last argument (its offset). Empty: none.
  std::string offset;
  // Published by this node and delivered here once Redis has given it its offset.
  bool deliver_here = false;
};

// The Redis channel and the payload of a broadcast. Throws std::invalid_argument when
// data_json is not a JSON array.
std::string sio_channel(std::string_view key, const SioBroadcast& b);
std::string encode_sio_broadcast(const SioBroadcast& b);
// False (with `error`) for anything that is not such a message; never throws. A packet of a
// type other than EVENT, or with more than `max_binaries` binary values, is refused too.
bool decode_sio_broadcast(std::string_view payload, SioBroadcast& out, std::string& error,
                          std::uint32_t max_binaries = 64);

// socket.io-adapter's ClusterAdapter messages (MessageType).
enum class ClusterType : int {
  kInitialHeartbeat = 1,
  kHeartbeat = 2,
  kBroadcast = 3,
  kSocketsJoin = 4,
  kSocketsLeave = 5,
  kDisconnectSockets = 6,
  kFetchSockets = 7,
  kFetchSocketsResponse = 8,
  kServerSideEmit = 9,
  kServerSideEmitResponse = 10,
  kBroadcastClientCount = 11,
  kBroadcastAck = 12,
  kAdapterClose = 13,
};

// What a node needs to read of such a message to route it: a plain broadcast (type 3 without
// a requestId) is delivered by the engine; a socketsJoin/socketsLeave/disconnectSockets
// (4, 5, 6) is applied by the engine, in order among the broadcasts; JS answers the rest.
struct ClusterMessage {
  int type = 0;
  std::string uid;
  std::string nsp;
  bool has_request_id = false;
  SioBroadcast broadcast;           // type 3 without requestId
  std::vector<std::string> rooms;   // 4, 5, 6: the selection (data.opts)
  std::vector<std::string> except;
  std::vector<std::string> targets; // 4, 5: data.rooms
  bool close = false;               // 6
};

// How the sharded adapter picks a broadcast's channel (its subscriptionMode).
enum class ShardedRooms : std::uint8_t { kStatic, kDynamic, kDynamicPrivate };

// <prefix>#<nsp>#, or <prefix>#<nsp>#<room># for a broadcast to one room that the mode gives a
// channel of its own (dynamic: a room that does not look like a socket id, 20 characters).
std::string sharded_channel(std::string_view prefix, const SioBroadcast& b, ShardedRooms mode);
// As the official adapter encodes it: JSON, or MessagePack when there are attachments. Throws
// std::invalid_argument when data_json is not a JSON array.
std::string encode_cluster_broadcast(const SioBroadcast& b);
// JSON (first byte '{') or MessagePack; false (with `error`) for anything else; never throws.
bool decode_cluster_message(std::string_view payload, ClusterMessage& out, std::string& error,
                            std::uint32_t max_binaries = 64);

// @socket.io/redis-streams-adapter: the messages that must reach every node in order (plain
// broadcasts, socketsJoin, socketsLeave, disconnectSockets) are entries of a Redis stream,
//   XADD <stream> MAXLEN ~ <maxLen> * uid <uid> nsp <nsp> type <type> data <data>
// where data is the ClusterAdapter message's data as JSON text, or base64 of its MessagePack
// when it carries binary values; an entry's id is the offset connection state recovery hands to
// clients. The rest (requests and answers) goes on pub/sub as MessagePack messages.
struct StreamFields {
  std::string uid, nsp, type, data;
};
// The stream a namespace's entries go to: `base`, or base-<i> over `count` streams, i from the
// JavaScript hash of the namespace's name, as the official adapter picks it.
std::string stream_name(std::string_view base, std::uint32_t count, std::string_view nsp);
// The field/value pairs of an XADD of a plain broadcast. Throws std::invalid_argument when
// data_json is not a JSON array.
std::vector<std::string> encode_stream_broadcast(const SioBroadcast& b);
// An entry read back (XREAD, XRANGE), as decode_cluster_message reads a pub/sub message.
bool decode_stream_message(const StreamFields& fields, ClusterMessage& out, std::string& error,
                           std::uint32_t max_binaries = 64);

// A disconnected socket's session, kept in Redis for its recovery on any node:
//   SET <sessionKeyPrefix><pid> base64(MessagePack { sid, pid, rooms, data }) PX <window>
struct StreamSession {
  std::string sid, pid;
  std::vector<std::string> rooms;  // its own id included
  std::string data_json;           // socket.data as JSON text
};
std::string encode_session(const StreamSession& s);
bool decode_session(std::string_view text, StreamSession& out, std::string& error);
// An offset a client may send back: <ms>-<seq>, digits only (anything else is not looked up).
bool valid_stream_offset(std::string_view offset);
// The id right after `offset` (a valid one): the start of the range of what came after it.
std::string next_stream_offset(std::string_view offset);
// Whether a session in `rooms` was addressed by a broadcast (its rooms, or everyone, minus except).
bool includes_session(const std::vector<std::string>& rooms, const SioBroadcast& b);

// JSON text nests no deeper than `max_depth` (checked before nlohmann's recursive parser runs).
bool json_depth_ok(std::string_view text, std::size_t max_depth);

struct ChannelBroadcast {
  std::string uid;
  std::string path;
  // Every client of the channel when empty. On the wire one room is a string ("" for none), as
  // nodes before several rooms wrote it; several are an array.
  std::vector<std::string> rooms;
  std::string payload;
  bool binary = false;
};

std::string channel_channel(std::string_view channel_key, std::string_view path);
std::string encode_channel_broadcast(const ChannelBroadcast& b);
bool decode_channel_broadcast(std::string_view payload, ChannelBroadcast& out, std::string& error);

}  // namespace sidewire::adapter
