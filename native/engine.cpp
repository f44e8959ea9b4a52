#include "sidewire/engine.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "adapter/cluster.hpp"
#include "channels/channel.hpp"
#include "log.hpp"
#include "net/http_upgrade.hpp"
#include "net/listener.hpp"
#include "net/tls.hpp"
#include "net/worker.hpp"
#include "socketio/server.hpp"

namespace sidewire {

namespace asio = boost::asio;

namespace {

// Throws std::invalid_argument for keys or settings that cannot work (JS shows the message).
std::shared_ptr<const auth::JwtSetup> make_jwt_setup(const JwtOptions& j) {
  auth::JwtConfig config;
  for (const auto& [kid, material] : j.keys) config.keys.push_back({kid, material});
  config.algorithms = j.algorithms;
  config.issuer = j.issuer;
  config.audience = j.audience;
  config.clock_tolerance_s = j.clock_tolerance_s;
  config.max_token_bytes = j.max_token_bytes;
  config.require_exp = j.require_exp;
  auto setup = std::make_shared<auth::JwtSetup>(std::move(config));
  for (const auto& from : j.from) {
    using From = auth::JwtSetup::From;
    if (from == "auth") {
      setup->from.push_back(From::kAuth);
    } else if (from == "query") {
      setup->from.push_back(From::kQuery);
      setup->query_param = j.query_param;
    } else if (from == "header") {
      setup->from.push_back(From::kHeader);
      setup->header = true;
    } else if (from == "cookie") {
      setup->from.push_back(From::kCookie);
      setup->cookie = j.cookie;
    } else {
      throw std::invalid_argument("jwt.from: " + from + " is none of auth, query, header, cookie");
    }
  }
  if (setup->from.empty()) throw std::invalid_argument("jwt.from names nowhere to look for a token");
  setup->auth_field = j.auth_field;
  setup->user_room_prefix = j.user_room_prefix;
  if (!j.refresh_event.empty()) {
    setup->refresh_prefix = nlohmann::json::array({j.refresh_event}).dump();  // ["name"], as clients write it
    setup->refresh_prefix.pop_back();                                          // then "," or "]"
  }
  return setup;
}

}  // namespace

namespace {

std::atomic<bool> g_json_logs{false};
constexpr char kFieldsMark = '\x1f';  // a payload of fields made by conn_fields

std::string json_text(std::string_view s) {
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// JSON logs: the message as "msg", or the fields log_conn made.
class JsonMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& m, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string_view p(m.payload.data(), m.payload.size());
    if (!p.empty() && p.front() == kFieldsMark) {
      dest.append(p.data() + 1, p.data() + p.size());
      return;
    }
    const std::string s = "\"msg\":" + json_text(p);
    dest.append(s.data(), s.data() + s.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessage>(); }
};

void apply_log_format(spdlog::logger& l, bool json) {
  if (json) {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonMessage>('*');
    f->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"sidewire",%*})");
    l.set_formatter(std::move(f));
  } else {
    l.set_pattern("%Y-%m-%dT%H:%M:%S.%e [sidewire] %^%l%$ %v");
  }
}

}  // namespace

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_color_mt("sidewire");
    const char* format = std::getenv("SIDEWIRE_LOG_FORMAT");
    g_json_logs = format && std::string_view(format) == "json";
    apply_log_format(*l, g_json_logs);
    const char* env = std::getenv("SIDEWIRE_LOG_LEVEL");
    l->set_level(env ? spdlog::level::from_str(env) : spdlog::level::info);
    return l;
  }();
  return *logger;
}

bool json_logs() { return g_json_logs.load(std::memory_order_relaxed); }

std::string conn_fields(std::string_view kind, std::uint64_t id, std::string_view address, std::string_view reason,
                        std::string_view text) {
  std::string out(1, kFieldsMark);
  out += "\"kind\":" + json_text(kind);
  if (id != 0) out += ",\"conn\":" + std::to_string(id);
  if (!address.empty()) out += ",\"address\":" + json_text(address);
  if (!reason.empty()) out += ",\"reason\":" + json_text(reason);
  out += ",\"msg\":" + json_text(text);
  return out;
}

void set_log_level(const std::string& level) { log().set_level(spdlog::level::from_str(level)); }

void set_log_format(const std::string& format) {
  spdlog::logger& l = log();
  g_json_logs = format == "json";
  apply_log_format(l, g_json_logs);
}

namespace {
// Closes the descriptor unless someone took it: a posted adoption that never runs (the engine
// stopped first) must not leak it.
struct OwnedFd {
  int fd = -1;
  explicit OwnedFd(int f) : fd(f) {}
  OwnedFd(OwnedFd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  OwnedFd& operator=(OwnedFd&&) = delete;
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};
}  // namespace

// Events pushed on an I/O thread wait until the end of that thread's turn and go to the real
// sink together: a connect storm or a busy fan-out wakes Node's thread once per turn instead
// of once per event. Events from any other thread go straight through.
class BatchingSink final : public EventSink {
 public:
  explicit BatchingSink(std::shared_ptr<EventSink> inner) : inner_(std::move(inner)) {}

  void push(Event event) override {
    Worker* w = Worker::current();
    if (!w) return inner_->push(std::move(event));
    w->pending_events.push_back(std::move(event));
    if (w->events_flush_posted) return;
    w->events_flush_posted = true;
    asio::post(w->io(), [inner = inner_, w] {
      w->events_flush_posted = false;
      std::vector<Event> batch;
      batch.swap(w->pending_events);
      inner->push_batch(batch);
    });
  }

  void push_batch(std::vector<Event>& events) override {
    for (Event& e : events) push(std::move(e));
  }

  bool congested() const override { return inner_->congested(); }
  EventSink& inner() { return *inner_; }

