#include "net/ws_connection.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/post.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "log.hpp"

namespace sidewire {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
const ws::SharedFrame& ping_frame() {
  static const ws::SharedFrame frame = ws::make_shared_frame(ws::kPing, "");
  return frame;
}

// WsConnection::deflate_ bits.
constexpr std::uint8_t kDeflateOn = 1;             // permessage-deflate negotiated
constexpr std::uint8_t kDeflateServerContext = 2;  // context takeover for what we send: a stream of its own
constexpr std::uint8_t kDeflateClientContext = 4;  // context takeover for what the peer sends
constexpr std::uint8_t kDeflateMessage = 8;        // the fragmented message in msg_ is compressed
constexpr std::uint8_t kDeflateContexts = kDeflateServerContext | kDeflateClientContext;
}  // namespace

WsConnection::WsConnection(Worker& worker, asio::ip::tcp::socket socket, ClientId id, const WsSettings& settings)
    : worker_(worker), socket_(std::move(socket)), settings_(&settings), id_(id) {
  timer_at_ = worker_.now_ms();
  last_message_at_ = timer_at_;
}

WsConnection::~WsConnection() {
  // Normally done by terminate(); a connection let go of after its thread stopped has nothing
  // left to free (the thread's workspace went with it), and existing() is then another thread's.
  if (deflate_ & kDeflateContexts) {
    if (auto* w = ws::DeflateWorkspace::existing()) w->forget(id_);
  }
}

void WsConnection::enable_deflate(const ws::DeflateParams& p) {
  deflate_ = kDeflateOn;
  if (!p.server_no_context_takeover) deflate_ |= kDeflateServerContext;
  if (!p.client_no_context_takeover) deflate_ |= kDeflateClientContext;
  deflate_window_ = p.server_max_window_bits;
}

void WsConnection::start(std::string handshake_response, std::string_view already_read, ws::SharedFrame first) {
  enqueue(std::make_shared<const std::string>(std::move(handshake_response)));
  if (first) enqueue(deflate_ ? deflated(std::move(first)) : std::move(first));
  on_started();
  if (!already_read.empty()) {
    std::string copy(already_read);  // process() unmasks in place
    in_.swap(copy);
    std::size_t used;
    try {
      used = process(reinterpret_cast<std::uint8_t*>(in_.data()), in_.size());
    } catch (const std::exception& e) {
      internal_error(e.what());
      return;
    }
    if (used == std::string::npos) return;
    in_.erase(0, used);
  }
  arm_read();
}

// A handler that threw while serving this connection: the connection closes with 1011 and
// everything else on the thread goes on.
void WsConnection::internal_error(const char* what) {
  worker_.metrics().internal_errors.fetch_add(1, std::memory_order_relaxed);
  log_conn(spdlog::level::err, "connection", id_, peer_address(), "internal error", "internal error: {}; closing with 1011", what);
  try {
    fail(ws::kInternalError, "internal error");
  } catch (const std::exception&) {
    terminate(ws::kInternalError, "internal error");
  }
}

void WsConnection::release(std::string& buffer) {
  const std::size_t capacity = buffer.capacity();
  std::string().swap(buffer);
  if (capacity >= 256 * 1024) worker_.metrics().large_frees.fetch_add(capacity, std::memory_order_relaxed);
}

void WsConnection::resume_reading() {
  if (!parked_) return;
  parked_ = false;
  if (closed_ || close_received_) return;
  on_readable();
}

void WsConnection::arm_read() {
  if (reading_ || closed_ || close_received_) return;
  reading_ = true;
  socket_.async_wait(asio::socket_base::wait_read,
                     [self = shared_from_this()](const error_code& ec) {
                       self->reading_ = false;
                       if (ec) {
                         if (ec != asio::error::operation_aborted) self->terminate(ws::kAbnormal, ec.message());
                         return;
                       }
                       self->on_readable();
                     });
}

