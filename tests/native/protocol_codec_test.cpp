// Unit tests for the pure Engine.IO v4 / Socket.IO v5 codecs and the public id scheme:
//   native/engineio/packet.*   polling payloads (packets joined by \x1e, binary as "b"+base64)
//   native/socketio/packet.*   parse_packet (with socket.io's payload validation), encode_message
//   native/engineio/server.*   Server::public_id / parse_public_id, error_body
// Expected values come from the protocol specs (Engine.IO v4, Socket.IO v5) and from what the
// reference implementations (engine.io-parser 5, socket.io-parser 4) do with the same input.
// Ends with a deterministic fuzz loop over the two parsers that see untrusted bytes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engineio/packet.hpp"
#include "engineio/server.hpp"
#include "net/worker.hpp"
#include "net/ws_codec.hpp"
#include "socketio/packet.hpp"

namespace eio = sidewire::eio;
namespace sio = sidewire::sio;
namespace ws = sidewire::ws;
using namespace std::string_literals;
using nlohmann::json;

namespace {

std::string bytes_of(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

std::string b64(std::string_view raw) {
  return ws::base64_encode(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
}

// ============================================================================ eio::decode_payload

struct Decoded {
  bool ok = false;
  std::vector<eio::Packet> packets;
};

Decoded decode(std::string_view body) {
  Decoded d;
  d.ok = eio::decode_payload(body, d.packets);
  return d;
}

void expect_text(const eio::Packet& p, char type, std::string_view data) {
  EXPECT_EQ(p.type, type);
  EXPECT_FALSE(p.binary);
  EXPECT_EQ(p.data, data);
}

void expect_binary(const eio::Packet& p, std::string_view bytes) {
  EXPECT_EQ(p.type, eio::kMessage);
  EXPECT_TRUE(p.binary);
  EXPECT_EQ(p.data, bytes);
}

TEST(EioPayload, SingleTextPacket) {
  auto d = decode("4hello");
  ASSERT_TRUE(d.ok);
  ASSERT_EQ(d.packets.size(), 1u);
  expect_text(d.packets[0], eio::kMessage, "hello");
}

TEST(EioPayload, EveryPacketTypeWithAndWithoutData) {
  for (char t = '0'; t <= '6'; ++t) {
    SCOPED_TRACE(std::string(1, t));
    auto bare = decode(std::string(1, t));
    ASSERT_TRUE(bare.ok);
    ASSERT_EQ(bare.packets.size(), 1u);
    expect_text(bare.packets[0], t, "");
    auto with = decode(std::string(1, t) + "probe");
    ASSERT_TRUE(with.ok);
    ASSERT_EQ(with.packets.size(), 1u);
    expect_text(with.packets[0], t, "probe");
  }
}

TEST(EioPayload, TextKeepsArbitraryBytesAndUtf8) {
  const std::string body = "4€ é \x01\x7f {\"a\":[1,2]}";
  auto d = decode(body);
  ASSERT_TRUE(d.ok);
  ASSERT_EQ(d.packets.size(), 1u);
  expect_text(d.packets[0], '4', body.substr(1));
}

TEST(EioPayload, SpecExampleSeveralPacketsWithBinary) {
  // Engine.IO v4 spec: "4hello\x1e2\x1ebAQIDBA==" is a message, a ping and a binary message.
  auto d = decode("4hello\x1e" "2\x1e" "bAQIDBA==");
  ASSERT_TRUE(d.ok);
  ASSERT_EQ(d.packets.size(), 3u);
  expect_text(d.packets[0], eio::kMessage, "hello");
  expect_text(d.packets[1], eio::kPing, "");
  expect_binary(d.packets[2], bytes_of({1, 2, 3, 4}));
}

TEST(EioPayload, ManyPackets) {
  std::string body;
  for (int i = 0; i < 100; ++i) {
    if (i) body.push_back('\x1e');
    body += "4m" + std::to_string(i);
  }
  auto d = decode(body);
  ASSERT_TRUE(d.ok);
  ASSERT_EQ(d.packets.size(), 100u);
  for (int i = 0; i < 100; ++i) expect_text(d.packets[i], '4', std::string("m").append(std::to_string(i)));
}

TEST(EioPayload, BinaryPacketsDecodeToBytes) {
  {
    auto d = decode("bAQIDBA==");
    ASSERT_TRUE(d.ok);
    ASSERT_EQ(d.packets.size(), 1u);
    expect_binary(d.packets[0], bytes_of({1, 2, 3, 4}));
  }
  {
    // Each padding length, and bytes that need the full alphabet.
    auto d = decode("bAA==\x1e" "bAAE=\x1e" "bAAEC\x1e" "b+/+/");
    ASSERT_TRUE(d.ok);
    ASSERT_EQ(d.packets.size(), 4u);
    expect_binary(d.packets[0], bytes_of({0}));
    expect_binary(d.packets[1], bytes_of({0, 1}));
    expect_binary(d.packets[2], bytes_of({0, 1, 2}));
    expect_binary(d.packets[3], bytes_of({0xfb, 0xff, 0xbf}));
  }
  {
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    auto d = decode(std::string("b").append(b64(all)));
    ASSERT_TRUE(d.ok);
    ASSERT_EQ(d.packets.size(), 1u);
    expect_binary(d.packets[0], all);
  }
  {
    // "b" alone: an empty binary message, as engine.io-parser decodes it.
    auto d = decode("b");
    ASSERT_TRUE(d.ok);
    ASSERT_EQ(d.packets.size(), 1u);
    expect_binary(d.packets[0], "");
  }
}

TEST(EioPayload, EmptyBodyIsRefused) {
  std::vector<eio::Packet> out;
  EXPECT_FALSE(eio::decode_payload("", out));
  EXPECT_TRUE(out.empty());
}

TEST(EioPayload, EmptyPacketIsRefused) {
  for (std::string_view body : {"4a\x1e\x1e" "4b", "\x1e" "4a", "4a\x1e", "\x1e", "\x1e\x1e", "2\x1e\x1e\x1e" "3"}) {
    SCOPED_TRACE(testing::PrintToString(std::string(body)));
    EXPECT_FALSE(decode(body).ok);
  }
}

TEST(EioPayload, UnknownTypeIsRefused) {
  for (std::string_view body : {"7", "8hello", "9", "x", "a", "B", "Bbase", " 4", "/", "\x7f", "-1",
                                "4ok\x1e" "7", "4ok\x1e" "x", "bAQIDBA==\x1e" "c"}) {
    SCOPED_TRACE(testing::PrintToString(std::string(body)));
    EXPECT_FALSE(decode(body).ok);
  }
  const std::string nul("\0" "4", 2);
  EXPECT_FALSE(decode(nul).ok);
}

TEST(EioPayload, BadBase64IsRefused) {
  for (std::string_view body : {"b!!!!", "bAQIDBA", "bAQIDB", "bA", "bAQ=D", "bA===", "b====", "bAQ=DBA==",
                                "bAQID BA=", "bAQID\nBA=", "bAQIDBA==\x1e" "b*", "4ok\x1e" "bA*==", "b-_-_"}) {
    SCOPED_TRACE(testing::PrintToString(std::string(body)));
    EXPECT_FALSE(decode(body).ok);
  }
}

TEST(EioPayload, OnFailureOutHoldsWhatCameBefore) {
  std::vector<eio::Packet> out;
  EXPECT_FALSE(eio::decode_payload("4a\x1e" "2\x1e" "7", out));
  ASSERT_EQ(out.size(), 2u);
  expect_text(out[0], '4', "a");
  expect_text(out[1], '2', "");
}

// ============================================================================ eio::append_to_payload

TEST(EioPayload, AppendBuildsTheSpecExample) {
  std::string body;
  eio::append_to_payload(body, "4hello", false);
  EXPECT_EQ(body, "4hello");
  eio::append_to_payload(body, "2", false);
  EXPECT_EQ(body, "4hello\x1e" "2");
  eio::append_to_payload(body, bytes_of({1, 2, 3, 4}), true);
  EXPECT_EQ(body, "4hello\x1e" "2\x1e" "bAQIDBA==");
}

TEST(EioPayload, AppendBinaryFirst) {
  std::string body;
  eio::append_to_payload(body, bytes_of({1, 2, 3, 4}), true);
  EXPECT_EQ(body, "bAQIDBA==");
  eio::append_to_payload(body, "4x", false);
  EXPECT_EQ(body, "bAQIDBA==\x1e" "4x");
}

TEST(EioPayload, AppendRoundTripsOnePacket) {
  for (const std::string& text : {"4hello"s, "2"s, "3probe"s, "6"s, "1"s, "4{\"a\":\"\xe2\x82\xac\"}"s}) {
    std::string body;
    eio::append_to_payload(body, text, false);
    auto d = decode(body);
    ASSERT_TRUE(d.ok) << text;
    ASSERT_EQ(d.packets.size(), 1u);
    expect_text(d.packets[0], text[0], std::string_view(text).substr(1));
  }
  for (const std::string& bin : {""s, "\0"s, bytes_of({0xff, 0x1e, 0x00, 0x34}), "plain ascii"s}) {
    std::string body;
    eio::append_to_payload(body, bin, true);
    auto d = decode(body);
    ASSERT_TRUE(d.ok);
    ASSERT_EQ(d.packets.size(), 1u);
    expect_binary(d.packets[0], bin);
  }
}

TEST(EioPayload, AppendRoundTripsRandomSequences) {
  std::mt19937 rng(20240611);
  for (int round = 0; round < 500; ++round) {
    struct Item {
      bool binary;
      std::string payload;
    };
    std::vector<Item> items;
    const int n = 1 + static_cast<int>(rng() % 8);
    std::string body;
    for (int i = 0; i < n; ++i) {
      Item it;
      it.binary = rng() % 2;
      const std::size_t len = rng() % 40;
      if (it.binary) {
        for (std::size_t k = 0; k < len; ++k) it.payload.push_back(static_cast<char>(rng()));
      } else {
        it.payload.push_back(static_cast<char>('0' + rng() % 7));
        for (std::size_t k = 0; k < len; ++k) {
          char c = static_cast<char>(rng() % 256);
          if (c == '\x1e') c = '.';  // a text packet never holds the separator
          it.payload.push_back(c);
        }
      }
      eio::append_to_payload(body, it.payload, it.binary);
      items.push_back(std::move(it));
    }
    auto d = decode(body);
    ASSERT_TRUE(d.ok) << "round " << round;
    ASSERT_EQ(d.packets.size(), items.size()) << "round " << round;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (items[i].binary) {
        expect_binary(d.packets[i], items[i].payload);
      } else {
        expect_text(d.packets[i], items[i].payload[0], std::string_view(items[i].payload).substr(1));
      }
    }
  }
}

// ============================================================================ sio::parse_packet

struct Parsed {
  bool ok = false;
  sio::Packet p;
  std::string error;
};

// `text` must outlive the result: the packet's nsp and data are views into it.
Parsed parse(std::string_view text, std::uint32_t max_attachments = 64) {
  Parsed r;
  r.ok = sio::parse_packet(text, r.p, r.error, max_attachments);
  return r;
}

void expect_parsed(std::string_view text, int type, std::string_view nsp, std::int64_t ack_id,
                   std::uint32_t attachments, std::string_view data) {
  SCOPED_TRACE(std::string(text));
  const Parsed r = parse(text);
  ASSERT_TRUE(r.ok) << "refused: " << r.error;
  EXPECT_EQ(r.p.type, type);
  EXPECT_EQ(r.p.nsp, nsp);
  EXPECT_EQ(r.p.ack_id, ack_id);
  EXPECT_EQ(r.p.attachments, attachments);
  EXPECT_EQ(r.p.data, data);
}

void expect_refused(std::string_view text, std::uint32_t max_attachments = 64) {
  const Parsed r = parse(text, max_attachments);
  EXPECT_FALSE(r.ok) << testing::PrintToString(std::string(text)) << " was accepted (type " << r.p.type
                     << ", nsp " << r.p.nsp << ", data " << r.p.data << ")";
  if (!r.ok) EXPECT_FALSE(r.error.empty()) << testing::PrintToString(std::string(text));
}

TEST(SioParse, SpecConnect) {
  expect_parsed("0", sio::kConnect, "/", -1, 0, "");
  expect_parsed("0{\"token\":\"123\"}", sio::kConnect, "/", -1, 0, "{\"token\":\"123\"}");
  expect_parsed("0/admin,", sio::kConnect, "/admin", -1, 0, "");
  expect_parsed("0/admin,{\"token\":\"123\"}", sio::kConnect, "/admin", -1, 0, "{\"token\":\"123\"}");
  expect_parsed("0/admin", sio::kConnect, "/admin", -1, 0, "");  // namespace up to the end
  expect_parsed("0{}", sio::kConnect, "/", -1, 0, "{}");
  expect_parsed("0/admin,{\"a\":{\"b\":[1,2,{\"c\":null}]}}", sio::kConnect, "/admin", -1, 0,
                "{\"a\":{\"b\":[1,2,{\"c\":null}]}}");
}

TEST(SioParse, SpecDisconnect) {
  expect_parsed("1", sio::kDisconnect, "/", -1, 0, "");
  expect_parsed("1/admin,", sio::kDisconnect, "/admin", -1, 0, "");
}

TEST(SioParse, SpecEvent) {
  expect_parsed("2[\"hello\",1]", sio::kEvent, "/", -1, 0, "[\"hello\",1]");
  expect_parsed("2/admin,[\"project:delete\",123]", sio::kEvent, "/admin", -1, 0, "[\"project:delete\",123]");
  expect_parsed("212[\"hello\",1]", sio::kEvent, "/", 12, 0, "[\"hello\",1]");
  expect_parsed("2/admin,12[\"project:delete\",123]", sio::kEvent, "/admin", 12, 0, "[\"project:delete\",123]");
  expect_parsed("20[\"a\"]", sio::kEvent, "/", 0, 0, "[\"a\"]");
  expect_parsed("2[\"hello\"]", sio::kEvent, "/", -1, 0, "[\"hello\"]");
  expect_parsed("2[\"\"]", sio::kEvent, "/", -1, 0, "[\"\"]");
}

TEST(SioParse, SpecAck) {
  expect_parsed("3/admin,13[\"bar\"]", sio::kAck, "/admin", 13, 0, "[\"bar\"]");
  expect_parsed("313[\"bar\"]", sio::kAck, "/", 13, 0, "[\"bar\"]");
  expect_parsed("30[]", sio::kAck, "/", 0, 0, "[]");
  expect_parsed("37[{\"a\":1},null,\"x\"]", sio::kAck, "/", 7, 0, "[{\"a\":1},null,\"x\"]");
}

TEST(SioParse, SpecBinaryEvent) {
  expect_parsed("51-[\"hello\",{\"_placeholder\":true,\"num\":0}]", sio::kBinaryEvent, "/", -1, 1,
                "[\"hello\",{\"_placeholder\":true,\"num\":0}]");
  expect_parsed("52-/admin,[\"upload\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
                sio::kBinaryEvent, "/admin", -1, 2,
                "[\"upload\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
  expect_parsed("51-/admin,12[\"upload\",{\"_placeholder\":true,\"num\":0}]", sio::kBinaryEvent, "/admin", 12, 1,
                "[\"upload\",{\"_placeholder\":true,\"num\":0}]");
  expect_parsed("564-[\"x\"]", sio::kBinaryEvent, "/", -1, 64, "[\"x\"]");
  expect_parsed("5001-[\"x\"]", sio::kBinaryEvent, "/", -1, 1, "[\"x\"]");
}

TEST(SioParse, SpecBinaryAck) {
  expect_parsed("61-/admin,15[{\"_placeholder\":true,\"num\":0}]", sio::kBinaryAck, "/admin", 15, 1,
                "[{\"_placeholder\":true,\"num\":0}]");
  expect_parsed("61-15[{\"_placeholder\":true,\"num\":0}]", sio::kBinaryAck, "/", 15, 1,
                "[{\"_placeholder\":true,\"num\":0}]");
}

TEST(SioParse, NumericEventNameIsAccepted) {
  // socket.io accepts `typeof payload[0] === "number"`.
  expect_parsed("2[1,\"x\"]", sio::kEvent, "/", -1, 0, "[1,\"x\"]");
  expect_parsed("2[0]", sio::kEvent, "/", -1, 0, "[0]");
  expect_parsed("2[-3.5]", sio::kEvent, "/", -1, 0, "[-3.5]");
  expect_parsed("2/admin,4[42,{}]", sio::kEvent, "/admin", 4, 0, "[42,{}]");
}

TEST(SioParse, NamesThatOnlyResembleReservedOnesAreAccepted) {
  for (std::string_view text : {"2[\"connected\"]", "2[\"Connect\"]", "2[\"disconnect \"]", "2[\"connect_errors\"]",
                                "2[\"newlistener\"]", "2[\"removeListener2\"]", "2[\"message\"]"}) {
    EXPECT_TRUE(parse(text).ok) << text;
  }
}

TEST(SioParse, NamespaceAndAckIdEdges) {
  expect_parsed("2/chat/room-1_x.y,[\"a\"]", sio::kEvent, "/chat/room-1_x.y", -1, 0, "[\"a\"]");
  expect_parsed("2/v2,7[\"a\"]", sio::kEvent, "/v2", 7, 0, "[\"a\"]");
  expect_parsed("2/,[\"a\"]", sio::kEvent, "/", -1, 0, "[\"a\"]");
  // 15 digits is the longest ack id taken.
  expect_parsed("2123456789012345[\"a\"]", sio::kEvent, "/", 123456789012345, 0, "[\"a\"]");
  expect_parsed("3/admin,999999999999999[]", sio::kAck, "/admin", 999999999999999, 0, "[]");
}

TEST(SioParse, InvalidType) {
  for (std::string_view text : {"7", "8", "9", "x", " ", "-1", "/", "[\"a\"]", "7[\"a\"]", "9/admin,"}) {
    expect_refused(text);
  }
}

TEST(SioParse, RefusalsCarrySocketIoMessages) {
  // The message socket.io's parser throws, which the socket's 'error' event carries.
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"x", "unknown packet type NaN"},        {"7", "unknown packet type 7"},
      {"5-[\"a\"]", "Illegal attachments"},    {"5x-[\"a\"]", "Illegal attachments"},
      {"50-[\"a\"]", "Illegal attachments"},   {"5999-[\"a\"]", "too many attachments"},
      {"2{\"a\":1}", "invalid payload"},       {"2[\"connect\"]", "invalid payload"},
      {"0[1]", "invalid payload"},             {"1{}", "invalid payload"},
      {"4{\"message\":\"x\"}", ""},  // CONNECT_ERROR: socket.io parses it, then closes
  };
  for (const auto& [text, message] : cases) {
    sio::Packet p;
    std::string error;
    std::string sio = "unset";
    EXPECT_FALSE(sio::parse_packet(text, p, error, 64, &sio)) << text;
    EXPECT_EQ(sio, message) << text;
  }
}

TEST(SioParse, EmptyPacketIsAConnectToTheMainNamespace) {
  // socket.io reads the type as Number(""), which is 0.
  sio::Packet p;
  std::string error;
  ASSERT_TRUE(sio::parse_packet("", p, error));
  EXPECT_EQ(p.type, sio::kConnect);
  EXPECT_EQ(p.nsp, "/");
}

TEST(SioParse, ConnectWithNonObjectIsRefused) {
  for (std::string_view text : {"0[\"a\"]", "0[]", "0/admin,[1]", "0\"token\"", "0null", "0true", "0/admin,\"x\"",
                                "0{", "0{\"token\":}", "0{\"a\":1}x", "0{\"a\":1}}", "0/admin,{token}",
                                "0{'a':1}", "0x"}) {
    expect_refused(text);
  }
}

TEST(SioParse, DisconnectWithPayloadIsRefused) {
  for (std::string_view text : {"1{}", "1/admin,{\"a\":1}", "1[\"x\"]", "1x", "1/admin,\"bye\"", "1 "}) {
    expect_refused(text);
  }
}

TEST(SioParse, EventWithBadPayloadIsRefused) {
  for (std::string_view text : {"2", "2/admin,", "2/admin", "25", "2[]", "2/admin,[]", "2{}", "2{\"a\":1}",
                                "2\"hello\"", "21", "2hello", "2[{\"a\":1}]", "2[[\"x\"]]", "2[null]", "2[true]",
                                "2[\"hello\"", "2[\"hello\",]", "2[\"a\"]x", "2[\"a\"]]", "2[\"a\",1",
                                "2/admin,5{\"a\":1}", "2/admin[\"a\"]"}) {
    expect_refused(text);
  }
}

TEST(SioParse, ReservedEventNamesAreRefused) {
  for (std::string name :
       {"connect", "disconnect", "disconnecting", "newListener", "removeListener", "connect_error"}) {
    const std::string args = "[\"" + name + "\",1]";
    expect_refused("2" + args);
    expect_refused("2/admin," + args);
    expect_refused("27" + args);
    expect_refused("51-" + args.substr(0, args.size() - 1) + ",{\"_placeholder\":true,\"num\":0}]");
  }
}

TEST(SioParse, AckWithoutIdOrArrayIsRefused) {
  for (std::string_view text : {"3[\"bar\"]", "3/admin,[\"bar\"]", "3", "3/admin,", "31{\"a\":1}", "31\"x\"",
                                "31null", "3/admin,13{}", "313[\"bar\"", "313[\"bar\"]x", "61-[{\"_placeholder\":true,\"num\":0}]",
                                "61-1{}"}) {
    expect_refused(text);
  }
}

TEST(SioParse, ConnectErrorFromClientIsRefused) {
  for (std::string_view text : {"4{\"message\":\"Not authorized\"}", "4/admin,{\"message\":\"x\"}", "4\"x\"", "4"}) {
    expect_refused(text);
  }
}

TEST(SioParse, MalformedAttachmentCountIsRefused) {
  for (std::string_view text : {"5[\"a\"]", "51[\"hello\",{\"_placeholder\":true,\"num\":0}]", "5", "6", "5-",
                                "5-[\"a\"]", "6-/admin,1[]", "5x-[\"a\"]", "51a-[\"a\"]", "5 1-[\"a\"]",
                                "5+1-[\"a\"]", "5/admin,1-[\"a\"]", "6/admin,1-1[]", "5[\"a-b\"]"}) {
    expect_refused(text);
  }
}

TEST(SioParse, TooManyAttachmentsIsRefused) {
  expect_refused("565-[\"x\"]");
  expect_refused("5100-[\"x\"]");
  expect_refused("5999999-[\"x\"]");
  expect_refused("51234567-[\"x\"]");
  expect_refused("54294967297-[\"x\"]");  // 2^32 + 1: must not wrap to 1
  expect_refused("618446744073709551617-1[]");
  EXPECT_TRUE(parse("52-[\"x\"]", 2).ok);
  expect_refused("53-[\"x\"]", 2);
  expect_refused("51-[\"x\"]", 0);
}

TEST(SioParse, AckIdOfSixteenDigitsOrMoreIsRefused) {
  expect_refused("21234567890123456[\"a\"]");
  expect_refused("2/admin,9999999999999999[\"a\"]");
  expect_refused("31234567890123456[]");
  expect_refused("39223372036854775808[]");  // would overflow int64
  expect_refused(std::string("3").append(400, '9').append("[]"));
  expect_refused("61-/admin,1234567890123456[]");
}

TEST(SioParse, DeepNestingDoesNotCrash) {
  const std::size_t depth = 100000;
  const std::string opened(depth, '[');
  const std::string closed(depth, ']');
  const std::string valid = std::string("2[\"x\",").append(opened).append(closed).append("]");
  EXPECT_TRUE(parse(valid).ok);
  expect_refused(std::string("2").append(opened).append(closed));  // first element is an array
  expect_refused(std::string("2[\"x\",").append(opened));          // never closed
  expect_refused(std::string("0").append(depth, '{'));
}

// socket.io-parser decodes with JSON.parse, and socket.io-client encodes with JSON.stringify,
// which writes a lone UTF-16 surrogate as an escape: socket.emit("msg", "😀".slice(0, 1)) sends
// 42["msg","\ud83d"]. That is valid JSON (RFC 8259 grammar) and socket.io accepts it.
TEST(SioParse, LoneSurrogateEscapeIsAcceptedLikeSocketIo) {
  expect_parsed("2[\"msg\",\"\\ud83d\"]", sio::kEvent, "/", -1, 0, "[\"msg\",\"\\ud83d\"]");
  expect_parsed("2[\"\\udc00\"]", sio::kEvent, "/", -1, 0, "[\"\\udc00\"]");
  expect_parsed("31[\"\\ud800x\"]", sio::kAck, "/", 1, 0, "[\"\\ud800x\"]");
  expect_parsed("0{\"token\":\"\\ud800\"}", sio::kConnect, "/", -1, 0, "{\"token\":\"\\ud800\"}");
}

// ============================================================================ sio::encode_message

TEST(SioEncode, Event) {
  EXPECT_EQ(sio::encode_message(sio::kEvent, "/", -1, 0, "[\"a\"]"), "42[\"a\"]");
  EXPECT_EQ(sio::encode_message(sio::kEvent, "/admin", -1, 0, "[\"a\"]"), "42/admin,[\"a\"]");
  EXPECT_EQ(sio::encode_message(sio::kEvent, "/", 12, 0, "[\"hello\",1]"), "4212[\"hello\",1]");
  EXPECT_EQ(sio::encode_message(sio::kEvent, "/admin", 12, 0, "[\"a\"]"), "42/admin,12[\"a\"]");
  EXPECT_EQ(sio::encode_message(sio::kEvent, "/", 0, 0, "[\"a\"]"), "420[\"a\"]");
}

TEST(SioEncode, Ack) {
  EXPECT_EQ(sio::encode_message(sio::kAck, "/", 5, 0, "[\"ok\"]"), "435[\"ok\"]");
  EXPECT_EQ(sio::encode_message(sio::kAck, "/admin", 13, 0, "[\"bar\"]"), "43/admin,13[\"bar\"]");
  EXPECT_EQ(sio::encode_message(sio::kAck, "/", 0, 0, "[]"), "430[]");
}

TEST(SioEncode, Connect) {
  EXPECT_EQ(sio::encode_message(sio::kConnect, "/", -1, 0, "{\"sid\":\"abc\"}"), "40{\"sid\":\"abc\"}");
  EXPECT_EQ(sio::encode_message(sio::kConnect, "/admin", -1, 0, "{\"sid\":\"abc\"}"), "40/admin,{\"sid\":\"abc\"}");
}

TEST(SioEncode, ConnectError) {
  EXPECT_EQ(sio::encode_message(sio::kConnectError, "/", -1, 0, "{\"message\":\"Not authorized\"}"),
            "44{\"message\":\"Not authorized\"}");
  EXPECT_EQ(sio::encode_message(sio::kConnectError, "/admin", -1, 0, "{\"message\":\"Invalid namespace\"}"),
            "44/admin,{\"message\":\"Invalid namespace\"}");
}

TEST(SioEncode, Disconnect) {
  EXPECT_EQ(sio::encode_message(sio::kDisconnect, "/", -1, 0, ""), "41");
  EXPECT_EQ(sio::encode_message(sio::kDisconnect, "/admin", -1, 0, ""), "41/admin,");
}

TEST(SioEncode, BinaryTypesCarryTheAttachmentCount) {
  const std::string one = "[\"hello\",{\"_placeholder\":true,\"num\":0}]";
  const std::string two = "[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";
  EXPECT_EQ(sio::encode_message(sio::kBinaryEvent, "/", -1, 1, one), "451-" + one);
  EXPECT_EQ(sio::encode_message(sio::kBinaryEvent, "/admin", 7, 2, two), "452-/admin,7" + two);
  EXPECT_EQ(sio::encode_message(sio::kBinaryEvent, "/", 3, 12, one), "4512-3" + one);
  EXPECT_EQ(sio::encode_message(sio::kBinaryAck, "/admin", 15, 1, "[{\"_placeholder\":true,\"num\":0}]"),
            "461-/admin,15[{\"_placeholder\":true,\"num\":0}]");
  EXPECT_EQ(sio::encode_message(sio::kBinaryAck, "/", 0, 1, "[{\"_placeholder\":true,\"num\":0}]"),
            "461-0[{\"_placeholder\":true,\"num\":0}]");
  // Non-binary types never carry a count, whatever is passed.
  EXPECT_EQ(sio::encode_message(sio::kEvent, "/", -1, 3, "[\"a\"]"), "42[\"a\"]");
}

TEST(SioEncode, RoundTripsThroughParse) {
  const std::vector<std::string> nsps = {"/", "/admin", "/chat/room-1_x.y", "/v2"};
  const std::vector<std::int64_t> ids = {-1, 0, 1, 42, 999999999999999};
  struct Case {
    int type;
    std::vector<std::string> datas;
  };
  const std::vector<Case> cases = {
      {sio::kConnect, {"", "{}", "{\"token\":\"123\"}"}},
      {sio::kDisconnect, {""}},
      {sio::kEvent, {"[\"hello\",1]", "[1,\"x\"]", "[\"a\",{\"b\":[1,2]},null]"}},
      {sio::kAck, {"[]", "[\"bar\"]", "[1,{\"x\":\"y\"}]"}},
      {sio::kBinaryEvent, {"[\"file\",{\"_placeholder\":true,\"num\":0}]"}},
      {sio::kBinaryAck, {"[{\"_placeholder\":true,\"num\":0}]", "[]"}},
  };
  int checked = 0;
  for (const auto& c : cases) {
    for (const auto& nsp : nsps) {
      for (std::int64_t id : ids) {
        if ((c.type == sio::kAck || c.type == sio::kBinaryAck) && id < 0) continue;  // an ACK has an id
        for (const auto& data : c.datas) {
          const bool binary = c.type == sio::kBinaryEvent || c.type == sio::kBinaryAck;
          for (std::uint32_t att : binary ? std::vector<std::uint32_t>{1, 2, 64} : std::vector<std::uint32_t>{0}) {
            const std::string msg = sio::encode_message(c.type, nsp, id, att, data);
            SCOPED_TRACE(msg);
            ASSERT_EQ(msg[0], '4');
            const std::string text = msg.substr(1);
            const Parsed r = parse(text);
            ASSERT_TRUE(r.ok) << r.error;
            EXPECT_EQ(r.p.type, c.type);
            EXPECT_EQ(r.p.nsp, nsp);
            EXPECT_EQ(r.p.ack_id, id);
            EXPECT_EQ(r.p.attachments, att);
            EXPECT_EQ(r.p.data, data);
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 100);
}

// ============================================================================ eio::error_body

TEST(EioErrorBody, UnknownSid) {
  EXPECT_EQ(json::parse(eio::error_body(eio::Error::kUnknownSid)),
            json::parse(R"({"code":1,"message":"Session ID unknown"})"));
}

TEST(EioErrorBody, AllCodesMatchEngineIo) {
  // engine.io Server.errorMessages
  const std::vector<std::pair<eio::Error, std::string>> expected = {
      {eio::Error::kUnknownTransport, "Transport unknown"},
      {eio::Error::kUnknownSid, "Session ID unknown"},
      {eio::Error::kBadHandshakeMethod, "Bad handshake method"},
      {eio::Error::kBadRequest, "Bad request"},
      {eio::Error::kForbidden, "Forbidden"},
      {eio::Error::kUnsupportedProtocolVersion, "Unsupported protocol version"},
  };
  int code = 0;
  for (const auto& [e, message] : expected) {
    EXPECT_EQ(static_cast<int>(e), code);
    EXPECT_EQ(std::string(eio::error_message(e)), message);
    const json body = json::parse(eio::error_body(e));
    EXPECT_EQ(body, (json{{"code", code}, {"message", message}})) << body.dump();
    ++code;
  }
}

// ============================================================================ eio::Server public ids

class NullSink final : public sidewire::EventSink {
 public:
  void push(sidewire::Event) override {}
};

class NullListener final : public eio::Listener {
 public:
  void on_message(eio::Session&, bool, std::string) override {}
  void on_close(eio::Session&, std::string_view) override {}
};

// A Server over two workers that are never started: the constructor only posts hooks to their
// io_contexts, and public ids need no thread.
class EioPublicId : public ::testing::Test {
 protected:
  sidewire::Metrics metrics_;
  sidewire::Worker w0_{0, metrics_, 1000};
  sidewire::Worker w1_{1, metrics_, 1000};
  std::shared_ptr<NullSink> sink_ = std::make_shared<NullSink>();
  NullListener listener_;
  eio::Server server_{eio::Config{}, {&w0_, &w1_}, sink_, listener_};

  static constexpr std::uint64_t kMaxSafe = (std::uint64_t{1} << 53) - 1;

  std::vector<std::uint64_t> sample_ids() const {
    std::vector<std::uint64_t> ids = {0,
                                      1,
                                      255,
                                      256,
                                      257,
                                      0xFFFF,
                                      std::uint64_t{1} << 32,
                                      (std::uint64_t{1} << 32) - 1,
                                      kMaxSafe - 1,
                                      kMaxSafe,
                                      kMaxSafe + 1,
                                      std::numeric_limits<std::uint64_t>::max()};
    std::mt19937_64 rng(7);
    for (int i = 0; i < 500; ++i) ids.push_back(rng() & kMaxSafe);
    for (int i = 0; i < 100; ++i) ids.push_back(rng());
    return ids;
  }
};

bool is_base64url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

constexpr std::string_view kBase64UrlAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

TEST_F(EioPublicId, IsTwentyTwoBase64UrlCharacters) {
  for (std::uint64_t id : sample_ids()) {
    for (char tag : {'e', 's'}) {
      const std::string pub = server_.public_id(id, tag);
      ASSERT_EQ(pub.size(), 22u) << id;
      for (char c : pub) ASSERT_TRUE(is_base64url(c)) << pub;
      EXPECT_EQ(server_.public_id(id, tag), pub) << "not deterministic";
    }
  }
}

TEST_F(EioPublicId, RoundTrips) {
  for (std::uint64_t id : sample_ids()) {
    for (char tag : {'e', 's'}) {
      const std::string pub = server_.public_id(id, tag);
      sidewire::ClientId back = 12345;
      ASSERT_TRUE(server_.parse_public_id(pub, tag, back)) << id << " " << pub;
      EXPECT_EQ(back, id);
    }
  }
}

TEST_F(EioPublicId, DistinctIdsGiveDistinctStrings) {
  std::set<std::string> seen;
  for (std::uint64_t id = 0; id < 5000; ++id) seen.insert(server_.public_id(id, 'e'));
  EXPECT_EQ(seen.size(), 5000u);
  EXPECT_NE(server_.public_id(1, 'e'), server_.public_id(1, 's'));
}

// Ids are an AES block under a per-process random key: consecutive connections get ids with
// nothing in common, so an id neither predicts the next one nor tells how many came before.
TEST_F(EioPublicId, ConsecutiveIdsShareNothingAndKeysDiffer) {
  const std::string a = server_.public_id(1 << 8, 'e');
  const std::string b = server_.public_id(2 << 8, 'e');
  int same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  EXPECT_LT(same, 6) << a << " " << b;
  // Over many consecutive ids every bit position flips about half the time.
  std::array<int, 128> ones{};
  const int n = 2000;
  for (int k = 0; k < n; ++k) {
    std::string raw;
    std::string b64 = server_.public_id(static_cast<std::uint64_t>(k) << 8, 'e');
    for (char& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
    ASSERT_TRUE(sidewire::ws::base64_decode(b64 + "==", raw));
    for (int bit = 0; bit < 128; ++bit) ones[bit] += (static_cast<std::uint8_t>(raw[bit / 8]) >> (bit % 8)) & 1;
  }
  for (int bit = 0; bit < 128; ++bit) {
    EXPECT_GT(ones[bit], n * 4 / 10) << bit;
    EXPECT_LT(ones[bit], n * 6 / 10) << bit;
  }
  eio::Server other(eio::Config{}, {}, sink_, listener_);
  EXPECT_NE(other.public_id(1 << 8, 'e'), a) << "two servers share a key";
  sidewire::ClientId out = 0;
  EXPECT_FALSE(other.parse_public_id(a, 'e', out));
}

TEST_F(EioPublicId, RejectsAnotherTag) {
  for (std::uint64_t id : {std::uint64_t{0}, std::uint64_t{1}, kMaxSafe, std::uint64_t{0x1234'5678'9abc}}) {
    sidewire::ClientId out = 777;
    EXPECT_FALSE(server_.parse_public_id(server_.public_id(id, 'e'), 's', out));
    EXPECT_FALSE(server_.parse_public_id(server_.public_id(id, 's'), 'e', out));
    EXPECT_FALSE(server_.parse_public_id(server_.public_id(id, 'e'), '\0', out));
    EXPECT_EQ(out, 777u) << "output written on failure";
  }
}

TEST_F(EioPublicId, RejectsAnyChangedCharacter) {
  for (std::uint64_t id : {std::uint64_t{0}, std::uint64_t{42}, kMaxSafe, std::uint64_t{0xdead'beef'0102}}) {
    const std::string pub = server_.public_id(id, 'e');
    for (std::size_t pos = 0; pos < pub.size(); ++pos) {
      for (char c : kBase64UrlAlphabet) {
        if (c == pub[pos]) continue;
        std::string forged = pub;
        forged[pos] = c;
        sidewire::ClientId out = 777;
        ASSERT_FALSE(server_.parse_public_id(forged, 'e', out)) << pub << " -> " << forged;
        ASSERT_EQ(out, 777u);
      }
    }
  }
}

TEST_F(EioPublicId, RejectsWrongLength) {
  const std::string pub = server_.public_id(99, 'e');
  sidewire::ClientId out = 777;
  EXPECT_FALSE(server_.parse_public_id("", 'e', out));
  EXPECT_FALSE(server_.parse_public_id(pub.substr(0, 21), 'e', out));
  EXPECT_FALSE(server_.parse_public_id(pub.substr(1), 'e', out));
  EXPECT_FALSE(server_.parse_public_id(pub + "A", 'e', out));
  EXPECT_FALSE(server_.parse_public_id(pub + "=", 'e', out));
  EXPECT_FALSE(server_.parse_public_id(pub + "AAAA", 'e', out));
  EXPECT_FALSE(server_.parse_public_id(pub + pub, 'e', out));
  EXPECT_FALSE(server_.parse_public_id(pub.substr(0, 16), 'e', out));
  EXPECT_EQ(out, 777u);
}

TEST_F(EioPublicId, RejectsNonBase64UrlCharacters) {
  const std::string pub = server_.public_id(kMaxSafe, 'e');
  for (std::size_t pos = 0; pos < pub.size(); ++pos) {
    for (char c : {'+', '/', '=', '.', '~', ' ', '%', '\0', '\x80', '\xff'}) {
      std::string forged = pub;
      forged[pos] = c;
      sidewire::ClientId out = 777;
      EXPECT_FALSE(server_.parse_public_id(forged, 'e', out)) << pos << " " << static_cast<int>(c);
      EXPECT_EQ(out, 777u);
    }
  }
}

TEST_F(EioPublicId, RejectsTheStandardBase64Spelling) {
  // The same 15 bytes written with '+' and '/' instead of '-' and '_' are not a public id.
  int found = 0;
  for (std::uint64_t id = 0; id < 2000 && found < 20; ++id) {
    const std::string pub = server_.public_id(id, 'e');
    if (pub.find_first_of("-_") == std::string::npos) continue;
    ++found;
    std::string standard = pub;
    for (char& c : standard) {
      if (c == '-') c = '+';
      else if (c == '_') c = '/';
    }
    sidewire::ClientId out = 777;
    EXPECT_FALSE(server_.parse_public_id(standard, 'e', out)) << pub << " vs " << standard;
  }
  EXPECT_EQ(found, 20);
}

TEST_F(EioPublicId, TwoServersHaveDifferentSecrets) {
  eio::Server other{eio::Config{}, {&w0_, &w1_}, sink_, listener_};
  for (std::uint64_t id : sample_ids()) {
    const std::string mine = server_.public_id(id, 'e');
    const std::string theirs = other.public_id(id, 'e');
    EXPECT_NE(mine, theirs) << id;
    sidewire::ClientId out = 777;
    EXPECT_FALSE(other.parse_public_id(mine, 'e', out)) << id;
    EXPECT_FALSE(server_.parse_public_id(theirs, 'e', out)) << id;
    EXPECT_EQ(out, 777u);
    EXPECT_TRUE(other.parse_public_id(theirs, 'e', out));
    EXPECT_EQ(out, id);
  }
}

TEST_F(EioPublicId, WorkerForFollowsTheSid) {
  // The low byte of an id names its worker; a forged or missing sid goes to any (-1).
  for (std::uint64_t id : {std::uint64_t{0x100}, std::uint64_t{0x101}, std::uint64_t{0x2a02}, std::uint64_t{0x2a03}}) {
    const std::string target = "/socket.io/?EIO=4&transport=polling&sid=" + server_.public_id(id, 'e');
    EXPECT_EQ(server_.worker_for(target), static_cast<int>(sidewire::worker_of(id) % 2)) << target;
  }
  std::string forged = server_.public_id(0x101, 'e');
  forged[3] = forged[3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(server_.worker_for("/socket.io/?EIO=4&transport=polling&sid=" + forged), -1);
  EXPECT_EQ(server_.worker_for("/socket.io/?EIO=4&transport=polling&sid=" + server_.public_id(0x101, 's')), -1);
  EXPECT_EQ(server_.worker_for("/socket.io/?EIO=4&transport=polling"), -1);
}

// ============================================================================ fuzz

TEST(ProtocolFuzz, ParsersSurviveRandomInput) {
  constexpr std::string_view kAlphabet = "0123456789/,-[]{}\":abc";
  const std::vector<std::string> seeds = {
      "0/admin,{\"token\":\"123\"}", "2[\"hello\",1]", "2/admin,12[\"a\",{\"b\":1}]", "3/admin,13[\"bar\"]",
      "51-[\"hello\",{\"_placeholder\":true,\"num\":0}]", "61-/admin,15[{\"_placeholder\":true,\"num\":0}]",
      "4hello\x1e" "2\x1e" "bAQIDBA==", "1/admin,"};
  std::mt19937 rng(0x51DE);
  int accepted_sio = 0;
  int accepted_eio = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s;
    const unsigned mode = rng() % 4;
    if (mode == 0) {
      // A valid packet, mutated a few times.
      s = seeds[rng() % seeds.size()];
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !s.empty(); ++e) {
        const std::size_t pos = rng() % s.size();
        switch (rng() % 3) {
          case 0: s[pos] = kAlphabet[rng() % kAlphabet.size()]; break;
          case 1: s.erase(pos, 1); break;
          default: s.insert(pos, 1, static_cast<char>(rng())); break;
        }
      }
    } else {
      const std::size_t len = rng() % 48;
      if (mode == 1 && len > 0) s.push_back(static_cast<char>('0' + rng() % 7));  // a plausible type
      while (s.size() < len) {
        const unsigned r = rng() % 100;
        if (r < 85) s.push_back(kAlphabet[rng() % kAlphabet.size()]);
        else if (r < 92) s.push_back('\x1e');
        else s.push_back(static_cast<char>(rng()));
      }
    }
    SCOPED_TRACE(testing::PrintToString(s));

    Parsed r = parse(s);
    if (r.ok) {
      ++accepted_sio;
      ASSERT_LE(r.p.attachments, 64u);
      ASSERT_GE(r.p.type, 0);
      ASSERT_LE(r.p.type, 6);
      ASSERT_NE(r.p.type, sio::kConnectError);
      ASSERT_FALSE(r.p.nsp.empty());
      ASSERT_EQ(r.p.nsp.front(), '/');
      ASSERT_LT(r.p.ack_id, std::int64_t{1000000000000000});
      ASSERT_GE(r.p.ack_id, -1);
      // The views point into the input.
      ASSERT_TRUE(r.p.data.empty() ||
                  (r.p.data.data() >= s.data() && r.p.data.data() + r.p.data.size() <= s.data() + s.size()));
      switch (r.p.type) {
        // JSON.parse (what socket.io decodes with) allows whitespace before the value.
        case sio::kEvent:
        case sio::kBinaryEvent:
          ASSERT_NE(r.p.data.find_first_not_of(" \t\r\n"), std::string_view::npos);
          ASSERT_EQ(r.p.data[r.p.data.find_first_not_of(" \t\r\n")], '[');
          break;
        case sio::kAck:
        case sio::kBinaryAck:
          ASSERT_GE(r.p.ack_id, 0);
          ASSERT_NE(r.p.data.find_first_not_of(" \t\r\n"), std::string_view::npos);
          ASSERT_EQ(r.p.data[r.p.data.find_first_not_of(" \t\r\n")], '[');
          break;
        case sio::kDisconnect: ASSERT_TRUE(r.p.data.empty()); break;
        case sio::kConnect: ASSERT_TRUE(r.p.data.empty() || r.p.data.front() == '{'); break;
      }
      if (r.p.type != sio::kBinaryEvent && r.p.type != sio::kBinaryAck) ASSERT_EQ(r.p.attachments, 0u);
      // What parses re-encodes to something that parses the same.
      const std::string again = sio::encode_message(r.p.type, r.p.nsp, r.p.ack_id, r.p.attachments, r.p.data);
      const std::string again_text = again.substr(1);
      Parsed r2 = parse(again_text);
      ASSERT_TRUE(r2.ok) << again << ": " << r2.error;
      ASSERT_EQ(r2.p.type, r.p.type);
      ASSERT_EQ(r2.p.nsp, r.p.nsp);
      ASSERT_EQ(r2.p.ack_id, r.p.ack_id);
      ASSERT_EQ(r2.p.attachments, r.p.attachments);
      ASSERT_EQ(r2.p.data, r.p.data);
    } else {
      ASSERT_FALSE(r.error.empty());
    }

    std::vector<eio::Packet> packets;
    if (eio::decode_payload(s, packets)) {
      ++accepted_eio;
      std::size_t separators = 0;
      for (char c : s) separators += c == '\x1e';
      ASSERT_EQ(packets.size(), separators + 1);
      std::string body;
      for (const auto& p : packets) {
        if (p.binary) {
          ASSERT_EQ(p.type, eio::kMessage);
          eio::append_to_payload(body, p.data, true);
        } else {
          ASSERT_TRUE(eio::is_valid_type(p.type));
          eio::append_to_payload(body, std::string(1, p.type) + p.data, false);
        }
      }
      std::vector<eio::Packet> again;
      ASSERT_TRUE(eio::decode_payload(body, again)) << testing::PrintToString(body);
      ASSERT_EQ(again.size(), packets.size());
      for (std::size_t i = 0; i < packets.size(); ++i) {
        ASSERT_EQ(again[i].type, packets[i].type);
        ASSERT_EQ(again[i].binary, packets[i].binary);
        ASSERT_EQ(again[i].data, packets[i].data);
      }
    } else {
      ASSERT_LE(packets.size(), static_cast<std::size_t>(std::count(s.begin(), s.end(), '\x1e')));
    }
  }
  // The loop reaches the accepting paths too, not only the early refusals.
  EXPECT_GT(accepted_sio, 200);
  EXPECT_GT(accepted_eio, 200);
}

}  // namespace
