#include "socketio/server.hpp"

#include "adapter/cluster.hpp"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "log.hpp"
#include "socketio/json_shape.hpp"
#include "socketio/msgpack.hpp"
#include "socketio/packet.hpp"

namespace sidewire::sio {

namespace asio = boost::asio;
using nlohmann::json;

namespace {
constexpr char kSocketTag = 's';
constexpr char kPrivateTag = 'p';

// socket.io's RECOVERABLE_DISCONNECT_REASONS: the drops after which a socket may come back.
bool is_recoverable(std::string_view reason) {
  return reason == "transport error" || reason == "transport close" || reason == "forced close" ||
         reason == "ping timeout" || reason == "server shutting down" || reason == "forced server close";
}

// An EVENT's JSON array with the recovery offset appended as its last element, as socket.io
// appends it (the client keeps the last one it saw and sends it back when it reconnects).
std::string with_offset(const std::string& data, const std::string& offset) {
  const std::size_t close = data.rfind(']');
  if (close == std::string::npos) return data;
  std::string out;
  out.reserve(data.size() + offset.size() + 3);
  out.append(data, 0, close);
  const bool empty = data.find_first_not_of(" \t\r\n", data.find('[') + 1) == close;
  if (!empty) out.push_back(',');
  out.push_back('"');
  out.append(offset);  // base 36: nothing to escape
  out.push_back('"');
  out.append(data, close, std::string::npos);
  return out;
}

// The Socket.IO state of one Engine.IO session.
struct ClientState : eio::UserData {
  std::vector<std::unique_ptr<Socket>> sockets;
  struct PendingBinary {
    int type;
    std::string nsp;
    std::int64_t ack_id;
    std::string data;
    std::uint32_t remaining;
    std::vector<std::string> buffers;
    std::size_t bytes = 0;  // the packet and its attachments so far
  };
  std::unique_ptr<PendingBinary> pending;  // a binary packet waiting for its attachments
  // JWT: what the handshake request carried where a token may be (only when JWT is on).
  struct Credentials {
    std::string query;
    std::string bearer;
    std::string cookie;
  };
  std::unique_ptr<Credentials> credentials;
  std::uint32_t refused_tokens = 0;
  std::uint32_t last_message_ms = 0;  // the I/O thread's clock at its last Socket.IO packet (idle timeout)
};

// CONNECTs with a refused token one session may send before it is closed.
constexpr std::uint32_t kMaxTokenRefusals = 10;


ClientState& state_of(eio::Session& session) {
  if (!session.user) session.user = std::make_unique<ClientState>();
  return static_cast<ClientState&>(*session.user);
}

}  // namespace

struct Server::Outgoing {
  std::vector<ws::SharedFrame> frames;  // the packet, then its attachments
  bool compress = true;                 // socket.io's compress flag (compress(false): never)
  std::uint64_t log_seq = 0;            // connectionStateRecovery: its number in the log (0: not logged)
};

static Server::Outgoing* make_outgoing_raw(int type, std::string_view nsp, std::int64_t ack_id, const std::string& data,
                                           const std::vector<std::string>& attachments, bool msgpack);

Server::Server(eio::Config config, std::vector<Worker*> workers, std::shared_ptr<EventSink> sink, Metrics& metrics)
    : workers_(std::move(workers)), sink_(std::move(sink)), metrics_(metrics) {
  namespaces_.reserve(kMaxNamespaces);
  for (std::size_t i = 0; i < workers_.size(); ++i) per_worker_.push_back(std::make_unique<PerWorker>());
  eio_ = std::make_unique<eio::Server>(std::move(config), workers_, sink_, *this);
  add_namespace("/");
  for (Worker* w : workers_) {
    asio::post(w->io(), [this, w] {
      w->add_tick_hook([this, w](std::uint32_t now) {
        // Sessions keep the limits they were admitted under: once any had an idle timeout, look.
        if (eio_->config(*w).guard && eio_->config(*w).guard->idle_timeout_ms > 0) idle_seen_ = true;
        const bool idle = idle_seen_.load(std::memory_order_relaxed);
        if (!jwt_on_.load(std::memory_order_relaxed) && !idle) return;
        PerWorker& pw = *per_worker_[w->index()];
        if (now - pw.swept_at < 1000) return;
        pw.swept_at = now;
        if (jwt_on_.load(std::memory_order_relaxed)) sweep_expired(*w);
        if (idle) sweep_idle(*w, now);
      });
    });
  }
}

// ---------------------------------------------------------------------------- JWT

void Server::set_jwt(std::shared_ptr<const JwtSetup> jwt,
                     std::unordered_map<std::string, std::shared_ptr<const JwtSetup>> by_namespace) {
  std::lock_guard lock(jwt_mutex_);
  bool on = jwt != nullptr;
  for (const auto& [name, s] : by_namespace) on = on || s != nullptr;
  jwt_on_.store(on);
  jwt_ = std::move(jwt);
  jwt_namespaces_ = std::move(by_namespace);
}

void Server::on_handshake(eio::Session& session, std::string_view target,
                          const std::vector<std::pair<std::string, std::string>>& headers) {
  if (!jwt_on_.load(std::memory_order_relaxed)) return;
  const std::shared_ptr<const JwtSetup> setup = jwt_source();
  if (!setup || (setup->query_param.empty() && !setup->header && setup->cookie.empty())) return;
  auto c = std::make_unique<ClientState::Credentials>();
  c->query = setup->request_token(JwtSetup::From::kQuery, target, headers);
  c->bearer = setup->request_token(JwtSetup::From::kHeader, target, headers);
  c->cookie = setup->request_token(JwtSetup::From::kCookie, target, headers);
  state_of(session).credentials = std::move(c);
}

auth::JwtResult Server::authenticate(const JwtSetup& jwt, eio::Session& session, const std::string& auth) const {
  const ClientState& st = state_of(session);
  const ClientState::Credentials* c = st.credentials.get();
  std::string token;
  for (JwtSetup::From from : jwt.from) {
    switch (from) {
      case JwtSetup::From::kAuth:
        if (!auth.empty()) {
          const json a = json::parse(auth, nullptr, false);
          if (a.is_object()) {
            if (auto it = a.find(jwt.auth_field); it != a.end() && it->is_string()) token = it->get<std::string>();
          }
        }
        break;
      case JwtSetup::From::kQuery:
        if (c) token = c->query;
        break;
      case JwtSetup::From::kHeader:
        if (c) token = c->bearer;
        break;
      case JwtSetup::From::kCookie:
        if (c) token = c->cookie;
        break;
    }
    if (!token.empty()) break;
  }
  return jwt.verifier.verify(token, auth::now_seconds());
}

Limit token_limit(auth::JwtReason r) {
  switch (r) {
    case auth::JwtReason::kMissing: return Limit::kTokenMissing;
    case auth::JwtReason::kExpired: return Limit::kTokenExpired;
    case auth::JwtReason::kNotYetValid: return Limit::kTokenNotYetValid;
    default: return Limit::kTokenInvalid;
  }
}

void Server::refresh_token(Socket& s, const std::string& data, std::int64_t ack_id) {
  const JwtSetup& jwt = *s.user->jwt;
  const json args = json::parse(data, nullptr, false);
  auth::JwtResult r;
  if (!args.is_array() || args.size() < 2 || !args[1].is_string()) {
    r.reason = auth::JwtReason::kMissing;
    r.detail = "no token";
  } else {
    r = jwt.verify_refresh(args[1].get<std::string>(), s.user->sub, auth::claim_text(s.user->claims, "iss"));
  }
  json answer;
  if (r.ok()) {
    log().debug("socket {}: token refreshed, now until {}", s.id, r.expires_at);
    s.user->claims = std::move(r.claims);
    s.user->expires_at = r.expires_at;
    answer = {{"ok", true}, {"exp", r.expires_at}};
  } else {
    count_limit(metrics_, token_limit(r.reason));
    log().info("socket {}: token refresh refused: {} ({})", s.id, auth::reason_name(r.reason), r.detail);
    answer = {{"ok", false}, {"reason", auth::reason_name(r.reason)}, {"detail", r.detail}};
  }
  if (ack_id < 0) return;
  const std::string reply = json::array({answer}).dump(-1, ' ', false, json::error_handler_t::replace);
  std::unique_ptr<Outgoing> out(make_outgoing_raw(kAck, s.nsp->name, ack_id, reply, {}, msgpack()));
  send_to(s, *out, false);
}

void Server::forget_other_users_session(Socket& s) {
  if (!s.user || !s.recovered) return;
  const std::string& prefix = s.user->jwt->user_room_prefix;
  if (prefix.empty()) return;  // nothing says whose it was
  const std::string own = prefix + s.user->sub;
  for (const auto& room : s.recovered->taken.rooms) {
    if (room.compare(0, prefix.size(), prefix) == 0 && room != own) {
      // Another user's session (a shared device, a new login): its rooms and missed packets are
      // not this user's to have. It connects as new.
      log().info("session {}: socket {} was another user's ({}); connecting as new", s.session->id(), s.recovered->taken.sid,
                 room);
      s.recovered.reset();
      return;
    }
  }
}

void Server::sweep_expired(Worker& w) {
  PerWorker& pw = *per_worker_[w.index()];
  const std::int64_t now = auth::now_seconds();
  std::vector<ClientId> expired;
  for (const auto& [id, s] : pw.sockets) {
    if (!s->connected || !s->user || s->user->expires_at == 0) continue;
    if (now - static_cast<std::int64_t>(s->user->jwt->verifier.config().clock_tolerance_s) >= s->user->expires_at) {
      expired.push_back(id);
    }
  }
  for (ClientId id : expired) {
    Socket* s = find(w, id);
    if (!s || !s->connected) continue;
    count_limit(metrics_, Limit::kTokenExpired);
    log_conn(spdlog::level::info, "session", s->session->id(), s->session->address(), "token expired",
             "socket {} of {}: token expired, disconnecting", sid_of(*s), s->nsp->name);
    s->session->send(control_frame(kDisconnect, s->nsp->name, ""));
    remove_socket(*s, "token expired", true);
  }
}

void Server::sweep_idle(Worker& w, std::uint32_t now) {
  PerWorker& pw = *per_worker_[w.index()];
  std::vector<ClientId> idle;
  for (const auto& [id, s] : pw.sockets) {
    if (!s->connected || !s->session->ticket) continue;
    const std::uint32_t limit = s->session->ticket->setup().idle_timeout_ms;
    if (limit > 0 && now - state_of(*s->session).last_message_ms >= limit) idle.push_back(id);
  }
  for (ClientId id : idle) {
    Socket* s = find(w, id);
    if (!s || !s->connected) continue;  // its session went with an earlier one
    count_limit(metrics_, Limit::kIdleTimeout);
    log_conn(spdlog::level::info, "session", s->session->id(), s->session->address(), "idle timeout",
             "no message for {} ms, closing", s->session->ticket->setup().idle_timeout_ms);
    disconnect_socket(*s, true, "idle timeout");
  }
}

Server::~Server() = default;

// ---------------------------------------------------------------------------- namespaces

std::uint32_t Server::add_namespace(const std::string& name) {
  std::lock_guard lock(namespaces_mutex_);
  if (Namespace* n = namespace_named(name)) return n->index;
  const std::uint32_t index = namespace_count_.load();
  if (index >= kMaxNamespaces) throw std::runtime_error("too many namespaces");
  auto nsp = std::make_unique<Namespace>();
  nsp->name = name;
  nsp->index = index;
  // A room that appears or goes is news for the sharded adapter's dynamic modes.
  nsp->rooms = std::make_unique<SocketRooms>(workers_.size(), [this, n = nsp.get()](const std::string& room) {
    if (adapter::Cluster* cluster = cluster_.load(std::memory_order_acquire)) cluster->room_changed(n->name, room);
  });
  namespaces_.push_back(std::move(nsp));
  namespace_count_.store(index + 1, std::memory_order_release);
  return index;
}

Namespace* Server::namespace_at(std::uint32_t index) const {
  return index < namespace_count_.load(std::memory_order_acquire) ? namespaces_[index].get() : nullptr;
}

Namespace* Server::namespace_named(std::string_view name) const {
  const std::uint32_t n = namespace_count_.load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < n; ++i) {
    if (namespaces_[i]->name == name) return namespaces_[i].get();
  }
  return nullptr;
}

