// Concurrency tests of sidewire::Engine, written for ThreadSanitizer (scripts/sanitize.sh runs
// the whole suite under TSan, and under ASan+UBSan; in the normal build they pass too, faster).
//
// Node calls into the engine from its main thread while the I/O threads serve connections; the
// binding's event pump, Next's API routes and the accept thread add more. Here several threads
// do all of it at once against one engine: clients on loopback connect (through the engine's
// own listener and through adopt()), join rooms with join messages, send and close, while other
// threads broadcast, send, join, leave, close, read stats, reconfigure Socket.IO, make polling
// requests and call sio_* with ids that exist and ids that never did, and finally shut the
// engine down and stop it with the traffic still running.
//
// Each test checks what the traffic must have produced (every relayed and broadcast message
// counted at receivers that were there all along, a close for every client, stats back to zero),
// not only that nothing crashed. Counts and durations are bounded: each test takes a few
// seconds, under TSan on 2 cores well under 20 s.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/ws_codec.hpp"
#include "sidewire/engine.hpp"

namespace sw = sidewire;
namespace ws = sidewire::ws;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Event = sw::Event;

namespace {

// Generous: under TSan on 2 busy cores a round trip can take a while.
constexpr milliseconds kIo = 10000ms;

bool wait_until(const std::function<bool()>& pred, milliseconds timeout = kIo) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// What went wrong on the client threads, reported on the test's thread (the first few in full).
class Failures {
 public:
  void add(std::string what) {
    std::lock_guard lock(mutex_);
    ++count_;
    if (notes_.size() < 20) notes_.push_back(std::move(what));
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return count_;
  }
  std::string summary() const {
    std::lock_guard lock(mutex_);
    std::string s;
    for (const auto& n : notes_) s += "\n  " + n;
    return s;
  }

 private:
  mutable std::mutex mutex_;
  std::size_t count_ = 0;
  std::vector<std::string> notes_;
};

// ---------------------------------------------------------------------------------------------
// Sink: counts what the engine reports, keeps the few things the tests look up.
// ---------------------------------------------------------------------------------------------

struct HttpResponse {
  std::uint16_t status = 0;
  std::string body;
};

class CountingSink : public sw::EventSink {
 public:
  void push(Event e) override {
    {
      std::lock_guard lock(mutex_);
      ++by_type_[static_cast<int>(e.type)];
      switch (e.type) {
        case Event::Type::kOpen:
          ++opens_[e.client];
          break;
        case Event::Type::kClose:
          ++closes_[e.client];
          close_codes_[e.client] = e.code;
          break;
        case Event::Type::kHttpResponse:
          responses_[e.client].push_back({e.code, e.data});
          break;
        case Event::Type::kHandoff:
          // What Node's HTTP server would get; nothing in these tests asks for it.
          if (e.number >= 0) ::close(static_cast<int>(e.number));
          break;
        default:
          break;
      }
    }
    cv_.notify_all();
  }

  std::size_t count(Event::Type type) {
    std::lock_guard lock(mutex_);
    return by_type_[static_cast<int>(type)];
  }

  bool wait_count(Event::Type type, std::size_t n, milliseconds timeout = kIo) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return by_type_[static_cast<int>(type)] >= n; });
  }

  // The first response to `request_id` (polling requests get exactly one).
  std::optional<HttpResponse> wait_response(std::uint64_t request_id, milliseconds timeout = kIo) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [&] { return responses_.count(request_id) > 0; })) return std::nullopt;
    return responses_[request_id].front();
  }

  std::map<sw::ClientId, int> opens() {
    std::lock_guard lock(mutex_);
    return opens_;
  }
  std::map<sw::ClientId, int> closes() {
    std::lock_guard lock(mutex_);
    return closes_;
  }
  std::optional<std::uint16_t> close_code(sw::ClientId id) {
    std::lock_guard lock(mutex_);
    auto it = close_codes_.find(id);
    if (it == close_codes_.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::uint64_t, std::size_t> response_counts() {
    std::lock_guard lock(mutex_);
    std::map<std::uint64_t, std::size_t> out;
    for (const auto& [id, list] : responses_) out[id] = list.size();
    return out;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<int, std::size_t> by_type_;
  std::map<sw::ClientId, int> opens_;
  std::map<sw::ClientId, int> closes_;
  std::map<sw::ClientId, std::uint16_t> close_codes_;
  std::map<std::uint64_t, std::vector<HttpResponse>> responses_;
};

// ---------------------------------------------------------------------------------------------
// A tiny blocking WebSocket client (masked frames out, frame parser in).
// ---------------------------------------------------------------------------------------------

struct Frame {
  std::uint8_t opcode = 0;
  std::string payload;
  std::uint16_t close_code() const {
    if (payload.size() < 2) return ws::kNoStatus;
    return static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) | static_cast<std::uint8_t>(payload[1]));
  }
  std::string close_reason() const { return payload.size() > 2 ? payload.substr(2) : std::string(); }
};

std::string random_key(std::mt19937& rng) {
  std::uint8_t raw[16];
  for (auto& b : raw) b = static_cast<std::uint8_t>(rng());
  return ws::base64_encode(raw, sizeof raw);
}

