#include "net/ws_codec.hpp"

#include <cstring>

namespace sidewire::ws {

ParseResult parse_client_frame_header(const std::uint8_t* p, std::size_t n, std::uint64_t max_payload,
                                      FrameHeader& h, bool rsv1_allowed) {
  if (n < 2) return {ParseStatus::kNeedMore};
  const std::uint8_t b0 = p[0];
  const std::uint8_t b1 = p[1];
  h.fin = (b0 & 0x80) != 0;
  h.opcode = b0 & 0x0F;
  h.masked = (b1 & 0x80) != 0;
  h.rsv1 = (b0 & 0x40) != 0;
  if ((b0 & 0x30) || (h.rsv1 && !rsv1_allowed)) return {ParseStatus::kError, kProtocolError, "reserved bits set"};
  const bool control = (h.opcode & 0x08) != 0;
  switch (h.opcode) {
    case kContinuation: case kText: case kBinary: case kClose: case kPing: case kPong: break;
    default: return {ParseStatus::kError, kProtocolError, "unknown opcode"};
  }
  if (h.rsv1 && (control || h.opcode == kContinuation)) {
    return {ParseStatus::kError, kProtocolError, "RSV1 set on a control or continuation frame"};
  }
  if (!h.masked) return {ParseStatus::kError, kProtocolError, "client frame not masked"};
  std::uint64_t len = b1 & 0x7F;
  std::size_t pos = 2;
  if (control && (!h.fin || len > 125)) {
    return {ParseStatus::kError, kProtocolError, "invalid control frame"};
  }
  if (len == 126) {
    if (n < pos + 2) return {ParseStatus::kNeedMore};
    len = (std::uint64_t{p[2]} << 8) | p[3];
    pos += 2;
    if (len < 126) return {ParseStatus::kError, kProtocolError, "non-minimal length"};
  } else if (len == 127) {
    if (n < pos + 8) return {ParseStatus::kNeedMore};
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
    pos += 8;
    if (len >> 63) return {ParseStatus::kError, kProtocolError, "length has the top bit set"};
    if (len <= 0xFFFF) return {ParseStatus::kError, kProtocolError, "non-minimal length"};
  }
  if (!control && len > max_payload) {
    return {ParseStatus::kError, kMessageTooBig, "message too big"};
  }
  if (n < pos + 4) return {ParseStatus::kNeedMore};
  std::memcpy(h.mask, p + pos, 4);
  pos += 4;
  h.payload_length = len;
  h.header_length = pos;
  return {ParseStatus::kOk};
}

void unmask(std::uint8_t* data, std::size_t size, const std::uint8_t mask[4], std::size_t offset) {
  std::size_t i = 0;
  // Word-at-a-time once the mask is rotated to line up with `data`.
  std::uint8_t m[8];
  for (int k = 0; k < 8; ++k) m[k] = mask[(offset + k) & 3];
  std::uint64_t m64;
  std::memcpy(&m64, m, 8);
  for (; i + 8 <= size; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, data + i, 8);
    w ^= m64;
    std::memcpy(data + i, &w, 8);
  }
  for (; i < size; ++i) data[i] ^= mask[(offset + i) & 3];
}

static std::size_t header_size(std::size_t len) { return len < 126 ? 2 : (len <= 0xFFFF ? 4 : 10); }

static void write_header(std::string& out, std::uint8_t opcode, std::size_t len, bool fin) {
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  if (len < 126) {
    out.push_back(static_cast<char>(len));
  } else if (len <= 0xFFFF) {
    out.push_back(static_cast<char>(126));
    out.push_back(static_cast<char>((len >> 8) & 0xFF));
    out.push_back(static_cast<char>(len & 0xFF));
  } else {
    out.push_back(static_cast<char>(127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((std::uint64_t{len} >> (8 * i)) & 0xFF));
  }
}

std::string encode_frame(std::uint8_t opcode, std::string_view payload, bool fin) {
  std::string out;
  out.reserve(header_size(payload.size()) + payload.size());
  write_header(out, opcode, payload.size(), fin);
  out.append(payload);
  return out;
}

std::string encode_close_frame(std::uint16_t code, std::string_view reason) {
  if (reason.size() > 123) {
    // Cut on a character boundary: a split UTF-8 sequence would make the frame invalid.
    std::size_t cut = 123;
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason);
  return encode_frame(kClose, payload);
}

std::string_view frame_payload(const std::string& frame, bool* binary) {
  if (binary) *binary = (static_cast<std::uint8_t>(frame[0]) & 0x0F) == kBinary;
  const std::uint8_t len7 = static_cast<std::uint8_t>(frame[1]) & 0x7F;
  const std::size_t header = len7 < 126 ? 2 : (len7 == 126 ? 4 : 10);
  return std::string_view(frame).substr(header);
}

SharedFrame make_shared_frame(std::uint8_t opcode, std::string_view payload) {
  return std::make_shared<const std::string>(encode_frame(opcode, payload));
}

bool is_valid_utf8(const std::uint8_t* s, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    // ASCII fast path, eight bytes at a time.
    if (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, s + i, 8);
      if ((w & 0x8080808080808080ULL) == 0) { i += 8; continue; }
    }
    const std::uint8_t c = s[i];
    if (c < 0x80) { ++i; continue; }
    std::size_t len;
    std::uint8_t lo = 0x80, hi = 0xBF;  // bounds of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;        // overlong
      else if (c == 0xED) hi = 0x9F;   // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;        // overlong
      else if (c == 0xF4) hi = 0x8F;   // above U+10FFFF
    } else {
      return false;
    }
    if (i + len > n) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