void WsConnection::on_readable() {
  // Reads until the kernel has nothing more (the reactor is edge-triggered), but at most a few
  // buffers per turn, so that one busy peer cannot starve the others on this thread.
  const int fd = socket_.native_handle();
  std::uint8_t* buf = worker_.read_buffer();
  for (int round = 0; round < 8; ++round) {
    if (closed_ || close_received_) return;
    if (lingering_) {
      const ssize_t n = ::recv(fd, buf, Worker::kReadBufferSize, 0);
      if (n > 0) continue;  // discarded
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        arm_read();
        return;
      }
      terminate(ws::kNormal, "");  // the peer's FIN (or an error): done
      return;
    }
    if (feeds_js() && worker_.js_congested()) {
      // JS is behind with its events: leave the bytes in the kernel (the peer's TCP window
      // closes) until it catches up.
      parked_ = true;
      worker_.park(shared_from_this());
      return;
    }
    const ssize_t n = ::recv(fd, buf, Worker::kReadBufferSize, 0);
    if (n > 0) {
      worker_.metrics().bytes_received.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      std::size_t used;
      try {
        if (in_.empty()) {
          used = process(buf, static_cast<std::size_t>(n));
          if (used == std::string::npos) return;
          if (used < static_cast<std::size_t>(n)) in_.assign(reinterpret_cast<char*>(buf) + used, n - used);
        } else {
          in_.append(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
          used = process(reinterpret_cast<std::uint8_t*>(in_.data()), in_.size());
          if (used == std::string::npos) return;
          in_.erase(0, used);
          if (in_.empty()) release(in_);  // an idle connection keeps no buffer
        }
      } catch (const std::exception& e) {
        internal_error(e.what());
        return;
      }
      continue;
    }
    if (n == 0) {
      terminate(ws::kAbnormal, "connection closed without a close frame");
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      arm_read();
      return;
    }
    terminate(ws::kAbnormal, std::strerror(errno));
    return;
  }
  reading_ = true;
  asio::post(worker_.io(), [self = shared_from_this()] {
    self->reading_ = false;
    self->on_readable();
  });
}

std::size_t WsConnection::process(std::uint8_t* data, std::size_t size) {
  std::size_t pos = 0;
  while (pos < size) {
    ws::FrameHeader header;
    const ws::ParseResult r =
        ws::parse_client_frame_header(data + pos, size - pos, settings_->max_payload, header, deflate_ != 0);
    if (r.status == ws::ParseStatus::kNeedMore) break;
    if (r.status == ws::ParseStatus::kError) {
      if (r.close_code == ws::kMessageTooBig) count_limit(worker_.metrics(), Limit::kPayload);
      fail(r.close_code, r.reason);
      return std::string::npos;
    }
    const std::uint64_t frame_size = header.header_length + header.payload_length;
    if (size - pos < frame_size) break;
    if (!handle_frame(header, data + pos + header.header_length)) return std::string::npos;
    pos += frame_size;
  }
  // Control frames may carry 125 bytes whatever max_payload is.
  // Written so that no max_payload (up to UINT64_MAX) can wrap the sum.
  if (const std::uint64_t left = size - pos, bound = std::max<std::uint64_t>(settings_->max_payload, 125);
      left > bound && left - bound > 14) {
    // Cannot happen with a valid header (its length was checked); kept as a hard bound on in_.
    fail(ws::kMessageTooBig, "message too big");
    return std::string::npos;
  }
  return pos;
}

bool WsConnection::handle_frame(const ws::FrameHeader& h, std::uint8_t* payload) {
  const std::size_t len = static_cast<std::size_t>(h.payload_length);
  ws::unmask(payload, len, h.mask);
  const std::string_view data(reinterpret_cast<const char*>(payload), len);
  switch (h.opcode) {
    case ws::kText:
    case ws::kBinary:
      if (msg_opcode_ != 0) {
        fail(ws::kProtocolError, "data frame inside a fragmented message");
        return false;
      }
      if (h.fin) {
        std::string inflated;
        std::string_view message = data;
        if (h.rsv1) {
          if (close_sent_) return true;  // closing: not worth inflating
          if (!inflate(data, inflated)) return false;
          message = inflated;
        }
        if (h.opcode == ws::kText && !ws::is_valid_utf8(message)) {
          release(inflated);
          fail(ws::kInvalidPayload, "text message is not valid UTF-8");
          return false;
        }
        if (close_sent_) return true;  // closing: data is no longer delivered
        worker_.metrics().messages_received.fetch_add(1, std::memory_order_relaxed);
        last_message_at_ = worker_.now_ms();
        on_message(h.opcode, message);
        release(inflated);
      } else {
        msg_opcode_ = h.opcode;
        msg_started_at_ = worker_.now_ms();
        msg_.assign(data);
        if (h.rsv1) deflate_ |= kDeflateMessage;
      }
      return !closed_;
    case ws::kContinuation: {
      if (msg_opcode_ == 0) {
        fail(ws::kProtocolError, "continuation frame without a message");
        return false;
      }
      if (msg_.size() + len > settings_->max_payload) {
        count_limit(worker_.metrics(), Limit::kPayload);
        fail(ws::kMessageTooBig, "message too big");
        return false;
      }
      msg_.append(data);
      if (!h.fin) return true;
      const std::uint8_t opcode = msg_opcode_;
      msg_opcode_ = 0;
      std::string message;
      message.swap(msg_);
      if (deflate_ & kDeflateMessage) {
        deflate_ &= static_cast<std::uint8_t>(~kDeflateMessage);
        std::string inflated;
        const bool ok = close_sent_ || inflate(message, inflated);
        release(message);
        if (!ok) return false;
        message.swap(inflated);
      }
      if (opcode == ws::kText && !ws::is_valid_utf8(message)) {
        release(message);
        fail(ws::kInvalidPayload, "text message is not valid UTF-8");
        return false;
      }
      if (!close_sent_) {
        worker_.metrics().messages_received.fetch_add(1, std::memory_order_relaxed);
        last_message_at_ = worker_.now_ms();
        on_message(opcode, message);
      }
      release(message);
      return !closed_;
    }
    case ws::kPing:
      if (!close_sent_) enqueue(ws::make_shared_frame(ws::kPong, data));
      return true;
    case ws::kPong:
      ping_outstanding_ = false;
      timer_at_ = worker_.now_ms();
      return true;
    case ws::kClose:
      handle_close_frame(data);
      return false;
    default:
      fail(ws::kProtocolError, "unknown opcode");
      return false;
  }
}

