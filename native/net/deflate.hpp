// permessage-deflate (RFC 7692) for the server side: negotiation from a client's
// Sec-WebSocket-Extensions offer, raw-DEFLATE compression and decompression of whole messages
// (zlib), and the per-thread workspace the WebSocket connections share. No Asio and no I/O, so
// the codec is unit-tested and fuzzed on its own; zlib.h stays inside deflate.cpp.
//
// Memory, the design rule: a connection that did not negotiate the extension has no zlib state
// at all (two bytes of flags in WsConnection's padding). One that did, in the default mode (no
// context takeover in either direction), has none either: compression and decompression use
// zlib streams owned by its I/O thread and reset after each message. Only the opt-in context
// takeover modes keep zlib streams per connection, made on first use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/ws_codec.hpp"
#include "sidewire/engine.hpp"

namespace sidewire::ws {

// The server's policy (Socket.IO's perMessageDeflate option, ws's parameter names).
struct DeflateOptions {
  bool enabled = false;
  std::uint32_t threshold = 1024;  // messages whose payload is smaller go out uncompressed
  int level = -1;                  // zlib: -1 (Z_DEFAULT_COMPRESSION, 6) or 0..9
  int mem_level = 8;               // zlib: 1..9
  int strategy = 0;                // zlib: Z_DEFAULT_STRATEGY .. Z_FIXED
  // true (sidewire's default): every response carries server_no_context_takeover, and a
  // broadcast is compressed once for all its compressed recipients (see DeflateWorkspace).
  // false: context takeover unless the client asks otherwise, a zlib stream per connection.
  bool server_no_context_takeover = true;
  // true (sidewire's default): every response asks client_no_context_takeover (RFC 7692 7.1.1.2
  // lets a server ask it), so incoming messages are inflated with the thread's stream.
  bool client_no_context_takeover = true;
  int server_max_window_bits = 15;  // 9..15: the window the server compresses with, at most
  int client_max_window_bits = 0;   // 0: not limited; 8..15: asked of clients that allow it
};

// What one connection negotiated.
struct DeflateParams {
  bool server_no_context_takeover = true;
  bool client_no_context_takeover = true;
  std::uint8_t server_max_window_bits = 15;  // the window this server compresses with (9..15)
  bool server_window_in_response = false;    // the response names server_max_window_bits
  std::uint8_t client_max_window_bits = 0;   // in the response when nonzero
};

// One element of a Sec-WebSocket-Extensions list: a name and its parameters (value empty and
// has_value false for a parameter without '=').
struct ExtensionOffer {
  struct Param {
    std::string name;
    std::string value;
    bool has_value = false;
  };
  std::string name;
  std::vector<Param> params;
};

// Parses a Sec-WebSocket-Extensions value (RFC 6455 9.1: comma-separated extensions, each with
// ';'-separated parameters whose values are tokens or quoted strings). Appends to `out`;
// returns false on a syntax error (then `out` holds what came before it).
bool parse_extensions(std::string_view value, std::vector<ExtensionOffer>& out);

// The first permessage-deflate offer of `offers` this server can accept (RFC 7692 7: an offer
// with an unknown, repeated or invalid parameter, or one asking what the options refuse, is
// declined and the next one considered). nullopt: none, and the connection goes on without
// compression. `why`, when given, says why the last offer was declined.
std::optional<DeflateParams> negotiate_deflate(const std::vector<ExtensionOffer>& offers,
                                               const DeflateOptions& options, std::string* why = nullptr);
// The same from the request's Sec-WebSocket-Extensions header fields (all of them, in order;
// a field that does not parse is ignored).
std::optional<DeflateParams> negotiate_deflate(const UpgradeRequest& request, const DeflateOptions& options,
                                               std::string* why = nullptr);
// The value of the response's Sec-WebSocket-Extensions header for what was negotiated.
std::string deflate_response(const DeflateParams& params);

// A raw-DEFLATE compressor for whole messages (RFC 7692 7.2.1).
class Deflater {
 public:
  Deflater(int level, int window_bits, int mem_level, int strategy);  // throws std::runtime_error
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  // Appends `message` compressed (sync flush, the trailing 00 00 FF FF removed) to `out`.
  // Without `keep_context` the next message starts from an empty window. Throws on a zlib error.
  void compress(std::string_view message, std::string& out, bool keep_context);

