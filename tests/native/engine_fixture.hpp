// The fixture of the engine's integration tests (engine_test.cpp, hostile_test.cpp,
// threads_test.cpp): real loopback sockets.
//
// Each test does what the Node binding does: a TCP connection is accepted (here by the test's own
// listener), the request is "already parsed" into an UpgradeRequest, and the server end of the
// socket is handed to Engine::adopt, which writes the 101 (or an HTTP error) itself. The client
// end is driven by a tiny hand-written RFC 6455 client (masked frames out, frame parser in), so
// the engine's own encoder is never used to check itself.
#pragma once

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
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net/ws_codec.hpp"  // opcodes, close codes and accept_key (tested on their own in ws_codec_test)
#include "sidewire/engine.hpp"

namespace sw = sidewire;
namespace ws = sidewire::ws;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Event = sw::Event;

namespace {

// Quiet logs unless asked for: protocol-error tests make the engine warn on purpose.
class QuietLogs : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!std::getenv("SIDEWIRE_LOG_LEVEL")) sw::set_log_level("error");
  }
};
const auto* const kQuietLogs = ::testing::AddGlobalTestEnvironment(new QuietLogs);

// ---------------------------------------------------------------------------------------------
// Event sink that records everything and lets a test wait for an event.
// ---------------------------------------------------------------------------------------------

class RecordingSink : public sw::EventSink {
 public:
  void push(Event e) override {
    {
      std::lock_guard lock(mutex_);
      events_.push_back(std::move(e));
    }
    cv_.notify_all();
  }

  std::optional<Event> wait_for(const std::function<bool(const Event&)>& pred, milliseconds timeout = 5000ms) {
    std::unique_lock lock(mutex_);
    std::optional<Event> found;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& e : events_) {
        if (pred(e)) {
          found = e;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  std::optional<Event> wait_for(Event::Type type, sw::ClientId client, milliseconds timeout = 5000ms) {
    return wait_for([&](const Event& e) { return e.type == type && e.client == client; }, timeout);
  }

  std::vector<Event> snapshot() {
    std::lock_guard lock(mutex_);
    return events_;
  }

  std::size_t count(const std::function<bool(const Event&)>& pred) {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& e : events_) n += pred(e) ? 1 : 0;
    return n;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Event> events_;
};

// ---------------------------------------------------------------------------------------------
// A minimal WebSocket client on a non-blocking socket.
// ---------------------------------------------------------------------------------------------

// A client frame: b0 is FIN/RSV/opcode as given; masked with `mask` unless told otherwise.
std::string client_frame(std::uint8_t b0, std::string_view payload, std::uint32_t mask, bool masked = true) {
  std::string out;
  out.push_back(static_cast<char>(b0));
  const std::uint8_t mb = masked ? 0x80 : 0x00;
  const std::uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(mb | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(mb | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(mb | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  }
  const std::uint8_t m[4] = {static_cast<std::uint8_t>(mask >> 24), static_cast<std::uint8_t>(mask >> 16),
                             static_cast<std::uint8_t>(mask >> 8), static_cast<std::uint8_t>(mask)};
  if (masked) out.append(reinterpret_cast<const char*>(m), 4);
  const std::size_t start = out.size();
  out.append(payload);
  if (masked) {
    for (std::size_t i = 0; i < n; ++i) out[start + i] = static_cast<char>(out[start + i] ^ m[i & 3]);
  }
  return out;
}

std::string close_payload(std::uint16_t code, std::string_view reason = "") {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xFF));
  p.append(reason);
  return p;
}

struct Frame {
  bool fin = false;
  std::uint8_t rsv = 0;
  std::uint8_t opcode = 0;
  std::string payload;

  std::uint16_t close_code() const {
    if (payload.size() < 2) return ws::kNoStatus;
    return static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) | static_cast<std::uint8_t>(payload[1]));
  }
  std::string close_reason() const { return payload.size() > 2 ? payload.substr(2) : std::string(); }
};

class Client {
 public:
  Client(int fd, std::uint32_t seed) : fd_(fd), rng_(seed) {}
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  sw::ClientId id = 0;
  int fd() const { return fd_; }
  bool eof() const { return eof_; }