class WsClient {
 public:
  WsClient(int fd, std::uint32_t seed) : fd_(fd), rng_(seed) {
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{static_cast<time_t>(kIo.count() / 1000), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // a write never hangs a test
  }
  ~WsClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  sw::ClientId id = 0;  // known when the client came in through adopt()
  bool eof() const { return eof_; }

  bool write_all(std::string_view data) {
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return false;
      }
    }
    return true;
  }

  bool send(std::uint8_t opcode, std::string_view payload) {
    std::string out;
    out.push_back(static_cast<char>(0x80 | opcode));
    const std::uint64_t n = payload.size();
    if (n < 126) {
      out.push_back(static_cast<char>(0x80 | n));
    } else if (n <= 0xFFFF) {
      out.push_back(static_cast<char>(0x80 | 126));
      out.push_back(static_cast<char>(n >> 8));
      out.push_back(static_cast<char>(n & 0xFF));
    } else {
      out.push_back(static_cast<char>(0x80 | 127));
      for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
    }
    const std::uint32_t mask = static_cast<std::uint32_t>(rng_());
    const std::uint8_t m[4] = {static_cast<std::uint8_t>(mask >> 24), static_cast<std::uint8_t>(mask >> 16),
                               static_cast<std::uint8_t>(mask >> 8), static_cast<std::uint8_t>(mask)};
    out.append(reinterpret_cast<const char*>(m), 4);
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(payload[i] ^ m[i & 3]));
    return write_all(out);
  }
  bool send_text(std::string_view s) { return send(ws::kText, s); }
  bool send_close(std::uint16_t code) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    return send(ws::kClose, p);
  }

  // Sends the upgrade request for `target` (when the client connected to the engine's port)
  // and checks the 101.
  bool upgrade(const std::string& target, std::string* error, milliseconds timeout = kIo) {
    const std::string key = random_key(rng_);
    if (!write_all("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n")) {
      *error = "cannot write the upgrade request";
      return false;
    }
    return expect_101(key, error, timeout);
  }

  bool expect_101(const std::string& key, std::string* error, milliseconds timeout = kIo) {
    const auto head = read_http_head(timeout);
    if (!head) {
      *error = "no handshake response";
      return false;
    }
    if (head->rfind("HTTP/1.1 101 ", 0) != 0 ||
        head->find("\r\nSec-WebSocket-Accept: " + ws::accept_key(key) + "\r\n") == std::string::npos) {
      *error = "bad handshake response: " + head->substr(0, head->find("\r\n"));
      return false;
    }
    return true;
  }

  std::optional<std::string> read_http_head(milliseconds timeout = kIo) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const std::size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = buf_.substr(0, end + 4);
        buf_.erase(0, end + 4);
        return head;
      }
      if (eof_ || !fill(deadline)) return std::nullopt;
    }
  }

  // The next frame, or nullopt on timeout or the end of the connection.
  std::optional<Frame> next_frame(milliseconds timeout = kIo) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (auto f = parse()) return f;
      if (eof_ || !fill(deadline)) return std::nullopt;
    }
  }

  // Frames until one satisfies `pred` (returned), skipping the others; nullopt on timeout/EOF.
  std::optional<Frame> frame_where(const std::function<bool(const Frame&)>& pred, milliseconds timeout = kIo) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      auto f = next_frame(std::max(left, 0ms));
      if (!f) return std::nullopt;
      if (pred(*f)) return f;
    }
  }

  // The close frame, skipping data frames before it.
  std::optional<Frame> close_frame(milliseconds timeout = kIo) {
    return frame_where([](const Frame& f) { return f.opcode == ws::kClose; }, timeout);
  }

  // True once the server ended the TCP connection. Discards what arrives.
  bool wait_eof(milliseconds timeout = kIo) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      buf_.clear();
      if (eof_) return true;
      if (!fill(deadline)) return false;
    }
  }

  void close_now() {
    ::close(fd_);
    fd_ = -1;
  }

 private:
  // Reads what is there, waiting until the deadline (a deadline now or past: looks once).
  bool fill(Clock::time_point deadline) {
    char tmp[16 * 1024];
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n > 0) {
        buf_.append(tmp, static_cast<std::size_t>(n));
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      eof_ = true;  // FIN, or ECONNRESET and friends
      return true;
    }
  }

  std::optional<Frame> parse() {
    if (buf_.size() < 2) return std::nullopt;
    const auto b0 = static_cast<std::uint8_t>(buf_[0]);
    const auto b1 = static_cast<std::uint8_t>(buf_[1]);
    std::uint64_t len = b1 & 0x7F;
    std::size_t pos = 2;
    if (len == 126) {
      if (buf_.size() < 4) return std::nullopt;
      len = (std::uint64_t{static_cast<std::uint8_t>(buf_[2])} << 8) | static_cast<std::uint8_t>(buf_[3]);
      pos = 4;
    } else if (len == 127) {
      if (buf_.size() < 10) return std::nullopt;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<std::uint8_t>(buf_[2 + i]);
      pos = 10;
    }
    if (buf_.size() < pos + len) return std::nullopt;
    Frame f;
    f.opcode = b0 & 0x0F;
    f.payload = buf_.substr(pos, static_cast<std::size_t>(len));
    buf_.erase(0, pos + static_cast<std::size_t>(len));
    return f;
  }

  int fd_;
  std::mt19937 rng_;
  std::string buf_;
  bool eof_ = false;
};

int connect_loopback(std::uint16_t port) {
  const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(c, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(c);
    return -1;
  }
  return c;
}

// A client through the engine's own listener (Engine::listen): upgrade request, 101.
std::unique_ptr<WsClient> connect_listen(std::uint16_t port, const std::string& target, std::uint32_t seed,
                                         std::string* error) {
  const int fd = connect_loopback(port);
  if (fd < 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    return nullptr;
  }
  auto c = std::make_unique<WsClient>(fd, seed);
  if (!c->upgrade(target, error)) return nullptr;
  return c;
}