bool is_valid_close_code(std::uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  switch (code) {
    case 1000: case 1001: case 1002: case 1003: case 1007: case 1008: case 1009: case 1010: case 1011:
      return true;
    default:
      return false;
  }
}

// SHA-1 (FIPS 180-4). Used only for the handshake's accept key.
void sha1(const std::uint8_t* data, std::size_t size, std::uint8_t digest[20]) {
  std::uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  auto rol = [](std::uint32_t x, int k) { return (x << k) | (x >> (32 - k)); };
  auto block = [&](const std::uint8_t* b) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      w[i] = (std::uint32_t{b[4 * i]} << 24) | (std::uint32_t{b[4 * i + 1]} << 16) |
             (std::uint32_t{b[4 * i + 2]} << 8) | std::uint32_t{b[4 * i + 3]};
    }
    for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f, k;
      if (i < 20) { f = (bb & c) | (~bb & d); k = 0x5A827999; }
      else if (i < 40) { f = bb ^ c ^ d; k = 0x6ED9EBA1; }
      else if (i < 60) { f = (bb & c) | (bb & d) | (c & d); k = 0x8F1BBCDC; }
      else { f = bb ^ c ^ d; k = 0xCA62C1D6; }
      const std::uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d; d = c; c = rol(bb, 30); bb = a; a = t;
    }
    h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e;
  };
  std::size_t full = size / 64;
  for (std::size_t i = 0; i < full; ++i) block(data + 64 * i);
  std::uint8_t tail[128] = {0};
  const std::size_t rest = size - full * 64;
  std::memcpy(tail, data + full * 64, rest);
  tail[rest] = 0x80;
  const std::size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
  const std::uint64_t bits = std::uint64_t{size} * 8;
  for (int i = 0; i < 8; ++i) tail[tail_len - 1 - i] = static_cast<std::uint8_t>(bits >> (8 * i));
  block(tail);
  if (tail_len == 128) block(tail + 64);
  for (int i = 0; i < 5; ++i) {
    digest[4 * i] = static_cast<std::uint8_t>(h[i] >> 24);
    digest[4 * i + 1] = static_cast<std::uint8_t>(h[i] >> 16);
    digest[4 * i + 2] = static_cast<std::uint8_t>(h[i] >> 8);
    digest[4 * i + 3] = static_cast<std::uint8_t>(h[i]);
  }
}

static constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::uint8_t* d, std::size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = (std::uint32_t{d[i]} << 16) | (std::uint32_t{d[i + 1]} << 8) | d[i + 2];
    out.push_back(kBase64[(v >> 18) & 63]);
    out.push_back(kBase64[(v >> 12) & 63]);
    out.push_back(kBase64[(v >> 6) & 63]);
    out.push_back(kBase64[v & 63]);
  }
  if (i < n) {
    std::uint32_t v = std::uint32_t{d[i]} << 16;
    if (i + 1 < n) v |= std::uint32_t{d[i + 1]} << 8;
    out.push_back(kBase64[(v >> 18) & 63]);
    out.push_back(kBase64[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? kBase64[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

bool base64_decode(std::string_view in, std::string& out) {
  if (in.size() % 4 != 0) return false;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out.clear();
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      if (c == '=') {
        if (i + 4 != in.size() || k < 2) return false;
        v[k] = 0;
        ++pad;
      } else {
        if (pad) return false;
        v[k] = value(c);
        if (v[k] < 0) return false;
      }
    }
    const std::uint32_t w = (std::uint32_t(v[0]) << 18) | (std::uint32_t(v[1]) << 12) |
                            (std::uint32_t(v[2]) << 6) | std::uint32_t(v[3]);
    out.push_back(static_cast<char>((w >> 16) & 0xFF));
    if (pad < 2) out.push_back(static_cast<char>((w >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(w & 0xFF));
  }
  return true;
}

std::string accept_key(std::string_view client_key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string s;
  s.reserve(client_key.size() + kGuid.size());
  s.append(client_key);
  s.append(kGuid);
  std::uint8_t digest[20];
  sha1(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), digest);
  return base64_encode(digest, 20);
}

}  // namespace sidewire::ws
