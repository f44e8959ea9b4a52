// permessage-deflate (native/net/deflate.*) on arbitrary client bytes: what a client may put in
// a compressed message, and in its Sec-WebSocket-Extensions offer.
//
// Input: byte 0 picks the size limit (low 3 bits), whether the inflater keeps its context (bit
// 3) and the compressor's settings (high bits); byte 1 where the rest is cut into two messages.
// Checked:
//   - Inflater::decompress against zlib used directly with an output buffer of limit + 1 bytes:
//     the same bytes when the reference fits the limit, kTooBig when it passes it (the output
//     never holds more than limit + 1 bytes), kCorrupt when zlib fails first; two messages in a
//     row with and without context takeover;
//   - Deflater::compress then decompress gives the input back, at every level / window /
//     memLevel / strategy, with and without context takeover, and zlib itself decodes it;
//   - parse_extensions / negotiate_deflate on the input as a header: what is accepted obeys
//     RFC 7692 (window sizes in range and no larger than offered), and the response, read back
//     as an offer, parses and negotiates to the same parameters.
#define ZLIB_CONST
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "net/deflate.hpp"

namespace ws = sidewire::ws;

namespace {

constexpr std::uint64_t kLimits[8] = {0, 1, 100, 1000, 4096, 65536, 1u << 20, 3u << 20};
constexpr unsigned char kTail[4] = {0x00, 0x00, 0xFF, 0xFF};

// zlib, directly: one message into a buffer of limit + 1 bytes. `status`: 0 ok, 1 too big,
// 2 corrupt.
struct RefResult {
  int status = 0;
  bool ended = false;  // a final block
  std::string out;
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  }
  return true;
}

RefResult ref_inflate(z_stream& z, std::string_view in, std::uint64_t limit) {
  RefResult r;
  std::string buf(static_cast<std::size_t>(limit) + 1, '\0');
  std::size_t produced = 0;
  bool ended = false;
  for (int part = 0; part < 2 && !ended && r.status == 0; ++part) {
    z.next_in = part == 0 ? reinterpret_cast<const Bytef*>(in.data()) : kTail;
    z.avail_in = part == 0 ? static_cast<uInt>(in.size()) : 4u;
    for (;;) {
      z.next_out = reinterpret_cast<Bytef*>(buf.data() + produced);
      z.avail_out = static_cast<uInt>(buf.size() - produced);
      const uInt before = z.avail_out;
      const int rc = inflate(&z, Z_SYNC_FLUSH);
      produced += before - z.avail_out;
      if (produced > limit) {
        r.status = 1;
        break;
      }
      if (rc == Z_STREAM_END) {
        ended = true;
        break;
      }
      if (rc == Z_BUF_ERROR) {
        if (z.avail_in == 0) break;
        r.status = 1;  // output full (limit + 1 bytes) with input left: too big
        break;
      }
      if (rc != Z_OK) {
        r.status = 2;
        break;
      }
      if (z.avail_in == 0 && z.avail_out != 0) break;
    }
  }
  if (r.status == 0) r.out.assign(buf.data(), produced);
  r.ended = ended;
  return r;
}

void check_inflate(std::string_view m1, std::string_view m2, std::uint64_t limit, bool keep) {
  ws::Inflater ours;
  z_stream z{};
  FUZZ_CHECK(inflateInit2(&z, -15) == Z_OK);
  for (const std::string_view m : {m1, m2}) {
    std::string out;
    const ws::Inflater::Status s = ours.decompress(m, limit, out, keep);
    FUZZ_CHECK(out.size() <= limit);
    FUZZ_CHECK(out.capacity() <= std::max<std::uint64_t>(limit + 1, 32));
    const RefResult ref = ref_inflate(z, m, limit);
    if (ref.status == 0) {
      FUZZ_CHECK(s == ws::Inflater::Status::kOk);
      FUZZ_CHECK(out == ref.out);
    } else if (ref.status == 1) {
      FUZZ_CHECK(s == ws::Inflater::Status::kTooBig);
    } else {
      FUZZ_CHECK(s == ws::Inflater::Status::kCorrupt);
    }
    if (ref.status != 0) break;  // the connection would have closed
    // Ours starts afresh without context, and after a final block.
    if (!keep || ref.ended) inflateReset(&z);
  }
  inflateEnd(&z);
}

