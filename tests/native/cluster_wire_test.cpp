// The cluster adapter's wire format against what @socket.io/redis-adapter and its emitter put
// on Redis (notepack.io's bytes, made with the npm package and pasted here as hex).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "adapter/wire.hpp"

namespace adapter = sidewire::adapter;

namespace {
std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}
}  // namespace

// msgpack.encode(['emitter', { type: 2, data: ['bin', Buffer [0,1,255], { n: Buffer 'hi' }], nsp: '/admin' },
//                 { rooms: ['r1', 7], except: ['x'], flags: { volatile: true, compress: false } }])
TEST(ClusterWire, DecodesTheOfficialBroadcastWithBinariesAndFlags) {
  const std::string bytes = from_hex(
      "93a7656d697474657283a47479706502a46461746193a362696ec4030001ff81a16ec4026869a36e7370a62f61646d696e83a5726f6f6d73"
      "92a2723107a665786365707491a178a5666c61677382a8766f6c6174696c65c3a8636f6d7072657373c2");
  adapter::SioBroadcast b;
  std::string error;
  ASSERT_TRUE(adapter::decode_sio_broadcast(bytes, b, error)) << error;
  EXPECT_EQ(b.uid, "emitter");
  EXPECT_EQ(b.nsp, "/admin");
  EXPECT_EQ(b.rooms, (std::vector<std::string>{"r1", "7"}));
  EXPECT_EQ(b.except, (std::vector<std::string>{"x"}));
  EXPECT_TRUE(b.is_volatile);
  ASSERT_TRUE(b.compress.has_value());
  EXPECT_FALSE(*b.compress);
  ASSERT_EQ(b.attachments.size(), 2u);
  EXPECT_EQ(b.attachments[0], std::string("\x00\x01\xff", 3));
  EXPECT_EQ(b.attachments[1], "hi");
  EXPECT_EQ(nlohmann::json::parse(b.data_json),
            nlohmann::json::parse(R"(["bin",{"_placeholder":true,"num":0},{"n":{"_placeholder":true,"num":1}}])"));
}

// msgpack.encode([undefined, { type: 2, data: ['e', undefined, 1.5] }, { rooms: [], except: [], flags: {} }]):
// no uid, no nsp (the main namespace), undefined in the data (null, as JSON has it).
TEST(ClusterWire, DecodesAMessageWithoutUidOrNamespace) {
  const std::string bytes =
      from_hex("93d4000082a47479706502a46461746193a165d40000cb3ff800000000000083a5726f6f6d7390a665786365707490a5666c61677380");
  adapter::SioBroadcast b;
  std::string error;
  ASSERT_TRUE(adapter::decode_sio_broadcast(bytes, b, error)) << error;
  EXPECT_EQ(b.uid, "");
  EXPECT_EQ(b.nsp, "/");
  EXPECT_TRUE(b.rooms.empty());
  EXPECT_FALSE(b.compress.has_value());
  EXPECT_EQ(nlohmann::json::parse(b.data_json), nlohmann::json::parse(R"(["e",null,1.5])"));
}

TEST(ClusterWire, EncodesWhatItDecodesAndNamesTheChannelAsTheOfficialAdapter) {
  adapter::SioBroadcast b;
  b.uid = "node1";
  b.nsp = "/chat";
  b.rooms = {"room-1"};
  b.except = {"s1"};
  b.data_json = R"(["msg",{"_placeholder":true,"num":0},"text"])";
  b.attachments = {std::string("\x00\x02", 2)};
  b.is_volatile = true;
  EXPECT_EQ(adapter::sio_channel("socket.io", b), "socket.io#/chat#room-1#");
  adapter::SioBroadcast c;
  std::string error;
  ASSERT_TRUE(adapter::decode_sio_broadcast(adapter::encode_sio_broadcast(b), c, error)) << error;
  EXPECT_EQ(c.uid, "node1");
  EXPECT_EQ(c.nsp, "/chat");
  EXPECT_EQ(c.rooms, b.rooms);
  EXPECT_EQ(c.except, b.except);
  EXPECT_EQ(c.attachments, b.attachments);
  EXPECT_EQ(nlohmann::json::parse(c.data_json), nlohmann::json::parse(b.data_json));
  EXPECT_TRUE(c.is_volatile);
  b.rooms = {"a", "b"};
  EXPECT_EQ(adapter::sio_channel("k", b), "k#/chat#");
}

