// Whole connections through the real engine (sidewire::Engine, its I/O thread, real loopback
// sockets): the WebSocket framing of native/net/ws_connection.cpp, raw channels, Engine.IO's
// websocket and polling transports and the upgrade between them, Socket.IO above them, and
// Engine::listen's peek at request heads.
//
// One Engine per process: a channel /ws/fuzz (relay and join messages on, no heartbeat, a
// long-lived observer connection in room "lobby" that receives what is relayed), a channel
// /ws/small (max_payload 16, every hook on), and Socket.IO on /socket.io/ with dynamic
// namespaces and the hooks on: "/" accepted natively, "/admin" gated by "JS" (the sink accepts
// it and emits a binary event back), dynamic namespaces refused by "JS"; events that ask for an
// ack get one. Every upgrade offers permessage-deflate, which Socket.IO accepts (threshold 64):
// RSV1 frames in the raw modes go through the inflater.
//
// Input: byte 0 is the mode; bits 0-2:
//   0 channel, raw bytes after the 101        1 channel, input chunks wrapped in masked frames
//   2 Socket.IO websocket, raw bytes           3 Socket.IO websocket, framed
//   4 polling: handshake GET, then the input as a POST body (bit 4: as too large)
//   5 polling handshake, then a websocket upgrade with the sid, framed (probe, upgrade packet);
//     at the first pause a polling GET, or with bit 4 a POST of the close packet
//   6 Engine::listen: the input is everything a client sends, request head included
//   7 a polling request made of the input: "METHOD\nTARGET\nBODY"; "{sid}" in TARGET becomes
//     the sid of a fresh handshake
// bit 3: the first N bytes of what goes on the wire (N = the next input byte) travel in the
// UpgradeRequest's `head` (bytes Node read past the request head) instead of the socket;
// bit 4: channel /ws/small instead of /ws/fuzz (modes 0, 1); bits 5-7: the wire bytes go out in that many
// more writes.
// Framed input: per frame a control byte c (opcode by c & 7: text, binary, continuation, ping,
// pong, close, text, binary; c & 8: not FIN; c & 16: a 16-bit length follows, else 8-bit;
// c >> 5 == 6: the chunk goes out raw, unframed), the length, then that many payload bytes;
// or c >> 5 == 7 alone: a pause of a few milliseconds (JS's answers arrive meanwhile).
//
// Every iteration ends with every socket closed and every session gone; the client half-closes
// and reads until the engine closes (bounded: FUZZ_CONNECTION_DEADLINE_MS, default 3000 ms, or
// it is reported as a hang). An exception caught on an I/O thread (logged as an error, counted
// in stats().internal_errors) stops the fuzzer, and so do a descriptor count that grows and a
// session, socket or connection still there after its input.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fuzz_check.hpp"
#include "sidewire/engine.hpp"

namespace sw = sidewire;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

int deadline_ms() {
  static const int ms = [] {
    const char* env = std::getenv("FUZZ_CONNECTION_DEADLINE_MS");
    return env ? std::atoi(env) : 3000;
  }();
  return ms;
}

[[noreturn]] void die(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "\nconnection harness: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
  std::fflush(stderr);
  __builtin_trap();
}

// The engine's logger: it logs at error level when a handler threw (the engine catches it,
// closes that one connection with 1011 and counts it in stats().internal_errors) and when
// accept() fails (descriptors ran out). Either is a bug to report, with the input that did it.
class TrapOnError final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.level >= spdlog::level::err) die("the engine logged an error", std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}
};

// ----------------------------------------------------------------------------- the sink ("JS")

class Sink final : public sw::EventSink {
 public:
  sw::Engine* engine = nullptr;

