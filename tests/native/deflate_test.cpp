// permessage-deflate (RFC 7692): the negotiation, the codec (checked against zlib used directly,
// never against itself), the frame parser's RSV1 rules, the per-thread workspace, and Socket.IO
// sessions over loopback with the extension on and off.
#include "engine_fixture.hpp"

#include <zlib.h>

#include "net/deflate.hpp"

namespace {

// ----------------------------------------------------------------------------- zlib, directly

// Raw inflate of one RFC 7692 message (the 00 00 FF FF tail added), as a client would.
std::string raw_inflate(std::string_view compressed) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, -15), Z_OK);
  std::string in(compressed);
  in.append("\x00\x00\xff\xff", 4);
  std::string out;
  char buf[16384];
  z.next_in = reinterpret_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    const int r = inflate(&z, Z_SYNC_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (r == Z_STREAM_END || (r == Z_BUF_ERROR && z.avail_in == 0) || (z.avail_in == 0 && z.avail_out != 0)) break;
    if (r != Z_OK && r != Z_BUF_ERROR) {
      ADD_FAILURE() << "zlib inflate: " << r;
      break;
    }
  }
  inflateEnd(&z);
  return out;
}

// What a client sends: raw deflate with a sync flush, the tail removed.
std::string raw_deflate(std::string_view message) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, static_cast<uLong>(message.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
  z.avail_in = static_cast<uInt>(message.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_SYNC_FLUSH), Z_OK);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  EXPECT_GE(out.size(), 4u);
  if (out.size() >= 4) out.resize(out.size() - 4);
  return out;
}

std::string ticket_json(int i) {
  return R"({"id":)" + std::to_string(i) +
         R"(,"title":"Printer on the third floor jams on every duplex job","status":"open","priority":"high",)"
         R"("assignee":"agent-4821","description":")" +
         std::string(1500, static_cast<char>('a' + i % 26)) + R"(","comments":[{"author":"agent-17","body":"seen"}]})";
}

std::optional<ws::DeflateParams> negotiate(std::string_view header, const ws::DeflateOptions& o = {},
                                           std::string* why = nullptr) {
  std::vector<ws::ExtensionOffer> offers;
  if (!ws::parse_extensions(header, offers)) return std::nullopt;
  return ws::negotiate_deflate(offers, o, why);
}

// ----------------------------------------------------------------------------- negotiation

TEST(DeflateNegotiation, ParsesExtensionLists) {
  std::vector<ws::ExtensionOffer> offers;
  ASSERT_TRUE(ws::parse_extensions(
      "permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\" , , x-webkit ;a=b\t;c", offers));
  ASSERT_EQ(offers.size(), 2u);
  EXPECT_EQ(offers[0].name, "permessage-deflate");
  ASSERT_EQ(offers[0].params.size(), 2u);
  EXPECT_EQ(offers[0].params[0].name, "client_max_window_bits");
  EXPECT_FALSE(offers[0].params[0].has_value);
  EXPECT_EQ(offers[0].params[1].value, "10");
  EXPECT_TRUE(offers[0].params[1].has_value);
  EXPECT_EQ(offers[1].name, "x-webkit");
  ASSERT_EQ(offers[1].params.size(), 2u);
  EXPECT_EQ(offers[1].params[0].value, "b");
  EXPECT_EQ(offers[1].params[1].name, "c");

  for (const char* bad : {"permessage-deflate;", "permessage-deflate; =3", "a b", "permessage-deflate; x=\"open",
                          "permessage-deflate; x=", "p; x=\"a\\", "(p)", "p;x=\"\x01\""}) {
    std::vector<ws::ExtensionOffer> o;
    EXPECT_FALSE(ws::parse_extensions(bad, o)) << bad;
  }
  std::vector<ws::ExtensionOffer> none;
  EXPECT_TRUE(ws::parse_extensions("", none));
  EXPECT_TRUE(none.empty());
}