TEST(ClusterWire, RefusesWhatIsNotABroadcast) {
  adapter::SioBroadcast b;
  std::string error;
  EXPECT_FALSE(adapter::decode_sio_broadcast("", b, error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(adapter::decode_sio_broadcast(std::string("\x93\xa1u", 3), b, error));  // truncated
  // [uid, { type: 0 }]: a CONNECT is not broadcast
  EXPECT_FALSE(adapter::decode_sio_broadcast(from_hex("92a17581a47479706500"), b, error));
  // nesting far past any packet's
  EXPECT_FALSE(adapter::decode_sio_broadcast(std::string(100000, '\x91'), b, error));
  EXPECT_THROW(adapter::encode_sio_broadcast(adapter::SioBroadcast{}), std::invalid_argument);
}

TEST(ClusterWire, ChannelMessagesRoundTrip) {
  adapter::ChannelBroadcast m;
  m.uid = "u";
  m.rooms = {"doc-1"};
  m.payload = std::string("\x00\x01 y.js update", 14);
  m.binary = true;
  EXPECT_EQ(adapter::channel_channel("sidewire-channel", "/ws/fabric"), "sidewire-channel#/ws/fabric#");
  adapter::ChannelBroadcast n;
  std::string error;
  ASSERT_TRUE(adapter::decode_channel_broadcast(adapter::encode_channel_broadcast(m), n, error)) << error;
  EXPECT_EQ(n.uid, m.uid);
  EXPECT_EQ(n.rooms, m.rooms);
  EXPECT_EQ(n.payload, m.payload);
  EXPECT_TRUE(n.binary);
  EXPECT_FALSE(adapter::decode_channel_broadcast(from_hex("93a175a0c2"), n, error));
  // One room is a string, as nodes before several rooms wrote it; none is "".
  EXPECT_EQ(adapter::encode_channel_broadcast(m).substr(0, 9), from_hex("94a175a5646f632d31"));
  m.rooms.clear();
  EXPECT_EQ(adapter::encode_channel_broadcast(m).substr(0, 4), from_hex("94a175a0"));
  ASSERT_TRUE(adapter::decode_channel_broadcast(adapter::encode_channel_broadcast(m), n, error)) << error;
  EXPECT_TRUE(n.rooms.empty());
  // A relayed message of a member of several rooms goes once, with all of them.
  m.rooms = {"doc-1", "doc-2"};
  EXPECT_EQ(adapter::encode_channel_broadcast(m).substr(0, 16), from_hex("94a17592a5646f632d31a5646f632d32"));
  ASSERT_TRUE(adapter::decode_channel_broadcast(adapter::encode_channel_broadcast(m), n, error)) << error;
  EXPECT_EQ(n.rooms, m.rooms);
  // Rooms that are not strings, or an empty one among several, are refused.
  EXPECT_FALSE(adapter::decode_channel_broadcast(from_hex("94a17591c3c2c400"), n, error));
  EXPECT_FALSE(adapter::decode_channel_broadcast(from_hex("94a17592a161a0c2c400"), n, error));
  EXPECT_FALSE(adapter::decode_channel_broadcast(from_hex("94a17590c2c400"), n, error));
}

// The sharded adapter's messages (socket.io-adapter's ClusterAdapter): notepack.io's encoding of
// { uid: 'u1', nsp: '/chat', type: 3, data: { packet: { type: 2, data: ['bin', Buffer [0,1,255],
//   { n: Buffer 'hi' }], nsp: '/chat' }, opts: { rooms: ['r1'], except: ['x'],
//   flags: { volatile: true, compress: false } } } }
TEST(ClusterWire, DecodesTheShardedAdaptersBinaryBroadcast) {
  const std::string bytes = from_hex(
      "84a3756964a27531a36e7370a52f63686174a47479706503a46461746182a67061636b657483a47479706502a46461746193a362696ec403"
      "0001ff81a16ec4026869a36e7370a52f63686174a46f70747383a5726f6f6d7391a27231a665786365707491a178a5666c61677382a876"
      "6f6c6174696c65c3a8636f6d7072657373c2");
  adapter::ClusterMessage m;
  std::string error;
  ASSERT_TRUE(adapter::decode_cluster_message(bytes, m, error)) << error;
  EXPECT_EQ(m.type, static_cast<int>(adapter::ClusterType::kBroadcast));
  EXPECT_EQ(m.uid, "u1");
  EXPECT_EQ(m.nsp, "/chat");
  EXPECT_FALSE(m.has_request_id);
  EXPECT_EQ(m.broadcast.rooms, (std::vector<std::string>{"r1"}));
  EXPECT_EQ(m.broadcast.except, (std::vector<std::string>{"x"}));
  EXPECT_TRUE(m.broadcast.is_volatile);
  ASSERT_EQ(m.broadcast.attachments.size(), 2u);
  EXPECT_EQ(m.broadcast.attachments[0], std::string("\x00\x01\xff", 3));
  EXPECT_EQ(nlohmann::json::parse(m.broadcast.data_json),
            nlohmann::json::parse(R"(["bin",{"_placeholder":true,"num":0},{"n":{"_placeholder":true,"num":1}}])"));
  // Encoded again it is MessagePack (it has binaries), and decodes to the same broadcast.
  const std::string again = adapter::encode_cluster_broadcast(m.broadcast);
  EXPECT_NE(again.front(), '{');
  adapter::ClusterMessage n;
  ASSERT_TRUE(adapter::decode_cluster_message(again, n, error)) << error;
  EXPECT_EQ(n.broadcast.attachments, m.broadcast.attachments);
  EXPECT_EQ(n.broadcast.rooms, m.broadcast.rooms);
  // One public room: its own channel in dynamic mode; a 20-character room looks like a socket id.
  EXPECT_EQ(adapter::sharded_channel("socket.io", m.broadcast, adapter::ShardedRooms::kDynamic), "socket.io#/chat#r1#");
  EXPECT_EQ(adapter::sharded_channel("socket.io", m.broadcast, adapter::ShardedRooms::kStatic), "socket.io#/chat#");
  m.broadcast.rooms = {"AAAAAAAAAAAAAAAAAAAA"};
  EXPECT_EQ(adapter::sharded_channel("p", m.broadcast, adapter::ShardedRooms::kDynamic), "p#/chat#");
  EXPECT_EQ(adapter::sharded_channel("p", m.broadcast, adapter::ShardedRooms::kDynamicPrivate), "p#/chat#AAAAAAAAAAAAAAAAAAAA#");
  m.broadcast.rooms = {"a", "b"};
  EXPECT_EQ(adapter::sharded_channel("p", m.broadcast, adapter::ShardedRooms::kDynamicPrivate), "p#/chat#");
}

// JSON as the sharded adapter sends a message without binaries; requests the engine applies.
TEST(ClusterWire, DecodesTheShardedAdaptersJsonMessages) {
  adapter::ClusterMessage m;
  std::string error;
  ASSERT_TRUE(adapter::decode_cluster_message(
      R"({"uid":"n2","nsp":"/","type":4,"data":{"opts":{"rooms":["r1"],"except":["r2"],"flags":{}},"rooms":["r8","r9"]}})", m, error))
      << error;
  EXPECT_EQ(m.type, static_cast<int>(adapter::ClusterType::kSocketsJoin));
  EXPECT_EQ(m.rooms, (std::vector<std::string>{"r1"}));
  EXPECT_EQ(m.except, (std::vector<std::string>{"r2"}));
  EXPECT_EQ(m.targets, (std::vector<std::string>{"r8", "r9"}));
  ASSERT_TRUE(adapter::decode_cluster_message(
      R"({"uid":"n2","nsp":"/","type":6,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"close":true}})", m, error));
  EXPECT_TRUE(m.close);
  ASSERT_TRUE(adapter::decode_cluster_message(
      R"({"uid":"n2","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["e"],"nsp":"/"},"requestId":"abc","opts":{"rooms":[],"except":[],"flags":{}}}})",
      m, error));
  EXPECT_TRUE(m.has_request_id);  // a broadcast with acks: JS's to answer
  // Refused, with a reason: not an object, nested too deep, no type.
  EXPECT_FALSE(adapter::decode_cluster_message("{", m, error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(adapter::decode_cluster_message(std::string(50000, '[') , m, error));
  EXPECT_FALSE(adapter::decode_cluster_message(std::string("{") + std::string(50000, '['), m, error));
  EXPECT_FALSE(adapter::decode_cluster_message(R"({"uid":"x","nsp":"/"})", m, error));
  EXPECT_FALSE(adapter::decode_cluster_message(std::string(100000, '\x91'), m, error));
}

// Found by the fuzzer: a broadcast whose data is missing (a key "dati") was taken for an empty one.
// A broadcast or a selection without data is refused; a heartbeat needs none.
TEST(ClusterWire, RefusesAShardedBroadcastOrSelectionWithoutData) {
  adapter::ClusterMessage m;
  std::string error;
  EXPECT_FALSE(adapter::decode_cluster_message(R"({"uid":"u1","nsp":"/","type":3,"dati":{}})", m, error));
  EXPECT_EQ(error, "no data");
  EXPECT_FALSE(adapter::decode_cluster_message(R"({"uid":"u1","nsp":"/","type":6})", m, error));
  EXPECT_TRUE(adapter::decode_cluster_message(R"({"uid":"u1","nsp":"/","type":2})", m, error)) << error;
  EXPECT_EQ(m.type, 2);
}

// --------------------------------------------------------------- @socket.io/redis-streams-adapter

// The stream of a namespace: the official adapter's JavaScript hash over UTF-16 code units,
// values computed with node (negative remainders included: "socket.io--1").
TEST(ClusterWireStreams, PicksTheStreamOfANamespaceAsTheOfficialAdapter) {
  EXPECT_EQ(adapter::stream_name("socket.io", 1, "/admin"), "socket.io");
  EXPECT_EQ(adapter::stream_name("socket.io", 3, "/"), "socket.io-2");
  EXPECT_EQ(adapter::stream_name("socket.io", 3, "/admin"), "socket.io-1");
  EXPECT_EQ(adapter::stream_name("socket.io", 7, "/admin"), "socket.io-4");
  EXPECT_EQ(adapter::stream_name("s", 3, "/\xc3\xbcn\xc3\xaf" "code"), "s-0");          // "/ünïcode": -0
  EXPECT_EQ(adapter::stream_name("s", 7, "/\xc3\xbcn\xc3\xaf" "code"), "s--1");
  EXPECT_EQ(adapter::stream_name("s", 3, "/\xf0\x9f\x98\x80-room"), "s--1");          // a surrogate pair
  EXPECT_EQ(adapter::stream_name("s", 7, "/a-very-long-namespace-name-that-overflows-the-hash"), "s--1");
}

TEST(ClusterWireStreams, AddsAndReadsBackAPlainBroadcast) {
  adapter::SioBroadcast b;
  b.uid = "node1";
  b.nsp = "/chat";
  b.rooms = {"r1"};
  b.except = {"r2"};
  b.data_json = R"(["e",1,"two"])";
  const auto fields = adapter::encode_stream_broadcast(b);
  ASSERT_EQ(fields.size(), 8u);
  EXPECT_EQ(fields[0], "uid");
  EXPECT_EQ(fields[1], "node1");
  EXPECT_EQ(fields[3], "/chat");
  EXPECT_EQ(fields[5], "3");
  // JSON.stringify(message.data), the packet without its nsp as socket.io's own.
  EXPECT_EQ(nlohmann::json::parse(fields[7]),
            nlohmann::json::parse(R"({"packet":{"type":2,"data":["e",1,"two"]},"opts":{"rooms":["r1"],"except":["r2"],"flags":{}}})"));
  adapter::ClusterMessage m;
  std::string error;
  ASSERT_TRUE(adapter::decode_stream_message({fields[1], fields[3], fields[5], fields[7]}, m, error)) << error;
  EXPECT_EQ(m.type, 3);
  EXPECT_FALSE(m.has_request_id);
  EXPECT_EQ(m.broadcast.nsp, "/chat");
  EXPECT_EQ(m.broadcast.rooms, b.rooms);
  EXPECT_EQ(m.broadcast.except, b.except);
  EXPECT_EQ(nlohmann::json::parse(m.broadcast.data_json), nlohmann::json::parse(b.data_json));
}

// Binary values: base64 of @msgpack/msgpack's encode(data), bytes made with the npm package:
// encode({ packet: { type: 2, data: ['e', Buffer [0,1,255]] }, opts: { rooms: ['r1'], except: [], flags: {} } })
TEST(ClusterWireStreams, ReadsTheOfficialBinaryEntryAndWritesOneItReads) {
  const std::string data = "gqZwYWNrZXSCpHR5cGUCpGRhdGGSoWXEAwAB/6RvcHRzg6Vyb29tc5GicjGmZXhjZXB0kKVmbGFnc4A=";
  adapter::ClusterMessage m;
  std::string error;
  ASSERT_TRUE(adapter::decode_stream_message({"other", "/", "3", data}, m, error)) << error;
  ASSERT_EQ(m.broadcast.attachments.size(), 1u);
  EXPECT_EQ(m.broadcast.attachments[0], std::string("\x00\x01\xff", 3));
  EXPECT_EQ(m.broadcast.rooms, (std::vector<std::string>{"r1"}));
  const auto fields = adapter::encode_stream_broadcast(m.broadcast);
  EXPECT_NE(fields[7].front(), '{');  // base64, not JSON
  adapter::ClusterMessage again;
  ASSERT_TRUE(adapter::decode_stream_message({fields[1], fields[3], fields[5], fields[7]}, again, error)) << error;
  EXPECT_EQ(again.broadcast.attachments, m.broadcast.attachments);
  EXPECT_EQ(again.broadcast.data_json, m.broadcast.data_json);
}

TEST(ClusterWireStreams, ReadsSelectionsAndRefusesWhatIsNotAnEntry) {
  adapter::ClusterMessage m;
  std::string error;
  ASSERT_TRUE(adapter::decode_stream_message(
      {"n", "/", "4", R"({"opts":{"rooms":["r1"],"except":["r2"],"flags":{}},"rooms":["r3"]})"}, m, error))
      << error;
  EXPECT_EQ(m.type, 4);
  EXPECT_EQ(m.rooms, (std::vector<std::string>{"r1"}));
  EXPECT_EQ(m.targets, (std::vector<std::string>{"r3"}));
  EXPECT_FALSE(adapter::decode_stream_message({"n", "/", "", "{}"}, m, error));       // no type
  EXPECT_FALSE(adapter::decode_stream_message({"n", "/", "x3", "{}"}, m, error));     // parseInt: NaN
  EXPECT_FALSE(adapter::decode_stream_message({"n", "/", "3", "{not json"}, m, error));
  EXPECT_FALSE(adapter::decode_stream_message({"n", "/", "3", "!!!"}, m, error));      // not base64
  EXPECT_FALSE(adapter::decode_stream_message({"n", "/", "3", "AAAA"}, m, error));     // not a broadcast's data
  EXPECT_FALSE(adapter::decode_stream_message({"n", "/", "5", ""}, m, error));         // a selection needs data
  EXPECT_FALSE(adapter::decode_stream_message({"n", "/", "3", std::string(100, '{')}, m, error));
}

// encode({ sid: 'abc', pid: 'p1', rooms: ['abc', 'r1'], data: { name: 'x' } }), base64, as
// persistSession writes it.
TEST(ClusterWireStreams, ReadsAndWritesSessionsAsTheOfficialAdapter) {
  adapter::StreamSession s;
  std::string error;
  ASSERT_TRUE(adapter::decode_session("hKNzaWSjYWJjo3BpZKJwMaVyb29tc5KjYWJjonIxpGRhdGGBpG5hbWWheA==", s, error)) << error;
  EXPECT_EQ(s.sid, "abc");
  EXPECT_EQ(s.pid, "p1");
  EXPECT_EQ(s.rooms, (std::vector<std::string>{"abc", "r1"}));
  EXPECT_EQ(nlohmann::json::parse(s.data_json), nlohmann::json::parse(R"({"name":"x"})"));
  // Written back (its keys in another order: MessagePack maps have none to keep).
  adapter::StreamSession again;
  ASSERT_TRUE(adapter::decode_session(adapter::encode_session(s), again, error)) << error;
  EXPECT_EQ(again.sid, s.sid);
  EXPECT_EQ(again.pid, s.pid);
  EXPECT_EQ(again.rooms, s.rooms);
  EXPECT_EQ(again.data_json, s.data_json);
  EXPECT_FALSE(adapter::decode_session("not base64!", s, error));
  EXPECT_FALSE(adapter::decode_session("gA==", s, error));  // {}: no sid
}

TEST(ClusterWireStreams, OffsetsAndWhatASessionMissed) {
  EXPECT_TRUE(adapter::valid_stream_offset("1700000000000-0"));
  EXPECT_FALSE(adapter::valid_stream_offset("1700000000000"));
  EXPECT_FALSE(adapter::valid_stream_offset("-0"));
  EXPECT_FALSE(adapter::valid_stream_offset("1-"));
  EXPECT_FALSE(adapter::valid_stream_offset("1-2-3"));
  EXPECT_FALSE(adapter::valid_stream_offset("+"));
  EXPECT_FALSE(adapter::valid_stream_offset("1-0x"));
  EXPECT_EQ(adapter::next_stream_offset("5-0"), "5-1");
  EXPECT_EQ(adapter::next_stream_offset("5-9"), "5-10");
  EXPECT_EQ(adapter::next_stream_offset("5-999"), "5-1000");
  adapter::SioBroadcast b;
  EXPECT_TRUE(adapter::includes_session({"s1", "r1"}, b));  // everyone
  b.rooms = {"r2", "r1"};
  EXPECT_TRUE(adapter::includes_session({"s1", "r1"}, b));
  b.except = {"s1"};
  EXPECT_FALSE(adapter::includes_session({"s1", "r1"}, b));
  b.except.clear();
  b.rooms = {"r3"};
  EXPECT_FALSE(adapter::includes_session({"s1", "r1"}, b));
}