  void push(sw::Event e) override {
    using T = sw::Event::Type;
    switch (e.type) {
      case T::kHttpResponse: {
        std::lock_guard lock(mutex_);
        responses_[e.client] = {e.code, std::move(e.data)};
        cv_.notify_all();
        return;
      }
      case T::kHandoff:
        // A connection for Node's HTTP server: Node would answer it; closing it will do.
        ::close(static_cast<int>(e.number));
        return;
      case T::kSioConnect:
        if (e.channel == UINT32_MAX) {
          engine->sio_reject(e.client, R"({"message":"Invalid namespace"})");
        } else {
          engine->sio_accept(e.client, e.channel);
          engine->sio_emit(e.client, R"(["welcome",{"_placeholder":true,"num":0}])", {std::string("\x01\x02\x03", 3)},
                           -1, false);
        }
        return;
      case T::kSioEvent:
      case T::kSioAck:
        if (e.type == T::kSioEvent && e.number >= 0) engine->sio_ack(e.client, e.number, R"(["ok"])", {});
        return;
      default:
        return;
    }
  }

  struct Response {
    std::uint16_t status = 0;
    std::string body;
  };

  // The response to request `id`, or a hang report.
  Response wait(std::uint64_t id) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, milliseconds(deadline_ms()), [&] { return responses_.count(id) != 0; })) {
      die("no HTTP response from the engine in time", "request " + std::to_string(id));
    }
    Response r = std::move(responses_[id]);
    responses_.erase(id);
    return r;
  }

  // The response to `id` if it came (events arrive in order: once a later request's response
  // is here, an earlier one that is not never will be).
  std::optional<Response> take(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = responses_.find(id);
    if (it == responses_.end()) return std::nullopt;
    Response r = std::move(it->second);
    responses_.erase(it);
    return r;
  }

  void forget_responses() {
    std::lock_guard lock(mutex_);
    responses_.clear();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::unordered_map<std::uint64_t, Response> responses_;
};

// ----------------------------------------------------------------------------- process state

struct World {
  std::shared_ptr<Sink> sink;
  sw::Engine* engine = nullptr;
  int listen_fd = -1;            // ours: where adopted connections come from
  std::uint16_t port = 0;
  std::uint16_t engine_port = 0; // Engine::listen's
  int observer = -1;             // the client end of the observer in /ws/fuzz room "lobby"
  std::uint64_t next_request = 1;
  std::uint32_t next_source = 0;
  int baseline_fds = 0;
  std::uint64_t iterations = 0;
};
World* g = nullptr;

int count_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
  }
  return n;
}

std::string list_fds() {
  std::string out;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      char link[256] = {};
      const std::string path = std::string("/proc/self/fd/") + e->d_name;
      if (::readlink(path.c_str(), link, sizeof link - 1) > 0) out += std::string(e->d_name) + " -> " + link + "\n";
    }
    ::closedir(d);
  }
  return out;
}

sockaddr_in loopback(std::uint16_t port, std::uint8_t last = 1) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl((127u << 24) | last);
  return a;
}

// A connected client socket to `port`, from one of many loopback source addresses: the client
// closes first and so keeps the TIME_WAIT, which must not run out a single address's ports.
int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const sockaddr_in src = loopback(0, static_cast<std::uint8_t>(2 + g->next_source++ % 250));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) die("bind", std::strerror(errno));
  const sockaddr_in dst = loopback(port);
  while (::connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof dst) != 0) {
    if (errno == EINTR) continue;
    die("connect", std::strerror(errno));
  }
  return fd;
}