TEST(DeflateNegotiation, DefaultsAskForNoContextTakeoverBothWays) {
  const auto p = negotiate("permessage-deflate; client_max_window_bits");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->server_no_context_takeover);
  EXPECT_TRUE(p->client_no_context_takeover);
  EXPECT_EQ(p->server_max_window_bits, 15);
  EXPECT_EQ(p->client_max_window_bits, 0);
  EXPECT_EQ(ws::deflate_response(*p), "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  // Names are case-insensitive; other extensions are skipped.
  EXPECT_TRUE(negotiate("x-webkit-deflate-frame, PerMessage-Deflate; Client_Max_Window_Bits"));
  EXPECT_FALSE(negotiate("x-webkit-deflate-frame"));
  EXPECT_FALSE(negotiate(""));
}

TEST(DeflateNegotiation, ContextTakeoverWhenTheOptionsAllowIt) {
  ws::DeflateOptions o;
  o.server_no_context_takeover = false;
  o.client_no_context_takeover = false;
  auto p = negotiate("permessage-deflate; client_max_window_bits", o);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->server_no_context_takeover);
  EXPECT_FALSE(p->client_no_context_takeover);
  EXPECT_EQ(ws::deflate_response(*p), "permessage-deflate");
  // What the client asks for is honoured.
  p = negotiate("permessage-deflate; server_no_context_takeover; client_no_context_takeover", o);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->server_no_context_takeover);
  EXPECT_TRUE(p->client_no_context_takeover);
}

TEST(DeflateNegotiation, WindowBits) {
  // The client limits the server's window: answered with the same value or less.
  auto p = negotiate("permessage-deflate; server_max_window_bits=10");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->server_max_window_bits, 10);
  EXPECT_NE(ws::deflate_response(*p).find("; server_max_window_bits=10"), std::string::npos);
  ws::DeflateOptions o;
  o.server_max_window_bits = 9;
  p = negotiate("permessage-deflate; server_max_window_bits=12", o);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->server_max_window_bits, 9);
  p = negotiate("permessage-deflate", o);  // the server may say so unasked
  ASSERT_TRUE(p);
  EXPECT_NE(ws::deflate_response(*p).find("; server_max_window_bits=9"), std::string::npos);

  // 8 cannot be honoured with zlib: that offer is declined, the next one accepted.
  std::string why;
  EXPECT_FALSE(negotiate("permessage-deflate; server_max_window_bits=8", {}, &why));
  EXPECT_NE(why.find("8"), std::string::npos);
  p = negotiate("permessage-deflate; server_max_window_bits=8, permessage-deflate");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->server_max_window_bits, 15);
  EXPECT_FALSE(p->server_window_in_response);

  // A client window value is echoed; the server's own limit needs the client to allow one.
  p = negotiate("permessage-deflate; client_max_window_bits=12");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->client_max_window_bits, 12);
  ws::DeflateOptions limit;
  limit.client_max_window_bits = 10;
  EXPECT_FALSE(negotiate("permessage-deflate", limit));
  p = negotiate("permessage-deflate; client_max_window_bits", limit);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->client_max_window_bits, 10);
  EXPECT_NE(ws::deflate_response(*p).find("; client_max_window_bits=10"), std::string::npos);
  p = negotiate("permessage-deflate; client_max_window_bits=9", limit);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->client_max_window_bits, 9);
}