void WsConnection::handle_close_frame(std::string_view payload) {
  close_received_ = true;
  std::uint16_t code = ws::kNoStatus;
  std::string_view reason;
  if (payload.size() == 1) {
    fail(ws::kProtocolError, "close frame with a one-byte payload");
    return;
  }
  if (payload.size() >= 2) {
    code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) | static_cast<std::uint8_t>(payload[1]));
    reason = payload.substr(2);
    if (!ws::is_valid_close_code(code)) {
      fail(ws::kProtocolError, "invalid close code");
      return;
    }
    if (!ws::is_valid_utf8(reason)) {
      fail(ws::kInvalidPayload, "close reason is not valid UTF-8");
      return;
    }
  }
  shutdown_after_flush_ = true;
  if (!close_sent_) {
    // The peer started the closing handshake: echo its code, then close the TCP connection.
    close_sent_ = true;
    enqueue(std::make_shared<const std::string>(
        code == ws::kNoStatus ? ws::encode_frame(ws::kClose, "") : ws::encode_close_frame(code, "")));
    report_closed(code, reason);
  }
  finish_if_done();
}

void WsConnection::fail(std::uint16_t code, const char* reason) {
  worker_.metrics().protocol_errors.fetch_add(1, std::memory_order_relaxed);
  log_conn(spdlog::level::warn, "connection", id_, peer_address(), reason, "{}; closing with {}", reason, code);
  if (!close_sent_) {
    close_sent_ = true;
    timer_at_ = worker_.now_ms();
    enqueue(std::make_shared<const std::string>(ws::encode_close_frame(code, reason)));
  }
  report_closed(code, reason);
  // A failed connection does not wait for the peer's close frame.
  shutdown_after_flush_ = true;
  finish_if_done();
}

void WsConnection::send(ws::SharedFrame frame, bool compress) {
  if (closed_ || close_sent_) return;
  worker_.metrics().messages_delivered.fetch_add(1, std::memory_order_relaxed);
  if (deflate_ && compress) frame = deflated(std::move(frame));
  enqueue(std::move(frame));
}

ws::SharedFrame WsConnection::deflated(ws::SharedFrame frame) {
  const std::string& f = *frame;
  const auto b0 = static_cast<std::uint8_t>(f[0]);
  const std::uint8_t opcode = b0 & 0x0F;
  // Whole data frames only (the engine never fragments what it sends), not already compressed.
  if ((b0 & 0xF0) != 0x80 || (opcode != ws::kText && opcode != ws::kBinary)) return frame;
  const ws::DeflateOptions& o = settings_->deflate;
  const std::size_t size = ws::frame_payload(f).size();
  if (size < o.threshold || size > ws::kMaxDeflatedMessage) return frame;
  try {
    ws::DeflateWorkspace& w = ws::DeflateWorkspace::get();
    if (deflate_ & kDeflateServerContext) return w.with_context(id_, f, deflate_window_, o);
    return w.shared_twin(frame, deflate_window_, o);
  } catch (const std::exception& e) {
    // zlib out of memory: this message goes out as it is. (With context takeover the stream was
    // reset, which the peer's inflater does not need to know: a fresh stream is still valid.)
    worker_.metrics().internal_errors.fetch_add(1, std::memory_order_relaxed);
    log().error("connection {}: cannot compress a message ({}); sending it uncompressed", id_, e.what());
    return frame;
  }
}

