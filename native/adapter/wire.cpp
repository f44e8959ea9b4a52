#include "adapter/wire.hpp"

#include <nlohmann/json.hpp>
#include <algorithm>
#include <stdexcept>

#include "net/ws_codec.hpp"
#include "socketio/msgpack.hpp"

namespace sidewire::adapter {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxDepth = 64;
constexpr int kEvent = 2;
constexpr int kBinaryEvent = 5;

std::string to_msgpack(const json& j) {
  std::string out;
  json::to_msgpack(j, nlohmann::detail::output_adapter<char>(out));
  return out;
}

// Room names as socket.io's adapter keeps them: strings, or numbers (a room can be any
// value JS uses as a Set key; the wire carries what JSON or MessagePack can).
bool room_list(const json& v, std::vector<std::string>& out) {
  if (v.is_null()) return true;
  if (!v.is_array()) return false;
  for (const auto& r : v) {
    if (r.is_string()) {
      // Text only: a room that is not UTF-8 could not be sent on as JSON unchanged.
      if (!ws::is_valid_utf8(r.get_ref<const std::string&>())) return false;
      out.push_back(r.get<std::string>());
    } else if (r.is_number_integer()) {
      out.push_back(std::to_string(r.get<std::int64_t>()));
    } else if (r.is_number()) {
      out.push_back(r.dump());
    } else {
      return false;
    }
  }
  return true;
}

bool decode(std::string_view payload, json& out, std::string& error) {
  if (!sio::msgpack_well_formed(payload, kMaxDepth)) {
    error = "invalid MessagePack";
    return false;
  }
  out = json::from_msgpack(payload.begin(), payload.end(), true, false);
  if (out.is_discarded()) {
    error = "invalid MessagePack";
    return false;
  }
  return true;
}

// A broadcast's packet { type, data, nsp } and opts { rooms, except, flags }, as both message
// formats carry them.
bool read_broadcast(json& packet, const json* opts_p, SioBroadcast& out, std::string& error, std::uint32_t max_binaries) {
  if (!packet.is_object()) {
    error = "no packet";
    return false;
  }
  auto type = packet.find("type");
  if (type == packet.end() || !type->is_number_integer() ||
      (type->get<std::int64_t>() != kEvent && type->get<std::int64_t>() != kBinaryEvent)) {
    error = "not an EVENT packet";
    return false;
  }
  if (auto nsp = packet.find("nsp"); nsp != packet.end() && nsp->is_string()) out.nsp = nsp->get<std::string>();
  auto data = packet.find("data");
  if (data == packet.end() || !data->is_array() || data->empty()) {
    error = "no event data";
    return false;
  }
  if (!sio::extract_binaries(*data, out.attachments, max_binaries)) {
    error = "invalid event data";
    return false;
  }
  out.data_json = data->dump(-1, ' ', false, json::error_handler_t::replace);
  if (opts_p && opts_p->is_object()) {
    const json& opts = *opts_p;
    if (auto r = opts.find("rooms"); r != opts.end() && !room_list(*r, out.rooms)) {
      error = "invalid rooms";
      return false;
    }
    if (auto e = opts.find("except"); e != opts.end() && !room_list(*e, out.except)) {
      error = "invalid except";
      return false;
    }
    if (auto f = opts.find("flags"); f != opts.end() && f->is_object()) {
      if (auto v = f->find("volatile"); v != f->end() && v->is_boolean()) out.is_volatile = v->get<bool>();
      if (auto c = f->find("compress"); c != f->end() && c->is_boolean()) out.compress = c->get<bool>();
    }
  }
  return true;
}

bool read_cluster_message(json& m, ClusterMessage& out, std::string& error, std::uint32_t max_binaries);

}  // namespace

bool json_depth_ok(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > max_depth) return false;
    } else if ((ch == '}' || ch == ']') && depth > 0) {
      --depth;
    }
  }
  return true;
}

