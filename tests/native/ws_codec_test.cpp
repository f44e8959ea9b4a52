// Unit tests for the pure RFC 6455 codec (native/net/ws_codec.*): frame header parsing, masking,
// frame encoding, UTF-8 validation, SHA-1 / base64 / accept key, close codes, and a small
// deterministic fuzz loop over the two parsers that see untrusted bytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "net/ws_codec.hpp"

namespace ws = sidewire::ws;
using Bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::uint8_t kMask[4] = {0x37, 0xFA, 0x21, 0x3D};

// How the payload length is written on the wire: the minimal form, or forced to a wider one.
enum class LenForm { kMinimal, k16, k64 };

// A client frame: b0 (FIN/RSV/opcode) as given, masked unless told otherwise.
Bytes client_frame(std::uint8_t b0, const std::string& payload, bool masked = true,
                   LenForm form = LenForm::kMinimal) {
  Bytes out;
  out.push_back(b0);
  const std::uint64_t len = payload.size();
  const std::uint8_t mask_bit = masked ? 0x80 : 0x00;
  LenForm f = form;
  if (f == LenForm::kMinimal) f = len < 126 ? LenForm::kMinimal : (len <= 0xFFFF ? LenForm::k16 : LenForm::k64);
  if (f == LenForm::kMinimal) {
    out.push_back(static_cast<std::uint8_t>(mask_bit | len));
  } else if (f == LenForm::k16) {
    out.push_back(mask_bit | 126);
    out.push_back(static_cast<std::uint8_t>(len >> 8));
    out.push_back(static_cast<std::uint8_t>(len));
  } else {
    out.push_back(mask_bit | 127);
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(len >> (8 * i)));
  }
  if (masked) out.insert(out.end(), kMask, kMask + 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    const auto c = static_cast<std::uint8_t>(payload[i]);
    out.push_back(masked ? static_cast<std::uint8_t>(c ^ kMask[i & 3]) : c);
  }
  return out;
}

// Just a header with an arbitrary declared 64-bit length (no payload bytes follow).
Bytes header64(std::uint8_t b0, std::uint64_t len) {
  Bytes out{b0, 0x80 | 127};
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(len >> (8 * i)));
  out.insert(out.end(), kMask, kMask + 4);
  return out;
}

ws::ParseResult parse(const Bytes& b, std::uint64_t max_payload, ws::FrameHeader& h) {
  return ws::parse_client_frame_header(b.data(), b.size(), max_payload, h);
}

ws::ParseResult parse(const Bytes& b, std::uint64_t max_payload = 1 << 20) {
  ws::FrameHeader h;
  return parse(b, max_payload, h);
}

std::string hex(const std::uint8_t* d, std::size_t n) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s.push_back(k[d[i] >> 4]);
    s.push_back(k[d[i] & 15]);
  }
  return s;
}

std::string sha1_hex(const std::string& s) {
  std::uint8_t digest[20];
  ws::sha1(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), digest);
  return hex(digest, 20);
}

bool utf8(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return ws::is_valid_utf8(s);
}

