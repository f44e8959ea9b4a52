#include "socketio/msgpack.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "socketio/packet.hpp"

namespace sidewire::sio {

using nlohmann::json;

namespace {

// notepack.io writes `undefined` as the extension 0 with one zero byte.
bool is_undefined(const json& v) {
  if (!v.is_binary()) return false;
  const auto& b = v.get_binary();
  return b.has_subtype() && b.subtype() == 0 && b.size() == 1 && b[0] == 0;
}

bool is_reserved_event(const std::string& name) {
  return name == "connect" || name == "connect_error" || name == "disconnect" || name == "disconnecting" ||
         name == "newListener" || name == "removeListener";
}

}  // namespace

// Binary values out of the tree into attachments, placeholders in their place; `undefined` to
// null (as JSON has it). Returns false past `max_binaries`, or for an extension other than
// undefined (a Date from msgpack-lite, say: nothing socket.io's parser would hand a handler).
bool extract_binaries(json& v, std::vector<std::string>& out, std::uint32_t max_binaries, int depth) {
  if (depth > 64) return false;
  if (v.is_binary()) {
    if (is_undefined(v)) {
      v = nullptr;
      return true;
    }
    if (v.get_binary().has_subtype()) return false;
    if (out.size() >= max_binaries) return false;
    const auto& b = v.get_binary();
    out.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
    v = json{{"_placeholder", true}, {"num", out.size() - 1}};
    return true;
  }
  if (v.is_array()) {
    for (auto& e : v) {
      if (!extract_binaries(e, out, max_binaries, depth + 1)) return false;
    }
  } else if (v.is_object()) {
    // JS reads {"_placeholder": true, "num": i} as attachment i: an object of the client's with
    // that key would be taken for one (or refused as one), where the msgpack parser delivers it
    // as sent. Refused instead of misread.
    if (v.contains("_placeholder")) return false;
    for (auto& [k, e] : v.items()) {
      if (!extract_binaries(e, out, max_binaries, depth + 1)) return false;
    }
  }
  return true;
}

void insert_binaries(json& v, const std::vector<std::string>& attachments) {
  if (v.is_object()) {
    auto p = v.find("_placeholder");
    auto n = v.find("num");
    if (v.size() == 2 && p != v.end() && p->is_boolean() && p->get<bool>() && n != v.end() && n->is_number_unsigned() &&
        n->get<std::uint64_t>() < attachments.size()) {
      const std::string& a = attachments[n->get<std::size_t>()];
      v = json::binary(std::vector<std::uint8_t>(a.begin(), a.end()));
      return;
    }
    for (auto& [k, e] : v.items()) insert_binaries(e, attachments);
  } else if (v.is_array()) {
    for (auto& e : v) insert_binaries(e, attachments);
  }
}

// Walks the MessagePack bytes without recursion before the (recursive) parser sees them:
// false for truncated input, for a container that declares more items than bytes remain, for
// the never-used byte 0xc1, and for nesting deeper than `max_depth`.
bool msgpack_well_formed(std::string_view bytes, std::size_t max_depth) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  const auto* end = p + bytes.size();
  std::vector<std::uint64_t> pending{1};  // items still to read, per open container
  auto be = [&](int n, std::uint64_t& v) {
    if (end - p < n) return false;
    v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | *p++;
    return true;
  };
  auto skip = [&](std::uint64_t n) {
    if (static_cast<std::uint64_t>(end - p) < n) return false;
    p += n;
    return true;
  };
  auto open = [&](std::uint64_t items) {
    if (items > static_cast<std::uint64_t>(end - p)) return false;  // every item takes a byte
    if (items == 0) return true;
    if (pending.size() > max_depth) return false;
    pending.push_back(items);
    return true;
  };
  while (!pending.empty()) {
    if (pending.back() == 0) {
      pending.pop_back();
      continue;
    }
    --pending.back();
    if (p == end) return false;
    const std::uint8_t b = *p++;
    std::uint64_t n = 0;
    bool ok = true;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
    } else if (b >= 0x80 && b <= 0x8f) {
      ok = open(2u * (b & 0x0f));
    } else if (b >= 0x90 && b <= 0x9f) {
      ok = open(b & 0x0f);
    } else if (b >= 0xa0 && b <= 0xbf) {
      ok = skip(b & 0x1f);
    } else {
      switch (b) {
        case 0xc4: ok = be(1, n) && skip(n); break;
        case 0xc5: ok = be(2, n) && skip(n); break;
        case 0xc6: ok = be(4, n) && skip(n); break;
        case 0xc7: ok = be(1, n) && skip(n + 1); break;
        case 0xc8: ok = be(2, n) && skip(n + 1); break;
        case 0xc9: ok = be(4, n) && skip(n + 1); break;
        case 0xca: ok = skip(4); break;
        case 0xcb: ok = skip(8); break;
        case 0xcc: case 0xd0: ok = skip(1); break;
        case 0xcd: case 0xd1: ok = skip(2); break;
        case 0xce: case 0xd2: ok = skip(4); break;
        case 0xcf: case 0xd3: ok = skip(8); break;
        case 0xd4: ok = skip(2); break;
        case 0xd5: ok = skip(3); break;
        case 0xd6: ok = skip(5); break;
        case 0xd7: ok = skip(9); break;
        case 0xd8: ok = skip(17); break;
        case 0xd9: ok = be(1, n) && skip(n); break;
        case 0xda: ok = be(2, n) && skip(n); break;
        case 0xdb: ok = be(4, n) && skip(n); break;
        case 0xdc: ok = be(2, n) && open(n); break;
        case 0xdd: ok = be(4, n) && open(n); break;
        case 0xde: ok = be(2, n) && open(2 * n); break;
        case 0xdf: ok = be(4, n) && open(2 * n); break;
        default: ok = false;  // 0xc1
      }
    }
    if (!ok) return false;
  }
  return p == end;
}