TEST(DeflateNegotiation, InvalidOffersAreDeclined) {
  for (const char* bad : {
           "permessage-deflate; foo",                               // unknown parameter
           "permessage-deflate; server_no_context_takeover; server_no_context_takeover",  // repeated
           "permessage-deflate; client_no_context_takeover=1",      // takes no value
           "permessage-deflate; server_max_window_bits",            // needs a value
           "permessage-deflate; server_max_window_bits=16",
           "permessage-deflate; server_max_window_bits=7",
           "permessage-deflate; server_max_window_bits=010",
           "permessage-deflate; server_max_window_bits=08",
           "permessage-deflate; client_max_window_bits=abc",
           "permessage-deflate; client_max_window_bits=\"\"",
       }) {
    std::string why;
    EXPECT_FALSE(negotiate(bad, {}, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  // A quoted value is its token.
  auto p = negotiate("permessage-deflate; server_max_window_bits=\"11\"");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->server_max_window_bits, 11);
  // The first acceptable offer wins.
  p = negotiate("permessage-deflate; bogus, permessage-deflate; client_max_window_bits=11");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->client_max_window_bits, 11);
}

TEST(DeflateNegotiation, FromEveryHeaderFieldOfTheRequest) {
  sw::UpgradeRequest r;
  r.headers = {{"Sec-WebSocket-Extensions", "permessage-deflate; nonsense"},
               {"Host", "x"},
               {"sec-websocket-extensions", "permessage-deflate; server_max_window_bits=12"}};
  const auto p = ws::negotiate_deflate(r, ws::DeflateOptions{});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->server_max_window_bits, 12);
  sw::UpgradeRequest broken;
  broken.headers = {{"Sec-WebSocket-Extensions", "permessage-deflate; x=\"unterminated"}};
  std::string why;
  EXPECT_FALSE(ws::negotiate_deflate(broken, ws::DeflateOptions{}, &why));
  EXPECT_NE(why.find("malformed"), std::string::npos);
}

// ----------------------------------------------------------------------------- codec

TEST(DeflateCodec, RoundTripsThroughZlib) {
  ws::Deflater d(-1, 15, 8, 0);
  for (std::size_t n : {0, 1, 100, 5000, 70000, 300000}) {
    for (const std::string& msg : {binary_payload(n, static_cast<std::uint32_t>(n)), std::string(n, 'x'), ticket_json(int(n))}) {
      std::string z;
      d.compress(msg, z, false);
      EXPECT_EQ(raw_inflate(z), msg) << n;
      std::string back;
      ws::Inflater inflater;
      ASSERT_EQ(inflater.decompress(raw_deflate(msg), 1 << 20, back, false), ws::Inflater::Status::kOk);
      EXPECT_EQ(back, msg) << n;
    }
  }
}

TEST(DeflateCodec, ContextTakeoverCarriesTheWindow) {
  ws::Deflater with(-1, 15, 8, 0), without(-1, 15, 8, 0);
  const std::string msg = ticket_json(7);
  std::string a1, a2, b1, b2;
  with.compress(msg, a1, true);
  with.compress(msg, a2, true);
  without.compress(msg, b1, false);
  without.compress(msg, b2, false);
  EXPECT_EQ(b1, b2);  // no context: every message alike
  EXPECT_LT(a2.size(), b2.size() / 4);  // the second refers back to the first
  // A peer keeping its window decodes both (one zlib stream), ours too.
  ws::Inflater inflater;
  std::string out;
  ASSERT_EQ(inflater.decompress(a1, 1 << 20, out, true), ws::Inflater::Status::kOk);
  EXPECT_EQ(out, msg);
  ASSERT_EQ(inflater.decompress(a2, 1 << 20, out, true), ws::Inflater::Status::kOk);
  EXPECT_EQ(out, msg);
  // Without keeping its window it cannot decode the second one.
  ws::Inflater forgetful;
  ASSERT_EQ(forgetful.decompress(a1, 1 << 20, out, false), ws::Inflater::Status::kOk);
  EXPECT_NE(forgetful.decompress(a2, 1 << 20, out, false), ws::Inflater::Status::kOk);
}

// Found by the inflate fuzzer: with context takeover an empty message after another one makes
// zlib write nothing; it still needs its empty stored block.
TEST(DeflateCodec, EmptyMessagesWithAndWithoutContext) {
  ws::Deflater d(-1, 15, 8, 0);
  ws::Inflater inflater;
  std::string out;
  for (const std::string msg : {"", "", "abc", "", "abc"}) {
    std::string z;
    d.compress(msg, z, true);
    ASSERT_EQ(inflater.decompress(z, 100, out, true), ws::Inflater::Status::kOk);
    EXPECT_EQ(out, msg);
  }
  std::string z;
  d.compress("", z, false);
  EXPECT_EQ(raw_inflate(z), "");
}