  bool same_settings(int level, int window_bits, int mem_level, int strategy) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A raw-DEFLATE decompressor for whole messages, with a bound on what it produces.
class Inflater {
 public:
  explicit Inflater(int window_bits = 15);  // throws std::runtime_error
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  enum class Status { kOk, kTooBig, kCorrupt };
  // Inflates one compressed message (the 00 00 FF FF tail is added here) into `out`, which is
  // replaced. Stops with kTooBig as soon as the output passes `max` bytes: `out` never holds
  // more than max + 1 bytes, whatever the input (a decompression bomb costs a bounded buffer).
  // After kTooBig or kCorrupt, and without `keep_context`, the stream starts afresh.
  Status decompress(std::string_view compressed, std::uint64_t max, std::string& out, bool keep_context);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Messages larger than this are never compressed (zlib counts in 32 bits).
inline constexpr std::size_t kMaxDeflatedMessage = std::size_t{1} << 30;

// The compressed form of a whole data frame made by encode_frame: the same opcode and FIN,
// RSV1 set, the payload compressed with `deflater`.
std::string deflate_frame(const std::string& frame, Deflater& deflater, bool keep_context);

// What one thread keeps for permessage-deflate, made the first time it compresses or inflates:
//   - one Deflater per window size and one Inflater, reset after every message, for
//     connections without context takeover (the default);
//   - the compressed twins of the frames sent since the last flush pass, so that a broadcast
//     is compressed once per I/O thread however many compressed recipients it has;
//   - the zlib streams of connections that use context takeover, by connection id.
//
// Why compress once per broadcast (no context takeover) by default, rather than once per
// recipient with context takeover (what ws, and so socket.io, does): with context takeover each
// recipient's stream depends on everything that recipient was sent, so a broadcast must be
// deflated once per recipient, and every connection keeps a deflate stream (about 256 KiB at
// memLevel 8 and a 15-bit window). Without it, the compressed frame is the same for every
// recipient: deflated once per I/O thread and shared like the plain frame. bench/compression.mjs
// (bench/COMPRESSION.md), 200 clients receiving 300 different ~2.8 KB tickets: context
// takeover puts 26 % of the uncompressed bytes on the wire (the previous tickets' keys and words
// are in its window) against 40 % for the shared frame, but costs about 156 µs of server CPU per
// delivery against 5.6 µs (5.7 µs uncompressed: the smaller frames are cheaper to write) and
// ~340 KiB of RSS per connection against nothing. For fan-out, sidewire's case, the shared frame
// wins; context takeover stays available (serverNoContextTakeover: false) for apps that send
// streams of similar messages to few clients.
class DeflateWorkspace {
 public:
  static DeflateWorkspace& get();        // this thread's, made on first use
  static DeflateWorkspace* existing();   // this thread's if it has one, else nullptr

  // The frame to send to a recipient without context takeover whose window is `window_bits`:
  // its compressed twin (made once per flush pass), or `frame` itself when compressing does not
  // make it smaller.
  SharedFrame shared_twin(const SharedFrame& frame, int window_bits, const DeflateOptions& options);
  // The frame compressed with connection `id`'s own stream (context takeover).
  SharedFrame with_context(ClientId id, const std::string& frame, int window_bits, const DeflateOptions& options);

  // The inflater for a message: the thread's (reset after each message) or connection `id`'s.
  Inflater& shared_inflater();
  Inflater& context_inflater(ClientId id, int window_bits);

  // The twins are kept only until the next flush pass (the end of the loop turn that made them).
  void end_turn() {
    if (twin_count_) drop_twins();
  }
  // A connection with context takeover is gone.
  void forget(ClientId id);

  std::size_t contexts() const { return contexts_.size(); }

 private:
  struct Twin {
    SharedFrame plain;
    SharedFrame sent;
    int window_bits = 0;
  };
  struct Context {
    std::unique_ptr<Deflater> deflater;
    std::unique_ptr<Inflater> inflater;
  };
  Deflater& shared_deflater(int window_bits, const DeflateOptions& options);
  void drop_twins();

  std::unique_ptr<Deflater> deflaters_[16];
  std::unique_ptr<Inflater> inflater_;
  static constexpr std::size_t kTwins = 8;
  Twin twins_[kTwins];
  std::size_t twin_count_ = 0;
  std::size_t twin_next_ = 0;
  std::unordered_map<ClientId, Context> contexts_;
};

}  // namespace sidewire::ws