bool WsConnection::inflate(std::string_view compressed, std::string& out) {
  const bool context = (deflate_ & kDeflateClientContext) != 0;
  ws::Inflater::Status status;
  try {
    ws::DeflateWorkspace& w = ws::DeflateWorkspace::get();
    ws::Inflater& inflater = context ? w.context_inflater(id_, 15) : w.shared_inflater();
    status = inflater.decompress(compressed, settings_->max_payload, out, context);
  } catch (const std::exception& e) {
    // zlib out of memory (or an inflater it cannot make): this connection ends, the rest go on.
    worker_.metrics().internal_errors.fetch_add(1, std::memory_order_relaxed);
    log().error("connection {}: cannot inflate a message ({})", id_, e.what());
    fail(ws::kInternalError, "cannot inflate");
    return false;
  }
  switch (status) {
    case ws::Inflater::Status::kOk:
      return true;
    case ws::Inflater::Status::kTooBig:
      // A decompression bomb or just a big message: the output stopped one byte past the limit.
      count_limit(worker_.metrics(), Limit::kPayload);
      fail(ws::kMessageTooBig, "compressed message inflates past the size limit");
      return false;
    case ws::Inflater::Status::kCorrupt:
      break;
  }
  fail(ws::kInvalidPayload, "invalid permessage-deflate data");
  return false;
}

void WsConnection::send_message(std::string_view payload, bool binary) {
  send(ws::make_shared_frame(binary ? ws::kBinary : ws::kText, payload));
}

void WsConnection::enqueue(ws::SharedFrame frame) {
  if (closed_) return;
  const std::size_t cost = frame->size() + kQueuedFrameOverhead;
  if (!out_.empty() && out_bytes_ + cost > settings_->max_queued_bytes) {
    // Never act on it here: the caller may be looping over a room this connection is in.
    overflow_ = true;
  } else {
    out_bytes_ += cost;
    out_.push_back(std::move(frame));
  }
  // A connection waiting for the socket to drain is flushed by that wait, except when it
  // overflowed: a peer that does not read would never wake the wait, so flush drops it now.
  if (!dirty_ && (!write_waiting_ || overflow_)) {
    dirty_ = true;
    worker_.mark_dirty(shared_from_this());
  } else if (dirty_ && (out_.size() == kMaxWriteFrames || overflow_) && worker_.write_delay().count() != 0) {
    // Coalescing writes: a queue that already fills one sendmsg gains nothing by waiting.
    worker_.flush_soon();
  }
}

void WsConnection::flush() {
  dirty_ = false;
  if (deflate_) {
    if (auto* w = ws::DeflateWorkspace::existing()) w->end_turn();  // this turn's twins are sent
  }
  if (closed_) return;
  if (overflow_) {
    worker_.metrics().backpressure_drops.fetch_add(1, std::memory_order_relaxed);
    count_limit(worker_.metrics(), Limit::kOutgoingQueue);
    log_conn(spdlog::level::warn, "connection", id_, peer_address(), "outgoing queue full",
             "outgoing queue over {} bytes, dropping a peer that does not read", settings_->max_queued_bytes);
    terminate(ws::kPolicyViolation, "outgoing queue full");
    return;
  }
  if (write_waiting_) return;  // the pending wait flushes when the socket drains
  const int fd = socket_.native_handle();
  constexpr std::size_t kMaxIov = kMaxWriteFrames;
  iovec iov[kMaxIov];
  while (!out_.empty()) {
    std::size_t count = 0;
    for (; count < out_.size() && count < kMaxIov; ++count) {
      const std::string& f = *out_[count];
      const std::size_t skip = count == 0 ? out_offset_ : 0;
      iov[count].iov_base = const_cast<char*>(f.data()) + skip;
      iov[count].iov_len = f.size() - skip;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    worker_.metrics().writes.fetch_add(1, std::memory_order_relaxed);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wait_writable();
        return;
      }
      terminate(ws::kAbnormal, std::strerror(errno));
      return;
    }
    std::size_t written = static_cast<std::size_t>(n);
    worker_.metrics().bytes_sent.fetch_add(written, std::memory_order_relaxed);
    out_bytes_ -= written;
    std::size_t done = 0;
    while (done < out_.size()) {
      const std::size_t left = out_[done]->size() - out_offset_;
      if (written < left) {
        out_offset_ += written;
        break;
      }
      written -= left;
      out_offset_ = 0;
      out_bytes_ -= kQueuedFrameOverhead;
      ++done;
    }
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(done));
  }
  if (out_.capacity() > 16) std::vector<ws::SharedFrame>().swap(out_);
  finish_if_done();
}