// A loopback pair: the client end (blocking) and the server end (non-blocking, for the engine).
std::pair<int, int> socket_pair() {
  const int client = connect_to(g->port);
  int server;
  while ((server = ::accept4(g->listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
    if (errno != EINTR) die("accept", std::strerror(errno));
  }
  return {client, server};
}

sw::UpgradeRequest upgrade_request(std::string target) {
  sw::UpgradeRequest r;
  r.method = "GET";
  r.target = std::move(target);
  r.headers = {{"Host", "127.0.0.1"},
               {"Upgrade", "websocket"},
               {"Connection", "Upgrade"},
               {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
               {"Sec-WebSocket-Version", "13"},
               {"Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"}};
  r.remote_address = "127.0.0.1";
  return r;
}

// Drains whatever the observer has been sent; reconnects it when the engine dropped it.
void drain_observer() {
  char buf[65536];
  for (;;) {
    if (g->observer < 0) {
      auto [client, server] = socket_pair();
      ::fcntl(client, F_SETFL, ::fcntl(client, F_GETFL) | O_NONBLOCK);
      g->observer = client;
      g->engine->adopt(server, upgrade_request("/ws/fuzz?room=lobby"));
      return;
    }
    const ssize_t n = ::recv(g->observer, buf, sizeof buf, 0);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    ::close(g->observer);  // the engine closed it (a relayed close? a full queue): a new one
    g->observer = -1;
  }
}

// What the client sends: segments, with a pause after each but the last (time for "JS" to
// answer what the engine told it, as a real client's next message comes later).
using Wire = std::vector<std::string>;
constexpr int kPauseMs = 3;

// Writes each segment in `writes` + 1 pieces, pausing between segments, half-closes, and reads
// until the engine closes its end.
void converse(int fd, const Wire& wire, unsigned writes, const std::function<void(std::size_t)>& at_pause = {}) {
  const auto deadline = Clock::now() + milliseconds(deadline_ms());
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::size_t segment = 0, sent = 0;
  std::size_t piece = 0, piece_end = 0;
  auto begin_segment = [&] {
    sent = 0;
    piece = wire.empty() ? 1 : wire[segment].size() / (writes + 1) + 1;
    piece_end = wire.empty() ? 0 : std::min(wire[segment].size(), piece);
  };
  begin_segment();
  bool half_closed = false;
  Clock::time_point pause_until{};
  char buf[65536];
  for (;;) {
    const auto now = Clock::now();
    if (!half_closed && (wire.empty() || sent == wire[segment].size()) && now >= pause_until) {
      if (wire.empty() || segment + 1 == wire.size()) {
        ::shutdown(fd, SHUT_WR);
        half_closed = true;
      } else {
        if (at_pause) at_pause(segment);  // the pause after `segment` is over
        ++segment;
        begin_segment();
      }
    }
    const bool pausing = !half_closed && now < pause_until;
    pollfd p{fd, static_cast<short>(POLLIN | (half_closed || pausing ? 0 : POLLOUT)), 0};
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - now).count();
    if (left <= 0) die("the engine did not close the connection in time");
    int wait = static_cast<int>(left);
    if (pausing) wait = std::min<int>(wait, static_cast<int>(std::chrono::duration_cast<milliseconds>(pause_until - now).count()) + 1);
    const int r = ::poll(&p, 1, wait);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("poll", std::strerror(errno));
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;  // closed
    }
    if (!half_closed && !pausing && (p.revents & POLLOUT)) {
      const std::string& w = wire[segment];
      const ssize_t n = ::send(fd, w.data() + sent, piece_end - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        if (sent == piece_end) piece_end = std::min(w.size(), piece_end + piece);
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        segment = wire.size() - 1;  // the engine closed early (an error close): stop writing
        sent = wire[segment].size();
      }
      if (sent == w.size() && segment + 1 < wire.size()) pause_until = Clock::now() + milliseconds(kPauseMs);
    }
  }
  ::close(fd);
}

// ----------------------------------------------------------------------------- polling

std::uint64_t request(std::string method, std::string target, std::string body = {}, bool too_large = false) {
  const std::uint64_t id = g->next_request++;
  sw::HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.headers = {{"Host", "127.0.0.1"}};
  r.body = std::move(body);
  r.too_large = too_large;
  r.remote_address = "127.0.0.1";
  g->engine->socketio_request(id, std::move(r));
  return id;
}

// The sid in an open packet ("0{...}"), or "".
std::string sid_of(const std::string& body) {
  if (body.empty() || body[0] != '0') return {};
  const auto j = nlohmann::json::parse(body.begin() + 1, body.end(), nullptr, false);
  if (!j.is_object() || !j.contains("sid") || !j["sid"].is_string()) return {};
  return j["sid"].get<std::string>();
}

std::string handshake() {
  const auto r = g->sink->wait(request("GET", "/socket.io/?EIO=4&transport=polling"));
  const std::string sid = sid_of(r.body);
  if (r.status != 200 || sid.empty()) die("the polling handshake failed", std::to_string(r.status) + " " + r.body);
  return sid;
}

std::string session_target(const std::string& sid) { return "/socket.io/?EIO=4&transport=polling&sid=" + sid; }

// Fetches what is queued (or holds a GET, which is then aborted) and closes the session; returns
// once the engine answered the last request, so that nothing of it is left for the next input.
// Twice: a session closed gracefully (a protocol violation) with packets still queued hands
// them to the first GET and its close packet to the next, as engine.io does.
void end_session(const std::string& sid) {
  for (int i = 0; i < 2; ++i) {
    const std::uint64_t get = request("GET", session_target(sid));
    g->engine->socketio_request_aborted(get);
  }
  g->sink->wait(request("POST", session_target(sid), "1"));
}

// ----------------------------------------------------------------------------- input

struct Reader {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint8_t byte() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  std::string_view take(std::size_t k) {
    k = std::min(k, n);
    std::string_view s(reinterpret_cast<const char*>(p), k);
    p += k;
    n -= k;
    return s;
  }
};

void append_frame(std::string& out, std::uint8_t b0, std::string_view payload, std::uint32_t mask_seed) {
  out.push_back(static_cast<char>(b0));
  const std::size_t len = payload.size();
  if (len < 126) {
    out.push_back(static_cast<char>(0x80 | len));
  } else if (len <= 0xFFFF) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(len >> 8));
    out.push_back(static_cast<char>(len & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((std::uint64_t{len} >> (8 * i)) & 0xFF));
  }
  const std::uint8_t mask[4] = {static_cast<std::uint8_t>(0x37 ^ mask_seed), 0xFA, 0x21,
                                static_cast<std::uint8_t>(0x3D + mask_seed)};
  out.append(reinterpret_cast<const char*>(mask), 4);
  for (std::size_t i = 0; i < len; ++i) out.push_back(static_cast<char>(payload[i] ^ mask[i & 3]));
}

