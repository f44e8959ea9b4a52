// A WebSocket connection on a socket the engine adopted: RFC 6455 server framing, the closing
// handshake, heartbeat, and a bounded outgoing queue of shared frames.
// Protocols (raw channels now, Engine.IO's websocket transport later) derive from it and
// implement on_message / on_closed.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/deflate.hpp"
#include "net/worker.hpp"
#include "net/ws_codec.hpp"
#include "sidewire/engine.hpp"

namespace sidewire {

// Per-protocol settings shared by all connections of a channel: one pointer per connection.
struct WsSettings {
  std::uint64_t max_payload = 1 << 20;
  std::uint32_t ping_interval_ms = 25000;
  std::uint32_t ping_timeout_ms = 20000;
  std::size_t max_queued_bytes = 8u << 20;
  // A fragmented message must be complete within this long after its first fragment.
  std::uint32_t message_timeout_ms = 30000;
  // limits.idleTimeoutMs (raw channels): closed (1000 "idle timeout") after this long without a
  // data message from the peer; pings and pongs do not count. 0: never.
  std::uint32_t idle_timeout_ms = 0;
  // permessage-deflate: offered to clients when enabled (Socket.IO's perMessageDeflate).
  ws::DeflateOptions deflate;
};

// What a queued frame costs beyond its bytes (its shared string, control block and queue
// slot): counted against max_queued_bytes, so that a flood of tiny frames (pongs to a ping
// flood from a peer that never reads) hits the limit as surely as big ones.
inline constexpr std::size_t kQueuedFrameOverhead = 64;
// Frames one sendmsg carries at most (its iovec array).
inline constexpr std::size_t kMaxWriteFrames = 64;

class WsConnection : public std::enable_shared_from_this<WsConnection> {
 public:
  WsConnection(Worker& worker, boost::asio::ip::tcp::socket socket, ClientId id, const WsSettings& settings);
  virtual ~WsConnection();
  WsConnection(const WsConnection&) = delete;
  WsConnection& operator=(const WsConnection&) = delete;

  ClientId id() const { return id_; }
  // The client's address, for log lines ("" when the protocol above does not keep it).
  virtual std::string_view peer_address() const { return {}; }
  bool open() const { return !closed_ && !close_sent_; }
  bool finished() const { return closed_; }
  // A connection that closes itself during a drain (a probe waiting for its upgrade packet):
  // the drain does not close it at once, only at its deadline.
  void set_closes_itself_on_drain(bool v) { closes_itself_on_drain_ = v; }
  bool closes_itself_on_drain() const { return closes_itself_on_drain_; }
  std::size_t queued_bytes() const { return out_bytes_; }
  // The socket took less than was written and the rest waits for it to drain: a write in
  // flight, as engine.io's transport sees one (what the next flush pass sends is not).
  bool write_blocked() const { return write_waiting_; }

  // Queues the handshake response (or anything already framed), consumes the bytes Node read
  // past the request head, and starts reading.
  // `first` (optional) goes out right after the response, before anything the peer sent.
  void start(std::string handshake_response, std::string_view already_read, ws::SharedFrame first = {});
  // permessage-deflate was negotiated (before start): RSV1 messages are inflated, and data
  // frames sent with `compress` whose payload reaches the threshold go out compressed.
  void enable_deflate(const ws::DeflateParams& params);

  // `compress`: may go out compressed (Socket.IO's compress flag); the frame itself stays shared.
  void send(ws::SharedFrame frame, bool compress = true);
  void send_message(std::string_view payload, bool binary);
  // Starts the closing handshake: a close frame now, the TCP close when the peer answers or
  // the close timeout passes.
  void close(std::uint16_t code, std::string_view reason);
  // Ends the connection at once. `code` and `reason` are what on_closed reports.
  void terminate(std::uint16_t code, std::string_view reason);

  // Heartbeat and close deadlines; called by the worker's timer.
  void on_tick(std::uint32_t now_ms);
  // Reads again after the worker parked it (JS had fallen behind).
  void resume_reading();
  // Writes as much of the queue as the socket takes; called by the worker's flush pass.
  void flush();

 protected:
  virtual void on_message(std::uint8_t opcode, std::string_view payload) = 0;
  // Called exactly once, when the connection is gone (or its closing handshake began).
  virtual void on_closed(std::uint16_t code, std::string_view reason) = 0;
  // Does what this connection receives become events for JS? Such a connection is not read
  // while JS is behind (backpressure down to the peer's TCP window).
  virtual bool feeds_js() const { return false; }
  // The protocol's own deadlines, on each tick of an open connection (a token's expiry).
  virtual void on_timer(std::uint32_t now_ms) { (void)now_ms; }
  // start() queued the handshake response: frames sent now follow it, before anything the
  // bytes already read lead to.
  virtual void on_started() {}

  Worker& worker_;

 private:
  void arm_read();
  void on_readable();
  // Parses as many complete frames as `data` holds; returns how many bytes were used, or
  // npos once the connection stops reading.
  std::size_t process(std::uint8_t* data, std::size_t size);
  bool handle_frame(const ws::FrameHeader& header, std::uint8_t* payload);
  void handle_close_frame(std::string_view payload);
  // permessage-deflate: the frame to queue for `frame` (its compressed form, or itself), and a
  // compressed message inflated (false: the connection failed).
  ws::SharedFrame deflated(ws::SharedFrame frame);
  bool inflate(std::string_view compressed, std::string& out);
  void fail(std::uint16_t code, const char* reason);
  void enqueue(ws::SharedFrame frame);
  void wait_writable();
  void finish_if_done();
  void report_closed(std::uint16_t code, std::string_view reason);
  void internal_error(const char* what);
  // Frees a buffer, telling the worker when it was a large one (the heap trim returns those).
  void release(std::string& buffer);

  boost::asio::ip::tcp::socket socket_;
  const WsSettings* settings_;
  ClientId id_;
  std::string in_;    // a partial frame, kept only until the rest arrives
  std::string msg_;   // fragments of a message in progress
  std::vector<ws::SharedFrame> out_;
  std::size_t out_offset_ = 0;  // bytes of out_.front() already written
  std::size_t out_bytes_ = 0;
  std::uint32_t timer_at_ = 0;  // last ping sent, or when the close frame went out
  std::uint32_t msg_started_at_ = 0;  // first fragment of the message in msg_
  std::uint32_t last_message_at_ = 0;  // the last data message from the peer (idle timeout)
  std::uint8_t msg_opcode_ = 0;
  bool reading_ = false;
  bool write_waiting_ = false;
  bool dirty_ = false;
  bool ping_outstanding_ = false;
  bool close_sent_ = false;      // our close frame is queued
  bool close_received_ = false;  // the peer's close frame arrived
  bool shutdown_after_flush_ = false;
  bool overflow_ = false;        // the queue hit max_queued_bytes; the next flush drops the peer
  bool closed_ = false;          // socket closed, on_closed reported
  bool reported_ = false;
  bool closes_itself_on_drain_ = false;
  bool parked_ = false;          // not read until JS catches up
  bool lingering_ = false;       // failed: half-closed, discarding what the peer still sends
  // permessage-deflate, in what was padding: kDeflate* bits, and the window this server
  // compresses with. No other per-connection state (see net/deflate.hpp).
  std::uint8_t deflate_ = 0;
  std::uint8_t deflate_window_ = 0;
};

}  // namespace sidewire