std::string sio_channel(std::string_view key, const SioBroadcast& b) {
  std::string channel;
  channel.reserve(key.size() + b.nsp.size() + 2 + (b.rooms.size() == 1 ? b.rooms[0].size() + 1 : 0));
  channel.append(key).append("#").append(b.nsp).append("#");
  if (b.rooms.size() == 1) channel.append(b.rooms[0]).append("#");
  return channel;
}

std::string encode_sio_broadcast(const SioBroadcast& b) {
  json data = json::parse(b.data_json, nullptr, false);
  if (data.is_discarded() || !data.is_array()) throw std::invalid_argument("broadcast data is not a JSON array");
  if (!b.attachments.empty()) sio::insert_binaries(data, b.attachments);
  json packet = json::object();
  packet["type"] = kEvent;
  packet["data"] = std::move(data);
  packet["nsp"] = b.nsp;
  json flags = json::object();
  if (b.is_volatile) flags["volatile"] = true;
  if (b.compress) flags["compress"] = *b.compress;
  json opts = json::object();
  opts["rooms"] = b.rooms;
  opts["except"] = b.except;
  opts["flags"] = std::move(flags);
  return to_msgpack(json::array({b.uid, std::move(packet), std::move(opts)}));
}

bool decode_sio_broadcast(std::string_view payload, SioBroadcast& out, std::string& error, std::uint32_t max_binaries) {
  out = SioBroadcast{};
  json m;
  if (!decode(payload, m, error)) return false;
  // The emitter sends no uid (an undefined, nil or missing first element).
  if (!m.is_array() || m.size() < 2) {
    error = "not a broadcast message";
    return false;
  }
  if (m[0].is_string()) out.uid = m[0].get<std::string>();
  return read_broadcast(m[1], m.size() >= 3 ? &m[2] : nullptr, out, error, max_binaries);
}

std::string sharded_channel(std::string_view prefix, const SioBroadcast& b, ShardedRooms mode) {
  std::string channel;
  channel.append(prefix).append("#").append(b.nsp).append("#");
  const bool own = b.rooms.size() == 1 &&
                   (mode == ShardedRooms::kDynamicPrivate || (mode == ShardedRooms::kDynamic && b.rooms[0].size() != 20));
  if (own) channel.append(b.rooms[0]).append("#");
  return channel;
}

namespace {

// The data of a ClusterAdapter BROADCAST: { packet: { type: 2, data, nsp }, opts: { rooms,
// except, flags } }, binary values inline. (The streams adapter's packet has no nsp: the
// message's own says it.)
json cluster_broadcast_data(const SioBroadcast& b, bool packet_nsp = true) {
  json data = json::parse(b.data_json, nullptr, false);
  if (data.is_discarded() || !data.is_array()) throw std::invalid_argument("broadcast data is not a JSON array");
  if (!b.attachments.empty()) sio::insert_binaries(data, b.attachments);
  json d = json::object();
  d["packet"] = json{{"type", kEvent}, {"data", std::move(data)}};
  if (packet_nsp) d["packet"]["nsp"] = b.nsp;
  json flags = json::object();
  if (b.is_volatile) flags["volatile"] = true;
  if (b.compress) flags["compress"] = *b.compress;
  d["opts"] = json{{"rooms", b.rooms}, {"except", b.except}, {"flags", std::move(flags)}};
  return d;
}

}  // namespace