Wire frames_from(Reader in) {
  static constexpr std::uint8_t kOpcodes[8] = {0x1, 0x2, 0x0, 0x9, 0xA, 0x8, 0x1, 0x2};
  Wire out(1);
  std::uint32_t count = 0;
  while (!in.empty()) {
    const std::uint8_t c = in.byte();
    if ((c >> 5) == 7) {  // a pause
      if (!out.back().empty()) out.emplace_back();
      continue;
    }
    std::size_t len = in.byte();
    if (c & 0x10) len = (len << 8) | in.byte();
    const std::string_view payload = in.take(len);
    if ((c >> 5) == 6) {
      out.back().append(payload);
      continue;
    }
    const std::uint8_t b0 = static_cast<std::uint8_t>(((c & 0x08) ? 0 : 0x80) | kOpcodes[c & 7]);
    append_frame(out.back(), b0, payload, count++);
  }
  return out;
}

// Adopts the server end with `target`, the first `head_bytes` of `wire` riding in the request.
void adopt_and_converse(const std::string& target, Wire wire, bool split_head, std::size_t head_bytes,
                        unsigned writes, const std::function<void(std::size_t)>& at_pause = {}) {
  auto [client, server] = socket_pair();
  sw::UpgradeRequest r = upgrade_request(target);
  if (split_head && !wire.empty()) {
    head_bytes = std::min(head_bytes, wire[0].size());
    r.head.assign(wire[0], 0, head_bytes);
    wire[0].erase(0, head_bytes);
  }
  g->engine->adopt(server, std::move(r));
  converse(client, wire, writes, at_pause);
}

