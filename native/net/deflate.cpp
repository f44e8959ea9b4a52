#include "net/deflate.hpp"

#define ZLIB_CONST
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <stdexcept>

namespace sidewire::ws {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// A token character (RFC 9110 5.6.2).
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A window size as RFC 7692 7.1.2 writes it: 8..15, decimal, no leading zero.
bool window_bits_value(std::string_view v, int& out) {
  if (v.empty() || v.size() > 2 || v[0] == '0') return false;
  int n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  if (n < 8 || n > 15) return false;
  out = n;
  return true;
}

constexpr unsigned char kTail[4] = {0x00, 0x00, 0xFF, 0xFF};

}  // namespace

// ---------------------------------------------------------------------------- negotiation

bool parse_extensions(std::string_view v, std::vector<ExtensionOffer>& out) {
  std::size_t i = 0;
  const std::size_t n = v.size();
  auto ows = [&] {
    while (i < n && (v[i] == ' ' || v[i] == '\t')) ++i;
  };
  auto token = [&](std::string& t) {
    const std::size_t start = i;
    while (i < n && is_tchar(v[i])) ++i;
    t.assign(v.substr(start, i - start));
    return i > start;
  };
  for (;;) {
    ows();
    if (i == n) return true;
    if (v[i] == ',') {  // an empty list element (RFC 9110 5.6.1)
      ++i;
      continue;
    }
    ExtensionOffer e;
    if (!token(e.name)) return false;
    ows();
    while (i < n && v[i] == ';') {
      ++i;
      ows();
      ExtensionOffer::Param p;
      if (!token(p.name)) return false;
      ows();
      if (i < n && v[i] == '=') {
        ++i;
        ows();
        p.has_value = true;
        if (i < n && v[i] == '"') {
          ++i;
          bool closed = false;
          while (i < n) {
            char c = v[i++];
            if (c == '"') {
              closed = true;
              break;
            }
            if (c == '\\') {
              if (i == n) return false;
              c = v[i++];
            }
            const auto u = static_cast<unsigned char>(c);
            if ((u < 0x20 && c != '\t') || u == 0x7F) return false;
            p.value.push_back(c);
          }
          if (!closed) return false;
        } else if (!token(p.value)) {
          return false;
        }
        ows();
      }
      e.params.push_back(std::move(p));
    }
    out.push_back(std::move(e));
    if (i == n) return true;
    if (v[i] != ',') return false;
    ++i;
  }
}