 private:
  std::shared_ptr<EventSink> inner_;
};

struct Engine::Impl {
  EngineOptions options;
  std::shared_ptr<EventSink> sink;
  std::shared_ptr<EventSink> relief_target;  // the sink as given, whose relief resumes reading
  Metrics metrics;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<Worker*> worker_ptrs;

  static constexpr std::size_t kMaxChannels = 256;
  std::mutex channels_mutex;
  std::vector<std::unique_ptr<Channel>> channels;  // reserved up front: never reallocates
  std::atomic<std::uint32_t> channel_count{0};

  std::mutex sio_mutex;
  std::unique_ptr<sio::Server> sio_owner;
  std::shared_ptr<const guard::Setup> sio_guard;  // the latest Socket.IO limits (their counts carry over)
  std::atomic<sio::Server*> sio{nullptr};  // set once, before Socket.IO traffic

  std::atomic<bool> sio_hooks{false};
  std::atomic<bool> sio_cors_gate{false};
  std::atomic<bool> sio_handshake_gate{false};
  std::atomic<bool> sio_upgrade_gate{false};
  std::atomic<bool> sio_websocket{true};

  std::mutex listen_mutex;
  std::unique_ptr<Listener> listener;
  std::shared_ptr<TlsTerminator> tls;  // Engine::listen's TLS, when it has it

  // The cluster adapter and where its messages land. Declared after the workers: destroyed
  // before the threads' io_contexts it lives on.
  struct ClusterTarget final : adapter::LocalTarget {
    Impl& impl;
    explicit ClusterTarget(Impl& i) : impl(i) {}
    void deliver(adapter::SioBroadcast&& b) override {
      if (sio::Server* socketio = impl.sio.load()) socketio->deliver_remote(std::move(b));
    }
    void deliver(adapter::ChannelBroadcast&& b) override {
      Channel* ch = impl.channel_by_path(b.path);
      if (!ch || ch->cluster.load() == nullptr) return;
      const ws::SharedFrame frame = ws::make_shared_frame(b.binary ? ws::kBinary : ws::kText, b.payload);
      impl.metrics.broadcasts.fetch_add(1, std::memory_order_relaxed);
      if (ch->history() && !b.rooms.empty()) {
        // Kept here too: a client joining on this node gets what was sent on the others.
        return ch->publish_kept(b.rooms, frame, 0, ch->history()->keeps(b.payload));
      }
      auto rooms = std::make_shared<const std::vector<std::string>>(std::move(b.rooms));
      for (auto& w : impl.workers) {
        w->command([ch, index = w->index(), rooms, frame] { ch->broadcast_local(index, *rooms, frame, 0); });
      }
    }
    void to_js(Event e) override { impl.sink->push(std::move(e)); }
    void sockets_op(const std::string& nsp, SocketsOp op, std::vector<std::string> rooms,
                    std::vector<std::string> except, std::vector<std::string> targets, bool close) override {
      sio::Server* socketio = impl.sio.load();
      if (!socketio) return;
      const std::optional<std::uint32_t> index = socketio->namespace_index(nsp);
      if (!index) return;
      sio::Selection selection{*index, std::move(rooms), std::move(except)};
      switch (op) {
        case SocketsOp::kJoin: socketio->sockets_join(std::move(selection), std::move(targets)); break;
        case SocketsOp::kLeave: socketio->sockets_leave(std::move(selection), std::move(targets)); break;
        case SocketsOp::kDisconnect: socketio->disconnect_sockets(std::move(selection), close); break;
      }
    }
    std::uint64_t room_size(const std::string& nsp, const std::string& room) override {
      sio::Server* socketio = impl.sio.load();
      return socketio ? socketio->room_size(nsp, room) : 0;
    }
  };
  ClusterTarget cluster_target{*this};
  mutable std::mutex cluster_mutex;
  std::shared_ptr<adapter::Cluster> cluster;

  std::atomic<std::uint64_t> next_seq{1};
  std::atomic<unsigned> next_worker{0};
  std::atomic<bool> stopping{false};
  std::atomic<unsigned> draining_workers{0};
  std::once_flag stopped;

  Channel* channel(std::uint32_t index) const {
    return index < channel_count.load(std::memory_order_acquire) ? channels[index].get() : nullptr;
  }
  Channel* channel_by_path(std::string_view path) const {
    const std::uint32_t n = channel_count.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < n; ++i) {
      if (channels[i]->config().path == path) return channels[i].get();
    }
    return nullptr;
  }
  Worker& worker_for(ClientId id) const { return *workers[worker_of(id) % workers.size()]; }

  template <typename F>
  void with_client(ClientId id, F&& f) {
    Worker& w = worker_for(id);
    w.command([&w, id, f = std::forward<F>(f)]() mutable {
      if (auto c = w.find(id)) {
        if (auto* client = dynamic_cast<ChannelClient*>(c.get())) f(*client);
      }
    });
  }

  void refuse(int fd, ClientId id, std::uint32_t channel, const UpgradeRequest& request, int status,
              const std::string& message, std::string_view extra_headers = {}) {
    metrics.upgrades_refused.fetch_add(1, std::memory_order_relaxed);
    const Channel* ch = channel < UINT32_MAX ? this->channel(channel) : nullptr;
    std::uint64_t skipped = 0;
    if (guard::refusal_log().allow(&skipped)) log_conn(spdlog::level::warn, "connection", id, guard::canonical_address(request.remote_address), std::to_string(status),
             "upgrade refused: {} {}: {} {}{}", request.method,
             http::redact_query(request.target, ch && ch->jwt ? std::string_view(ch->jwt->query_param) : std::string_view()),
             status, message, skipped ? fmt::format(" ({} more refused since the last line)", skipped) : std::string());
    http::send_and_close(fd, http::error_response(status, std::string(message) + "\n", "text/plain; charset=utf-8", extra_headers));
    Event e(Event::Type::kRefused);
    e.code = static_cast<std::uint16_t>(status);
    e.channel = channel;
    e.client = id;
    e.data = message;
    sink->push(std::move(e));
  }