void check_round_trip(std::string_view m1, std::string_view m2, std::uint8_t knobs) {
  const int level = static_cast<int>(knobs % 11) - 1;        // -1..9
  const int window = 9 + static_cast<int>((knobs >> 4) % 7);  // 9..15
  const int mem_level = 1 + static_cast<int>((knobs >> 2) % 9);
  const int strategy = static_cast<int>((knobs >> 5) % 5);
  const bool keep = (knobs & 1) != 0;
  ws::Deflater d(level, window, mem_level, strategy);
  ws::Inflater in;
  z_stream z{};
  FUZZ_CHECK(inflateInit2(&z, -15) == Z_OK);
  for (const std::string_view m : {m1, m2, m1}) {
    std::string compressed;
    d.compress(m, compressed, keep);
    std::string out;
    FUZZ_CHECK(in.decompress(compressed, m.size(), out, keep) == ws::Inflater::Status::kOk);
    FUZZ_CHECK(out == m);
    const RefResult ref = ref_inflate(z, compressed, m.size());
    FUZZ_CHECK(ref.status == 0 && ref.out == m);
    if (!keep) inflateReset(&z);
  }
  inflateEnd(&z);
}

void check_negotiation(std::string_view header, std::uint8_t knobs) {
  std::vector<ws::ExtensionOffer> offers;
  if (!ws::parse_extensions(header, offers)) return;
  ws::DeflateOptions o;
  o.server_no_context_takeover = (knobs & 1) != 0;
  o.client_no_context_takeover = (knobs & 2) != 0;
  o.server_max_window_bits = 8 + (knobs >> 2) % 8;
  o.client_max_window_bits = (knobs & 0x20) ? 8 + (knobs >> 6) : 0;
  const auto p = ws::negotiate_deflate(offers, o);
  if (!p) return;
  FUZZ_CHECK(p->server_max_window_bits >= 9 && p->server_max_window_bits <= 15);
  FUZZ_CHECK(p->server_max_window_bits <= std::max(9, o.server_max_window_bits));
  FUZZ_CHECK(p->client_max_window_bits == 0 || (p->client_max_window_bits >= 8 && p->client_max_window_bits <= 15));
  if (o.client_max_window_bits) FUZZ_CHECK(p->client_max_window_bits && p->client_max_window_bits <= o.client_max_window_bits);
  if (o.server_no_context_takeover) FUZZ_CHECK(p->server_no_context_takeover);
  if (o.client_no_context_takeover) FUZZ_CHECK(p->client_no_context_takeover);
  // The accepted offer: the first permessage-deflate one that negotiates on its own.
  const ws::ExtensionOffer* accepted = nullptr;
  for (const auto& e : offers) {
    if (ws::negotiate_deflate({e}, o)) {
      accepted = &e;
      break;
    }
  }
  FUZZ_CHECK(accepted != nullptr);
  bool client_bits_offered = false;
  for (const auto& param : accepted->params) {
    if (iequals(param.name, "server_max_window_bits")) {
      // Accepted, so 9..15: answered with that value or less.
      int s = 0;
      for (char c : param.value) s = s * 10 + (c - '0');
      FUZZ_CHECK(s >= 9 && s <= 15);
      FUZZ_CHECK(p->server_window_in_response && p->server_max_window_bits <= s);
    }
    client_bits_offered = client_bits_offered || iequals(param.name, "client_max_window_bits");
  }
  // client_max_window_bits only in answer to an offer that allows it (RFC 7692 7.1.2.2).
  if (!client_bits_offered) FUZZ_CHECK(p->client_max_window_bits == 0);
  const std::string response = ws::deflate_response(*p);
  std::vector<ws::ExtensionOffer> back;
  FUZZ_CHECK(ws::parse_extensions(response, back));
  FUZZ_CHECK(back.size() == 1 && back[0].name == "permessage-deflate");
  const auto again = ws::negotiate_deflate(back, o);
  FUZZ_CHECK(again);
  FUZZ_CHECK(again->server_no_context_takeover == p->server_no_context_takeover);
  FUZZ_CHECK(again->client_no_context_takeover == p->client_no_context_takeover);
  FUZZ_CHECK(again->server_max_window_bits == p->server_max_window_bits);
  FUZZ_CHECK(again->server_window_in_response == p->server_window_in_response);
  FUZZ_CHECK(again->client_max_window_bits == p->client_max_window_bits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t knobs = data[0];
  const std::uint64_t limit = kLimits[knobs & 7];
  const bool keep = (knobs & 8) != 0;
  const std::string_view rest = fuzz::as_text(data + 2, size - 2);
  const std::size_t cut = rest.empty() ? 0 : data[1] % (rest.size() + 1);
  const std::string_view m1 = rest.substr(0, cut), m2 = rest.substr(cut);
  check_inflate(m1, m2, limit, keep);
  check_round_trip(m1, m2, knobs);
  check_negotiation(rest, knobs);
  return 0;
}