std::optional<DeflateParams> negotiate_deflate(const std::vector<ExtensionOffer>& offers, const DeflateOptions& o,
                                               std::string* why) {
  static constexpr std::string_view kNames[4] = {"server_no_context_takeover", "client_no_context_takeover",
                                                 "server_max_window_bits", "client_max_window_bits"};
  auto decline = [&](std::string reason) {
    if (why) *why = std::move(reason);
  };
  const int own_server_bits = std::clamp(o.server_max_window_bits, 9, 15);
  const int own_client_bits = o.client_max_window_bits == 0 ? 0 : std::clamp(o.client_max_window_bits, 8, 15);
  for (const ExtensionOffer& offer : offers) {
    if (!iequals(offer.name, "permessage-deflate")) continue;
    bool seen[4] = {false, false, false, false};
    bool server_no_context = false, client_no_context = false, client_bits_offered = false;
    int server_bits = 0, client_bits = 0;
    std::string bad;
    for (const auto& p : offer.params) {
      int k = 0;
      while (k < 4 && !iequals(p.name, kNames[k])) ++k;
      if (k == 4) {
        bad = "unknown parameter " + p.name;
        break;
      }
      if (seen[k]) {
        bad = "parameter " + p.name + " given twice";
        break;
      }
      seen[k] = true;
      if (k < 2) {
        if (p.has_value) {
          bad = "parameter " + p.name + " takes no value";
          break;
        }
        (k == 0 ? server_no_context : client_no_context) = true;
      } else if (k == 2) {
        if (!p.has_value || !window_bits_value(p.value, server_bits)) {
          bad = "invalid server_max_window_bits";
          break;
        }
      } else {
        client_bits_offered = true;
        if (p.has_value && !window_bits_value(p.value, client_bits)) {
          bad = "invalid client_max_window_bits";
          break;
        }
      }
    }
    if (!bad.empty()) {
      decline(std::move(bad));
      continue;
    }
    DeflateParams r;
    r.server_max_window_bits = static_cast<std::uint8_t>(own_server_bits);
    r.server_window_in_response = own_server_bits < 15;
    if (server_bits) {
      // zlib cannot make a raw DEFLATE stream with a 256-byte window (it uses 512 instead),
      // so an offer that insists on 8 is declined, as RFC 7692 7.1.2.1 allows.
      if (server_bits < 9) {
        decline("server_max_window_bits=8 cannot be honoured");
        continue;
      }
      r.server_max_window_bits = static_cast<std::uint8_t>(std::min(own_server_bits, server_bits));
      r.server_window_in_response = true;  // accepting the parameter means answering it
    }
    r.server_no_context_takeover = o.server_no_context_takeover || server_no_context;
    r.client_no_context_takeover = o.client_no_context_takeover || client_no_context;
    if (own_client_bits) {
      // A window the server wants to limit, which the client must allow by offering
      // client_max_window_bits (RFC 7692 7.1.2.2); as ws does, an offer without it is declined.
      if (!client_bits_offered) {
        decline("client_max_window_bits is required but not offered");
        continue;
      }
      r.client_max_window_bits = static_cast<std::uint8_t>(client_bits ? std::min(own_client_bits, client_bits) : own_client_bits);
    } else if (client_bits) {
      r.client_max_window_bits = static_cast<std::uint8_t>(client_bits);
    }
    return r;
  }
  return std::nullopt;
}

std::optional<DeflateParams> negotiate_deflate(const UpgradeRequest& request, const DeflateOptions& options,
                                               std::string* why) {
  std::vector<ExtensionOffer> offers;
  for (const auto& [name, value] : request.headers) {
    if (!iequals(name, "sec-websocket-extensions")) continue;
    std::vector<ExtensionOffer> field;
    if (parse_extensions(value, field)) {
      for (auto& e : field) offers.push_back(std::move(e));
    } else if (why) {
      *why = "malformed Sec-WebSocket-Extensions header";
    }
  }
  return negotiate_deflate(offers, options, why);
}

std::string deflate_response(const DeflateParams& p) {
  std::string r = "permessage-deflate";
  if (p.server_no_context_takeover) r += "; server_no_context_takeover";
  if (p.client_no_context_takeover) r += "; client_no_context_takeover";
  if (p.server_window_in_response) r += "; server_max_window_bits=" + std::to_string(p.server_max_window_bits);
  if (p.client_max_window_bits) r += "; client_max_window_bits=" + std::to_string(p.client_max_window_bits);
  return r;
}

// ---------------------------------------------------------------------------- zlib streams

struct Deflater::Impl {
  z_stream z{};
  int level, window_bits, mem_level, strategy;
};