void Server::set_hooks(std::uint32_t index, bool connect, bool events) {
  if (Namespace* n = namespace_at(index)) {
    n->hook_connect = connect;
    n->hook_events = events;
  }
}

// ---------------------------------------------------------------------------- helpers

static Server::Outgoing* make_outgoing_raw(int type, std::string_view nsp, std::int64_t ack_id, const std::string& data,
                                           const std::vector<std::string>& attachments, bool msgpack) {
  auto* out = new Server::Outgoing();
  if (msgpack) {
    // socket.io-msgpack-parser: one binary message, binary values inline.
    out->frames.push_back(ws::make_shared_frame(ws::kBinary, encode_msgpack_packet(type, nsp, ack_id, data, attachments)));
    return out;
  }
  const bool binary = !attachments.empty();
  if (binary) type = type == kAck ? kBinaryAck : kBinaryEvent;
  out->frames.push_back(ws::make_shared_frame(
      ws::kText, encode_message(type, nsp, ack_id, static_cast<std::uint32_t>(attachments.size()), data)));
  for (const auto& a : attachments) out->frames.push_back(ws::make_shared_frame(ws::kBinary, a));
  return out;
}

ws::SharedFrame Server::control_frame(int type, std::string_view nsp, std::string_view data) const {
  if (msgpack()) {
    return ws::make_shared_frame(ws::kBinary, encode_msgpack_packet(type, nsp, -1, data, {}));
  }
  return ws::make_shared_frame(ws::kText, encode_message(type, nsp, -1, 0, data));
}