// A listening socket of the test's own, standing in for Node's server: a connection accepted
// here is handed to Engine::adopt as the binding does. One per thread that adopts.
class Acceptor {
 public:
  Acceptor() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Acceptor() { ::close(fd_); }
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // Connects, accepts and adopts with an upgrade request for `target`; the client is returned
  // before reading anything (`key` is what the 101 must answer).
  std::unique_ptr<WsClient> adopt_raw(sw::Engine& engine, const std::string& target, std::mt19937& rng,
                                      std::string& key, std::string* error) {
    const int c = connect_loopback(port_);
    if (c < 0) {
      *error = std::string("connect: ") + std::strerror(errno);
      return nullptr;
    }
    const int s = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s < 0) {
      *error = std::string("accept: ") + std::strerror(errno);
      ::close(c);
      return nullptr;
    }
    const int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    key = random_key(rng);
    sw::UpgradeRequest r;
    r.method = "GET";
    r.target = target;
    r.headers = {{"Host", "127.0.0.1"},
                 {"Upgrade", "websocket"},
                 {"Connection", "Upgrade"},
                 {"Sec-WebSocket-Key", key},
                 {"Sec-WebSocket-Version", "13"}};
    r.remote_address = "127.0.0.1";
    auto client = std::make_unique<WsClient>(c, static_cast<std::uint32_t>(rng()));
    client->id = engine.adopt(s, std::move(r));
    return client;
  }

  std::unique_ptr<WsClient> adopt(sw::Engine& engine, const std::string& target, std::mt19937& rng,
                                  std::string* error) {
    std::string key;
    auto client = adopt_raw(engine, target, rng, key, error);
    if (!client || !client->expect_101(key, error)) return nullptr;
    return client;
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A Socket.IO client over the WebSocket transport: the Engine.IO open packet, then CONNECT to
// each of `namespaces` ("/" or "/chat") and their CONNECT acks.
std::unique_ptr<WsClient> sio_connect(std::uint16_t port, const std::vector<std::string>& namespaces,
                                      std::uint32_t seed, std::string* error) {
  auto c = connect_listen(port, "/socket.io/?EIO=4&transport=websocket", seed, error);
  if (!c) return nullptr;
  const auto open = c->next_frame();
  if (!open || open->opcode != ws::kText || open->payload.rfind("0{", 0) != 0 ||
      open->payload.find("\"sid\"") == std::string::npos) {
    *error = "no Engine.IO open packet: " + (open ? open->payload : std::string("(none)"));
    return nullptr;
  }
  for (const auto& nsp : namespaces) {
    const std::string prefix = nsp == "/" ? "40" : "40" + nsp + ",";
    if (!c->send_text(prefix)) {
      *error = "cannot send CONNECT";
      return nullptr;
    }
    // Broadcasts to "/" may come before the second ack: skip them.
    const auto ack = c->frame_where([&](const Frame& f) {
      if (f.opcode == ws::kClose) return true;
      return f.opcode == ws::kText && f.payload.rfind("4", 0) == 0 && f.payload.rfind("42", 0) != 0;
    });
    if (!ack || ack->payload.rfind(prefix + "{\"sid\":", 0) != 0) {
      *error = "no CONNECT ack for " + nsp + ": " + (ack ? ack->payload : std::string("(none)"));
      return nullptr;
    }
  }
  return c;
}

sw::HttpRequest polling(const std::string& method, const std::string& sid, std::string body = "") {
  sw::HttpRequest r;
  r.method = method;
  r.target = "/socket.io/?EIO=4&transport=polling" + (sid.empty() ? std::string() : "&sid=" + sid);
  r.headers = {{"Host", "127.0.0.1"}};
  if (method == "POST") r.headers.emplace_back("Content-Type", "text/plain;charset=UTF-8");
  r.body = std::move(body);
  r.remote_address = "127.0.0.1";
  return r;
}

// Threads joined on destruction, after clearing the flags they loop on (so that an ASSERT
// leaving the test early still ends and joins every thread it started).
class Threads {
 public:
  explicit Threads(std::initializer_list<std::atomic<bool>*> stop = {}) : stop_(stop) {}
  ~Threads() {
    for (auto* flag : stop_) *flag = false;
    join();
  }
  template <typename F>
  void spawn(F&& f) {
    threads_.emplace_back(std::forward<F>(f));
  }
  void join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  std::vector<std::atomic<bool>*> stop_;
  std::vector<std::thread> threads_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Raw channels: connections come and go on several threads while others send commands.
// ---------------------------------------------------------------------------------------------

TEST(EngineThreads, ChannelChurnWithConcurrentCommandsFromOtherThreads) {
  constexpr int kObservers = 3;
  constexpr int kChurners = 4;   // threads, each connecting kRounds clients one after another
  constexpr int kRounds = 25;
  constexpr int kMessages = 5;   // relayed by each churning client
  constexpr int kVictims = 20;    // clients closed by the API (engine.close) from another thread
  constexpr int kMinBroadcasts = 200;  // and more, until the last client thread is done

  auto sink = std::make_shared<CountingSink>();
  sw::EngineOptions options;
  options.io_threads = 3;
  options.close_timeout_ms = 2000;
  sw::Engine engine(options, sink);
  sw::ChannelConfig cfg;
  cfg.path = "/ws/churn";
  cfg.room_query = "room";
  cfg.relay = true;
  cfg.join_messages = true;
  cfg.ping_interval_ms = 0;
  const auto ch_opt = engine.add_channel(cfg);
  ASSERT_TRUE(ch_opt);
  const std::uint32_t ch = *ch_opt;
  engine.set_channel_hooks(ch, /*open=*/true, /*message=*/true, /*close=*/true);
  const std::uint16_t port = engine.listen("127.0.0.1", 0, 256, 2);
  ASSERT_GT(port, 0);

  Failures failures;
  std::mt19937 rng(7);

  // Observers are there all along: they must get every relayed message and every broadcast.
  Acceptor main_acceptor;
  std::vector<std::unique_ptr<WsClient>> observers;
  for (int i = 0; i < kObservers; ++i) {
    std::string error;
    observers.push_back(main_acceptor.adopt(engine, "/ws/churn?room=obs", rng, &error));
    ASSERT_TRUE(observers.back()) << error;
  }
  ASSERT_TRUE(wait_until([&] { return engine.room_size(ch, "obs") == kObservers; }));
  const sw::ClientId excluded = observers[0]->id;

  struct Seen {
    std::atomic<int> relayed{0}, broadcast{0}, except_broadcast{0}, other{0};
  };
  std::vector<Seen> seen(kObservers);
  std::atomic<bool> observing{true};
  std::atomic<bool> running{true};
  Threads observer_threads{&observing};
  for (int i = 0; i < kObservers; ++i) {
    observer_threads.spawn([&, i] {
      while (observing) {
        const auto f = observers[i]->next_frame(50ms);
        if (!f) {
          if (observers[i]->eof()) {
            failures.add("observer " + std::to_string(i) + " lost its connection");
            return;
          }
          continue;
        }
        const std::string& p = f->payload;
        if (f->opcode == ws::kText && p.rfind("m|", 0) == 0) ++seen[i].relayed;
        else if (f->opcode == ws::kText && p.rfind("b|", 0) == 0) ++seen[i].broadcast;
        else if (f->opcode == ws::kText && p.rfind("x|", 0) == 0) ++seen[i].except_broadcast;
        else ++seen[i].other;
      }
    });
  }

  Threads workers;
  std::atomic<int> client_threads_left{kChurners + 1};  // the churners and the victims
  // Churners: connect (engine listener or adopt, alternately), join a room by message, relay,
  // leave, sync with a ping, then close cleanly or just drop the TCP connection.
  for (int t = 0; t < kChurners; ++t) {
    workers.spawn([&, t] {
      std::mt19937 local(100 + t);
      Acceptor acceptor;
      for (int r = 0; r < kRounds; ++r) {
        const std::string who = "churner " + std::to_string(t) + "/" + std::to_string(r);
        std::string error;
        auto c = r % 2 == 0 ? connect_listen(port, "/ws/churn?room=obs", static_cast<std::uint32_t>(local()), &error)
                            : acceptor.adopt(engine, "/ws/churn?room=obs", local, &error);
        if (!c) {
          failures.add(who + ": " + error);
          continue;
        }
        const std::string room = "r" + std::to_string(t);
        bool ok = c->send_text(R"({"join":")" + room + "\"}");
        for (int m = 0; m < kMessages && ok; ++m) {
          ok = c->send_text("m|" + std::to_string(t) + "|" + std::to_string(r) + "|" + std::to_string(m));
        }
        ok = ok && c->send_text(R"({"leave":")" + room + "\"}");
        const std::string sync = "sync " + who;
        ok = ok && c->send(ws::kPing, sync);
        // The pong comes after the server handled everything sent before the ping.
        if (!ok || !c->frame_where([&](const Frame& f) { return f.opcode == ws::kPong && f.payload == sync; })) {
          failures.add(who + ": no pong");
          continue;
        }
        if (r % 3 == 0) {
          c->close_now();  // abrupt: reported as 1006
          continue;
        }
        if (!c->send_close(1000)) {
          failures.add(who + ": cannot send close");
          continue;
        }
        const auto f = c->close_frame();
        if (!f || f->close_code() != 1000) {
          failures.add(who + ": close not echoed with 1000");
          continue;
        }
        if (!c->wait_eof()) failures.add(who + ": no TCP close after the closing handshake");
      }
      --client_threads_left;
    });
  }

  // Victims come in through adopt; another thread closes them from the API.
  std::mutex victims_mutex;
  std::condition_variable victims_cv;
  std::deque<sw::ClientId> victim_ids;
  bool victims_done = false;
  std::vector<sw::ClientId> victims_seen;
  workers.spawn([&] {
    std::mt19937 local(999);
    Acceptor acceptor;
    for (int v = 0; v < kVictims; ++v) {
      const std::string who = "victim " + std::to_string(v);
      std::string error;
      auto c = acceptor.adopt(engine, "/ws/churn", local, &error);
      if (!c) {
        failures.add(who + ": " + error);
        continue;
      }
      {
        std::lock_guard lock(victims_mutex);
        victim_ids.push_back(c->id);
        victims_seen.push_back(c->id);
      }
      victims_cv.notify_all();
      const std::string direct = "direct|" + std::to_string(c->id);
      // Broadcasts to the whole channel come too; the direct message, then the close, must.
      const auto got = c->frame_where([&](const Frame& f) { return f.opcode == ws::kClose || f.payload == direct; });
      if (!got || got->payload != direct) {
        failures.add(who + ": no direct message before the close");
        continue;
      }
      const auto f = c->close_frame();
      if (!f || f->close_code() != 4000 || f->close_reason() != "bye") {
        failures.add(who + ": no close 4000 \"bye\"");
        continue;
      }
      c->send_close(4000);
      if (!c->wait_eof()) failures.add(who + ": no TCP close");
    }
    --client_threads_left;
    std::lock_guard lock(victims_mutex);
    victims_done = true;
    victims_cv.notify_all();
  });
  workers.spawn([&] {
    std::mt19937 local(5);
    for (;;) {
      sw::ClientId id;
      {
        std::unique_lock lock(victims_mutex);
        victims_cv.wait(lock, [&] { return !victim_ids.empty() || victims_done; });
        if (victim_ids.empty()) return;
        id = victim_ids.front();
        victim_ids.pop_front();
      }
      engine.join(id, "api");
      engine.send(id, "direct|" + std::to_string(id), false);
      engine.leave(id, "api");
      engine.close(id, 4000, "bye");
      // Ids that never were, on every thread's queue: ignored.
      const sw::ClientId fake = (static_cast<sw::ClientId>(local() | 1u) << 20) | (local() % 4);
      engine.send(fake, "nobody", true);
      engine.join(fake, "api");
      engine.leave(fake, "api");
      engine.close(fake, 4001, "nobody");
    }
  });

  // Broadcasts to everyone, to the observers' room, to it except one, and to nobody.
  int broadcasts = 0;
  int except_broadcasts = 0;
  workers.spawn([&] {
    for (int i = 0; i < kMinBroadcasts || (client_threads_left > 0 && i < 100000); ++i, ++broadcasts) {
      engine.broadcast(ch, i % 2 ? "obs" : "", "b|" + std::to_string(i), false);
      if (i % 10 == 0) {
        engine.broadcast(ch, "obs", "x|" + std::to_string(i), false, excluded);
        ++except_broadcasts;
      }
      if (i % 4 == 0) engine.broadcast(ch, "nobody", "lost", true);
      if (i % 4 == 0) std::this_thread::sleep_for(1ms);
    }
  });

  // Readers of stats, hook switches and new channels, all the while.
  std::atomic<int> low_room_size{0};
  Threads pokers{&running};
  pokers.spawn([&] {
    int n = 0;
    while (running) {
      const auto s = engine.stats();
      if (s.connections < static_cast<std::uint64_t>(kObservers)) ++low_room_size;
      if (engine.room_size(ch, "obs") < static_cast<std::uint64_t>(kObservers)) ++low_room_size;
      (void)engine.connection_count(ch);
      (void)engine.sio_stats();  // Socket.IO not configured: empty
      engine.set_channel_hooks(ch, true, (n & 1) != 0, true);
      if (n < 16) {
        sw::ChannelConfig extra;
        extra.path = "/ws/extra" + std::to_string(n);
        const auto index = engine.add_channel(extra);
        if (index) engine.broadcast(*index, "", "empty channel", false);
      }
      ++n;
      std::this_thread::sleep_for(1ms);
    }
  });

  workers.join();
  running = false;
  pokers.join();
  engine.set_channel_hooks(ch, true, true, true);

  const int relayed_expected = kChurners * kRounds * kMessages;
  auto all_seen = [&] {
    for (int i = 0; i < kObservers; ++i) {
      if (seen[i].relayed < relayed_expected || seen[i].broadcast < broadcasts ||
          seen[i].except_broadcast < (i == 0 ? 0 : except_broadcasts)) {
        return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(wait_until(all_seen));
  std::this_thread::sleep_for(100ms);  // anything extra (a duplicate) would show up by now
  observing = false;
  observer_threads.join();
  EXPECT_EQ(failures.count(), 0u) << failures.summary();
  for (int i = 0; i < kObservers; ++i) {
    SCOPED_TRACE("observer " + std::to_string(i));
    EXPECT_EQ(seen[i].relayed, relayed_expected);
    EXPECT_EQ(seen[i].broadcast, broadcasts);
    EXPECT_EQ(seen[i].except_broadcast, i == 0 ? 0 : except_broadcasts);
    EXPECT_EQ(seen[i].other, 0);
  }
  EXPECT_EQ(low_room_size, 0) << "the observers were missing from stats or their room meanwhile";

  // The observers leave cleanly; then everything is back to zero.
  for (auto& o : observers) {
    ASSERT_TRUE(o->send_close(1000));
    const auto f = o->close_frame();
    EXPECT_TRUE(f && f->close_code() == 1000);
    EXPECT_TRUE(o->wait_eof());
  }
  const std::size_t total = kObservers + kChurners * kRounds + kVictims;
  EXPECT_TRUE(wait_until([&] { return sink->count(Event::Type::kClose) >= total; }))
      << sink->count(Event::Type::kClose) << " closes for " << total << " connections";
  EXPECT_TRUE(wait_until([&] { return engine.stats().connections == 0 && engine.connection_count(ch) == 0; }))
      << engine.stats().connections;
  const auto stats = engine.stats();
  EXPECT_EQ(stats.connections_total, total);
  EXPECT_EQ(stats.messages_received, static_cast<std::uint64_t>(kChurners * kRounds * (kMessages + 2)));
  EXPECT_EQ(stats.protocol_errors, 0u);
  EXPECT_EQ(stats.internal_errors, 0u);
  EXPECT_EQ(stats.upgrades_refused, 0u);
  EXPECT_EQ(stats.backpressure_drops, 0u);
  ASSERT_GE(stats.channels.size(), 1u);
  EXPECT_EQ(stats.channels[ch].connections, 0u);
  EXPECT_TRUE(stats.channels[ch].rooms.empty()) << stats.channels[ch].rooms.front().first;
  EXPECT_EQ(engine.room_size(ch, "obs"), 0u);
  EXPECT_EQ(engine.room_size(ch, "api"), 0u);
  EXPECT_EQ(stats.channels.size(), 17u);  // the 16 extra channels were all added

  // Every connection opened once and closed once.
  const auto opens = sink->opens();
  const auto closes = sink->closes();
  EXPECT_EQ(opens.size(), total);
  EXPECT_EQ(closes.size(), total);
  for (const auto& [id, n] : opens) {
    EXPECT_EQ(n, 1) << "kOpen for " << id;
    EXPECT_EQ(closes.count(id) ? closes.at(id) : 0, 1) << "kClose for " << id;
  }
  for (const auto id : victims_seen) EXPECT_EQ(sink->close_code(id), std::optional<std::uint16_t>(4000)) << id;
  EXPECT_EQ(sink->count(Event::Type::kRefused), 0u);
  EXPECT_EQ(sink->count(Event::Type::kHandoff), 0u);
  engine.stop();
}

// ---------------------------------------------------------------------------------------------
// Socket.IO: polling handshakes and WebSocket sessions from several threads while Socket.IO is
// reconfigured and sio_* calls (with real and made-up ids) come from others.
// ---------------------------------------------------------------------------------------------

TEST(EngineThreads, SocketIoTrafficWhileReconfiguring) {
  constexpr int kStable = 3;        // WebSocket clients there all along: they count broadcasts
  constexpr int kPollers = 3;       // threads doing whole polling sessions
  constexpr int kPollRounds = 20;
  constexpr int kWsChurners = 2;
  constexpr int kWsRounds = 15;
  constexpr int kMinBroadcasts = 150;  // and more, until the last client thread is done

  auto sink = std::make_shared<CountingSink>();
  sw::EngineOptions options;
  options.io_threads = 3;
  sw::Engine engine(options, sink);
  sw::SocketIoConfig config;
  engine.configure_socketio(config);
  const std::uint32_t chat = engine.sio_add_namespace("/chat");
  engine.sio_set_namespace_hooks(chat, false, false);
  const std::uint16_t port = engine.listen("127.0.0.1", 0, 256);

  Failures failures;
  std::vector<std::unique_ptr<WsClient>> stable;
  for (int i = 0; i < kStable; ++i) {
    std::string error;
    stable.push_back(sio_connect(port, {"/"}, 40 + i, &error));
    ASSERT_TRUE(stable.back()) << error;
  }
  ASSERT_TRUE(wait_until([&] { return engine.sio_stats().sockets == kStable; }));

  std::atomic<bool> reading{true};
  std::atomic<bool> running{true};
  std::vector<std::atomic<int>> ticks(kStable);
  Threads readers{&reading};
  for (int i = 0; i < kStable; ++i) {
    readers.spawn([&, i] {
      while (reading) {
        const auto f = stable[i]->next_frame(50ms);
        if (!f) {
          if (stable[i]->eof()) {
            failures.add("stable client " + std::to_string(i) + " lost its connection");
            return;
          }
          continue;
        }
        if (f->opcode == ws::kText && f->payload == "2") {
          stable[i]->send_text("3");  // Engine.IO ping: pong
        } else if (f->opcode == ws::kText && f->payload.rfind("42", 0) == 0 &&
                   f->payload.find("[\"tick\",") != std::string::npos) {
          ++ticks[i];
        }
      }
    });
  }

  std::atomic<std::uint64_t> next_request{1};
  std::atomic<int> client_threads_left{kPollers + kWsChurners};
  Threads workers;
  // Whole polling sessions: handshake, CONNECT, its ack, the client's close, then the sid is gone.
  for (int t = 0; t < kPollers; ++t) {
    workers.spawn([&, t] {
      for (int r = 0; r < kPollRounds; ++r) {
        const std::string who = "poller " + std::to_string(t) + "/" + std::to_string(r);
        const std::uint64_t hs = next_request++;
        if (engine.socketio_request(hs, polling("GET", "")) == 0) failures.add(who + ": handshake got no connection id");
        const auto open = sink->wait_response(hs);
        if (!open || open->status != 200 || open->body.rfind("0{", 0) != 0) {
          failures.add(who + ": bad handshake response");
          continue;
        }
        const std::size_t at = open->body.find("\"sid\":\"");
        const std::string sid = open->body.substr(at + 7, open->body.find('"', at + 7) - at - 7);
        const std::uint64_t post = next_request++;
        engine.socketio_request(post, polling("POST", sid, "40"));
        const auto posted = sink->wait_response(post);
        if (!posted || posted->status != 200 || posted->body != "ok") {
          failures.add(who + ": CONNECT not taken: " + (posted ? posted->body : "(no response)"));
          continue;
        }
        const std::uint64_t get = next_request++;
        engine.socketio_request(get, polling("GET", sid));
        const auto got = sink->wait_response(get);
        if (!got || got->status != 200 || got->body.rfind("40{\"sid\":", 0) != 0) {
          failures.add(who + ": no CONNECT ack: " + (got ? got->body.substr(0, 80) : "(no response)"));
          continue;
        }
        const std::uint64_t bye = next_request++;
        engine.socketio_request(bye, polling("POST", sid, "1"));  // the client closes the session
        const auto closed = sink->wait_response(bye);
        if (!closed || closed->status != 200) {
          failures.add(who + ": close packet not taken");
          continue;
        }
        const std::uint64_t after = next_request++;
        engine.socketio_request(after, polling("GET", sid));
        const auto gone = sink->wait_response(after);
        if (!gone || gone->status != 400 || gone->body.find("Session ID unknown") == std::string::npos) {
          failures.add(who + ": the closed session still answers: " + (gone ? gone->body : "(no response)"));
        }
      }
      --client_threads_left;
    });
  }
  // WebSocket sessions that come and go, in two namespaces.
  for (int t = 0; t < kWsChurners; ++t) {
    workers.spawn([&, t] {
      for (int r = 0; r < kWsRounds; ++r) {
        const std::string who = "ws churner " + std::to_string(t) + "/" + std::to_string(r);
        std::string error;
        auto c = sio_connect(port, {"/", "/chat"}, 300 + t * 100 + r, &error);
        if (!c) {
          failures.add(who + ": " + error);
          continue;
        }
        c->send_text(R"(42["hello",1])");
        c->send_text("41/chat,");
        if (r % 2) {
          c->close_now();
          continue;
        }
        c->send_close(1000);
        const auto f = c->close_frame();
        if (!f) failures.add(who + ": no close frame");
        if (!c->wait_eof()) failures.add(who + ": no TCP close");
      }
      --client_threads_left;
    });
  }
  // Broadcasts, some with an ack id (one count per I/O thread comes back for each).
  int broadcasts = 0;
  int acked = 0;
  workers.spawn([&] {
    for (int i = 0; i < kMinBroadcasts || (client_threads_left > 0 && i < 100000); ++i, ++broadcasts) {
      const bool with_ack = i % 10 == 0;
      engine.sio_broadcast({0, {}, {}}, "[\"tick\"," + std::to_string(i) + "]", {}, with_ack ? 1000 + i : -1, false);
      acked += with_ack ? 1 : 0;
      engine.sio_broadcast({chat, {"nobody"}, {}}, R"(["lost"])", {}, -1, true);
      if (i % 3 == 0) std::this_thread::sleep_for(1ms);
    }
  });

  // Reconfiguring while all of the above runs: same path and transports, other timings.
  Threads pokers{&running};
  pokers.spawn([&] {
    int n = 0;
    while (running) {
      sw::SocketIoConfig c = config;
      c.ping_interval_ms = n % 2 ? 25000 : 30000;
      c.max_http_buffer_size = n % 2 ? 1000000 : 2000000;
      c.connect_timeout_ms = n % 2 ? 45000 : 40000;
      engine.configure_socketio(c);
      ++n;
      std::this_thread::sleep_for(2ms);
    }
  });
  // sio_* with ids that never were, fetches and selections, stats.
  int fetches = 0;
  pokers.spawn([&] {
    std::mt19937 local(11);
    while (running) {
      const sw::ClientId fake = (static_cast<sw::ClientId>(local() | 1u) << 20) | (local() % 4);
      engine.sio_emit(fake, R"(["nobody"])", {}, -1, false);
      engine.sio_ack(fake, 3, "[]", {});
      engine.sio_join(fake, {"a", "b"});
      engine.sio_leave(fake, "a");
      engine.sio_accept(fake, 0);
      engine.sio_reject(fake, R"({"message":"no"})");
      engine.sio_disconnect(fake, local() % 2 == 0);
      engine.socketio_request_aborted(1u << 30 | local());
      engine.sio_sockets_join({0, {}, {}}, {"joined"});
      engine.sio_sockets_leave({0, {"joined"}, {}}, {"joined"});
      engine.sio_fetch_sockets(5000 + fetches++, {0, {}, {}});
      const auto s = engine.sio_stats();
      (void)s;
      (void)engine.stats();
      std::this_thread::sleep_for(1ms);
    }
  });

  workers.join();
  running = false;
  pokers.join();

  EXPECT_TRUE(wait_until([&] {
    for (auto& t : ticks) {
      if (t < broadcasts) return false;
    }
    return true;
  }));
  std::this_thread::sleep_for(100ms);
  reading = false;
  readers.join();
  EXPECT_EQ(failures.count(), 0u) << failures.summary();
  for (int i = 0; i < kStable; ++i) EXPECT_EQ(ticks[i], broadcasts) << "stable client " << i;

  // Every polling request was answered exactly once.
  const auto counts = sink->response_counts();
  EXPECT_EQ(counts.size(), next_request - 1);
  for (const auto& [id, n] : counts) EXPECT_EQ(n, 1u) << "request " << id;
  EXPECT_TRUE(sink->wait_count(Event::Type::kSioFetch, fetches)) << sink->count(Event::Type::kSioFetch);
  EXPECT_TRUE(sink->wait_count(Event::Type::kSioBroadcastCount, static_cast<std::size_t>(acked) * options.io_threads));

  for (auto& c : stable) {
    ASSERT_TRUE(c->send_close(1000));
    EXPECT_TRUE(c->close_frame());
    EXPECT_TRUE(c->wait_eof());
  }
  EXPECT_TRUE(wait_until([&] {
    const auto s = engine.sio_stats();
    return s.sessions == 0 && s.sockets == 0 && engine.stats().connections == 0;
  })) << engine.sio_stats().sessions << " sessions, " << engine.sio_stats().sockets << " sockets, "
      << engine.stats().connections << " connections";
  EXPECT_EQ(engine.stats().internal_errors, 0u);
  engine.stop();
}

// ---------------------------------------------------------------------------------------------
// shutdown() and stop() while clients send, connect and the API is busy.
// ---------------------------------------------------------------------------------------------

TEST(EngineThreads, ShutdownAndStopWhileTrafficRuns) {
  constexpr int kChannelClients = 6;
  constexpr int kSioClients = 3;

  auto sink = std::make_shared<CountingSink>();
  sw::EngineOptions options;
  options.io_threads = 3;
  options.close_timeout_ms = 1000;
  sw::Engine engine(options, sink);
  sw::ChannelConfig cfg;
  cfg.path = "/ws/live";
  cfg.room_query = "room";
  cfg.relay = true;
  cfg.ping_interval_ms = 0;
  const std::uint32_t ch = *engine.add_channel(cfg);
  engine.set_channel_hooks(ch, true, false, true);
  engine.configure_socketio(sw::SocketIoConfig{});
  const std::uint16_t port = engine.listen("127.0.0.1", 0, 256);

  Failures failures;
  std::mt19937 rng(3);
  Acceptor acceptor;
  std::vector<std::unique_ptr<WsClient>> clients;  // channel clients, then Socket.IO ones
  std::vector<sw::ClientId> known_ids;
  for (int i = 0; i < kChannelClients; ++i) {
    std::string error;
    clients.push_back(i % 2 ? connect_listen(port, "/ws/live?room=live", 60 + i, &error)
                            : acceptor.adopt(engine, "/ws/live?room=live", rng, &error));
    ASSERT_TRUE(clients.back()) << error;
    if (clients.back()->id) known_ids.push_back(clients.back()->id);
  }
  for (int i = 0; i < kSioClients; ++i) {
    std::string error;
    clients.push_back(sio_connect(port, {"/"}, 80 + i, &error));
    ASSERT_TRUE(clients.back()) << error;
  }
  ASSERT_TRUE(wait_until([&] { return engine.room_size(ch, "live") == kChannelClients; }));

  std::atomic<bool> shut{false};     // shutdown() has returned
  std::atomic<bool> running{true};   // the API threads and the connector
  std::vector<std::uint16_t> close_codes(clients.size(), 0);
  Threads client_threads;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    client_threads.spawn([&, i] {
      WsClient& c = *clients[i];
      const bool sio = i >= static_cast<std::size_t>(kChannelClients);
      bool can_send = true;
      bool closed = false;
      // Send one message per turn and read everything that came, until the server's close frame.
      for (int n = 0; !closed && !c.eof(); ++n) {
        if (can_send) can_send = c.send_text(sio ? R"(42["x",)" + std::to_string(n) + "]" : "live " + std::to_string(n));
        for (auto wait = can_send ? 2ms : kIo; !closed;) {
          const auto f = c.next_frame(wait);
          if (!f) break;
          wait = 0ms;
          if (f->opcode == ws::kClose) {
            close_codes[i] = f->close_code();
            c.send_close(f->close_code());
            closed = true;
          } else if (sio && f->opcode == ws::kText && f->payload == "2") {
            c.send_text("3");
          }
        }
        if (!can_send && !closed) break;  // the server is gone and no close frame came
      }
      if (!c.wait_eof()) failures.add("client " + std::to_string(i) + ": no TCP close after shutdown");
    });
  }

  Threads busy{&running};
  // New connections all along: answered before the shutdown; refused (503, or not accepted at
  // all) once shutdown() has returned.
  std::atomic<int> upgraded_after{0};
  std::atomic<int> refused_after{0};
  std::atomic<bool> stopped{false};  // stop() was called: an adoption may never be answered
  busy.spawn([&] {
    std::mt19937 local(17);
    Acceptor own;
    for (int n = 0; running && !stopped; ++n) {
      const bool shut_before = shut;
      if (n % 2 == 0) {
        std::string key, error;
        auto c = own.adopt_raw(engine, "/ws/live?room=late", local, key, &error);
        if (!c) continue;
        const auto head = c->read_http_head(3000ms);
        if (head && head->rfind("HTTP/1.1 101 ", 0) == 0) {
          if (shut_before) ++upgraded_after;
          c->send_close(1000);
          c->close_frame(3000ms);
        } else if (shut_before && head && head->rfind("HTTP/1.1 503 ", 0) == 0) {
          ++refused_after;
        } else if (shut_before && !stopped) {
          failures.add("an adopted connection after shutdown got " + (head ? head->substr(0, 20) : std::string("nothing")));
        }
      } else {
        const int fd = connect_loopback(port);
        if (fd < 0) continue;  // not listening any more
        WsClient c(fd, static_cast<std::uint32_t>(local()));
        std::string error;
        if (c.upgrade("/ws/live", &error, 3000ms)) {
          if (shut_before) ++upgraded_after;
          c.close_now();
        }
      }
    }
  });
  // The API, through the shutdown and the stop.
  std::mutex after_mutex;
  std::vector<std::uint64_t> handshakes_after;  // polling handshakes made once shutdown() returned
  busy.spawn([&] {
    std::mt19937 local(23);
    std::uint64_t request = 1;
    for (int n = 0; running; ++n) {
      if (shut && !stopped) {
        std::lock_guard lock(after_mutex);
        handshakes_after.push_back(request);
      }
      engine.broadcast(ch, n % 2 ? "live" : "", "api " + std::to_string(n), n % 3 == 0);
      engine.send(known_ids[n % known_ids.size()], "to you", false);
      if (n % 7 == 0) engine.join(known_ids[n % known_ids.size()], "extra");
      if (n % 7 == 3) engine.leave(known_ids[n % known_ids.size()], "extra");
      engine.sio_broadcast({0, {}, {}}, R"(["news"])", {}, -1, n % 2 == 0);
      engine.socketio_request(request++, polling("GET", ""));
      (void)engine.stats();
      (void)engine.sio_stats();
      (void)engine.room_size(ch, "live");
      std::this_thread::sleep_for(1ms);
    }
  });

  std::this_thread::sleep_for(300ms);
  engine.shutdown(800ms);
  shut = true;
  EXPECT_TRUE(sink->wait_count(Event::Type::kShutdown, 1, 10000ms)) << "no kShutdown";
  client_threads.join();
  for (std::size_t i = 0; i < clients.size(); ++i) {
    EXPECT_EQ(close_codes[i], ws::kGoingAway) << "client " << i << " (" << (i < kChannelClients ? "channel" : "Socket.IO") << ")";
  }
  EXPECT_TRUE(wait_until([&] { return engine.stats().connections == 0; })) << engine.stats().connections;
  EXPECT_TRUE(wait_until([&] { return engine.sio_stats().sessions == 0; }, 3000ms))
      << engine.sio_stats().sessions << " Engine.IO sessions left after the shutdown";
  EXPECT_EQ(engine.connection_count(ch), 0u);
  EXPECT_EQ(engine.room_size(ch, "live"), 0u);
  for (const auto id : known_ids) EXPECT_EQ(sink->close_code(id), std::optional<std::uint16_t>(ws::kGoingAway)) << id;

  EXPECT_TRUE(wait_until([&] { return refused_after > 0; })) << "no adoption refused with 503 after shutdown()";

  // stop() from two threads at once, with the API still being called.
  stopped = true;
  std::thread other([&] { engine.stop(); });
  engine.stop();
  other.join();
  std::this_thread::sleep_for(50ms);
  running = false;
  busy.join();
  EXPECT_EQ(upgraded_after, 0) << "connections upgraded after shutdown() returned";
  {
    // Like an upgrade, a polling handshake after shutdown() must not open a session.
    std::lock_guard lock(after_mutex);
    std::size_t opened = 0;
    for (const auto id : handshakes_after) {
      const auto r = sink->wait_response(id, 0ms);
      if (r && r->status == 200) ++opened;
    }
    EXPECT_EQ(opened, 0u) << "of " << handshakes_after.size()
                          << " polling handshakes made after shutdown() returned, answered 200 (a new session)";
  }
  EXPECT_EQ(failures.count(), 0u) << failures.summary();
  EXPECT_EQ(sink->count(Event::Type::kShutdown), 1u);
  engine.shutdown(100ms);  // after stop: nothing, no second kShutdown
  EXPECT_EQ(sink->count(Event::Type::kShutdown), 1u);
}

// ---------------------------------------------------------------------------------------------
// An engine destroyed (no shutdown) with connections live and being made: nothing may outlive
// it or touch it afterwards (ASan), and no thread may be left blocked.
// ---------------------------------------------------------------------------------------------

TEST(EngineThreads, DestroyedWithLiveConnectionsAndTrafficInFlight) {
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto sink = std::make_shared<CountingSink>();
    sw::EngineOptions options;
    options.io_threads = 2;
    auto engine = std::make_unique<sw::Engine>(options, sink);
    sw::ChannelConfig cfg;
    cfg.path = "/ws/d";
    cfg.room_query = "room";
    cfg.relay = true;
    cfg.ping_interval_ms = 0;
    const std::uint32_t ch = *engine->add_channel(cfg);
    engine->configure_socketio(sw::SocketIoConfig{});
    const std::uint16_t port = engine->listen("127.0.0.1", 0, 128);

    std::vector<std::unique_ptr<WsClient>> live;
    for (int i = 0; i < 4; ++i) {
      std::string error;
      live.push_back(connect_listen(port, "/ws/d?room=r", 500 + i, &error));
      ASSERT_TRUE(live.back()) << error;
      live.push_back(sio_connect(port, {"/"}, 600 + i, &error));
      ASSERT_TRUE(live.back()) << error;
    }
    // A polling session holding a GET.
    const std::uint64_t hs = 1;
    engine->socketio_request(hs, polling("GET", ""));
    const auto open = sink->wait_response(hs);
    ASSERT_TRUE(open && open->status == 200);
    const std::size_t at = open->body.find("\"sid\":\"");
    const std::string sid = open->body.substr(at + 7, open->body.find('"', at + 7) - at - 7);
    engine->socketio_request(2, polling("POST", sid, "40"));
    ASSERT_TRUE(sink->wait_response(2));
    engine->socketio_request(3, polling("GET", sid));  // the CONNECT ack
    ASSERT_TRUE(sink->wait_response(3));
    engine->socketio_request(4, polling("GET", sid));  // held

    std::atomic<bool> running{true};
    Threads traffic{&running};
    for (std::size_t i = 0; i < live.size(); ++i) {
      // live[] alternates: a channel client, then a Socket.IO one (which sends real EVENTs, so
      // that its session is still open when the engine goes).
      traffic.spawn([&, c = live[i].get(), sio = i % 2 == 1] {
        for (int n = 0; running && c->send_text(sio ? R"(42["t",)" + std::to_string(n) + "]" : "t " + std::to_string(n));
             ++n) {
          while (c->next_frame(0ms)) {
          }
          std::this_thread::sleep_for(1ms);
        }
      });
    }
    // Connections being made as the engine goes: each is answered, or closed; none may be
    // left open and unanswered (a descriptor the engine took and never closed).
    std::atomic<int> hung{0};
    traffic.spawn([&] {
      std::mt19937 local(round);
      while (running) {
        const int fd = connect_loopback(port);
        if (fd < 0) break;
        WsClient c(fd, static_cast<std::uint32_t>(local()));
        std::mt19937 keys(local());
        const std::string request = "GET /ws/d?room=r HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                    "Connection: Upgrade\r\nSec-WebSocket-Key: " + random_key(keys) +
                                    "\r\nSec-WebSocket-Version: 13\r\n\r\n";
        if (!c.write_all(request)) continue;  // reset: the engine closed it
        // Answered (101, or an error) or closed: fine. Neither, 3 s after the engine is gone: hung.
        if (!c.read_http_head(3000ms) && !c.eof()) ++hung;
      }
    });
    std::atomic<bool> api_running{true};
    std::thread api([&] {
      sw::Engine* e = engine.get();
      for (int n = 0; api_running; ++n) {
        e->broadcast(ch, "r", "from the api", false);
        e->sio_broadcast({0, {}, {}}, R"(["api"])", {}, -1, false);
        std::this_thread::sleep_for(1ms);
      }
    });
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(engine->sio_stats().sessions, 5u) << "the Socket.IO sessions must still be open when the engine goes";
    api_running = false;
    api.join();  // the API is Node's main thread: it never runs during the destructor
    engine.reset();
    running = false;
    traffic.join();
    // Every client sees its connection end (the engine cut them without a handshake).
    const auto deadline = Clock::now() + 3000ms;
    for (std::size_t i = 0; i < live.size(); ++i) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      EXPECT_TRUE(live[i]->wait_eof(std::max(left, 0ms))) << (i % 2 ? "a Socket.IO" : "a channel") << " connection outlived the engine";
    }
    EXPECT_EQ(hung, 0) << "connections accepted by the engine's listener were neither answered nor closed";
  }
}