Deflater::Deflater(int level, int window_bits, int mem_level, int strategy) : impl_(std::make_unique<Impl>()) {
  impl_->level = level;
  impl_->window_bits = window_bits;
  impl_->mem_level = mem_level;
  impl_->strategy = strategy;
  if (deflateInit2(&impl_->z, level, Z_DEFLATED, -window_bits, mem_level, strategy) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
}

Deflater::~Deflater() { deflateEnd(&impl_->z); }

bool Deflater::same_settings(int level, int window_bits, int mem_level, int strategy) const {
  return impl_->level == level && impl_->window_bits == window_bits && impl_->mem_level == mem_level &&
         impl_->strategy == strategy;
}

void Deflater::compress(std::string_view in, std::string& out, bool keep_context) {
  if (in.size() > kMaxDeflatedMessage) throw std::length_error("message too large to compress");
  z_stream& z = impl_->z;
  const std::size_t start = out.size();
  out.resize(start + deflateBound(&z, static_cast<uLong>(in.size())) + 16);
  z.next_in = reinterpret_cast<const Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  std::size_t produced = 0;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(out.data() + start + produced);
    z.avail_out = static_cast<uInt>(out.size() - start - produced);
    const uInt before = z.avail_out;
    const int r = deflate(&z, Z_SYNC_FLUSH);
    produced += before - z.avail_out;
    if (r != Z_OK && r != Z_BUF_ERROR) {
      deflateReset(&z);
      out.resize(start);
      throw std::runtime_error("deflate failed");
    }
    if (z.avail_out != 0) {  // with room left, a sync flush has taken all the input
      if (z.avail_in == 0) break;
      deflateReset(&z);
      out.resize(start);
      throw std::runtime_error("deflate made no progress");
    }
    out.resize(out.size() + std::max<std::size_t>(produced, 64));
  }
  out.resize(start + produced);
  if (produced == 0) {
    // Nothing since the last flush (an empty message with context takeover): zlib writes
    // nothing, and RFC 7692 7.2.1 wants an empty stored block (the stream is byte-aligned).
    out.append("\x00\x00\x00\xff\xff", 5);
    produced = 5;
  }
  // A sync flush ends with an empty stored block; its 00 00 FF FF is what the receiver adds back.
  if (produced < 4 || std::memcmp(out.data() + out.size() - 4, kTail, 4) != 0) {
    deflateReset(&z);
    out.resize(start);
    throw std::runtime_error("deflate: no sync flush marker");
  }
  out.resize(out.size() - 4);
  if (!keep_context) deflateReset(&z);
}

struct Inflater::Impl {
  z_stream z{};
};

Inflater::Inflater(int window_bits) : impl_(std::make_unique<Impl>()) {
  if (inflateInit2(&impl_->z, -window_bits) != Z_OK) throw std::runtime_error("inflateInit2 failed");
}

Inflater::~Inflater() { inflateEnd(&impl_->z); }

Inflater::Status Inflater::decompress(std::string_view in, std::uint64_t max, std::string& out, bool keep_context) {
  z_stream& z = impl_->z;
  out.clear();
  // The output buffer never grows past bound + 1 bytes: one byte more than allowed tells that
  // the message is too big, whatever is left of the input.
  const std::uint64_t bound = std::min<std::uint64_t>(max, std::uint64_t{1} << 31);
  const std::size_t limit = static_cast<std::size_t>(bound) + 1;
  if (in.size() > UINT_MAX) return Status::kTooBig;
  out.resize(std::min<std::size_t>(limit, std::max<std::size_t>(in.size() * 4, 256)));
  std::size_t produced = 0;
  Status status = Status::kOk;
  bool ended = false;
  for (int part = 0; part < 2 && !ended && status == Status::kOk; ++part) {
    z.next_in = part == 0 ? reinterpret_cast<const Bytef*>(in.data()) : kTail;
    z.avail_in = part == 0 ? static_cast<uInt>(in.size()) : 4u;
    for (;;) {
      if (produced == out.size()) {
        if (out.size() >= limit) {
          status = Status::kTooBig;
          break;
        }
        out.resize(std::min<std::size_t>(limit, out.size() * 2));
      }
      z.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      z.avail_out = static_cast<uInt>(out.size() - produced);
      const uInt before = z.avail_out;
      const int r = inflate(&z, Z_SYNC_FLUSH);
      produced += before - z.avail_out;
      if (produced > bound) {
        status = Status::kTooBig;
        break;
      }
      if (r == Z_STREAM_END) {  // a final block: the message ends here
        ended = true;
        break;
      }
      if (r == Z_BUF_ERROR) {
        if (z.avail_in == 0) break;  // nothing more to do with this part
        if (z.avail_out != 0) {      // no progress with room on both sides: never loop on it
          status = Status::kCorrupt;
          break;
        }
        continue;  // the output is full: grow it
      }
      if (r != Z_OK) {
        status = Status::kCorrupt;
        break;
      }
      if (z.avail_in == 0 && z.avail_out != 0) break;
    }
  }
  if (status == Status::kOk) {
    out.resize(produced);
  } else {
    std::string().swap(out);
  }
  if (status != Status::kOk || !keep_context || ended) inflateReset(&z);
  return status;
}