bool decode_msgpack_packet(std::string_view bytes, MsgpackPacket& out, std::string& error, std::uint32_t max_binaries) {
  out = MsgpackPacket{};
  if (!msgpack_well_formed(bytes, 64)) {
    error = "invalid MessagePack";
    return false;
  }
  json p = json::from_msgpack(bytes.begin(), bytes.end(), true, false);
  if (p.is_discarded()) {
    error = "invalid MessagePack";
    return false;
  }
  if (!p.is_object()) {
    error = "invalid packet type";
    return false;
  }
  auto type = p.find("type");
  if (type == p.end() || !type->is_number_integer() || type->get<std::int64_t>() < kConnect ||
      type->get<std::int64_t>() > kConnectError) {
    error = "invalid packet type";
    return false;
  }
  out.type = static_cast<int>(type->get<std::int64_t>());
  auto nsp = p.find("nsp");
  if (nsp == p.end() || !nsp->is_string()) {
    error = "invalid namespace";
    return false;
  }
  out.nsp = nsp->get<std::string>();
  if (out.nsp.empty() || out.nsp[0] != '/') out.nsp.insert(out.nsp.begin(), '/');
  auto id = p.find("id");
  if (id != p.end() && !is_undefined(*id)) {
    if (!id->is_number_integer() || id->get<std::int64_t>() < 0) {
      error = "invalid packet id";
      return false;
    }
    out.ack_id = id->get<std::int64_t>();
  }
  auto data = p.find("data");
  const bool has_data = data != p.end() && !is_undefined(*data);
  bool valid = false;
  switch (out.type) {
    case kConnect: valid = !has_data || data->is_object(); break;
    case kDisconnect: valid = !has_data; break;
    case kEvent:
      // An event's name: a string that is not reserved, or a number JSON can carry (not NaN or
      // an infinity, which JS would get as null).
      valid = has_data && data->is_array() && !data->empty() &&
              (((*data)[0].is_number() && (!(*data)[0].is_number_float() || std::isfinite((*data)[0].get<double>()))) ||
               ((*data)[0].is_string() && !is_reserved_event((*data)[0].get<std::string>())));
      break;
    case kAck: valid = has_data && data->is_array() && out.ack_id >= 0; break;
    default: valid = false;  // CONNECT_ERROR: not a client's to send
  }
  if (!valid) {
    error = "invalid payload";
    return false;
  }
  if (has_data) {
    // A CONNECT's auth goes to JS as JSON, without attachments: binaries in it are refused.
    if (!extract_binaries(*data, out.attachments, out.type == kConnect ? 0 : max_binaries)) {
      error = "invalid payload";
      return false;
    }
    out.data = data->dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return true;
}

std::string encode_msgpack_packet(int type, std::string_view nsp, std::int64_t ack_id, std::string_view data_json,
                                  const std::vector<std::string>& attachments) {
  json p = json::object();
  p["type"] = type;
  p["nsp"] = nsp;
  if (!data_json.empty()) {
    json data = json::parse(data_json, nullptr, false);
    if (data.is_discarded()) throw std::invalid_argument("packet data is not JSON");
    if (!attachments.empty()) insert_binaries(data, attachments);
    p["data"] = std::move(data);
  }
  if (ack_id >= 0) p["id"] = ack_id;
  std::string out;
  json::to_msgpack(p, nlohmann::detail::output_adapter<char>(out));
  return out;
}

}  // namespace sidewire::sio