  bool write_all(std::string_view data, milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!wait_fd(POLLOUT, deadline)) return false;
        continue;
      }
      return false;
    }
    return true;
  }

  std::string frame(std::uint8_t opcode, std::string_view payload, bool fin = true) {
    return client_frame(static_cast<std::uint8_t>((fin ? 0x80 : 0x00) | opcode), payload, static_cast<std::uint32_t>(rng_()));
  }
  bool send(std::uint8_t opcode, std::string_view payload, bool fin = true) {
    return write_all(frame(opcode, payload, fin));
  }
  bool send_text(std::string_view s) { return send(ws::kText, s); }
  bool send_binary(std::string_view s) { return send(ws::kBinary, s); }
  bool send_close(std::uint16_t code, std::string_view reason = "") { return send(ws::kClose, close_payload(code, reason)); }

  // The HTTP response head (through the blank line); later bytes stay buffered for frames.
  std::optional<std::string> read_http_head(milliseconds timeout = 5000ms) {
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

  // Everything until the server closes the connection (for HTTP error responses).
  std::optional<std::string> read_to_eof(milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    while (!eof_) {
      if (!fill(deadline)) return std::nullopt;
    }
    return std::exchange(buf_, std::string());
  }

  // The next frame, or nullopt on timeout / end of the connection.
  std::optional<Frame> next_frame(milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (auto f = parse()) return f;
      if (eof_ || !fill(deadline)) return std::nullopt;
    }
  }

  // True once the server ended the TCP connection (FIN or reset). Discards what arrives.
  bool wait_eof(milliseconds timeout = 5000ms) {
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
  bool wait_fd(short events, Clock::time_point deadline) {
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }

  // Reads what is available, waiting until the deadline. False on timeout.
  bool fill(Clock::time_point deadline) {
    char tmp[64 * 1024];
    for (;;) {
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n > 0) {
        buf_.append(tmp, static_cast<std::size_t>(n));
        return true;
      }
      if (n == 0) {
        eof_ = true;
        return true;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait_fd(POLLIN, deadline)) return false;
        continue;
      }
      eof_ = true;  // ECONNRESET and friends: the server cut the connection
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
    if (b1 & 0x80) {
      ADD_FAILURE() << "the server sent a masked frame";
      pos += 4;
    }
    if (buf_.size() < pos + len) return std::nullopt;
    Frame f;
    f.fin = (b0 & 0x80) != 0;
    f.rsv = (b0 >> 4) & 0x7;
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

// ---------------------------------------------------------------------------------------------
// Fixture: an engine, a recording sink, and a loopback listener standing in for Node's server.
// ---------------------------------------------------------------------------------------------

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener_, 0) << std::strerror(errno);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ASSERT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
    ASSERT_EQ(::listen(listener_, 512), 0) << std::strerror(errno);
    socklen_t len = sizeof addr_;
    ASSERT_EQ(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr_), &len), 0);
  }

  void TearDown() override {
    if (engine_) engine_->stop();
    engine_.reset();
    if (listener_ >= 0) ::close(listener_);
  }

  void start(unsigned io_threads = 1, std::uint32_t close_timeout_ms = 3000, std::uint32_t write_delay_us = 0) {
    sink_ = std::make_shared<RecordingSink>();
    sw::EngineOptions options;
    options.io_threads = io_threads;
    options.close_timeout_ms = close_timeout_ms;
    options.write_delay_us = write_delay_us;
    engine_ = std::make_unique<sw::Engine>(options, sink_);
  }

  // A channel /ws/c with one client, connected and counted, then `settle` for its 101 to go out
  // (an engine with a write delay holds it for that long).
  std::unique_ptr<Client> one_client_after(milliseconds settle) {
    sw::ChannelConfig cfg;
    cfg.path = "/ws/c";
    const auto ch = add_channel(cfg);
    auto c = connect("/ws/c");
    if (!c || !wait_until([&] { return engine_->connection_count(ch) == 1; })) return nullptr;
    std::this_thread::sleep_for(settle);
    return c;
  }

  std::uint32_t add_channel(sw::ChannelConfig config, bool hook_open = false, bool hook_message = false,
                            bool hook_close = true) {
    const auto index = engine_->add_channel(std::move(config));
    EXPECT_TRUE(index.has_value());
    engine_->set_channel_hooks(index.value_or(0), hook_open, hook_message, hook_close);
    return index.value_or(0);
  }

  // A connected loopback pair: {client end, accepted server end}, both non-blocking, with
  // TCP_NODELAY as Node's HTTP server sets it.
  std::pair<int, int> tcp_pair(int client_rcvbuf = 0) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) {
      ADD_FAILURE() << "socket: " << std::strerror(errno);
      return {-1, -1};
    }
    if (client_rcvbuf > 0) ::setsockopt(c, SOL_SOCKET, SO_RCVBUF, &client_rcvbuf, sizeof client_rcvbuf);
    if (::connect(c, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0) {
      ADD_FAILURE() << "connect: " << std::strerror(errno);
      ::close(c);
      return {-1, -1};
    }
    const int s = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s < 0) {
      ADD_FAILURE() << "accept: " << std::strerror(errno);
      ::close(c);
      return {-1, -1};
    }
    const int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(c, F_SETFL, ::fcntl(c, F_GETFL) | O_NONBLOCK);
    return {c, s};
  }

  std::string new_key() {
    std::uint8_t raw[16];
    for (auto& b : raw) b = static_cast<std::uint8_t>(rng_());
    return ws::base64_encode(raw, sizeof raw);
  }

  sw::UpgradeRequest upgrade_request(const std::string& target, const std::string& key, std::string head = "") {
    sw::UpgradeRequest r;
    r.method = "GET";
    r.target = target;
    r.headers = {{"Host", "127.0.0.1"},
                 {"Upgrade", "websocket"},
                 {"Connection", "Upgrade"},
                 {"Sec-WebSocket-Key", key},
                 {"Sec-WebSocket-Version", "13"}};
    r.head = std::move(head);
    r.remote_address = "127.0.0.1";
    return r;
  }

  // Adopts the server end with `request` and returns the client end, without reading anything.
  std::unique_ptr<Client> adopt_raw(sw::UpgradeRequest request, int client_rcvbuf = 0) {
    const auto [c, s] = tcp_pair(client_rcvbuf);
    if (c < 0) return nullptr;
    auto client = std::make_unique<Client>(c, static_cast<std::uint32_t>(rng_()));
    client->id = engine_->adopt(s, std::move(request));
    return client;
  }

  // A WebSocket client that completed the handshake (its 101 checked), or nullptr.
  std::unique_ptr<Client> connect(const std::string& target, const std::string& head = "", int client_rcvbuf = 0) {
    const std::string key = new_key();
    auto client = adopt_raw(upgrade_request(target, key, head), client_rcvbuf);
    if (!client) return nullptr;
    const auto response = client->read_http_head();
    if (!response) {
      ADD_FAILURE() << "no handshake response for " << target;
      return nullptr;
    }
    if (response->rfind("HTTP/1.1 101 ", 0) != 0 ||
        response->find("\r\nSec-WebSocket-Accept: " + ws::accept_key(key) + "\r\n") == std::string::npos) {
      ADD_FAILURE() << "bad handshake response for " << target << ":\n" << *response;
      return nullptr;
    }
    return client;
  }

  // An Engine.IO session over WebSocket with its open packet read (its payload into `open`).
  std::unique_ptr<Client> eio_websocket(std::string* open_payload = nullptr) {
    auto c = connect("/socket.io/?EIO=4&transport=websocket");
    if (!c) return nullptr;
    const auto open = c->next_frame();
    if (!open || open->payload.empty() || open->payload[0] != '0') {
      ADD_FAILURE() << "no Engine.IO open packet";
      return nullptr;
    }
    if (open_payload) *open_payload = open->payload;
    return c;
  }

  // A Socket.IO long-polling request, answered through a kHttpResponse event.
  std::optional<sw::Event> poll(const std::string& method, const std::string& target, std::string body = "") {
    const std::uint64_t id = ++request_id_;
    sw::HttpRequest r;
    r.method = method;
    r.target = target;
    r.body = std::move(body);
    r.remote_address = "127.0.0.1";
    engine_->socketio_request(id, std::move(r));
    return sink_->wait_for(sw::Event::Type::kHttpResponse, id);
  }

  // The next text frame that is not an Engine.IO ping (a ping is answered).
  static std::optional<Frame> next_packet(Client& c, milliseconds timeout = 5000ms) {
    for (;;) {
      auto f = c.next_frame(timeout);
      if (!f || f->payload != "2") return f;
      c.send_text("3");
    }
  }

  static bool wait_until(const std::function<bool()>& pred, milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    while (!pred()) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }

  std::unique_ptr<sw::Engine> engine_;
  std::shared_ptr<RecordingSink> sink_;
  int listener_ = -1;
  sockaddr_in addr_{};
  std::mt19937 rng_{20240601};
  std::uint64_t request_id_ = 0;
};