  // The I/O thread for an upgrade: an Engine.IO session's upgrade goes to the session's thread,
  // anything else to `fallback`.
  unsigned upgrade_worker(const std::string& target, unsigned fallback) const {
    if (sio::Server* socketio = sio.load(); socketio && socketio->engineio().owns(target)) {
      if (const int owner = socketio->engineio().worker_for(target); owner >= 0) return static_cast<unsigned>(owner);
    }
    return fallback;
  }

  // A new connection's id on I/O thread `w` (the low byte names the thread).
  ClientId new_id(unsigned w) { return (next_seq.fetch_add(1) << 8) | w; }

  // Queues the handshake of connection `id` on I/O thread `w`.
  void accept_later(unsigned w, ClientId id, int fd, UpgradeRequest request) {
    Worker& worker = *workers[w];
    worker.command([this, &worker, id, fd = std::make_shared<OwnedFd>(fd), request = std::move(request)]() mutable {
      accept_on(worker, id, std::move(*fd), std::move(request));
    });
  }

  ClientId adopt(int fd, UpgradeRequest request) {
    const unsigned w = upgrade_worker(request.target, next_worker.fetch_add(1) % workers.size());
    const ClientId id = new_id(w);
    accept_later(w, id, fd, std::move(request));
    return id;
  }

  // `origin`: a TLS connection's decrypted socketpair says nothing of its client: JS is told.
  void hand_to_node(int fd, const Listener::Origin& origin = {}) {
    Event e(Event::Type::kHandoff);
    e.number = fd;
    e.data = origin.peer;
    e.code = origin.tls ? 1 : 0;
    sink->push(std::move(e));
  }

  // Engine::listen's routing, on the I/O thread that peeked at the request head.
  void route_accepted(Worker& worker, int fd, std::string_view head, bool complete, const Listener::Origin& origin) {
    if (stopping.load()) {
      ::close(fd);
      return;
    }
    std::optional<UpgradeRequest> request;
    if (complete) request = http::parse_request_head(head);
    if (!request || request->method != "GET") return hand_to_node(fd, origin);
    const std::string* upgrade = http::find_header(*request, "upgrade");
    if (!upgrade || !http::has_token(*upgrade, "websocket")) return hand_to_node(fd, origin);

    const std::string_view query = http::query_of(request->target);
    std::uint32_t channel_index = UINT32_MAX;
    bool tell_js = false;
    sio::Server* socketio = sio.load();
    if (socketio && socketio->engineio().owns(request->target)) {
      if (!sio_websocket.load() || http::query_param(query, "transport") != std::optional<std::string>("websocket")) {
        return hand_to_node(fd, origin);
      }
      if (sio_cors_gate.load() && http::find_header(*request, "origin")) return hand_to_node(fd, origin);
      if (sio_upgrade_gate.load()) return hand_to_node(fd, origin);  // io.engine middleware or headers hooks
      const bool handshake = !http::query_param(query, "sid");
      if (handshake && sio_handshake_gate.load()) return hand_to_node(fd, origin);  // allowRequest decides in JS
      tell_js = sio_hooks.load() && handshake;
    } else {
      Channel* ch = channel_by_path(http::path_of(request->target));
      if (!ch || ch->gated.load()) return hand_to_node(fd, origin);  // unknown paths get JS's 404
      if (ch->history_gated.load() && ch->history() && !ch->config().room_query.empty()) {
        // A room whose history this process has not loaded yet: JS loads it first.
        const std::optional<std::string> room = http::query_param(query, ch->config().room_query);
        if (room && !room->empty() && !ch->history()->known(*room)) return hand_to_node(fd, origin);
      }
      channel_index = ch->index();
      tell_js = ch->hook_open.load();
    }

    // Ours: consume the head (it is all in the socket's buffer: we peeked it).
    std::string raw(head.size(), '\0');
    if (::recv(fd, raw.data(), raw.size(), 0) != static_cast<ssize_t>(raw.size())) {
      log().warn("cannot read a peeked request head back; closing the connection");
      ::close(fd);
      return;
    }
    request->remote_address = origin.peer.empty() ? peer_address(fd) : origin.peer;
    std::string target = tell_js ? request->target : std::string();
    std::string remote = tell_js ? request->remote_address : std::string();
    // The handshake runs on this thread (a session's upgrade: on the session's), so the
    // request reaches JS before any event of the connection.
    const unsigned w = upgrade_worker(request->target, worker.index());
    const ClientId id = new_id(w);
    if (tell_js) {
      Event e(Event::Type::kUpgradeInfo);
      e.client = id;
      e.channel = channel_index;
      e.text = std::move(target);
      const std::size_t first_eol = raw.find("\r\n");
      e.data = std::move(remote);
      e.data.append("\r\n").append(raw, first_eol + 2, raw.size() - first_eol - 4);  // the header lines
      sink->push(std::move(e));
    }
    if (w == worker.index()) {
      accept_on(worker, id, OwnedFd(fd), std::move(*request));  // here and now: no second hop
    } else {
      accept_later(w, id, fd, std::move(*request));
    }
  }

