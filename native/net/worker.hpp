// One I/O thread: its io_context, the connections it owns, and what they share — a read
// buffer, the list of connections with output waiting to be flushed, and one heartbeat timer.
// Everything here is touched only on this thread, so the hot path takes no lock.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <unordered_map>
#include <vector>

#include "sidewire/engine.hpp"

namespace sidewire {

class WsConnection;

struct Metrics {
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> messages_received{0};
  std::atomic<std::uint64_t> messages_delivered{0};
  std::atomic<std::uint64_t> upgrades_refused{0};
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::uint64_t> backpressure_drops{0};
  std::atomic<std::uint64_t> heartbeat_timeouts{0};
  std::atomic<std::uint64_t> writes{0};  // sendmsg calls: deliveries / writes is the corking factor
  // Exceptions caught on an I/O thread (each closed the connection it came from, or dropped
  // the command that threw): a bug to report, never an abort.
  std::atomic<std::uint64_t> internal_errors{0};
  // Times a connection stopped being read because JS was behind with its events.
  std::atomic<std::uint64_t> js_backpressure_pauses{0};
  // Bytes of large buffers (a big message, a big frame) freed since the start: the heap trim
  // hands such pages back once things are quiet.
  std::atomic<std::uint64_t> large_frees{0};
  // Refusals by limit, each answered with the protocol's own error (see Limit).
  std::atomic<std::uint64_t> limits[24] = {};
  // Bytes read from and written to sockets (WebSocket connections; polling bodies as Node
  // handed them over and took them back).
  std::atomic<std::uint64_t> bytes_received{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  // Broadcasts (from JS, from other nodes, raw channels' relays) and the recipients they reached.
  std::atomic<std::uint64_t> broadcasts{0};
  std::atomic<std::uint64_t> broadcast_recipients{0};
  // Connections that opened: Socket.IO sockets (a namespace connected) and raw channel clients.
  std::atomic<std::uint64_t> sio_connects{0};
  std::atomic<std::uint64_t> channel_connects{0};
  // Disconnects by protocol and reason (Socket.IO's reasons, a channel's close code): a short,
  // fixed set of keys, counted under a lock (disconnects are rare next to messages).
  void count_disconnect(std::string_view protocol, std::string_view reason);
  std::vector<std::pair<std::string, std::uint64_t>> disconnects() const;

 private:
  mutable std::mutex disconnects_mutex_;
  std::map<std::string, std::uint64_t, std::less<>> disconnects_;
};

// What a client can run into, for the counters in engine.stats().limits.
enum class Limit : unsigned {  // at most 24 (Metrics::limits)
  kNamespaces,        // Socket.IO: namespaces per connection, or dynamic namespaces in all
  kRooms,             // rooms per connection (raw channels' join messages, Socket.IO joins)
  kAttachments,       // Socket.IO: binary attachments of one packet (count or bytes)
  kHeaders,           // HTTP: request head size or header count (engine.listen)
  kQuery,             // HTTP: request target size
  kOutgoingQueue,     // a peer that does not read: WebSocket queue (pongs included) or polling queue
  kUnfinishedMessage, // a fragmented WebSocket message not completed in time
  kEventsForJs,       // events waiting for JS over the bound: reading paused (see js_backpressure_pauses)
  kPayload,           // a message, frame or polling body over its size limit
  kTokenMissing,      // JWT: a CONNECT (or upgrade) without a token
  kTokenInvalid,      // JWT: a token that does not verify (signature, algorithm, key, claims)
  kTokenExpired,      // JWT: an expired token, at CONNECT or while connected
  kTokenNotYetValid,  // JWT: a token before its nbf
  kRateLimited,       // limits.events: a message or event over its rate, dropped
  kConnectionsPerIp,  // limits.connectionsPerIp: a connection refused (429)
  kConnectionsPerUser,  // limits.connectionsPerUser: refused (CONNECT_ERROR, or 429 on a channel)
  kConnectRate,       // limits.connectRatePerIp: a connection refused (429 with Retry-After)
  kIdleTimeout,       // limits.idleTimeoutMs: a connection closed for sending nothing
  kCount
};
static_assert(static_cast<unsigned>(Limit::kCount) <= 24, "Metrics::limits has 24 counters");
const char* limit_name(Limit limit);
inline void count_limit(Metrics& m, Limit l) {
  m.limits[static_cast<unsigned>(l)].fetch_add(1, std::memory_order_relaxed);
}

class Worker {
 public:
  // `pressure`: the sink whose backlog of events for JS decides whether connections that feed
  // JS are read (nullptr: never paused).
  Worker(unsigned index, Metrics& metrics, std::uint32_t close_timeout_ms, const EventSink* pressure = nullptr);
  ~Worker();

  void start(int nice = 0);
  static constexpr std::uint64_t kTrimAfterConnections = 1000;  // new connections since the last trim
  static constexpr std::uint64_t kTrimAfterLargeFrees = 16u << 20;  // or bytes of large buffers freed
  static constexpr std::uint32_t kTrimQuietMs = 2000;            // with none for this long
  // nice (start): this thread's niceness (Linux), 0 = as the process
  void stop_and_join();

  boost::asio::io_context& io() { return io_; }
  // CPU time this thread has used (any thread may ask): its busy time, as it sleeps in epoll
  // when there is nothing to do.
  double cpu_seconds() const;
  unsigned index() const { return index_; }
  Metrics& metrics() { return metrics_; }
  std::uint32_t close_timeout_ms() const { return close_timeout_ms_; }