std::string b64(const std::string& s) {
  return ws::base64_encode(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Frame header parsing
// ---------------------------------------------------------------------------------------------

TEST(ParseHeader, SevenBitLength) {
  const Bytes f = client_frame(0x81, "hello");
  ws::FrameHeader h;
  const auto r = parse(f, 1 << 20, h);
  ASSERT_EQ(r.status, ws::ParseStatus::kOk);
  EXPECT_TRUE(h.fin);
  EXPECT_EQ(h.opcode, ws::kText);
  EXPECT_TRUE(h.masked);
  EXPECT_EQ(h.payload_length, 5u);
  EXPECT_EQ(h.header_length, 6u);
  EXPECT_EQ(0, std::memcmp(h.mask, kMask, 4));
}

TEST(ParseHeader, ZeroAndMaxSevenBitLengths) {
  for (std::size_t n : {0u, 1u, 125u}) {
    ws::FrameHeader h;
    const auto r = parse(client_frame(0x82, std::string(n, 'x')), 1 << 20, h);
    ASSERT_EQ(r.status, ws::ParseStatus::kOk) << n;
    EXPECT_EQ(h.payload_length, n);
    EXPECT_EQ(h.header_length, 6u);
    EXPECT_EQ(h.opcode, ws::kBinary);
  }
}

TEST(ParseHeader, SixteenBitLength) {
  for (std::size_t n : {126u, 127u, 1000u, 65535u}) {
    ws::FrameHeader h;
    const auto r = parse(client_frame(0x82, std::string(n, 'x')), 1 << 20, h);
    ASSERT_EQ(r.status, ws::ParseStatus::kOk) << n;
    EXPECT_EQ(h.payload_length, n);
    EXPECT_EQ(h.header_length, 8u);
  }
}

TEST(ParseHeader, SixtyFourBitLength) {
  for (std::uint64_t n : {65536ull, 70000ull, 1ull << 32, (1ull << 63) - 1}) {
    ws::FrameHeader h;
    const auto r = parse(header64(0x82, n), UINT64_MAX, h);
    ASSERT_EQ(r.status, ws::ParseStatus::kOk) << n;
    EXPECT_EQ(h.payload_length, n);
    EXPECT_EQ(h.header_length, 14u);
  }
}

TEST(ParseHeader, NeedMoreAtEveryTruncationPoint) {
  // One frame of each length form; every strict prefix of the header asks for more.
  const std::vector<std::pair<Bytes, std::size_t>> frames = {
      {client_frame(0x81, "abc"), 6},
      {client_frame(0x82, std::string(300, 'y')), 8},
      {client_frame(0x82, std::string(70000, 'z')), 14},
      {client_frame(0x89, "ping"), 6},
  };
  for (const auto& [f, header_len] : frames) {
    for (std::size_t cut = 0; cut < header_len; ++cut) {
      ws::FrameHeader h;
      const auto r = ws::parse_client_frame_header(f.data(), cut, 1 << 20, h);
      EXPECT_EQ(r.status, ws::ParseStatus::kNeedMore) << "header " << header_len << " cut at " << cut;
    }
    // The full header is enough; the payload need not be there.
    ws::FrameHeader h;
    const auto r = ws::parse_client_frame_header(f.data(), header_len, 1 << 20, h);
    EXPECT_EQ(r.status, ws::ParseStatus::kOk) << header_len;
    EXPECT_EQ(h.header_length, header_len);
  }
}

TEST(ParseHeader, NullDataWithZeroSizeNeedsMore) {
  ws::FrameHeader h;
  EXPECT_EQ(ws::parse_client_frame_header(nullptr, 0, 100, h).status, ws::ParseStatus::kNeedMore);
}

TEST(ParseHeader, UnmaskedClientFrameIs1002) {
  const auto r = parse(client_frame(0x81, "hello", /*masked=*/false));
  EXPECT_EQ(r.status, ws::ParseStatus::kError);
  EXPECT_EQ(r.close_code, ws::kProtocolError);
  EXPECT_STRNE(r.reason, "");
}

TEST(ParseHeader, UnmaskedIsRejectedBeforeLengthIsComplete) {
  // Two bytes are enough to know the frame is unmasked.
  const Bytes f = client_frame(0x82, std::string(300, 'x'), false);
  ws::FrameHeader h;
  const auto r = ws::parse_client_frame_header(f.data(), 2, 1 << 20, h);
  EXPECT_EQ(r.status, ws::ParseStatus::kError);
  EXPECT_EQ(r.close_code, ws::kProtocolError);
}

TEST(ParseHeader, ReservedBitsAre1002) {
  for (std::uint8_t rsv : {0x40, 0x20, 0x10, 0x70}) {
    const auto r = parse(client_frame(static_cast<std::uint8_t>(0x81 | rsv), "x"));
    EXPECT_EQ(r.status, ws::ParseStatus::kError) << int(rsv);
    EXPECT_EQ(r.close_code, ws::kProtocolError) << int(rsv);
  }
}

TEST(ParseHeader, UnknownOpcodesAre1002) {
  for (std::uint8_t op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    const auto r = parse(client_frame(static_cast<std::uint8_t>(0x80 | op), ""));
    EXPECT_EQ(r.status, ws::ParseStatus::kError) << int(op);
    EXPECT_EQ(r.close_code, ws::kProtocolError) << int(op);
  }
}

TEST(ParseHeader, KnownOpcodesAreAccepted) {
  for (std::uint8_t op : {0x0, 0x1, 0x2, 0x8, 0x9, 0xA}) {
    ws::FrameHeader h;
    const auto r = parse(client_frame(static_cast<std::uint8_t>(0x80 | op), ""), 100, h);
    EXPECT_EQ(r.status, ws::ParseStatus::kOk) << int(op);
    EXPECT_EQ(h.opcode, op);
  }
}

TEST(ParseHeader, FragmentedControlFrameIs1002) {
  for (std::uint8_t op : {0x8, 0x9, 0xA}) {
    const auto r = parse(client_frame(op /* FIN clear */, ""));
    EXPECT_EQ(r.status, ws::ParseStatus::kError) << int(op);
    EXPECT_EQ(r.close_code, ws::kProtocolError) << int(op);
  }
}

TEST(ParseHeader, LongControlFrameIs1002) {
  for (std::uint8_t op : {0x8, 0x9, 0xA}) {
    const auto ok = parse(client_frame(static_cast<std::uint8_t>(0x80 | op), std::string(125, 'p')));
    EXPECT_EQ(ok.status, ws::ParseStatus::kOk) << int(op);
    const auto r = parse(client_frame(static_cast<std::uint8_t>(0x80 | op), std::string(126, 'p')));
    EXPECT_EQ(r.status, ws::ParseStatus::kError) << int(op);
    EXPECT_EQ(r.close_code, ws::kProtocolError) << int(op);
    // A 64-bit length on a control frame too, rejected before its extended length arrives.
    const Bytes h64 = header64(static_cast<std::uint8_t>(0x80 | op), 70000);
    ws::FrameHeader h;
    const auto r64 = ws::parse_client_frame_header(h64.data(), 2, 1 << 20, h);
    EXPECT_EQ(r64.status, ws::ParseStatus::kError) << int(op);
    EXPECT_EQ(r64.close_code, ws::kProtocolError) << int(op);
  }
}

TEST(ParseHeader, ControlFrameLengthIsNotLimitedByMaxPayload) {
  // max_payload bounds messages; a 125-byte ping stays legal under a tiny limit.
  ws::FrameHeader h;
  const auto r = parse(client_frame(0x89, std::string(125, 'p')), 16, h);
  EXPECT_EQ(r.status, ws::ParseStatus::kOk);
  EXPECT_EQ(h.payload_length, 125u);
}

TEST(ParseHeader, NonMinimalLengthsAre1002) {
  // 16-bit form for lengths that fit 7 bits.
  for (std::size_t n : {0u, 5u, 125u}) {
    const auto r = parse(client_frame(0x82, std::string(n, 'x'), true, LenForm::k16));
    EXPECT_EQ(r.status, ws::ParseStatus::kError) << n;
    EXPECT_EQ(r.close_code, ws::kProtocolError) << n;
  }
  // 64-bit form for lengths that fit 16 bits.
  for (std::size_t n : {0u, 125u, 126u, 65535u}) {
    const auto r = parse(client_frame(0x82, std::string(n, 'x'), true, LenForm::k64));
    EXPECT_EQ(r.status, ws::ParseStatus::kError) << n;
    EXPECT_EQ(r.close_code, ws::kProtocolError) << n;
  }
  // The minimal forms of the boundary values are fine.
  EXPECT_EQ(parse(client_frame(0x82, std::string(126, 'x'), true, LenForm::k16)).status, ws::ParseStatus::kOk);
  EXPECT_EQ(parse(header64(0x82, 65536)).status, ws::ParseStatus::kOk);
}

TEST(ParseHeader, SixtyFourBitLengthWithTopBitIs1002) {
  const auto r = parse(header64(0x82, 1ull << 63), UINT64_MAX);
  EXPECT_EQ(r.status, ws::ParseStatus::kError);
  EXPECT_EQ(r.close_code, ws::kProtocolError);
  const auto r2 = parse(header64(0x82, UINT64_MAX), UINT64_MAX);
  EXPECT_EQ(r2.status, ws::ParseStatus::kError);
  EXPECT_EQ(r2.close_code, ws::kProtocolError);
}

TEST(ParseHeader, PayloadOverMaxIs1009) {
  EXPECT_EQ(parse(client_frame(0x82, std::string(1024, 'x')), 1024).status, ws::ParseStatus::kOk);
  const auto r = parse(client_frame(0x82, std::string(1025, 'x')), 1024);
  EXPECT_EQ(r.status, ws::ParseStatus::kError);
  EXPECT_EQ(r.close_code, ws::kMessageTooBig);
  // 7-bit length over a tiny limit, and continuation frames too.
  const auto r7 = parse(client_frame(0x81, std::string(20, 'x')), 10);
  EXPECT_EQ(r7.close_code, ws::kMessageTooBig);
  const auto rc = parse(client_frame(0x00, std::string(20, 'x')), 10);
  EXPECT_EQ(rc.status, ws::ParseStatus::kError);
  EXPECT_EQ(rc.close_code, ws::kMessageTooBig);
  // Detected from the extended length alone, before the mask arrives.
  const Bytes big = header64(0x82, 5'000'000'000ull);
  ws::FrameHeader h;
  const auto r64 = ws::parse_client_frame_header(big.data(), 10, 1 << 20, h);
  EXPECT_EQ(r64.status, ws::ParseStatus::kError);
  EXPECT_EQ(r64.close_code, ws::kMessageTooBig);
}

TEST(ParseHeader, FinBitClearOnDataFrame) {
  ws::FrameHeader h;
  ASSERT_EQ(parse(client_frame(0x01, "frag"), 100, h).status, ws::ParseStatus::kOk);
  EXPECT_FALSE(h.fin);
  EXPECT_EQ(h.opcode, ws::kText);
}

// ---------------------------------------------------------------------------------------------
// Unmasking
// ---------------------------------------------------------------------------------------------

TEST(Unmask, MatchesBytewiseXorAtEveryOffsetAndSize) {
  std::mt19937 rng(1234);
  for (std::size_t size = 0; size <= 40; ++size) {
    for (std::size_t offset = 0; offset < 8; ++offset) {
      Bytes data(size);
      for (auto& b : data) b = static_cast<std::uint8_t>(rng());
      Bytes expect = data;
      for (std::size_t i = 0; i < size; ++i) expect[i] ^= kMask[(offset + i) & 3];
      ws::unmask(data.data(), data.size(), kMask, offset);
      ASSERT_EQ(data, expect) << "size " << size << " offset " << offset;
    }
  }
}

TEST(Unmask, SplitCallsWithOffsetsEqualOneCall) {
  const std::string text = "The quick brown fox jumps over the lazy dog, twice over.";
  Bytes whole(text.begin(), text.end());
  ws::unmask(whole.data(), whole.size(), kMask);
  Bytes parts(text.begin(), text.end());
  const std::size_t cuts[] = {0, 3, 11, 12, 29, parts.size()};
  for (std::size_t k = 0; k + 1 < std::size(cuts); ++k) {
    ws::unmask(parts.data() + cuts[k], cuts[k + 1] - cuts[k], kMask, cuts[k]);
  }
  EXPECT_EQ(parts, whole);
  // And unmasking twice restores the input.
  ws::unmask(whole.data(), whole.size(), kMask);
  EXPECT_EQ(std::string(whole.begin(), whole.end()), text);
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

namespace {
// Parses a server (unmasked) frame: returns false when it is malformed.
bool decode_server_frame(const std::string& f, bool& fin, std::uint8_t& opcode, std::string& payload) {
  if (f.size() < 2) return false;
  const auto b0 = static_cast<std::uint8_t>(f[0]);
  const auto b1 = static_cast<std::uint8_t>(f[1]);
  if (b1 & 0x80) return false;  // a server never masks
  fin = b0 & 0x80;
  opcode = b0 & 0x0F;
  std::uint64_t len = b1 & 0x7F;
  std::size_t pos = 2;
  if (len == 126) {
    if (f.size() < 4) return false;
    len = (std::uint64_t(static_cast<std::uint8_t>(f[2])) << 8) | static_cast<std::uint8_t>(f[3]);
    pos = 4;
    if (len < 126) return false;
  } else if (len == 127) {
    if (f.size() < 10) return false;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<std::uint8_t>(f[2 + i]);
    pos = 10;
    if (len <= 0xFFFF) return false;
  }
  if (f.size() != pos + len) return false;
  payload = f.substr(pos);
  return true;
}
}  // namespace

TEST(Encode, RoundTripAtLengthBoundaries) {
  const std::vector<std::pair<std::size_t, std::size_t>> sizes = {
      {0, 2}, {1, 2}, {125, 2}, {126, 4}, {127, 4}, {65535, 4}, {65536, 10}, {200000, 10}};
  for (const auto& [n, header] : sizes) {
    std::string payload(n, '\0');
    for (std::size_t i = 0; i < n; ++i) payload[i] = static_cast<char>(i * 7 + 3);
    const std::string f = ws::encode_frame(ws::kBinary, payload);
    ASSERT_EQ(f.size(), header + n) << n;
    bool fin = false;
    std::uint8_t op = 0;
    std::string got;
    ASSERT_TRUE(decode_server_frame(f, fin, op, got)) << n;
    EXPECT_TRUE(fin);
    EXPECT_EQ(op, ws::kBinary);
    EXPECT_EQ(got, payload) << n;
  }
}

TEST(Encode, FinFlagAndOpcodeByte) {
  EXPECT_EQ(static_cast<std::uint8_t>(ws::encode_frame(ws::kText, "a")[0]), 0x81);
  EXPECT_EQ(static_cast<std::uint8_t>(ws::encode_frame(ws::kText, "a", false)[0]), 0x01);
  EXPECT_EQ(static_cast<std::uint8_t>(ws::encode_frame(ws::kContinuation, "a", true)[0]), 0x80);
  EXPECT_EQ(ws::encode_frame(ws::kPing, ""), std::string("\x89\x00", 2));
  EXPECT_EQ(ws::encode_frame(ws::kPong, "xy"), std::string("\x8A\x02xy", 4));
}

TEST(Encode, SharedFrameHasSameBytes) {
  const auto shared = ws::make_shared_frame(ws::kText, "shared payload");
  ASSERT_TRUE(shared);
  EXPECT_EQ(*shared, ws::encode_frame(ws::kText, "shared payload"));
}

TEST(Encode, CloseFrame) {
  EXPECT_EQ(ws::encode_close_frame(1000, ""), std::string("\x88\x02\x03\xE8", 4));
  EXPECT_EQ(ws::encode_close_frame(4000, "bye"), std::string("\x88\x05\x0F\xA0" "bye", 7));
  bool fin = false;
  std::uint8_t op = 0;
  std::string payload;
  ASSERT_TRUE(decode_server_frame(ws::encode_close_frame(1009, "message too big"), fin, op, payload));
  EXPECT_EQ(op, ws::kClose);
  EXPECT_EQ(payload.substr(2), "message too big");
  EXPECT_EQ((static_cast<std::uint8_t>(payload[0]) << 8) | static_cast<std::uint8_t>(payload[1]), 1009);
}

TEST(Encode, CloseFrameReasonIsTruncatedToFitAControlFrame) {
  const std::string f = ws::encode_close_frame(1000, std::string(500, 'r'));
  bool fin = false;
  std::uint8_t op = 0;
  std::string payload;
  ASSERT_TRUE(decode_server_frame(f, fin, op, payload));
  EXPECT_EQ(payload.size(), 125u);  // a control frame's limit
  EXPECT_EQ(payload.substr(2), std::string(123, 'r'));
}

TEST(Encode, CloseFrameTruncationKeepsReasonValidUtf8) {
  // 122 ASCII bytes and then a 2-byte character: cutting at 123 bytes would split the character,
  // and a close reason must be UTF-8 (RFC 6455 5.5.1), or a conforming client fails with 1007.
  const std::string reason = std::string(122, 'r') + "\xC3\xA9" + "tail";
  const std::string f = ws::encode_close_frame(1000, reason);
  bool fin = false;
  std::uint8_t op = 0;
  std::string payload;
  ASSERT_TRUE(decode_server_frame(f, fin, op, payload));
  EXPECT_LE(payload.size(), 125u);
  EXPECT_TRUE(ws::is_valid_utf8(payload.substr(2))) << "reason of " << payload.size() - 2 << " bytes";
}

// ---------------------------------------------------------------------------------------------
// UTF-8
// ---------------------------------------------------------------------------------------------

TEST(Utf8, ValidSequences) {
  EXPECT_TRUE(ws::is_valid_utf8(""));
  EXPECT_TRUE(ws::is_valid_utf8("plain ascii"));
  EXPECT_TRUE(ws::is_valid_utf8("\x7F"));
  EXPECT_TRUE(utf8({0xC2, 0x80}));              // U+0080
  EXPECT_TRUE(utf8({0xDF, 0xBF}));              // U+07FF
  EXPECT_TRUE(utf8({0xE0, 0xA0, 0x80}));        // U+0800
  EXPECT_TRUE(utf8({0xED, 0x9F, 0xBF}));        // U+D7FF
  EXPECT_TRUE(utf8({0xEE, 0x80, 0x80}));        // U+E000
  EXPECT_TRUE(utf8({0xEF, 0xBF, 0xBF}));        // U+FFFF
  EXPECT_TRUE(utf8({0xF0, 0x90, 0x80, 0x80}));  // U+10000
  EXPECT_TRUE(utf8({0xF0, 0x9F, 0x98, 0x80}));  // U+1F600
  EXPECT_TRUE(utf8({0xF4, 0x8F, 0xBF, 0xBF}));  // U+10FFFF
  EXPECT_TRUE(ws::is_valid_utf8("κόσμε — 日本語 — \xF0\x9F\x8E\x89"));
}

TEST(Utf8, OverlongForms) {
  EXPECT_FALSE(utf8({0xC0, 0x80}));
  EXPECT_FALSE(utf8({0xC1, 0xBF}));
  EXPECT_FALSE(utf8({0xE0, 0x80, 0x80}));
  EXPECT_FALSE(utf8({0xE0, 0x9F, 0xBF}));
  EXPECT_FALSE(utf8({0xF0, 0x80, 0x80, 0x80}));
  EXPECT_FALSE(utf8({0xF0, 0x8F, 0xBF, 0xBF}));
}

TEST(Utf8, Surrogates) {
  EXPECT_FALSE(utf8({0xED, 0xA0, 0x80}));  // U+D800
  EXPECT_FALSE(utf8({0xED, 0xAF, 0xBF}));  // U+DBFF
  EXPECT_FALSE(utf8({0xED, 0xB0, 0x80}));  // U+DC00
  EXPECT_FALSE(utf8({0xED, 0xBF, 0xBF}));  // U+DFFF
  EXPECT_FALSE(utf8({0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}));  // a CESU-8 pair
}

TEST(Utf8, AboveU10FFFF) {
  EXPECT_FALSE(utf8({0xF4, 0x90, 0x80, 0x80}));  // U+110000
  EXPECT_FALSE(utf8({0xF5, 0x80, 0x80, 0x80}));
  EXPECT_FALSE(utf8({0xF7, 0xBF, 0xBF, 0xBF}));
  EXPECT_FALSE(utf8({0xF8, 0x88, 0x80, 0x80, 0x80}));
  EXPECT_FALSE(utf8({0xFE}));
  EXPECT_FALSE(utf8({0xFF}));
}

TEST(Utf8, BadContinuationBytes) {
  EXPECT_FALSE(utf8({0x80}));
  EXPECT_FALSE(utf8({0xBF}));
  EXPECT_FALSE(utf8({0x41, 0x80, 0x41}));
  EXPECT_FALSE(utf8({0xC3, 0x41}));
  EXPECT_FALSE(utf8({0xE2, 0x82, 0x41}));
  EXPECT_FALSE(utf8({0xF0, 0x9F, 0x98, 0x41}));
  EXPECT_FALSE(utf8({0xC3, 0xC3, 0xA9}));
}

TEST(Utf8, TruncatedSequences) {
  EXPECT_FALSE(utf8({0xC3}));
  EXPECT_FALSE(utf8({0xE2, 0x82}));
  EXPECT_FALSE(utf8({0xE2}));
  EXPECT_FALSE(utf8({0xF0, 0x9F, 0x98}));
  EXPECT_FALSE(utf8({0xF0, 0x9F}));
  EXPECT_FALSE(utf8({0x41, 0x42, 0xF0}));
  // Truncated right after a full ASCII word, and after a long valid prefix.
  EXPECT_FALSE(ws::is_valid_utf8(std::string("abcdefgh") + "\xE2\x82"));
  EXPECT_FALSE(ws::is_valid_utf8(std::string(1000, 'a') + "\xF0\x9F\x98"));
}

TEST(Utf8, AsciiFastPathBoundary) {
  // A bad byte at every position of 1..24-byte strings, around the 8-byte word boundary.
  for (std::size_t len = 1; len <= 24; ++len) {
    const std::string ascii(len, 'a');
    EXPECT_TRUE(ws::is_valid_utf8(ascii)) << len;
    for (std::size_t pos = 0; pos < len; ++pos) {
      std::string s = ascii;
      s[pos] = static_cast<char>(0x80);
      EXPECT_FALSE(ws::is_valid_utf8(s)) << "len " << len << " pos " << pos;
      s[pos] = static_cast<char>(0xFF);
      EXPECT_FALSE(ws::is_valid_utf8(s)) << "len " << len << " pos " << pos;
    }
    // A valid multi-byte character at every position.
    for (std::size_t pos = 0; pos + 3 <= len; ++pos) {
      std::string s = ascii;
      s.replace(pos, 3, "\xE2\x82\xAC");  // U+20AC
      EXPECT_TRUE(ws::is_valid_utf8(s)) << "len " << len << " pos " << pos;
    }
  }
  // A character straddling the first word boundary; the validator must not read past the end.
  EXPECT_TRUE(ws::is_valid_utf8(std::string(7, 'a') + "\xF0\x9F\x98\x80" + std::string(5, 'b')));
  EXPECT_FALSE(ws::is_valid_utf8(std::string(7, 'a') + "\xF0\x9F\x98"));
  // Only the first `size` bytes count.
  const std::string s = "abcdefg\xC3";
  EXPECT_TRUE(ws::is_valid_utf8(reinterpret_cast<const std::uint8_t*>(s.data()), 7));
  EXPECT_FALSE(ws::is_valid_utf8(reinterpret_cast<const std::uint8_t*>(s.data()), 8));
}

TEST(Utf8, NulIsValid) { EXPECT_TRUE(ws::is_valid_utf8(std::string("a\0b\0\0\0\0\0\0\0c", 11))); }

// ---------------------------------------------------------------------------------------------
// SHA-1, base64, accept key
// ---------------------------------------------------------------------------------------------

TEST(Sha1, KnownVectors) {
  EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(sha1_hex("The quick brown fox jumps over the lazy dog"),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
}

TEST(Sha1, OneMillionAs) { EXPECT_EQ(sha1_hex(std::string(1000000, 'a')), "34aa973cd4c4daa4f61eeb2bdbad27316534016f"); }

TEST(Sha1, PaddingBoundaries) {
  // 55, 56, 63, 64 and 119 bytes straddle the one/two padding block cases.
  EXPECT_EQ(sha1_hex(std::string(55, 'a')), "c1c8bbdc22796e28c0e15163d20899b65621d65a");
  EXPECT_EQ(sha1_hex(std::string(56, 'a')), "c2db330f6083854c99d4b5bfb6e8f29f201be699");
  EXPECT_EQ(sha1_hex(std::string(63, 'a')), "03f09f5b158a7a8cdad920bddc29b81c18a551f5");
  EXPECT_EQ(sha1_hex(std::string(64, 'a')), "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

TEST(AcceptKey, Rfc6455Example) {
  EXPECT_EQ(ws::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("foob"), "Zm9vYg==");
  EXPECT_EQ(b64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(b64("foobar"), "Zm9vYmFy");
  std::string out = "junk";
  ASSERT_TRUE(ws::base64_decode("Zm9vYmE=", out));
  EXPECT_EQ(out, "fooba");
  ASSERT_TRUE(ws::base64_decode("", out));
  EXPECT_EQ(out, "");
}

TEST(Base64, RoundTripAllLengthsAndBytes) {
  std::mt19937 rng(99);
  for (std::size_t n = 0; n <= 70; ++n) {
    std::string data(n, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    const std::string enc = b64(data);
    EXPECT_EQ(enc.size(), (n + 2) / 3 * 4);
    std::string dec;
    ASSERT_TRUE(ws::base64_decode(enc, dec)) << n;
    EXPECT_EQ(dec, data) << n;
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  std::string dec;
  ASSERT_TRUE(ws::base64_decode(b64(all), dec));
  EXPECT_EQ(dec, all);
}

TEST(Base64, MalformedInput) {
  std::string out;
  EXPECT_FALSE(ws::base64_decode("Zm9", out));       // not a multiple of 4
  EXPECT_FALSE(ws::base64_decode("Zm9vY", out));
  EXPECT_FALSE(ws::base64_decode("Zm9v!mFy", out));  // bad character
  EXPECT_FALSE(ws::base64_decode("Zm 9v", out));
  EXPECT_FALSE(ws::base64_decode("Zm9-", out));      // base64url alphabet
  EXPECT_FALSE(ws::base64_decode("Zm9_", out));
  EXPECT_FALSE(ws::base64_decode("====", out));      // padding too early
  EXPECT_FALSE(ws::base64_decode("Z===", out));
  EXPECT_FALSE(ws::base64_decode("Zg=a", out));      // data after padding
  EXPECT_FALSE(ws::base64_decode("Zg==Zm9v", out));  // padding not at the end
  EXPECT_FALSE(ws::base64_decode(std::string("Zm9\0", 4), out));
}

// ---------------------------------------------------------------------------------------------
// Close codes
// ---------------------------------------------------------------------------------------------

TEST(CloseCode, Validity) {
  for (std::uint16_t c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
    EXPECT_TRUE(ws::is_valid_close_code(c)) << c;
  }
  for (std::uint16_t c : {0, 1, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535}) {
    EXPECT_FALSE(ws::is_valid_close_code(c)) << c;
  }
}

// ---------------------------------------------------------------------------------------------
// Fuzz: random bytes through the parsers that see untrusted input. Deterministic (fixed seed).
// ---------------------------------------------------------------------------------------------

TEST(Fuzz, ParseClientFrameHeader) {
  std::mt19937_64 rng(0x5eed);
  int ok = 0, need_more = 0, error = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    const std::size_t n = rng() % 24;
    Bytes b(n);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    // Bias half the inputs towards plausible frames (masked, known opcode, no RSV).
    if (n >= 2 && (iter & 1)) {
      static const std::uint8_t ops[] = {0x0, 0x1, 0x2, 0x8, 0x9, 0xA};
      b[0] = static_cast<std::uint8_t>((b[0] & 0x80) | ops[rng() % 6]);
      b[1] |= 0x80;
    }
    const std::uint64_t max = (iter % 3 == 0) ? UINT64_MAX : (rng() % 100000);
    ws::FrameHeader h;
    const auto r = ws::parse_client_frame_header(b.data(), b.size(), max, h);
    switch (r.status) {
      case ws::ParseStatus::kOk: {
        ++ok;
        ASSERT_LE(h.header_length, n);
        ASSERT_TRUE(h.header_length == 6 || h.header_length == 8 || h.header_length == 14) << h.header_length;
        ASSERT_TRUE(h.masked);
        ASSERT_EQ(0, std::memcmp(h.mask, b.data() + h.header_length - 4, 4));
        const bool control = (h.opcode & 0x8) != 0;
        if (control) {
          ASSERT_LE(h.payload_length, 125u);
          ASSERT_TRUE(h.fin);
        } else {
          ASSERT_LE(h.payload_length, max);
        }
        ASSERT_LT(h.payload_length, 1ull << 63);
        // The declared length matches the length field's form.
        const std::uint8_t l7 = b[1] & 0x7F;
        if (l7 < 126) ASSERT_EQ(h.payload_length, l7);
        if (l7 == 126) ASSERT_TRUE(h.payload_length >= 126 && h.payload_length <= 0xFFFF);
        if (l7 == 127) ASSERT_GT(h.payload_length, 0xFFFFu);
        // header_length + payload_length does not overflow.
        ASSERT_GE(h.header_length + h.payload_length, h.payload_length);
        break;
      }
      case ws::ParseStatus::kNeedMore:
        ++need_more;
        ASSERT_LT(n, 14u);
        break;
      case ws::ParseStatus::kError:
        ++error;
        ASSERT_TRUE(r.close_code == ws::kProtocolError || r.close_code == ws::kMessageTooBig) << r.close_code;
        ASSERT_NE(r.reason, nullptr);
        break;
    }
  }
  // The loop really exercised every outcome.
  EXPECT_GT(ok, 100);
  EXPECT_GT(need_more, 100);
  EXPECT_GT(error, 100);
}

TEST(Fuzz, Utf8AgainstReferenceDecoder) {
  // A straightforward reference validator (code point by code point) to compare against.
  auto reference = [](const std::string& s) {
    std::size_t i = 0;
    while (i < s.size()) {
      const auto c = static_cast<std::uint8_t>(s[i]);
      std::uint32_t cp;
      std::size_t len;
      if (c < 0x80) { cp = c; len = 1; }
      else if ((c & 0xE0) == 0xC0) { cp = c & 0x1F; len = 2; }
      else if ((c & 0xF0) == 0xE0) { cp = c & 0x0F; len = 3; }
      else if ((c & 0xF8) == 0xF0) { cp = c & 0x07; len = 4; }
      else return false;
      if (i + len > s.size()) return false;
      for (std::size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<std::uint8_t>(s[i + k]);
        if ((cc & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (cc & 0x3F);
      }
      const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
      i += len;
    }
    return true;
  };
  std::mt19937_64 rng(42);
  int valid = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    const std::size_t n = rng() % 40;
    std::string s(n, '\0');
    for (auto& c : s) {
      // Mostly ASCII with some high bytes, so that valid multi-byte strings occur too.
      const auto r = rng() % 16;
      if (r < 9) c = static_cast<char>('a' + rng() % 26);
      else if (r < 12) c = static_cast<char>(0x80 | (rng() % 64));
      else c = static_cast<char>(0xC0 | (rng() % 64));
    }
    // Sometimes splice in valid encodings of random code points.
    if (iter % 4 == 0) {
      const std::uint32_t cp = static_cast<std::uint32_t>(rng() % 0x110000);
      if (cp < 0xD800 || cp > 0xDFFF) {
        std::string e;
        if (cp < 0x80) e.push_back(static_cast<char>(cp));
        else if (cp < 0x800) { e.push_back(static_cast<char>(0xC0 | (cp >> 6))); e.push_back(static_cast<char>(0x80 | (cp & 63))); }
        else if (cp < 0x10000) { e.push_back(static_cast<char>(0xE0 | (cp >> 12))); e.push_back(static_cast<char>(0x80 | ((cp >> 6) & 63))); e.push_back(static_cast<char>(0x80 | (cp & 63))); }
        else { e.push_back(static_cast<char>(0xF0 | (cp >> 18))); e.push_back(static_cast<char>(0x80 | ((cp >> 12) & 63))); e.push_back(static_cast<char>(0x80 | ((cp >> 6) & 63))); e.push_back(static_cast<char>(0x80 | (cp & 63))); }
        s = std::string(rng() % 10, 'x') + e + std::string(rng() % 10, 'y');
      }
    }
    const bool expect = reference(s);
    valid += expect;
    ASSERT_EQ(ws::is_valid_utf8(s), expect) << "iteration " << iter << ": "
                                            << hex(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  }
  EXPECT_GT(valid, 1000);
}
