// The cluster adapter's messages (native/adapter/wire.*): what another node of the fleet, a
// socket.io node with @socket.io/redis-adapter or @socket.io/redis-emitter, publishes on Redis.
//
// Checked, for what the decoders accept: a broadcast's data is a non-empty JSON array with no
// more attachments than allowed, and encoding it again decodes to the same broadcast (the same
// binaries too, unless invalid UTF-8 made two keys one); a channel message round-trips exactly.
// The sharded adapter's messages (decode_cluster_message) likewise. The streams adapter's
// entries (decode_stream_message: the input split at its first three newlines into uid, nsp,
// type and data) and its sessions (decode_session) likewise. A refusal always says why.
#include <nlohmann/json.hpp>
#include <string>

#include "adapter/wire.hpp"
#include "fuzz_check.hpp"

namespace adapter = sidewire::adapter;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = fuzz::as_text(data, size);
  adapter::SioBroadcast b;
  std::string error;
  if (adapter::decode_sio_broadcast(bytes, b, error)) {
    const auto j = nlohmann::json::parse(b.data_json, nullptr, false);
    FUZZ_CHECK(!j.is_discarded() && j.is_array() && !j.empty());
    FUZZ_CHECK(b.attachments.size() <= 64);
    FUZZ_CHECK(!adapter::sio_channel("socket.io", b).empty());
    const std::string again = adapter::encode_sio_broadcast(b);
    adapter::SioBroadcast c;
    std::string error2;
    FUZZ_CHECK(adapter::decode_sio_broadcast(again, c, error2));
    FUZZ_CHECK(c.uid == b.uid && c.nsp == b.nsp && c.rooms == b.rooms && c.except == b.except);
    FUZZ_CHECK(c.is_volatile == b.is_volatile && c.compress == b.compress);
    if (b.data_json.find("\xEF\xBF\xBD") == std::string::npos) FUZZ_CHECK(c.attachments == b.attachments);
  } else {
    FUZZ_CHECK(!error.empty());
  }
  // The sharded adapter's { uid, nsp, type, data }: a plain broadcast must encode again and
  // decode to the same one.
  adapter::ClusterMessage cm;
  error.clear();
  if (adapter::decode_cluster_message(bytes, cm, error)) {
    FUZZ_CHECK(cm.type >= -1 && cm.type <= 1000);  // unknown types go on to JS, which ignores them
    if (cm.type == 3 && !cm.has_request_id) {
      FUZZ_CHECK(cm.broadcast.attachments.size() <= 64);
      FUZZ_CHECK(!adapter::sharded_channel("socket.io", cm.broadcast, adapter::ShardedRooms::kDynamic).empty());
      adapter::ClusterMessage again;
      std::string error2;
      FUZZ_CHECK(adapter::decode_cluster_message(adapter::encode_cluster_broadcast(cm.broadcast), again, error2));
      FUZZ_CHECK(again.type == 3 && again.broadcast.rooms == cm.broadcast.rooms && again.broadcast.except == cm.broadcast.except);
      FUZZ_CHECK(again.broadcast.is_volatile == cm.broadcast.is_volatile);
    }
  } else {
    FUZZ_CHECK(!error.empty());
  }
  // A stream entry's fields: uid \n nsp \n type \n data (the rest).
  {
    adapter::StreamFields f;
    std::string_view rest = bytes;
    std::string* parts[] = {&f.uid, &f.nsp, &f.type};
    for (std::string* part : parts) {
      const std::size_t nl = rest.find('\n');
      if (nl == std::string_view::npos) break;
      part->assign(rest.substr(0, nl));
      rest.remove_prefix(nl + 1);
    }
    f.data.assign(rest);
    adapter::ClusterMessage sm;
    error.clear();
    if (adapter::decode_stream_message(f, sm, error)) {
      FUZZ_CHECK(sm.type >= -1 && sm.type <= 1000);
      if (sm.type == 3 && !sm.has_request_id) {
        const auto fields = adapter::encode_stream_broadcast(sm.broadcast);
        FUZZ_CHECK(fields.size() == 8);
        adapter::ClusterMessage again;
        std::string error2;
        FUZZ_CHECK(adapter::decode_stream_message({fields[1], fields[3], fields[5], fields[7]}, again, error2));
        FUZZ_CHECK(again.type == 3 && again.broadcast.rooms == sm.broadcast.rooms && again.broadcast.except == sm.broadcast.except);
        FUZZ_CHECK(again.broadcast.attachments.size() == sm.broadcast.attachments.size());
      }
    } else {
      FUZZ_CHECK(!error.empty());
    }
    adapter::StreamSession session;
    error.clear();
    if (adapter::decode_session(f.data, session, error)) {
      adapter::StreamSession again;
      std::string error2;
      FUZZ_CHECK(adapter::decode_session(adapter::encode_session(session), again, error2));
      FUZZ_CHECK(again.sid == session.sid && again.pid == session.pid && again.rooms == session.rooms);
    } else {
      FUZZ_CHECK(!error.empty());
    }
    if (adapter::valid_stream_offset(f.data)) FUZZ_CHECK(adapter::valid_stream_offset(adapter::next_stream_offset(f.data)));
    (void)adapter::stream_name("socket.io", 7, f.nsp);
  }
  adapter::ChannelBroadcast m;
  error.clear();
  if (adapter::decode_channel_broadcast(bytes, m, error)) {
    adapter::ChannelBroadcast n;
    std::string error2;
    FUZZ_CHECK(adapter::decode_channel_broadcast(adapter::encode_channel_broadcast(m), n, error2));
    FUZZ_CHECK(n.uid == m.uid && n.rooms == m.rooms && n.binary == m.binary && n.payload == m.payload);
  } else {
    FUZZ_CHECK(!error.empty());
  }
  return 0;
}