TEST(DeflateCodec, DecompressionBombStopsAtTheLimit) {
  const std::string zeros(20u << 20, '\0');  // 20 MiB: compresses to about 20 KiB
  const std::string bomb = raw_deflate(zeros);
  ASSERT_LT(bomb.size(), 64u * 1024);
  ws::Inflater inflater;
  std::string out;
  EXPECT_EQ(inflater.decompress(bomb, 1000000, out, false), ws::Inflater::Status::kTooBig);
  EXPECT_TRUE(out.empty());
  EXPECT_LE(out.capacity(), 1000001u);
  // Exactly at the limit is fine; one byte more is not.
  const std::string exact(1000, 'z');
  ASSERT_EQ(inflater.decompress(raw_deflate(exact), 1000, out, false), ws::Inflater::Status::kOk);
  EXPECT_EQ(out, exact);
  EXPECT_EQ(inflater.decompress(raw_deflate(exact + "z"), 1000, out, false), ws::Inflater::Status::kTooBig);
  // The stream is usable afterwards.
  ASSERT_EQ(inflater.decompress(raw_deflate("after"), 1000, out, false), ws::Inflater::Status::kOk);
  EXPECT_EQ(out, "after");
}

TEST(DeflateCodec, CorruptInputIsRefused) {
  ws::Inflater inflater;
  std::string out;
  // BTYPE 11 (reserved) in the first block header.
  EXPECT_EQ(inflater.decompress("\x07\xff\xff", 1 << 20, out, false), ws::Inflater::Status::kCorrupt);
  // A stored block whose LEN and NLEN disagree.
  EXPECT_EQ(inflater.decompress(std::string("\x00\x01\x00\x00\x00", 5), 1 << 20, out, false),
            ws::Inflater::Status::kCorrupt);
  const std::string z = raw_deflate("abcabcabcabcabcabc");
  ASSERT_EQ(inflater.decompress(z, 1 << 20, out, false), ws::Inflater::Status::kOk);
  EXPECT_EQ(out, "abcabcabcabcabcabc");
  // Empty input is an empty message.
  ASSERT_EQ(inflater.decompress("", 1 << 20, out, false), ws::Inflater::Status::kOk);
  EXPECT_TRUE(out.empty());
}

TEST(DeflateCodec, FrameKeepsOpcodeAndSetsRsv1) {
  ws::Deflater d(-1, 15, 8, 0);
  const std::string msg = ticket_json(3);
  for (const std::uint8_t opcode : {ws::kText, ws::kBinary}) {
    const std::string plain = ws::encode_frame(opcode, msg);
    const std::string z = ws::deflate_frame(plain, d, false);
    const auto b0 = static_cast<std::uint8_t>(z[0]);
    EXPECT_EQ(b0, 0x80 | 0x40 | opcode);
    bool binary = false;
    EXPECT_EQ(raw_inflate(ws::frame_payload(z, &binary)), msg);
    EXPECT_EQ(binary, opcode == ws::kBinary);
  }
}

TEST(DeflateCodec, ParserAcceptsRsv1OnlyWhenNegotiatedAndOnFirstFrames) {
  auto parse = [](std::uint8_t b0, bool allowed) {
    const std::string f = client_frame(b0, "abc", 0x01020304);
    ws::FrameHeader h;
    return std::make_pair(ws::parse_client_frame_header(reinterpret_cast<const std::uint8_t*>(f.data()), f.size(),
                                                         1 << 20, h, allowed),
                          h);
  };
  auto [r1, h1] = parse(0xC1, true);  // FIN + RSV1 + text
  EXPECT_EQ(r1.status, ws::ParseStatus::kOk);
  EXPECT_TRUE(h1.rsv1);
  EXPECT_EQ(parse(0x42, true).first.status, ws::ParseStatus::kOk);  // first fragment of a binary message
  for (const std::uint8_t b0 : {0xC1, 0xA1, 0x91}) {  // RSV1, RSV2, RSV3 without negotiation
    const auto r = parse(b0, false).first;
    EXPECT_EQ(r.status, ws::ParseStatus::kError);
    EXPECT_EQ(r.close_code, ws::kProtocolError);
  }
  for (const std::uint8_t b0 : {0xA1, 0x91, 0xC0, 0xC9, 0xC8, 0xCA}) {  // RSV2/3; RSV1 on continuation/control
    const auto r = parse(b0, true).first;
    EXPECT_EQ(r.status, ws::ParseStatus::kError) << int(b0);
    EXPECT_EQ(r.close_code, ws::kProtocolError) << int(b0);
  }
}