void WsConnection::wait_writable() {
  write_waiting_ = true;
  socket_.async_wait(asio::socket_base::wait_write, [self = shared_from_this()](const error_code& ec) {
    self->write_waiting_ = false;
    if (ec) {
      if (ec != asio::error::operation_aborted) self->terminate(ws::kAbnormal, ec.message());
      return;
    }
    self->flush();
  });
}

void WsConnection::finish_if_done() {
  if (!shutdown_after_flush_ || !out_.empty() || closed_ || dirty_ || write_waiting_ || lingering_) return;
  error_code ec;
  if (!close_received_) {
    // We failed the connection while the peer may still be sending (the rest of an oversized
    // frame): closing now would answer its unread bytes with a reset, which can destroy our
    // close frame before the peer reads it. Half-close, then read and discard until its FIN or
    // the close timeout.
    lingering_ = true;
    socket_.shutdown(asio::socket_base::shutdown_send, ec);
    timer_at_ = worker_.now_ms();
    arm_read();
    return;
  }
  socket_.shutdown(asio::socket_base::shutdown_both, ec);
  terminate(ws::kNormal, "");
}

void WsConnection::close(std::uint16_t code, std::string_view reason) {
  if (closed_ || close_sent_) return;
  close_sent_ = true;
  timer_at_ = worker_.now_ms();
  enqueue(std::make_shared<const std::string>(ws::encode_close_frame(code, reason)));
  report_closed(code, reason);
}

void WsConnection::terminate(std::uint16_t code, std::string_view reason) {
  if (closed_) return;
  closed_ = true;
  error_code ec;
  socket_.close(ec);  // pending waits complete with operation_aborted
  out_.clear();
  out_bytes_ = 0;
  release(in_);
  release(msg_);
  if (deflate_ & kDeflateContexts) {
    if (auto* w = ws::DeflateWorkspace::existing()) w->forget(id_);
  }
  report_closed(code, reason);
  worker_.remove(id_);
}

void WsConnection::report_closed(std::uint16_t code, std::string_view reason) {
  if (reported_) return;
  reported_ = true;
  worker_.metrics().connections.fetch_sub(1, std::memory_order_relaxed);
  on_closed(code, reason);
}

void WsConnection::on_tick(std::uint32_t now) {
  if (closed_) return;
  const std::uint32_t since = now - timer_at_;
  if (close_sent_) {
    if (since >= worker_.close_timeout_ms()) terminate(ws::kAbnormal, "closing handshake timed out");
    return;
  }
  on_timer(now);
  if (closed_ || close_sent_) return;
  if (settings_->idle_timeout_ms > 0 && now - last_message_at_ >= settings_->idle_timeout_ms) {
    count_limit(worker_.metrics(), Limit::kIdleTimeout);
    log_conn(spdlog::level::info, "connection", id_, peer_address(), "idle timeout", "no message for {} ms, closing",
             settings_->idle_timeout_ms);
    close(ws::kNormal, "idle timeout");
    return;
  }
  if (msg_opcode_ != 0 && now - msg_started_at_ >= settings_->message_timeout_ms) {
    count_limit(worker_.metrics(), Limit::kUnfinishedMessage);
    release(msg_);
    msg_opcode_ = 0;
    deflate_ &= static_cast<std::uint8_t>(~kDeflateMessage);
    fail(ws::kPolicyViolation, "fragmented message not completed in time");
    return;
  }
  if (settings_->ping_interval_ms == 0) return;
  if (parked_) {
    timer_at_ = now;  // not read on purpose: its pong may be waiting in the kernel
    ping_outstanding_ = false;
    return;
  }
  if (ping_outstanding_) {
    if (since >= settings_->ping_timeout_ms) {
      worker_.metrics().heartbeat_timeouts.fetch_add(1, std::memory_order_relaxed);
      log_conn(spdlog::level::info, "connection", id_, peer_address(), "ping timeout", "no pong within {} ms, closing",
               settings_->ping_timeout_ms);
      terminate(ws::kAbnormal, "ping timeout");
    }
  } else if (since >= settings_->ping_interval_ms) {
    ping_outstanding_ = true;
    timer_at_ = now;
    enqueue(ping_frame());
  }
}

}  // namespace sidewire