void check_internal_errors() {
  if (const auto n = g->engine->stats().internal_errors) die("stats().internal_errors is not 0", std::to_string(n));
}

// Nothing outlives its input: no Engine.IO session, no Socket.IO socket, no connection but the
// observer (its state goes a moment after the client saw the end: give it time).
void check_lingering() {
  const auto until = Clock::now() + milliseconds(deadline_ms());
  for (;;) {
    const sw::SocketIoStats sio = g->engine->sio_stats();
    const std::uint64_t connections = g->engine->stats().connections;
    if (sio.sessions == 0 && sio.sockets == 0 && connections <= 1) return;
    if (Clock::now() >= until) {
      die("state outlives its input", "sessions " + std::to_string(sio.sessions) + ", sockets " +
                                          std::to_string(sio.sockets) + ", connections " +
                                          std::to_string(connections) + " (the observer is one)");
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
}

void check_descriptors() {
  const int slack = 16;
  if (count_fds() <= g->baseline_fds + slack) return;
  // Connections close on the I/O thread a moment after the client saw the end: give it time.
  const auto until = Clock::now() + milliseconds(deadline_ms());
  while (Clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(10));
    if (count_fds() <= g->baseline_fds + slack) return;
  }
  die("descriptors leak", "baseline " + std::to_string(g->baseline_fds) + ", now " + std::to_string(count_fds()) +
                              "\n" + list_fds());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sw::set_log_level(std::getenv("SIDEWIRE_LOG_LEVEL") ? std::getenv("SIDEWIRE_LOG_LEVEL") : "error");
  if (auto logger = spdlog::get("sidewire")) {
    if (logger->level() > spdlog::level::err) die("the log level hides the engine's errors");
    logger->sinks().push_back(std::make_shared<TrapOnError>());
  } else {
    die("the engine's logger is not registered as \"sidewire\"");
  }

  g = new World();
  g->sink = std::make_shared<Sink>();
  sw::EngineOptions options;
  options.io_threads = 1;
  options.close_timeout_ms = 200;
  g->engine = new sw::Engine(options, g->sink);
  g->sink->engine = g->engine;

  sw::ChannelConfig fuzz;
  fuzz.path = "/ws/fuzz";
  fuzz.room_query = "room";
  fuzz.relay = true;
  fuzz.join_messages = true;
  fuzz.ping_interval_ms = 0;  // the observer never answers pings
  fuzz.max_payload = 1 << 16;
  const auto fuzz_index = g->engine->add_channel(fuzz);
  sw::ChannelConfig small;
  small.path = "/ws/small";
  small.relay = true;
  small.join_messages = true;
  small.max_payload = 16;
  const auto small_index = g->engine->add_channel(small);
  if (!fuzz_index || !small_index) die("add_channel failed");
  g->engine->set_channel_hooks(*small_index, true, true, true);

  sw::SocketIoConfig sio;
  sio.dynamic_namespaces = true;
  sio.hooks = true;
  sio.max_http_buffer_size = 1 << 16;
  sio.per_message_deflate.enabled = true;  // raw RSV1 frames reach the inflater (channels ignore the offer)
  sio.per_message_deflate.threshold = 64;
  g->engine->configure_socketio(sio);
  g->engine->sio_set_namespace_hooks(0, false, true);  // "/": accepted natively, JS hears events
  const std::uint32_t admin = g->engine->sio_add_namespace("/admin");
  g->engine->sio_set_namespace_hooks(admin, true, true);  // "/admin": JS decides

  g->listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(g->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof addr;
  if (::bind(g->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(g->listen_fd, 64) != 0 ||
      ::getsockname(g->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    die("cannot listen on 127.0.0.1", std::strerror(errno));
  }
  g->port = ntohs(addr.sin_port);
  g->engine_port = g->engine->listen("127.0.0.1", 0, 64, 1);

  drain_observer();
  std::this_thread::sleep_for(milliseconds(50));
  drain_observer();
  g->baseline_fds = count_fds();
  std::atexit([] {
    g->engine->stop();  // the I/O thread must not run while statics are destroyed
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  Reader in{data + 1, size - 1};
  const std::uint8_t mode = data[0];
  const bool split_head = (mode & 0x08) != 0;
  const bool alt = (mode & 0x10) != 0;
  const unsigned writes = mode >> 5;
  const std::size_t head_bytes = split_head ? in.byte() : 0;
  const std::string channel = alt ? "/ws/small" : "/ws/fuzz?room=lobby";
  const std::string sio_ws = "/socket.io/?EIO=4&transport=websocket";

  g->sink->forget_responses();
  drain_observer();
  switch (mode & 7) {
    case 0:
      adopt_and_converse(channel, {std::string(in.take(in.n))}, split_head, head_bytes, writes);
      break;
    case 1:
      adopt_and_converse(channel, frames_from(in), split_head, head_bytes, writes);
      break;
    case 2:
      adopt_and_converse(sio_ws, {std::string(in.take(in.n))}, split_head, head_bytes, writes);
      break;
    case 3:
      adopt_and_converse(sio_ws, frames_from(in), split_head, head_bytes, writes);
      break;
    case 4: {
      const std::string sid = handshake();
      request("POST", session_target(sid), std::string(in.take(in.n)), alt);
      end_session(sid);
      break;
    }
    case 5: {
      const std::string sid = handshake();
      // At the first pause the polling side moves too: a GET (held, or answered with a noop once
      // the probe is answered), or with bit 4 the close packet (a session closed mid-upgrade).
      adopt_and_converse(sio_ws + "&sid=" + sid, frames_from(in), split_head, head_bytes, writes,
                         [&](std::size_t pause) {
                           if (pause != 0) return;
                           if (alt) request("POST", session_target(sid), "1");
                           else request("GET", session_target(sid));
                         });
      end_session(sid);
      break;
    }
    case 6: {
      std::string wire(in.take(in.n));
      // A head that never ends would be sniffed until Listener::kHeadTimeoutMs: end it.
      if (wire.find("\r\n\r\n") == std::string::npos) wire += "\r\n\r\n";
      converse(connect_to(g->engine_port), {wire}, writes);
      break;
    }
    case 7: {
      const std::string text(in.take(in.n));
      const std::size_t nl1 = text.find('\n');
      const std::size_t nl2 = nl1 == std::string::npos ? std::string::npos : text.find('\n', nl1 + 1);
      std::string method = text.substr(0, nl1);
      std::string target = nl1 == std::string::npos ? "/socket.io/" : text.substr(nl1 + 1, nl2 - nl1 - 1);
      std::string body = nl2 == std::string::npos ? "" : text.substr(nl2 + 1);
      std::string sid;
      if (const std::size_t at = target.find("{sid}"); at != std::string::npos) {
        sid = handshake();
        target.replace(at, 5, sid);
      }
      const std::uint64_t id = request(std::move(method), std::move(target), std::move(body), alt);
      std::optional<Sink::Response> response;
      if (!sid.empty()) {
        g->engine->socketio_request_aborted(id);  // in case it is a held GET (then no answer)
        end_session(sid);
        response = g->sink->take(id);
      } else {
        response = g->sink->wait(id);  // without a sid nothing is held
      }
      if (response) {
        if (const std::string opened = sid_of(response->body); !opened.empty()) end_session(opened);  // a handshake
      }
      break;
    }
  }
  check_internal_errors();
  check_lingering();
  if (++g->iterations % 64 == 0) check_descriptors();
  return 0;
}
