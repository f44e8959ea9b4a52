#include "net/worker.hpp"

#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <boost/asio/post.hpp>

#include "log.hpp"
#include "net/ws_connection.hpp"

namespace sidewire {

namespace asio = boost::asio;

const char* limit_name(Limit limit) {
  switch (limit) {
    case Limit::kNamespaces: return "namespaces";
    case Limit::kRooms: return "rooms";
    case Limit::kAttachments: return "attachments";
    case Limit::kHeaders: return "headers";
    case Limit::kQuery: return "query";
    case Limit::kOutgoingQueue: return "outgoingQueue";
    case Limit::kUnfinishedMessage: return "unfinishedMessage";
    case Limit::kEventsForJs: return "eventsForJs";
    case Limit::kPayload: return "payload";
    case Limit::kTokenMissing: return "tokenMissing";
    case Limit::kTokenInvalid: return "tokenInvalid";
    case Limit::kTokenExpired: return "tokenExpired";
    case Limit::kTokenNotYetValid: return "tokenNotYetValid";
    case Limit::kRateLimited: return "rateLimited";
    case Limit::kConnectionsPerIp: return "connectionsPerIp";
    case Limit::kConnectionsPerUser: return "connectionsPerUser";
    case Limit::kConnectRate: return "connectRatePerIp";
    case Limit::kIdleTimeout: return "idleTimeout";
    case Limit::kCount: break;
  }
  return "?";
}

void Metrics::count_disconnect(std::string_view protocol, std::string_view reason) {
  std::string key;
  key.reserve(protocol.size() + 1 + reason.size());
  key.append(protocol).append(1, '\0').append(reason);
  std::lock_guard lock(disconnects_mutex_);
  if (auto it = disconnects_.find(key); it != disconnects_.end()) {
    ++it->second;
  } else if (disconnects_.size() < 256) {  // bounded, whatever the reasons
    disconnects_.emplace(std::move(key), 1);
  }
}

std::vector<std::pair<std::string, std::uint64_t>> Metrics::disconnects() const {
  std::lock_guard lock(disconnects_mutex_);
  return {disconnects_.begin(), disconnects_.end()};
}

double Worker::cpu_seconds() const {
  clockid_t clock;
  timespec ts{};
  if (!thread_.joinable() || pthread_getcpuclockid(const_cast<std::thread&>(thread_).native_handle(), &clock) != 0 ||
      clock_gettime(clock, &ts) != 0) {
    return 0;
  }
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

Worker::Worker(unsigned index, Metrics& metrics, std::uint32_t close_timeout_ms, const EventSink* pressure)
    : index_(index),
      metrics_(metrics),
      close_timeout_ms_(close_timeout_ms),
      guard_(asio::make_work_guard(io_)),
      epoch_(std::chrono::steady_clock::now()),
      read_buffer_(new std::uint8_t[kReadBufferSize]),
      flush_timer_(io_),
      tick_(io_),
      pressure_(pressure) {}

Worker::~Worker() { stop_and_join(); }

namespace {
thread_local Worker* tls_current = nullptr;
}  // namespace

Worker* Worker::current() { return tls_current; }

// After a burst of connections (a storm, a reconnect wave) the allocator keeps the pages the
// handshakes' short-lived buffers used, scattered between the connections that stayed. Once
// things have been quiet for a while, hand the free ones back to the system (process-wide, so
// one thread does it).
void Worker::maybe_trim_heap() {
  const std::uint64_t total = metrics_.connections_total.load(std::memory_order_relaxed);
  const std::uint64_t frees = metrics_.large_frees.load(std::memory_order_relaxed);
  if (total != trim_seen_total_ || frees != trim_seen_frees_) {
    trim_seen_total_ = total;
    trim_seen_frees_ = frees;
    trim_quiet_since_ = now_ms_;
    return;
  }
  if (now_ms_ - trim_quiet_since_ < kTrimQuietMs) return;
  if (total - trim_done_total_ < kTrimAfterConnections && frees - trim_done_frees_ < kTrimAfterLargeFrees) return;
  trim_done_total_ = total;
  trim_done_frees_ = frees;
  ::malloc_trim(0);
  if (on_quiet_) on_quiet_();
}

void Worker::start(int nice) {
  asio::post(io_, [this] { schedule_tick(); });
  thread_ = std::thread([this, nice] {
    tls_current = this;
    const std::string name = "sidewire-io" + std::to_string(index_);
    ::pthread_setname_np(::pthread_self(), name.c_str());  // as top -H and ps show it
    if (nice > 0) {
      // Per thread on Linux: PRIO_PROCESS with a thread id sets that thread's niceness only.
      errno = 0;
      const int current = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
      if (errno == 0 && ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), std::min(19, current + nice)) != 0) {
        log().warn("I/O thread {}: cannot set its niceness: {}", index_, std::strerror(errno));
      }
    }
    // An exception out of a handler must not stop the thread: every connection on it would
    // hang. The handlers that serve one connection catch their own and close that connection;
    // what still gets here is logged and counted, and the loop goes on (io_context::run may be
    // called again after a handler threw).
    for (;;) {
      try {
        io_.run();
        break;
      } catch (const std::exception& e) {
        metrics_.internal_errors.fetch_add(1, std::memory_order_relaxed);
        log().error("I/O thread {}: a handler threw ({}); the thread goes on", index_, e.what());
      } catch (...) {
        metrics_.internal_errors.fetch_add(1, std::memory_order_relaxed);
        log().error("I/O thread {}: a handler threw a non-standard exception; the thread goes on", index_);
      }
    }
  });
}

