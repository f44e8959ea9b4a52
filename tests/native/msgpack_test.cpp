// socket.io-msgpack-parser's packets, decoded and encoded by the engine (native/socketio/msgpack.*).
#include "socketio/msgpack.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "socketio/packet.hpp"

namespace sio = sidewire::sio;
using nlohmann::json;
using namespace std::string_literals;

namespace {
std::string pack(const json& j) {
  std::string out;
  json::to_msgpack(j, nlohmann::detail::output_adapter<char>(out));
  return out;
}
std::string decode_error(const std::string& bytes) {
  sio::MsgpackPacket p;
  std::string error;
  EXPECT_FALSE(sio::decode_msgpack_packet(bytes, p, error)) << json::from_msgpack(bytes, true, false).dump();
  return error;
}
}  // namespace

TEST(Msgpack, DecodesWhatTheClientSends) {
  sio::MsgpackPacket p;
  std::string error;
  ASSERT_TRUE(sio::decode_msgpack_packet(pack({{"type", 0}, {"nsp", "/admin"}, {"data", {{"token", "x"}}}}), p, error));
  EXPECT_EQ(p.type, sio::kConnect);
  EXPECT_EQ(p.nsp, "/admin");
  EXPECT_EQ(json::parse(p.data), json({{"token", "x"}}));

  ASSERT_TRUE(sio::decode_msgpack_packet(
      pack({{"type", 2}, {"nsp", "/"}, {"id", 7}, {"data", {"file", json::binary({1, 2, 3}), {{"n", 1.5}}}}}), p, error));
  EXPECT_EQ(p.type, sio::kEvent);
  EXPECT_EQ(p.ack_id, 7);
  EXPECT_EQ(json::parse(p.data), json::parse(R"(["file",{"_placeholder":true,"num":0},{"n":1.5}])"));
  ASSERT_EQ(p.attachments.size(), 1u);
  EXPECT_EQ(p.attachments[0], std::string("\x01\x02\x03", 3));
}

TEST(Msgpack, UndefinedAsNotepackWritesItIsAbsent) {
  // {type: 0, nsp: "/", data: undefined}: notepack writes undefined as fixext 0.
  const std::string bytes = "\x83\xa4type\x00\xa3nsp\xa1/\xa4" "data\xd4\x00\x00"s;
  sio::MsgpackPacket p;
  std::string error;
  ASSERT_TRUE(sio::decode_msgpack_packet(bytes, p, error)) << error;
  EXPECT_EQ(p.type, sio::kConnect);
  EXPECT_TRUE(p.data.empty());
}

TEST(Msgpack, RefusesWhatTheParserRefuses) {
  EXPECT_EQ(decode_error(pack({{"type", 9}, {"nsp", "/"}})), "invalid packet type");
  EXPECT_EQ(decode_error(pack({{"type", "2"}, {"nsp", "/"}})), "invalid packet type");
  EXPECT_EQ(decode_error(pack({{"type", 2}, {"nsp", 1}, {"data", {"x"}}})), "invalid namespace");
  EXPECT_EQ(decode_error(pack({{"type", 2}, {"nsp", "/"}, {"data", {{"a", 1}}}})), "invalid payload");
  EXPECT_EQ(decode_error(pack({{"type", 2}, {"nsp", "/"}, {"data", {"disconnect"}}})), "invalid payload");
  EXPECT_EQ(decode_error(pack({{"type", 1}, {"nsp", "/"}, {"data", {"x"}}})), "invalid payload");
  EXPECT_EQ(decode_error(pack({{"type", 4}, {"nsp", "/"}, {"data", "no"}})), "invalid payload");
  EXPECT_EQ(decode_error(pack({{"type", 2}, {"nsp", "/"}, {"id", "1"}, {"data", {"x"}}})), "invalid packet id");
  EXPECT_EQ(decode_error(pack(json::array({1, 2}))), "invalid packet type");
  // A NaN as the event name: JS would get null.
  EXPECT_EQ(decode_error("\x83\xa4type\x02\xa3nsp\xa1/\xa4" "data\x91\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"s), "invalid payload");
  // An object of the client's that JS would take for an attachment's placeholder.
  EXPECT_EQ(decode_error(pack({{"type", 2}, {"nsp", "/"}, {"data", {"x", {{"_placeholder", true}, {"num", 0}}}}})),
            "invalid payload");
  // Binaries in a CONNECT's auth (JS gets it as JSON, without attachments).
  EXPECT_EQ(decode_error(pack({{"type", 0}, {"nsp", "/"}, {"data", {{"key", json::binary({1})}}}})), "invalid payload");
  EXPECT_EQ(decode_error("\xc1"), "invalid MessagePack");
  EXPECT_EQ(decode_error(""), "invalid MessagePack");
  EXPECT_EQ(decode_error(pack({{"type", 2}}).substr(0, 3)), "invalid MessagePack");
}

TEST(Msgpack, DeepNestingAndLyingLengthsAreRefusedWithoutRecursing) {
  std::string deep = "\x83\xa4type\x02\xa3nsp\xa1/\xa4" "data";
  deep += std::string(100000, '\x91');  // fixarray(1) a hundred thousand deep
  deep += '\x01';
  EXPECT_EQ(decode_error(deep), "invalid MessagePack");
  EXPECT_EQ(decode_error("\xdd\xff\xff\xff\xff"), "invalid MessagePack");  // array32 of 4 billion
  EXPECT_EQ(decode_error("\xc6\xff\xff\xff\xff" "abc"), "invalid MessagePack");
}

TEST(Msgpack, EncodesWithBinariesInline) {
  const std::string bytes = sio::encode_msgpack_packet(sio::kEvent, "/chat", 3, R"(["file",{"_placeholder":true,"num":0}])",
                                                       {std::string("\x00\xff", 2)});
  const json j = json::from_msgpack(bytes);
  EXPECT_EQ(j["type"], 2);
  EXPECT_EQ(j["nsp"], "/chat");
  EXPECT_EQ(j["id"], 3);
  ASSERT_TRUE(j["data"][1].is_binary());
  EXPECT_EQ(j["data"][1].get_binary(), (std::vector<std::uint8_t>{0x00, 0xff}));
  const json connect = json::from_msgpack(sio::encode_msgpack_packet(sio::kConnect, "/", -1, R"({"sid":"abc"})", {}));
  EXPECT_EQ(connect, json({{"type", 0}, {"nsp", "/"}, {"data", {{"sid", "abc"}}}}));
  const json disconnect = json::from_msgpack(sio::encode_msgpack_packet(sio::kDisconnect, "/", -1, "", {}));
  EXPECT_FALSE(disconnect.contains("data"));
  EXPECT_THROW(sio::encode_msgpack_packet(sio::kEvent, "/", -1, "[nope", {}), std::invalid_argument);
}