Socket* Server::find(Worker& worker, ClientId id) {
  auto& sockets = per_worker_[worker.index()]->sockets;
  auto it = sockets.find(id);
  return it == sockets.end() ? nullptr : it->second;
}

std::string Server::sid_of(const Socket& socket) const {
  return socket.recovered ? socket.recovered->taken.sid : eio_->public_id(socket.id, kSocketTag);
}

std::string Server::pid_of(const Socket& socket) const {
  return socket.recovered ? socket.recovered->taken.pid : eio_->public_id(socket.id, kPrivateTag);
}

template <typename F>
void Server::on_socket(ClientId id, F&& f) {
  Worker* w = workers_[worker_of(id) % workers_.size()];
  w->command([this, w, id, f = std::forward<F>(f)]() mutable {
    if (Socket* s = find(*w, id)) f(*s);
  });
}

template <typename F>
void Server::on_each_worker(F&& f) {
  for (Worker* w : workers_) {
    w->command([w, f]() mutable { f(*w); });
  }
}

template <typename F>
void Server::select(Worker& worker, const Selection& selection, F&& f) {
  Namespace* nsp = namespace_at(selection.nsp);
  if (!nsp) return;
  // A room is a joined room, or a socket's own id (every socket is in the room of its id).
  auto own_id = [&](const std::string& room, auto&& g) {
    ClientId id;
    if (eio_->parse_public_id(room, kSocketTag, id) && worker_of(id) % workers_.size() == worker.index()) {
      if (Socket* s = find(worker, id); s && s->nsp == nsp) g(s);
    }
  };
  nsp->rooms->select(worker.index(), selection.rooms, selection.except, own_id, std::forward<F>(f));
}

// As engine.io: a volatile packet goes out only if the transport can take it now, and a
// transport that JS wrote to stays unwritable for the rest of that JS turn (engine.io's write
// completes on process.nextTick at the earliest), whatever this thread has flushed meanwhile.
bool Server::send_to(Socket& socket, const Outgoing& out, bool is_volatile, std::uint32_t turn) {
  if (!socket.connected) return false;
  // A recovered socket was replayed the logged packets up to its snapshot: not twice.
  if (out.log_seq && socket.recovered && out.log_seq <= socket.recovered->replayed_upto) return false;
  eio::Session& session = *socket.session;
  if (is_volatile && (!session.writable() || (turn != 0 && session.js_turn() == turn))) return false;
  for (const auto& f : out.frames) session.send(f, out.compress);
  if (turn != 0) session.set_js_turn(turn);
  return true;
}

// ---------------------------------------------------------------------------- incoming

void Server::on_message(eio::Session& session, bool binary, std::string data) {
  ClientState& st = state_of(session);
  st.last_message_ms = session.worker().now_ms();
  if (msgpack()) {
    if (!binary) return violation(session, "text message while the msgpack parser is in use", "invalid MessagePack");
    MsgpackPacket p;
    std::string sio_error;
    if (!decode_msgpack_packet(data, p, sio_error, kMaxAttachments)) {
      return violation(session, "invalid MessagePack packet (" + sio_error + ")", sio_error);
    }
    return on_packet(session, p.type, std::move(p.nsp), p.ack_id, std::move(p.data), std::move(p.attachments));
  }
  if (binary) {
    if (!st.pending) {
      return violation(session, "binary message without a packet announcing it",
                       "got binary data when not reconstructing a packet");
    }
    st.pending->bytes += data.size();
    if (st.pending->bytes > session.max_payload()) {
      // One packet with its attachments is one message to socket.io: maxHttpBufferSize in all.
      count_limit(metrics_, Limit::kAttachments);
      st.pending.reset();
      return violation(session, "a packet's attachments add up to more than maxHttpBufferSize",
                       "attachments exceed maxHttpBufferSize");
    }
    st.pending->buffers.push_back(std::move(data));
    if (--st.pending->remaining > 0) return;
    auto p = std::move(st.pending);
    on_packet(session, p->type, std::move(p->nsp), p->ack_id, std::move(p->data), std::move(p->buffers));
    return;
  }
  if (st.pending) {
    st.pending.reset();
    return violation(session, "packet while attachments were expected", "got plaintext data when reconstructing a packet");
  }
  Packet p;
  std::string error;
  std::string sio_error;
  if (!parse_packet(data, p, error, kMaxAttachments, &sio_error)) {
    if (error == "too many attachments") count_limit(metrics_, Limit::kAttachments);
    return violation(session, "invalid Socket.IO packet (" + error + ")", sio_error);
  }
  if (p.attachments > 0) {
    st.pending = std::make_unique<ClientState::PendingBinary>(ClientState::PendingBinary{
        p.type, std::string(p.nsp), p.ack_id, std::string(p.data), p.attachments, {}, data.size()});
    return;
  }
  on_packet(session, p.type, std::string(p.nsp), p.ack_id, std::string(p.data), {});
}

static Socket* socket_for(ClientState& st, std::string_view nsp, const std::unordered_map<ClientId, std::string>& pending) {
  for (auto& s : st.sockets) {
    if (s->nsp ? s->nsp->name == nsp : [&] {
          auto it = pending.find(s->id);
          return it != pending.end() && it->second == nsp;
        }()) {
      return s.get();
    }
  }
  return nullptr;
}