sw::ChannelConfig relay_channel(std::string path, std::string room_query = "doc") {
  sw::ChannelConfig c;
  c.path = std::move(path);
  c.room_query = std::move(room_query);
  c.relay = true;
  return c;
}

// Checks that `f` is a data frame (FIN, no RSV) with `opcode` and `payload`.
::testing::AssertionResult IsMessage(const std::optional<Frame>& f, std::uint8_t opcode, const std::string& payload) {
  if (!f) return ::testing::AssertionFailure() << "no frame (timeout or connection closed)";
  if (!f->fin || f->rsv != 0) return ::testing::AssertionFailure() << "fin=" << f->fin << " rsv=" << int(f->rsv);
  if (f->opcode != opcode) return ::testing::AssertionFailure() << "opcode " << int(f->opcode) << ", expected " << int(opcode);
  if (f->payload != payload) {
    return ::testing::AssertionFailure() << "payload of " << f->payload.size() << " bytes \""
                                         << f->payload.substr(0, 64) << "\", expected " << payload.size()
                                         << " bytes \"" << payload.substr(0, 64) << "\"";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsClose(const std::optional<Frame>& f, std::uint16_t code) {
  if (!f) return ::testing::AssertionFailure() << "no close frame (timeout or connection closed)";
  if (f->opcode != ws::kClose) {
    return ::testing::AssertionFailure() << "opcode " << int(f->opcode) << " (payload \"" << f->payload.substr(0, 64)
                                         << "\"), expected a close frame";
  }
  if (f->close_code() != code) {
    return ::testing::AssertionFailure() << "close code " << f->close_code() << " (\"" << f->close_reason()
                                         << "\"), expected " << code;
  }
  return ::testing::AssertionSuccess();
}

std::string binary_payload(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

}  // namespace