  // Milliseconds since the worker started, cheap to read (updated once per wake-up).
  std::uint32_t now_ms() const { return now_ms_; }
  void refresh_clock();

  // One buffer that every connection of this thread reads into: an idle connection holds none.
  std::uint8_t* read_buffer() { return read_buffer_.get(); }
  static constexpr std::size_t kReadBufferSize = 64 * 1024;

  // Corking: a connection with new output is listed once, and one pass after the current
  // handler writes each listed connection's whole queue with one sendmsg.
  // With a write delay (EngineOptions::write_delay_us) that pass waits for the delay's timer
  // instead: everything listed in the meantime goes out in the same pass, so under fan-out one
  // sendmsg carries every frame a connection got in that time. No frame waits longer than
  // the delay (plus the thread's own backlog).
  void mark_dirty(std::shared_ptr<WsConnection> connection);
  // A connection whose queue holds a full write's worth does not wait for the delay: the pass
  // runs after the current handler.
  void flush_soon();
  void set_write_delay(std::chrono::microseconds delay) { write_delay_ = delay; }
  // Called on this thread after the heap trim that follows a burst (thread 0 only trims).
  void set_on_quiet(std::function<void()> f) { on_quiet_ = std::move(f); }
  std::chrono::microseconds write_delay() const { return write_delay_; }

  // The worker whose thread is calling, or nullptr on any other thread.
  static Worker* current();
  // Events for JS pushed on this thread during one turn of its loop, handed to the sink
  // together at the end of the turn (Engine's batching sink): one crossing into JS, one
  // wake-up of Node's thread, however many connections a turn served.
  std::vector<Event> pending_events;
  bool events_flush_posted = false;

  // The thread's ordered command queue, for work from other threads (JS): commands run in the
  // order they were queued, and everything queued while the thread was busy runs as one batch
  // before the flush pass, so a saturated thread writes many messages per sendmsg.
  void command(std::function<void()> f);

  // Backpressure into JS: is the sink behind? A connection that feeds JS parks itself instead of
  // reading while it is; resume_parked() (the sink's relief, or the tick) reads them again.
  bool js_congested() const { return pressure_ && pressure_->congested(); }
  void park(std::shared_ptr<WsConnection> connection);
  // Runs `f` on this thread once JS has caught up (a held answer to a polling POST).
  void when_relieved(std::function<void()> f);
  void resume_parked();

  void add(std::shared_ptr<WsConnection> connection);
  // Deferred to the next turn of the loop, so it is safe inside any loop over connections.
  void remove(ClientId id);
  std::shared_ptr<WsConnection> find(ClientId id) const;

  // Shutdown: every connection is asked to close; `done` runs on this thread once none is left
  // or the deadline passed (then the rest are cut).
  void drain(std::chrono::milliseconds deadline, std::function<void()> done);

  // Protocols above the connections (Engine.IO sessions) hang their timers on the thread's one
  // tick, and their goodbyes on the drain. Register before the thread runs them (on it).
  void add_tick_hook(std::function<void(std::uint32_t now_ms)> hook) { tick_hooks_.push_back(std::move(hook)); }
  void add_drain_hook(std::function<void()> hook) { drain_hooks_.push_back(std::move(hook)); }
  // The tick period; protocols with short heartbeats ask for a finer one.
  void request_tick_period(std::chrono::milliseconds period) {
    if (period < tick_period_) tick_period_ = std::max(period, std::chrono::milliseconds(10));
  }

 private:
  void flush_dirty();
  void run_commands();
  void schedule_tick();
  void on_tick();

  unsigned index_;
  Metrics& metrics_;
  std::uint32_t close_timeout_ms_;
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::chrono::steady_clock::time_point epoch_;
  std::uint32_t now_ms_ = 0;
  std::unique_ptr<std::uint8_t[]> read_buffer_;
  std::vector<std::shared_ptr<WsConnection>> dirty_;
  std::vector<std::shared_ptr<WsConnection>> flushing_;
  bool flush_posted_ = false;
  std::chrono::microseconds write_delay_{0};
  boost::asio::steady_timer flush_timer_;
  bool flush_timer_armed_ = false;
  std::function<void()> on_quiet_;
  std::mutex commands_mutex_;
  std::vector<std::function<void()>> commands_;
  std::vector<std::function<void()>> running_;
  std::vector<ClientId> removed_;
  bool removal_posted_ = false;
  boost::asio::steady_timer tick_;
  std::unordered_map<ClientId, std::shared_ptr<WsConnection>> connections_;
  std::vector<std::function<void(std::uint32_t)>> tick_hooks_;
  std::vector<std::function<void()>> drain_hooks_;
  std::chrono::milliseconds tick_period_{250};
  bool draining_ = false;
  std::uint32_t drain_deadline_ms_ = 0;
  std::function<void()> drain_done_;
  void maybe_trim_heap();
  const EventSink* pressure_;
  std::vector<std::weak_ptr<WsConnection>> parked_;
  std::vector<std::function<void()>> relief_waiters_;
  std::uint64_t trim_seen_total_ = 0;
  std::uint64_t trim_done_total_ = 0;
  std::uint64_t trim_seen_frees_ = 0;
  std::uint64_t trim_done_frees_ = 0;
  std::uint32_t trim_quiet_since_ = 0;
};

}  // namespace sidewire