void Server::on_packet(eio::Session& session, int type, std::string nsp_name, std::int64_t ack_id, std::string data,
                       std::vector<std::string> attachments) {
  ClientState& st = state_of(session);
  PerWorker& pw = *per_worker_[session.worker().index()];
  if (type == kConnect) return on_connect(session, nsp_name, std::move(data));
  Socket* socket = socket_for(st, nsp_name, pw.pending_names);
  if (type == kDisconnect && socket) return remove_socket(*socket, "client namespace disconnect", true);
  if (!socket || !socket->connected) {
    // socket.io's "invalid state": the connection is closed, without an 'error' event.
    return violation(session, "packet for a namespace it has not joined (" + nsp_name + ")", "");
  }
  if ((type == kEvent || type == kBinaryEvent) && session.ticket && session.ticket->setup().limits_events() &&
      !admit_event(*socket, data)) {
    return;
  }
  if (socket->user && type == kEvent && !socket->user->jwt->refresh_prefix.empty() &&
      data.compare(0, socket->user->jwt->refresh_prefix.size(), socket->user->jwt->refresh_prefix) == 0) {
    return refresh_token(*socket, data, ack_id);  // the engine's, never JS's
  }
  if (!socket->nsp->hook_events.load(std::memory_order_relaxed)) return;  // nobody listens
  Event e(type == kEvent || type == kBinaryEvent ? Event::Type::kSioEvent : Event::Type::kSioAck);
  e.client = socket->id;
  e.channel = socket->nsp->index;
  e.data = std::move(data);
  e.number = ack_id;
  e.attachments = std::move(attachments);
  sink_->push(std::move(e));
}

// The name of an event packet's data (["name", ...]): read in place when it has no escapes.
static std::string_view event_name(std::string_view data, std::string& scratch) {
  if (data.size() >= 2 && data[0] == '[' && data[1] == '"') {
    const std::size_t end = data.find('"', 2);
    if (end != std::string_view::npos && data.substr(2, end - 2).find('\\') == std::string_view::npos) {
      return data.substr(2, end - 2);
    }
  }
  JsonShape shape;
  if (!scan_json(data, shape) || shape.first != JsonKind::kString) return {};
  scratch = std::move(shape.first_string);
  return scratch;
}

bool Server::admit_event(Socket& socket, std::string_view data) {
  const guard::Setup& setup = socket.session->ticket->setup();
  std::string scratch;
  const std::string_view name = event_name(data, scratch);
  const int rule = setup.rule_for(name);
  if (rule < 0) return true;
  if (!socket.buckets) socket.buckets = std::make_unique<guard::Buckets>();
  const guard::Verdict v = socket.buckets->check(setup, rule, socket.session->worker().now_ms());
  if (v.pass) return true;
  count_limit(metrics_, Limit::kRateLimited);
  const guard::Setup::Rule& r = setup.rules[static_cast<std::size_t>(rule)];
  if (v.disconnect) {
    log_conn(spdlog::level::warn, "session", socket.session->id(), socket.session->address(), "rate limited",
             "socket {} of {}: '{}' over its limit ({} per {} ms), disconnecting", sid_of(socket), socket.nsp->name, name,
             r.rate.points, r.rate.period_ms);
    disconnect_socket(socket, true, "rate limited");
    return false;
  }
  if (v.tell) {
    log_conn(spdlog::level::info, "session", socket.session->id(), socket.session->address(), "rate limited",
             "socket {} of {}: '{}' over its limit ({} per {} ms), dropped", sid_of(socket), socket.nsp->name, name,
             r.rate.points, r.rate.period_ms);
    const json error = json::array(
        {setup.error_event,
         {{"message", "rate limited"}, {"data", {{"event", name}, {"retryAfterMs", v.retry_after_ms}}}}});
    std::unique_ptr<Outgoing> out(make_outgoing_raw(kEvent, socket.nsp->name, -1,
                                                    error.dump(-1, ' ', false, json::error_handler_t::replace), {}, msgpack()));
    send_to(socket, *out, false);
  }
  return false;
}