TEST(DeflateWorkspace, ATwinPerFramePerTurn) {
  ws::DeflateOptions o;
  auto& w = ws::DeflateWorkspace::get();
  w.end_turn();
  const ws::SharedFrame plain = ws::make_shared_frame(ws::kText, ticket_json(1));
  const ws::SharedFrame a = w.shared_twin(plain, 15, o);
  EXPECT_NE(a, plain);
  EXPECT_EQ(w.shared_twin(plain, 15, o), a);  // the same bytes for the next recipient
  EXPECT_NE(w.shared_twin(plain, 12, o), a);  // another window, another twin
  EXPECT_EQ(raw_inflate(ws::frame_payload(*a)), ticket_json(1));
  w.end_turn();
  const ws::SharedFrame b = w.shared_twin(plain, 15, o);
  EXPECT_NE(b, a);  // made again: twins live for one turn
  EXPECT_EQ(*b, *a);
  // What does not shrink goes out as it is.
  const ws::SharedFrame noise = ws::make_shared_frame(ws::kBinary, binary_payload(4000, 9));
  EXPECT_EQ(w.shared_twin(noise, 15, o), noise);
  // Context takeover: per connection, forgotten with it.
  const ws::SharedFrame c1 = w.with_context(77, *plain, 15, o);
  const ws::SharedFrame c2 = w.with_context(77, *plain, 15, o);
  EXPECT_LT(c2->size(), c1->size());
  EXPECT_EQ(w.contexts(), 1u);
  w.forget(77);
  EXPECT_EQ(w.contexts(), 0u);
  w.end_turn();
}

// ----------------------------------------------------------------------------- over loopback

class DeflateEngineTest : public EngineTest {
 protected:
  void start_socketio(bool deflate, std::uint64_t max_http_buffer_size = 1000000,
                      const std::function<void(sw::SocketIoConfig::PerMessageDeflate&)>& tweak = {}) {
    sw::SocketIoConfig c;
    c.max_http_buffer_size = max_http_buffer_size;
    c.per_message_deflate.enabled = deflate;
    if (tweak) tweak(c.per_message_deflate);
    engine_->configure_socketio(c);
  }

  // A WebSocket Socket.IO client that offered `extensions`, connected to namespace '/'.
  std::unique_ptr<Client> sio_client(const std::string& extensions, std::string* response_head = nullptr) {
    const std::string key = new_key();
    auto r = upgrade_request("/socket.io/?EIO=4&transport=websocket", key);
    if (!extensions.empty()) r.headers.emplace_back("Sec-WebSocket-Extensions", extensions);
    auto c = adopt_raw(std::move(r));
    if (!c) return nullptr;
    const auto head = c->read_http_head();
    if (!head || head->rfind("HTTP/1.1 101 ", 0) != 0) {
      ADD_FAILURE() << "no 101: " << head.value_or("(none)");
      return nullptr;
    }
    if (response_head) *response_head = *head;
    const auto open = c->next_frame();
    if (!open || open->rsv != 0 || open->payload.empty() || open->payload[0] != '0') {
      ADD_FAILURE() << "no plain Engine.IO open packet";
      return nullptr;
    }
    if (!c->send_text("40")) return nullptr;
    const auto connected = next_packet(*c);
    if (!connected || connected->payload.rfind("40{", 0) != 0) {
      ADD_FAILURE() << "no CONNECT answer";
      return nullptr;
    }
    return c;
  }