std::string deflate_frame(const std::string& frame, Deflater& deflater, bool keep_context) {
  const std::string_view payload = frame_payload(frame);
  std::string compressed;
  deflater.compress(payload, compressed, keep_context);
  const auto b0 = static_cast<std::uint8_t>(frame[0]);
  std::string out = encode_frame(b0 & 0x0F, compressed, (b0 & 0x80) != 0);
  out[0] = static_cast<char>(static_cast<std::uint8_t>(out[0]) | 0x40);  // RSV1: compressed
  return out;
}

// ---------------------------------------------------------------------------- workspace

namespace {
thread_local std::unique_ptr<DeflateWorkspace> t_workspace;
}

DeflateWorkspace& DeflateWorkspace::get() {
  if (!t_workspace) t_workspace = std::make_unique<DeflateWorkspace>();
  return *t_workspace;
}

DeflateWorkspace* DeflateWorkspace::existing() { return t_workspace.get(); }

Deflater& DeflateWorkspace::shared_deflater(int window_bits, const DeflateOptions& o) {
  auto& slot = deflaters_[window_bits & 15];
  if (!slot || !slot->same_settings(o.level, window_bits, o.mem_level, o.strategy)) {
    slot = std::make_unique<Deflater>(o.level, window_bits, o.mem_level, o.strategy);
  }
  return *slot;
}

SharedFrame DeflateWorkspace::shared_twin(const SharedFrame& frame, int window_bits, const DeflateOptions& o) {
  for (std::size_t i = 0; i < twin_count_; ++i) {
    if (twins_[i].plain == frame && twins_[i].window_bits == window_bits) return twins_[i].sent;
  }
  std::string compressed = deflate_frame(*frame, shared_deflater(window_bits, o), false);
  // Without context takeover nothing ties one message to the next, so a message that does
  // not shrink (already compressed media, short random data) may go out as it is.
  SharedFrame sent = compressed.size() < frame->size() ? std::make_shared<const std::string>(std::move(compressed)) : frame;
  Twin& t = twins_[twin_next_];
  twin_next_ = (twin_next_ + 1) % kTwins;
  if (twin_count_ < kTwins) ++twin_count_;
  t.plain = frame;
  t.sent = sent;
  t.window_bits = window_bits;
  return sent;
}

void DeflateWorkspace::drop_twins() {
  for (auto& t : twins_) t = Twin{};
  twin_count_ = 0;
  twin_next_ = 0;
}

SharedFrame DeflateWorkspace::with_context(ClientId id, const std::string& frame, int window_bits,
                                           const DeflateOptions& o) {
  Context& c = contexts_[id];
  if (!c.deflater) c.deflater = std::make_unique<Deflater>(o.level, window_bits, o.mem_level, o.strategy);
  return std::make_shared<const std::string>(deflate_frame(frame, *c.deflater, true));
}

Inflater& DeflateWorkspace::shared_inflater() {
  if (!inflater_) inflater_ = std::make_unique<Inflater>(15);
  return *inflater_;
}

Inflater& DeflateWorkspace::context_inflater(ClientId id, int window_bits) {
  Context& c = contexts_[id];
  // zlib-based clients asked for an 8-bit window use 9 bits (zlib cannot do 8), hence 9 at least.
  if (!c.inflater) c.inflater = std::make_unique<Inflater>(std::clamp(window_bits, 9, 15));
  return *c.inflater;
}

void DeflateWorkspace::forget(ClientId id) { contexts_.erase(id); }

}  // namespace sidewire::ws