void Server::on_connect(eio::Session& session, std::string_view nsp_name, std::string auth) {
  ClientState& st = state_of(session);
  PerWorker& pw = *per_worker_[session.worker().index()];
  if (Socket* s = socket_for(st, nsp_name, pw.pending_names)) {
    if (s->connected) return violation(session, "CONNECT for a namespace already connected (" + std::string(nsp_name) + ")", "");
    return;  // still being decided (middleware): the first CONNECT's answer stands
  }
  auto refuse = [&](const char* json_message) {
    session.send(control_frame(kConnectError, nsp_name, json_message));
  };
  if (st.sockets.size() >= kMaxNamespacesPerConnection) {
    count_limit(metrics_, Limit::kNamespaces);
    log_conn(spdlog::level::warn, "session", session.id(), session.address(), "namespaces",
             "CONNECT to a namespace past {} on one connection, refused", kMaxNamespacesPerConnection);
    return refuse(R"({"message":"Too many namespaces on this connection"})");
  }
  Namespace* nsp = namespace_named(nsp_name);
  if (!nsp && !dynamic_) {
    log_conn(spdlog::level::info, "session", session.id(), session.address(), "invalid namespace", "CONNECT to unknown namespace {}",
             nsp_name);
    return refuse(R"({"message":"Invalid namespace"})");
  }
  if (!nsp && namespace_count_.load() >= kMaxNamespaces) {
    count_limit(metrics_, Limit::kNamespaces);
    log_conn(spdlog::level::warn, "session", session.id(), session.address(), "namespaces",
             "CONNECT to a new dynamic namespace while {} exist, refused", kMaxNamespaces);
    return refuse(R"({"message":"Invalid namespace"})");
  }
  std::unique_ptr<SocketUser> user;
  if (jwt_on_.load(std::memory_order_relaxed)) {
    if (std::shared_ptr<const JwtSetup> setup = jwt_for(nsp_name)) {
      auth::JwtResult r = authenticate(*setup, session, auth);
      if (!r.ok()) {
        count_limit(metrics_, token_limit(r.reason));
        log_conn(spdlog::level::info, "session", session.id(), session.address(), std::string("token ") + auth::reason_name(r.reason),
                 "CONNECT to {} refused: token {} ({})", nsp_name, auth::reason_name(r.reason), r.detail);
        const json error{{"message", "unauthorized"},
                         {"data", {{"reason", auth::reason_name(r.reason)}, {"detail", r.detail}}}};
        session.send(control_frame(kConnectError, nsp_name, error.dump(-1, ' ', false, json::error_handler_t::replace)));
        // A client may try again with another token, but not forever: each try costs a signature check.
        if (++st.refused_tokens >= kMaxTokenRefusals) {
          log_conn(spdlog::level::warn, "session", session.id(), session.address(), "forced server close", "{} tokens refused, closing",
                   kMaxTokenRefusals);
          session.close_gracefully("forced server close");
        }
        return;
      }
      const std::string sub = r.claims.value("sub", std::string());
      if (session.ticket && !session.ticket->admit_user(sub)) {
        count_limit(metrics_, Limit::kConnectionsPerUser);
        log_conn(spdlog::level::warn, "session", session.id(), session.address(), "connectionsPerUser",
                 "CONNECT to {} refused: user {} has {} connections", nsp_name, sub, session.ticket->setup().connections_per_user);
        const json error{{"message", "too many connections"},
                         {"data", {{"reason", "connectionsPerUser"}, {"limit", session.ticket->setup().connections_per_user}}}};
        session.send(control_frame(kConnectError, nsp_name, error.dump(-1, ' ', false, json::error_handler_t::replace)));
        // Each try cost a signature check: counted with the refused tokens.
        if (++st.refused_tokens >= kMaxTokenRefusals) session.close_gracefully("forced server close");
        return;
      }
      user = std::make_unique<SocketUser>();
      user->sub = sub;
      user->claims = std::move(r.claims);
      user->expires_at = r.expires_at;
      user->jwt = std::move(setup);
    }
  }
  auto owned = std::make_unique<Socket>();
  Socket* s = owned.get();
  s->user = std::move(user);
  s->id = (next_socket_.fetch_add(1) << 8) | session.worker().index();
  s->session = &session;
  s->nsp = nsp;
  st.sockets.push_back(std::move(owned));
  pw.sockets.emplace(s->id, s);
  if (nsp && recovery_.enabled() && !auth.empty()) {
    // connectionStateRecovery: a client that comes back sends its private id and the offset
    // of the last packet it got in its CONNECT payload.
    const json a = json::parse(auth, nullptr, false);
    if (a.is_object() && a.contains("pid") && a["pid"].is_string() && a.contains("offset") && a["offset"].is_string()) {
      // What it missed must fit in what its connection may queue, with room to spare.
      const std::size_t max_missed = eio_->config(session.worker()).max_queued_bytes / 4 * 3;
      adapter::Cluster* cluster = cluster_.load(std::memory_order_acquire);
      if (cluster && cluster->keeps_sessions()) {
        // The fleet keeps it (Redis): the CONNECT goes on once it has answered, on this thread.
        cluster->restore_session(
            nsp->name, a["pid"].get<std::string>(), a["offset"].get<std::string>(), max_missed,
            [this, id = s->id, index = nsp->index, name = std::string(nsp_name),
             auth = std::move(auth)](std::optional<adapter::RestoredSession> r) mutable {
              auto restored = std::make_shared<std::optional<adapter::RestoredSession>>(std::move(r));
              on_socket(id, [this, index, name = std::move(name), auth = std::move(auth), restored](Socket& sock) mutable {
                if (sock.connected) return;
                Namespace* n = namespace_at(index);
                if (!n) return remove_socket(sock, "server namespace disconnect", true);
                if (*restored) {
                  restore_from_fleet(sock, *n, std::move(**restored));
                  forget_other_users_session(sock);
                }
                continue_connect(sock, n, name, std::move(auth));
              });
            });
        return;
      }
      if (auto t = recovery_.take(nsp->index, a["pid"].get<std::string>(), a["offset"].get<std::string>(), max_missed)) {
        log().debug("session {}: socket {} comes back to {}", session.id(), t->sid, nsp->name);
        s->recovered = std::make_unique<RecoveredIds>();
        s->recovered->taken = std::move(*t);
        forget_other_users_session(*s);
      }
    }
  }
  continue_connect(*s, nsp, nsp_name, std::move(auth));
}

// A session the fleet kept: its ids and rooms, its data, and what it missed, framed here.
void Server::restore_from_fleet(Socket& s, Namespace& nsp, adapter::RestoredSession r) {
  auto ids = std::make_unique<RecoveredIds>();
  ids->from_cluster = true;
  ids->taken.sid = std::move(r.session.sid);
  ids->taken.pid = std::move(r.session.pid);
  ids->taken.rooms = std::move(r.session.rooms);
  if (std::find(ids->taken.rooms.begin(), ids->taken.rooms.end(), ids->taken.sid) == ids->taken.rooms.end()) {
    ids->taken.rooms.insert(ids->taken.rooms.begin(), ids->taken.sid);
  }
  ids->data_json = std::move(r.session.data_json);
  for (const auto& b : r.missed) {
    try {
      std::unique_ptr<Outgoing> o(make_outgoing_raw(kEvent, nsp.name, -1, with_offset(b.data_json, b.offset), b.attachments, msgpack()));
      for (auto& f : o->frames) ids->frames.push_back(std::move(f));
    } catch (const std::exception& e) {
      log().warn("socket {}: a missed packet not replayed: {}", ids->taken.sid, e.what());
    }
  }
  log().debug("session {}: socket {} comes back to {} from the fleet, {} packets missed", s.session->id(), ids->taken.sid,
              nsp.name, r.missed.size());
  s.recovered = std::move(ids);
}

void Server::continue_connect(Socket& sock, Namespace* nsp, std::string_view nsp_name, std::string auth) {
  Socket* s = &sock;
  eio::Session& session = *s->session;
  PerWorker& pw = *per_worker_[session.worker().index()];
  if (nsp && !nsp->hook_connect.load()) return complete_connect(*s, *nsp);
  // JS decides: middleware, or a dynamic namespace.
  pw.pending_names.emplace(s->id, std::string(nsp_name));
  s->js_knows = true;
  Event e(Event::Type::kSioConnect);
  e.client = s->id;
  e.channel = nsp ? nsp->index : UINT32_MAX;
  e.data = std::move(auth);
  // Names come from the network: checked as UTF-8 by the transports, and dumped with
  // replacement all the same, so that no text can make the dump throw.
  json info{{"id", sid_of(*s)},
            {"nsp", nsp_name},
            {"conn", session.id()},
            {"sid", eio_->public_id(session.id(), 'e')},
            {"transport", session.transport_name()}};
  if (recovery_.enabled()) info["pid"] = pid_of(*s);
  if (s->user) info["user"] = s->user->claims;
  if (session.ticket) info["address"] = session.ticket->address();  // through trustProxy
  if (s->recovered) {
    info["recovered"] = true;
    info["rooms"] = s->recovered->taken.rooms;
    if (s->recovered->from_cluster) {
      json data = json::parse(s->recovered->data_json, nullptr, false);
      info["data"] = data.is_discarded() ? json::object() : std::move(data);
    }
  }
  e.text = info.dump(-1, ' ', false, json::error_handler_t::replace);
  sink_->push(std::move(e));
}