  // The text of a frame, inflated when RSV1 says so.
  static std::string text_of(const Frame& f) { return (f.rsv & 4) ? raw_inflate(f.payload) : f.payload; }

  void broadcast(const std::string& data_json, bool compress = true) {
    engine_->sio_broadcast(sw::Engine::SioSelection{}, data_json, {}, -1, false, compress);
  }
};

constexpr const char* kChromeOffer = "permessage-deflate; client_max_window_bits";

TEST_F(DeflateEngineTest, CompressesBigMessagesOnceForEveryRecipient) {
  start();
  start_socketio(true);
  std::string head;
  auto a = sio_client(kChromeOffer, &head);
  ASSERT_TRUE(a);
  EXPECT_NE(head.find("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                      "client_no_context_takeover\r\n"),
            std::string::npos)
      << head;
  auto b = sio_client(kChromeOffer);
  auto plain = sio_client("");  // offered nothing
  ASSERT_TRUE(b && plain);

  const std::string big = "[\"ticket\"," + ticket_json(1) + "]";
  broadcast(big);
  const auto fa = next_packet(*a), fb = next_packet(*b), fp = next_packet(*plain);
  ASSERT_TRUE(fa && fb && fp);
  EXPECT_EQ(fa->rsv, 4);  // RSV1
  EXPECT_EQ(fa->payload, fb->payload);
  EXPECT_LT(fa->payload.size(), big.size() / 3);
  EXPECT_EQ(text_of(*fa), "42" + big);
  EXPECT_TRUE(IsMessage(fp, ws::kText, "42" + big));

  // Below the threshold, or with compress(false): as it is.
  broadcast(R"(["small","hello"])");
  EXPECT_TRUE(IsMessage(next_packet(*a), ws::kText, R"(42["small","hello"])"));
  broadcast(big, /*compress=*/false);
  EXPECT_TRUE(IsMessage(next_packet(*a), ws::kText, "42" + big));
}

TEST_F(DeflateEngineTest, InflatesWhatClientsCompress) {
  start();
  start_socketio(true);
  engine_->sio_set_namespace_hooks(0, false, true);
  auto c = sio_client(kChromeOffer);
  ASSERT_TRUE(c);
  const std::string packet = "42[\"up\"," + ticket_json(2) + "]";
  // One frame, then the same message in three fragments (RSV1 on the first only).
  ASSERT_TRUE(c->write_all(client_frame(0xC1, raw_deflate(packet), 0x11223344)));
  const std::string z = raw_deflate(packet);
  ASSERT_TRUE(c->write_all(client_frame(0x41, z.substr(0, 10), 1) + client_frame(0x00, z.substr(10, 10), 2) +
                           client_frame(0x80, z.substr(20), 3)));
  EXPECT_TRUE(wait_until([&] {
    return sink_->count([&](const Event& e) { return e.type == Event::Type::kSioEvent && e.data == packet.substr(2); }) == 2;
  }));
}

TEST_F(DeflateEngineTest, DecompressionBombClosesWith1009) {
  start();
  start_socketio(true, /*max_http_buffer_size=*/100000);
  auto victim = sio_client(kChromeOffer);
  auto bystander = sio_client(kChromeOffer);
  ASSERT_TRUE(victim && bystander);
  const std::string bomb = raw_deflate("42[\"x\",\"" + std::string(8u << 20, 'A') + "\"]");
  ASSERT_LT(bomb.size(), 100000u);  // the frame itself is within maxHttpBufferSize
  ASSERT_TRUE(victim->write_all(client_frame(0xC1, bomb, 0x55667788)));
  EXPECT_TRUE(IsClose(next_packet(*victim), ws::kMessageTooBig));
  std::uint64_t payload_limits = 0;
  for (const auto& [n, v] : engine_->stats().limits) {
    if (n == "payload") payload_limits = v;
  }
  EXPECT_EQ(payload_limits, 1u);
  // Corrupt data: 1007. The other connection is untouched.
  auto corrupt = sio_client(kChromeOffer);
  ASSERT_TRUE(corrupt);
  ASSERT_TRUE(corrupt->write_all(client_frame(0xC1, "\x07\xff\xff", 0x01010101)));
  EXPECT_TRUE(IsClose(next_packet(*corrupt), ws::kInvalidPayload));
  broadcast("[\"still\",\"here\"]");
  EXPECT_TRUE(IsMessage(next_packet(*bystander), ws::kText, "42[\"still\",\"here\"]"));
}

TEST_F(DeflateEngineTest, OffByDefaultAndRsv1IsThenAProtocolError) {
  start();
  start_socketio(false);
  std::string head;
  auto c = sio_client(kChromeOffer, &head);
  ASSERT_TRUE(c);
  EXPECT_EQ(head.find("Sec-WebSocket-Extensions"), std::string::npos) << head;
  broadcast("[\"ticket\"," + ticket_json(4) + "]");
  const auto f = next_packet(*c);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->rsv, 0);
  ASSERT_TRUE(c->write_all(client_frame(0xC1, raw_deflate("42[\"x\"]"), 0x0badf00d)));
  EXPECT_TRUE(IsClose(next_packet(*c), ws::kProtocolError));
}