  void accept_on(Worker& worker, ClientId id, OwnedFd fd, UpgradeRequest request) {
    worker.refresh_clock();
    if (stopping.load()) return refuse(fd.release(), id, UINT32_MAX, request, 503, "server shutting down");
    sio::Server* socketio = sio.load();
    const bool is_socketio = socketio && socketio->engineio().owns(request.target);
    Channel* ch = is_socketio ? nullptr : channel_by_path(http::path_of(request.target));
    if (!ch && !is_socketio) return refuse(fd.release(), id, UINT32_MAX, request, 404, "no channel at this path");
    const std::uint32_t channel_index = ch ? ch->index() : UINT32_MAX;
    const http::UpgradeCheck check = http::check_websocket_upgrade(request);
    if (check.status != 101) {
      if (check.status == 431) count_limit(metrics, Limit::kHeaders);
      if (check.status == 414) count_limit(metrics, Limit::kQuery);
      return refuse(fd.release(), id, channel_index, request, check.status, check.message);
    }
    std::optional<std::string> room;
    if (ch && !ch->config().room_query.empty()) {
      // One room, the one JS saw: a repeated key would let an authorize hook check one value
      // while another is joined.
      const std::string_view query = http::query_of(request.target);
      if (http::query_param_count(query, ch->config().room_query) > 1) {
        return refuse(fd.release(), id, channel_index, request, 400,
                      "the query names '" + ch->config().room_query + "' more than once");
      }
      room = http::query_param(query, ch->config().room_query);
      if (room && !ws::is_valid_utf8(*room)) {
        // JS reads such a value with U+FFFD in place of the bad bytes: it would check one room
        // and the engine join another.
        return refuse(fd.release(), id, channel_index, request, 400,
                      "the value of '" + ch->config().room_query + "' is not UTF-8");
      }
    }

    if (room && ch && ch->reserved_room(*room)) {
      // The users' rooms are the engine's: a client naming one would hear another user's messages.
      return refuse(fd.release(), id, channel_index, request, 403, "the room '" + *room + "' is reserved");
    }
    // limits: the client's address (through trustProxy) counted before any token is checked,
    // so that a flood from one address costs no signature checks.
    std::unique_ptr<guard::Ticket> ticket;
    if (ch && ch->guard) {
      guard::Admission a = guard::admit(ch->guard, request.remote_address, request.headers);
      if (!a.ticket) {
        count_limit(metrics, a.refusal == guard::Counter::Refusal::kTooMany ? Limit::kConnectionsPerIp : Limit::kConnectRate);
        return refuse(fd.release(), id, channel_index, request, 429, a.message + " (client " + a.address + ")",
                      a.retry_after_header());
      }
      ticket = std::move(a.ticket);
    }
    std::string user_json;  // the claims of its token, for JS
    std::string user_room;
    std::string token_sub, token_issuer;
    std::int64_t token_expires_at = 0;
    if (ch && ch->jwt) {
      auth::JwtResult r = ch->jwt->verifier.verify(ch->jwt->request_token(request.target, request.headers), auth::now_seconds());
      if (!r.ok()) {
        count_limit(metrics, sio::token_limit(r.reason));
        return refuse(fd.release(), id, channel_index, request, 401,
                      std::string("unauthorized: token ") + auth::reason_name(r.reason) + " (" + r.detail + ")");
      }
      const std::string sub = r.claims.value("sub", std::string());
      token_expires_at = r.expires_at;
      token_sub = sub;
      token_issuer = auth::claim_text(r.claims, "iss");
      if (ticket && !ticket->admit_user(sub)) {
        count_limit(metrics, Limit::kConnectionsPerUser);
        return refuse(fd.release(), id, channel_index, request, 429,
                      "too many connections for this user (connectionsPerUser " +
                          std::to_string(ticket->setup().connections_per_user) + ")");
      }
      if (!sub.empty() && !ch->jwt->user_room_prefix.empty()) user_room = ch->jwt->user_room_prefix + sub;
      user_json = r.claims.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }

    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const bool named = ::getsockname(fd.fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    const bool v6 = named && addr.ss_family == AF_INET6;
    // A TLS connection's decrypted end is a Unix socketpair: nothing to delay there.
    const bool tcp = named && (addr.ss_family == AF_INET || addr.ss_family == AF_INET6);
    asio::ip::tcp::socket socket(worker.io());
    boost::system::error_code ec;
    socket.assign(v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd.fd, ec);
    if (!ec) socket.non_blocking(true, ec);
    if (!ec && tcp) socket.set_option(asio::ip::tcp::no_delay(true), ec);  // small frames go out at once
    if (ec) return refuse(fd.release(), id, channel_index, request, 500, "cannot adopt socket: " + ec.message());
    fd.release();

    if (is_socketio) {
      metrics.connections.fetch_add(1, std::memory_order_relaxed);
      metrics.connections_total.fetch_add(1, std::memory_order_relaxed);
      return socketio->engineio().accept_websocket(worker, id, std::move(socket), request, check.accept);
    }

    auto client = std::make_shared<ChannelClient>(worker, std::move(socket), id, *ch);
    std::string address = ticket ? ticket->address() : guard::canonical_address(request.remote_address);
    client->set_ticket(std::move(ticket));
    client->set_address(address);
    if (ch->jwt) client->set_token(std::move(token_sub), std::move(token_issuer), token_expires_at);
    worker.add(client);
    metrics.connections.fetch_add(1, std::memory_order_relaxed);
    metrics.connections_total.fetch_add(1, std::memory_order_relaxed);
    ch->connections.fetch_add(1, std::memory_order_relaxed);
    metrics.channel_connects.fetch_add(1, std::memory_order_relaxed);
    if (room) client->join(*room);
    if (!user_room.empty()) client->join(user_room);
    if (ch->hook_open.load(std::memory_order_relaxed)) {
      Event e(Event::Type::kOpen);
      e.channel = ch->index();
      e.client = id;
      e.data = std::move(user_json);
      if (ch->guard && !ch->guard->trust.empty()) e.text = address;  // the client's, through trustProxy
      sink->push(std::move(e));
    }
    log().debug("connection {} opened on {} from {}", id, ch->config().path, address);
    client->start(http::switching_protocols_response(check.accept), request.head);
  }
};

Engine::Engine(EngineOptions options, std::shared_ptr<EventSink> sink) : impl_(std::make_unique<Impl>()) {
  if (options.io_threads == 0) options.io_threads = 1;
  if (options.io_threads > 64) options.io_threads = 64;
  impl_->options = options;
  impl_->sink = std::make_shared<BatchingSink>(sink);
  impl_->channels.reserve(Impl::kMaxChannels);
  const EventSink* pressure = sink.get();
  impl_->relief_target = sink;
  for (unsigned i = 0; i < options.io_threads; ++i) {
    impl_->workers.push_back(std::make_unique<Worker>(i, impl_->metrics, options.close_timeout_ms, pressure));
    impl_->workers.back()->set_write_delay(std::chrono::microseconds(options.write_delay_us));
    impl_->worker_ptrs.push_back(impl_->workers.back().get());
  }
  // When JS has caught up with its events, the connections parked meanwhile are read again.
  sink->set_relief([impl = impl_.get()] {
    if (impl->stopping.load()) return;
    for (Worker* w : impl->worker_ptrs) w->command([w] { w->resume_parked(); });
  });
  // After a burst, once the threads are quiet, JS is told too (it collects its garbage then).
  impl_->workers.front()->set_on_quiet([impl = impl_.get()] {
    if (!impl->stopping.load()) impl->sink->push(Event(Event::Type::kQuiet));
  });
  for (auto& w : impl_->workers) w->start(std::clamp(options.io_nice, 0, 19));
}

Engine::~Engine() {
  stop();
  // The sink may outlive the engine (the binding keeps it until JS lets go): no relief from
  // it may reach the threads that are gone.
  impl_->relief_target->set_relief(nullptr);
}

std::optional<std::uint32_t> Engine::add_channel(ChannelConfig config) {
  std::lock_guard lock(impl_->channels_mutex);
  const std::uint32_t n = impl_->channel_count.load();
  if (n >= Impl::kMaxChannels || impl_->channel_by_path(config.path)) return std::nullopt;
  std::shared_ptr<const auth::JwtSetup> jwt = config.jwt.enabled ? make_jwt_setup(config.jwt) : nullptr;
  std::shared_ptr<const guard::Setup> limits =
      config.limits.enabled ? std::make_shared<const guard::Setup>(config.limits) : nullptr;
  impl_->channels.push_back(std::make_unique<Channel>(n, std::move(config), impl_->worker_ptrs, impl_->sink));
  impl_->channels.back()->jwt = std::move(jwt);
  impl_->channels.back()->guard = std::move(limits);
  impl_->channel_count.store(n + 1, std::memory_order_release);
  return n;
}

void Engine::set_channel_hooks(std::uint32_t index, bool open, bool message, bool close) {
  if (Channel* ch = impl_->channel(index)) {
    ch->hook_open = open;
    ch->hook_message = message;
    ch->hook_close = close;
  }
}

ClientId Engine::adopt(int fd, UpgradeRequest request) { return impl_->adopt(fd, std::move(request)); }

std::uint16_t Engine::listen(const std::string& host, std::uint16_t port, int backlog, unsigned queues,
                             const TlsOptions* tls) {
  std::lock_guard lock(impl_->listen_mutex);
  if (impl_->stopping.load()) throw std::runtime_error("the engine is shutting down");
  if (impl_->listener && impl_->listener->listening()) throw std::runtime_error("the engine is already listening");
  std::shared_ptr<TlsTerminator> terminator = tls ? std::make_shared<TlsTerminator>(*tls) : nullptr;
  Impl* impl = impl_.get();
  impl_->listener = std::make_unique<Listener>(
      impl_->worker_ptrs, [impl](Worker& w, int fd, std::string_view head, bool complete, const Listener::Origin& origin) {
        impl->route_accepted(w, fd, head, complete, origin);
      });
  impl_->listener->set_tls(terminator);
  impl_->tls = std::move(terminator);
  return impl_->listener->listen(host, port, backlog, queues);
}

void Engine::reload_tls(const TlsOptions& tls) {
  std::lock_guard lock(impl_->listen_mutex);
  if (!impl_->tls) throw std::runtime_error("the engine does not listen with TLS");
  impl_->tls->reload(tls);
  log().info("TLS certificates reloaded: new connections use them");
}

void Engine::stop_listening() {
  std::lock_guard lock(impl_->listen_mutex);
  if (impl_->listener) impl_->listener->stop();
}

void Engine::set_channel_gate(std::uint32_t index, bool gated) {
  if (Channel* ch = impl_->channel(index)) ch->gated = gated;
}

void Engine::set_channel_history_gate(std::uint32_t index, bool gated) {
  if (Channel* ch = impl_->channel(index)) ch->history_gated = gated;
}

bool Engine::history_known(std::uint32_t channel, const std::string& room) const {
  Channel* ch = impl_->channel(channel);
  return ch && ch->history() && ch->history()->known(room);
}

void Engine::history_mark_known(std::uint32_t channel, const std::string& room) {
  Channel* ch = impl_->channel(channel);
  if (ch && ch->history()) ch->history()->mark_known(room);
}

void Engine::broadcast(std::uint32_t channel, const std::string& room, std::string payload, bool binary,
                       ClientId except) {
  Channel* ch = impl_->channel(channel);
  if (!ch) return;
  const ws::SharedFrame frame = ws::make_shared_frame(binary ? ws::kBinary : ws::kText, payload);
  auto rooms = std::make_shared<const std::vector<std::string>>();
  if (!room.empty()) rooms = std::make_shared<const std::vector<std::string>>(1, room);
  impl_->metrics.broadcasts.fetch_add(1, std::memory_order_relaxed);
  if (ch->history() && !room.empty()) {
    ch->publish_kept(*rooms, frame, except, ch->history()->keeps(payload));
  } else {
    for (auto& w : impl_->workers) {
      w->command([ch, index = w->index(), rooms, frame, except] { ch->broadcast_local(index, *rooms, frame, except); });
    }
  }
  if (adapter::Cluster* cluster = ch->cluster.load(std::memory_order_acquire)) {
    adapter::ChannelBroadcast b;
    b.path = ch->config().path;
    b.rooms = *rooms;
    b.payload = std::move(payload);
    b.binary = binary;
    cluster->publish(std::move(b));
  }
}

Engine::HistoryMessages Engine::history(std::uint32_t channel, const std::string& room, std::uint64_t* upto,
                                        std::uint64_t* version) const {
  HistoryMessages out;
  Channel* ch = impl_->channel(channel);
  if (!ch || !ch->history()) return out;
  History::Compaction c = ch->history()->snapshot(room);
  if (upto) *upto = c.upto;
  if (version) *version = c.version;
  out.reserve(c.frames.size());
  for (const ws::SharedFrame& f : c.frames) {
    bool binary = false;
    const std::string_view payload = ws::frame_payload(*f, &binary);
    out.emplace_back(std::string(payload), binary);
  }
  return out;
}

namespace {
std::vector<ws::SharedFrame> frames_of(const Engine::HistoryMessages& messages) {
  std::vector<ws::SharedFrame> frames;
  frames.reserve(messages.size());
  for (const auto& [payload, binary] : messages) frames.push_back(ws::make_shared_frame(binary ? ws::kBinary : ws::kText, payload));
  return frames;
}
}  // namespace

bool Engine::history_replace(std::uint32_t channel, const std::string& room, std::uint64_t upto, std::uint64_t version,
                             const HistoryMessages& messages) {
  Channel* ch = impl_->channel(channel);
  if (!ch || !ch->history()) throw std::invalid_argument("this channel keeps no history");
  const History::Replaced r = ch->history()->replace(room, upto, version, frames_of(messages), ch->delivered_everywhere());
  switch (r) {
    case History::Replaced::kDone: return true;
    case History::Replaced::kStale:
      log().debug("{} room {}: a compaction's result is older than the room's history, dropped", ch->config().path, room);
      break;
    case History::Replaced::kLagging:
      log().debug("{} room {}: a compaction's result covers messages an I/O thread has not delivered yet, dropped",
                  ch->config().path, room);
      break;
    case History::Replaced::kTooLarge:
      log().warn("{} room {}: a history of {} messages is past the channel's maxMessages or maxBytes, not taken",
                 ch->config().path, room, messages.size());
      break;
  }
  return false;
}

bool Engine::history_restore(std::uint32_t channel, const std::string& room, const HistoryMessages& messages) {
  Channel* ch = impl_->channel(channel);
  if (!ch || !ch->history()) throw std::invalid_argument("this channel keeps no history");
  return ch->history()->restore(room, frames_of(messages));
}

void Engine::history_compaction_failed(std::uint32_t channel, const std::string& room) {
  Channel* ch = impl_->channel(channel);
  if (ch && ch->history()) ch->history()->compaction_failed(room);
}

void Engine::history_sweep(std::uint32_t channel) {
  Channel* ch = impl_->channel(channel);
  if (ch && ch->history()) ch->history()->sweep();
}

void Engine::cluster_start(ClusterConfig config) {
  std::lock_guard lock(impl_->cluster_mutex);
  if (impl_->cluster) throw std::logic_error("a cluster adapter is already running on this engine");
  if (config.uid.empty()) throw std::invalid_argument("the cluster adapter needs a node uid");
  impl_->cluster = adapter::make_redis_cluster(*impl_->workers[0], std::move(config), impl_->cluster_target);
  if (sio::Server* socketio = impl_->sio.load()) socketio->set_cluster(impl_->cluster.get());
}

void Engine::cluster_add_namespace(const std::string& nsp) {
  std::lock_guard lock(impl_->cluster_mutex);
  if (impl_->cluster) impl_->cluster->add_namespace(nsp);
}

void Engine::cluster_add_channel(std::uint32_t index) {
  std::lock_guard lock(impl_->cluster_mutex);
  Channel* ch = impl_->channel(index);
  if (!ch || !impl_->cluster) return;
  impl_->cluster->add_channel(ch->config().path);
  ch->cluster.store(impl_->cluster.get(), std::memory_order_release);
}

void Engine::cluster_publish(std::string channel, std::string payload) {
  std::lock_guard lock(impl_->cluster_mutex);
  if (impl_->cluster) impl_->cluster->publish_raw(std::move(channel), std::move(payload));
}

void Engine::cluster_command(std::uint64_t id, std::vector<std::string> args) {
  std::lock_guard lock(impl_->cluster_mutex);
  if (impl_->cluster) impl_->cluster->command(id, std::move(args));
}

// The adapter stays allocated until the engine goes (sockets and channels may still hold its
// pointer on their threads); stopped, it publishes nothing and closes its connections.
void Engine::cluster_stop() {
  std::lock_guard lock(impl_->cluster_mutex);
  if (impl_->cluster) impl_->cluster->stop();
}

ClusterStats Engine::cluster_stats() const {
  std::lock_guard lock(impl_->cluster_mutex);
  return impl_->cluster ? impl_->cluster->stats() : ClusterStats{};
}

void Engine::send(ClientId client, std::string payload, bool binary) {
  impl_->with_client(client, [payload = std::move(payload), binary](ChannelClient& c) { c.send_message(payload, binary); });
}

void Engine::close(ClientId client, std::uint16_t code, std::string reason) {
  impl_->with_client(client, [code, reason = std::move(reason)](ChannelClient& c) { c.close(code, reason); });
}

void Engine::join(ClientId client, std::string room) {
  impl_->with_client(client, [room = std::move(room)](ChannelClient& c) { c.join(room); });
}

void Engine::leave(ClientId client, std::string room) {
  impl_->with_client(client, [room = std::move(room)](ChannelClient& c) { c.leave(room); });
}

// ---------------------------------------------------------------------------- Socket.IO

void Engine::configure_socketio(SocketIoConfig c) {
  eio::Config config;
  config.path = c.path;
  config.ping_interval_ms = c.ping_interval_ms;
  config.ping_timeout_ms = c.ping_timeout_ms;
  config.upgrade_timeout_ms = c.upgrade_timeout_ms;
  config.connect_timeout_ms = c.connect_timeout_ms;
  config.max_payload = c.max_http_buffer_size;
  config.polling = c.polling;
  config.websocket = c.websocket;
  config.allow_upgrades = c.allow_upgrades;
  config.hooks = c.hooks;
  config.open_events = c.open_events;
  config.connection_errors = c.connection_errors;
  if (c.jwt.enabled) config.secret_query_param = c.jwt.query_param;
  if (c.limits.enabled) {
    // The counts carry over from the setup this one replaces: a reconfiguration (a hook
    // added from JS) does not reset the caps.
    std::lock_guard lock(impl_->sio_mutex);
    config.guard = std::make_shared<const guard::Setup>(c.limits, impl_->sio_guard.get());
    impl_->sio_guard = config.guard;
  }
  config.max_queued_bytes = c.max_queued_bytes;
  const auto& d = c.per_message_deflate;
  config.deflate = {d.enabled, d.threshold, d.level, d.mem_level, d.strategy, d.server_no_context_takeover,
                    d.client_no_context_takeover, d.server_max_window_bits, d.client_max_window_bits};
  impl_->sio_hooks = c.hooks;
  impl_->sio_cors_gate = c.cors_gate;
  impl_->sio_handshake_gate = c.handshake_gate;
  impl_->sio_upgrade_gate = c.upgrade_gate;
  impl_->sio_websocket = c.websocket;
  std::lock_guard lock(impl_->sio_mutex);
  if (!impl_->sio_owner) {
    impl_->sio_owner = std::make_unique<sio::Server>(config, impl_->worker_ptrs, impl_->sink, impl_->metrics);
    {
      std::lock_guard lock(impl_->cluster_mutex);
      impl_->sio_owner->set_cluster(impl_->cluster.get());
    }
    impl_->sio.store(impl_->sio_owner.get());
  } else {
    impl_->sio_owner->engineio().reconfigure(config);
  }
  impl_->sio_owner->set_dynamic_namespaces(c.dynamic_namespaces);
  impl_->sio_owner->set_max_rooms(c.max_rooms);
  impl_->sio_owner->set_msgpack(c.msgpack);
  impl_->sio_owner->set_recovery({c.recovery, c.recovery_window_ms, c.recovery_max_bytes});
  std::unordered_map<std::string, std::shared_ptr<const auth::JwtSetup>> by_namespace;
  for (const auto& [name, j] : c.jwt_namespaces) by_namespace[name] = j.enabled ? make_jwt_setup(j) : nullptr;
  impl_->sio_owner->set_jwt(c.jwt.enabled ? make_jwt_setup(c.jwt) : nullptr, std::move(by_namespace));
}

static sio::Server& socketio_of(const std::atomic<sio::Server*>& p) {
  sio::Server* s = p.load();
  if (!s) throw std::logic_error("Socket.IO is not configured");
  return *s;
}

static sio::Selection to_selection(Engine::SioSelection s) { return {s.nsp, std::move(s.rooms), std::move(s.except)}; }

ClientId Engine::socketio_request(std::uint64_t request_id, HttpRequest request) {
  if (impl_->stopping.load()) {
    // Shutting down: no new session, no request into a draining thread.
    Event e(Event::Type::kHttpResponse);
    e.client = request_id;
    e.code = 503;
    e.text = R"({"Content-Type":"application/json"})";
    e.data = R"({"code":3,"message":"Server shutting down"})";
    impl_->sink->push(std::move(e));
    return 0;
  }
  const unsigned w = impl_->next_worker.fetch_add(1) % impl_->workers.size();
  const ClientId id = (impl_->next_seq.fetch_add(1) << 8) | w;
  return socketio_of(impl_->sio).engineio().handle_request(request_id, std::move(request), id, w);
}

void Engine::socketio_request_aborted(std::uint64_t request_id) {
  socketio_of(impl_->sio).engineio().request_aborted(request_id);
}

std::uint32_t Engine::sio_add_namespace(const std::string& name) { return socketio_of(impl_->sio).add_namespace(name); }

void Engine::sio_set_namespace_hooks(std::uint32_t nsp, bool connect, bool events) {
  socketio_of(impl_->sio).set_hooks(nsp, connect, events);
}

void Engine::sio_accept(ClientId socket, std::uint32_t nsp, std::uint32_t turn) {
  socketio_of(impl_->sio).accept(socket, nsp, turn);
}

void Engine::sio_reject(ClientId socket, std::string data_json) {
  socketio_of(impl_->sio).reject(socket, std::move(data_json));
}

void Engine::sio_emit(ClientId socket, std::string data_json, std::vector<std::string> attachments,
                      std::int64_t ack_id, bool is_volatile, std::uint32_t nsp, bool compress, std::uint32_t turn) {
  socketio_of(impl_->sio).emit(socket, std::move(data_json), std::move(attachments), ack_id, is_volatile, nsp, compress,
                               turn);
}

void Engine::sio_ack(ClientId socket, std::int64_t ack_id, std::string data_json, std::vector<std::string> attachments,
                     std::uint32_t turn) {
  socketio_of(impl_->sio).ack(socket, ack_id, std::move(data_json), std::move(attachments), turn);
}

void Engine::sio_broadcast(SioSelection selection, std::string data_json, std::vector<std::string> attachments,
                           std::int64_t ack_id, bool is_volatile, bool compress, std::uint32_t turn, bool local) {
  socketio_of(impl_->sio).broadcast(to_selection(std::move(selection)), std::move(data_json), std::move(attachments),
                                    ack_id, is_volatile, compress, turn, local);
}

void Engine::sio_join(ClientId socket, std::vector<std::string> rooms) {
  socketio_of(impl_->sio).join(socket, std::move(rooms));
}

void Engine::sio_leave(ClientId socket, std::string room) { socketio_of(impl_->sio).leave(socket, std::move(room)); }

void Engine::sio_disconnect(ClientId socket, bool close) { socketio_of(impl_->sio).disconnect(socket, close); }

void Engine::sio_close_all() { socketio_of(impl_->sio).close_all(); }

void Engine::sio_sockets_join(SioSelection selection, std::vector<std::string> rooms) {
  socketio_of(impl_->sio).sockets_join(to_selection(std::move(selection)), std::move(rooms));
}

void Engine::sio_sockets_leave(SioSelection selection, std::vector<std::string> rooms) {
  socketio_of(impl_->sio).sockets_leave(to_selection(std::move(selection)), std::move(rooms));
}

void Engine::sio_disconnect_sockets(SioSelection selection, bool close) {
  socketio_of(impl_->sio).disconnect_sockets(to_selection(std::move(selection)), close);
}

void Engine::sio_fetch_sockets(std::uint64_t request_id, SioSelection selection) {
  socketio_of(impl_->sio).fetch_sockets(request_id, to_selection(std::move(selection)));
}

void Engine::sio_watch(ClientId connection, std::uint32_t mask) { socketio_of(impl_->sio).engineio().watch(connection, mask); }

void Engine::sio_close_session(ClientId connection) { socketio_of(impl_->sio).engineio().close_session(connection); }

std::uint64_t Engine::sio_session_count() const {
  sio::Server* s = impl_->sio.load();
  return s ? s->engineio().session_count() : 0;
}

SocketIoStats Engine::sio_stats() const {
  sio::Server* s = impl_->sio.load();
  return s ? s->stats() : SocketIoStats{};
}

std::uint64_t Engine::connection_count(std::uint32_t channel) const {
  Channel* ch = impl_->channel(channel);
  return ch ? ch->connections.load() : 0;
}

std::vector<std::pair<std::string, std::uint64_t>> Engine::room_sizes(std::uint32_t channel) const {
  const Channel* ch = impl_->channel(channel);
  return ch ? ch->rooms().rooms() : std::vector<std::pair<std::string, std::uint64_t>>{};
}

std::uint64_t Engine::room_size(std::uint32_t channel, const std::string& room) const {
  Channel* ch = impl_->channel(channel);
  return ch ? ch->rooms().size(room) : 0;
}

EngineStats Engine::stats() const {
  EngineStats s;
  const Metrics& m = impl_->metrics;
  s.connections = m.connections.load();
  s.connections_total = m.connections_total.load();
  s.messages_received = m.messages_received.load();
  s.messages_delivered = m.messages_delivered.load();
  s.upgrades_refused = m.upgrades_refused.load();
  s.protocol_errors = m.protocol_errors.load();
  s.backpressure_drops = m.backpressure_drops.load();
  s.heartbeat_timeouts = m.heartbeat_timeouts.load();
  s.writes = m.writes.load();
  s.internal_errors = m.internal_errors.load();
  s.js_backpressure_pauses = m.js_backpressure_pauses.load();
  for (unsigned i = 0; i < static_cast<unsigned>(Limit::kCount); ++i) {
    s.limits.emplace_back(limit_name(static_cast<Limit>(i)), m.limits[i].load());
  }
  s.bytes_received = m.bytes_received.load();
  s.bytes_sent = m.bytes_sent.load();
  s.broadcasts = m.broadcasts.load();
  s.broadcast_recipients = m.broadcast_recipients.load();
  s.sio_connects = m.sio_connects.load();
  s.channel_connects = m.channel_connects.load();
  s.disconnects = m.disconnects();
  for (const auto& w : impl_->workers) s.io_thread_cpu_seconds.push_back(w->cpu_seconds());
  if (sio::Server* socketio = impl_->sio.load()) {
    s.sio_polling_sessions = socketio->engineio().sessions_by_transport(false);
    s.sio_websocket_sessions = socketio->engineio().sessions_by_transport(true);
  }
  const std::uint32_t n = impl_->channel_count.load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < n; ++i) {
    const Channel& ch = *impl_->channels[i];
    ChannelStats c{ch.config().path, ch.connections.load(), ch.rooms().rooms()};
    if (const History* h = ch.history()) {
      const History::Stats hs = h->stats();
      c.history = true;
      c.history_rooms = hs.rooms;
      c.history_messages = hs.messages;
      c.history_bytes = hs.bytes;
      c.history_dropped = hs.dropped;
      c.history_expired = hs.expired;
      c.history_compactions = hs.compactions;
      c.history_rooms_evicted = hs.rooms_evicted;
    }
    s.channels.push_back(std::move(c));
  }
  return s;
}

void Engine::shutdown(std::chrono::milliseconds drain) {
  if (impl_->stopping.exchange(true)) return;
  stop_listening();
  log().info("shutting down: closing {} connection(s), draining for up to {} ms", impl_->metrics.connections.load(),
             drain.count());
  impl_->draining_workers = static_cast<unsigned>(impl_->workers.size());
  for (auto& w : impl_->workers) {
    w->command([impl = impl_.get(), w = w.get(), drain] {
      w->drain(drain, [impl] {
        if (impl->draining_workers.fetch_sub(1) == 1) impl->sink->push(Event(Event::Type::kShutdown));
      });
    });
  }
}

void Engine::stop() {
  std::call_once(impl_->stopped, [this] {
    impl_->stopping = true;
    stop_listening();
    cluster_stop();
    for (auto& w : impl_->workers) w->stop_and_join();
    if (sio::Server* socketio = impl_->sio.load()) socketio->engineio().release_all();
  });
}

}  // namespace sidewire