void Server::complete_connect(Socket& socket, Namespace& nsp, std::uint32_t turn, std::uint64_t replay_bound) {
  Worker& w = socket.session->worker();
  per_worker_[w.index()]->pending_names.erase(socket.id);
  socket.nsp = &nsp;
  socket.connected = true;
  nsp.rooms->add(w.index(), &socket);
  if (socket.user && !socket.user->sub.empty() && !socket.user->jwt->user_room_prefix.empty()) {
    join_rooms(socket, {socket.user->jwt->user_room_prefix + socket.user->sub});  // every device of the user
  }
  nsp.sockets.fetch_add(1, std::memory_order_relaxed);
  metrics_.sio_connects.fetch_add(1, std::memory_order_relaxed);
  socket_changed(nsp, socket, true);
  socket.session->mark_established();
  json ack{{"sid", sid_of(socket)}};
  if (recovery_.enabled()) ack["pid"] = pid_of(socket);
  if (RecoveredIds* r = socket.recovered.get(); r && !r->replayed) {
    // Its rooms back, its old id among them as a room (uncounted), so that io.to(id) still
    // finds it on whichever thread it is now; then what it missed, in order, before the
    // CONNECT: the client delivers those once it is connected. A logged packet up to the bound
    // whose delivery is still queued behind this is skipped then.
    nsp.rooms->join(w.index(), &socket, r->taken.sid, SIZE_MAX, false);
    std::vector<std::string> rooms;
    for (const auto& room : r->taken.rooms) {
      if (room != r->taken.sid) rooms.push_back(room);
    }
    join_rooms(socket, rooms);
    if (r->from_cluster) {
      for (const auto& f : r->frames) socket.session->send(f);
      std::vector<ws::SharedFrame>().swap(r->frames);
    } else {
      for (const auto& f : recovery_.missed(nsp.index, r->taken, socket.id, replay_bound, r->replayed_upto)) socket.session->send(f);
    }
    r->replayed = true;
    std::vector<std::string>().swap(r->taken.rooms);
  }
  socket.session->send(control_frame(kConnect, nsp.name, ack.dump()));
  if (turn != 0) socket.session->set_js_turn(turn);
}

void Server::remove_socket(Socket& socket, std::string_view reason, bool notify_js) {
  Worker& w = socket.session->worker();
  PerWorker& pw = *per_worker_[w.index()];
  Namespace* nsp = socket.nsp;
  bool persisted = false;  // JS keeps the socket's data then
  const bool tell = notify_js && (socket.js_knows || (nsp && nsp->hook_connect.load()));
  if (socket.connected) metrics_.count_disconnect("socketio", reason);
  if (socket.connected && recovery_.enabled() && is_recoverable(reason)) {
    std::string sid = sid_of(socket);
    std::vector<std::string> rooms{sid};
    SocketRooms::each_room(socket, [&](const std::string& room) {
      if (room != sid) rooms.push_back(room);
    });
    adapter::Cluster* cluster = cluster_.load(std::memory_order_acquire);
    if (cluster && cluster->keeps_sessions()) {
      // The fleet keeps it. JS does for the sockets it knows (it has their socket.data); the
      // engine for the others, with the data a session restored here came with.
      if (!tell) {
        adapter::StreamSession session{std::move(sid), pid_of(socket), std::move(rooms),
                                       socket.recovered ? socket.recovered->data_json : std::string("{}")};
        cluster->persist_session(std::move(session), recovery_.window_ms());
      }
    } else {
      recovery_.persist(nsp->index, pid_of(socket), std::move(sid), socket.id, std::move(rooms));
    }
    persisted = true;
  }
  if (!socket.connected && socket.recovered && !socket.recovered->replayed && !socket.recovered->from_cluster && nsp) {
    // Refused (middleware) or gone before it was connected: the record goes back, for another try.
    recovery_.put_back(nsp->index, socket.recovered->taken);
  }
  if (socket.connected) {
    nsp->rooms->remove(w.index(), &socket);
    socket_changed(*nsp, socket, false);
    nsp->sockets.fetch_sub(1, std::memory_order_relaxed);
    socket.connected = false;
  }
  if (tell) {
    Event e(Event::Type::kSioDisconnect);
    e.client = socket.id;
    e.channel = nsp ? nsp->index : UINT32_MAX;
    e.code = persisted ? 1 : 0;
    e.data.assign(reason);
    sink_->push(std::move(e));
  }
  pw.pending_names.erase(socket.id);
  pw.sockets.erase(socket.id);
  ClientState& st = state_of(*socket.session);
  for (auto it = st.sockets.begin(); it != st.sockets.end(); ++it) {
    if (it->get() == &socket) {
      st.sockets.erase(it);  // destroys `socket`
      return;
    }
  }
}

// A protocol violation ends the session as socket.io ends it: each of its sockets gets an
// 'error' event with the parser's message (when there is one), and the session closes
// gracefully with "forced close" (a held poll gets the close packet, a later one noop and close).
void Server::violation(eio::Session& session, const std::string& what, const std::string& sio_error) {
  metrics_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
  log_conn(spdlog::level::warn, "session", session.id(), session.address(), sio_error.empty() ? "transport error" : "parse error",
           "{}, closing", what);
  if (!sio_error.empty()) {
    for (auto& s : state_of(session).sockets) {
      if (!(s->js_knows || (s->nsp && s->nsp->hook_connect.load()))) continue;
      Event e(Event::Type::kSioError);
      e.client = s->id;
      e.channel = s->nsp ? s->nsp->index : UINT32_MAX;
      e.data = sio_error;
      sink_->push(std::move(e));
    }
  }
  session.close_gracefully("forced close");
}

void Server::on_close(eio::Session& session, std::string_view reason) {
  ClientState& st = state_of(session);
  st.pending.reset();
  while (!st.sockets.empty()) remove_socket(*st.sockets.back(), reason, true);
}

