// Engine.IO v4 polling payloads (native/engineio/packet.*): the body of every polling POST.
//
// Input: a POST body. Checked: decode_payload's packets are well-formed (known types, text data
// without a record separator, one packet per \x1e-separated item); written back with
// append_to_payload they decode to the same packets, and to the same body when the base64 in it
// was canonical; a body that fails to decode still leaves the packets before the bad one.
#include <string>
#include <vector>

#include "engineio/packet.hpp"
#include "fuzz_check.hpp"
#include "net/ws_codec.hpp"

namespace eio = sidewire::eio;

namespace {

bool same(const std::vector<eio::Packet>& a, const std::vector<eio::Packet>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].type != b[i].type || a[i].binary != b[i].binary || a[i].data != b[i].data) return false;
  }
  return true;
}

std::string encode(const std::vector<eio::Packet>& packets) {
  std::string body;
  for (const auto& p : packets) {
    if (p.binary) {
      eio::append_to_payload(body, p.data, true);
    } else {
      eio::append_to_payload(body, std::string(1, p.type) + p.data, false);
    }
  }
  return body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body = fuzz::as_text(data, size);
  std::vector<eio::Packet> packets;
  const bool ok = eio::decode_payload(body, packets);

  std::size_t items = 1;
  for (char c : body) items += c == eio::kRecordSeparator;
  if (ok) {
    FUZZ_CHECK(!body.empty());
    FUZZ_CHECK(packets.size() == items);
  } else {
    FUZZ_CHECK(packets.size() < items);
  }

  bool canonical = true;
  std::size_t start = 0;
  for (const auto& p : packets) {
    const std::size_t end = std::min(body.find(eio::kRecordSeparator, start), body.size());
    const std::string_view item = body.substr(start, end - start);
    if (p.binary) {
      FUZZ_CHECK(p.type == eio::kMessage && item[0] == 'b');
      const std::string again =
          sidewire::ws::base64_encode(reinterpret_cast<const std::uint8_t*>(p.data.data()), p.data.size());
      canonical = canonical && again == item.substr(1);
    } else {
      FUZZ_CHECK(eio::is_valid_type(p.type) && p.type == item[0]);
      FUZZ_CHECK(p.data == item.substr(1));
      FUZZ_CHECK(p.data.find(eio::kRecordSeparator) == std::string::npos);
    }
    start = end + 1;
  }

  if (!packets.empty()) {
    // What decoded (all of it, or what came before the bad item) goes back out and comes back.
    const std::string again = encode(packets);
    std::vector<eio::Packet> back;
    FUZZ_CHECK(eio::decode_payload(again, back));
    FUZZ_CHECK(same(back, packets));
    if (ok && canonical) FUZZ_CHECK(again == body);
  }
  return 0;
}