void Worker::stop_and_join() {
  guard_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
  // The thread is gone: nothing else touches these now.
  dirty_.clear();
  flushing_.clear();
  connections_.clear();
}

void Worker::refresh_clock() {
  now_ms_ = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - epoch_).count());
}

void Worker::mark_dirty(std::shared_ptr<WsConnection> connection) {
  dirty_.push_back(std::move(connection));
  if (write_delay_.count() == 0 || draining_) {
    flush_soon();
    return;
  }
  if (flush_timer_armed_ || flush_posted_) return;  // the pass already coming takes it along
  flush_timer_armed_ = true;
  flush_timer_.expires_after(write_delay_);
  flush_timer_.async_wait([this](const boost::system::error_code& ec) {
    flush_timer_armed_ = false;
    if (!ec) flush_dirty();
  });
}

void Worker::flush_soon() {
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(io_, [this] { flush_dirty(); });
}

void Worker::command(std::function<void()> f) {
  bool schedule;
  {
    std::lock_guard lock(commands_mutex_);
    schedule = commands_.empty();
    commands_.push_back(std::move(f));
  }
  if (schedule) asio::post(io_, [this] { run_commands(); });
}

void Worker::run_commands() {
  {
    std::lock_guard lock(commands_mutex_);
    running_.swap(commands_);
  }
  for (auto& f : running_) {
    try {
      f();
    } catch (const std::exception& e) {
      metrics_.internal_errors.fetch_add(1, std::memory_order_relaxed);
      log().error("I/O thread {}: a command from JS failed: {}", index_, e.what());
    }
  }
  running_.clear();
}

void Worker::flush_dirty() {
  flush_posted_ = false;
  std::swap(dirty_, flushing_);
  for (auto& c : flushing_) {
    try {
      c->flush();
    } catch (const std::exception& e) {
      metrics_.internal_errors.fetch_add(1, std::memory_order_relaxed);
      log().error("connection {}: internal error while writing: {}; closing", c->id(), e.what());
      c->terminate(ws::kInternalError, "internal error");
    }
  }
  flushing_.clear();
}

void Worker::park(std::shared_ptr<WsConnection> connection) {
  metrics_.js_backpressure_pauses.fetch_add(1, std::memory_order_relaxed);
  count_limit(metrics_, Limit::kEventsForJs);
  parked_.push_back(connection);
}

void Worker::when_relieved(std::function<void()> f) { relief_waiters_.push_back(std::move(f)); }

void Worker::resume_parked() {
  if ((parked_.empty() && relief_waiters_.empty()) || js_congested()) return;
  std::vector<std::weak_ptr<WsConnection>> list;
  list.swap(parked_);
  std::vector<std::function<void()>> waiters;
  waiters.swap(relief_waiters_);
  for (auto& weak : list) {
    if (auto c = weak.lock()) c->resume_reading();
  }
  for (auto& f : waiters) f();
}

void Worker::add(std::shared_ptr<WsConnection> connection) {
  const ClientId id = connection->id();
  connections_.emplace(id, std::move(connection));
}

void Worker::remove(ClientId id) {
  // Deferred: the caller may be inside a loop over connections, or inside the connection itself.
  removed_.push_back(id);
  if (!removal_posted_) {
    removal_posted_ = true;
    asio::post(io_, [this] {
      removal_posted_ = false;
      for (ClientId gone : removed_) connections_.erase(gone);
      removed_.clear();
    });
  }
}

std::shared_ptr<WsConnection> Worker::find(ClientId id) const {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second;
}

void Worker::drain(std::chrono::milliseconds deadline, std::function<void()> done) {
  refresh_clock();
  draining_ = true;
  drain_deadline_ms_ = now_ms_ + static_cast<std::uint32_t>(deadline.count());
  drain_done_ = std::move(done);
  for (auto& hook : drain_hooks_) hook();
  for (auto& [id, c] : connections_) {
    if (!c->closes_itself_on_drain()) c->close(ws::kGoingAway, "server shutting down");
  }
  // Connections already waiting for the write delay's timer go now, with their close frames.
  if (!dirty_.empty()) flush_soon();
  tick_.cancel();  // re-arms at the drain's faster pace
}

void Worker::schedule_tick() {
  tick_.expires_after(draining_ ? std::chrono::milliseconds(20) : tick_period_);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec && ec != asio::error::operation_aborted) return;
    // The tick carries every heartbeat and deadline of the thread: it is re-armed whatever
    // one of them threw.
    try {
      if (!ec) on_tick();
    } catch (const std::exception& e) {
      metrics_.internal_errors.fetch_add(1, std::memory_order_relaxed);
      log().error("I/O thread {}: internal error in a timer: {}", index_, e.what());
    }
    schedule_tick();
  });
}

void Worker::on_tick() {
  refresh_clock();
  for (auto& [id, c] : connections_) c->on_tick(now_ms_);
  for (auto& hook : tick_hooks_) hook(now_ms_);
  resume_parked();  // in case a relief was missed
  if (index_ == 0) maybe_trim_heap();
  if (!draining_) return;
  bool any_open = false;
  for (auto& [id, c] : connections_) {
    if (!c->finished()) { any_open = true; break; }
  }
  if (any_open && static_cast<std::int32_t>(now_ms_ - drain_deadline_ms_) < 0) return;
  for (auto& [id, c] : connections_) c->terminate(ws::kGoingAway, "server shutting down");
  draining_ = false;
  if (auto done = std::move(drain_done_)) done();
}

}  // namespace sidewire