// ---------------------------------------------------------------------------- from JS

void Server::accept(ClientId socket, std::uint32_t nsp_index, std::uint32_t turn) {
  // connectionStateRecovery: a recovered socket is replayed what was logged up to this call, in
  // JS's order; what JS sends from here on (its 'connection' handler's emits, a join and a
  // broadcast to that room) reaches it live, after the replay.
  const std::uint64_t replay_bound = recovery_.enabled() ? recovery_.last_seq(nsp_index) : 0;
  on_socket(socket, [this, nsp_index, turn, replay_bound](Socket& s) {
    if (s.connected) return;
    Namespace* nsp = namespace_at(nsp_index);
    if (!nsp) return remove_socket(s, "server namespace disconnect", true);
    complete_connect(s, *nsp, turn, replay_bound);
  });
}

void Server::reject(ClientId socket, std::string data_json) {
  on_socket(socket, [this, data = std::move(data_json)](Socket& s) {
    if (s.connected) return;
    PerWorker& pw = *per_worker_[s.session->worker().index()];
    auto it = pw.pending_names.find(s.id);
    const std::string name = it != pw.pending_names.end() ? it->second : (s.nsp ? s.nsp->name : "/");
    s.session->send(control_frame(kConnectError, name, data));
    s.js_knows = false;  // JS refused it: no disconnect to report
    remove_socket(s, "", false);
  });
}

void Server::emit(ClientId socket, std::string data_json, std::vector<std::string> attachments, std::int64_t ack_id,
                  bool is_volatile, std::uint32_t nsp_index, bool compress, std::uint32_t turn) {
  // (With the fleet keeping sessions, as socket.io's ClusterAdapter: only broadcasts are kept.)
  Namespace* nsp = recovery_.enabled() && ack_id < 0 && !is_volatile && !fleet_sessions() ? namespace_at(nsp_index) : nullptr;
  if (nsp) {
    // As socket.io with connectionStateRecovery: logged here, in the order of the calls, like a
    // broadcast to the socket's own room, so that a client that dropped gets it back.
    auto out = std::make_shared<Outgoing>();
    auto logged = recovery_.log(nsp->index, {}, {}, socket, [&](const std::string& offset) {
      std::unique_ptr<Outgoing> o(make_outgoing_raw(kEvent, nsp->name, -1, with_offset(data_json, offset), attachments, msgpack()));
      return std::move(o->frames);
    });
    out->frames = std::move(logged.frames);
    out->log_seq = logged.seq;
    out->compress = compress;
    on_socket(socket, [this, out, turn](Socket& s) {
      if (s.connected) send_to(s, *out, false, turn);
    });
    return;
  }
  on_socket(socket, [this, data = std::move(data_json), att = std::move(attachments), ack_id, is_volatile, compress,
                     turn](Socket& s) {
    if (!s.connected) return;
    std::unique_ptr<Outgoing> out(make_outgoing_raw(kEvent, s.nsp->name, ack_id, data, att, msgpack()));
    out->compress = compress;
    send_to(s, *out, is_volatile, turn);
  });
}

void Server::ack(ClientId socket, std::int64_t ack_id, std::string data_json, std::vector<std::string> attachments,
                 std::uint32_t turn) {
  on_socket(socket, [this, data = std::move(data_json), att = std::move(attachments), ack_id, turn](Socket& s) {
    if (!s.connected) return;
    std::unique_ptr<Outgoing> out(make_outgoing_raw(kAck, s.nsp->name, ack_id, data, att, msgpack()));
    send_to(s, *out, false, turn);  // a volatile emit after it in the same turn is dropped
  });
}

void Server::broadcast(Selection selection, std::string data_json, std::vector<std::string> attachments,
                       std::int64_t ack_id, bool is_volatile, bool compress, std::uint32_t turn, bool local,
                       const std::string* offset) {
  Namespace* nsp = namespace_at(selection.nsp);
  if (!nsp) return;
  const bool fleet = fleet_sessions();
  // A broadcast with acks goes to the other nodes as a request (JS's, it collects the answers).
  if (adapter::Cluster* cluster = cluster_.load(std::memory_order_acquire); cluster && !local && ack_id < 0) {
    adapter::SioBroadcast b;
    b.nsp = nsp->name;
    b.rooms = selection.rooms;
    b.except = selection.except;
    b.data_json = data_json;
    b.attachments = attachments;
    b.is_volatile = is_volatile;
    if (!compress) b.compress = false;
    if (fleet && !is_volatile) {
      // Recoverable: delivered here too once the stream has given it its offset (deliver_remote).
      b.deliver_here = true;
      cluster->publish(std::move(b));
      return;
    }
    cluster->publish(std::move(b));
  }
  // Encoded and framed once, for every recipient on every I/O thread (and, for recipients with
  // permessage-deflate, compressed once per I/O thread: ws::DeflateWorkspace).
  std::shared_ptr<Outgoing> made;
  if (fleet) {
    const bool with = offset && !offset->empty() && ack_id < 0 && !is_volatile;
    made.reset(make_outgoing_raw(kEvent, nsp->name, ack_id, with ? with_offset(data_json, *offset) : data_json, attachments, msgpack()));
  } else if (recovery_.enabled() && ack_id < 0 && !is_volatile) {
    made = std::make_shared<Outgoing>();
    auto logged = recovery_.log(nsp->index, selection.rooms, selection.except, 0, [&](const std::string& offset) {
      std::unique_ptr<Outgoing> o(make_outgoing_raw(kEvent, nsp->name, -1, with_offset(data_json, offset), attachments, msgpack()));
      return std::move(o->frames);
    });
    made->frames = std::move(logged.frames);
    made->log_seq = logged.seq;
  } else {
    made.reset(make_outgoing_raw(kEvent, nsp->name, ack_id, data_json, attachments, msgpack()));
  }
  made->compress = compress;
  std::shared_ptr<const Outgoing> out(std::move(made));
  auto sel = std::make_shared<const Selection>(std::move(selection));
  metrics_.broadcasts.fetch_add(1, std::memory_order_relaxed);
  on_each_worker([this, out, sel, ack_id, is_volatile, turn](Worker& w) {
    std::uint64_t count = 0;
    select(w, *sel, [&](Socket& s) { count += send_to(s, *out, is_volatile, turn) ? 1 : 0; });
    metrics_.broadcast_recipients.fetch_add(count, std::memory_order_relaxed);
    if (ack_id >= 0) {
      Event e(Event::Type::kSioBroadcastCount);
      e.channel = sel->nsp;
      e.number = ack_id;
      e.client = count;
      e.code = static_cast<std::uint16_t>(workers_.size());  // how many counts make the total
      sink_->push(std::move(e));
    }
  });
}

