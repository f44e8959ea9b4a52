// RFC 6455 framing for the server side: parsing client frames, encoding server frames,
// UTF-8 validation and the opening-handshake key. Pure functions, no I/O, so the parsers
// can be unit-tested and fuzzed on their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sidewire::ws {

enum Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes the engine sends (RFC 6455 section 7.4.1).
enum CloseCode : std::uint16_t {
  kNormal = 1000,
  kGoingAway = 1001,
  kProtocolError = 1002,
  kNoStatus = 1005,      // never sent on the wire, reported when a close frame had no code
  kAbnormal = 1006,      // never sent on the wire, reported when the TCP connection just ended
  kInvalidPayload = 1007,
  kPolicyViolation = 1008,
  kMessageTooBig = 1009,
  kInternalError = 1011,
};

struct FrameHeader {
  bool fin = false;
  bool rsv1 = false;  // permessage-deflate: the message is compressed (first frame only)
  std::uint8_t opcode = 0;
  bool masked = false;
  std::uint8_t mask[4] = {0, 0, 0, 0};
  std::uint64_t payload_length = 0;
  std::size_t header_length = 0;
};

enum class ParseStatus { kNeedMore, kOk, kError };

struct ParseResult {
  ParseStatus status;
  std::uint16_t close_code = 0;  // set when status == kError
  const char* reason = "";       // static string, set when status == kError
};

// Parses the header of a frame sent by a client. Enforces what a server must: frames are masked,
// no RSV bits (RSV1 only when permessage-deflate was negotiated, `rsv1_allowed`, and then only on
// the first frame of a data message), known opcodes, control frames short and unfragmented,
// 64-bit lengths with the top bit clear, and `max_payload` for data frames.
ParseResult parse_client_frame_header(const std::uint8_t* data, std::size_t size,
                                      std::uint64_t max_payload, FrameHeader& out, bool rsv1_allowed = false);

// XORs `size` bytes in place with the 4-byte mask, starting at mask offset `offset`.
void unmask(std::uint8_t* data, std::size_t size, const std::uint8_t mask[4], std::size_t offset = 0);

// A complete unmasked server frame (header + payload) as one contiguous string, ready to be
// queued on any number of connections.
std::string encode_frame(std::uint8_t opcode, std::string_view payload, bool fin = true);
std::string encode_close_frame(std::uint16_t code, std::string_view reason);

// Shared immutable frame bytes: a broadcast is encoded once and every recipient's queue holds a
// reference to the same bytes.
using SharedFrame = std::shared_ptr<const std::string>;
SharedFrame make_shared_frame(std::uint8_t opcode, std::string_view payload);

// The payload of a frame made by encode_frame, and whether it is binary.
std::string_view frame_payload(const std::string& frame, bool* binary = nullptr);

bool is_valid_utf8(const std::uint8_t* data, std::size_t size);
inline bool is_valid_utf8(std::string_view s) {
  return is_valid_utf8(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

// A close code a peer may legally put on the wire.
bool is_valid_close_code(std::uint16_t code);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key.
std::string accept_key(std::string_view client_key);

std::string base64_encode(const std::uint8_t* data, std::size_t size);
// Decodes standard base64 (with padding). Returns false on malformed input.
bool base64_decode(std::string_view in, std::string& out);
void sha1(const std::uint8_t* data, std::size_t size, std::uint8_t digest[20]);

}  // namespace sidewire::ws
