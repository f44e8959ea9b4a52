#include "adapter/wire.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>

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

}  // namespace

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
  json& packet = m[1];
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
  if (m.size() >= 3 && m[2].is_object()) {
    const json& opts = m[2];
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

std::string channel_channel(std::string_view channel_key, std::string_view path) {
  std::string channel;
  channel.append(channel_key).append("#").append(path).append("#");
  return channel;
}

std::string encode_channel_broadcast(const ChannelBroadcast& b) {
  json bytes = json::binary(std::vector<std::uint8_t>(b.payload.begin(), b.payload.end()));
  return to_msgpack(json::array({b.uid, b.room, b.binary, std::move(bytes)}));
}

bool decode_channel_broadcast(std::string_view payload, ChannelBroadcast& out, std::string& error) {
  out = ChannelBroadcast{};
  json m;
  if (!decode(payload, m, error)) return false;
  if (!m.is_array() || m.size() != 4 || !m[0].is_string() || !m[1].is_string() || !m[2].is_boolean() ||
      !m[3].is_binary()) {
    error = "not a channel message";
    return false;
  }
  out.uid = m[0].get<std::string>();
  out.room = m[1].get<std::string>();
  out.binary = m[2].get<bool>();
  const auto& b = m[3].get_binary();
  out.payload.assign(reinterpret_cast<const char*>(b.data()), b.size());
  return true;
}

}  // namespace sidewire::adapter
