// RFC 6455 framing (native/net/ws_codec.*) on arbitrary client bytes.
//
// Input: byte 0 picks max_payload (low nibble) and how the stream is cut into reads (high
// nibble); the rest is what a client sent after the 101. Checked:
//   - parse_client_frame_header: an accepted header is exactly the bytes it was parsed from
//     (rebuilt from the fields), every rule a server must enforce holds, and any shorter prefix
//     of an accepted header asks for more bytes;
//   - unmask against a byte-at-a-time reference, at every mask offset and split point;
//   - a frame stream processed as WsConnection::process / handle_frame do (reassembly, UTF-8,
//     close frames) gives the same messages however the stream is cut into reads;
//   - is_valid_utf8 against a reference decoder, at several alignments;
//   - base64_decode against a reference grammar, and encode/decode round trips;
//   - encode_frame / frame_payload / encode_close_frame on what was received.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "net/ws_codec.hpp"

namespace ws = sidewire::ws;

namespace {

constexpr std::uint64_t kMaxPayloads[16] = {
    0, 1, 2, 125, 126, 127, 200, 65535, 65536, 70000, 1u << 20, (1ull << 53), (1ull << 63) - 1, (1ull << 63), 16, 1000,
};

// ----------------------------------------------------------------------------- references

bool ref_utf8(const std::uint8_t* s, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint32_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

int b64_value(char c) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::size_t p = kAlphabet.find(c);
  return p == std::string_view::npos ? -1 : static_cast<int>(p);
}

// Standard base64 with padding: groups of four, '=' only as the last one or two characters.
bool ref_base64_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 != 0) return false;
  std::size_t pad = 0;
  while (pad < 2 && pad < in.size() && in[in.size() - 1 - pad] == '=') ++pad;
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < in.size() - pad; ++i) {
    const int v = b64_value(in[i]);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

// ----------------------------------------------------------------------------- frame stream

struct Received {
  char kind;  // 'M' message, 'P' ping, 'O' pong, 'C' close, 'E' error (ends the stream)
  std::uint8_t opcode = 0;
  std::uint16_t code = 0;
  std::string data;
  bool operator==(const Received& o) const {
    return kind == o.kind && opcode == o.opcode && code == o.code && data == o.data;
  }
};

// WsConnection's receive side without the socket: the same loop over headers, the same buffer
// handling between reads (a partial frame waits in `in_`), the same checks per frame.
class Receiver {
 public:
  explicit Receiver(std::uint64_t max_payload) : max_payload_(max_payload) {}

  // One read's worth of bytes, as on_readable gets them (the buffer is the thread's: unmasked
  // in place, never kept).
  void read(std::uint8_t* buf, std::size_t n) {
    if (stopped_) return;
    if (in_.empty()) {
      const std::size_t used = process(buf, n);
      if (used == npos) return;
      if (used < n) in_.assign(reinterpret_cast<char*>(buf) + used, n - used);
    } else {
      in_.append(reinterpret_cast<char*>(buf), n);
      const std::size_t used = process(reinterpret_cast<std::uint8_t*>(in_.data()), in_.size());
      if (used == npos) return;
      in_.erase(0, used);
    }
  }

  const std::vector<Received>& received() const { return out_; }
  std::size_t pending() const { return in_.size(); }
  bool stopped() const { return stopped_; }

 private:
  static constexpr std::size_t npos = std::string::npos;

  std::size_t process(std::uint8_t* data, std::size_t size) {
    std::size_t pos = 0;
    while (pos < size) {
      ws::FrameHeader h;
      const ws::ParseResult r = ws::parse_client_frame_header(data + pos, size - pos, max_payload_, h);
      if (r.status == ws::ParseStatus::kNeedMore) break;
      if (r.status == ws::ParseStatus::kError) {
        FUZZ_CHECK(r.close_code == ws::kProtocolError || r.close_code == ws::kMessageTooBig);
        FUZZ_CHECK(r.reason && *r.reason);
        return fail(r.close_code);
      }
      const std::uint64_t frame_size = h.header_length + h.payload_length;
      FUZZ_CHECK(frame_size >= h.header_length);  // no wrap-around
      if (size - pos < frame_size) break;
      if (!frame(h, data + pos + h.header_length)) return npos;
      pos += frame_size;
    }
    // What waits for the next read is at most one header and one payload that passed the checks.
    const std::uint64_t bound = max_payload_ > 125 ? max_payload_ : 125;
    FUZZ_CHECK(size - pos < 14 || size - pos - 14 <= bound);
    return pos;
  }

  std::size_t fail(std::uint16_t code) {
    out_.push_back({'E', 0, code, {}});
    stopped_ = true;
    return npos;
  }

  bool frame(const ws::FrameHeader& h, std::uint8_t* payload) {
    const std::size_t len = static_cast<std::size_t>(h.payload_length);
    ws::unmask(payload, len, h.mask);
    const std::string_view data(reinterpret_cast<const char*>(payload), len);
    switch (h.opcode) {
      case ws::kText:
      case ws::kBinary:
        if (msg_opcode_ != 0) return fail(ws::kProtocolError), false;
        if (!h.fin) {
          msg_opcode_ = h.opcode;
          msg_.assign(data);
          return true;
        }
        return message(h.opcode, std::string(data));
      case ws::kContinuation: {
        if (msg_opcode_ == 0) return fail(ws::kProtocolError), false;
        if (msg_.size() + len > max_payload_) return fail(ws::kMessageTooBig), false;
        msg_.append(data);
        if (!h.fin) return true;
        const std::uint8_t opcode = msg_opcode_;
        msg_opcode_ = 0;
        std::string m;
        m.swap(msg_);
        return message(opcode, std::move(m));
      }
      case ws::kPing:
        FUZZ_CHECK(len <= 125);
        out_.push_back({'P', h.opcode, 0, std::string(data)});
        return true;
      case ws::kPong:
        FUZZ_CHECK(len <= 125);
        out_.push_back({'O', h.opcode, 0, std::string(data)});
        return true;
      case ws::kClose: {
        FUZZ_CHECK(len <= 125);
        std::uint16_t code = ws::kNoStatus;
        if (len == 1) return fail(ws::kProtocolError), false;
        if (len >= 2) {
          code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
          if (!ws::is_valid_close_code(code)) return fail(ws::kProtocolError), false;
          if (!ws::is_valid_utf8(data.substr(2))) return fail(ws::kInvalidPayload), false;
        }
        out_.push_back({'C', h.opcode, code, std::string(data.substr(len >= 2 ? 2 : 0))});
        stopped_ = true;
        return false;
      }
      default:
        FUZZ_CHECK(!"parse_client_frame_header accepted an unknown opcode");
        return false;
    }
  }

  bool message(std::uint8_t opcode, std::string m) {
    if (opcode == ws::kText && !ws::is_valid_utf8(m)) return fail(ws::kInvalidPayload), false;
    FUZZ_CHECK(m.size() <= max_payload_);
    out_.push_back({'M', opcode, 0, std::move(m)});
    return true;
  }

  std::uint64_t max_payload_;
  std::string in_;
  std::string msg_;
  std::uint8_t msg_opcode_ = 0;
  bool stopped_ = false;
  std::vector<Received> out_;
};

// ----------------------------------------------------------------------------- checks

// The header as the parser understood it, written back out: must be the bytes it read.
void check_header(const std::uint8_t* p, std::size_t n, std::uint64_t max_payload) {
  ws::FrameHeader h;
  const ws::ParseResult r = ws::parse_client_frame_header(p, n, max_payload, h);
  if (r.status == ws::ParseStatus::kNeedMore) {
    FUZZ_CHECK(n < 14);
    return;
  }
  if (r.status == ws::ParseStatus::kError) {
    FUZZ_CHECK(r.close_code == ws::kProtocolError || r.close_code == ws::kMessageTooBig);
    // The error is in the bytes seen so far: more bytes never turn it into a frame.
    if (n < 14) {
      std::uint8_t longer[14] = {};
      std::memcpy(longer, p, n);
      ws::FrameHeader h2;
      FUZZ_CHECK(ws::parse_client_frame_header(longer, sizeof longer, max_payload, h2).status == ws::ParseStatus::kError);
    }
    return;
  }
  FUZZ_CHECK(h.masked);
  FUZZ_CHECK(h.header_length == 6 || h.header_length == 8 || h.header_length == 14);
  FUZZ_CHECK(h.header_length <= n);
  FUZZ_CHECK((p[0] & 0x70) == 0);
  FUZZ_CHECK(h.opcode <= 2 || (h.opcode >= 8 && h.opcode <= 10));
  const bool control = h.opcode >= 8;
  if (control) FUZZ_CHECK(h.fin && h.payload_length <= 125);
  if (!control) FUZZ_CHECK(h.payload_length <= max_payload);
  FUZZ_CHECK((h.payload_length >> 63) == 0);

  std::uint8_t rebuilt[14];
  std::size_t k = 0;
  rebuilt[k++] = static_cast<std::uint8_t>((h.fin ? 0x80 : 0) | h.opcode);
  if (h.payload_length < 126) {
    rebuilt[k++] = static_cast<std::uint8_t>(0x80 | h.payload_length);
  } else if (h.payload_length <= 0xFFFF) {
    rebuilt[k++] = 0x80 | 126;
    rebuilt[k++] = static_cast<std::uint8_t>(h.payload_length >> 8);
    rebuilt[k++] = static_cast<std::uint8_t>(h.payload_length);
  } else {
    rebuilt[k++] = 0x80 | 127;
    for (int i = 7; i >= 0; --i) rebuilt[k++] = static_cast<std::uint8_t>(h.payload_length >> (8 * i));
  }
  std::memcpy(rebuilt + k, h.mask, 4);
  k += 4;
  FUZZ_CHECK(k == h.header_length);
  FUZZ_CHECK(std::memcmp(rebuilt, p, k) == 0);

  // Every shorter prefix of an accepted header asks for more.
  for (std::size_t m = 0; m < h.header_length; ++m) {
    ws::FrameHeader hp;
    FUZZ_CHECK(ws::parse_client_frame_header(p, m, max_payload, hp).status == ws::ParseStatus::kNeedMore);
  }
}

void check_unmask(const std::uint8_t* p, std::size_t n) {
  if (n < 4) return;
  const std::uint8_t mask[4] = {p[0], p[1], p[2], p[3]};
  p += 4;
  n -= 4;
  if (n > 4096) n = 4096;
  const std::size_t split = n ? mask[0] % (n + 1) : 0;
  for (std::size_t offset = 0; offset < 4; ++offset) {
    std::vector<std::uint8_t> whole(p, p + n), pieces(p, p + n), ref(p, p + n);
    for (std::size_t i = 0; i < n; ++i) ref[i] ^= mask[(offset + i) & 3];
    ws::unmask(whole.data(), n, mask, offset);
    FUZZ_CHECK(whole == ref);
    ws::unmask(pieces.data(), split, mask, offset);
    ws::unmask(pieces.data() + split, n - split, mask, offset + split);
    FUZZ_CHECK(pieces == ref);
    ws::unmask(whole.data(), n, mask, offset);
    FUZZ_CHECK(std::equal(whole.begin(), whole.end(), p));
  }
}

void check_utf8(const std::uint8_t* p, std::size_t n) {
  for (std::size_t skip = 0; skip < 4 && skip <= n; ++skip) {
    const bool got = ws::is_valid_utf8(p + skip, n - skip);
    const bool want = ref_utf8(p + skip, n - skip);
    if (got != want) {
      std::fprintf(stderr, "is_valid_utf8 says %d, the reference %d (skip %zu)\n", got, want, skip);
      __builtin_trap();
    }
  }
}

void check_base64(const std::uint8_t* p, std::size_t n) {
  const std::string_view text = fuzz::as_text(p, n);
  std::string got, want;
  const bool ok = ws::base64_decode(text, got);
  const bool ref_ok = ref_base64_decode(text, want);
  FUZZ_CHECK(ok == ref_ok);
  if (ok) {
    FUZZ_CHECK(got == want);
    const std::string again = ws::base64_encode(reinterpret_cast<const std::uint8_t*>(got.data()), got.size());
    FUZZ_CHECK(again.size() == text.size());
    std::string back;
    FUZZ_CHECK(ws::base64_decode(again, back) && back == got);
  }
  // Any bytes survive encode then decode.
  const std::string enc = ws::base64_encode(p, n);
  FUZZ_CHECK(enc.size() == (n + 2) / 3 * 4);
  std::string dec;
  FUZZ_CHECK(ws::base64_decode(enc, dec) && dec == text);
}

void check_encoders(const Received& r, std::uint64_t max_payload) {
  if (r.kind == 'M' || r.kind == 'P' || r.kind == 'O') {
    const std::string frame = ws::encode_frame(r.opcode, r.data);
    bool binary = false;
    FUZZ_CHECK(ws::frame_payload(frame, &binary) == r.data);
    FUZZ_CHECK(binary == (r.opcode == ws::kBinary));
    // The same frame as a client would send it parses back to the same header.
    std::string client = frame.substr(0, frame.size() - r.data.size());
    client[1] = static_cast<char>(client[1] | 0x80);
    client.append("\0\0\0\0", 4);
    client.append(r.data);
    ws::FrameHeader h;
    const auto res = ws::parse_client_frame_header(reinterpret_cast<const std::uint8_t*>(client.data()), client.size(),
                                                   max_payload, h);
    FUZZ_CHECK(res.status == ws::ParseStatus::kOk);
    FUZZ_CHECK(h.payload_length == r.data.size() && h.header_length + r.data.size() == client.size());
  }
  if (r.kind == 'M' && r.opcode == ws::kText) {
    // A close reason cut to fit stays valid UTF-8 and is a prefix of what was given.
    const std::string close = ws::encode_close_frame(ws::kNormal, r.data);
    const std::string_view payload = ws::frame_payload(close);
    FUZZ_CHECK(payload.size() >= 2 && payload.size() <= 125);
    const std::string_view reason = payload.substr(2);
    FUZZ_CHECK(r.data.compare(0, reason.size(), reason) == 0);
    FUZZ_CHECK(ws::is_valid_utf8(reason));
    FUZZ_CHECK(r.data.size() <= 123 ? reason.size() == r.data.size() : reason.size() + 3 >= 123);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint64_t max_payload = kMaxPayloads[data[0] & 0x0F];
  const unsigned cut = data[0] >> 4;
  const std::uint8_t* p = data + 1;
  const std::size_t n = size - 1;

  check_header(p, n, max_payload);
  check_unmask(p, n);
  check_utf8(p, n);
  check_base64(p, n);

  // The stream in one read, then cut into reads: 1 byte each, or sizes drawn from the input.
  std::vector<std::uint8_t> whole(p, p + n);
  Receiver one(max_payload);
  one.read(whole.data(), whole.size());

  std::vector<std::uint8_t> copy(p, p + n);
  Receiver many(max_payload);
  fuzz::Rng rng(fuzz::hash(fuzz::as_text(data, size)));
  for (std::size_t pos = 0; pos < n;) {
    std::size_t len = cut == 0 ? 1 : 1 + rng.next() % (cut * 4);
    if (len > n - pos) len = n - pos;
    // A read lands in the shared read buffer: a fresh copy each time.
    std::vector<std::uint8_t> buf(copy.begin() + static_cast<std::ptrdiff_t>(pos),
                                  copy.begin() + static_cast<std::ptrdiff_t>(pos + len));
    many.read(buf.data(), buf.size());
    pos += len;
  }
  FUZZ_CHECK(one.received() == many.received());
  FUZZ_CHECK(one.stopped() == many.stopped());
  if (!one.stopped()) FUZZ_CHECK(one.pending() == many.pending());

  for (const Received& r : one.received()) check_encoders(r, max_payload);
  return 0;
}