std::string encode_cluster_broadcast(const SioBroadcast& b) {
  json m = json::object();
  m["uid"] = b.uid;
  m["nsp"] = b.nsp;
  m["type"] = static_cast<int>(ClusterType::kBroadcast);
  m["data"] = cluster_broadcast_data(b);
  if (!b.attachments.empty()) return to_msgpack(m);
  return m.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool decode_cluster_message(std::string_view payload, ClusterMessage& out, std::string& error, std::uint32_t max_binaries) {
  out = ClusterMessage{};
  json m;
  if (!payload.empty() && payload.front() == '{') {
    if (!json_depth_ok(payload, kMaxDepth)) {
      error = "invalid JSON";
      return false;
    }
    m = json::parse(payload, nullptr, false);
    if (m.is_discarded()) {
      error = "invalid JSON";
      return false;
    }
  } else if (!decode(payload, m, error)) {
    return false;
  }
  return read_cluster_message(m, out, error, max_binaries);
}

namespace {

bool read_cluster_message(json& m, ClusterMessage& out, std::string& error, std::uint32_t max_binaries) {
  if (!m.is_object()) {
    error = "not a cluster message";
    return false;
  }
  auto type = m.find("type");
  if (type == m.end() || !type->is_number_integer()) {
    error = "no message type";
    return false;
  }
  out.type = static_cast<int>(std::clamp<std::int64_t>(type->get<std::int64_t>(), -1, 1000));
  if (auto uid = m.find("uid"); uid != m.end() && uid->is_string()) out.uid = uid->get<std::string>();
  if (auto nsp = m.find("nsp"); nsp != m.end() && nsp->is_string()) out.nsp = nsp->get<std::string>();
  else out.nsp = "/";
  auto data = m.find("data");
  if (data == m.end() || !data->is_object()) {
    // Heartbeats and ADAPTER_CLOSE carry none; a broadcast or a selection must (without one, a
    // socketsJoin/socketsLeave/disconnectSockets would address every socket).
    if (out.type >= static_cast<int>(ClusterType::kBroadcast) && out.type <= static_cast<int>(ClusterType::kDisconnectSockets)) {
      error = "no data";
      return false;
    }
    return true;
  }
  out.has_request_id = data->contains("requestId");
  switch (static_cast<ClusterType>(out.type)) {
    case ClusterType::kBroadcast: {
      if (out.has_request_id) return true;
      auto packet = data->find("packet");
      if (packet == data->end()) {
        error = "no packet";
        return false;
      }
      auto opts = data->find("opts");
      if (!read_broadcast(*packet, opts == data->end() ? nullptr : &*opts, out.broadcast, error, max_binaries)) {
        return false;
      }
      out.broadcast.uid = out.uid;
      if (out.broadcast.nsp != out.nsp) out.broadcast.nsp = out.nsp;  // the message's namespace decides
      return true;
    }
    case ClusterType::kSocketsJoin:
    case ClusterType::kSocketsLeave:
    case ClusterType::kDisconnectSockets: {
      if (auto opts = data->find("opts"); opts != data->end() && opts->is_object()) {
        if (auto r = opts->find("rooms"); r != opts->end() && !room_list(*r, out.rooms)) {
          error = "invalid rooms";
          return false;
        }
        if (auto e = opts->find("except"); e != opts->end() && !room_list(*e, out.except)) {
          error = "invalid except";
          return false;
        }
      }
      if (auto r = data->find("rooms"); r != data->end() && !room_list(*r, out.targets)) {
        error = "invalid rooms";
        return false;
      }
      if (auto c = data->find("close"); c != data->end() && c->is_boolean()) out.close = c->get<bool>();
      return true;
    }
    default: return true;
  }
}

}  // namespace

std::string channel_channel(std::string_view channel_key, std::string_view path) {
  std::string channel;
  channel.append(channel_key).append("#").append(path).append("#");
  return channel;
}

std::string encode_channel_broadcast(const ChannelBroadcast& b) {
  json bytes = json::binary(std::vector<std::uint8_t>(b.payload.begin(), b.payload.end()));
  json rooms = b.rooms.size() > 1 ? json(b.rooms) : json(b.rooms.empty() ? std::string() : b.rooms[0]);
  return to_msgpack(json::array({b.uid, std::move(rooms), b.binary, std::move(bytes)}));
}

bool decode_channel_broadcast(std::string_view payload, ChannelBroadcast& out, std::string& error) {
  out = ChannelBroadcast{};
  json m;
  if (!decode(payload, m, error)) return false;
  auto rooms_ok = [](const json& r) {
    if (r.is_string()) return true;
    if (!r.is_array() || r.empty()) return false;
    for (const auto& x : r) {
      if (!x.is_string() || x.get_ref<const std::string&>().empty()) return false;
    }
    return true;
  };
  if (!m.is_array() || m.size() != 4 || !m[0].is_string() || !rooms_ok(m[1]) || !m[2].is_boolean() ||
      !m[3].is_binary()) {
    error = "not a channel message";
    return false;
  }
  out.uid = m[0].get<std::string>();
  if (m[1].is_string()) {
    if (!m[1].get_ref<const std::string&>().empty()) out.rooms.push_back(m[1].get<std::string>());
  } else {
    out.rooms = m[1].get<std::vector<std::string>>();
  }
  out.binary = m[2].get<bool>();
  const auto& b = m[3].get_binary();
  out.payload.assign(reinterpret_cast<const char*>(b.data()), b.size());
  return true;
}


// ------------------------------------------------------------------- the streams adapter

std::string stream_name(std::string_view base, std::uint32_t count, std::string_view nsp) {
  if (count <= 1) return std::string(base);
  // JavaScript's hashCode over UTF-16 code units (hash * 31 + unit, kept to a signed 32-bit
  // integer), and its remainder, negative for a negative hash as in JavaScript.
  std::int32_t hash = 0;
  auto add = [&hash](std::uint32_t unit) {
    hash = static_cast<std::int32_t>(static_cast<std::uint32_t>(hash) * 31u + unit);
  };
  for (std::size_t i = 0; i < nsp.size();) {
    const auto c = static_cast<unsigned char>(nsp[i]);
    std::uint32_t cp = c;
    std::size_t len = 1;
    if (c >= 0xF0 && i + 3 < nsp.size()) {
      cp = ((c & 0x07u) << 18) | ((static_cast<unsigned char>(nsp[i + 1]) & 0x3Fu) << 12) |
           ((static_cast<unsigned char>(nsp[i + 2]) & 0x3Fu) << 6) | (static_cast<unsigned char>(nsp[i + 3]) & 0x3Fu);
      len = 4;
    } else if (c >= 0xE0 && i + 2 < nsp.size()) {
      cp = ((c & 0x0Fu) << 12) | ((static_cast<unsigned char>(nsp[i + 1]) & 0x3Fu) << 6) |
           (static_cast<unsigned char>(nsp[i + 2]) & 0x3Fu);
      len = 3;
    } else if (c >= 0xC0 && i + 1 < nsp.size()) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(nsp[i + 1]) & 0x3Fu);
      len = 2;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      add(0xD800u + (cp >> 10));
      add(0xDC00u + (cp & 0x3FFu));
    } else {
      add(cp);
    }
    i += len;
  }
  const std::int32_t index = hash % static_cast<std::int32_t>(count);
  return std::string(base) + "-" + std::to_string(index);
}