TEST_F(DeflateEngineTest, ContextTakeoverModeKeepsAStreamPerConnection) {
  start();
  start_socketio(true, 1000000, [](auto& d) {
    d.server_no_context_takeover = false;
    d.client_no_context_takeover = false;
  });
  engine_->sio_set_namespace_hooks(0, false, true);
  std::string head;
  auto c = sio_client(kChromeOffer, &head);
  ASSERT_TRUE(c);
  EXPECT_NE(head.find("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"), std::string::npos) << head;
  const std::string big = "[\"ticket\"," + ticket_json(5) + "]";
  broadcast(big);
  broadcast(big);
  const auto f1 = next_packet(*c), f2 = next_packet(*c);
  ASSERT_TRUE(f1 && f2);
  EXPECT_EQ(f1->rsv, 4);
  EXPECT_EQ(f2->rsv, 4);
  EXPECT_LT(f2->payload.size(), f1->payload.size() / 4);
  // One client-side stream across both messages.
  z_stream z{};
  ASSERT_EQ(inflateInit2(&z, -15), Z_OK);
  for (const auto* f : {&*f1, &*f2}) {
    std::string in = f->payload + std::string("\x00\x00\xff\xff", 4);
    std::string out(100000, '\0');
    z.next_in = reinterpret_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    ASSERT_EQ(inflate(&z, Z_SYNC_FLUSH), Z_OK);
    out.resize(out.size() - z.avail_out);
    EXPECT_EQ(out, "42" + big);
  }
  inflateEnd(&z);
  // The client keeps its window too: two messages of one client stream.
  z_stream d{};
  ASSERT_EQ(deflateInit2(&d, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  const std::string packet = "42[\"up\"," + ticket_json(6) + "]";
  for (int i = 0; i < 2; ++i) {
    std::string out(packet.size() + 1024, '\0');
    d.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packet.data()));
    d.avail_in = static_cast<uInt>(packet.size());
    d.next_out = reinterpret_cast<Bytef*>(out.data());
    d.avail_out = static_cast<uInt>(out.size());
    ASSERT_EQ(deflate(&d, Z_SYNC_FLUSH), Z_OK);
    out.resize(out.size() - d.avail_out - 4);
    ASSERT_TRUE(c->write_all(client_frame(0xC1, out, 0x1234 + i)));
  }
  deflateEnd(&d);
  EXPECT_TRUE(wait_until([&] {
    return sink_->count([&](const Event& e) { return e.type == Event::Type::kSioEvent && e.data == packet.substr(2); }) == 2;
  }));
}

}  // namespace