void Server::socket_changed(Namespace& nsp, const Socket& socket, bool connected) {
  if (adapter::Cluster* cluster = cluster_.load(std::memory_order_acquire)) {
    cluster->socket_changed(nsp.name, sid_of(socket), connected);
  }
}

void Server::deliver_remote(adapter::SioBroadcast&& b) {
  Namespace* nsp = namespace_named(b.nsp);
  if (!nsp) return;
  Selection selection;
  selection.nsp = nsp->index;
  selection.rooms = std::move(b.rooms);
  selection.except = std::move(b.except);
  broadcast(std::move(selection), std::move(b.data_json), std::move(b.attachments), -1, b.is_volatile,
            b.compress.value_or(true), 0, true, &b.offset);
}

void Server::join_rooms(Socket& s, const std::vector<std::string>& rooms) {
  const unsigned t = s.session->worker().index();
  const std::uint32_t max_rooms = max_rooms_.load(std::memory_order_relaxed);
  for (const auto& r : rooms) {
    if (s.nsp->rooms->join(t, &s, r, max_rooms) == SocketRooms::Joined::kTooMany) {
      count_limit(metrics_, Limit::kRooms);
      log().warn("socket {}: already in {} rooms, join of another refused", s.id, SocketRooms::room_count(s));
      return;
    }
  }
}

void Server::join(ClientId socket, std::vector<std::string> rooms) {
  on_socket(socket, [this, rooms = std::move(rooms)](Socket& s) {
    if (s.nsp) join_rooms(s, rooms);
  });
}

void Server::leave(ClientId socket, std::string room) {
  on_socket(socket, [room = std::move(room)](Socket& s) {
    if (s.nsp) s.nsp->rooms->leave(s.session->worker().index(), &s, room);
  });
}

void Server::disconnect_socket(Socket& s, bool close, std::string_view reason) {
  eio::Session& session = *s.session;
  if (close) {
    // As socket.io: every socket of the connection is told, then the connection closes.
    ClientState& st = state_of(session);
    while (!st.sockets.empty()) {
      Socket& each = *st.sockets.back();
      if (each.connected) {
        session.send(control_frame(kDisconnect, each.nsp->name, ""));
      }
      remove_socket(each, reason, true);
    }
    session.close_gracefully(reason == "server namespace disconnect" ? "forced server close" : reason);
    return;
  }
  if (s.connected) session.send(control_frame(kDisconnect, s.nsp->name, ""));
  remove_socket(s, reason, true);
}

void Server::disconnect(ClientId socket, bool close) {
  on_socket(socket, [this, close](Socket& s) { disconnect_socket(s, close); });
}

void Server::close_all() { eio_->close_all("server shutting down"); }

// Selections that change rooms collect their sockets first: changing a room while walking it
// would move members under the walk.
static std::vector<ClientId> collect(Server& server, auto&& select_fn) {
  std::vector<ClientId> ids;
  select_fn([&](Socket& s) { ids.push_back(s.id); });
  (void)server;
  return ids;
}

void Server::sockets_join(Selection selection, std::vector<std::string> rooms) {
  auto sel = std::make_shared<const Selection>(std::move(selection));
  auto list = std::make_shared<const std::vector<std::string>>(std::move(rooms));
  on_each_worker([this, sel, list](Worker& w) {
    for (ClientId id : collect(*this, [&](auto&& f) { select(w, *sel, f); })) {
      if (Socket* s = find(w, id)) join_rooms(*s, *list);
    }
  });
}

void Server::sockets_leave(Selection selection, std::vector<std::string> rooms) {
  auto sel = std::make_shared<const Selection>(std::move(selection));
  auto list = std::make_shared<const std::vector<std::string>>(std::move(rooms));
  on_each_worker([this, sel, list](Worker& w) {
    for (ClientId id : collect(*this, [&](auto&& f) { select(w, *sel, f); })) {
      if (Socket* s = find(w, id)) {
        for (const auto& r : *list) s->nsp->rooms->leave(w.index(), s, r);
      }
    }
  });
}

void Server::disconnect_sockets(Selection selection, bool close) {
  auto sel = std::make_shared<const Selection>(std::move(selection));
  on_each_worker([this, sel, close](Worker& w) {
    for (ClientId id : collect(*this, [&](auto&& f) { select(w, *sel, f); })) {
      if (Socket* s = find(w, id)) disconnect_socket(*s, close);
    }
  });
}

void Server::fetch_sockets(std::uint64_t request_id, Selection selection) {
  struct Job {
    std::mutex mutex;
    json result = json::array();
    std::atomic<std::size_t> remaining;
  };
  auto job = std::make_shared<Job>();
  job->remaining = workers_.size();
  auto sel = std::make_shared<const Selection>(std::move(selection));
  on_each_worker([this, sel, job, request_id](Worker& w) {
    json part = json::array();
    select(w, *sel, [&](Socket& s) {
      const std::string sid = sid_of(s);
      json rooms = json::array({sid});
      SocketRooms::each_room(s, [&](const std::string& room) {
        if (room != sid) rooms.push_back(room);
      });
      part.push_back({{"id", sid},
                      {"socket", s.id},
                      {"conn", s.session->id()},
                      {"rooms", std::move(rooms)}});
    });
    {
      std::lock_guard lock(job->mutex);
      for (auto& item : part) job->result.push_back(std::move(item));
    }
    if (job->remaining.fetch_sub(1) == 1) {
      Event e(Event::Type::kSioFetch);
      e.number = static_cast<std::int64_t>(request_id);
      e.data = job->result.dump();
      sink_->push(std::move(e));
    }
  });
}

SocketIoStats Server::stats() const {
  SocketIoStats s;
  s.sessions = eio_->session_count();
  const std::uint32_t n = namespace_count_.load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < n; ++i) {
    const Namespace& nsp = *namespaces_[i];
    s.sockets += nsp.sockets.load();
    s.namespaces.push_back({nsp.name, nsp.sockets.load(), nsp.rooms->rooms()});
  }
  const RecoveryStore::Stats r = recovery_.stats();
  s.recovery = {r.sessions, r.packets, r.bytes, r.recovered, r.expired, r.evicted};
  return s;
}

}  // namespace sidewire::sio