std::vector<std::string> encode_stream_broadcast(const SioBroadcast& b) {
  json data = cluster_broadcast_data(b, false);
  std::string field;
  if (b.attachments.empty()) {
    field = data.dump(-1, ' ', false, json::error_handler_t::replace);
  } else {
    const std::string bytes = to_msgpack(data);
    field = ws::base64_encode(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  return {"uid", b.uid, "nsp", b.nsp, "type", std::to_string(static_cast<int>(ClusterType::kBroadcast)), "data",
          std::move(field)};
}

bool decode_stream_message(const StreamFields& f, ClusterMessage& out, std::string& error, std::uint32_t max_binaries) {
  out = ClusterMessage{};
  // parseInt(type, 10): the leading digits.
  std::size_t digits = 0;
  while (digits < f.type.size() && digits < 6 && f.type[digits] >= '0' && f.type[digits] <= '9') ++digits;
  if (digits == 0) {
    error = "no message type";
    return false;
  }
  json m = json::object();
  m["type"] = std::stoi(f.type.substr(0, digits));
  m["uid"] = f.uid;
  m["nsp"] = f.nsp;
  if (!f.data.empty()) {
    json data;
    if (f.data.front() == '{') {
      if (!json_depth_ok(f.data, kMaxDepth)) {
        error = "invalid JSON";
        return false;
      }
      data = json::parse(f.data, nullptr, false);
      if (data.is_discarded()) {
        error = "invalid JSON";
        return false;
      }
    } else {
      std::string bytes;
      if (!ws::base64_decode(f.data, bytes)) {
        error = "invalid base64";
        return false;
      }
      if (!decode(bytes, data, error)) return false;
    }
    m["data"] = std::move(data);
  }
  return read_cluster_message(m, out, error, max_binaries);
}

std::string encode_session(const StreamSession& s) {
  json data = json::parse(s.data_json.empty() ? std::string_view("{}") : std::string_view(s.data_json), nullptr, false);
  if (data.is_discarded()) data = json::object();
  json m = json::object();
  m["sid"] = s.sid;
  m["pid"] = s.pid;
  m["rooms"] = s.rooms;
  m["data"] = std::move(data);
  const std::string bytes = to_msgpack(m);
  return ws::base64_encode(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

bool decode_session(std::string_view text, StreamSession& out, std::string& error) {
  out = StreamSession{};
  std::string bytes;
  if (!ws::base64_decode(text, bytes)) {
    error = "invalid base64";
    return false;
  }
  json m;
  if (!decode(bytes, m, error)) return false;
  auto sid = m.find("sid");
  auto pid = m.find("pid");
  if (!m.is_object() || sid == m.end() || !sid->is_string() || pid == m.end() || !pid->is_string()) {
    error = "not a session";
    return false;
  }
  out.sid = sid->get<std::string>();
  out.pid = pid->get<std::string>();
  if (auto r = m.find("rooms"); r != m.end() && !room_list(*r, out.rooms)) {
    error = "invalid rooms";
    return false;
  }
  if (auto d = m.find("data"); d != m.end()) out.data_json = d->dump(-1, ' ', false, json::error_handler_t::replace);
  return true;
}

bool valid_stream_offset(std::string_view offset) {
  const std::size_t dash = offset.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == offset.size() || offset.size() > 41) return false;
  for (std::size_t i = 0; i < offset.size(); ++i) {
    if (i != dash && (offset[i] < '0' || offset[i] > '9')) return false;
  }
  return true;
}

std::string next_stream_offset(std::string_view offset) {
  // "<ms>-<seq+1>" (exclusive ranges need Redis 6.2; the official adapter counts up too).
  const std::size_t dash = offset.find('-');
  std::string seq(offset.substr(dash + 1));
  // Decimal increment of any length: a sequence of 20 nines is still a valid id's neighbour.
  int i = static_cast<int>(seq.size()) - 1;
  while (i >= 0 && seq[static_cast<std::size_t>(i)] == '9') seq[static_cast<std::size_t>(i--)] = '0';
  if (i < 0) seq.insert(seq.begin(), '1');
  else ++seq[static_cast<std::size_t>(i)];
  return std::string(offset.substr(0, dash)) + "-" + seq;
}

bool includes_session(const std::vector<std::string>& session_rooms, const SioBroadcast& b) {
  auto in = [](const std::vector<std::string>& list, const std::string& room) {
    return std::find(list.begin(), list.end(), room) != list.end();
  };
  const bool included = b.rooms.empty() ||
                        std::any_of(session_rooms.begin(), session_rooms.end(), [&](const std::string& r) { return in(b.rooms, r); });
  const bool excluded = std::any_of(session_rooms.begin(), session_rooms.end(), [&](const std::string& r) { return in(b.except, r); });
  return included && !excluded;
}

}  // namespace sidewire::adapter
